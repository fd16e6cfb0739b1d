"""Copy the measured tables from ``benchmarks/results/*.json`` into ``docs/performance.md``.

Replaces what lies between the ``<!-- results:start -->`` and ``<!-- results:end -->`` markers
with one section per full (non ``--quick``) result: the table, its notes, the command that
produced it, the date and the machine.  Not a benchmark: it measures nothing.

    python benchmarks/report.py
"""

from __future__ import annotations

import json

from _common import BENCH_DIR, RESULTS_DIR

DOC = BENCH_DIR.parent / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = ("roofline", "peers", "out_of_core", "scaling", "quality_mnist")


def section(record: dict) -> str:
    machine = record["machine"]
    blas = ", ".join(
        f"{b['internal_api']} {b['version']} ({b['architecture']}, {b['num_threads']} threads)"
        for b in machine["blas"]
    )
    load = machine.get("load_average_1m_at_start")
    code = record.get("code", {})
    changes = code.get("dasksom_changes") or []
    state = f"commit {code.get('commit')}" + (
        f" with uncommitted changes to {', '.join(c.split()[-1] for c in changes)}"
        if changes
        else ""
    )
    lines = [
        f"### {record['name']}",
        "",
        record["title"],
        "",
        record["markdown"],
        "",
        *(f"- {note}" for note in record["notes"]),
        "",
        f"Command: `{record['command']}`; date: {record['date']}; machine: {machine['cpus']} "
        f"cores ({machine['processor']}), {machine['memory_gib']} GiB; BLAS: {blas}; "
        f"OPENBLAS_CORETYPE={machine['env']['OPENBLAS_CORETYPE']!r}; 1-minute load average "
        f"{load if load is None else round(load, 2)} at the start, "
        f"{machine['load_average_1m']:.2f} at the end; code: {state}.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    records = {
        path.stem: json.loads(path.read_text())
        for path in RESULTS_DIR.glob("*.json")
        if not path.stem.endswith(".quick")
    }
    names = [name for name in ORDER if name in records] + sorted(set(records) - set(ORDER))
    body = "\n".join(section(records[name]) for name in names)
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n\n{body}\n{END}{tail}")
    print(f"{len(names)} tables written to {DOC.relative_to(BENCH_DIR.parent)}")


if __name__ == "__main__":
    main()
