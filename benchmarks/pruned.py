"""BMU search grid: brute force, the exact pruned search and ``"auto"`` on every kind of problem.

For each cell of the grid (features ``D`` in {8, 50, 784}, maps {4x4, 20x20, 50x50, 256x256},
data {MNIST, clustered blobs, uniform U[0, 1]}) it times one pass of the engine's distributed
part of an epoch (``training.engine.epoch_sums``, threaded scheduler, the data persisted) with
each search, and the bare ``X @ W.T`` product of the same shapes (numpy, all BLAS threads):

- brute: ``bmu_search="brute"``;
- pruned: the plan ``choose_plan("pruned", ...)`` makes;
- auto: the search ``choose_plan("auto", ...)`` chose, and the time of that search's pass
  measured above (its pass runs the same code; timing it again would only add this machine's
  noise); the choice itself (the principal axes of the sample, the candidates counted on it)
  is timed apart, because training makes it once and again only when the radius has halved,
  not every epoch.

It reports each time, auto's against the better of brute and pruned (target: within 5%), the
choice's time, pruned over the product, the candidates per row, and the cost model's predicted
pruned/brute ratio beside the measured one.

Data: MNIST at ``D = 784`` is the images in [0, 1]; at ``D = 8`` and ``50`` it is their
projection on the top ``D`` principal axes (the structure MNIST has, in fewer dimensions).
Blobs: 30 Gaussian clusters (centres U[-10, 10]^D, unit spread).  Weights: a map trained from
the PCA start on the same rows (``bmu_search="auto"``), for 3 epochs (256x256: 2, to keep the
grid's time in bounds).

    python benchmarks/pruned.py [--quick]
"""

from __future__ import annotations

import time

import numpy as np
from _common import Table, finish, load_mnist, mnist_path, parser, start_state

from dasksom import SOM
from dasksom.core.bmu_search import BRUTE, choose_plan, predicted_costs
from dasksom.core.pruned import pruned_best_matching_units
from dasksom.io.sources import as_dask_array
from dasksom.training import engine
from dasksom.training.search_plans import search_sample

FEATURES = (8, 50, 784)
MAPS = (4, 20, 50, 256)
DATA = ("MNIST", "blobs", "uniform")
AUTO_WITHIN = 1.05
COLUMNS = [
    "data",
    "D",
    "map",
    "X@W.T s",
    "brute s",
    "pruned s",
    "auto s",
    "choice s",
    "auto ran",
    "auto / best",
    "met",
    "pruned / X@W.T",
    "cand median",
    "predicted p/b",
    "measured p/b",
]


def dataset(kind: str, n_rows: int, n_features: int) -> np.ndarray | None:
    rng = np.random.default_rng(0)
    if kind == "uniform":
        return rng.random((n_rows, n_features), dtype=np.float32)
    if kind == "blobs":
        centres = rng.uniform(-10, 10, size=(30, n_features))
        rows = centres[rng.integers(0, 30, n_rows)] + rng.normal(size=(n_rows, n_features))
        return rows.astype(np.float32)
    if not mnist_path().is_file():
        return None
    x, _ = load_mnist(n_rows)
    if n_features == x.shape[1]:
        return x
    centred = x - x.mean(axis=0)
    _, vectors = np.linalg.eigh(centred.T.astype(np.float64) @ centred)
    return (centred @ vectors[:, ::-1][:, :n_features]).astype(np.float32)


def map_weights(x: np.ndarray, side: int) -> np.ndarray:
    epochs = 2 if side >= 256 else 3
    som = SOM(side, side, init="pca", epochs=epochs, random_state=0, bmu_search="auto")
    return som.fit(x).weights_


def one_pass(data, weights: np.ndarray, plan) -> float:
    started = time.perf_counter()
    engine.epoch_sums(data, weights, "euclidean", plan=plan)
    return time.perf_counter() - started


def best_of(run, repeats: int, budget: float = 1.0) -> float:
    """Fastest of at least ``repeats`` runs, repeated until ``budget`` seconds are spent."""
    times = [run() for _ in range(repeats)]
    while sum(times) < budget:
        times.append(run())
    return min(times)


def measure(kind: str, x: np.ndarray, side: int, table: Table, repeats: int) -> None:
    weights = map_weights(x, side)
    data = as_dask_array(x).persist()
    w32 = weights.astype(np.float32)
    x @ w32[:8].T
    product = best_of(lambda: _timed(lambda: x @ w32.T), repeats)
    sample = search_sample(data)
    pruned_plan = choose_plan("pruned", sample, weights, "euclidean", np.float32, n_rows=len(x))
    engine.epoch_sums(data, weights, "euclidean")  # warm-up
    brute = best_of(lambda: one_pass(data, weights, BRUTE), repeats)
    pruned = best_of(lambda: one_pass(data, weights, pruned_plan), repeats)

    started = time.perf_counter()
    auto_plan = choose_plan(
        "auto", search_sample(data), weights, "euclidean", np.float32, n_rows=len(x)
    )
    choice = time.perf_counter() - started
    auto = pruned if auto_plan.pruned else brute
    found = pruned_best_matching_units(x[: min(len(x), 20000)], pruned_plan.index(weights, "f4"))
    n_nodes, n_features = weights.shape
    brute_cost, pruned_cost = predicted_costs(
        n_nodes, n_features, pruned_plan.n_components, pruned_plan.evaluated or 0.0, len(x)
    )
    better = min(brute, pruned)
    table.add(
        kind,
        n_features,
        f"{side}x{side}",
        product,
        brute,
        pruned,
        auto,
        choice,
        auto_plan.describe(),
        auto / better,
        "yes" if auto <= AUTO_WITHIN * better else "NO",
        pruned / product,
        float(np.median(found.candidates)),
        pruned_cost / brute_cost,
        pruned / brute,
    )
    table.details[f"{kind} D={n_features} {side}x{side}"] = {
        "sample candidates per row": pruned_plan.evaluated,
        "rows candidates mean": float(found.candidates.mean()),
    }
    print(table.rows[-1], flush=True)


def _timed(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    options = parser(__doc__).parse_args()
    start = start_state()
    n_rows, repeats = (2000, 1) if options.quick else (10_000, 2)
    maps = MAPS[:2] if options.quick else MAPS
    table = Table(
        f"BMU search grid: one epoch's distributed pass (engine.epoch_sums, threaded, "
        f"{n_rows} rows, euclidean, float32), fastest of at least {repeats} runs and 1 s; "
        "ratios within this run",
        COLUMNS,
    )
    for kind in DATA:
        for n_features in FEATURES:
            x = dataset(kind, n_rows, n_features)
            if x is None:
                table.notes.append(f"MNIST not found at {mnist_path()}: its cells are skipped")
                break
            for side in maps:
                measure(kind, x, side, table, repeats)
    table.notes += [
        "auto s: the pass of the search auto chose (timed in its column); target: at most "
        f"{AUTO_WITHIN} x the better of brute and pruned; choice s: the choice (sample, "
        "principal axes, candidates counted), made once and again when the radius halves",
        "predicted p/b: the cost model's pruned/brute ratio from the candidates counted on the "
        "sample (core.bmu_search.predicted_costs); measured p/b: pruned s / brute s",
        "cand median: nodes per row whose bound let them win, on up to 20,000 rows",
        "maps trained from the PCA start on the same rows, 3 epochs (256x256: 2)",
        "timings on a shared machine: other work may inflate any of them",
    ]
    finish("pruned", table, options.quick, start)


if __name__ == "__main__":
    main()
