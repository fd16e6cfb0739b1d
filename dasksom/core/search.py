"""The best-matching-unit search over one chunk, in row blocks (design.md section 5).

Every function takes a NumPy or a CuPy chunk and computes with that chunk's array module, so the
same code runs on CPU workers and on GPUs.  Work on ``n`` rows is done in row blocks, so a chunk
never holds more than one ``block x M`` score matrix whatever its size, and no ``n x M`` matrix is
built for the whole chunk, but the one :func:`node_distances` returns.  Rows per block
follow the metric's rule on CPUs and the device's free memory on GPUs (:func:`block_rows`); on a
GPU the search's last step, subtracting the offsets and taking each row's best column, is one
fused kernel (:func:`best_columns`).

With ``nan_policy="ignore"`` NaN marks a missing value (zero in the chunk, with a mask of the
observed values): a row's BMU is found over its observed features (docs/design.md, "Missing
values"), and a row with no observed value gets -1.

The scores are the metrics' of :mod:`dasksom.core.metrics`; the partial sums built from the BMUs
are in :mod:`dasksom.core.sums`.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from dasksom.backends import arrays
from dasksom.backends.arrays import array_module
from dasksom.backends.cuda import device_block_rows, free_device_bytes, require_gpu
from dasksom.core.metrics import Metric, PreparedWeights
from dasksom.core.missing import observed_rows
from dasksom.core.pruned import PrunedIndex, pruned_best_matching_units

# Rows per group of the pruned search on a GPU: each group is a few kernel launches, so groups
# are far larger than on a CPU, where they are sized for the cache.
DEVICE_GROUP_ROWS = 4096


def _rows_per_block(prepared: PreparedWeights, n_features: int) -> int:
    """Rows per block of the search: the metric's rule on CPUs, free memory's on GPUs."""
    xp = array_module(prepared.weights)
    if xp is np:
        return prepared.metric.block_rows(prepared.n_nodes, n_features)
    itemsize = prepared.weights.dtype.itemsize
    return block_rows(xp, prepared.metric, prepared.n_nodes, n_features, itemsize)


def best_matching_units(
    x: Any,
    prepared: PreparedWeights,
    second: bool = False,
    mask: Any = None,
    index: PrunedIndex | None = None,
) -> Any:
    """BMU index of every row of ``x`` (ties go to the lowest index).

    By brute force, or, given an ``index``, by the exact pruned search
    (:mod:`dasksom.core.pruned`): the same units but between nodes whose distances are equal
    within rounding.  The pruned search takes no missing values and only the exact product;
    rows it cannot take are searched by brute force.

    Parameters
    ----------
    x : array of shape (n, D), numpy or cupy
        Already in the compute dtype, or stored narrow (see
        :func:`dasksom.core.metrics.prepare`).
    prepared : PreparedWeights
        The weights, prepared for ``x``'s array module and dtype.
    second : bool, default=False
        Also return the second-best unit of every row (for the topographic error).
    mask : bool array of shape (n, D) or None, default=None
        Marks the observed values (missing ones are 0 in ``x``); a row with no observed value
        gets -1.  None when every value is observed.
    index : PrunedIndex or None, default=None
        The weights' index for the pruned search (:meth:`SearchPlan.index
        <dasksom.core.bmu_search.SearchPlan.index>`), on the host; None searches by brute force.

    Returns
    -------
    best, or (best, second_best) : int64 arrays of shape (n,)
        In ``x``'s array module.
    """
    xp = array_module(x)
    if index is not None and _prunable(index, prepared, mask):
        found = pruned_best_matching_units(
            x, index.to(xp), second=second, block_rows=None if xp is np else DEVICE_GROUP_ROWS
        )
        return (found.best, found.second) if second else found.best
    n_rows = x.shape[0]
    best = xp.empty(n_rows, dtype=xp.int64)
    runner_up = xp.empty(n_rows, dtype=xp.int64) if second else None
    metric = prepared.metric
    step = _rows_per_block(prepared, x.shape[1])
    for start in range(0, n_rows, step):
        part = slice(start, start + step)
        block = prepared.widen(x[part])
        observed = None if mask is None else mask[part]
        if runner_up is None:
            best[part] = best_columns(*metric.search_scores(block, prepared, observed))
            continue
        scores = metric.scores(block, prepared, observed)
        top = xp.argmax(scores, axis=1)
        best[part] = top
        scores[xp.arange(scores.shape[0]), top] = -xp.inf
        runner_up[part] = xp.argmax(scores, axis=1)
    if mask is not None:
        empty = ~observed_rows(mask)
        best[empty] = -1
        if runner_up is not None:
            runner_up[empty] = -1
    return (best, runner_up) if second else best


def _prunable(index: PrunedIndex, prepared: PreparedWeights, mask: Any) -> bool:
    """Whether the pruned search can take this chunk: the index in the chunk's compute type
    and metric, no missing values, the exact product."""
    return (
        mask is None
        and prepared.precision.exact
        and index.metric == prepared.metric.name
        and index.dtype == prepared.weights.dtype
    )


def best_columns(scores: Any, offsets: Any = None) -> Any:
    """Column of the highest ``scores - offsets`` in every row; ties go to the lowest column.

    On a GPU one fused kernel subtracts and searches in a single pass over the scores.

    Parameters
    ----------
    scores : array of shape (rows, M), NumPy or CuPy
        May be overwritten.
    offsets : array of shape (M,) or None, default=None
        Subtracted from every row; None subtracts nothing.

    Returns
    -------
    int64 array of shape (rows,)
        In the scores' array module.
    """
    if array_module(scores) is not np:
        return _fused_best_columns(scores, offsets)
    if offsets is not None:
        scores -= offsets
    return scores.argmax(axis=1)


def node_distances(x: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
    """``(n, M)`` distance of every row of ``x`` to every node, in the metric's own terms.

    Meant for ``transform``: the result grows with the rows, so callers take it per chunk.

    Parameters
    ----------
    x : array of shape (n, D), NumPy or CuPy
        As for :func:`best_matching_units`.
    prepared : PreparedWeights
        The weights, prepared for ``x``.
    mask : bool array of shape (n, D) or None, default=None
        Marks the observed values; distances are taken over each row's observed features.

    Returns
    -------
    array of shape (n, M)
        In the weights' compute dtype; NaN for rows with no observed value.
    """
    xp = array_module(x)
    out = xp.empty((x.shape[0], prepared.n_nodes), dtype=prepared.weights.dtype)
    metric = prepared.metric
    step = _rows_per_block(prepared, x.shape[1])
    for start in range(0, x.shape[0], step):
        part = slice(start, start + step)
        block = prepared.widen(x[part])
        scores = metric.scores(block, prepared, None if mask is None else mask[part])
        out[part] = metric.distances(block, scores)
    if mask is not None:
        out[~observed_rows(mask)] = xp.nan
    return out


def bmu_distances(x: Any, weights: Any, bmu: Any, mask: Any = None) -> Any:
    """Euclidean distance from every row to its BMU's weights, in O(n x D).

    Taken in row blocks so that the differences never hold more than a block of the chunk.

    Parameters
    ----------
    x : array of shape (n, D), NumPy or CuPy
        Rows in the compute dtype, missing values 0.
    weights : array of shape (M, D)
        In ``x``'s array module.
    bmu : int array of shape (n,)
        Each row's BMU, none of them -1.
    mask : bool array of shape (n, D) or None, default=None
        Marks the observed values: the distance is then over each row's observed features.

    Returns
    -------
    array of shape (n,)
        In the weights' dtype.
    """
    xp = array_module(x)
    out = xp.empty(x.shape[0], dtype=weights.dtype)
    step = max(1, arrays.SCORE_BLOCK_ELEMENTS // max(1, x.shape[1]))
    for start in range(0, x.shape[0], step):
        part = slice(start, start + step)
        diff = weights[bmu[part]]
        xp.subtract(x[part], diff, out=diff)
        if mask is not None:
            diff *= mask[part]
        out[part] = xp.sqrt(xp.einsum("ij,ij->i", diff, diff))
    return out


# Threads that search one row of scores in the fused kernel (a power of two).
SEARCH_THREADS = 256


# The BMU search's last step, fused: one thread block per row subtracts the offsets while it
# reads the scores and keeps the best column, so the scores are read once and never rewritten.
# Ties go to the lowest column, as numpy's argmax; ``columns`` holds ``n_cols`` for "none yet".
BEST_COLUMNS_SOURCE = r"""
template <typename T>
__global__ void best_columns(const T* scores, const T* offsets, const long long n_cols,
                             long long* out) {
    __shared__ T values[SEARCH_THREADS];
    __shared__ long long columns[SEARCH_THREADS];
    const T* line = scores + blockIdx.x * n_cols;
    T best = 0;
    long long best_column = n_cols;
    for (long long j = threadIdx.x; j < n_cols; j += SEARCH_THREADS) {
        const T value = line[j] - offsets[j];
        if (best_column == n_cols || value > best) {
            best = value;
            best_column = j;
        }
    }
    values[threadIdx.x] = best;
    columns[threadIdx.x] = best_column;
    __syncthreads();
    for (int stride = SEARCH_THREADS / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) {
            const T other = values[threadIdx.x + stride];
            const long long other_column = columns[threadIdx.x + stride];
            const long long mine = columns[threadIdx.x];
            if (other_column != n_cols
                && (mine == n_cols || other > values[threadIdx.x]
                    || (other == values[threadIdx.x] && other_column < mine))) {
                values[threadIdx.x] = other;
                columns[threadIdx.x] = other_column;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[blockIdx.x] = columns[0];
    }
}
"""


def block_rows(xp: Any, metric: Metric, n_nodes: int, n_features: int, itemsize: int = 4) -> int:
    """Rows per block of the BMU search for data in array module ``xp``.

    NumPy, and metrics with a block rule of their own (manhattan), keep ``metric.block_rows``;
    product metrics on CuPy get :func:`~dasksom.backends.cuda.device_block_rows` for the
    current device.  This is the hook for :func:`best_matching_units` and
    :func:`node_distances`.

    Parameters
    ----------
    xp : module
        ``numpy`` or ``cupy``.
    metric : Metric
        The search's metric.
    n_nodes : int
        Nodes of the map.
    n_features : int
        Features of a row.
    itemsize : int, default=4
        Bytes per value once widened (4: float32, 8: float64).

    Returns
    -------
    int
        Rows per block, at least 1.
    """
    if xp is np or type(metric).block_rows is not Metric.block_rows:
        return metric.block_rows(n_nodes, n_features)
    return device_block_rows(n_nodes, n_features, free_device_bytes(xp), itemsize)


@functools.cache
def _best_columns_kernels(device_id: int) -> dict[str, Any]:
    """The fused search compiled for float32 and float64 scores, once per device."""
    cupy = require_gpu()
    module = cupy.RawModule(
        code=f"#define SEARCH_THREADS {SEARCH_THREADS}\n{BEST_COLUMNS_SOURCE}",
        name_expressions=("best_columns<float>", "best_columns<double>"),
    )
    return {
        "float32": module.get_function("best_columns<float>"),
        "float64": module.get_function("best_columns<double>"),
    }


def _fused_best_columns(scores: Any, offsets: Any = None) -> Any:
    """Column of the highest ``scores - offsets`` of every row of a CuPy ``(rows, M)`` array,
    ties to the lowest column: :func:`best_columns` on a GPU, in one kernel."""
    cupy = require_gpu()
    scores = cupy.ascontiguousarray(scores)
    n_rows, n_cols = scores.shape
    out = cupy.empty(n_rows, dtype=cupy.int64)
    if n_rows == 0:
        return out
    if offsets is None:
        offsets = cupy.zeros(n_cols, dtype=scores.dtype)
    offsets = cupy.ascontiguousarray(offsets, dtype=scores.dtype)
    kernel = _best_columns_kernels(cupy.cuda.Device().id)[scores.dtype.name]
    kernel((n_rows,), (SEARCH_THREADS,), (scores, offsets, np.int64(n_cols), out))
    return out
