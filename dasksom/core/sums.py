"""Batch-SOM partial sums of one chunk (design.md section 4): ``S`` (rows summed per BMU) and ``n``.

:func:`partial_sums` finds the chunk's BMUs (:mod:`dasksom.core.search`) and sums its rows by
BMU (:func:`sum_rows_by_index`, a sparse one-hot product: deterministic, no atomic additions on
a GPU).  Results that leave a chunk (:class:`PartialSums`) are small: they do not grow with the
number of rows, and they add up over chunks with ``+``.

With ``nan_policy="ignore"`` the sums count each feature over the rows that observe it,
``n[k, d]`` (docs/design.md, "Missing values"); rows with no observed value are counted, never
assigned."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dasksom.backends import arrays
from dasksom.backends.arrays import array_module, to_host
from dasksom.core.metrics import prepare
from dasksom.core.missing import NonFinite, find_nonfinite
from dasksom.core.pruned import PrunedIndex
from dasksom.core.search import best_matching_units, bmu_distances


def sum_rows_by_index(x: Any, index: Any, n_groups: int, dtype: Any = None) -> Any:
    """``out[k] = sum of x[i] with index[i] == k``, shape ``(n_groups, D)``, in O(n x D).

    The sum is a product with the sparse one-hot matrix of ``index``: deterministic, with no
    atomic additions on a GPU.

    Parameters
    ----------
    x : array of shape (n, D), NumPy or CuPy
        The rows.  Data stored narrow is widened to ``dtype`` one row block at a time.
    index : int array of shape (n,)
        Each row's group, from 0 to ``n_groups - 1``.
    n_groups : int
        Number of groups (nodes).
    dtype : numpy dtype or None, default=None
        Type the sums accumulate in (the chunk's compute dtype); None: ``x``'s own type.

    Returns
    -------
    float64 array of shape (n_groups, D)
        In ``x``'s array module: float64 is the type in which chunks are then added up.
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

    Partial sums add up with ``+``, left operand first.

    Attributes
    ----------
    sums : float64 array of shape (M, D)
        ``S[k]``, the sum of the rows whose BMU is ``k`` (missing values count as zero).
    counts : float64 array of shape (M,)
        ``n[k]``, how many rows have BMU ``k``.
    distances : float64 array of shape (M,)
        Sum of ``||x - w_k||`` over the rows whose BMU is ``k``.
    n_rows : int
        Rows assigned a BMU.
    nonfinite : NonFinite, default=NonFinite()
        Values the data may not hold, found in the chunk (then nothing else is summed).
    feature_counts : float64 array of shape (M, D) or None, default=None
        ``n[k, d]``, how many rows with BMU ``k`` observe feature ``d``; None when every row
        observes every feature (it equals ``counts``).
    rows_without_values : int, default=0
        Rows with no observed value, counted and never assigned.
    """

    sums: Any
    counts: Any
    distances: Any
    n_rows: int
    nonfinite: NonFinite = field(default_factory=NonFinite)
    feature_counts: Any = None
    rows_without_values: int = 0

    def per_feature_counts(self) -> Any:
        """``n[k, d]`` as an array, whether or not any value was missing.

        Returns
        -------
        float64 array of shape (M, D)
            :attr:`feature_counts`, or :attr:`counts` repeated for every feature.
        """
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
        """The same sums with every array moved to the host (NumPy).

        Returns
        -------
        PartialSums
        """
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
        """Mean distance from an assigned row to its BMU's weights; NaN when no row is."""
        return float(self.distances.sum() / self.n_rows) if self.n_rows else float("nan")


def partial_sums(
    chunk: Any,
    weights: np.ndarray,
    metric: str,
    row_offset: int = 0,
    check_finite: bool = True,
    nan_policy: str = "raise",
    precision: str = "exact",
    index: PrunedIndex | None = None,
) -> PartialSums:
    """Batch-SOM partial sums of one chunk against the epoch's weights.

    Parameters
    ----------
    chunk : array of shape (n, D), NumPy or CuPy
        Rows of any numeric dtype.
    weights : ndarray of shape (M, D)
        The weights at the epoch's start.
    metric : {"euclidean", "cosine", "manhattan"}
        A name in :data:`~dasksom.core.metrics.METRICS`.
    row_offset : int, default=0
        Index of the chunk's first row in the whole array, for error messages.
    check_finite : bool, default=True
        Look for values the data may not hold first; a chunk that has any sums nothing.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"raise"``: NaN is an error; ``"ignore"``: NaN is a missing value.
    precision : {"exact", "tf32", "bfloat16", "float16"}, default="exact"
        Rounding of the BMU search's product (see :mod:`dasksom.core.precision`).
    index : PrunedIndex or None, default=None
        The weights' index for the exact pruned search (built from ``weights``); None searches
        by brute force (see :func:`dasksom.core.search.best_matching_units`).

    Returns
    -------
    PartialSums
        In the chunk's array module (see :meth:`PartialSums.to_host`).

    Raises
    ------
    ValueError
        When a narrow ``precision`` cannot hold the chunk's or the weights' values.
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
    bmu = best_matching_units(x, prepared, mask=mask, index=index)
    return _sums_by_bmu(x, mask, bmu, prepared.weights)


def _sums_by_bmu(x: Any, mask: Any, bmu: Any, weights: Any) -> PartialSums:
    """The sums of the rows by their BMU; rows without one (-1, no observed value) counted."""
    xp = array_module(x)
    n_nodes = weights.shape[0]
    dtype = weights.dtype
    feature_counts, without_values = None, 0
    if mask is not None:
        keep = xp.flatnonzero(bmu >= 0)
        without_values = int(x.shape[0] - keep.shape[0])
        x, mask, bmu = x[keep], mask[keep], bmu[keep]
        feature_counts = sum_rows_by_index(mask.astype(dtype), bmu, n_nodes)
    distances = bmu_distances(x, weights, bmu, mask).astype(xp.float64)
    return PartialSums(
        sum_rows_by_index(x, bmu, n_nodes, dtype),
        _bin_counts(bmu, n_nodes).astype(xp.float64),
        _bin_counts(bmu, n_nodes, distances),
        int(x.shape[0]),
        feature_counts=feature_counts,
        rows_without_values=without_values,
    )
