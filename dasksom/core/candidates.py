"""The pruned search's last step on CPUs: each row's candidates scored in one pass (numba).

:mod:`dasksom.core.pruned` bounds every distance of a group of rows with one small product and
sets each row's threshold; :func:`best_candidates` then walks each row's bounds once, and for
every node whose bound is within the threshold computes the metric's true score and keeps the
best two.  Only a row's own candidates are scored (a median of 8-20 of 2,500 nodes on MNIST),
where numpy would need several passes over the ``rows x M`` bounds and a product against the
union of a group's candidates, several times larger.

The kernel is compiled by numba on first use and cached on disk (``cache=True``); the dot
products may be reassociated (``fastmath`` limited to ``reassoc`` and ``contract``, so NaN and
inf keep their meaning), which vectorizes them and keeps the standard error bound of a dot
product, ``gamma_D`` of the sum of the absolute terms, in any order.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

# How the kernel scores a candidate (lower is closer), one per metric.
EUCLIDEAN, COSINE, MANHATTAN = 0, 1, 2
SCORE_KINDS = {"euclidean": EUCLIDEAN, "cosine": COSINE, "manhattan": MANHATTAN}
_FASTMATH = {"reassoc", "contract"}


@numba.njit(cache=True, fastmath=_FASTMATH, nogil=True)
def _scan(bounds, limits, rows, nodes, offsets, kind, best, second, counts):  # type: ignore[no-untyped-def]
    n_rows, n_nodes = bounds.shape
    n_features = rows.shape[1]
    for i in range(n_rows):
        limit = limits[i]
        top, top_score = -1, np.inf
        runner, runner_score = -1, np.inf
        found = 0
        for k in range(n_nodes):
            if bounds[i, k] > limit:
                continue
            found += 1
            total = rows.dtype.type(0)
            if kind == MANHATTAN:
                for d in range(n_features):
                    total += abs(rows[i, d] - nodes[k, d])
                score = total
            else:
                for d in range(n_features):
                    total += rows[i, d] * nodes[k, d]
                score = offsets[k] - total
            # Ascending k and strict comparisons: ties go to the lowest node, as in brute force.
            if score < top_score:
                runner, runner_score = top, top_score
                top, top_score = k, score
            elif score < runner_score:
                runner, runner_score = k, score
        best[i] = top
        second[i] = runner
        counts[i] = found


def best_candidates(
    bounds: np.ndarray,
    limits: np.ndarray,
    rows: np.ndarray,
    nodes: np.ndarray,
    offsets: np.ndarray,
    metric: str,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best and second-best candidate of every row, and its number of candidates.

    Parameters
    ----------
    bounds : ndarray of shape (n, M)
        Computed lower bounds of each row's distance to each node.
    limits : ndarray of shape (n,)
        A node is a candidate of row ``i`` when ``bounds[i, k] <= limits[i]``; in the bounds'
        type.
    rows : ndarray of shape (n, D)
        What the scores take: the centred rows (euclidean), the unit rows (cosine), the rows
        (manhattan).
    nodes : ndarray of shape (M, D)
        Likewise, in the rows' type: centred weights, unit weights, weights.
    offsets : ndarray of shape (M,)
        Euclidean: ``|w'|^2 / 2``, so the score ``|w'|^2 / 2 - x'.w'`` ranks as the distance;
        cosine: zeros (the score is ``-x^.w^``); manhattan: unused.
    metric : {"euclidean", "cosine", "manhattan"}

    Returns
    -------
    best, second : int64 ndarrays of shape (n,)
        Ties to the lowest node; ``second`` is -1 for a row with one candidate.
    counts : int64 ndarray of shape (n,)
        Candidates per row (0 only for a row whose bounds or threshold are NaN).
    """
    n_rows = bounds.shape[0]
    best = np.empty(n_rows, dtype=np.int64)
    second = np.empty(n_rows, dtype=np.int64)
    counts = np.empty(n_rows, dtype=np.int64)
    _scan(
        np.ascontiguousarray(bounds),
        np.ascontiguousarray(limits, dtype=bounds.dtype),
        np.ascontiguousarray(rows),
        np.ascontiguousarray(nodes, dtype=rows.dtype),
        np.ascontiguousarray(offsets, dtype=rows.dtype),
        SCORE_KINDS[metric],
        best,
        second,
        counts,
    )
    return best, second, counts


def warm_up(dtype: Any = np.float32) -> None:
    """Compile (or load from numba's cache) the kernel for ``dtype`` before any timing."""
    zeros = np.zeros((1, 1), dtype=dtype)
    best_candidates(zeros, np.zeros(1, dtype), zeros, zeros, np.zeros(1, dtype), "euclidean")
