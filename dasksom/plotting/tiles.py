"""Tiles: the square and hexagonal tile shapes, and drawing per-node values as one tile per
node, wrapped onto its torus rectangle on a periodic map.

Tiles are drawn as one :class:`~matplotlib.collections.PolyCollection`, so that maps of tens
of thousands of nodes render in about a second.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from numpy.typing import ArrayLike

from dasksom.core.lattice import Lattice
from dasksom.plotting.base import (
    EMPTY_EDGE,
    EMPTY_FACE,
    CmapLike,
    add_colorbar,
    colormap,
    map_figsize,
    new_axes,
    save_and_show,
)

__all__ = [
    "Hexagons",
    "Squares",
    "Tiling",
    "draw_map",
    "draw_map_tiles",
    "draw_tiles",
    "overlay_tiles",
    "tiling_for",
    "torus_bounds",
    "wrap_points",
]


# --------------------------------------------------------------------------------------------
# Tilings


class Tiling:
    """A tile shape drawn around every node position (the base of :class:`Squares` and
    :class:`Hexagons`).

    Tilings are used as classes (``Hexagons.tiles(centers)``), as simpsom's ``polygons``
    attribute holds the class; instances work the same way.
    """

    topology: str = ""
    #: Vertices of one tile around its centre, shape ``(n_vertices, 2)``.
    offsets: np.ndarray = np.empty((0, 2))

    @classmethod
    def tile(cls, center: ArrayLike) -> np.ndarray:
        """The tile of one node.

        Parameters
        ----------
        center : array-like of shape (2,)
            The node's position ``(x, y)``.

        Returns
        -------
        ndarray of shape (n_vertices, 2)
            The tile's vertices.
        """
        return np.asarray(center, dtype=float) + cls.offsets

    @classmethod
    def tiles(cls, centers: ArrayLike) -> np.ndarray:
        """The tiles of many nodes.

        Parameters
        ----------
        centers : array-like of shape (N, 2)
            The nodes' positions.

        Returns
        -------
        ndarray of shape (N, n_vertices, 2)
            Each tile's vertices.
        """
        centers = np.asarray(centers, dtype=float).reshape(-1, 2)
        return centers[:, None, :] + cls.offsets[None, :, :]

    @classmethod
    def draw_map(
        cls,
        fig: Figure,
        centers: ArrayLike,
        feature: ArrayLike,
        cmap: CmapLike | None = None,
    ) -> Axes:
        """Draw tiles coloured by one value per node on a new axes of ``fig``, as simpsom's
        polygon classes do.

        Parameters
        ----------
        fig : matplotlib Figure
        centers : array-like of shape (M, 2)
            Node positions.
        feature : array-like of shape (M,)
            The value colouring each tile; NaN leaves a tile blank.
        cmap : str or Colormap, default=None
            None: viridis.

        Returns
        -------
        matplotlib Axes
            The new axes.
        """
        ax = fig.add_subplot(111)
        draw_tiles(centers, feature, cls, ax=ax, cmap=cmap)
        return ax


class Squares(Tiling):
    """Unit squares: they tile the square lattice, where neighbours sit 1 apart."""

    topology = "square"
    offsets = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]])


class Hexagons(Tiling):
    """Pointy-top regular hexagons 1 wide: they tile the hexagonal lattice, whose rows are
    ``sqrt(3) / 2`` apart with every odd row shifted by half a node."""

    topology = "hexagonal"
    # Circumradius 1/sqrt(3) makes the hexagon exactly 1 wide across its flat sides.
    offsets = np.column_stack(
        [
            np.cos(np.radians(90 + 60 * np.arange(6))) / np.sqrt(3),
            np.sin(np.radians(90 + 60 * np.arange(6))) / np.sqrt(3),
        ]
    )


def tiling_for(lattice: Lattice | str) -> type[Tiling]:
    """The tiling of a lattice or topology.

    Parameters
    ----------
    lattice : Lattice or str
        A lattice, or its topology (``"square"`` or ``"hexagonal"``).

    Returns
    -------
    type
        :class:`Squares` or :class:`Hexagons`.
    """
    topology = lattice if isinstance(lattice, str) else lattice.topology
    for tiling in (Squares, Hexagons):
        if tiling.topology == topology:
            return tiling
    raise ValueError(f"No tiling for topology {topology!r}; use 'square' or 'hexagonal'.")


# --------------------------------------------------------------------------------------------
# The torus rectangle of a periodic map


def torus_bounds(lattice: Lattice) -> tuple[float, float, float, float] | None:
    """The rectangle a periodic map wraps onto.

    The rectangle starts half a node left of and half a row below node 0, so that the square
    tiles fill it exactly and the hexagons poking out of it wrap in at the opposite side.

    Parameters
    ----------
    lattice : Lattice

    Returns
    -------
    (x0, y0, width, height) or None
        None for a map without periodic boundaries.
    """
    if not lattice.pbc:
        return None
    size_x, size_y = lattice.extent
    return -0.5, -lattice.row_height / 2, size_x, size_y


def wrap_points(points: np.ndarray, bounds: Sequence[float] | None) -> np.ndarray:
    """Bring points jittered across a periodic map's seam back inside its rectangle.

    Parameters
    ----------
    points : ndarray of shape (N, 2)
    bounds : (x0, y0, width, height) or None
        The rectangle (:func:`torus_bounds`); None leaves the points as they are.

    Returns
    -------
    ndarray of shape (N, 2)
    """
    if bounds is None:
        return points
    x0, y0, w, h = bounds
    return np.column_stack([x0 + (points[:, 0] - x0) % w, y0 + (points[:, 1] - y0) % h])


def _wrap_tiles(
    verts: np.ndarray, values: np.ndarray, bounds: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Add a copy, shifted by the torus period, of every tile that crosses the rectangle's
    edge, so that its overhang shows on the opposite side once clipped."""
    x0, y0, w, h = bounds
    eps = 1e-9
    lo, hi = verts.min(axis=1), verts.max(axis=1)
    crossing = (
        (lo[:, 0] < x0 - eps)
        | (hi[:, 0] > x0 + w + eps)
        | (lo[:, 1] < y0 - eps)
        | (hi[:, 1] > y0 + h + eps)
    )
    extra_verts, extra_values = [verts], [values]
    for sx in (-1, 0, 1):
        for sy in (-1, 0, 1):
            if sx == sy == 0:
                continue
            shift = np.array([sx * w, sy * h])
            moved_lo, moved_hi = lo[crossing] + shift, hi[crossing] + shift
            overlaps = (
                (moved_hi[:, 0] > x0 + eps)
                & (moved_lo[:, 0] < x0 + w - eps)
                & (moved_hi[:, 1] > y0 + eps)
                & (moved_lo[:, 1] < y0 + h - eps)
            )
            extra_verts.append(verts[crossing][overlaps] + shift)
            extra_values.append(values[crossing][overlaps])
    return np.concatenate(extra_verts), np.concatenate(extra_values)


# --------------------------------------------------------------------------------------------
# Drawing tiles


def draw_tiles(
    centers: ArrayLike,
    values: ArrayLike | None,
    tiling: type[Tiling] | Tiling,
    *,
    ax: Axes,
    cmap: CmapLike | None = "viridis",
    bounds: Sequence[float] | None = None,
    **kwargs: Any,
) -> PolyCollection | None:
    """Draw one tile per node into ``ax``, coloured by ``values``; the low-level core of the
    map plots.

    Parameters
    ----------
    centers : array-like of shape (M, 2)
        Node positions ``(x, y)``.
    values : array-like of shape (M,) or None
        Colour of each tile through ``cmap``; NaN (or None for all) leaves a tile blank with a
        thin outline.
    tiling : Squares or Hexagons
        The tile shape (the class or an instance).
    ax : matplotlib Axes
    cmap : str or Colormap, default="viridis"
        None: viridis.
    bounds : (x0, y0, width, height), default=None
        The rectangle of a periodic map: tiles crossing its edges are wrapped to the opposite
        side and everything is clipped to it, so the seams close without overhangs.
    **kwargs
        Passed to the coloured :class:`~matplotlib.collections.PolyCollection` (``norm``,
        ``alpha``, ``linewidths`` ...); ``vmin`` and ``vmax`` set the colour limits.

    Returns
    -------
    PolyCollection or None
        The coloured tiles (the mappable for a colorbar), None when no tile has a value.
    """
    centers = np.asarray(centers, dtype=float).reshape(-1, 2)
    values = (
        np.full(len(centers), np.nan) if values is None else np.asarray(values, dtype=float).ravel()
    )
    if values.shape[0] != centers.shape[0]:
        raise ValueError(f"Got {values.shape[0]} values for {centers.shape[0]} nodes.")
    verts = tiling.tiles(centers)
    if bounds is not None:
        verts, values = _wrap_tiles(verts, values, bounds)
    empty = np.isnan(values)
    mappable = None
    if not empty.all():
        mappable = _coloured_tiles(verts[~empty], values[~empty], cmap, **kwargs)
        _add_tiles(ax, mappable, bounds)
    if empty.any():
        blank = PolyCollection(
            verts[empty], facecolors=EMPTY_FACE, edgecolors=EMPTY_EDGE, linewidths=0.5
        )
        _add_tiles(ax, blank, bounds)
    _frame_tiles(ax, verts, bounds)
    return mappable


def _coloured_tiles(
    verts: np.ndarray, values: np.ndarray, cmap: CmapLike | None, **kwargs: Any
) -> PolyCollection:
    vmin, vmax = kwargs.pop("vmin", None), kwargs.pop("vmax", None)
    # Antialiased neighbours leave faint light seams between tiles: fill without it, and
    # stroke a hairline in the face colour so vector output (pdf, svg) closes them too.
    style = {"edgecolors": "face", "linewidths": 0.3, "antialiased": False, **kwargs}
    # The stubs want a Sequence of polygons; matplotlib takes an (N, M, 2) array too.
    tiles = PolyCollection(verts, array=values, cmap=colormap(cmap), **style)  # type: ignore[arg-type]
    if vmin is not None or vmax is not None:
        tiles.set_clim(vmin, vmax)
    return tiles


def _add_tiles(ax: Axes, tiles: PolyCollection, bounds: Sequence[float] | None) -> None:
    """Add a tile collection, clipped to a periodic map's rectangle when there is one."""
    ax.add_collection(tiles, autolim=False)
    if bounds is not None:
        corner = (bounds[0], bounds[1])
        tiles.set_clip_path(Rectangle(corner, bounds[2], bounds[3], transform=ax.transData))


def _frame_tiles(ax: Axes, verts: np.ndarray, bounds: Sequence[float] | None) -> None:
    """Equal aspect, no axis, limits hugging the tiles (or the torus rectangle)."""
    if bounds is not None:
        x0, y0, w, h = bounds
        xlim, ylim = (x0, x0 + w), (y0, y0 + h)
    else:
        lo, hi = verts.reshape(-1, 2).min(axis=0), verts.reshape(-1, 2).max(axis=0)
        pad = 0.02 * float(max(hi - lo))
        xlim, ylim = (lo[0] - pad, hi[0] + pad), (lo[1] - pad, hi[1] + pad)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal")
    ax.set_axis_off()


def overlay_tiles(ax: Axes, lattice: Lattice, nodes: np.ndarray, tiles: PolyCollection) -> None:
    """Draw the tiles of some nodes again on top of a map, wrapped and clipped like it.

    Parameters
    ----------
    ax : matplotlib Axes
        The map's axes.
    lattice : Lattice
        The map's lattice.
    nodes : int ndarray
        The nodes to draw.
    tiles : PolyCollection
        An empty collection styled as the overlay should be (e.g. hatched); it receives the
        tiles' vertices and is added to ``ax``.
    """
    verts = tiling_for(lattice).tiles(lattice.positions[nodes])
    bounds = torus_bounds(lattice)
    if bounds is not None:
        verts, _ = _wrap_tiles(verts, np.zeros(len(verts)), bounds)
    # The stubs want a Sequence of polygons; matplotlib takes an (N, M, 2) array too.
    tiles.set_verts(verts)  # type: ignore[arg-type]
    _add_tiles(ax, tiles, bounds)


def draw_map(
    values: ArrayLike,
    lattice: Lattice,
    *,
    ax: Axes | None = None,
    cmap: CmapLike = "viridis",
    title: str | None = None,
    colorbar: bool = True,
    cbar_label: str | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """Draw per-node values as coloured tiles on the map's lattice.

    Parameters
    ----------
    values : array-like of shape (M,)
        One value per node (node ``k = r * width + c``); NaN leaves a node blank.
    lattice : Lattice
        Node positions and tiling; a periodic map is drawn wrapped onto its torus rectangle.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    cmap : str or Colormap, default="viridis"
    title : str, default=None
        None: no title.
    colorbar : bool, default=True
        Add a colorbar (when any node has a value).
    cbar_label : str, default=None
        None: a colorbar without a label.
    figsize : (float, float), default=None
        Size of a new figure; None follows the map's shape.
    show : bool, default=False
        Call ``plt.show()``.
    print_out : bool, default=False
        Save the figure to ``file_name``.
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./som_map.png``.
    **kwargs
        Passed to the tile collection, e.g. ``norm``, ``vmin``, ``vmax``, ``alpha``.

    Returns
    -------
    fig, ax
    """
    fig, ax, _ = draw_map_tiles(
        values,
        lattice,
        ax=ax,
        cmap=cmap,
        title=title,
        colorbar=colorbar,
        cbar_label=cbar_label,
        figsize=figsize,
        **kwargs,
    )
    save_and_show(fig, show, print_out, file_name, "./som_map.png")
    return fig, ax


def draw_map_tiles(
    values: ArrayLike,
    lattice: Lattice,
    *,
    ax: Axes | None,
    cmap: CmapLike | None,
    title: str | None,
    colorbar: bool,
    cbar_label: str | None = None,
    figsize: tuple[float, float] | None = None,
    **kwargs: Any,
) -> tuple[Figure, Axes, PolyCollection | None]:
    """:func:`draw_map` without saving or showing, also handing back the coloured tiles.

    Parameters
    ----------
    values, lattice, ax, cmap, title, colorbar, cbar_label, figsize, **kwargs
        As :func:`draw_map`; ``ax``, ``cmap``, ``title`` and ``colorbar`` have no default.

    Returns
    -------
    fig, ax
    tiles : PolyCollection or None
        The coloured tiles, None when no node has a value.
    """
    values = np.asarray(values, dtype=float).ravel()
    if values.shape[0] != lattice.n_nodes:
        raise ValueError(
            f"Got {values.shape[0]} values for a map of {lattice.n_nodes} nodes "
            f"({lattice.height} x {lattice.width})."
        )
    width, height = lattice.extent
    fig, ax = new_axes(ax, figsize or map_figsize(width, height, colorbar))
    mappable = draw_tiles(
        lattice.positions,
        values,
        tiling_for(lattice),
        ax=ax,
        cmap=cmap,
        bounds=torus_bounds(lattice),
        **kwargs,
    )
    if title:
        ax.set_title(title)
    if colorbar and mappable is not None:
        add_colorbar(ax, mappable, cbar_label)
    return fig, ax, mappable
