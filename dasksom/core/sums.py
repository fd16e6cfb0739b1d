"""Batch-SOM partial sums of one chunk (design.md 4): ``S`` (rows summed per BMU) and ``n``.

Results that leave a chunk (:class:`PartialSums`) are small: they do not grow with the number of
rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dasksom.backends import arrays
from dasksom.backends.arrays import array_module, to_host
from dasksom.core.metrics import prepare
from dasksom.core.missing import NonFinite, find_nonfinite
from dasksom.core.search import best_matching_units, bmu_distances


def sum_rows_by_index(x: Any, index: Any, n_groups: int, dtype: Any = None) -> Any:
    """``out[k] = sum of x[i] with index[i] == k``, shape ``(n_groups, D)``, in O(n x D).

    Sums accumulate in ``dtype`` (the chunk's compute dtype; ``x``'s own type by default) and
    come back as float64, the type in which chunks are then added up.  Data stored narrow is
    widened one row block at a time.  The sum is a product with the sparse one-hot matrix of
    ``index``: deterministic, with no atomic additions on a GPU.
    """
    dtype = np.dtype(dtype or x.dtype)
    if x.dtype == dtype:
        return _one_hot_product(x, index, n_groups)
    xp = array_module(x)
    out = xp.zeros((n_groups, x.shape[1]), dtype=np.float64)
    step = max(1, arrays.SCORE_BLOCK_ELEMENTS // max(1, x.shape[1]))
    for start in range(0, x.shape[0], step):
        part = slice(start, start + step)
        out += _one_hot_product(x[part].astype(dtype), index[part], n_groups)
    return out


def _bin_counts(index: Any, minlength: int, weights: Any = None) -> Any:
    """``bincount(index, weights, minlength)`` in ``index``'s array module, empty ``index`` too.

    CuPy's ``bincount`` (13.x) sizes its result by ``int(cupy.max(index))``, which fails on an
    empty index (a chunk with no rows, or none with an observed value); NumPy returns
    ``minlength`` zeros for it (integers, or float64 with weights), and so does this.
    """
    xp = array_module(index)
    if index.size == 0:
        return xp.zeros(minlength, dtype=np.intp if weights is None else np.float64)
    return xp.bincount(index, weights=weights, minlength=minlength)


def _one_hot_product(x: Any, index: Any, n_groups: int) -> Any:
    """``onehot(index) @ x`` as float64, the one-hot matrix ``(n_groups, n)`` kept sparse."""
    xp = array_module(x)
    n_rows = x.shape[0]
    if xp is np:
        import scipy.sparse

        # One nonzero per column: the CSC arrays are the index itself, nothing to sort.
        ones = np.ones(n_rows, dtype=x.dtype)
        onehot = scipy.sparse.csc_matrix((ones, index, np.arange(n_rows + 1)), (n_groups, n_rows))
        return np.asarray(onehot @ x, dtype=np.float64)
    import cupyx.scipy.sparse

    # Row k of the CSR matrix lists the rows with index k: a stable sort gives them in order.
    columns = xp.argsort(index).astype(xp.int32)
    row_starts = xp.zeros(n_groups + 1, dtype=xp.int32)
    xp.cumsum(_bin_counts(index, n_groups), out=row_starts[1:])
    ones = xp.ones(n_rows, dtype=x.dtype)
    onehot = cupyx.scipy.sparse.csr_matrix((ones, columns, row_starts), shape=(n_groups, n_rows))
    return (onehot @ x).astype(xp.float64)


@dataclass
class PartialSums:
    """What one chunk hands back: batch-SOM sums over its rows (design.md section 4).

    Attributes
    ----------
    sums : (M, D) float64, ``S[k]``, the sum of the rows whose BMU is ``k`` (missing values
        count as zero)
    counts : (M,) float64, ``n[k]``, how many rows have BMU ``k``
    distances : (M,) float64, sum of ``||x - w_k||`` over the rows whose BMU is ``k``
    n_rows : rows assigned a BMU
    nonfinite : values the data may not hold, found in the chunk (then nothing else is summed)
    feature_counts : (M, D) float64 or None: ``n[k, d]``, how many rows with BMU ``k`` observe
        feature ``d``; None when every row observes every feature (it equals ``counts``)
    rows_without_values : rows with no observed value, counted and never assigned
    """

    sums: Any
    counts: Any
    distances: Any
    n_rows: int
    nonfinite: NonFinite = field(default_factory=NonFinite)
    feature_counts: Any = None
    rows_without_values: int = 0

    def per_feature_counts(self) -> Any:
        """``n[k, d]`` as an array, whether or not any value was missing."""
        if self.feature_counts is not None:
            return self.feature_counts
        return self.counts[:, None] * array_module(self.counts).ones(self.sums.shape[1])

    def __add__(self, other: PartialSums) -> PartialSums:
        both_complete = self.feature_counts is None and other.feature_counts is None
        return PartialSums(
            self.sums + other.sums,
            self.counts + other.counts,
            self.distances + other.distances,
            self.n_rows + other.n_rows,
            self.nonfinite + other.nonfinite,
            None if both_complete else self.per_feature_counts() + other.per_feature_counts(),
            self.rows_without_values + other.rows_without_values,
        )

    def to_host(self) -> PartialSums:
        return PartialSums(
            to_host(self.sums),
            to_host(self.counts),
            to_host(self.distances),
            self.n_rows,
            self.nonfinite,
            None if self.feature_counts is None else to_host(self.feature_counts),
            self.rows_without_values,
        )

    @property
    def quantization_error(self) -> float:
        return float(self.distances.sum() / self.n_rows) if self.n_rows else float("nan")


def partial_sums(
    chunk: Any,
    weights: np.ndarray,
    metric: str,
    row_offset: int = 0,
    check_finite: bool = True,
    nan_policy: str = "raise",
    precision: str = "exact",
) -> PartialSums:
    """Batch-SOM partial sums of one chunk against the epoch's weights.

    Parameters
    ----------
    chunk : array of shape (n, D), numpy or cupy, any numeric dtype
    weights : (M, D) numpy array, the weights at the epoch's start
    metric : a name in :data:`METRICS`
    row_offset : index of the chunk's first row in the whole array, for error messages
    check_finite : look for values the data may not hold first; a chunk that has any sums
        nothing
    nan_policy : "raise" (NaN is an error) or "ignore" (NaN is a missing value)
    precision : a name in :data:`PRECISIONS`, the rounding of the BMU search's product

    Returns
    -------
    PartialSums
    """
    xp = array_module(chunk)
    n_nodes, n_features = weights.shape
    if check_finite:
        nonfinite = find_nonfinite(chunk, row_offset, nan_policy)
        if nonfinite.count:
            zeros = xp.zeros(n_nodes, dtype=xp.float64)
            return PartialSums(
                xp.zeros((n_nodes, n_features), dtype=xp.float64), zeros, zeros, 0, nonfinite
            )
    x, mask, prepared = prepare(chunk, weights, metric, nan_policy, precision)
    bmu = best_matching_units(x, prepared, mask=mask)
    dtype = prepared.weights.dtype
    feature_counts, without_values = None, 0
    if mask is not None:
        keep = xp.flatnonzero(bmu >= 0)
        without_values = int(x.shape[0] - keep.shape[0])
        x, mask, bmu = x[keep], mask[keep], bmu[keep]
        feature_counts = sum_rows_by_index(mask.astype(dtype), bmu, n_nodes)
    distances = bmu_distances(x, prepared.weights, bmu, mask).astype(xp.float64)
    return PartialSums(
        sum_rows_by_index(x, bmu, n_nodes, dtype),
        _bin_counts(bmu, n_nodes).astype(xp.float64),
        _bin_counts(bmu, n_nodes, distances),
        int(x.shape[0]),
        feature_counts=feature_counts,
        rows_without_values=without_values,
    )
