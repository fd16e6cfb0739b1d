"""The projection: samples drawn as jittered points on their best-matching units, coloured by
label, over the map's tiles.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from dasksom.core.lattice import Lattice
from dasksom.plotting.base import (
    CmapLike,
    categorical_colors,
    fitted_map,
    host_bmus,
    legend_right,
    save_and_show,
    to_numpy,
)
from dasksom.plotting.tiles import draw_map_tiles, torus_bounds, wrap_points

__all__ = ["plot_projection"]


def plot_projection(
    som: Any,
    X: Any,
    labels: Any = None,
    jitter: float = 0.3,
    *,
    bmus: ArrayLike | None = None,
    random_state: int | None = 0,
    values: ArrayLike | None = None,
    ax: Axes | None = None,
    cmap: CmapLike | None = None,
    title: str | None = "Projection",
    marker_size: float | None = None,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """Samples drawn as points on their best-matching units, jittered so they don't stack.

    Parameters
    ----------
    som : fitted SOM
        Anything with ``weights_`` and ``lattice_``, e.g. a fitted :class:`dasksom.SOM`.
    X : array-like or dask array of shape (n_samples, D), or None with ``bmus``
    labels : array-like of shape (n_samples,), default=None
        Colour points by label, with a legend; None: all in one colour.
    jitter : float, default=0.3
        Points spread uniformly up to this far from their node's centre (0.5: the tile edge).
    bmus : int array-like of shape (n_samples,), default=None
        Each sample's best-matching unit, when the caller has them: saves a pass over X.
    random_state : int or None, default=0
        Seed of the jitter, so that the same call draws the same picture.
    values : array-like of shape (M,), default=None
        Colour the tiles underneath in grey (e.g. the U-matrix); None: plain tiles.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    cmap : str or Colormap, default=None
        Point colours per label; None: ``tab10`` / ``tab20`` / ``turbo`` by their number.
    title : str, default="Projection"
    marker_size : float, default=None
        Point area; None: smaller the more points there are.
    show, print_out : bool, default=False
        Call ``plt.show()``; save the figure to ``file_name``.
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./som_projection.png``.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.scatter` (``linewidths`` 0 unless given).

    Returns
    -------
    fig, ax
    """
    _, lattice = fitted_map(som)
    points, labels = _jittered_points(som, X, labels, bmus, lattice, jitter, random_state)
    under = np.full(lattice.n_nodes, np.nan) if values is None else values
    fig, ax, _ = draw_map_tiles(under, lattice, ax=ax, cmap="Greys", title=title, colorbar=False)
    size = marker_size if marker_size is not None else float(np.clip(20000 / len(points), 2, 30))
    kwargs.setdefault("linewidths", 0)
    _scatter_points(ax, points, labels, cmap, size, **kwargs)
    save_and_show(fig, show, print_out, file_name, "./som_projection.png")
    return fig, ax


def _jittered_points(
    som: Any,
    X: Any,
    labels: Any,
    bmus: ArrayLike | None,
    lattice: Lattice,
    jitter: float,
    random_state: int | None,
) -> tuple[np.ndarray, Any]:
    """A point near its unit's centre for every sample that has a unit (wrapped onto the
    torus rectangle of a periodic map), and those samples' labels (None without labels)."""
    nodes = host_bmus(som, X, bmus, lattice.n_nodes)
    assigned = nodes >= 0
    if labels is not None:
        labels = to_numpy(labels).ravel()
        if labels.shape[0] != len(nodes):
            raise ValueError(f"Got {labels.shape[0]} labels for {len(nodes)} samples.")
        labels = labels[assigned]
    nodes = nodes[assigned]
    jitters = np.random.default_rng(random_state).uniform(-jitter, jitter, size=(len(nodes), 2))
    return wrap_points(lattice.positions[nodes] + jitters, torus_bounds(lattice)), labels


def _scatter_points(
    ax: Axes, points: np.ndarray, labels: Any, cmap: CmapLike | None, size: float, **kwargs: Any
) -> None:
    """The points in one colour, or one scatter per label in its own colour with a legend
    right of the map."""
    if labels is None:
        x, y = points.T
        ax.scatter(x, y, s=size, color=categorical_colors(cmap, 1)[0], **kwargs)
        return
    labels = to_numpy(labels).ravel()
    if labels.shape[0] != len(points):
        raise ValueError(f"Got {labels.shape[0]} labels for {len(points)} samples.")
    classes = np.unique(labels)
    colors = categorical_colors(cmap, len(classes))
    for label, color in zip(classes, colors, strict=True):
        chosen = labels == label
        x, y = points[chosen].T
        ax.scatter(x, y, s=size, color=color, label=str(label), **kwargs)
    legend_right(ax, markerscale=max(1.0, 6 / np.sqrt(size)))
