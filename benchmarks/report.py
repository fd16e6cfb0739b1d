"""Copy the measured tables from ``benchmarks/results/*.json`` into ``docs/performance.md``.

Replaces what lies between the ``<!-- results:start -->`` and ``<!-- results:end -->`` markers
with one section per full (non ``--quick``) result of the scripts in :data:`ORDER`: the
table, its notes, the command that produced it, the date, the machine and the code measured;
then the superseded runs kept in ``results/earlier/<name>-<when>.json``.  Not a benchmark:
it measures nothing.

    python benchmarks/report.py
"""

from __future__ import annotations

import json
from pathlib import Path

from _common import BENCH_DIR, RESULTS_DIR

DOC = BENCH_DIR.parent / "docs" / "performance.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"
ORDER = (
    "roofline",
    "pruned",
    "sample_basis",
    "floatsom_protocol",
    "explorer",
    "peers",
    "out_of_core",
    "scaling",
    "quality_mnist",
)


def describe(code: dict) -> str:
    changes = code.get("dasksom_changes") or []
    dirty = ", ".join(change.split()[-1] for change in changes)
    return f"commit {code.get('commit')}" + (f" with uncommitted {dirty}" if dirty else "")


def section(record: dict, heading: str = "###") -> str:
    machine = record["machine"]
    blas = ", ".join(
        f"{b['internal_api']} {b['version']} ({b['architecture']}, {b['num_threads']} threads)"
        for b in machine["blas"]
    )
    load = machine.get("load_average_1m_at_start")
    state = describe(record.get("code", {}))
    if record.get("code_at_start", record.get("code")) != record.get("code"):
        state = f"{describe(record['code_at_start'])} at the start, {state} at the end"
    lines = [
        f"{heading} {record['name']} ({record['date'][:16].replace('T', ' ')} UTC)",
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


def records_in(folder: Path, suffix: str = "") -> list[dict]:
    """Results in ``folder`` of the scripts that write this format, in reading order.

    ``suffix`` is a glob after the script's name: ``"-*"`` picks up every superseded run kept
    in ``results/earlier/`` as ``<name>-<when>.json``, oldest first.
    """
    paths = [path for name in ORDER for path in sorted(folder.glob(f"{name}{suffix}.json"))]
    return [json.loads(path.read_text()) for path in paths]


def main() -> None:
    # results/earlier/ keeps superseded runs, shown after the latest ones.
    latest, earlier = records_in(RESULTS_DIR), records_in(RESULTS_DIR / "earlier", "-*")
    records = latest + earlier
    body = "\n".join(section(record) for record in latest)
    if earlier:
        body += "\n### Earlier runs, superseded by the ones above\n\n"
        body += "\n".join(section(record, "####") for record in earlier)
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(f"{head}{START}\n\n{body}\n{END}{tail}")
    print(f"{len(records)} tables written to {DOC.relative_to(BENCH_DIR.parent)}")


if __name__ == "__main__":
    main()
