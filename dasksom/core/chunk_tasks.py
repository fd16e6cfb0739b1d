"""The functions dask maps over row chunks of a fitted map: BMUs, distances, quality.

:func:`predict_chunk` gives each row's BMU, :func:`transform_chunk` its distance to every node,
:func:`nearest_chunk` its BMU and the distance to it together (one read of the rows for both),
and :func:`evaluate_chunk` the terms of the quality measures (design.md section 7) and the hit
counts, from one search.  Each checks its chunk for NaN or inf (naming the place), prepares the
weights once (:func:`dasksom.core.metrics.prepare`) and runs the search of
:mod:`dasksom.core.search`."""

from __future__ import annotations

from typing import Any

import numpy as np

from dasksom.backends.arrays import array_module, to_host
from dasksom.core.lattice import NEIGHBOR_DISTANCE
from dasksom.core.metrics import PreparedWeights, prepare
from dasksom.core.missing import find_nonfinite
from dasksom.core.pruned import PrunedIndex
from dasksom.core.search import best_matching_units, bmu_distances, node_distances
from dasksom.core.sums import _bin_counts


def _checked_and_prepared(
    chunk: Any, weights: np.ndarray, metric: str, row_offset: int, nan_policy: str
) -> tuple[Any, Any, PreparedWeights]:
    """``prepare``'s rows, mask and weights for ``chunk``, once it is known to hold no value
    that ``nan_policy`` refuses."""
    find_nonfinite(chunk, row_offset, nan_policy).raise_if_any()
    return prepare(chunk, weights, metric, nan_policy)


def predict_chunk(
    chunk: Any,
    weights: np.ndarray,
    metric: str,
    row_offset: int = 0,
    nan_policy: str = "raise",
    index: PrunedIndex | None = None,
) -> Any:
    """BMU index of every row of a chunk (numpy or cupy in, same out).

    Parameters
    ----------
    chunk : array of shape (n, D), NumPy or CuPy
        Rows of any numeric dtype.
    weights : ndarray of shape (M, D)
        The map's weights.
    metric : {"euclidean", "cosine", "manhattan"}
        A name in :data:`dasksom.core.metrics.METRICS`.
    row_offset : int, default=0
        Index of the chunk's first row in the whole array, for error messages.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"ignore"``: NaN marks a missing value and the search runs over the observed features.
    index : PrunedIndex or None, default=None
        The weights' index for the exact pruned search; None searches by brute force (see
        :func:`dasksom.core.search.best_matching_units`).

    Returns
    -------
    int64 array of shape (n,), in the chunk's array module
        Ties go to the lowest node; under ``nan_policy="ignore"`` a row with no observed value
        gets -1.

    Raises
    ------
    ValueError
        When a row holds NaN or inf (NaN only under ``nan_policy="raise"``), naming how many and
        the first place: such a row never gets node 0.
    """
    x, mask, prepared = _checked_and_prepared(chunk, weights, metric, row_offset, nan_policy)
    return best_matching_units(x, prepared, mask=mask, index=index)


def transform_chunk(
    chunk: Any, weights: np.ndarray, metric: str, row_offset: int = 0, nan_policy: str = "raise"
) -> Any:
    """Distance of every row of a chunk to every node (numpy or cupy in, same out).

    Parameters
    ----------
    chunk : array of shape (n, D), NumPy or CuPy
        Rows of any numeric dtype.
    weights : ndarray of shape (M, D)
        The map's weights.
    metric : {"euclidean", "cosine", "manhattan"}
        A name in :data:`dasksom.core.metrics.METRICS`; distances are in its own terms.
    row_offset : int, default=0
        Index of the chunk's first row in the whole array, for error messages.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"ignore"``: NaN marks a missing value and distances run over the observed features.

    Returns
    -------
    array of shape (n, M), in the chunk's array module
        NaN in the rows with no observed value.

    Raises
    ------
    ValueError
        When a row holds a value ``nan_policy`` refuses, as in :func:`predict_chunk`.
    """
    x, mask, prepared = _checked_and_prepared(chunk, weights, metric, row_offset, nan_policy)
    return node_distances(x, prepared, mask)


def nearest_chunk(
    chunk: Any,
    weights: np.ndarray,
    metric: str,
    row_offset: int = 0,
    nan_policy: str = "raise",
    index: PrunedIndex | None = None,
) -> Any:
    """Every row's BMU and its distance to it, side by side (numpy or cupy in, same out).

    The BMUs are those of :func:`predict_chunk` and the distances those of
    :func:`transform_chunk` at the BMU's column, so a caller that wants both reads its rows
    once.  The distances cost one more ``n x M x D`` product per chunk than the BMUs alone.

    Parameters
    ----------
    chunk : array of shape (n, D), NumPy or CuPy
        Rows of any numeric dtype.
    weights : ndarray of shape (M, D)
        The map's weights.
    metric : {"euclidean", "cosine", "manhattan"}
        A name in :data:`dasksom.core.metrics.METRICS`; distances are in its own terms.
    row_offset : int, default=0
        Index of the chunk's first row in the whole array, for error messages.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"ignore"``: NaN marks a missing value; both are taken over the observed features.
    index : PrunedIndex or None, default=None
        As for :func:`predict_chunk`.

    Returns
    -------
    float64 array of shape (n, 2), in the chunk's array module
        Column 0 the BMU's index (exact in float64 for any map), column 1 the distance to it;
        ``[-1, NaN]`` for a row with no observed value.

    Raises
    ------
    ValueError
        When a row holds a value ``nan_policy`` refuses, as in :func:`predict_chunk`.
    """
    xp = array_module(chunk)
    x, mask, prepared = _checked_and_prepared(chunk, weights, metric, row_offset, nan_policy)
    best = best_matching_units(x, prepared, mask=mask, index=index)
    distances = node_distances(x, prepared, mask)
    out = xp.empty((x.shape[0], 2), dtype=xp.float64)
    out[:, 0] = best
    out[:, 1] = distances[xp.arange(x.shape[0]), xp.maximum(best, 0)]
    out[best < 0, 1] = xp.nan
    return out


def evaluate_chunk(
    chunk: Any,
    weights: np.ndarray,
    metric: str,
    lattice: Any,
    row_offset: int = 0,
    nan_policy: str = "raise",
    keep_bmus: bool = False,
    index: PrunedIndex | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Everything a fitted map measures on one chunk, from one BMU search.

    Parameters
    ----------
    chunk : array of shape (n, D), NumPy or CuPy
        Rows of any numeric dtype.
    weights : ndarray of shape (M, D)
        The map's weights.
    metric : {"euclidean", "cosine", "manhattan"}
        Decides the BMUs; the quantization error's distances are Euclidean whatever the metric.
    lattice : Lattice
        The map's lattice, for the topographic error (design.md section 7).
    row_offset : int, default=0
        Index of the chunk's first row in the whole array, for error messages.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"ignore"``: NaN marks a missing value; everything is taken over the observed features.
    keep_bmus : bool, default=False
        Also return each row's BMU.
    index : PrunedIndex or None, default=None
        The weights' index for the exact pruned search; None searches by brute force (see
        :func:`dasksom.core.search.best_matching_units`).

    Returns
    -------
    totals : float64 host array of shape (4 + M,)
        ``[sum of BMU distances, topographic errors, rows assigned, rows without values, hits
        of node 0 .. M-1]``, to be added over chunks.
    bmus : host int64 array of shape (n,) or None
        Each row's best-matching unit (-1: no observed value); None unless ``keep_bmus``.

    Raises
    ------
    ValueError
        When a row holds a value ``nan_policy`` refuses, as in :func:`predict_chunk`.
    """
    xp = array_module(chunk)
    x, mask, prepared = _checked_and_prepared(chunk, weights, metric, row_offset, nan_policy)
    best, runner_up = best_matching_units(x, prepared, second=True, mask=mask, index=index)
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
