"""Per-chunk array kernels: best-matching units and batch-SOM partial sums (design.md 4-5).

Every function takes a NumPy or a CuPy chunk and computes with that chunk's array module, so the
same code runs on CPU workers and on GPUs.  Work on ``n`` rows is done in row blocks, so a chunk
never holds more than one ``block x M`` score matrix whatever its size, and no ``n x M`` matrix is
built for the whole chunk.  Results that leave a chunk (:class:`PartialSums`) are small: they do
not grow with the number of rows.

With ``nan_policy="ignore"`` NaN marks a missing value: a row's BMU is found over its observed
features and the sums count each feature over the rows that observe it (design.md, "Missing
values").  Rows with no observed value are counted, never assigned.

Distances are entries of :data:`METRICS`, a table of :class:`Metric` objects: adding a metric
means adding one class there; validation, the BMU search, ``transform`` and the command line's
choices all read the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .lattice import NEIGHBOR_DISTANCE
from .precision import PRECISIONS, Precision, get_precision

# Elements of the per-block score matrix (rows x nodes): 8 MiB in float32 is big enough for BLAS
# to run at full speed (measured: 1M to 8M elements within noise) and keeps chunk memory bounded.
SCORE_BLOCK_ELEMENTS = 1 << 21
# Elements of the rows x nodes x features difference tensor of the manhattan metric.
MANHATTAN_BLOCK_ELEMENTS = 1 << 22
NAN_POLICIES = ("raise", "ignore")


def array_module(x: Any) -> Any:
    """``numpy`` or ``cupy``, whichever ``x`` belongs to."""
    if type(x).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def to_host(x: Any) -> np.ndarray:
    """A NumPy copy of a NumPy or CuPy array."""
    return x.get() if hasattr(x, "get") else np.asarray(x)


def compute_dtype(dtype: Any) -> np.dtype:
    """Float type that the distance products run in for data of ``dtype``.

    float32 where it holds the data exactly enough (float32 and narrower types, small integers),
    float64 for float64 and wide integers.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def is_narrow(dtype: Any) -> bool:
    """Whether data of ``dtype`` is kept as it is and widened one row block at a time.

    Types narrower than float32 (uint8 pixels, int16, float16) hold far fewer bytes than their
    float32 copy; the search widens each block to float32 as it uses it.
    """
    dtype = np.dtype(dtype)
    return dtype.kind in "iuf" and dtype.itemsize < 4


def float32_limit(n_features: int) -> float:
    """The largest magnitude whose products and squared norms stay within float32.

    ``x . w`` and ``||w||^2`` stay below ``D * a^2`` for values of magnitude at most ``a``.
    """
    return float(np.sqrt(np.finfo(np.float32).max / (4.0 * max(1, n_features))))


def largest_magnitude(x: Any, weights: Any) -> float:
    """The largest absolute value of the chunk and of the weights."""
    # max and min rather than abs(): no temporary the size of the chunk.
    largest = max(float(x.max()), -float(x.min())) if x.size else 0.0
    return max(largest, float(np.abs(weights).max(initial=0.0)))


@dataclass
class PreparedWeights:
    """Weights in the form a metric's BMU search needs, built once per chunk."""

    metric: Metric
    weights: Any  # (M, D), chunk's array module and compute dtype
    scoring: Any  # the product's right operand, (D, M) (None: the metric is not a product)
    offsets: Any  # (M,) subtracted from the product's scores, or None
    precision: Precision = PRECISIONS["exact"]

    @classmethod
    def build(
        cls, weights: Any, metric: str, xp: Any, dtype: Any, precision: str = "exact"
    ) -> PreparedWeights:
        """Weights ``(M, D)`` in the array module ``xp`` and float type ``dtype``, with the
        product's operand rounded to ``precision`` (a name in :data:`PRECISIONS`)."""
        prepared = get_metric(metric).prepare(xp.asarray(weights, dtype=dtype), xp)
        chosen = get_precision(precision)
        if chosen.exact or prepared.scoring is None:
            return prepared
        product_dtype = chosen.product_dtype(dtype)
        offsets = prepared.offsets
        return cls(
            prepared.metric,
            prepared.weights,
            chosen.operand(prepared.scoring),
            None if offsets is None else offsets.astype(product_dtype),
            chosen,
        )

    @property
    def n_nodes(self) -> int:
        return self.weights.shape[0]

    def widen(self, block: Any) -> Any:
        """A row block of the data in the compute dtype (a no-op unless stored narrow)."""
        return block.astype(self.weights.dtype, copy=False)

    def product(self, block: Any) -> Any:
        """``block @ scoring`` in the chosen precision: ``(rows, M)`` scores before offsets."""
        return self.precision.matmul(self.precision.operand(block), self.scoring)


class Metric:
    """A distance between samples and node weights, as the BMU search uses it.

    ``scores`` of a row block are higher for closer nodes; a product-based metric computes them
    as one matrix product plus per-node offsets, so the search runs at BLAS speed.
    """

    name: str
    # Whether scores come from a product (the part that a narrower precision speeds up).
    uses_product = True

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        """The weights in the form :meth:`scores` needs (computed once per chunk)."""
        raise NotImplementedError

    def scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        """``(rows, M)`` scores of a row block, higher is closer.

        ``mask`` (rows x D, or None when every value is observed) marks the observed values;
        missing ones are zero in ``block`` and take no part in the distance.
        """
        raise NotImplementedError

    def search_scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        """``(scores, offsets)``: the BMU of a row is the column of its highest
        ``scores - offsets`` (offsets None: of its highest score).

        Kept apart so that a GPU subtracts and searches in one pass over the scores.
        """
        return self.scores(block, prepared, mask), None

    def distances(self, block: Any, scores: Any) -> Any:
        """``(rows, M)`` distances of a row block from its :meth:`scores`."""
        raise NotImplementedError

    def block_rows(self, n_nodes: int, n_features: int) -> int:
        """Rows per block: one ``rows x M`` score matrix of :data:`SCORE_BLOCK_ELEMENTS`."""
        return max(64, SCORE_BLOCK_ELEMENTS // max(1, n_nodes))


class Euclidean(Metric):
    """``||x - w||``; the search maximises ``x . w - ||w||^2 / 2`` (over observed features)."""

    name = "euclidean"

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        offsets = 0.5 * (weights * weights).sum(axis=1)
        return PreparedWeights(self, weights, xp.ascontiguousarray(weights.T), offsets)

    def scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        scores = prepared.product(block)
        if mask is None:
            scores -= prepared.offsets
        else:
            w = prepared.weights
            scores -= 0.5 * (mask.astype(block.dtype) @ (w * w).T)
        return scores

    def search_scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        if mask is None:
            return prepared.product(block), prepared.offsets
        return self.scores(block, prepared, mask), None

    def distances(self, block: Any, scores: Any) -> Any:
        xp = array_module(block)
        squared = (block * block).sum(axis=1)[:, None] - 2.0 * scores
        return xp.sqrt(xp.maximum(squared, 0.0))


class Cosine(Metric):
    """``1 - x . w / (||x|| ||w||)``; the search maximises ``x . w / ||w||`` (both over the
    observed features)."""

    name = "cosine"

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        norms = xp.sqrt((weights * weights).sum(axis=1))
        unit = weights / xp.maximum(norms, xp.finfo(weights.dtype).tiny)[:, None]
        return PreparedWeights(self, weights, xp.ascontiguousarray(unit.T), None)

    def scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        if mask is None:
            return prepared.product(block)
        xp = array_module(block)
        w = prepared.weights
        norms = xp.sqrt(mask.astype(block.dtype) @ (w * w).T)
        return (block @ w.T) / xp.maximum(norms, xp.finfo(block.dtype).tiny)

    def distances(self, block: Any, scores: Any) -> Any:
        xp = array_module(block)
        norms = xp.sqrt((block * block).sum(axis=1))
        return 1.0 - scores / xp.maximum(norms, xp.finfo(block.dtype).tiny)[:, None]


class Manhattan(Metric):
    """``sum |x - w|``, over a bounded ``rows x nodes x features`` difference tensor."""

    name = "manhattan"
    uses_product = False

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        return PreparedWeights(self, weights, None, None)

    def scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        xp = array_module(block)
        w = prepared.weights
        n_rows, n_features = block.shape
        step = max(1, MANHATTAN_BLOCK_ELEMENTS // max(1, n_rows * n_features))
        out = xp.empty((n_rows, prepared.n_nodes), dtype=block.dtype)
        weight = None if mask is None else mask.astype(block.dtype)[:, None, :]
        for start in range(0, prepared.n_nodes, step):
            diff = xp.abs(block[:, None, :] - w[None, start : start + step])
            if weight is not None:
                diff *= weight
            out[:, start : start + step] = -diff.sum(-1)
        return out

    def distances(self, block: Any, scores: Any) -> Any:
        return -scores

    def block_rows(self, n_nodes: int, n_features: int) -> int:
        return max(1, min(256, MANHATTAN_BLOCK_ELEMENTS // max(1, n_nodes * n_features)))


METRICS: dict[str, Metric] = {m.name: m for m in (Euclidean(), Cosine(), Manhattan())}


def get_metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``; ``ValueError`` naming the choices otherwise."""
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}; choose one of {', '.join(METRICS)}.")
    return METRICS[name]


def check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise ValueError(
            f"Unknown nan_policy {nan_policy!r}; choose one of {', '.join(NAN_POLICIES)}."
        )


def prepare(
    chunk: Any, weights: Any, metric: str, nan_policy: str = "raise", precision: str = "exact"
) -> tuple[Any, Any, PreparedWeights]:
    """A chunk made ready for the search: ``(x, mask, prepared weights)``.

    ``x`` is the chunk in its compute dtype (float64 where float32 could overflow), or as it is
    when stored narrow (:func:`is_narrow`; blocks are widened by :meth:`PreparedWeights.widen`),
    with missing values (NaN, under ``nan_policy="ignore"``) set to zero; ``mask`` marks the
    observed values, or is None when the chunk misses none.  ``precision`` (a name in
    :data:`PRECISIONS`) rounds the search's product; values it cannot hold are refused.
    """
    xp = array_module(chunk)
    dtype = compute_dtype(chunk.dtype)
    x = chunk if is_narrow(chunk.dtype) else xp.asarray(chunk, dtype=dtype)
    mask = None
    if nan_policy == "ignore" and x.dtype.kind == "f":
        missing = xp.isnan(x)
        if missing.any():
            mask = ~missing
            x = xp.where(mask, x, 0)
    chosen = get_precision(precision)
    if dtype == np.float32 or not chosen.exact:
        largest = largest_magnitude(x, weights)
        limit = float32_limit(x.shape[1])
        if not chosen.exact:
            chosen.check_range(largest, limit)
        elif largest > limit:
            dtype = np.dtype(np.float64)
            x = x.astype(dtype)
    return x, mask, PreparedWeights.build(weights, metric, xp, dtype, precision)


def _rows_per_block(prepared: PreparedWeights, n_features: int) -> int:
    """Rows per block of the search: the metric's rule on CPUs, free memory's on GPUs."""
    xp = array_module(prepared.weights)
    if xp is np:
        return prepared.metric.block_rows(prepared.n_nodes, n_features)
    from .gpu import block_rows

    itemsize = prepared.weights.dtype.itemsize
    return block_rows(xp, prepared.metric, prepared.n_nodes, n_features, itemsize)


def observed_rows(mask: Any) -> Any:
    """Rows holding at least one observed value, or None when every value is observed."""
    return None if mask is None else mask.any(axis=1)


def best_matching_units(
    x: Any, prepared: PreparedWeights, second: bool = False, mask: Any = None
) -> Any:
    """BMU index of every row of ``x`` (ties go to the lowest index).

    Parameters
    ----------
    x : array of shape (n, D), numpy or cupy, already in the compute dtype
    prepared : PreparedWeights
    second : bool
        Also return the second-best unit of every row (for the topographic error).
    mask : None, or bool array of shape (n, D) marking observed values (missing ones are 0
        in ``x``); a row with no observed value gets -1.

    Returns
    -------
    best, or (best, second_best) : int64 arrays of shape (n,)
    """
    xp = array_module(x)
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


def best_columns(scores: Any, offsets: Any = None) -> Any:
    """Column of the highest ``scores - offsets`` in every row; ties go to the lowest column.

    ``scores`` may be overwritten.  On a GPU one fused kernel subtracts and searches in a
    single pass over the scores (:func:`dasksom.gpu.best_columns`).
    """
    if array_module(scores) is not np:
        from .gpu import best_columns as best_columns_on_device

        return best_columns_on_device(scores, offsets)
    if offsets is not None:
        scores -= offsets
    return scores.argmax(axis=1)


def node_distances(x: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
    """``(n, M)`` distance of every row of ``x`` to every node, in the metric's own terms.

    Taken over each row's observed features (``mask``); NaN for rows with none.  Meant for
    ``transform``: the result grows with the rows, so callers take it per chunk.
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
    step = max(1, SCORE_BLOCK_ELEMENTS // max(1, x.shape[1]))
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
class NonFinite:
    """Where data met NaN or inf: how many, and the first (row, column) of the whole array."""

    count: int = 0
    first: tuple[int, int] | None = None

    def __add__(self, other: NonFinite) -> NonFinite:
        firsts = [f for f in (self.first, other.first) if f is not None]
        return NonFinite(self.count + other.count, min(firsts) if firsts else None)

    def raise_if_any(self, n_rows: int | None = None) -> None:
        """The one error that tells the user how many NaN / inf the data holds and where."""
        if not self.count:
            return
        among = "" if n_rows is None else f" among {n_rows} rows"
        where = ""
        if self.first is not None:
            where = f"; the first is at row {self.first[0]}, column {self.first[1]}"
        raise ValueError(
            f"The data contains {self.count} NaN or infinite value(s){among}{where}. Remove or "
            "impute those rows (for a dask array x: x[da.isfinite(x).all(axis=1)]), or, if NaN "
            "marks missing values, use nan_policy='ignore' (inf is never allowed)."
        )


def find_nonfinite(x: Any, row_offset: int = 0, nan_policy: str = "raise") -> NonFinite:
    """Count the values a chunk may not hold: NaN and inf, or inf alone when NaN marks a
    missing value (``nan_policy="ignore"``).  Integer data is finite by construction."""
    if np.dtype(x.dtype).kind not in "fc":
        return NonFinite()
    xp = array_module(x)
    bad = xp.isinf(x) if nan_policy == "ignore" else ~xp.isfinite(x)
    count = int(bad.sum())
    if not count:
        return NonFinite()
    row, col = (int(v) for v in xp.argwhere(bad)[0])
    return NonFinite(count, (row_offset + row, col))


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


def bmu_distances(x: Any, weights: Any, bmu: Any, mask: Any = None) -> Any:
    """Euclidean distance from every row to its BMU's weights, in O(n x D).

    Over each row's observed features when ``mask`` is given.  Taken in row blocks so that
    the differences never hold more than a block of the chunk.
    """
    xp = array_module(x)
    out = xp.empty(x.shape[0], dtype=weights.dtype)
    step = max(1, SCORE_BLOCK_ELEMENTS // max(1, x.shape[1]))
    for start in range(0, x.shape[0], step):
        part = slice(start, start + step)
        diff = weights[bmu[part]]
        xp.subtract(x[part], diff, out=diff)
        if mask is not None:
            diff *= mask[part]
        out[part] = xp.sqrt(xp.einsum("ij,ij->i", diff, diff))
    return out


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


def _checked(chunk: Any, row_offset: int, nan_policy: str) -> Any:
    find_nonfinite(chunk, row_offset, nan_policy).raise_if_any()
    return chunk


def predict_chunk(
    chunk: Any, weights: np.ndarray, metric: str, row_offset: int = 0, nan_policy: str = "raise"
) -> Any:
    """BMU index of every row of a chunk (numpy or cupy in, same out).

    A row holding NaN or inf raises (naming the place), never gets node 0; under
    ``nan_policy="ignore"`` a row with no observed value gets -1.
    """
    x, mask, prepared = prepare(
        _checked(chunk, row_offset, nan_policy), weights, metric, nan_policy
    )
    return best_matching_units(x, prepared, mask=mask)


def transform_chunk(
    chunk: Any, weights: np.ndarray, metric: str, row_offset: int = 0, nan_policy: str = "raise"
) -> Any:
    """Distance of every row of a chunk to every node, ``(n, M)`` (numpy or cupy in, same out)."""
    x, mask, prepared = prepare(
        _checked(chunk, row_offset, nan_policy), weights, metric, nan_policy
    )
    return node_distances(x, prepared, mask)


def evaluate_chunk(
    chunk: Any,
    weights: np.ndarray,
    metric: str,
    lattice: Any,
    row_offset: int = 0,
    nan_policy: str = "raise",
    keep_bmus: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Everything a fitted map measures on one chunk, from one BMU search.

    Returns
    -------
    totals : float64 host array ``[sum of BMU distances, topographic errors, rows assigned,
        rows without values, hits of node 0 .. M-1]``, to be added over chunks
    bmus : each row's best-matching unit as a host int64 array (-1: no observed value), or
        None unless ``keep_bmus``
    """
    xp = array_module(chunk)
    x, mask, prepared = prepare(
        _checked(chunk, row_offset, nan_policy), weights, metric, nan_policy
    )
    best, runner_up = best_matching_units(x, prepared, second=True, mask=mask)
    bmus = to_host(best) if keep_bmus else None
    if mask is not None:
        keep = xp.flatnonzero(best >= 0)
        x, mask, best, runner_up = x[keep], mask[keep], best[keep], runner_up[keep]
    distance_sum = float(bmu_distances(x, prepared.weights, best, mask).astype(xp.float64).sum())
    apart = lattice.pair_distances(to_host(best), to_host(runner_up)) > NEIGHBOR_DISTANCE
    hits = to_host(_bin_counts(best, lattice.n_nodes)).astype(np.float64)
    counts = [
        distance_sum,
        float(apart.sum()),
        float(x.shape[0]),
        float(chunk.shape[0] - x.shape[0]),
    ]
    return np.concatenate([counts, hits]), bmus
