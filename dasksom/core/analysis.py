"""Numbers read off a trained map, without drawing it.

Kept apart from :mod:`dasksom.plotting` so that code which only needs the values (the
simpsom facade, a batch job, a worker) does not import matplotlib.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from .lattice import Lattice

__all__ = ["node_differences"]


def node_differences(weights: ArrayLike, lattice: Lattice) -> np.ndarray:
    """U-matrix values: each node's mean Euclidean weight distance to its lattice neighbours.

    Parameters
    ----------
    weights : array-like of shape (M, D)
        Node weights, node ``k = r * width + c``.
    lattice : Lattice
        The map's lattice.  Neighbours are :attr:`Lattice.neighbor_pairs` (lattice distance
        1); on a periodic map they wrap around the seams, so a torus has no edge nodes.

    Returns
    -------
    ndarray of shape (M,)
        NaN for a node without neighbours (a 1 x 1 map).
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
