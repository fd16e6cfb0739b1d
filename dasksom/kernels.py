"""Per-chunk array kernels: best-matching units and batch-SOM partial sums (design.md 4-5).

Every function takes a NumPy or a CuPy chunk and computes with that chunk's array module, so the
same code runs on CPU workers and on GPUs.  Work on ``n`` rows is done in row blocks, so a chunk
never holds more than one ``block x M`` score matrix whatever its size, and no ``n x M`` matrix is
built for the whole chunk.  Results that leave a chunk (:class:`PartialSums`) are small: they do
not grow with the number of rows.

Distances are entries of :data:`METRICS`, a table of :class:`Metric` objects: adding a metric
means adding one class there; validation, the BMU search, ``transform`` and the command line's
choices all read the table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .lattice import NEIGHBOR_DISTANCE

# Elements of the per-block score matrix (rows x nodes): 8 MiB in float32 is big enough for BLAS
# to run at full speed (measured: 1M to 8M elements within noise) and keeps chunk memory bounded.
SCORE_BLOCK_ELEMENTS = 1 << 21
# Elements of the rows x nodes x features difference tensor of the manhattan metric.
MANHATTAN_BLOCK_ELEMENTS = 1 << 22


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


@dataclass
class PreparedWeights:
    """Weights in the form a metric's BMU search needs, built once per chunk."""

    metric: Metric
    weights: Any  # (M, D), chunk's array module and compute dtype
    scoring: Any  # what Metric.scores multiplies a row block with (None: not a product)
    offsets: Any  # (M,) subtracted from the product's scores, or None

    @classmethod
    def build(cls, weights: Any, metric: str, xp: Any, dtype: Any) -> PreparedWeights:
        """Weights ``(M, D)`` in the array module ``xp`` and float type ``dtype``."""
        found = get_metric(metric)
        return found.prepare(xp.asarray(weights, dtype=dtype), xp)

    @property
    def n_nodes(self) -> int:
        return self.weights.shape[0]


class Metric:
    """A distance between samples and node weights, as the BMU search uses it.

    ``scores`` of a row block are higher for closer nodes; a product-based metric computes them
    as one matrix product plus per-node offsets, so the search runs at BLAS speed.
    """

    name: str

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        """The weights in the form :meth:`scores` needs (computed once per chunk)."""
        raise NotImplementedError

    def scores(self, block: Any, prepared: PreparedWeights) -> Any:
        """``(rows, M)`` scores of a row block, higher is closer."""
        scores = block @ prepared.scoring
        if prepared.offsets is not None:
            scores -= prepared.offsets
        return scores

    def distances(self, block: Any, scores: Any) -> Any:
        """``(rows, M)`` distances of a row block from its :meth:`scores`."""
        raise NotImplementedError

    def block_rows(self, n_nodes: int, n_features: int) -> int:
        """Rows per block: one ``rows x M`` score matrix of :data:`SCORE_BLOCK_ELEMENTS`."""
        return max(64, SCORE_BLOCK_ELEMENTS // max(1, n_nodes))


class Euclidean(Metric):
    """``||x - w||``; the search maximises ``x . w - ||w||^2 / 2``."""

    name = "euclidean"

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        offsets = 0.5 * (weights * weights).sum(axis=1)
        return PreparedWeights(self, weights, xp.ascontiguousarray(weights.T), offsets)

    def distances(self, block: Any, scores: Any) -> Any:
        xp = array_module(block)
        squared = (block * block).sum(axis=1)[:, None] - 2.0 * scores
        return xp.sqrt(xp.maximum(squared, 0.0))


class Cosine(Metric):
    """``1 - x . w / (||x|| ||w||)``; the search maximises ``x . w / ||w||``."""

    name = "cosine"

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        norms = xp.sqrt((weights * weights).sum(axis=1))
        unit = weights / xp.maximum(norms, xp.finfo(weights.dtype).tiny)[:, None]
        return PreparedWeights(self, weights, xp.ascontiguousarray(unit.T), None)

    def distances(self, block: Any, scores: Any) -> Any:
        xp = array_module(block)
        norms = xp.sqrt((block * block).sum(axis=1))
        return 1.0 - scores / xp.maximum(norms, xp.finfo(block.dtype).tiny)[:, None]


class Manhattan(Metric):
    """``sum |x - w|``, over a bounded ``rows x nodes x features`` difference tensor."""

    name = "manhattan"

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        return PreparedWeights(self, weights, None, None)

    def scores(self, block: Any, prepared: PreparedWeights) -> Any:
        xp = array_module(block)
        w = prepared.weights
        n_rows, n_features = block.shape
        step = max(1, MANHATTAN_BLOCK_ELEMENTS // max(1, n_rows * n_features))
        out = xp.empty((n_rows, prepared.n_nodes), dtype=block.dtype)
        for start in range(0, prepared.n_nodes, step):
            part = w[start : start + step]
            out[:, start : start + step] = -xp.abs(block[:, None, :] - part[None, :, :]).sum(-1)
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


def prepare(chunk: Any, weights: Any, metric: str) -> tuple[Any, PreparedWeights]:
    """A chunk in its compute dtype, and the weights prepared for ``metric`` alongside it."""
    xp = array_module(chunk)
    x = xp.asarray(chunk, dtype=compute_dtype(chunk.dtype))
    return x, PreparedWeights.build(weights, metric, xp, x.dtype)


def best_matching_units(x: Any, prepared: PreparedWeights, second: bool = False) -> Any:
    """BMU index of every row of ``x`` (ties go to the lowest index).

    Parameters
    ----------
    x : array of shape (n, D), numpy or cupy, already in the compute dtype
    prepared : PreparedWeights
    second : bool
        Also return the second-best unit of every row (for the topographic error).

    Returns
    -------
    best, or (best, second_best) : int64 arrays of shape (n,)
    """
    xp = array_module(x)
    n_rows = x.shape[0]
    best = xp.empty(n_rows, dtype=xp.int64)
    runner_up = xp.empty(n_rows, dtype=xp.int64) if second else None
    metric = prepared.metric
    step = metric.block_rows(prepared.n_nodes, x.shape[1])
    for start in range(0, n_rows, step):
        scores = metric.scores(x[start : start + step], prepared)
        top = xp.argmax(scores, axis=1)
        best[start : start + step] = top
        if second:
            scores[xp.arange(scores.shape[0]), top] = -xp.inf
            runner_up[start : start + step] = xp.argmax(scores, axis=1)
    return (best, runner_up) if second else best


def node_distances(x: Any, prepared: PreparedWeights) -> Any:
    """``(n, M)`` distance of every row of ``x`` to every node, in the metric's own terms.

    Meant for ``transform``: the result grows with the rows, so callers take it per chunk.
    """
    xp = array_module(x)
    out = xp.empty((x.shape[0], prepared.n_nodes), dtype=x.dtype)
    metric = prepared.metric
    step = metric.block_rows(prepared.n_nodes, x.shape[1])
    for start in range(0, x.shape[0], step):
        block = x[start : start + step]
        out[start : start + step] = metric.distances(block, metric.scores(block, prepared))
    return out


def sum_rows_by_index(x: Any, index: Any, n_groups: int) -> Any:
    """``out[k] = sum of x[i] with index[i] == k``, shape ``(n_groups, D)``, in O(n x D).

    Sums accumulate in ``x``'s float type (the chunk's compute dtype) and come back as float64,
    the type in which chunks are then added up.
    """
    xp = array_module(x)
    n_rows = x.shape[0]
    if xp is np:
        import scipy.sparse

        # One nonzero per column: the CSC arrays are the index itself, nothing to sort.
        ones = np.ones(n_rows, dtype=x.dtype)
        onehot = scipy.sparse.csc_matrix((ones, index, np.arange(n_rows + 1)), (n_groups, n_rows))
        return np.asarray(onehot @ x, dtype=np.float64)
    import cupyx

    out = xp.zeros((n_groups, x.shape[1]), dtype=x.dtype)
    cupyx.scatter_add(out, index, x)
    return out.astype(xp.float64)


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
        where = (
            ""
            if self.first is None
            else (f"; the first is at row {self.first[0]}, column {self.first[1]}")
        )
        raise ValueError(
            f"The data contains {self.count} NaN or infinite value(s){among}{where}. Remove or "
            "impute those rows (for a dask array x: x[da.isfinite(x).all(axis=1)]) and try again."
        )


def find_nonfinite(x: Any, row_offset: int = 0) -> NonFinite:
    """Count NaN and inf in a chunk; integer data is finite by construction."""
    if np.dtype(x.dtype).kind not in "fc":
        return NonFinite()
    xp = array_module(x)
    bad = ~xp.isfinite(x)
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
    sums : (M, D) float64, ``S[k]``, the sum of the rows whose BMU is ``k``
    counts : (M,) float64, ``n[k]``, how many rows have BMU ``k``
    distances : (M,) float64, sum of ``||x - w_k||`` over the rows whose BMU is ``k``
    n_rows : rows seen
    nonfinite : NaN / inf found in the chunk (then nothing else is summed)
    """

    sums: Any
    counts: Any
    distances: Any
    n_rows: int
    nonfinite: NonFinite = field(default_factory=NonFinite)

    def __add__(self, other: PartialSums) -> PartialSums:
        return PartialSums(
            self.sums + other.sums,
            self.counts + other.counts,
            self.distances + other.distances,
            self.n_rows + other.n_rows,
            self.nonfinite + other.nonfinite,
        )

    def to_host(self) -> PartialSums:
        return PartialSums(
            to_host(self.sums),
            to_host(self.counts),
            to_host(self.distances),
            self.n_rows,
            self.nonfinite,
        )

    @property
    def quantization_error(self) -> float:
        return float(self.distances.sum() / self.n_rows) if self.n_rows else float("nan")


def bmu_distances(x: Any, weights: Any, bmu: Any) -> Any:
    """Euclidean distance from every row to its BMU's weights, in O(n x D).

    Taken in row blocks so that the differences never hold more than a block of the chunk.
    """
    xp = array_module(x)
    out = xp.empty(x.shape[0], dtype=x.dtype)
    step = max(1, SCORE_BLOCK_ELEMENTS // max(1, x.shape[1]))
    for start in range(0, x.shape[0], step):
        diff = weights[bmu[start : start + step]]
        xp.subtract(x[start : start + step], diff, out=diff)
        out[start : start + step] = xp.sqrt(xp.einsum("ij,ij->i", diff, diff))
    return out


def partial_sums(
    chunk: Any, weights: np.ndarray, metric: str, row_offset: int = 0, check_finite: bool = True
) -> PartialSums:
    """Batch-SOM partial sums of one chunk against the epoch's weights.

    Parameters
    ----------
    chunk : array of shape (n, D), numpy or cupy, any numeric dtype
    weights : (M, D) numpy array, the weights at the epoch's start
    metric : a name in :data:`METRICS`
    row_offset : index of the chunk's first row in the whole array, for error messages
    check_finite : look for NaN / inf first; a chunk that has any sums nothing

    Returns
    -------
    PartialSums
    """
    xp = array_module(chunk)
    n_nodes, n_features = weights.shape
    if check_finite:
        nonfinite = find_nonfinite(chunk, row_offset)
        if nonfinite.count:
            zeros = xp.zeros(n_nodes, dtype=xp.float64)
            return PartialSums(
                xp.zeros((n_nodes, n_features), dtype=xp.float64), zeros, zeros, 0, nonfinite
            )
    x, prepared = prepare(chunk, weights, metric)
    bmu = best_matching_units(x, prepared)
    distances = bmu_distances(x, prepared.weights, bmu).astype(xp.float64)
    return PartialSums(
        sum_rows_by_index(x, bmu, n_nodes),
        xp.bincount(bmu, minlength=n_nodes).astype(xp.float64),
        xp.bincount(bmu, weights=distances, minlength=n_nodes),
        int(chunk.shape[0]),
    )


def predict_chunk(chunk: Any, weights: np.ndarray, metric: str, row_offset: int = 0) -> Any:
    """BMU index of every row of a chunk (numpy or cupy in, same out).

    A row holding NaN or inf has no BMU: it raises (naming the place), never gets node 0.
    """
    find_nonfinite(chunk, row_offset).raise_if_any()
    return best_matching_units(*prepare(chunk, weights, metric))


def transform_chunk(chunk: Any, weights: np.ndarray, metric: str, row_offset: int = 0) -> Any:
    """Distance of every row of a chunk to every node, ``(n, M)`` (numpy or cupy in, same out)."""
    find_nonfinite(chunk, row_offset).raise_if_any()
    return node_distances(*prepare(chunk, weights, metric))


def hits_chunk(
    chunk: Any, weights: np.ndarray, metric: str, lattice: Any, row_offset: int = 0
) -> np.ndarray:
    """How many rows of a chunk each node wins, as a host array of shape ``(M,)``."""
    xp = array_module(chunk)
    bmu = predict_chunk(chunk, weights, metric, row_offset)
    return to_host(xp.bincount(bmu, minlength=lattice.n_nodes))


def quality_chunk(
    chunk: Any, weights: np.ndarray, metric: str, lattice: Any, row_offset: int = 0
) -> np.ndarray:
    """``[sum of BMU distances, topographic errors, rows]`` of one chunk, as float64 (3,)."""
    xp = array_module(chunk)
    find_nonfinite(chunk, row_offset).raise_if_any()
    x, prepared = prepare(chunk, weights, metric)
    best, runner_up = best_matching_units(x, prepared, second=True)
    distance_sum = float(bmu_distances(x, prepared.weights, best).astype(xp.float64).sum())
    apart = lattice.pair_distances(to_host(best), to_host(runner_up)) > NEIGHBOR_DISTANCE
    return np.array([distance_sum, float(apart.sum()), float(x.shape[0])])
