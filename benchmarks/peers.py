"""Peers: dasksom against simpsom 2.0.2, MiniSom, somoclu and XPySom on MNIST.

Every library trains in its own child process (``_peer_child.py``; the peers in the virtualenv
``benchmarks/.venv-peers``, which this script builds) with matching settings: hexagonal map,
gaussian neighbourhood, batch training (MiniSom: ``train_batch_offline``), 10 epochs, the
radius going from ``max(h, w) / 2`` down as ``s0 * exp(-t / tau)``, ``tau = E / ln(s0)``, and
the same starting weights (dasksom's PCA initialisation of the same rows).  Each child saves
its trained weights; dasksom's own ``quantization_error`` and ``topographic_error`` score all
of them on the training rows.  Reported: training seconds (the library's train call), the
child's peak RSS (``VmHWM``, see ``_common.peak_rss_mib``), QE, TE, and the time relative to
dasksom's in the same run.

A child over the time limit is killed and shown as "> limit"; a run whose estimated time (from
the library's earlier reference figures, linear in rows x nodes) is over the limit is skipped
and shown as such.  A library that fails to install is reported, not fatal.

    python benchmarks/peers.py [--quick] [--limit SECONDS]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import (
    BENCH_DIR,
    Table,
    finish,
    load_mnist,
    parser,
    pca_init,
    run_child,
    scored_som,
    start_state,
)

VENV = BENCH_DIR / ".venv-peers"
CHILD = BENCH_DIR / "_peer_child.py"
# pip arguments and the module whose import proves the install of each peer.  somoclu ships an
# sdist whose setup.py imports numpy, builds a CUDA kernel whenever it finds nvcc and, when that
# build fails, silently installs the package without its compiled core: a CUDAHOME that does
# not exist makes it build the CPU kernel, and its own compiled module is what is checked.
PEERS = {
    "xpysom": (["xpysom"], "xpysom"),
    "somoclu": (["--no-build-isolation", "--no-cache-dir", "somoclu"], "_somoclu_wrap"),
    "minisom": (["minisom"], "minisom"),
    "simpsom": (["simpsom==2.0.2"], "simpsom"),
}
PIP_ENV = {"CUDAHOME": "/nonexistent-cuda"}
EPOCHS = 10
# Seconds, QE and TE measured earlier on this machine for 10,000 rows and 10 epochs.
REFERENCE = {
    ("xpysom", 50): (6.2, 4.73, 0.031),
    ("somoclu", 50): (73, 4.81, 0.096),
    ("simpsom", 50): (592, 4.77, 0.033),
    ("xpysom", 20): (0.9, 5.32, 0.040),
    ("somoclu", 20): (10.9, 5.40, 0.074),
    ("minisom", 20): (41, 5.37, 0.033),
    ("simpsom", 20): (80, 5.37, 0.036),
}


def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_peers() -> dict[str, str | None]:
    """Build the virtualenv and install each peer; maps a peer to None or why it is missing."""
    if not venv_python().exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        pip(["numpy", "setuptools", "wheel"])
    problems: dict[str, str | None] = {}
    for library, (requirement, module) in PEERS.items():
        if imports(module):
            problems[library] = None
            continue
        result = pip(requirement)
        problems[library] = None if imports(module) else _last_line(result.stderr)
    return problems


def pip(requirements: list[str]) -> subprocess.CompletedProcess:
    command = [str(venv_python()), "-m", "pip", "install", "-q", *requirements]
    return subprocess.run(command, capture_output=True, text=True, env=os.environ | PIP_ENV)


def imports(module: str) -> bool:
    command = [str(venv_python()), "-c", f"import {module}"]
    return subprocess.run(command, capture_output=True).returncode == 0


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and "WARNING" not in line]
    return lines[-1].strip() if lines else "install failed"


def estimated_seconds(library: str, rows: int, side: int) -> float | None:
    """Training time scaled from the library's reference run, linear in rows x nodes."""
    rates = [
        seconds / (10_000 * size * size)
        for (name, size), (seconds, _, _) in REFERENCE.items()
        if name == library
    ]
    return max(rates) * rows * side * side if rates else None


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--limit", type=float, default=300.0, help="seconds per run")
    options = arguments.parse_args()
    start = start_state()
    sizes, sides, limit = (
        ((2000,), (10,), 120.0) if options.quick else ((10_000, 60_000), (20, 50), options.limit)
    )
    problems = ensure_peers()
    libraries = ["dasksom", *PEERS]
    table = Table(
        f"Peers: MNIST in [0, 1], hexagonal, gaussian, batch, {EPOCHS} epochs, same PCA "
        f"starting weights; QE / TE by dasksom; limit {limit:.0f} s a run",
        ["rows", "map", "library", "train s", "x dasksom", "peak MiB", "QE", "TE", "reference"],
    )
    notes: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="dasksom-peers-") as scratch:
        for rows in sizes:
            x, _ = load_mnist(rows)
            data = Path(scratch, f"mnist-{rows}.npy")
            np.save(data, x)
            for side in sides:
                init = Path(scratch, f"init-{rows}-{side}.npy")
                np.save(init, pca_init(x, side, side))
                dasksom_seconds = None
                for library in libraries:
                    reference = REFERENCE.get((library, side)) if rows == 10_000 else None
                    row = [rows, f"{side}x{side}", library]
                    estimate = estimated_seconds(library, rows, side)
                    if problems.get(library):
                        table.add(*row, "not installed", None, None, None, None, reference)
                        notes[library] = f"{library} install failed: {problems[library]}"
                        continue
                    if estimate is not None and estimate > limit:
                        status = f"skipped (est. {estimate:.0f} s)"
                        table.add(*row, status, None, None, None, None, reference)
                        continue
                    out = Path(scratch, f"{library}-{rows}-{side}.npy")
                    settings = {
                        "library": library,
                        "data": str(data),
                        "init": str(init),
                        "out": str(out),
                        "height": side,
                        "width": side,
                        "epochs": EPOCHS,
                    }
                    python = sys.executable if library == "dasksom" else str(venv_python())
                    child = run_child([python, str(CHILD), json.dumps(settings)], timeout=limit)
                    report = child.last_json()
                    if child.timed_out or report is None:
                        status = "> limit" if child.timed_out else "failed"
                        if not child.timed_out:
                            notes[f"{library}-{rows}-{side}"] = (
                                f"{library} {rows} rows {side}x{side} failed: "
                                + _last_line(child.stderr)
                            )
                        peak = child.sampled_peak_mib
                        table.add(*row, status, None, peak, None, None, reference)
                        continue
                    notes.setdefault(library, f"{library}: {report['note']}")
                    seconds = report["train_seconds"]
                    if library == "dasksom":
                        dasksom_seconds = seconds
                    som = scored_som(np.load(out), side, side, topology="hexagonal")
                    table.add(
                        *row,
                        seconds,
                        seconds / dasksom_seconds if dasksom_seconds else None,
                        report["peak_rss_mib"],
                        som.quantization_error(x),
                        som.topographic_error(x),
                        reference,
                    )
    table.notes += list(notes.values())
    table.notes += [
        "train s: the library's training call only; peak MiB: the child's peak RSS (VmHWM), "
        "data and interpreter included (sampled every 50 ms for a killed run)",
        "reference: (seconds, QE, TE) measured earlier on this machine, 10,000 rows",
        "skipped: estimated from the reference seconds, linear in rows x nodes, over the limit",
        "QE / TE: dasksom.SOM.quantization_error / topographic_error on each library's weights "
        "(loaded with SOM.from_weights), on the training rows",
    ]
    finish("peers", table, options.quick, start)


if __name__ == "__main__":
    main()
