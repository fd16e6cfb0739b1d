"""Per-node statistics of the rows a map assigns to each node, computed chunk by chunk and
merged exactly: hits, the sum of the distances to the best-matching unit (for the per-node
quantization error), label counts, per-feature totals of the data, and a reservoir sample of
row ids per node.

The sample is a *bottom-k* sample: every row gets a key, a deterministic hash of its id, and a
node keeps the ``k`` rows of smallest key.  Merging two summaries keeps the ``k`` smallest keys
of both, so any chunking and any order of merges give the same sample, and it is a uniform
sample of the node's rows (the hash spreads the ids over the keys).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["NodeSummary", "chunk_summary", "merge_summaries", "row_keys"]

# The key of an empty slot: above every key row_keys gives (they are below 2**63).
EMPTY_KEY = np.uint64(2**64 - 1)


def row_keys(row_ids: np.ndarray) -> np.ndarray:
    """The sampling key of each row id: the splitmix64 hash of the id, below ``2**63``.

    Parameters
    ----------
    row_ids : ndarray of int
        Row ids (non-negative).

    Returns
    -------
    ndarray of uint64, same shape
    """
    with np.errstate(over="ignore"):
        z = np.asarray(row_ids).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return z >> np.uint64(1)


@dataclass
class NodeSummary:
    """What a pass over the data says about each of the ``M`` nodes of a map.

    Attributes
    ----------
    hits : ndarray of int64, shape (M,)
        Rows whose best-matching unit is the node.
    distance_sum : ndarray of float64, shape (M,)
        Sum of those rows' Euclidean distances to the node's weights.
    label_counts : ndarray of int64, shape (M, L)
        How many of those rows carry each label code (``L = 0`` without labels).
    sample_keys : ndarray of uint64, shape (M, k)
        The keys of the sampled rows, ascending; :data:`EMPTY_KEY` in unused slots.
    sample_ids : ndarray of int64, shape (M, k)
        The ids of the sampled rows, in the order of their keys; -1 in unused slots.
    feature_sum, feature_square_sum : ndarray of float64, shape (D,)
        Per-feature sum and sum of squares of the rows' observed values.
    feature_count : ndarray of int64, shape (D,)
        Per-feature number of observed (not NaN) values.
    """

    hits: np.ndarray
    distance_sum: np.ndarray
    label_counts: np.ndarray
    sample_keys: np.ndarray
    sample_ids: np.ndarray
    feature_sum: np.ndarray
    feature_square_sum: np.ndarray
    feature_count: np.ndarray

    @property
    def quantization_error(self) -> np.ndarray:
        """Mean distance of each node's rows to its weights; NaN for a node without rows."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.hits > 0, self.distance_sum / self.hits, np.nan)

    @property
    def feature_mean(self) -> np.ndarray:
        """Mean of each feature over the rows (NaN for a feature never observed)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.feature_sum / self.feature_count

    @property
    def feature_std(self) -> np.ndarray:
        """Standard deviation of each feature over the rows."""
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.feature_mean
            variance = self.feature_square_sum / self.feature_count - mean**2
        return np.sqrt(np.maximum(variance, 0.0))

    def samples(self, node: int) -> np.ndarray:
        """The sampled row ids of ``node`` (at most ``k``), in the order of their keys."""
        ids = self.sample_ids[node]
        return ids[ids >= 0]


def chunk_summary(
    data: np.ndarray,
    weights: np.ndarray,
    bmus: np.ndarray,
    row_ids: np.ndarray,
    label_codes: np.ndarray | None,
    n_labels: int,
    sample_size: int,
) -> NodeSummary:
    """The summary of one chunk of rows.

    Parameters
    ----------
    data : ndarray of shape (n, D)
        The rows (NaN for a missing value: distances are over the observed features).
    weights : ndarray of shape (M, D)
        The map's weights.
    bmus : ndarray of int, shape (n,)
        Each row's best-matching unit; -1 for a row that has none (it is left out).
    row_ids : ndarray of int, shape (n,)
        Each row's id (its index in the whole data).
    label_codes : ndarray of int, shape (n,), or None
        Each row's label as a code in ``[0, n_labels)``.
    n_labels : int
        The number of label codes (0 without labels).
    sample_size : int
        ``k``, the rows sampled per node.

    Returns
    -------
    NodeSummary
    """
    data = np.asarray(data, dtype=np.float64)
    bmus = np.asarray(bmus, dtype=np.int64)
    n_nodes, n_features = weights.shape
    assigned = bmus >= 0
    rows, nodes, ids = data[assigned], bmus[assigned], np.asarray(row_ids)[assigned]
    difference = rows - np.asarray(weights, dtype=np.float64)[nodes]
    distances = np.sqrt(np.nansum(difference * difference, axis=1))
    hits = np.bincount(nodes, minlength=n_nodes).astype(np.int64)
    distance_sum = np.bincount(nodes, distances, minlength=n_nodes)
    if label_codes is not None and n_labels > 0:
        codes = np.asarray(label_codes, dtype=np.int64)[assigned]
        flat = np.bincount(nodes * n_labels + codes, minlength=n_nodes * n_labels)
        label_counts = flat.reshape(n_nodes, n_labels).astype(np.int64)
    else:
        label_counts = np.zeros((n_nodes, 0), dtype=np.int64)
    observed = ~np.isnan(data)
    values = np.where(observed, data, 0.0)
    keys, sample_ids = _bottom_k(nodes, row_keys(ids), ids, n_nodes, sample_size)
    return NodeSummary(
        hits=hits,
        distance_sum=distance_sum,
        label_counts=label_counts,
        sample_keys=keys,
        sample_ids=sample_ids,
        feature_sum=values.sum(axis=0) if len(data) else np.zeros(n_features),
        feature_square_sum=(values * values).sum(axis=0) if len(data) else np.zeros(n_features),
        feature_count=observed.sum(axis=0).astype(np.int64),
    )


def _bottom_k(
    nodes: np.ndarray, keys: np.ndarray, ids: np.ndarray, n_nodes: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per node, the ``k`` (key, id) pairs of smallest key, as ``(M, k)`` tables."""
    out_keys = np.full((n_nodes, k), EMPTY_KEY, dtype=np.uint64)
    out_ids = np.full((n_nodes, k), -1, dtype=np.int64)
    if len(nodes) == 0 or k == 0:
        return out_keys, out_ids
    order = np.lexsort((keys, nodes))
    nodes, keys, ids = nodes[order], keys[order], ids[order]
    starts = np.searchsorted(nodes, nodes, side="left")
    rank = np.arange(len(nodes)) - starts
    keep = rank < k
    out_keys[nodes[keep], rank[keep]] = keys[keep]
    out_ids[nodes[keep], rank[keep]] = ids[keep]
    return out_keys, out_ids


def merge_summaries(a: NodeSummary, b: NodeSummary) -> NodeSummary:
    """The summary of the rows of ``a`` and ``b`` together (exact, and the same in any order).

    Parameters
    ----------
    a, b : NodeSummary
        Summaries of disjoint sets of rows of the same map, with the same labels and ``k``.

    Returns
    -------
    NodeSummary
    """
    k = a.sample_keys.shape[1]
    keys = np.concatenate([a.sample_keys, b.sample_keys], axis=1)
    ids = np.concatenate([a.sample_ids, b.sample_ids], axis=1)
    # Ties (the same id in both, which disjoint rows never give) would keep the smaller id.
    order = np.lexsort((ids, keys), axis=1)[:, :k]
    return NodeSummary(
        hits=a.hits + b.hits,
        distance_sum=a.distance_sum + b.distance_sum,
        label_counts=a.label_counts + b.label_counts,
        sample_keys=np.take_along_axis(keys, order, axis=1),
        sample_ids=np.take_along_axis(ids, order, axis=1),
        feature_sum=a.feature_sum + b.feature_sum,
        feature_square_sum=a.feature_square_sum + b.feature_square_sum,
        feature_count=a.feature_count + b.feature_count,
    )
