"""The distributed training loop (design.md sections 4 and 8).

One epoch is one dask graph: every row chunk computes its :class:`~dasksom.core.sums.PartialSums`
against the epoch's weights on the worker that holds it, a tree reduction adds them up
(:func:`epoch_sums`, :func:`tree_sum`), and the client applies the neighbourhood once:
``W = (H @ S) / (H @ n)`` (:func:`update_weights`).  Only the ``M x D`` weights and sums travel;
the rows never leave their worker.  Whether the data stays in worker memory between epochs is
:func:`should_persist`'s choice.

:func:`train` runs the epochs and keeps one history entry per epoch
(:func:`dasksom.training.history.epoch_record`): ``epoch``, ``sigma``, ``quantization_error`` (of
the weights the epoch started from, found in the same pass), ``map_difference`` (mean absolute
change of the weights) and ``seconds``, with ``rows_without_values`` under
``nan_policy="ignore"``.  Every epoch is logged on the ``dasksom`` logger at INFO level; the log
record carries the history entry as ``record.epoch_record`` (with the total ``epochs`` and
``n_samples`` added), for progress displays.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np
from threadpoolctl import threadpool_limits

from dasksom.backends.arrays import array_module, compute_dtype, to_host
from dasksom.core.bmu_search import BRUTE, SearchPlan
from dasksom.core.lattice import Lattice
from dasksom.core.neighborhood import DENSE_MAX_NODES, smooth
from dasksom.core.sums import PartialSums, partial_sums
from dasksom.training.history import EarlyStopping, epoch_record
from dasksom.training.search_plans import SearchPlanner

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger("dasksom")

# How many partial results one reduction task adds up.
SPLIT_EVERY = 8
# Fuse the tree's first level into the chunk tasks only when at least this many fused tasks
# per thread remain, so that fusing never starves the cluster of parallel work.
FUSE_TASKS_PER_THREAD = 4
# ... and only when the chunks of one fused task hold at most this many bytes together.
FUSE_MAX_GROUP_BYTES = 32 << 20
# Workers that hold each chunk of in-memory (numpy) input on a distributed cluster.
SCATTER_COPIES = 2
# Keep data in worker memory when it takes at most this share of the memory it would live in.
PERSIST_MEMORY_FRACTION = 0.5
# The same for GPU memory, where the only other user is the search's working memory, at most
# 1/8 of what is free (backends.cuda.DEVICE_MEMORY_SHARE); it stays under dask-cuda's spilling
# threshold (80% of the device), and 10^9 rows x 50 float16 values (93 GiB) stay on an H200
# (139 GiB).
DEVICE_PERSIST_FRACTION = 0.7


def distributed_client() -> Client | None:
    """The distributed ``Client`` that dask computes on now, or None for a local scheduler.

    Returns
    -------
    distributed.Client or None
        The default client, when it is also dask's current scheduler; None without
        ``distributed``, without a client, or when another scheduler is in use.
    """
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        client = default_client()
    except ValueError:
        return None
    scheduler = dask.base.get_scheduler()
    return client if getattr(scheduler, "__self__", None) is client else None


# glibc serves each allocation above its mmap threshold with fresh pages from the kernel.
# distributed's nanny sets MALLOC_TRIM_THRESHOLD_, which freezes that threshold at 128 KiB, so
# every block of scores or bounds a chunk allocates is page-faulted anew: a pruned chunk of
# MNIST ran 0.59 s in a worker against 0.30 s with this threshold (0.25 s in the client).  Below
# 32 MiB, freed blocks are reused instead.  A default: a user's dask config wins, and workers
# started by ``dask worker`` take it from the environment (deploy/slurm.sh, the Dockerfile).
WORKER_MMAP_THRESHOLD = 32 * 2**20
dask.config.update_defaults(
    {
        "distributed": {
            "nanny": {"pre-spawn-environ": {"MALLOC_MMAP_THRESHOLD_": WORKER_MMAP_THRESHOLD}}
        }
    }
)


@contextlib.contextmanager
def compute_context() -> Iterator[None]:
    """One BLAS thread per dask thread: dask parallelises over chunks, BLAS must not on top.

    Distributed workers already start with one BLAS thread each (the nanny sets
    ``OMP_NUM_THREADS=1`` and friends); the local threaded scheduler needs the limit here.

    Yields
    ------
    None
        Inside the ``with`` block, BLAS runs one thread unless a distributed client computes.
    """
    if distributed_client() is not None:
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def scatter_rows(rows: np.ndarray, data: da.Array, client: Any) -> da.Array:
    """In-memory rows sent straight to the workers, chunk by chunk, as ``data`` is chunked.

    Numpy input would otherwise travel inside every graph that uses it (dask's "large graph"
    warning).  Each chunk is kept on two workers where there are two, so that a lost worker
    loses no rows (scattered data cannot be recomputed).

    Parameters
    ----------
    rows : ndarray of shape (N, D)
        The rows, in memory.
    data : dask.array.Array of shape (N, D)
        ``rows`` as a dask array; its row chunks decide the blocks sent.
    client : distributed.Client
        The client whose workers receive the blocks.

    Returns
    -------
    dask.array.Array
        Chunked as ``data``, each chunk a future held by the workers.
    """
    bounds = np.cumsum((0, *data.chunks[0]))
    blocks = [rows[start:stop] for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]
    futures = client.scatter(blocks, hash=False)
    copies = min(SCATTER_COPIES, len(client.scheduler_info(n_workers=-1)["workers"]))
    if copies > 1:
        client.replicate(futures, n=copies)
    parts = [
        da.from_delayed(future, shape=block.shape, dtype=block.dtype)
        for future, block in zip(futures, blocks, strict=True)
    ]
    return da.concatenate(parts, axis=0)


def should_persist(data: da.Array, persist: bool | str) -> bool:
    """Decide whether to keep the data in (worker) memory between epochs.

    Parameters
    ----------
    data : dask.array.Array
        The training data, NumPy or CuPy chunks.
    persist : bool or "auto"
        ``"auto"`` keeps it when it takes at most half of the cluster's memory (or of this
        machine's available memory on a local scheduler), or for CuPy chunks at most
        :data:`DEVICE_PERSIST_FRACTION` of the GPUs' free memory; otherwise every epoch
        streams it from its source with bounded memory.

    Returns
    -------
    bool
        ``bool(persist)`` unless ``"auto"``.
    """
    if persist != "auto":
        return bool(persist)
    if array_module(data._meta) is not np:
        from dasksom.training.gpu import device_memory_budget

        return data.nbytes <= DEVICE_PERSIST_FRACTION * device_memory_budget()
    client = distributed_client()
    if client is not None:
        workers = client.scheduler_info(n_workers=-1)["workers"].values()
        budget = sum(w.get("memory_limit") or 0 for w in workers)
    else:
        import psutil

        budget = psutil.virtual_memory().available
    return data.nbytes <= PERSIST_MEMORY_FRACTION * budget


def add_in_order(*parts: Any) -> Any:
    """``parts[0] + parts[1] + ...``, left to right (partial sums, count vectors).

    Parameters
    ----------
    *parts : object
        At least one; anything ``+`` adds.

    Returns
    -------
    object
        The sum.
    """
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return total


def tree_sum(parts: list) -> Any:
    """The delayed sum of delayed ``parts``, added in order by a tree of fan-in ``SPLIT_EVERY``.

    The same parts always give bit-identical sums, whatever the scheduler.

    Parameters
    ----------
    parts : list of dask.delayed.Delayed
        At least one, in the order they are to be added.

    Returns
    -------
    dask.delayed.Delayed
        Their sum (:func:`add_in_order` at every node of the tree).
    """
    add = dask.delayed(add_in_order, pure=True)
    while len(parts) > 1:
        parts = [add(*parts[i : i + SPLIT_EVERY]) for i in range(0, len(parts), SPLIT_EVERY)]
    return parts[0]


def chunk_row_offsets(data: da.Array) -> list[int]:
    """Index of the first row of every row chunk of ``data`` in the whole array.

    Parameters
    ----------
    data : dask.array.Array
        Chunked by rows.

    Returns
    -------
    list of int
        One per row chunk, the first 0.
    """
    return np.concatenate([[0], np.cumsum(data.chunks[0])[:-1]]).astype(int).tolist()


def epoch_sums(
    data: da.Array,
    weights: np.ndarray,
    metric: str,
    check_finite: bool = False,
    nan_policy: str = "raise",
    precision: str = "exact",
    plan: SearchPlan = BRUTE,
) -> PartialSums:
    """Partial sums of every chunk against ``weights``, added up by a tree reduction.

    The reduction order is fixed by chunk position, so the same chunking always gives
    bit-identical sums, whatever the scheduler or the order in which chunks finish.

    Parameters
    ----------
    data : dask.array.Array of shape (N, D)
        Row chunks, NumPy or CuPy.
    weights : ndarray of shape (M, D)
        The epoch's starting weights.
    metric : {"euclidean", "cosine", "manhattan"}
        The BMU search's distance.
    check_finite : bool, default=False
        Look for values the data may not hold (NaN and inf, or inf alone under
        ``nan_policy="ignore"``); what is found comes back in ``nonfinite``.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"ignore"``: NaN marks a missing value.
    precision : {"exact", "tf32", "bfloat16", "float16"}, default="exact"
        Rounding of the BMU search's product (see :mod:`dasksom.core.precision`).
    plan : SearchPlan, default=BRUTE
        The BMU search (:mod:`dasksom.core.bmu_search`); a pruned plan's index of ``weights`` is
        built once, in the graph, for every chunk.

    Returns
    -------
    PartialSums
        On the host (NumPy).
    """
    # The weights travel inside the graph rather than scattered: a worker lost mid-epoch then
    # costs a recomputation, not the epoch (scattered data cannot be recovered).
    shared_weights = dask.delayed(weights)
    index = None
    if plan.pruned:
        index = dask.delayed(plan.index, pure=True)(shared_weights, compute_dtype(data.dtype))
    offsets = chunk_row_offsets(data)
    blocks = list(data.to_delayed().ravel())
    # Many small chunks: each task sums a group of SPLIT_EVERY chunks, the tree's first level,
    # in the same order, so the result is bit-identical and the scheduler sees 8x fewer tasks.
    group = SPLIT_EVERY if _fuse(data, len(blocks)) else 1
    group_task = dask.delayed(_group_sums, pure=True)
    settings = (metric, check_finite, nan_policy, precision)
    parts = [
        group_task(shared_weights, index, settings, offsets[i : i + group], *blocks[i : i + group])
        for i in range(0, len(blocks), group)
    ]
    with compute_context():
        (result,) = dask.compute(dask.delayed(PartialSums.to_host, pure=True)(tree_sum(parts)))
    return result


def _group_sums(
    weights: np.ndarray, index: Any, settings: tuple, offsets: list[int], *blocks: Any
) -> PartialSums:
    """Partial sums of consecutive chunks, added in order."""
    metric, check_finite, nan_policy, precision = settings
    parts = [
        partial_sums(block, weights, metric, offset, check_finite, nan_policy, precision, index)
        for block, offset in zip(blocks, offsets, strict=True)
    ]
    return add_in_order(*parts)


def _fuse(data: da.Array, n_chunks: int) -> bool:
    """Fuse the first level when chunks are many and small: a fused task holds its chunks in
    memory together, which streaming data of worker-sized chunks cannot afford."""
    small = SPLIT_EVERY * data.nbytes / max(1, n_chunks) <= FUSE_MAX_GROUP_BYTES
    return small and n_chunks >= SPLIT_EVERY * FUSE_TASKS_PER_THREAD * _threads()


def _threads() -> int:
    """Threads that run chunk tasks: the cluster's, or this machine's cores."""
    client = distributed_client()
    if client is None:
        return os.cpu_count() or 1
    workers = client.scheduler_info(n_workers=-1)["workers"].values()
    return max(1, sum(w.get("nthreads", 1) for w in workers))


def update_weights(
    lattice: Lattice,
    sums: PartialSums,
    weights: np.ndarray,
    sigma: float,
    neighborhood: str,
    xp: Any = np,
) -> np.ndarray:
    """``W_new = (H @ S) / (H @ n)``, keeping ``W`` where the denominator is not positive.

    With missing values the counts are per feature, ``n[k, d]``, and so is the division:
    ``W[k, d] = sum_j h_kj S_jd / sum_j h_kj n_jd``.

    Parameters
    ----------
    lattice : Lattice
        The map.
    sums : PartialSums
        The epoch's sums, on the host.
    weights : ndarray of shape (M, D)
        The epoch's starting weights (not modified).
    sigma : float
        The epoch's radius.
    neighborhood : {"gaussian", "bubble", "mexican_hat"}
        The neighbourhood function ``h``.
    xp : module, default=numpy
        Where the smoothing ``H @ [S n]`` runs (CuPy: on this process's GPU).

    Returns
    -------
    ndarray of shape (M, D)
        The new weights, as NumPy.
    """
    n_features = weights.shape[1]
    if sums.feature_counts is None:
        counts = sums.counts[:, None]
    else:
        counts = sums.feature_counts
    stacked = xp.asarray(np.column_stack([sums.sums, counts]))
    smoothed = to_host(smooth(lattice, stacked, sigma, neighborhood))
    numerator, denominator = smoothed[:, :n_features], smoothed[:, n_features:]
    denominator = np.broadcast_to(denominator, numerator.shape)
    updated = weights.copy()
    ok = denominator > 0
    updated[ok] = numerator[ok] / denominator[ok]
    return updated


def _smoothing_module(data: da.Array, lattice: Lattice) -> Any:
    """Where the epoch's ``H @ S`` runs: on this process's GPU for a large map trained on GPU
    chunks (when this process sees a GPU), else with NumPy."""
    if array_module(data._meta) is np or lattice.n_nodes <= DENSE_MAX_NODES:
        return np
    from dasksom.backends.cuda import GPUUnavailableError, require_gpu

    try:
        return require_gpu()
    except GPUUnavailableError as error:
        logger.info("the neighbourhood sums run on the CPU: %s", error)
        return np


def check_no_overflow(data: da.Array, sums: PartialSums, weights: np.ndarray) -> None:
    """Refuse a map whose quantization error or weights overflowed.

    Parameters
    ----------
    data : dask.array.Array
        The training data, read again only to report the error.
    sums : PartialSums
        The epoch's sums, whose quantization error is checked.
    weights : ndarray of shape (M, D)
        The epoch's new weights.

    Raises
    ------
    ValueError
        When either is not finite, naming the three columns whose values are largest.
    """
    if np.isfinite(sums.quantization_error) and np.isfinite(weights).all():
        return
    with compute_context():
        largest = np.asarray(da.nanmax(abs(data.astype(np.float64)), axis=0).compute())
    top = np.argsort(largest)[::-1][:3]
    columns = ", ".join(f"column {int(c)} (up to {largest[c]:.3g})" for c in top)
    raise ValueError(
        "The values are too large to compute distances with: sums of squares overflowed even "
        f"in float64. The largest values are in {columns}. Rescale those columns (e.g. "
        "standardise each feature) and fit again."
    )


@dataclass
class TrainingState:
    """Where training stands: enough to checkpoint after any epoch and resume exactly.

    Attributes
    ----------
    weights : ndarray of shape (M, D)
        The current weights.
    sigmas : ndarray of shape (epochs,)
        The radius of every epoch, done or not.
    history : list of dict, default=[]
        One entry per epoch done (see the module docstring).
    """

    weights: np.ndarray
    sigmas: np.ndarray
    history: list[dict] = field(default_factory=list)

    @property
    def epochs_done(self) -> int:
        """Number of epochs done, the length of :attr:`history`."""
        return len(self.history)


def train(
    data: da.Array,
    lattice: Lattice,
    state: TrainingState,
    *,
    metric: str,
    neighborhood: str,
    tol: float | None = None,
    n_iter_no_change: int = 3,
    on_epoch_end: Callable[[TrainingState], None] | None = None,
    nan_policy: str = "raise",
    precision: str = "exact",
    planner: SearchPlanner | None = None,
) -> TrainingState:
    """Run the remaining epochs of ``state`` on ``data``, one distributed pass each.

    Parameters
    ----------
    data : dask.array.Array of shape (N, D)
        Row chunks, NumPy or CuPy.
    lattice : Lattice
        The map.
    state : TrainingState
        Where training stands; updated in place, epoch by epoch.
    metric : {"euclidean", "cosine", "manhattan"}
        The BMU search's distance.
    neighborhood : {"gaussian", "bubble", "mexican_hat"}
        The neighbourhood function ``h``.
    tol : float or None, default=None
        Stop early once the map difference stays below ``tol`` for ``n_iter_no_change`` epochs
        in a row (:class:`~dasksom.training.history.EarlyStopping`); None never stops early.
    n_iter_no_change : int, default=3
        See ``tol``.
    on_epoch_end : callable or None, default=None
        Called with ``state`` after every epoch (to write a checkpoint, for instance).
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"ignore"``: NaN marks a missing value.
    precision : {"exact", "tf32", "bfloat16", "float16"}, default="exact"
        Rounding of the BMU search's product (see :mod:`dasksom.core.precision`).
    planner : SearchPlanner or None, default=None
        Chooses each epoch's BMU search (:mod:`dasksom.training.search_plans`), resumed from
        ``state.history``; None searches by brute force.

    Returns
    -------
    TrainingState
        ``state``, with one history entry per epoch run (see the module docstring).

    Raises
    ------
    ValueError
        When the data holds values ``nan_policy`` refuses, or the map overflowed.
    """
    stopper = EarlyStopping.resumed(tol, n_iter_no_change, state.history)
    if planner is None:
        planner = SearchPlanner("brute", metric, compute_dtype(data.dtype))
    planner.resume(state.history)
    settings = (metric, neighborhood, nan_policy, precision, _smoothing_module(data, lattice))
    for epoch in range(state.epochs_done, len(state.sigmas)):
        if stopper.should_stop:
            break
        record = _train_epoch(data, lattice, state, epoch, on_epoch_end, planner, *settings)
        if stopper.update(record["map_difference"]):
            logger.info(
                "stopping early: map difference below %g for %d epochs", tol, n_iter_no_change
            )
    return state


def _train_epoch(
    data: da.Array,
    lattice: Lattice,
    state: TrainingState,
    epoch: int,
    on_epoch_end: Callable[[TrainingState], None] | None,
    planner: SearchPlanner,
    metric: str,
    neighborhood: str,
    nan_policy: str,
    precision: str,
    smoothing_module: Any,
) -> dict:
    """One epoch of :func:`train`: new weights in ``state``, its history entry appended and
    logged, then ``on_epoch_end`` called; returns the entry."""
    started = time.perf_counter()
    sigma = float(state.sigmas[epoch])
    check_finite = epoch == 0 or nan_policy == "ignore"
    plan, chosen = planner.plan_for(state.weights, sigma)
    if chosen:
        logger.info("BMU search: %s", plan.describe())
    sums = epoch_sums(data, state.weights, metric, check_finite, nan_policy, precision, plan)
    sums.nonfinite.raise_if_any(data.shape[0])
    new_weights = update_weights(
        lattice, sums, state.weights, sigma, neighborhood, smoothing_module
    )
    check_no_overflow(data, sums, new_weights)
    difference = float(np.abs(new_weights - state.weights).mean())
    state.weights = new_weights
    extra: dict = planner.record(plan, chosen)
    if nan_policy != "raise":
        extra["rows_without_values"] = sums.rows_without_values
    record = epoch_record(
        epoch,
        sigma,
        sums.quantization_error,
        difference,
        time.perf_counter() - started,
        **extra,
    )
    if sums.rows_without_values and epoch == state.epochs_done:
        logger.warning(
            "%d rows hold no observed value (all NaN); they take no part in training",
            sums.rows_without_values,
        )
    state.history.append(record)
    _log_epoch(record, len(state.sigmas), data.shape[0])
    if on_epoch_end is not None:
        on_epoch_end(state)
    return record


def _log_epoch(record: dict, n_epochs: int, n_samples: int) -> None:
    """Log one epoch's history entry at INFO, the entry attached as ``epoch_record``."""
    logger.info(
        "epoch %d/%d  sigma %.3f  QE of the starting weights %.5g  map difference %.3g  %.2fs",
        record["epoch"] + 1,
        n_epochs,
        record["sigma"],
        record["quantization_error"],
        record["map_difference"],
        record["seconds"],
        extra={"epoch_record": {**record, "epochs": n_epochs, "n_samples": n_samples}},
    )
