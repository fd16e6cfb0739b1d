"""FlowSOM: dasksom.cytometry against the Python ``flowsom`` package at equal settings.

Both run the FlowSOM pipeline (Van Gassen et al. 2015) on the same cells: a 10x10 map, 10
passes (``rlen`` / ``epochs``), as many metaclusters as there are true populations, the same
markers and the same arcsinh transform.  Two data sets:

- **synthetic** (the quality comparison): cells of 15 planted populations in 20 markers, made
  with a fixed seed by :func:`synthetic_cells`: normal on the arcsinh scale (so log-normal-ish
  raw intensities, cofactor 5 as for mass cytometry), four lineages whose populations differ in
  two or three markers, three of them rare (0.5 %, 1 % and 2 % of the cells).
- **public**: ``facs_diva_test.fcs``, a BD FACSDiva B-cell panel (83,411 events; CD20, CD10,
  CD45, CD34, Syto 41, CD19, CD38; with its spill matrix) that the ``fcsparser`` wheel ships
  among its test files.  It has no manual gates, so only agreement with flowsom, seed
  stability, quantisation error and time are reported; 10 metaclusters (FlowSOM's usual
  number), compensated with the file's matrix, arcsinh with cofactor 150.  Nothing is
  downloaded.

Metrics, each the mean (± sd) over seeds: the ARI of the cells' metaclusters against the
truth; the FlowSOM papers' F1 (per true population, the F1 of its best-matching metacluster,
averaged over the populations; Weber & Robinson 2016), and the same averaged over the rare
populations only; the ARI of the nodes' majority labels (how pure the map's nodes are, before
any metaclustering); the quantisation error (mean distance of a cell to its node's code, in
the transformed space); the ARI against flowsom's metaclusters (mean over all pairs of seeds)
and between seeds of the same run.  Seconds: fit + metaclustering + mapping of every cell, the
transform included, the data already in memory (for the LocalCluster: persisted on its
workers), JIT compilation and cluster start-up excluded by a warm-up run; median and range over
the seeds.

Rows: flowsom's default ``FlowSOMEstimator`` (online SOM) and its experimental
``BatchFlowSOMEstimator``; dasksom's ``FlowSOM`` at its defaults on the threaded scheduler and
on a ``LocalCluster(n_workers=2, threads_per_worker=1)``; dasksom with three other
neighbourhood schedules (:data:`SCHEDULES`, through ``som_params``), to find where the two
differ; and two ``cross`` rows that put one library's metaclustering on the other's map.

Runs in its own virtualenv, since flowsom is no dependency of dasksom
(``benchmarks/requirements-flowsom.txt`` says how to make it):

    /work/flowsom-venv/bin/python benchmarks/flowsom_compare.py [--quick] [--cells N] [--seeds 5]
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import dask
import dask.array as da
import numpy as np
from _common import Table, finish, local_cluster, parser, start_state
from distributed import wait
from sklearn.metrics import adjusted_rand_score

from dasksom.cytometry import (
    Cells,
    FlowSOM,
    consensus_metaclusters,
    read_array,
    read_fcs,
    read_fcs_header,
)

SIDE = 10
PASSES = 10
SYNTHETIC_COFACTOR = 5.0
N_MARKERS = 20
N_LINEAGES = 4
RARE_SHARES = (0.005, 0.01, 0.02)
N_POPULATIONS = 15
PUBLIC_FILE = "tests/data/FlowCytometers/FACS_Diva/facs_diva_test.fcs"
PUBLIC_MARKERS = ("CD20", "CD10", "CD45", "CD34", "Syto 41", "CD19", "CD38")
PUBLIC_COFACTOR = 150.0
PUBLIC_CLUSTERS = 10
# Neighbourhood schedules tried through dasksom FlowSOM's ``som_params``, beside its default:
# a bubble from radius 6 (flowsom's start, the 0.67 quantile of the 10x10 grid's Chebyshev
# distances; dasksom's bubble is a disc of lattice distances, flowsom's a square) to 0.5 (the
# node alone) linearly, as flowsom's radius falls; the same radii geometrically (the last
# three epochs below 1: the node alone); a gaussian down to 0.3.
SCHEDULES = (
    ("dasksom FlowSOM (default)", None),
    (
        "dasksom + bubble 6 -> 0.5 linear (flowsom's radii)",
        {"neighborhood": "bubble", "sigma": (6.0, 0.5), "sigma_decay": "linear"},
    ),
    (
        "dasksom + bubble 6 -> 0.5 exponential",
        {"neighborhood": "bubble", "sigma": (6.0, 0.5), "sigma_decay": "exponential"},
    ),
    ("dasksom + gaussian 5 -> 0.3 linear", {"sigma": (5.0, 0.3), "sigma_decay": "linear"}),
)
WARM_UP_CELLS = 2000
FLOWSOM_DEFAULTS = (
    "flowsom {version} defaults (FlowSOMEstimator): an online (Kohonen) SOM in numba on one "
    "core, rlen=10 passes of n cells drawn with replacement, learning rate alpha linear from "
    "0.05 to 0.01, a bubble neighbourhood on Chebyshev grid distances whose radius falls "
    "linearly from their 0.67 quantile (6 on 10x10) to 0, only the winning node updated once "
    "it is below 1 (the last sixth of the draws), codes started from randomly drawn cells "
    "(np.random.seed(seed)); metaclustering ConsensusCluster(H=100, resample_proportion=0.9, "
    "linkage='average'), whose fit_predict runs scikit-learn's AgglomerativeClustering once "
    "on the codes: no consensus matrix is built (fit is never called).  No transform or "
    "scaling inside (the cells come arcsinh-transformed)."
)
DASKSOM_DEFAULTS = (
    "dasksom FlowSOM defaults: a batch SOM, square 10x10, init 'sample' (distinct cells drawn "
    "with the seed), gaussian neighbourhood with sigma from 5 down to 1.17 exponentially "
    "(simpsom's schedule), 10 epochs; consensus metaclusters (100 resamples of 90% of the "
    "nodes, average linkage, then average linkage on 1 - consensus); the fit also learns the "
    "outlier thresholds per node (two out-of-core medians of six passes each), which "
    "flowsom's estimator does not."
)


@dataclass(frozen=True)
class DataSet:
    """Cells as both libraries get them, and what is known about them.

    ``raw`` is the untransformed matrix flowsom starts from and ``cells`` the same values as
    dasksom ``Cells``; ``transformed`` is arcsinh(raw / cofactor), for the quantisation error;
    ``truth`` the planted population of every cell and ``shares`` the populations' planted
    shares (both None for the public file); ``rare`` the rare populations.
    """

    name: str
    raw: np.ndarray
    cells: Cells
    transformed: np.ndarray
    cofactor: float
    n_clusters: int
    truth: np.ndarray | None = None
    shares: np.ndarray | None = None
    rare: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))


@dataclass(frozen=True)
class Run:
    """One fit: every cell's node and metacluster, the codes, and its wall time."""

    node: np.ndarray
    metacluster: np.ndarray
    codes: np.ndarray
    seconds: float | None


def synthetic_cells(n_cells: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Raw intensities of planted populations, their labels and their shares.

    Four lineages each have a base phenotype (every marker negative, 0, or positive, 3.5, on
    the arcsinh scale, positive with probability 0.4); each of the 15 populations takes its
    lineage's phenotype and sets two or three markers to a level among negative, dim (1.8),
    positive (3) and bright (4.5), redrawn until every two populations differ by at least 1.5
    in some marker.  A cell is normal around its population's levels with a spread per
    population and marker between 0.3 and 0.6, then ``5 sinh(z)``: arcsinh with cofactor 5
    gives the levels back.  Three populations are rare (:data:`RARE_SHARES`), the other
    twelve share the rest by a Dirichlet(2) draw.

    Parameters
    ----------
    n_cells : int
    seed : int, default=0

    Returns
    -------
    raw : ndarray of float64, shape (n_cells, 20)
    population : ndarray of int64, shape (n_cells,)
    shares : ndarray of float64, shape (15,)
        The planted share of every population (the last three are the rare ones).
    """
    rng = np.random.default_rng(seed)
    lineage = np.arange(N_POPULATIONS) % N_LINEAGES
    while True:
        base = np.where(rng.random((N_LINEAGES, N_MARKERS)) < 0.4, 3.5, 0.0)
        levels = base[lineage]
        for population in range(N_POPULATIONS):
            changed = rng.choice(N_MARKERS, size=rng.integers(2, 4), replace=False)
            levels[population, changed] = rng.choice([0.0, 1.8, 3.0, 4.5], size=len(changed))
        gaps = np.abs(levels[:, None, :] - levels[None, :, :]).max(axis=2)
        if gaps[np.triu_indices(N_POPULATIONS, 1)].min() >= 1.5:
            break
    spread = rng.uniform(0.3, 0.6, size=(N_POPULATIONS, N_MARKERS))
    common = N_POPULATIONS - len(RARE_SHARES)
    shares = np.concatenate(
        [rng.dirichlet(np.full(common, 2.0)) * (1 - sum(RARE_SHARES)), RARE_SHARES]
    )
    population = rng.choice(N_POPULATIONS, size=n_cells, p=shares)
    z = levels[population] + rng.standard_normal((n_cells, N_MARKERS)) * spread[population]
    return SYNTHETIC_COFACTOR * np.sinh(z), population, shares


def synthetic_data(n_cells: int, chunks: int) -> DataSet:
    """The synthetic cells as a :class:`DataSet`, ``chunks`` row blocks for dasksom."""
    raw, population, shares = synthetic_cells(n_cells)
    markers = [f"M{i + 1:02d}" for i in range(N_MARKERS)]
    cells = read_array(da.from_array(raw, chunks=math.ceil(n_cells / chunks)), markers)
    return DataSet(
        f"synthetic {n_cells:,} x {N_MARKERS}",
        raw,
        cells,
        np.arcsinh(raw / SYNTHETIC_COFACTOR),
        SYNTHETIC_COFACTOR,
        N_POPULATIONS,
        population,
        shares,
        np.flatnonzero(np.isin(shares, RARE_SHARES)),
    )


def public_path() -> Path | None:
    """The FACSDiva file inside the installed ``fcsparser`` package (not imported), or None."""
    spec = importlib.util.find_spec("fcsparser")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / PUBLIC_FILE
    return path if path.is_file() else None


def public_data(path: Path, chunks: int) -> DataSet:
    """The FACSDiva file's fluorescence markers, compensated, as a :class:`DataSet`.

    dasksom reads the file; flowsom gets the same compensated matrix, so that both start from
    identical values.
    """
    rows = math.ceil(read_fcs_header(path).n_events / chunks)
    cells = read_fcs([path], markers=list(PUBLIC_MARKERS), compensate=True, events_per_chunk=rows)
    raw = cells.data.compute()
    return DataSet(
        f"public FACSDiva {len(raw):,} x {len(PUBLIC_MARKERS)}",
        raw,
        cells,
        np.arcsinh(raw / PUBLIC_COFACTOR),
        PUBLIC_COFACTOR,
        PUBLIC_CLUSTERS,
    )


# --- the runs ---------------------------------------------------------------------------------


def run_flowsom(data: DataSet, seed: int, estimator: type) -> Run:
    """flowsom's estimator (``FlowSOMEstimator`` or ``BatchFlowSOMEstimator``) on the cells."""
    started = time.perf_counter()
    model = estimator(xdim=SIDE, ydim=SIDE, rlen=PASSES, n_clusters=data.n_clusters, seed=seed)
    metacluster = model.fit_predict(np.arcsinh(data.raw / data.cofactor))
    seconds = time.perf_counter() - started
    node = np.asarray(model.cluster_labels_, dtype=np.int64)
    return Run(node, np.asarray(metacluster), np.asarray(model.codes), seconds)


def run_dasksom(data: DataSet, seed: int, som_params: dict | None = None) -> Run:
    """dasksom's FlowSOM on the cells, on whichever scheduler is the default."""
    started = time.perf_counter()
    model = FlowSOM(
        SIDE,
        SIDE,
        n_clusters=data.n_clusters,
        epochs=PASSES,
        seed=seed,
        cofactor=data.cofactor,
        som_params=som_params,
    ).fit(data.cells)
    results = model.map(data.cells)
    node, metacluster = dask.compute(results.node, results.metacluster)
    seconds = time.perf_counter() - started
    return Run(node, metacluster, model.codes_, seconds)


def flowsom_metaclusters(run: Run, n_clusters: int) -> Run:
    """``run``'s map with flowsom's metaclustering (average linkage on the codes)."""
    from flowsom.models import ConsensusCluster

    labels = ConsensusCluster(n_clusters=n_clusters).fit_predict(run.codes)
    return Run(run.node, labels[run.node], run.codes, None)


def dasksom_metaclusters(run: Run, n_clusters: int, seed: int) -> Run:
    """``run``'s map with dasksom's consensus metaclusters."""
    labels = consensus_metaclusters(run.codes, n_clusters, seed=seed)
    return Run(run.node, labels[run.node], run.codes, None)


# --- metrics ----------------------------------------------------------------------------------


def contingency(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Counts of every pair of labels, rows ``a``'s (in sorted order), columns ``b``'s."""
    rows = np.unique(a, return_inverse=True)[1]
    columns = np.unique(b, return_inverse=True)[1]
    table = np.zeros((rows.max() + 1, columns.max() + 1))
    np.add.at(table, (rows, columns), 1)
    return table


def population_f1(truth: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Every true population's F1 with its best-matching cluster (Weber & Robinson 2016).

    For population ``i`` and cluster ``j`` with ``n_ij`` cells in common, precision
    ``n_ij / n_j`` and recall ``n_ij / n_i`` give ``F1 = 2 n_ij / (n_i + n_j)``; the best
    cluster's, per population (one cluster may be the best match of several).
    """
    table = contingency(truth, labels)
    f1 = 2 * table / (table.sum(axis=1)[:, None] + table.sum(axis=0)[None, :])
    return f1.max(axis=1)


def majority_labels(node: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Each cell labelled with its node's most frequent true population."""
    nodes = np.unique(node, return_inverse=True)[1]
    table = contingency(nodes, truth)
    return np.unique(truth)[table.argmax(axis=1)][nodes]


def quantisation_error(run: Run, transformed: np.ndarray) -> float:
    """Mean distance of a cell to its node's code, in the transformed space."""
    return float(np.linalg.norm(transformed - run.codes[run.node], axis=1).mean())


def mean_pair_ari(runs: list[Run], others: list[Run]) -> float | None:
    """Mean ARI of the metaclusters over all pairs of runs (a run never with itself)."""
    scores = [
        adjusted_rand_score(a.metacluster, b.metacluster)
        for a, b in itertools.product(runs, others)
        if a is not b
    ]
    return float(np.mean(scores)) if scores else None


def spread(values: list[float]) -> str:
    """``mean ± sd`` (sd with ddof 1) of ``values`` at three decimals."""
    sd = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
    return f"{np.mean(values):.3f} ± {sd:.3f}"


def scores(data: DataSet, runs: list[Run], reference: list[Run]) -> dict:
    """Every metric of :func:`table_row` for one row's runs, and the per-seed values."""
    per_seed: dict[str, list] = {"qe": [quantisation_error(r, data.transformed) for r in runs]}
    if data.truth is not None:
        f1 = [population_f1(data.truth, r.metacluster) for r in runs]
        per_seed["ari"] = [adjusted_rand_score(data.truth, r.metacluster) for r in runs]
        per_seed["f1"] = [float(f.mean()) for f in f1]
        per_seed["f1_rare"] = [float(f[data.rare].mean()) for f in f1]
        per_seed["node_ari"] = [
            adjusted_rand_score(data.truth, majority_labels(r.node, data.truth)) for r in runs
        ]
        per_seed["f1_per_population"] = [f.round(4).tolist() for f in f1]
    seconds = [r.seconds for r in runs if r.seconds is not None]
    per_seed["seconds"] = seconds
    per_seed["empty_nodes"] = [SIDE * SIDE - len(np.unique(r.node)) for r in runs]
    return {
        "per_seed": per_seed,
        "vs_flowsom": mean_pair_ari(runs, reference),
        "between_seeds": mean_pair_ari(runs, runs),
    }


def table_row(table: Table, data: DataSet, label: str, scheduler: str, found: dict) -> None:
    """Add one row: ``found`` from :func:`scores`."""
    per_seed = found["per_seed"]
    seconds = per_seed["seconds"]

    def metric(key: str) -> str | None:
        return spread(per_seed[key]) if key in per_seed else None

    table.add(
        data.name,
        label,
        scheduler,
        metric("ari"),
        metric("f1"),
        metric("f1_rare"),
        metric("node_ari"),
        float(np.mean(per_seed["qe"])),
        found["vs_flowsom"],
        found["between_seeds"],
        float(np.median(seconds)) if seconds else None,
        f"{min(seconds):.2f}-{max(seconds):.2f}" if seconds else None,
    )


def compare(table: Table, data: DataSet, seeds: list[int], details: dict) -> None:
    """Every run on one data set, one table row each.

    flowsom's two estimators and dasksom with each of :data:`SCHEDULES` on the threaded
    scheduler take turns within each seed (so that other load on the machine spreads over
    them); then dasksom's default on a LocalCluster; then the two crosses.
    """
    from flowsom.models import BatchFlowSOMEstimator, FlowSOMEstimator

    warm = _warm_up_data(data)
    in_process: list[tuple[str, str, Callable[[DataSet, int], Run]]] = [
        ("flowsom FlowSOMEstimator (default)", "numba, 1 core", _flowsom(FlowSOMEstimator)),
        (
            "flowsom BatchFlowSOMEstimator (experimental)",
            "numba prange",
            _flowsom(BatchFlowSOMEstimator),
        ),
    ]
    in_process += [(label, "threaded", _dasksom(params)) for label, params in SCHEDULES]
    for _, _, run in in_process:
        run(warm, 0)
    runs: list[list[Run]] = [[] for _ in in_process]
    for seed in seeds:
        for done, (_, _, run) in zip(runs, in_process, strict=True):
            done.append(run(data, seed))
    rows = [(label, where, done) for (label, where, _), done in zip(in_process, runs, strict=True)]
    reference, default = runs[0], runs[2]
    cluster, client = local_cluster(2)
    with cluster, client:
        persisted = data.cells.with_data(client.persist(data.cells.data))
        wait(persisted.data)
        on_workers = replace(data, cells=persisted)
        run_dasksom(warm, 0)
        done = [run_dasksom(on_workers, seed) for seed in seeds]
        rows.append(("dasksom FlowSOM (default)", "LocalCluster 2x1", done))
    crossed = [
        dasksom_metaclusters(r, data.n_clusters, s) for r, s in zip(reference, seeds, strict=True)
    ]
    rows.append(("cross: flowsom's map + dasksom's consensus", "-", crossed))
    crossed = [flowsom_metaclusters(r, data.n_clusters) for r in default]
    rows.append(("cross: dasksom's default map + flowsom's metaclustering", "-", crossed))
    details[data.name] = {}
    for label, scheduler, done in rows:
        found = scores(data, done, reference)
        table_row(table, data, label, scheduler, found)
        details[data.name][f"{label} | {scheduler}"] = found


def _flowsom(estimator: type) -> Callable[[DataSet, int], Run]:
    return lambda data, seed: run_flowsom(data, seed, estimator)


def _dasksom(som_params: dict | None) -> Callable[[DataSet, int], Run]:
    return lambda data, seed: run_dasksom(data, seed, som_params)


def _warm_up_data(data: DataSet) -> DataSet:
    """The first :data:`WARM_UP_CELLS` cells, copied: a graph of them holds only them."""
    raw = data.raw[:WARM_UP_CELLS].copy()
    cells = read_array(raw, data.cells.markers, chunks=WARM_UP_CELLS)
    return replace(data, raw=raw, cells=cells, transformed=data.transformed[:WARM_UP_CELLS])


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--cells", type=int, default=500_000, help="synthetic cells")
    arguments.add_argument("--seeds", type=int, default=5, help="seeds per run")
    arguments.add_argument("--chunks", type=int, default=8, help="row chunks for dasksom")
    options = arguments.parse_args()
    if options.quick:
        options.cells, options.seeds = 20_000, 2
    start = start_state()
    seeds = list(range(options.seeds))
    version = importlib.metadata.version("flowsom")
    table = Table(
        f"FlowSOM pipeline: dasksom vs flowsom {version}, {SIDE}x{SIDE} map, {PASSES} passes, "
        f"{len(seeds)} seeds (mean ± sd; seconds: median and range)",
        [
            "data",
            "run",
            "scheduler",
            "ARI",
            "F1",
            "F1 rare",
            "node ARI",
            "QE",
            "ARI vs flowsom",
            "ARI seeds",
            "s",
            "s range",
        ],
    )
    details: dict = {
        "versions": {
            name: importlib.metadata.version(name)
            for name in ("flowsom", "dasksom", "numba", "numpy", "dask", "scikit-learn")
        },
        "seeds": seeds,
        "dask_chunks": options.chunks,
    }
    synthetic = synthetic_data(options.cells, options.chunks)
    details["synthetic_shares"] = synthetic.shares.round(4).tolist()
    compare(table, synthetic, seeds, details)
    path = public_path()
    if path is None:
        table.notes.append("fcsparser is not installed: the public FACSDiva file was skipped.")
    else:
        details["public_file"] = str(path)
        public = public_data(path, options.chunks)
        compare(table, public, seeds, details)
    table.notes += [
        FLOWSOM_DEFAULTS.format(version=version),
        DASKSOM_DEFAULTS,
        "F1: per true population the F1 of its best-matching metacluster, averaged (F1 rare: "
        "over the 0.5%, 1% and 2% populations); node ARI: each node labelled by its majority "
        "population; QE: mean cell-to-code distance after arcsinh; ARI vs flowsom: against "
        "flowsom's default runs, all pairs of seeds; ARI seeds: between seeds of the run.",
        "Seconds: fit + metaclustering + mapping, transform included, data in memory (persisted "
        "on the workers for the LocalCluster), after a warm-up run (JIT, worker imports).  The "
        "2-core machine was shared with other people's tests: see the load averages.",
    ]
    table.details = details
    finish("flowsom_compare", table, options.quick, start)


if __name__ == "__main__":
    main()
