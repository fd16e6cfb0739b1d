"""The one prepared GPU check's benchmark: dasksom on CuPy chunks against the device's own product.

Run by ``benchmarks/run_gpu.sh`` on a GPU machine (CuPy, numpy, and the dask wheels that
``fetch_gpu_wheels.sh`` carried).  Measures, each in this one run:

* the kernel warm-up (``dasksom.training.gpu.warm_up``) on an empty CuPy kernel cache, apart
  from epochs;
* the bare product ``X @ W.T`` of the MNIST shapes at each precision (exact float32, tf32,
  bfloat16, float16 through ``dasksom.core.precision``), timed with CUDA events;
* the MNIST tutorial (60,000 x 784, 50x50 hexagonal, PBC, cosine, 10 epochs) on CuPy chunks:
  first epoch after warm-up, median later epoch and its ratio to the bare product, 10 epochs;
* the same tutorial trained at each narrow precision: median epoch over that precision's bare
  product, and the map's QE and TE (exact products) over the float32 map's;
* the cold first epoch, in a child process with its own empty kernel cache and no warm-up;
* a 10^8-row x 50-feature run stored as float16 and searched with float16 products on a
  32x32 map (fewer rows if they do not fit), its 10 epochs on 10^9 rows *projected* linearly
  from the rows measured;
* two workers on the one GPU against one (a LocalCluster), and a LocalCUDACluster, if present.

A piece that is missing (dask-cuda, MNIST, time) gives a row saying so, not a failure.  The table
is printed and written, naming the GPU, to ``benchmarks/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _common import BENCH_DIR, RESULTS_DIR, Table, machine_info, mnist_path, parser

TUTORIAL = {"topology": "hexagonal", "pbc": True, "metric": "cosine", "random_state": 32}
MNIST_SHAPE = (60000, 784)
LARGE = {"rows": 10**8, "features": 50, "side": 32, "epochs": 2, "target_rows": 10**9}
COLUMNS = ["measurement", "value", "unit", "x product", "target", "note"]


class Budget:
    """Seconds left of the benchmark's allowance; a section that would overrun is skipped."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def allows(self, seconds: float) -> bool:
        return time.monotonic() + seconds < self.deadline


def import_status() -> dict[str, str]:
    """Version, or why not, of every module the benchmark uses."""
    found = {}
    for name in ("numpy", "cupy", "dask", "distributed", "zarr", "dask_cuda", "rmm", "dasksom"):
        try:
            found[name] = getattr(importlib.import_module(name), "__version__", "present")
        except Exception as error:  # ImportError, or a library that fails to load
            found[name] = f"absent ({type(error).__name__}: {error})"
    return found


def load_data() -> tuple[np.ndarray, str]:
    """MNIST's 60,000 x 784 training images in [0, 1], or random data of that shape."""
    path = mnist_path()
    if path.is_file():
        with np.load(path) as archive:
            x = archive["x_train"].reshape(len(archive["x_train"]), -1)
        return x.astype(np.float32) / np.float32(255), f"MNIST ({path})"
    rng = np.random.default_rng(0)
    x = rng.random(MNIST_SHAPE, dtype=np.float32) * (rng.random(MNIST_SHAPE) < 0.2)
    return x.astype(np.float32), f"synthetic {MNIST_SHAPE} (MNIST not found at {path})"


def device_name(cupy) -> str:
    properties = cupy.cuda.runtime.getDeviceProperties(0)
    name = properties["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def product_seconds(
    cupy, x: np.ndarray, n_nodes: int, precision: str = "exact", repeats: int = 10
) -> float:
    """Median seconds of ``X @ W.T`` on the device at ``precision`` (operands already in its
    format), with CUDA events, after warm-up."""
    from dasksom.core.precision import get_precision

    chosen = get_precision(precision)
    weights_t = np.random.default_rng(1).random((x.shape[1], n_nodes), np.float32)
    device_x = chosen.operand(cupy.asarray(x))
    device_w = chosen.operand(cupy.asarray(weights_t))
    for _ in range(3):
        chosen.matmul(device_x, device_w)
    times = []
    for _ in range(repeats):
        start, stop = cupy.cuda.Event(), cupy.cuda.Event()
        start.record()
        chosen.matmul(device_x, device_w)
        stop.record()
        stop.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, stop) / 1000)
    return float(np.median(times))


def fit_epochs(data, side: int, epochs: int, **settings) -> tuple[np.ndarray, list[float]]:
    """Train on ``data`` (dask array, persisted); the weights and each epoch's seconds."""
    som = fit_som(data, side, epochs, **settings)
    return som.weights_, [entry["seconds"] for entry in som.history_]


def fit_som(data, side: int, epochs: int, **settings):
    from dasksom import SOM

    return SOM(side, side, epochs=epochs, persist=False, **settings).fit(data)


def device_data(x: np.ndarray, chunk_rows: int):
    import dask.array as da

    from dasksom.training.gpu import to_device

    return to_device(da.from_array(x, chunks=(chunk_rows, x.shape[1]))).persist()


def tutorial_rows(table: Table, x: np.ndarray, options, product: float) -> None:
    """Warm-up, then the MNIST tutorial's 10 epochs on CuPy chunks (threaded scheduler)."""
    from dasksom.training.gpu import warm_up

    warm = warm_up(x.shape[1], 2500, TUTORIAL["metric"])
    table.add("warm-up (compile kernels, empty cache)", warm, "s", None, None, "apart from epochs")
    data = device_data(x, options.chunk_rows)
    som = fit_som(data, 50, 10, init="pca", **TUTORIAL)
    seconds = [entry["seconds"] for entry in som.history_]
    table.details["exact_quality"] = som.quality(data)
    later = float(np.median(seconds[1:]))
    table.add("MNIST epoch 1 after warm-up", seconds[0], "s", seconds[0] / product, None, "")
    table.add("MNIST median epoch 2-10", later, "s", later / product, 1.3, "float32")
    table.add("MNIST 10 epochs (sum of epochs)", sum(seconds), "s", None, 0.3, "after warm-up")
    table.details["mnist_epoch_seconds"] = seconds


def precision_rows(table: Table, cupy, x: np.ndarray, options) -> None:
    """The tutorial at each narrow precision: epoch over that precision's product, quality."""
    from dasksom.training.gpu import warm_up

    data = device_data(x, options.chunk_rows)
    exact = table.details.get("exact_quality")
    for precision in ("tf32", "bfloat16", "float16"):
        warm_up(x.shape[1], 2500, TUTORIAL["metric"], precision=precision)
        product = product_seconds(cupy, x, 2500, precision)
        table.add(f"bare product, {precision}", product, "s", 1.0, None, "")
        epochs = options.precision_epochs
        som = fit_som(data, 50, epochs, init="pca", precision=precision, **TUTORIAL)
        seconds = [entry["seconds"] for entry in som.history_]
        later = float(np.median(seconds[1:]))
        target = 1.3 if precision == "bfloat16" else None
        table.add(f"MNIST median epoch, {precision}", later, "s", later / product, target, "")
        quality = som.quality(data)
        if exact and epochs == 10:
            qe = quality["quantization_error"] / exact["quantization_error"]
            te = quality["topographic_error"] / exact["topographic_error"]
            table.add(f"{precision} map QE / float32 map QE", qe, "", None, None, "exact scoring")
            table.add(f"{precision} map TE / float32 map TE", te, "", None, None, "exact scoring")
        table.details[f"quality_{precision}"] = quality
        table.details[f"epoch_seconds_{precision}"] = seconds


def cold_rows(table: Table, options, accelerators: str | None = None) -> None:
    """The first epoch in a fresh process whose CuPy kernel cache is empty, no warm-up;
    with ``accelerators`` as ``CUPY_ACCELERATORS`` (``""``: CuPy's plain reductions, which
    compile without CUB's headers)."""
    label = "" if accelerators is None else f", CUPY_ACCELERATORS={accelerators!r}"
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, CUPY_CACHE_DIR=cache)
        if accelerators is not None:
            env["CUPY_ACCELERATORS"] = accelerators
        command = [
            sys.executable,
            __file__,
            "--cold-child",
            "--chunk-rows",
            str(options.chunk_rows),
        ]
        started = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - started
    if done.returncode != 0:
        failure = f"child failed: {done.stderr[-300:]}"
        table.add(f"cold first epoch{label}", None, "s", None, 15, failure)
        return
    first = json.loads(done.stdout.strip().splitlines()[-1])["first_epoch_seconds"]
    table.add(f"cold first epoch (empty kernel cache){label}", first, "s", None, 15, "no warm-up")
    table.add(f"cold process, start to end{label}", wall, "s", None, None, "imports, data, 1 epoch")


def cold_child(options) -> None:
    x, _ = load_data()
    _, seconds = fit_epochs(device_data(x, options.chunk_rows), 50, 1, init="pca", **TUTORIAL)
    print(json.dumps({"first_epoch_seconds": seconds[0]}))


def large_rows(table: Table, cupy, options) -> None:
    """fp16 rows x 50 on the GPU, float16 products, a 32x32 map; 10 epochs on 10^9 rows
    projected linearly."""
    import dask.array as da

    rows, features = options.large_rows, LARGE["features"]
    free, _ = cupy.cuda.runtime.memGetInfo()
    rows = int(min(rows, free * 0.5 // (features * 2)))  # the data in half the free memory
    chunk = min(rows, 5_000_000)

    def make(block_info=None):
        location = block_info[None]["chunk-location"][0]
        shape = block_info[None]["chunk-shape"]
        rng = cupy.random.default_rng(location)
        return rng.standard_normal(shape, dtype=cupy.float32).astype(cupy.float16)

    meta = cupy.empty((0, 0), dtype=cupy.float16)
    data = da.map_blocks(
        make,
        chunks=da.core.normalize_chunks((chunk, features), (rows, features)),
        dtype=np.float16,
        meta=meta,
    )
    data = data.persist()
    _, seconds = fit_epochs(
        data, LARGE["side"], LARGE["epochs"], init="random", random_state=0, precision="float16"
    )
    epoch = float(np.median(seconds[1:] if len(seconds) > 1 else seconds))
    projected = epoch * 10 * LARGE["target_rows"] / rows
    table.add(f"fp16 {rows:.3g} x 50, 32x32: epoch (measured)", epoch, "s", None, None, "")
    table.add("10 epochs on 1e9 rows (PROJECTED, linear)", projected, "s", None, 10, "projected")
    table.details["large"] = {"rows": rows, "epoch_seconds": seconds}


def cluster_rows(table: Table, x: np.ndarray, options) -> None:
    """Two LocalCluster workers on the one GPU against one; a LocalCUDACluster if present."""
    from distributed import Client, LocalCluster

    from dasksom.training.gpu import warm_up

    os.environ["CUDA_VISIBLE_DEVICES"] = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    maps = {}
    for workers in (1, 2):
        settings = {"n_workers": workers, "threads_per_worker": 1, "dashboard_address": None}
        with LocalCluster(host="127.0.0.1", **settings) as cluster, Client(cluster) as client:
            client.run(warm_up, x.shape[1], 2500, TUTORIAL["metric"])
            maps[workers], seconds = fit_epochs(
                device_data(x, options.chunk_rows), 50, 3, init="pca", **TUTORIAL
            )
        median = float(np.median(seconds[1:]))
        table.add(f"{workers} worker(s) on one GPU: median epoch", median, "s", None, None, "")
    gap = float(np.abs(maps[2] - maps[1]).max())
    table.add("2 workers vs 1: max |weight difference|", gap, "", None, 1e-4, "3 epochs")
    cuda_cluster_row(table, x, options)


def cuda_cluster_row(table: Table, x: np.ndarray, options) -> None:
    from dasksom.training.gpu import local_cuda_cluster, warm_up

    try:
        with local_cuda_cluster(n_gpus=1) as client:
            client.run(warm_up, x.shape[1], 2500, TUTORIAL["metric"])
            _, seconds = fit_epochs(
                device_data(x, options.chunk_rows), 50, 3, init="pca", **TUTORIAL
            )
    except Exception as error:  # no dask-cuda, RMM or cuda-core: a row that says so
        table.add("LocalCUDACluster, 1 GPU", None, "s", None, None, f"skipped: {error}"[:200])
        return
    median = float(np.median(seconds[1:]))
    table.add("LocalCUDACluster, 1 GPU: median epoch", median, "s", None, None, "RMM pool auto")


def section(table: Table, budget: Budget, name: str, seconds: float, run: Callable[[], object]):
    """Run one section if the budget allows ``seconds`` more; a skipped or failed one is a row."""
    if not budget.allows(seconds):
        table.add(name, None, "", None, None, f"skipped: under {seconds:.0f} s of budget left")
        return None
    try:
        return run()
    except Exception as error:
        table.add(name, None, "", None, None, f"failed: {type(error).__name__}: {error}"[:300])
        return None


def write_results(table: Table, details: dict) -> Path:
    """Print the table; write it with the GPU, versions and machine to results/gpu.json."""
    print(table.render(), flush=True)
    record = {
        "name": "gpu",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "title": table.title,
        "columns": table.columns,
        "rows": table.rows,
        "notes": table.notes,
        "details": {**details, **table.details},
        "markdown": table.markdown(),
    }
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / "gpu.json"
    path.write_text(json.dumps(record, indent=2, default=str) + "\n")
    print(f"\nwritten to {path.relative_to(BENCH_DIR.parent)}")
    return path


def options_parser():
    arguments = parser(__doc__)
    arguments.add_argument("--dry-run", action="store_true", help="check imports, then exit")
    arguments.add_argument("--budget", type=float, default=330, help="seconds for all sections")
    arguments.add_argument("--chunk-rows", type=int, default=15000, help="rows per CuPy chunk")
    arguments.add_argument("--large-rows", type=int, default=LARGE["rows"], help="fp16 run rows")
    arguments.add_argument(
        "--precision-epochs", type=int, default=10, help="epochs of each narrow-precision map"
    )
    arguments.add_argument("--cold-child", action="store_true", help=argparse.SUPPRESS)
    return arguments


def run_sections(table: Table, cupy, options, budget: Budget) -> None:
    x, source = load_data()
    if options.quick:
        x = x[:6000]
    table.notes.append(f"data: {source}; {len(x)} rows")
    product = product_seconds(cupy, x, 2500)
    table.add("bare product X @ W.T float32 (CUDA events)", product, "s", 1.0, None, "")
    section(table, budget, "MNIST tutorial", 120, lambda: tutorial_rows(table, x, options, product))
    section(table, budget, "precisions", 90, lambda: precision_rows(table, cupy, x, options))
    section(table, budget, "cold first epoch", 150, lambda: cold_rows(table, options))
    section(table, budget, "large fp16 run", 90, lambda: large_rows(table, cupy, options))
    section(table, budget, "clusters", 60, lambda: cluster_rows(table, x, options))
    section(table, budget, "cold, plain reductions", 150, lambda: cold_rows(table, options, ""))


def main() -> None:
    options = options_parser().parse_args()
    if options.cold_child:
        cold_child(options)
        return
    status = import_status()
    if options.dry_run:
        print(json.dumps(status, indent=2))
        print(f"MNIST: {mnist_path()} ({'found' if mnist_path().is_file() else 'absent'})")
        print(f"budget {options.budget} s; chunk rows {options.chunk_rows}; dry run: exiting")
        return
    budget = Budget(options.budget)
    from dasksom.backends.cuda import require_gpu

    try:
        cupy = require_gpu()
    except RuntimeError as error:
        raise SystemExit(f"benchmarks/gpu.py needs a GPU: {error}") from error
    name = device_name(cupy)
    table = Table(f"dasksom on one {name}: CuPy chunks against the device's own product", COLUMNS)
    table.notes.append("every figure measured in this run, except rows marked PROJECTED")
    run_sections(table, cupy, options, budget)
    write_results(table, {"gpu": name, "versions": status})


if __name__ == "__main__":
    main()
