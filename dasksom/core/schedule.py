"""Radius schedules: how the neighbourhood radius ``sigma`` shrinks over epochs.

simpsom's exponential schedule is design.md section 3; explicit ``(start, end)`` schedules and
the radius of tiny maps are dasksom's own (docs/design.md, "Implementation notes")."""

from __future__ import annotations

from typing import cast

import numpy as np

DECAYS = ("exponential", "linear")


def radius_schedule(
    height: int,
    width: int,
    epochs: int,
    sigma: float | tuple[float, float] | None = None,
    decay: str = "exponential",
) -> np.ndarray:
    """Radius of every epoch ``t = 0 .. epochs - 1``.

    Parameters
    ----------
    height, width : int
        Map size; simpsom's start radius is ``max(height, width) / 2``.
    epochs : int
        Number of epochs ``E``.
    sigma : None, float or (float, float), default=None
        ``None``: simpsom's schedule, ``s0 = max(height, width) / 2``,
        ``s_t = s0 * exp(-t / tau)`` with ``tau = E / ln(s0)``.  A float sets ``s0`` and keeps
        that decay.  A pair ``(start, end)`` decays from ``start`` at the first epoch to
        ``end`` at the last one, exponentially (geometric steps) or linearly.
    decay : {"exponential", "linear"}, default="exponential"
        Shape of the decay between an explicit ``(start, end)`` pair.

    Returns
    -------
    numpy.ndarray of shape ``(epochs,)``
        A start radius of at most 1 stays put: simpsom's ``tau`` is undefined there.

    Raises
    ------
    ValueError
        For an unknown ``decay``, or a radius that is not positive and finite.
    """
    if decay not in DECAYS:
        raise ValueError(f"Unknown sigma decay {decay!r}; choose one of {', '.join(DECAYS)}.")
    t = np.arange(epochs, dtype=float)
    if sigma is None or np.ndim(sigma) == 0:
        # np.ndim(sigma) == 0: a number, or a 0-d array.
        s0 = max(height, width) / 2.0 if sigma is None else float(cast(float, sigma))
        _check_radius(s0, "sigma")
        if s0 <= 1.0:
            # ln(s0) <= 0: simpsom's tau is undefined; a radius that small stays put.
            return np.full(epochs, s0)
        tau = epochs / np.log(s0)
        return s0 * np.exp(-t / tau)
    start, end = (float(s) for s in cast(tuple[float, float], sigma))  # not a number: a pair
    _check_radius(start, "sigma start")
    _check_radius(end, "sigma end")
    fraction = t / max(epochs - 1, 1)
    if decay == "linear":
        return start + (end - start) * fraction
    return start * (end / start) ** fraction


def _check_radius(value: float, name: str) -> None:
    """Refuse a radius that is not positive and finite, calling it ``name``."""
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite radius, got {value!r}.")
