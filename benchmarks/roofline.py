"""Roofline: a training epoch against the bare matrix product it is built on.

One batch epoch on MNIST (60,000 x 784, float32 in [0, 1]) with a 50x50 hexagonal map costs,
by brute force, at least one ``X @ W.T`` product (60000 x 784 by 784 x 2500).  This script times
that product alone (numpy, every BLAS thread, median of several runs) and the median epoch of
``dasksom.SOM.fit`` (PCA start, 10 epochs, epoch 2 onwards) with each BMU search
(``bmu_search="brute"``, ``"pruned"``, ``"auto"``) on the local threaded scheduler and on a
``LocalCluster(n_workers=2, threads_per_worker=1)``, and prints their ratios.  Targets: brute
force at most 1.3 threaded and 1.5 on the LocalCluster; the pruned search at most 0.35 of the
product threaded, and its LocalCluster epoch at most 1.2 times its threaded one.

Per epoch it also counts the candidates per row of the pruned search (the nodes whose bound
lets them win; median and 99th percentile over all rows) on the weights each epoch started from,
and the search ``"auto"`` ran.

It also profiles one epoch: the pieces of ``dasksom.core.sums.partial_sums`` on one chunk of the
size the engine cuts (one BLAS thread, as inside the engine), scaled to the epoch (chunks per
thread), and the client-side weight update.  When ``OPENBLAS_CORETYPE`` or ``OPENBLAS_L2_SIZE``
is set, the product is timed again in a child process with both unset.

    python benchmarks/roofline.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from _common import (
    Table,
    blas_info,
    finish,
    load_mnist,
    local_cluster,
    median_epoch_seconds,
    median_seconds,
    min_seconds,
    parser,
    run_child,
    start_state,
)
from threadpoolctl import threadpool_limits

from dasksom.core import metrics, missing, search
from dasksom.core import sums as chunk_sums

BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
TARGETS = {"threaded": 1.3, "LocalCluster": 1.5}
PRUNED_TARGET = 0.35
CLUSTER_OVER_THREADED = 1.2
SEARCHES = ("brute", "pruned", "auto")


def product_seconds(x: np.ndarray, n_nodes: int, repeats: int) -> float:
    """Median time of ``x @ W.T`` for random float32 weights, all BLAS threads."""
    weights = np.random.default_rng(0).random((n_nodes, x.shape[1]), dtype=np.float32)
    x @ weights[:8].T  # load the BLAS kernels before timing
    return median_seconds(lambda: x @ weights.T, repeats)


def product_without_blas_env(rows: int, n_nodes: int, repeats: int) -> dict:
    """The same product in a child process whose environment lacks both OpenBLAS variables."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_ENV}
    command = [sys.executable, __file__, "--product-only", str(rows), str(n_nodes), str(repeats)]
    child = run_child(command, timeout=600, env=env)
    report = child.last_json()
    if report is None:
        raise RuntimeError(f"product child failed:\n{child.stderr[-2000:]}")
    return report


def fit_history(
    x: np.ndarray, height: int, width: int, epochs: int, bmu_search: str = "brute"
) -> list[dict]:
    from dasksom import SOM

    som = SOM(height, width, topology="hexagonal", neighborhood="gaussian", metric="euclidean")
    som.set_params(init="pca", epochs=epochs, random_state=0, bmu_search=bmu_search)
    return som.fit(x).history_


def candidates_by_epoch(
    x: np.ndarray, height: int, width: int, epochs: int, whole_data_basis: bool = False
) -> list[dict]:
    """Candidates per row of the pruned search on the weights each epoch starts from, with the
    basis training takes (a sample's principal axes) or, with ``whole_data_basis``, those of
    all of ``x``."""
    from dasksom import Lattice
    from dasksom.core.bmu_search import n_components_for
    from dasksom.core.initialization import initial_weights
    from dasksom.core.pruned import PrunedIndex, principal_basis, pruned_best_matching_units
    from dasksom.core.schedule import radius_schedule
    from dasksom.io.sources import as_dask_array
    from dasksom.training import engine
    from dasksom.training.search_plans import search_sample

    lattice = Lattice(height, width, "hexagonal")
    data = as_dask_array(x).persist()
    weights = initial_weights(data, lattice, "pca", np.random.default_rng(0))
    state = engine.TrainingState(
        weights, radius_schedule(height, width, epochs, None, "exponential")
    )
    starts = [weights]
    engine.train(
        data,
        lattice,
        state,
        metric="euclidean",
        neighborhood="gaussian",
        on_epoch_end=lambda s: starts.append(s.weights.copy()),
    )
    rows = x if whole_data_basis else search_sample(data)
    mean, basis = principal_basis(rows, n_components_for(x.shape[1]))
    counts = []
    for epoch, start in enumerate(starts[:epochs]):
        found = pruned_best_matching_units(x, PrunedIndex.build(start, basis, mean))
        counts.append(
            {
                "epoch": epoch + 1,
                "candidates median": float(np.median(found.candidates)),
                "candidates p99": float(np.percentile(found.candidates, 99)),
                "evaluated mean": float(found.evaluated.mean()),
            }
        )
    return counts


def epoch_sums_seconds(x: np.ndarray, weights: np.ndarray, repeats: int) -> float:
    """Median time of the engine's distributed part of an epoch, on the current scheduler."""
    from dasksom.io.sources import as_dask_array
    from dasksom.training import engine

    data = as_dask_array(x).persist()
    engine.epoch_sums(data, weights, "euclidean")  # warm-up: first task runs, imports
    return median_seconds(lambda: engine.epoch_sums(data, weights, "euclidean"), repeats)


def profile_chunk(x: np.ndarray, weights: np.ndarray, repeats: int) -> dict[str, float]:
    """Seconds of each piece of ``partial_sums`` on one chunk, with one BLAS thread."""

    prepared = metrics.PreparedWeights.build(weights, "euclidean", np, np.float32)
    step = prepared.metric.block_rows(prepared.n_nodes, x.shape[1])
    bmu = search.best_matching_units(x, prepared)
    distances = search.bmu_distances(x, prepared.weights, bmu).astype(np.float64)
    n_nodes = len(weights)
    pieces = {
        "finite check (epoch 0 only)": lambda: missing.find_nonfinite(x, 0),
        "float32 overflow scan": lambda: metrics.prepare(x, weights, "euclidean"),
        "prepare weights": lambda: metrics.PreparedWeights.build(
            weights, "euclidean", np, np.float32
        ),
        "product x @ W.T (row blocks)": lambda: [
            x[i : i + step] @ prepared.scoring for i in range(0, len(x), step)
        ],
        "BMU search (product + argmax)": lambda: search.best_matching_units(x, prepared),
        "BMU distances": lambda: search.bmu_distances(x, prepared.weights, bmu),
        "scatter sums S[k]": lambda: chunk_sums.sum_rows_by_index(x, bmu, n_nodes),
        "counts and distance sums": lambda: (
            np.bincount(bmu, minlength=n_nodes),
            np.bincount(bmu, weights=distances, minlength=n_nodes),
        ),
        "partial_sums, whole": lambda: chunk_sums.partial_sums(x, weights, "euclidean", 0, False),
    }
    # The fastest of the repeats: each piece is fixed work, and other load only slows it.
    with threadpool_limits(limits=1, user_api="blas"):
        return {name: min_seconds(run, repeats) for name, run in pieces.items()}


def profile_update(x: np.ndarray, weights: np.ndarray, height: int, width: int, repeats: int):
    """Seconds of the client-side update ``W = (H @ S) / (H @ n)`` and of a dense ``H``."""
    from dasksom import Lattice
    from dasksom.core.neighborhood import neighborhood_matrix
    from dasksom.training.engine import update_weights

    lattice = Lattice(height, width, "hexagonal")
    sums = chunk_sums.partial_sums(x, weights, "euclidean", 0, False)
    sigma = max(height, width) / 4
    return {
        "neighbourhood matrix H (dense)": min_seconds(
            lambda: neighborhood_matrix(lattice, sigma, "gaussian"), repeats
        ),
        "update W = (H @ S) / (H @ n), whole": min_seconds(
            lambda: update_weights(lattice, sums, weights, sigma, "gaussian"), repeats
        ),
    }


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--product-only", nargs=3, type=int, help=argparse.SUPPRESS)
    options = arguments.parse_args()
    if options.product_only:
        rows, n_nodes, repeats = options.product_only
        x = np.random.default_rng(1).random((rows, 784), dtype=np.float32)
        print(json.dumps({"seconds": product_seconds(x, n_nodes, repeats), "blas": blas_info()}))
        return

    start = start_state()
    rows, (height, width), epochs, repeats = (
        (6000, (20, 20), 3, 2) if options.quick else (60000, (50, 50), 10, 5)
    )
    n_nodes = height * width
    x, _ = load_mnist(rows)
    from dasksom.io.sources import row_chunk_size

    chunk_rows = row_chunk_size(len(x), x.shape[1], x.itemsize)
    n_chunks = -(-len(x) // chunk_rows)
    threads = os.cpu_count() or 1
    # Chunks run side by side, one per thread: an epoch pays each piece this many times over.
    waves = -(-n_chunks // threads)

    product = product_seconds(x, n_nodes, repeats)
    table = Table(
        f"Roofline: MNIST {len(x)} x {x.shape[1]} float32, {height}x{width} hexagonal map, "
        f"gaussian, euclidean, {epochs} epochs; {n_chunks} chunks of {chunk_rows} rows, "
        f"{threads} cores",
        ["measurement", "seconds", "x product", "target", "met"],
    )
    table.add("bare product X @ W.T (numpy, all BLAS threads)", product, 1.0, None, None)
    if any(name in os.environ for name in BLAS_ENV):
        bare = product_without_blas_env(len(x), n_nodes, repeats)
        kernel = ", ".join(str(b["architecture"]) for b in bare["blas"])
        table.add(
            f"bare product, {' and '.join(BLAS_ENV)} unset (kernel {kernel})",
            bare["seconds"],
            bare["seconds"] / product,
            None,
            None,
        )
        table.details["product_without_blas_env"] = bare

    weights = x[np.random.default_rng(0).choice(len(x), n_nodes, replace=False)]
    weights = weights.astype(np.float64)
    started = time.perf_counter()
    epoch_times = {}
    for search_name in SEARCHES:
        history = fit_history(x, height, width, epochs, search_name)
        epoch_times[("threaded", search_name)] = median_epoch_seconds(history)
        table.details[f"history_threaded_{search_name}"] = history
    parts = {"threaded: epoch_sums (chunks and reduction)": epoch_sums_seconds(x, weights, 3)}
    cluster, client = local_cluster(2)
    with cluster, client:
        table.details["worker_blas"] = client.run(blas_info)
        for search_name in SEARCHES:
            history = fit_history(x, height, width, epochs, search_name)
            epoch_times[("LocalCluster", search_name)] = median_epoch_seconds(history)
            table.details[f"history_local_cluster_{search_name}"] = history
        parts["LocalCluster: epoch_sums (scatter W, chunks, reduction, gather)"] = (
            epoch_sums_seconds(x, weights, 3)
        )
        parts["LocalCluster: scatter W to the workers"] = median_seconds(
            lambda: client.scatter(weights, broadcast=True, hash=False), 3
        )
    table.details["fit_wall_seconds"] = time.perf_counter() - started
    labels = {"threaded": "threaded scheduler", "LocalCluster": "LocalCluster(2 workers x 1)"}
    for (kind, search_name), seconds in epoch_times.items():
        ratio = seconds / product
        target, met = None, None
        if search_name == "brute":
            target, met = f"<= {TARGETS[kind]}", ratio <= TARGETS[kind]
        elif search_name == "pruned" and kind == "threaded":
            target, met = f"<= {PRUNED_TARGET}", ratio <= PRUNED_TARGET
        elif search_name == "pruned":
            over = seconds / epoch_times[("threaded", "pruned")]
            target = f"<= {CLUSTER_OVER_THREADED} x threaded (is {over:.2f})"
            met = over <= CLUSTER_OVER_THREADED
        table.add(
            f"epoch, bmu_search={search_name!r}, {labels[kind]}, median of epochs 2..{epochs}",
            seconds,
            ratio,
            target,
            None if met is None else ("yes" if met else "NO"),
        )
    auto = table.details["history_threaded_auto"]
    per_epoch = candidates_by_epoch(x, height, width, epochs)
    for record, counts in zip(auto, per_epoch, strict=True):
        counts["auto ran"] = record["bmu_search"] + (
            f" (k={record['search_components']})" if record["bmu_search"] == "pruned" else ""
        )
        counts["auto chose it then"] = record["search_chosen"]
        counts["auto epoch s"] = record["seconds"]
    table.details["per_epoch"] = per_epoch
    table.notes.append(
        "per epoch (candidates of the pruned search on the epoch's starting weights; what "
        "bmu_search='auto' ran, threaded): "
        + "; ".join(
            f"{c['epoch']}: median {c['candidates median']:.0f}, p99 {c['candidates p99']:.0f}, "
            f"evaluated {c['evaluated mean']:.0f}, auto {c['auto ran']}"
            f"{' chosen' if c['auto chose it then'] else ''} {c['auto epoch s']:.2f} s"
            for c in per_epoch
        )
    )
    for name, seconds in parts.items():
        table.add(f"  {name}", seconds, seconds / product, None, None)

    chunk = np.ascontiguousarray(x[:chunk_rows])
    for name, seconds in profile_chunk(chunk, weights, repeats).items():
        table.add(f"  one chunk: {name}", seconds * waves, seconds * waves / product, None, None)
    for name, seconds in profile_update(chunk, weights, height, width, repeats).items():
        table.add(f"  client: {name}", seconds, seconds / product, None, None)
    table.notes += [
        f"'one chunk' rows: one {chunk_rows}-row chunk with one BLAS thread, as the engine runs "
        f"it, times {waves} (chunks per thread), i.e. its share of one epoch",
        "'client' rows: once per epoch, on the client, all BLAS threads",
        "profile rows ('one chunk', 'client'): fastest of the repeats; the other rows: median",
        "epoch = epoch_sums + client update + bookkeeping; epoch_sums = chunk work spread over "
        "the threads + reduction (+ transfers on the LocalCluster)",
        f"BLAS (threadpoolctl): {blas_info()}; "
        + ", ".join(f"{name}={os.environ.get(name)!r}" for name in BLAS_ENV),
    ]
    finish("roofline", table, options.quick, start)


if __name__ == "__main__":
    main()
