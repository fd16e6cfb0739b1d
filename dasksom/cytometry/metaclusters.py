"""The minimal spanning tree over a map's nodes and the consensus metaclustering of the nodes.

:func:`consensus_metaclusters` is consensus clustering (Monti et al. 2003) with hierarchical
clustering as the inner method, the metaclustering FlowSOM runs: ``resamples`` times, a
random ``fraction`` of the nodes is clustered (average linkage on Euclidean distances, cut
into ``k`` clusters); the consensus of two nodes is how often they fell in one cluster among
the resamples that drew both, and the final clusters cut an average-linkage tree of
``1 - consensus``.  Every draw comes from one numpy ``Generator`` seeded by ``seed``: the same
seed gives the same metaclusters on every machine and run.
"""

from __future__ import annotations

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform

# FlowSOM's metaclustering settings (ConsensusClusterPlus with reps=100, pItem=0.9).
DEFAULT_RESAMPLES = 100
DEFAULT_FRACTION = 0.9


def spanning_tree(codes: np.ndarray) -> np.ndarray:
    """Edges of the minimal spanning tree of the nodes, by Euclidean distance between codes.

    Parameters
    ----------
    codes : ndarray of shape (M, d)

    Returns
    -------
    ndarray of int64, shape (M - 1, 2)
        Node pairs ``(i, j)``, ``i < j``, sorted; nodes with equal codes are joined too (a
        tiny positive length stands for their zero distance).
    """
    distances = squareform(pdist(np.asarray(codes, dtype=np.float64)))
    positive = distances[distances > 0]
    tiny = positive.min() * 1e-9 if positive.size else 1.0
    distances = np.where(distances > 0, distances, tiny)
    np.fill_diagonal(distances, 0.0)
    tree = minimum_spanning_tree(distances).tocoo()
    edges = np.sort(np.stack([tree.row, tree.col], axis=1), axis=1).astype(np.int64)
    return edges[np.lexsort((edges[:, 1], edges[:, 0]))]


def consensus_metaclusters(
    codes: np.ndarray,
    n_clusters: int,
    *,
    resamples: int = DEFAULT_RESAMPLES,
    fraction: float = DEFAULT_FRACTION,
    seed: int = 0,
) -> np.ndarray:
    """Consensus hierarchical metaclusters of the nodes (see the module docstring).

    Parameters
    ----------
    codes : ndarray of shape (M, d)
        The nodes' prototypes.
    n_clusters : int
        Metaclusters wanted, ``1 .. M``.
    resamples : int, default=100
        Resampling rounds.
    fraction : float, default=0.9
        Share of the nodes drawn (without replacement) in each round.
    seed : int, default=0
        Seed of the draws.

    Returns
    -------
    ndarray of int64, shape (M,)
        Each node's metacluster, ``0 ..``, numbered in the order their first nodes appear
        (node 0 is in metacluster 0).
    """
    points = np.asarray(codes, dtype=np.float64)
    n_nodes = points.shape[0]
    if not 1 <= n_clusters <= n_nodes:
        raise ValueError(f"n_clusters must be between 1 and {n_nodes}, not {n_clusters}")
    if not 0 < fraction <= 1 or resamples < 1:
        raise ValueError("fraction must be in (0, 1] and resamples at least 1")
    rng = np.random.default_rng(seed)
    drawn = max(n_clusters, min(n_nodes, int(round(fraction * n_nodes))))
    together = np.zeros((n_nodes, n_nodes))
    both = np.zeros((n_nodes, n_nodes))
    for _ in range(resamples):
        subset = np.sort(rng.choice(n_nodes, size=drawn, replace=False))
        labels = _cut(points[subset], n_clusters)
        same = (labels[:, None] == labels[None, :]).astype(np.float64)
        together[np.ix_(subset, subset)] += same
        both[np.ix_(subset, subset)] += 1.0
    consensus = np.divide(together, both, out=np.zeros_like(together), where=both > 0)
    np.fill_diagonal(consensus, 1.0)
    dissimilarity = squareform(1.0 - consensus, checks=False)
    labels = fcluster(linkage(dissimilarity, "average"), n_clusters, criterion="maxclust")
    return _in_order(labels)


def _cut(points: np.ndarray, n_clusters: int) -> np.ndarray:
    if points.shape[0] == 1:
        return np.zeros(1, dtype=np.int64)
    return fcluster(linkage(pdist(points), "average"), n_clusters, criterion="maxclust")


def _in_order(labels: np.ndarray) -> np.ndarray:
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    renumber = np.empty(len(order), dtype=np.int64)
    renumber[order] = np.arange(len(order))
    return renumber[np.unique(labels, return_inverse=True)[1]]
