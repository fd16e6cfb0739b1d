"""Out-of-core group statistics: counts and per-marker medians of cells grouped by node,
metacluster or sample, from a few passes over chunked data.

Medians use an exact-bracketing histogram refinement: a first pass finds every group's
minimum and maximum per marker; each further pass histograms, into ``bins`` equal bins, the
values inside the bracket that holds the two middle order statistics (ranks ``(n - 1) // 2``
and ``n // 2``, whose mean is numpy's median) and narrows each bracket to the bin holding its
rank.  After ``passes`` passes each bracket is ``(max - min) / bins ** passes`` wide and the
estimate, the mean of the two brackets' midpoints, is within half of that of the exact median
(:func:`median_error_bound`); a group whose values in the bracket are all equal is exact.  The
defaults (32 bins, 5 passes) bound the error by ``(max - min) / 6.7e7``, below float32
resolution.  Only ``2 x groups x markers x bins`` counts travel per chunk; groups are
processed in batches so that this stays below ``max_bytes``.  A chunk's counts come from the
numba loops of :mod:`dasksom.cytometry.histograms`, which read each cell once per pass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

from dasksom.training.engine import compute_context, tree_sum

DEFAULT_BINS = 32
DEFAULT_PASSES = 5
# Counts each chunk task may hand back per pass (bytes); more groups are done in batches.
DEFAULT_MAX_BYTES = 64 * 2**20
_SPLIT_EVERY = 8


def grouped_counts(groups: da.Array, n_groups: int) -> np.ndarray:
    """How many rows carry each group index (``-1``, or any index out of range, counts nowhere).

    Parameters
    ----------
    groups : dask array of int, shape (n,) or (n, k)
        One group per row, or ``k`` (one per column).
    n_groups : int

    Returns
    -------
    ndarray of int64, shape (n_groups,)
    """
    task = dask.delayed(_counts, pure=True)
    parts = [task(block, n_groups) for block in groups.to_delayed().ravel()]
    if not parts:
        return np.zeros(n_groups, dtype=np.int64)
    with compute_context():
        return np.asarray(tree_sum(parts).compute(), dtype=np.int64)


def median_error_bound(
    low: np.ndarray, high: np.ndarray, bins: int = DEFAULT_BINS, passes: int = DEFAULT_PASSES
) -> np.ndarray:
    """The largest gap between :func:`grouped_medians` and the exact median.

    Parameters
    ----------
    low, high : ndarray
        The group's minimum and maximum per marker.
    bins, passes : int
        As :func:`grouped_medians`.

    Returns
    -------
    ndarray
        ``(high - low) / (2 * bins ** passes)``.
    """
    return (np.asarray(high) - np.asarray(low)) / (2.0 * float(bins) ** passes)


def grouped_medians(
    values: da.Array,
    groups: da.Array,
    n_groups: int,
    *,
    bins: int = DEFAULT_BINS,
    passes: int = DEFAULT_PASSES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Median of every column within every group, out of core (see the module docstring).

    Parameters
    ----------
    values : dask array of shape (n, d)
        Finite values, chunked by rows only.
    groups : dask array of int, shape (n,) or (n, k)
        Each row's group, ``0 .. n_groups - 1``, or its ``k`` groups (one per column, e.g.
        node, metacluster and sample x node offset into one range, so that one set of passes
        serves them all); other values (``-1``) belong to none.  The row chunks of
        ``values``, one chunk along ``k``.
    n_groups : int
    bins : int, default=32
        Bins per refinement pass (at least 2).
    passes : int, default=5
        Refinement passes after the min/max pass; ``passes + 1`` reads of the data per batch.
    max_bytes : int, default=64 MiB
        The most memory the counts of one chunk may take; groups are split into batches
        (each a further ``passes + 1`` reads) to respect it.

    Returns
    -------
    ndarray of float64, shape (n_groups, d)
        Within :func:`median_error_bound` of ``numpy.median`` of each group's rows; NaN for
        an empty group.
    """
    if bins < 2 or passes < 0:
        raise ValueError(f"bins must be at least 2 and passes at least 0, not {bins}, {passes}")
    n_columns = int(values.shape[1])
    per_batch = max(1, max_bytes // (2 * n_columns * bins * 8))
    # Optimised together: a chunk's values and groups share the tasks they come from (the read
    # and the transform), where separately fused graphs would each compute them again.
    values, groups = dask.optimize(values, groups)
    value_blocks = values.to_delayed(optimize_graph=False).ravel()
    group_blocks = groups.to_delayed(optimize_graph=False).ravel()
    out = np.full((n_groups, n_columns), np.nan)
    for first in range(0, n_groups, per_batch):
        last = min(first + per_batch, n_groups)
        out[first:last] = _batch_medians(value_blocks, group_blocks, first, last, bins, passes)
    return out


def _batch_medians(
    value_blocks: np.ndarray,
    group_blocks: np.ndarray,
    first: int,
    last: int,
    bins: int,
    passes: int,
) -> np.ndarray:
    pairs = list(zip(value_blocks, group_blocks, strict=True))
    extremes = dask.delayed(_extremes, pure=True)
    with compute_context():
        low, high, count = _reduce(
            [extremes(v, g, first, last) for v, g in pairs], _combine_extremes
        ).compute()
    low, high = np.where(count > 0, low, 0.0), np.where(count > 0, high, 0.0)
    size = (last - first, low.shape[1])
    ranks = np.stack([(count - 1) // 2, count // 2]).astype(np.int64)
    ranks = np.broadcast_to(ranks, (2,) + size).copy()
    lo = np.stack([low, low])
    hi = np.stack([high, high])
    closed = np.ones((2,) + size, dtype=bool)
    below = np.zeros((2,) + size, dtype=np.int64)
    histogram = dask.delayed(_histograms, pure=True)
    for _ in range(passes):
        bracket = dask.delayed((lo, hi, closed))
        parts = [histogram(v, g, first, last, bracket, bins) for v, g in pairs]
        with compute_context():
            counts = tree_sum(parts).compute().reshape((2,) + size + (bins,))
        lo, hi, closed, below = _narrowed(counts, lo, hi, closed, below, ranks, bins)
    return np.where(count > 0, (lo + hi).sum(axis=0) / 4.0, np.nan)


def _narrowed(
    counts: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    closed: np.ndarray,
    below: np.ndarray,
    ranks: np.ndarray,
    bins: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each bracket narrowed to the bin that holds its rank."""
    cumulative = np.cumsum(counts, axis=-1)
    target = ranks - below
    chosen = np.minimum((cumulative <= target[..., None]).sum(axis=-1), bins - 1)
    before = np.take_along_axis(cumulative, chosen[..., None], axis=-1)[..., 0]
    before = before - np.take_along_axis(counts, chosen[..., None], axis=-1)[..., 0]
    width = hi - lo
    last = chosen == bins - 1
    new_lo = _edge(lo, width, chosen, bins)
    new_hi = np.where(last, hi, _edge(lo, width, chosen + 1, bins))
    return new_lo, new_hi, closed & last, below + before


def _edge(lo: np.ndarray, width: np.ndarray, index: np.ndarray, bins: int) -> np.ndarray:
    """Edge ``index`` of ``bins`` equal bins from ``lo``, as the kernels' ``bin_edge``."""
    return lo + width * (index / bins)


def _histograms(
    values: np.ndarray,
    groups: np.ndarray,
    first: int,
    last: int,
    bracket: tuple[np.ndarray, np.ndarray, np.ndarray],
    bins: int,
) -> np.ndarray:
    from dasksom.cytometry.histograms import histogram_counts

    lo, hi, closed = bracket
    out = np.zeros((2, last - first, lo.shape[2], bins), dtype=np.int64)
    histogram_counts(*_kernel_inputs(values, groups), first, lo, hi, closed, bins, out)
    return out.ravel()


def _extremes(
    values: np.ndarray, groups: np.ndarray, first: int, last: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from dasksom.cytometry.histograms import group_extremes

    low = np.full((last - first, values.shape[1]), np.inf)
    high = np.full((last - first, values.shape[1]), -np.inf)
    count = np.zeros(last - first, dtype=np.int64)
    group_extremes(*_kernel_inputs(values, groups), first, low, high, count)
    return low, high, count[:, None]


def _kernel_inputs(values: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values as C-ordered float64 (n, d) and groups as int64 (n, c): a cell's groups."""
    g = np.asarray(groups).astype(np.int64)
    return (
        np.ascontiguousarray(values, dtype=np.float64),
        np.ascontiguousarray(g.reshape(len(g), -1)),
    )


def _combine_extremes(*parts: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple:
    low = np.minimum.reduce([p[0] for p in parts])
    high = np.maximum.reduce([p[1] for p in parts])
    return low, high, sum(p[2] for p in parts)


def _reduce(parts: list, combine: Callable) -> Any:
    task = dask.delayed(combine, pure=True)
    while len(parts) > 1:
        parts = [task(*parts[i : i + _SPLIT_EVERY]) for i in range(0, len(parts), _SPLIT_EVERY)]
    return parts[0]


def _counts(groups: np.ndarray, n_groups: int) -> np.ndarray:
    g = np.asarray(groups).astype(np.int64).ravel()
    g = g[(g >= 0) & (g < n_groups)]
    return np.bincount(g, minlength=n_groups)
