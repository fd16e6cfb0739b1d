"""The chunk kernels of the out-of-core medians (numba): each cell read once per pass.

:mod:`dasksom.cytometry.summaries` brackets every group's median per marker; each pass, every
chunk reports, for each of its cells, each of the cell's groups (node, metacluster, sample x
node, sample x metacluster) and each marker, which of the bracket's bins the value falls in.
That is some 240 values per cell of 30 markers; numpy would take a dozen passes over arrays of
that size, and their temporaries (gigabytes for a chunk of a million cells), where these loops
take one and hold only the counts.  Compiled on first use and cached on disk (``cache=True``);
no fastmath, so the bin edges are computed exactly as :func:`bin_edge` computes them.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def bin_edge(low: float, width: float, index: int, bins: int) -> float:
    """Edge ``index`` of ``bins`` equal bins from ``low``: one formula wherever it is used."""
    return low + width * (index / bins)


@numba.njit(cache=True, nogil=True)
def _bin_of(v, low, width, bins):  # type: ignore[no-untyped-def]
    """The bin ``t`` with ``edge(t) <= v < edge(t + 1)`` (clipped to the first and last)."""
    t = 0
    if width > 0:
        position = np.floor((v - low) / width * bins)
        if position >= bins - 1:
            t = bins - 1
        elif position > 0:
            t = int(position)
    if t > 0 and v < bin_edge(low, width, t, bins):
        t -= 1
    if t < bins - 1 and v >= bin_edge(low, width, t + 1, bins):
        t += 1
    return t


@numba.njit(cache=True, nogil=True)
def histogram_counts(values, groups, first, low, high, closed, bins, out):  # type: ignore[no-untyped-def]
    """Add to ``out[k, g, m, t]`` every value of marker ``m`` of a cell of group ``first + g``
    inside bracket ``k`` (``low <= v < high``, or ``v == high`` where ``closed``) in bin ``t``.

    ``values`` (n, d) float64, ``groups`` (n, c) int64 (a cell's ``c`` groups; out of
    ``first : first + G`` counts nowhere), brackets ``(2, G, d)``, ``out`` (2, G, d, bins).
    """
    n_groups = low.shape[1]
    for i in range(values.shape[0]):
        for j in range(groups.shape[1]):
            g = groups[i, j] - first
            if g < 0 or g >= n_groups:
                continue
            for m in range(values.shape[1]):
                v = values[i, m]
                for k in range(2):
                    lo, hi = low[k, g, m], high[k, g, m]
                    if v >= lo and (v < hi or (closed[k, g, m] and v == hi)):
                        out[k, g, m, _bin_of(v, lo, hi - lo, bins)] += 1


@numba.njit(cache=True, nogil=True)
def group_extremes(values, groups, first, low, high, count):  # type: ignore[no-untyped-def]
    """Fold the cells into each group's per-marker minimum ``low`` and maximum ``high`` (G, d)
    and its cell count ``count`` (G,), as :func:`histogram_counts` assigns cells to groups."""
    n_groups = low.shape[0]
    for i in range(values.shape[0]):
        for j in range(groups.shape[1]):
            g = groups[i, j] - first
            if g < 0 or g >= n_groups:
                continue
            count[g] += 1
            for m in range(values.shape[1]):
                v = values[i, m]
                if v < low[g, m]:
                    low[g, m] = v
                if v > high[g, m]:
                    high[g, m] = v
