"""The whole FlowSOM pipeline on 10^8 cells x 30 markers, out of core, on a 2-worker LocalCluster.

Writes a synthetic cytometry store first (not timed): ``--cells`` raw intensities (float32,
zarr, chunks of ``--chunk`` cells) of 30 markers from 20 planted populations (some of them
rare: 0.5-2% of the cells), spread over ``--samples`` samples (patients), with each cell's
population and sample in two more zarr arrays.  Then, on ``LocalCluster(2 workers x 1
thread, --worker-memory each)``, whose memory is a third of the data's, it times every step
of the pipeline that a cytometrist runs, all on every cell:

1. ``FlowSOM(10, 10, n_clusters=20, seed=42, cofactor=5).fit(cells)``: the arcsinh transform,
   10 batch epochs, the spanning tree, the consensus metaclusters and the outlier thresholds;
2. ``summarise(model.map(cells))``: per node, metacluster, sample x node and sample x
   metacluster, counts, percentages and per-marker medians (out of core, five refinement
   passes), written as parquet;
3. the adjusted Rand index of the metaclusters against the planted populations, from a
   contingency table counted chunk by chunk.

It reports the wall time of each step, cells per second, the peak resident memory of every
worker (sampled every 50 ms) against its limit, and of this client process.

    python benchmarks/cytometry_scale.py [--quick] [--cells N] [--worker-memory BYTES]
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
from _common import PeakMemory, Table, finish, parser, peak_rss_mib, start_state

MARKERS = 30
POPULATIONS = 20
MIB = 2**20


def population_model(seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean arcsinh level and spread of each population per marker, and the population shares.

    Every population is high (3-5 in arcsinh units, cofactor 5) on a few markers and low (0-1)
    on the rest, as lineage markers are; four populations are rare (0.5-2% of the cells).
    """
    rng = np.random.default_rng(seed)
    levels = rng.uniform(0.0, 1.0, (POPULATIONS, MARKERS))
    for population in range(POPULATIONS):
        high = rng.choice(MARKERS, size=5, replace=False)
        levels[population, high] = rng.uniform(3.0, 5.0, 5)
    spreads = rng.uniform(0.15, 0.35, (POPULATIONS, MARKERS))
    shares = np.concatenate([[0.005, 0.01, 0.015, 0.02], np.full(POPULATIONS - 4, 1.0)])
    shares[4:] = (1.0 - shares[:4].sum()) / (POPULATIONS - 4)
    return levels, spreads, shares


def _block(block_id: int, rows: int, n_samples: int, total: int, seed: int) -> tuple:
    levels, spreads, shares = population_model()
    rng = np.random.default_rng([seed, block_id])
    population = rng.choice(POPULATIONS, size=rows, p=shares).astype(np.int8)
    transformed = levels[population] + spreads[population] * rng.standard_normal((rows, MARKERS))
    # Raw intensities whose arcsinh(x / 5) is the planted level: what an FCS file holds.
    raw = (5.0 * np.sinh(transformed)).astype(np.float32)
    first = block_id * rows
    sample = ((np.arange(first, first + rows) * n_samples) // total).astype(np.int16)
    return raw, population, sample


def write_store(folder: Path, n_cells: int, chunk: int, n_samples: int, seed: int = 0) -> None:
    """Raw intensities, populations and samples as three zarr arrays, one chunk at a time."""
    import zarr

    shape = {"cells": (n_cells, MARKERS), "population": (n_cells,), "sample": (n_cells,)}
    dtypes = {"cells": "f4", "population": "i1", "sample": "i2"}
    arrays = {
        name: zarr.create_array(
            str(folder / f"{name}.zarr"),
            shape=shape[name],
            chunks=(chunk,) + shape[name][1:],
            dtype=dtypes[name],
            compressors=None,
        )
        for name in shape
    }
    for block_id, start in enumerate(range(0, n_cells, chunk)):
        rows = min(chunk, n_cells - start)
        raw, population, sample = _block(block_id, rows, n_samples, n_cells, seed)
        arrays["cells"][start : start + rows] = raw
        arrays["population"][start : start + rows] = population
        arrays["sample"][start : start + rows] = sample


def adjusted_rand_index(contingency: np.ndarray) -> float:
    """Hubert & Arabie's ARI from a contingency table (rows: truth, columns: clusters)."""

    def pairs(x: np.ndarray) -> float:
        return float((x * (x - 1) / 2).sum())

    total = pairs(np.array([contingency.sum()]))
    rows, columns = pairs(contingency.sum(axis=1)), pairs(contingency.sum(axis=0))
    expected = rows * columns / total
    return (pairs(contingency) - expected) / ((rows + columns) / 2 - expected)


def contingency(truth: da.Array, found: da.Array, n_found: int) -> np.ndarray:
    """Cells of each planted population in each metacluster, counted chunk by chunk."""
    from dasksom.cytometry import grouped_counts

    pairs = truth.astype(np.int64) * n_found + found.rechunk(truth.chunks)
    return grouped_counts(pairs, POPULATIONS * n_found).reshape(POPULATIONS, n_found)


def run(folder: Path, n_samples: int, worker_memory: int) -> tuple[dict, dict]:
    """The pipeline on the cluster; returns the timings and the memory peaks (MiB)."""
    from distributed import Client, LocalCluster

    from dasksom.cytometry import FlowSOM, read_array, summarise

    names = [f"CD{i}" for i in range(MARKERS)]
    timings: dict[str, float] = {}
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit=worker_memory, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)
        cells = read_array(
            str(folder / "cells.zarr"),
            names,
            sample=da.from_zarr(str(folder / "sample.zarr")),
            samples=[f"patient-{i:02d}" for i in range(n_samples)],
        )
        with PeakMemory(lambda: pids.values()) as memory:
            started = time.perf_counter()
            model = FlowSOM(10, 10, n_clusters=POPULATIONS, seed=42, cofactor=5.0).fit(cells)
            timings["fit"] = time.perf_counter() - started
            started = time.perf_counter()
            summary = summarise(model.map(cells))
            timings["summarise"] = time.perf_counter() - started
            started = time.perf_counter()
            summary.write_parquet(folder / "tables")
            timings["write_parquet"] = time.perf_counter() - started
            started = time.perf_counter()
            table = contingency(
                da.from_zarr(str(folder / "population.zarr")),
                model.map(cells).metacluster,
                POPULATIONS,
            )
            timings["ari"] = time.perf_counter() - started
    epochs = [entry["seconds"] for entry in model.som_.history_]
    details = {
        "timings": timings,
        "epoch_seconds": epochs,
        "ari": adjusted_rand_index(table),
        "sample_node_rows": len(summary.sample_nodes),
        "worker_peaks_mib": sorted(memory.peaks_mib().values()),
    }
    return details, {"client": peak_rss_mib()}


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--cells", type=int, default=100_000_000)
    arguments.add_argument("--chunk", type=int, default=1_000_000)
    arguments.add_argument("--samples", type=int, default=20)
    arguments.add_argument("--worker-memory", type=int, default=2_000_000_000)
    options = arguments.parse_args()
    start = start_state()
    n_cells = 1_000_000 if options.quick else options.cells
    chunk = min(options.chunk, n_cells)
    with tempfile.TemporaryDirectory(dir=Path(__file__).parent) as name:
        folder = Path(name)
        started = time.perf_counter()
        write_store(folder, n_cells, chunk, options.samples)
        written = time.perf_counter() - started
        details, client = run(folder, options.samples, options.worker_memory)
    data_bytes = n_cells * MARKERS * 4
    total = sum(details["timings"].values()) - details["timings"]["ari"]
    table = Table(
        f"FlowSOM pipeline on {n_cells:,} cells x {MARKERS} markers (float32 zarr, "
        f"{data_bytes / 1e9:.1f} GB, {options.samples} samples), LocalCluster 2 x 1 thread, "
        f"{options.worker_memory / 1e9:.1f} GB per worker",
        ["measurement", "value"],
    )
    for step, seconds in details["timings"].items():
        table.add(f"{step} (s)", seconds)
    table.add("whole pipeline: fit + summarise + parquet (s)", total)
    table.add("cells per second, whole pipeline", n_cells / total)
    table.add(
        "cell-epochs per second in training (median epoch)",
        n_cells / np.median(details["epoch_seconds"]),
    )
    table.add(
        "worker peak RSS (MiB), each", " / ".join(f"{p:.0f}" for p in details["worker_peaks_mib"])
    )
    table.add("worker memory limit (MiB)", options.worker_memory / MIB)
    table.add("client peak RSS (MiB)", client["client"])
    table.add("ARI of the 20 metaclusters vs the planted populations", details["ari"])
    table.add("sample x node table rows", details["sample_node_rows"])
    table.notes += [
        f"writing the store (not timed): {written:.0f} s",
        "fit: arcsinh, sample init, 10 epochs, spanning tree, consensus metaclusters, outlier "
        "thresholds (one mapping pass); summarise: counts and medians (min/max + 5 histogram "
        "passes) for all four groupings at once",
        f"data / cluster memory = {data_bytes / (2 * options.worker_memory):.1f}",
    ]
    table.details.update(details)
    finish("cytometry_scale", table, options.quick, start)


if __name__ == "__main__":
    main()
