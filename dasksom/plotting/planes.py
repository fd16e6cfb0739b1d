"""Planes of the weights: the U-matrix (distances between neighbours) and component planes
(one feature's weight per node), with the choice of which features to show.

The U-matrix values come from :func:`dasksom.core.analysis.node_differences`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dasksom.core.analysis import node_differences
from dasksom.core.lattice import Lattice
from dasksom.plotting.base import CmapLike, fitted_map, map_figsize, pyplot, save_and_show
from dasksom.plotting.tiles import draw_map

__all__ = ["plot_component_planes", "plot_umatrix"]

_PLANES_FILE = "./som_component_planes.png"


def plot_umatrix(
    som: Any,
    *,
    ax: Axes | None = None,
    cmap: CmapLike = "viridis",
    title: str | None = "U-matrix",
    colorbar: bool = True,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """The unified distance matrix: bright tiles are far from their neighbours (cluster
    borders), dark basins are clusters.

    Parameters
    ----------
    som : fitted SOM
        Anything with ``weights_`` and ``lattice_``, e.g. a fitted :class:`dasksom.SOM`.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    cmap : str or Colormap, default="viridis"
    title : str, default="U-matrix"
        None or "" for none.
    colorbar : bool, default=True
        A colorbar labelled "mean distance to neighbours" (``cbar_label=`` changes it).
    show, print_out : bool, default=False
        Call ``plt.show()``; save the figure to ``file_name``.
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./som_umatrix.png``.
    **kwargs
        Passed to :func:`~dasksom.plotting.draw_map`.

    Returns
    -------
    fig, ax
    """
    weights, lattice = fitted_map(som)
    kwargs.setdefault("cbar_label", "mean distance to neighbours")
    return draw_map(
        node_differences(weights, lattice),
        lattice,
        ax=ax,
        cmap=cmap,
        title=title,
        colorbar=colorbar,
        show=show,
        print_out=print_out,
        file_name=file_name if file_name is not None else "./som_umatrix.png",
        **kwargs,
    )


def plot_component_planes(
    som: Any,
    features: int | str | Sequence[int | str] | None = None,
    feature_names: Sequence[str] | None = None,
    ncols: int | None = None,
    *,
    max_features: int = 16,
    ax: Axes | Sequence[Axes] | None = None,
    cmap: CmapLike = "viridis",
    title: str | None = None,
    colorbar: bool = True,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
    **kwargs: Any,
) -> tuple[Figure, Axes] | tuple[Figure, np.ndarray]:
    """Each node's weight for one feature (a component plane), or a grid of several.

    Parameters
    ----------
    som : fitted SOM
        Anything with ``weights_`` and ``lattice_``, e.g. a fitted :class:`dasksom.SOM`.
    features : int, str, sequence of them, or None, default=None
        Features by index or by name.  One feature gives one map and returns ``(fig, ax)``; a
        sequence gives a grid and returns ``(fig, axes)``.  None shows the ``max_features``
        features whose weights vary most across the map (all when there are no more), and the
        figure title says so, e.g. "16 of 784 features, highest weight variance".
    feature_names : sequence of str, default=None
        Names of all ``D`` features, for titles and choosing by name; None: the map's
        ``feature_names_in_`` when it has them.
    ncols : int, default=None
        Columns of the grid; None: about square.
    max_features : int, default=16
        The most planes ``features=None`` shows.
    ax : matplotlib Axes or sequence of Axes, default=None
        One axes for one feature, or at least as many axes as features; None makes a figure.
    cmap : str or Colormap, default="viridis"
    title : str, default=None
        Title of a single plane (None: the feature's name), or the figure's title over a grid
        (None: which features ``features=None`` chose; "" for none).
    colorbar : bool, default=True
    show, print_out : bool, default=False
        Call ``plt.show()``; save the figure to ``file_name``.
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./som_component_planes.png``.
    **kwargs
        Passed to :func:`~dasksom.plotting.draw_map`; ``figsize`` sizes a grid's whole figure.

    Returns
    -------
    fig, ax or fig, axes
        ``axes``: the grid's 2-d array of axes, or the axes given.
    """
    weights, lattice = fitted_map(som)
    names = _feature_names(som, feature_names, weights.shape[1])
    style: dict[str, Any] = {"cmap": cmap, "colorbar": colorbar, **kwargs}
    if isinstance(features, int | np.integer | str):
        # One feature: one axes, as documented.
        fig, plane = _one_plane(weights, lattice, features, names, ax, title, style)
        save_and_show(fig, show, print_out, file_name or _PLANES_FILE, _PLANES_FILE)
        return fig, plane
    fig, axes = _plane_grid_figure(
        weights, lattice, features, names, max_features, ax, ncols, title, style
    )
    save_and_show(fig, show, print_out, file_name, _PLANES_FILE)
    return fig, axes


def _one_plane(
    weights: np.ndarray,
    lattice: Lattice,
    feature: int | str,
    names: list[str] | None,
    ax: Axes | Sequence[Axes] | None,
    title: str | None,
    style: dict[str, Any],
) -> tuple[Figure, Axes]:
    """One feature's plane in ``ax`` (or a new figure), titled by the feature's name unless
    ``title`` is given; ``style`` goes to :func:`draw_map`."""
    f = _feature_index(feature, names, weights.shape[1])
    label = title if title is not None else _feature_label(f, names)
    return draw_map(weights[:, f], lattice, ax=cast(Axes | None, ax), title=label, **style)


def _plane_grid_figure(
    weights: np.ndarray,
    lattice: Lattice,
    features: Sequence[int | str] | None,
    names: list[str] | None,
    max_features: int,
    ax: Axes | Sequence[Axes] | None,
    ncols: int | None,
    title: str | None,
    style: dict[str, Any],
) -> tuple[Figure, np.ndarray]:
    """The chosen features' planes on a grid, under ``title`` (None: which features were
    chosen, when :func:`_chosen_features` chose them)."""
    chosen, default_title = _chosen_features(weights, features, names, max_features)
    fig, axes = _draw_planes(weights, lattice, chosen, names, ax, ncols, style)
    # No title (None) reads as "", as matplotlib's Text does.
    fig.suptitle((default_title if title is None else title) or "")
    return fig, axes


def _feature_names(som: Any, names: Sequence[str] | None, n_features: int) -> list[str] | None:
    """The given feature names, else the map's own ``feature_names_in_``, else None."""
    if names is None:
        names = getattr(som, "feature_names_in_", None)
    if names is None:
        return None
    if len(names) != n_features:
        raise ValueError(f"Got {len(names)} feature names for {n_features} features.")
    return [str(name) for name in names]


def _feature_index(feature: int | str, names: list[str] | None, n_features: int) -> int:
    if isinstance(feature, str):
        if names is None or feature not in names:
            known = "the map has no feature names" if names is None else "not among them"
            raise ValueError(
                f"Unknown feature {feature!r} ({known}); pass feature_names=[...] or indices."
            )
        return names.index(feature)
    if not -n_features <= int(feature) < n_features:
        raise ValueError(f"Feature {feature} is out of range for {n_features} features.")
    return int(feature) % n_features


def _feature_label(f: int, names: list[str] | None) -> str:
    return names[f] if names is not None else f"feature {f}"


def _chosen_features(
    weights: np.ndarray,
    features: Sequence[int | str] | None,
    names: list[str] | None,
    max_features: int,
) -> tuple[list[int], str | None]:
    """Indices of the planes to draw and a default figure title: the ``max_features`` most
    varying features when ``features`` is None (the title says which), else those asked for."""
    n_features = weights.shape[1]
    if features is not None:
        return [_feature_index(f, names, n_features) for f in features], None
    if max_features < 1:
        raise ValueError(f"max_features must be at least 1, got {max_features}.")
    if n_features <= max_features:
        return list(range(n_features)), f"all {n_features} features"
    # A stable sort keeps equally varying features (e.g. constant pixels) in index order.
    order = np.argsort(-weights.var(axis=0), kind="stable")[:max_features]
    title = f"{max_features} of {n_features} features, highest weight variance"
    return [int(f) for f in order], title


def _draw_planes(
    weights: np.ndarray,
    lattice: Lattice,
    chosen: list[int],
    names: list[str] | None,
    ax: Axes | Sequence[Axes] | None,
    ncols: int | None,
    style: dict[str, Any],
) -> tuple[Figure, np.ndarray]:
    """The chosen planes on a grid of axes (or the caller's), unused axes hidden; ``style``
    goes to :func:`draw_map`, but for ``figsize``, the whole grid's."""
    style = dict(style)
    figsize = style.pop("figsize", None)
    fig, axes = _plane_grid(ax, len(chosen), ncols, lattice, style["colorbar"], figsize)
    for panel, f in zip(axes.flat, chosen, strict=False):
        draw_map(weights[:, f], lattice, ax=panel, title=_feature_label(f, names), **style)
    for unused in axes.flat[len(chosen) :]:
        unused.set_axis_off()
    return fig, axes


def _plane_grid(
    ax: Axes | Sequence[Axes] | None,
    n_planes: int,
    ncols: int | None,
    lattice: Lattice,
    colorbar: bool,
    figsize: tuple[float, float] | None,
) -> tuple[Figure, np.ndarray]:
    """A grid of axes for ``n_planes`` maps, or the caller's axes when given."""
    if ax is not None:
        axes = np.asarray(ax, dtype=object)
        if axes.size < n_planes:
            raise ValueError(f"Got {axes.size} axes for {n_planes} features.")
        return axes.flat[0].figure, axes
    ncols = ncols or int(np.ceil(np.sqrt(n_planes)))
    nrows = int(np.ceil(n_planes / ncols))
    panel_w, panel_h = map_figsize(*lattice.extent, colorbar)
    fig, axes = pyplot().subplots(
        nrows,
        ncols,
        figsize=figsize or (0.6 * panel_w * ncols, 0.6 * panel_h * nrows),
        squeeze=False,
    )
    return fig, axes
