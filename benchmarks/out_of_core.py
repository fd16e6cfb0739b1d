"""Out of core: train on a zarr array 4x larger than the whole cluster's memory limit.

Writes a Gaussian mixture (float32, uncompressed zarr, one chunk in memory at a time) of at
least 4x the total ``memory_limit`` of a ``LocalCluster`` (2 one-thread workers x 400 MiB) under
/tmp, trains ``dasksom.SOM(persist=False)`` on it, streaming every chunk from disk each epoch,
and then the same training on a subset that fits in memory (``persist=True``) on the same
cluster.  While each trains, a client thread samples every worker process's resident memory.
Reported: median epoch time (epoch 2 on), rows per second, each worker's peak RSS against its
limit, pause and spill events (worker logs and spill metrics), worker restarts.  Targets: both
train to the end, no worker passes its memory limit, streaming throughput >= 70% of in-memory.

    python benchmarks/out_of_core.py [--quick] [--keep]
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
from _common import (
    MIB,
    PeakMemory,
    Table,
    finish,
    local_cluster,
    median_epoch_seconds,
    parser,
    start_state,
)

N_WORKERS = 2
MEMORY_LIMIT_MIB = 400
FEATURES = 100
ROWS_PER_CHUNK = 50_000
MIXTURE_COMPONENTS = 16
DATA_DIR = Path(tempfile.gettempdir()) / "dasksom-out-of-core"
THROUGHPUT_TARGET = 0.7
# Worker log lines (WARNING and up) that mark memory pressure; spilling itself logs at DEBUG
# level, so the spill buffer's own disk-write metrics count it instead.
PAUSE = re.compile(r"Pausing worker")
HIGH_MEMORY = re.compile(r"Unmanaged memory use is high")


def write_mixture(path: Path, n_rows: int, seed: int = 0) -> None:
    """A Gaussian mixture written chunk by chunk, so that memory holds one chunk at most."""
    import zarr

    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 4.0, (MIXTURE_COMPONENTS, FEATURES)).astype(np.float32)
    spreads = rng.uniform(0.5, 1.5, MIXTURE_COMPONENTS).astype(np.float32)
    # Uncompressed: mixture samples do not compress, a codec would only add CPU time.
    array = zarr.create_array(
        store=str(path),
        shape=(n_rows, FEATURES),
        chunks=(ROWS_PER_CHUNK, FEATURES),
        dtype="float32",
        compressors=None,
        overwrite=True,
    )
    for start in range(0, n_rows, ROWS_PER_CHUNK):
        rows = min(ROWS_PER_CHUNK, n_rows - start)
        component = rng.integers(MIXTURE_COMPONENTS, size=rows)
        noise = rng.standard_normal((rows, FEATURES), dtype=np.float32)
        array[start : start + rows] = centers[component] + spreads[component, None] * noise


def open_mixture(path: Path, n_rows: int):
    """The mixture as a dask array, written first unless a complete one is already there."""
    import dask.array as da

    if not (path.exists() and da.from_zarr(str(path)).shape == (n_rows, FEATURES)):
        write_mixture(path, n_rows)
    return da.from_zarr(str(path))


def spilled(dask_worker) -> tuple[float, float]:
    """How many times and how many bytes the worker has written to its spill disk so far."""
    metrics = getattr(dask_worker.data, "cumulative_metrics", {})
    return metrics.get(("disk-write", "count"), 0.0), metrics.get(("disk-write", "bytes"), 0.0)


def worker_log(client) -> list[str]:
    """Every worker's log messages so far (from WARNING up), oldest first per worker."""
    logs = client.get_worker_logs()
    return [message for address in sorted(logs) for _, message in reversed(logs[address])]


def train(client, data, side: int, epochs: int, persist: bool, init: np.ndarray) -> dict:
    """Fit once, sampling worker memory; returns timings, peaks and memory events."""
    from dasksom import SOM

    pids = client.run(os.getpid)
    logged_before = len(worker_log(client))
    spilled_before = np.sum(list(client.run(spilled).values()), axis=0)
    som = SOM(side, side, topology="hexagonal", init=init, epochs=epochs, persist=persist)
    with PeakMemory(lambda: pids.values()) as memory:
        som.fit(data)
    logs = worker_log(client)[logged_before:]
    spills, spilled_bytes = np.sum(list(client.run(spilled).values()), axis=0) - spilled_before
    seconds = median_epoch_seconds(som.history_)
    return {
        "epochs_done": som.n_iter_,
        "epoch_seconds": seconds,
        "rows_per_second": data.shape[0] / seconds,
        "peaks_mib": sorted(memory.peaks_mib().values()),
        "pauses": sum(bool(PAUSE.search(m)) for m in logs),
        "high_memory_warnings": sum(bool(HIGH_MEMORY.search(m)) for m in logs),
        "spills": int(spills),
        "spilled_mib": spilled_bytes / MIB,
        "worker_log": logs,
        "restarted": client.run(os.getpid) != pids,
        "history": som.history_,
    }


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--keep", action="store_true", help="keep the zarr data in /tmp")
    arguments.add_argument(
        "--memory-limit", type=int, default=MEMORY_LIMIT_MIB, help="MiB per worker"
    )
    options = arguments.parse_args()
    start = start_state()
    memory_limit = options.memory_limit * MIB
    cluster_bytes = N_WORKERS * memory_limit
    # Full run: at least 4x the cluster's memory limit, in whole chunks.
    n_rows, subset_rows, side, epochs = (
        (200_000, 50_000, 10, 2)
        if options.quick
        else (
            -(-4 * cluster_bytes // (FEATURES * 4 * ROWS_PER_CHUNK)) * ROWS_PER_CHUNK,
            400_000,
            20,
            3,
        )
    )
    DATA_DIR.mkdir(exist_ok=True)
    path = DATA_DIR / f"mixture-{n_rows}x{FEATURES}.zarr"
    data = open_mixture(path, n_rows)
    init = np.asarray(data[: side * side * 4 : 4].compute(), dtype=np.float64)
    cluster, client = local_cluster(N_WORKERS, log_level=logging.WARNING, memory_limit=memory_limit)
    with cluster, client:
        streamed = train(client, data, side, epochs, False, init)
        in_memory = train(client, data[:subset_rows], side, epochs + 1, True, init)
    if not options.keep:
        shutil.rmtree(path)

    limit_mib = options.memory_limit
    table = Table(
        f"Out of core: Gaussian mixture x {FEATURES} float32 in zarr ({ROWS_PER_CHUNK}-row "
        f"chunks), {side}x{side} hexagonal map, LocalCluster {N_WORKERS} workers x 1 thread x "
        f"{limit_mib:.0f} MiB limit ({cluster_bytes / MIB:.0f} MiB in all)",
        [
            "run",
            "rows",
            "GiB",
            "epochs",
            "epoch s",
            "rows / s",
            "vs in-memory",
            "worker peaks MiB",
            "pauses",
            "spills (MiB)",
            "high-memory warnings",
            "restarts",
        ],
    )
    for name, rows, result in (
        ("streamed, persist=False", n_rows, streamed),
        ("in memory, persist=True", subset_rows, in_memory),
    ):
        table.add(
            name,
            rows,
            rows * FEATURES * 4 / 2**30,
            result["epochs_done"],
            result["epoch_seconds"],
            result["rows_per_second"],
            result["rows_per_second"] / in_memory["rows_per_second"],
            " / ".join(f"{peak:.0f}" for peak in result["peaks_mib"]),
            result["pauses"],
            f"{result['spills']} ({result['spilled_mib']:.0f})",
            result["high_memory_warnings"],
            "yes" if result["restarted"] else "no",
        )
    ratio = streamed["rows_per_second"] / in_memory["rows_per_second"]
    highest = max(streamed["peaks_mib"] + in_memory["peaks_mib"])
    finished = streamed["epochs_done"] == epochs and not streamed["restarted"]
    table.notes += [
        f"data / cluster memory limit: {n_rows * FEATURES * 4 / cluster_bytes:.1f}x",
        f"target trains to the end: {'met' if finished else 'MISSED'}",
        f"target no worker over its limit: highest peak {highest:.0f} of {limit_mib:.0f} MiB: "
        f"{'met' if highest < limit_mib else 'MISSED'}",
        f"target streaming >= {THROUGHPUT_TARGET:.0%} of in-memory throughput: {ratio:.0%}: "
        f"{'met' if ratio >= THROUGHPUT_TARGET else 'MISSED'}",
        "worker peaks: resident memory of each worker process, sampled every 50 ms by psutil; "
        "spills: the workers' spill-to-disk writes during the run (distributed spills managed "
        "data once a worker's process memory passes 70% of its limit, pauses it at 80%)",
    ]
    table.details = {"streamed": streamed, "in_memory": in_memory}
    finish("out_of_core", table, options.quick, start)


if __name__ == "__main__":
    main()
