"""Large maps: the cost of the neighbourhood step and of training a 256 x 256 map on MNIST.

Times :func:`dasksom.core.neighborhood.smooth` (``H @ S`` with ``K = 785`` columns, MNIST's 784
features plus the counts) on 128 x 128 and 256 x 256 hexagonal maps for every neighbourhood,
with its peak traced memory, then trains ``dasksom.SOM(256, 256)`` for 2 epochs on MNIST and
reports seconds per epoch and the training process's peak RSS.  Prints one table and writes
``benchmarks/results/large_map.json``.

    python benchmarks/large_map.py            # full run (several minutes)
    python benchmarks/large_map.py --quick    # smoke run on small maps
    python benchmarks/large_map.py --rows 20000
    python benchmarks/large_map.py --sweep    # dense vs structured around DENSE_MAX_NODES

MNIST is read from ``/work/shared/data/mnist.npz`` (keras layout, ``x_train`` of shape
``(60000, 28, 28)``); ``--data`` points elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from dasksom import SOM, Lattice
from dasksom.core.neighborhood import (
    DENSE_MAX_NODES,
    NEIGHBORHOODS,
    neighborhood_matrix,
    smooth,
    structured_smooth,
)

DEFAULT_DATA = Path("/work/shared/data/mnist.npz")
RESULTS = Path(__file__).resolve().parent / "results" / "large_map.json"
MNIST_FEATURES = 28 * 28
N_COLUMNS = MNIST_FEATURES + 1  # the engine smooths the sums and the counts together
MIB = 2**20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small maps: a smoke run")
    parser.add_argument("--rows", type=int, default=None, help="MNIST rows to train on (all)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (2)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="path to mnist.npz")
    parser.add_argument(
        "--sweep", action="store_true", help="only compare dense and structured on small maps"
    )
    return parser.parse_args(argv)


def time_smooth(side: int, kind: str, rng: np.random.Generator, repeats: int = 2) -> dict:
    """``smooth`` on a ``side x side`` hexagonal map at the default start radius.

    The best of ``repeats`` calls, as other work on a shared machine only ever adds time; the
    peak memory is traced during the first.
    """
    lattice = Lattice(side, side, "hexagonal")
    values = rng.random((lattice.n_nodes, N_COLUMNS))
    sigma = side / 2.0  # simpsom's first-epoch radius: the bubble's costliest case
    times = []
    for attempt in range(repeats):
        if attempt == 0:
            tracemalloc.start()
        started = time.perf_counter()
        smooth(lattice, values, sigma, kind)
        times.append(time.perf_counter() - started)
        if attempt == 0:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    return {
        "task": "smooth",
        "map": f"{side}x{side}",
        "kind": kind,
        "sigma": sigma,
        "seconds": min(times),
        "seconds_each": times,
        "peak_mib": peak / MIB,
        "values_mib": values.nbytes / MIB,
        "dense_h_mib": lattice.n_nodes**2 * 8 / MIB,
    }


def require_data(path: Path) -> None:
    if not path.exists():
        sys.exit(
            f"MNIST not found at {path}: put the keras mnist.npz there (x_train of shape "
            "(60000, 28, 28), uint8) or pass --data PATH."
        )


def load_mnist(path: Path, rows: int | None) -> np.ndarray:
    with np.load(path) as archive:
        images = archive["x_train"]
    return images[:rows].reshape(-1, MNIST_FEATURES).astype(np.float32) / 255.0


def train(path: Path, side: int, rows: int | None, epochs: int) -> dict:
    """Train in this (child) process so that its peak RSS is the training's own."""
    data = load_mnist(path, rows)
    som = SOM(side, side, topology="hexagonal", epochs=epochs, random_state=0)
    started = time.perf_counter()
    som.fit(data)
    seconds = time.perf_counter() - started
    # ru_maxrss is in KiB on Linux.
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "task": "train",
        "map": f"{side}x{side}",
        "kind": som.neighborhood,
        "rows": len(data),
        "epochs": [
            {"sigma": h["sigma"], "seconds": h["seconds"], "qe": h["quantization_error"]}
            for h in som.history_
        ],
        "fit_seconds": seconds,
        "peak_rss_mib": peak_rss,
    }


def dense_smooth(lattice: Lattice, values: np.ndarray, sigma: float, kind: str) -> np.ndarray:
    return neighborhood_matrix(lattice, sigma, kind) @ values


def best_of_three(function, *args) -> float:
    times = []
    for _ in range(3):
        started = time.perf_counter()
        function(*args)
        times.append(time.perf_counter() - started)
    return min(times)


def sweep(rng: np.random.Generator) -> list[dict]:
    """Dense product against the structured one on maps around the threshold."""
    rows = []
    for side in (16, 24, 32, 40, 48):
        lattice = Lattice(side, side, "hexagonal")
        values = rng.random((lattice.n_nodes, N_COLUMNS))
        for kind in NEIGHBORHOODS:
            call = (lattice, values, side / 2.0, kind)
            rows.append(
                {
                    "nodes": lattice.n_nodes,
                    "kind": kind,
                    "dense": best_of_three(dense_smooth, *call),
                    "structured": best_of_three(structured_smooth, *call),
                }
            )
    return rows


def print_sweep(rows: list[dict]) -> None:
    print(f"dense vs structured smooth, hexagonal, K={N_COLUMNS}, sigma = side / 2")
    print(f"{'nodes':>6}  {'kind':<12} {'dense ms':>9} {'structured ms':>14}")
    for row in rows:
        print(
            f"{row['nodes']:>6}  {row['kind']:<12} {row['dense'] * 1e3:>9.1f} "
            f"{row['structured'] * 1e3:>14.1f}"
        )
    print(f"current DENSE_MAX_NODES = {DENSE_MAX_NODES}")


def print_table(results: list[dict]) -> None:
    header = f"{'task':<7}{'map':>9}  {'kind':<12}{'sigma / rows':>13}{'seconds':>10}  memory"
    print(header)
    print("-" * (len(header) + 40))
    for r in results:
        if r["task"] == "smooth":
            print(
                f"{'smooth':<7}{r['map']:>9}  {r['kind']:<12}{r['sigma']:>13.1f}"
                f"{r['seconds']:>10.2f}  peak traced {r['peak_mib']:.0f} MiB (values "
                f"{r['values_mib']:.0f} MiB; a dense H: {r['dense_h_mib']:.0f} MiB)"
            )
            continue
        for i, epoch in enumerate(r["epochs"]):
            line = (
                f"{'train':<7}{r['map']:>9}  {r['kind']:<12}{r['rows']:>13}"
                f"{epoch['seconds']:>10.2f}  epoch {i + 1}, sigma {epoch['sigma']:.1f}"
            )
            print(line + (f", peak RSS {r['peak_rss_mib']:.0f} MiB" if i == 0 else ""))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rng = np.random.default_rng(0)
    if args.sweep:
        print_sweep(sweep(rng))
        return
    smooth_sides, train_side = ((40, 48), 32) if args.quick else ((128, 256), 256)
    rows = args.rows if args.rows is not None else (3000 if args.quick else None)
    require_data(args.data)  # before the long smooth runs
    if rows is not None:
        print(f"note: training on the first {rows} MNIST rows only (--rows), not all 60000")
    results = []
    for side in smooth_sides:
        for kind in NEIGHBORHOODS:
            results.append(time_smooth(side, kind, rng))
            print(f"  smooth {side}x{side} {kind}: {results[-1]['seconds']:.2f} s", flush=True)
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
        results.append(pool.submit(train, args.data, train_side, rows, args.epochs).result())
    print_table(results)
    report = {
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_at_end": os.getloadavg(),
            "python": platform.python_version(),
            "numpy": np.__version__,
        },
        "dense_max_nodes": DENSE_MAX_NODES,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
