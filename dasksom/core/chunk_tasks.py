"""The functions dask maps over row chunks of a fitted map: BMUs, distances, quality.

Each checks its chunk for NaN or inf (naming the place), prepares the weights once and runs the
search of :mod:`dasksom.core.search`."""

from __future__ import annotations

from typing import Any

import numpy as np

from dasksom.backends.arrays import array_module, to_host
from dasksom.core.lattice import NEIGHBOR_DISTANCE
from dasksom.core.metrics import prepare
from dasksom.core.missing import find_nonfinite
from dasksom.core.search import best_matching_units, bmu_distances, node_distances
from dasksom.core.sums import _bin_counts


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
