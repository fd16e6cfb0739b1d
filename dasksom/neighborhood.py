"""Neighbourhood functions and the smoothing step ``H @ S`` of the batch update (design.md 2, 4).

``H[j, k] = h(d(j, k))`` with ``d`` the lattice distance.  :func:`smooth` applies ``H`` to the
per-node partial sums once per epoch.
"""

from __future__ import annotations

import numpy as np

from .lattice import Lattice

NEIGHBORHOODS = ("gaussian", "bubble", "mexican_hat")


def check_neighborhood(kind: str) -> None:
    if kind not in NEIGHBORHOODS:
        raise ValueError(
            f"Unknown neighborhood {kind!r}; choose one of {', '.join(NEIGHBORHOODS)}."
        )


def neighborhood_weights(d: np.ndarray, sigma: float, kind: str) -> np.ndarray:
    """``h(d)`` for lattice distances ``d`` and radius ``sigma`` (design.md section 2)."""
    check_neighborhood(kind)
    d = np.asarray(d, dtype=float)
    if kind == "bubble":
        return (d <= sigma).astype(float)
    ratio = d**2 / sigma**2
    gauss = np.exp(-0.5 * ratio)
    if kind == "gaussian":
        return gauss
    return (1.0 - ratio) * gauss


def neighborhood_matrix(lattice: Lattice, sigma: float, kind: str) -> np.ndarray:
    """Dense ``(M, M)`` matrix ``H``; ``M x M`` memory, so for small maps and for tests."""
    return neighborhood_weights(lattice.distance_matrix(), sigma, kind)


def smooth(lattice: Lattice, values: np.ndarray, sigma: float, kind: str) -> np.ndarray:
    """``H @ values`` for ``values`` of shape ``(M, K)``."""
    return neighborhood_matrix(lattice, sigma, kind) @ values
