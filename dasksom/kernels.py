"""Per-chunk array kernels: best-matching units and batch-SOM partial sums (design.md 4-5).

Every function takes a NumPy or a CuPy chunk and computes with that chunk's array module, so the
same code runs on CPU workers and on GPUs.  Work on ``n`` rows is done in row blocks, so a chunk
never holds more than one ``block x M`` score matrix whatever its size, and no ``n x M`` matrix is
built for the whole chunk.  Results that leave a chunk (:class:`PartialSums`) are small: they do
not grow with the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .lattice import NEIGHBOR_DISTANCE

METRICS = ("euclidean", "cosine", "manhattan")
# Elements of the per-block score matrix (rows x nodes): 8 MiB in float32 is big enough for BLAS
# to run at full speed (measured: 1M to 8M elements within noise) and keeps chunk memory bounded.
SCORE_BLOCK_ELEMENTS = 1 << 21
# Elements of the rows x nodes x features difference tensor of the manhattan metric.
MANHATTAN_BLOCK_ELEMENTS = 1 << 22


def check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"Unknown metric {metric!r}; choose one of {', '.join(METRICS)}.")


def array_module(x):
    """``numpy`` or ``cupy``, whichever ``x`` belongs to."""
    if type(x).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def to_host(x) -> np.ndarray:
    """A NumPy copy of a NumPy or CuPy array."""
    return x.get() if hasattr(x, "get") else np.asarray(x)


def compute_dtype(dtype: np.dtype) -> np.dtype:
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

    metric: str
    weights: object  # (M, D), chunk's array module and compute dtype
    scoring: object  # (D, M): W.T (euclidean) or unit-norm W.T (cosine)
    offsets: object  # (M,): ||w||^2 / 2 (euclidean); None otherwise

    @classmethod
    def build(cls, weights: np.ndarray, metric: str, xp, dtype: np.dtype) -> PreparedWeights:
        check_metric(metric)
        w = xp.asarray(weights, dtype=dtype)
        if metric == "euclidean":
            return cls(metric, w, xp.ascontiguousarray(w.T), 0.5 * (w * w).sum(axis=1))
        if metric == "cosine":
            norms = xp.sqrt((w * w).sum(axis=1))
            unit = w / xp.maximum(norms, xp.finfo(dtype).tiny)[:, None]
            return cls(metric, w, xp.ascontiguousarray(unit.T), None)
        return cls(metric, w, None, None)

    @property
    def n_nodes(self) -> int:
        return self.weights.shape[0]


def _scores(block, prepared: PreparedWeights):
    """Per-node scores of a row block, higher is closer (``block x M``)."""
    if prepared.metric == "manhattan":
        xp = array_module(block)
        w = prepared.weights
        n_rows, n_features = block.shape
        step = max(1, MANHATTAN_BLOCK_ELEMENTS // max(1, n_rows * n_features))
        out = xp.empty((n_rows, prepared.n_nodes), dtype=block.dtype)
        for start in range(0, prepared.n_nodes, step):
            part = w[start : start + step]
            out[:, start : start + step] = -xp.abs(block[:, None, :] - part[None, :, :]).sum(-1)
        return out
    scores = block @ prepared.scoring
    if prepared.offsets is not None:
        scores -= prepared.offsets
    return scores


def _block_rows(n_nodes: int, n_features: int, metric: str) -> int:
    if metric == "manhattan":
        return max(1, min(256, MANHATTAN_BLOCK_ELEMENTS // max(1, n_nodes * n_features)))
    return max(64, SCORE_BLOCK_ELEMENTS // max(1, n_nodes))


def best_matching_units(x, prepared: PreparedWeights, second: bool = False):
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
    step = _block_rows(prepared.n_nodes, x.shape[1], prepared.metric)
    for start in range(0, n_rows, step):
        scores = _scores(x[start : start + step], prepared)
        top = xp.argmax(scores, axis=1)
        best[start : start + step] = top
        if second:
            scores[xp.arange(scores.shape[0]), top] = -xp.inf
            runner_up[start : start + step] = xp.argmax(scores, axis=1)
    return (best, runner_up) if second else best


def sum_rows_by_index(x, index, n_groups: int):
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
    """Where a chunk met NaN or inf: how many, and the first (row, column) of the whole array."""

    count: int = 0
    first: tuple[int, int] | None = None

    def __add__(self, other: NonFinite) -> NonFinite:
        firsts = [f for f in (self.first, other.first) if f is not None]
        return NonFinite(self.count + other.count, min(firsts) if firsts else None)


def nonfinite_error(nonfinite: NonFinite, n_rows: int) -> ValueError:
    """The error that tells the user how many NaN / inf the data holds and where."""
    row, col = nonfinite.first
    return ValueError(
        f"The data contains {nonfinite.count} NaN or infinite value(s) among {n_rows} rows; "
        f"the first is at row {row}, column {col}. Remove or impute those rows (for a dask "
        "array x: x[da.isfinite(x).all(axis=1)]) and fit again."
    )


def find_nonfinite(x, row_offset: int) -> NonFinite:
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

    sums: np.ndarray
    counts: np.ndarray
    distances: np.ndarray
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


def bmu_distances(x, weights, bmu):
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
    chunk, weights: np.ndarray, metric: str, row_offset: int = 0, check_finite: bool = True
) -> PartialSums:
    """Batch-SOM partial sums of one chunk against the epoch's weights.

    Parameters
    ----------
    chunk : array of shape (n, D), numpy or cupy, any numeric dtype
    weights : (M, D) numpy array, the weights at the epoch's start
    metric : {"euclidean", "cosine", "manhattan"}
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
    x = xp.asarray(chunk, dtype=compute_dtype(chunk.dtype))
    prepared = PreparedWeights.build(weights, metric, xp, x.dtype)
    bmu = best_matching_units(x, prepared)
    distances = bmu_distances(x, prepared.weights, bmu).astype(xp.float64)
    return PartialSums(
        sum_rows_by_index(x, bmu, n_nodes),
        xp.bincount(bmu, minlength=n_nodes).astype(xp.float64),
        xp.bincount(bmu, weights=distances, minlength=n_nodes),
        int(chunk.shape[0]),
    )


def predict_chunk(chunk, weights: np.ndarray, metric: str):
    """BMU index of every row of a chunk (numpy or cupy in, same out)."""
    xp = array_module(chunk)
    x = xp.asarray(chunk, dtype=compute_dtype(chunk.dtype))
    return best_matching_units(x, PreparedWeights.build(weights, metric, xp, x.dtype))


def hits_chunk(chunk, weights: np.ndarray, metric: str, lattice) -> np.ndarray:
    """How many rows of a chunk each node wins, as a host array of shape ``(M,)``."""
    xp = array_module(chunk)
    return to_host(xp.bincount(predict_chunk(chunk, weights, metric), minlength=lattice.n_nodes))


def quality_chunk(chunk, weights: np.ndarray, metric: str, lattice) -> np.ndarray:
    """``[sum of BMU distances, topographic errors, rows]`` of one chunk, as float64 (3,)."""
    xp = array_module(chunk)
    x = xp.asarray(chunk, dtype=compute_dtype(chunk.dtype))
    prepared = PreparedWeights.build(weights, metric, xp, x.dtype)
    best, runner_up = best_matching_units(x, prepared, second=True)
    distance_sum = float(bmu_distances(x, prepared.weights, best).astype(xp.float64).sum())
    apart = lattice.pair_distances(to_host(best), to_host(runner_up)) > NEIGHBOR_DISTANCE
    return np.array([distance_sum, float(apart.sum()), float(x.shape[0])])
