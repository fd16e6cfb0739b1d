"""Numbers read off a trained map, without drawing it: the U-matrix values
(:func:`node_differences`) and the labels each node wins (:func:`label_votes`,
:func:`majority_label_accuracy`).

Kept apart from :mod:`dasksom.plotting` so that code which only needs the values (the
simpsom facade, a batch job, a worker) does not import matplotlib.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from dasksom.core.lattice import Lattice

__all__ = ["node_differences"]


def node_differences(weights: ArrayLike, lattice: Lattice) -> np.ndarray:
    """U-matrix values: each node's mean Euclidean weight distance to its lattice neighbours.

    Parameters
    ----------
    weights : array-like of shape (M, D)
        Node weights, node ``k = r * width + c``.
    lattice : Lattice
        The map's lattice.  Neighbours are
        :attr:`~dasksom.core.lattice.Lattice.neighbor_pairs` (lattice distance 1); on a periodic
        map they wrap around the seams, so a torus has no edge nodes.

    Returns
    -------
    ndarray of shape (M,)
        NaN for a node without neighbours (a 1 x 1 map).

    Raises
    ------
    ValueError
        When ``weights`` is not of shape ``(lattice.n_nodes, D)``.
    """
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape[0] != lattice.n_nodes:
        raise ValueError(
            f"weights must have shape (M, D) with M = {lattice.n_nodes} nodes for a "
            f"{lattice.height} x {lattice.width} map, got {weights.shape}."
        )
    a, b = lattice.neighbor_pairs
    distances = np.linalg.norm(weights[a] - weights[b], axis=1)
    m = lattice.n_nodes
    # Each pair is listed once: its distance counts for both ends.
    totals = np.bincount(a, distances, m) + np.bincount(b, distances, m)
    counts = np.bincount(a, minlength=m) + np.bincount(b, minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return totals / counts


def label_votes(
    nodes: np.ndarray, labels: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count the labels of the samples each node wins.

    Parameters
    ----------
    nodes : int array of shape (n_samples,)
        Each sample's best-matching unit; -1 (a row with no observed value, under
        ``nan_policy="ignore"``) votes for no node.
    labels : array of shape (n_samples,)
        Labels of any sortable type.
    n_nodes : int
        Number of nodes of the map.

    Returns
    -------
    classes : ndarray
        The distinct labels, sorted.
    votes : int array of shape (n_nodes, len(classes))
        ``votes[k, c]``: how many samples won by node ``k`` carry label ``classes[c]``.
    codes : int array of shape (n_samples,)
        Each sample's label as an index into ``classes``.

    Raises
    ------
    ValueError
        When ``labels`` and ``nodes`` differ in length.
    """
    nodes = np.asarray(nodes).ravel()
    classes, codes = np.unique(np.asarray(labels).ravel(), return_inverse=True)
    if codes.shape[0] != nodes.shape[0]:
        raise ValueError(f"Got {codes.shape[0]} labels for {nodes.shape[0]} samples.")
    assigned = nodes >= 0
    votes = np.bincount(
        nodes[assigned] * len(classes) + codes[assigned], minlength=n_nodes * len(classes)
    )
    return classes, votes.reshape(n_nodes, len(classes)), codes


def majority_label_accuracy(nodes: np.ndarray, labels: np.ndarray, n_nodes: int) -> float:
    """Share of the samples with a node whose node's majority label is their own.

    Parameters
    ----------
    nodes : int array of shape (n_samples,)
        Each sample's best-matching unit; samples with -1 (no observed value) are left out.
    labels : array of shape (n_samples,)
        Labels of any sortable type.
    n_nodes : int
        Number of nodes of the map.

    Returns
    -------
    float
        Between 0 and 1.  A node's majority label is its most frequent one, ties going to the
        first in sorted order.

    Raises
    ------
    ValueError
        When ``labels`` and ``nodes`` differ in length.
    """
    _, votes, codes = label_votes(nodes, labels, n_nodes)
    nodes = np.asarray(nodes).ravel()
    assigned = nodes >= 0
    return float((votes.argmax(axis=1)[nodes[assigned]] == codes[assigned]).mean())
