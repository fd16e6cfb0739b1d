"""Pictures of a trained map: U-matrix, component planes, hits, labels, weight mosaics.

Every plot takes a fitted map (anything with ``weights_`` of shape ``(M, D)`` and a
:class:`~dasksom.Lattice` in ``lattice_``, e.g. a fitted :class:`dasksom.SOM`) and draws node
``k`` at ``lattice.positions[k]``.  All of them accept ``ax`` (draw into existing axes),
``cmap`` (a colormap name or object), ``show``, ``print_out`` and ``file_name`` as simpsom does,
and return ``(fig, ax)``.  Tiles are drawn as one :class:`~matplotlib.collections.PolyCollection`
so that maps of tens of thousands of nodes render in about a second.

The numbers behind the pictures live elsewhere: geometry in :class:`~dasksom.Lattice`, the
U-matrix values in :mod:`dasksom.core.analysis` (:func:`node_differences` is re-exported here).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import matplotlib

# A headless Linux box (a cluster node, CI) has no display: stay on Agg unless the user or
# their notebook has chosen a backend already.
if (
    sys.platform.startswith("linux")
    and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    and not os.environ.get("MPLBACKEND")
    and "matplotlib.pyplot" not in sys.modules
):
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402
from matplotlib.colorbar import Colorbar  # noqa: E402
from matplotlib.colors import BoundaryNorm, Colormap, ListedColormap  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from mpl_toolkits.axes_grid1 import make_axes_locatable  # noqa: E402
from numpy.typing import ArrayLike  # noqa: E402

from dasksom.core.analysis import label_votes, node_differences
from dasksom.core.lattice import Lattice
from dasksom.io.atomic import atomic_file

__all__ = [
    "Squares",
    "Hexagons",
    "tiling_for",
    "node_differences",
    "draw_tiles",
    "draw_map",
    "plot_umatrix",
    "plot_component_planes",
    "plot_hits",
    "plot_labels",
    "plot_weight_mosaic",
    "plot_projection",
    "plot_convergence",
    "categorical_colors",
    "add_colorbar",
    "draw_line",
    "save_and_show",
]

CmapLike = str | Colormap
# Colour of nodes without a value (no hits, no label) and of the lines around them.
EMPTY_FACE = "#ffffff"
EMPTY_EDGE = "#c8c8c8"
# Nodes no sample hits: hatched in dark grey, which stands out against every colormap's light
# end, so that they don't read as holes in the map.
NO_HITS_COLOR = "#4d4d4d"
NO_HITS_HATCH = "////"


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
        """Vertices ``(n_vertices, 2)`` of the tile of a node at ``center`` ``(x, y)``."""
        return np.asarray(center, dtype=float) + cls.offsets

    @classmethod
    def tiles(cls, centers: ArrayLike) -> np.ndarray:
        """Vertices ``(N, n_vertices, 2)`` of the tiles of nodes at ``centers`` ``(N, 2)``."""
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
        """Draw tiles at ``centers`` coloured by ``feature`` on a new axes of ``fig`` (as
        simpsom's polygon classes do); returns the axes."""
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
    """The tiling class (:class:`Squares` or :class:`Hexagons`) of a lattice or topology."""
    topology = lattice if isinstance(lattice, str) else lattice.topology
    for tiling in (Squares, Hexagons):
        if tiling.topology == topology:
            return tiling
    raise ValueError(f"No tiling for topology {topology!r}; use 'square' or 'hexagonal'.")


# --------------------------------------------------------------------------------------------
# Shared helpers (public ones are also the building blocks of :mod:`dasksom.simpsom.plots`)


def _colormap(cmap: CmapLike | None, default: str = "viridis") -> Colormap:
    """A private copy of ``cmap`` with empty (NaN) nodes shown blank."""
    base = matplotlib.colormaps[cmap or default] if not isinstance(cmap, Colormap) else cmap
    return base.with_extremes(bad=EMPTY_FACE)


def categorical_colors(cmap: CmapLike | None, n: int) -> np.ndarray:
    """``n`` distinct RGBA colours, shape ``(n, 4)``, e.g. one per label or group.

    A qualitative colormap (``tab10``, ``Set2`` ...) gives its own colours in order, cycling
    when ``n`` is larger; any other map is sampled evenly.  By default ``tab10``, ``tab20`` or
    ``turbo`` by ``n``.
    """
    if cmap is None:
        cmap = "tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"
    cmap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    if isinstance(cmap, ListedColormap) and cmap.N <= 32:
        return cmap(np.arange(n) % cmap.N)
    return cmap(np.linspace(0.0, 1.0, n) if n > 1 else [0.5])


def _fitted(som: Any) -> tuple[np.ndarray, Lattice]:
    if not (hasattr(som, "weights_") and hasattr(som, "lattice_")):
        raise TypeError(
            f"Expected a fitted map with weights_ and lattice_ attributes (a fitted "
            f"dasksom.SOM), got {type(som).__name__}; call fit(X) first."
        )
    return np.asarray(som.weights_), som.lattice_


def _to_numpy(values: Any) -> np.ndarray:
    """A host numpy array from numpy, dask or cupy input."""
    if hasattr(values, "compute"):
        values = values.compute()
    if hasattr(values, "get") and not isinstance(values, np.ndarray):
        values = values.get()
    return np.asarray(values)


def _host_bmus(som: Any, X: Any, bmus: ArrayLike | None, n_nodes: int) -> np.ndarray:
    """Each sample's best-matching unit as a host int array: ``bmus`` when the caller has
    them, else one pass over ``X``.  -1 marks a sample with no unit (no observed value)."""
    if bmus is None:
        if X is None:
            raise ValueError("Pass the data X, or its best-matching units as bmus=.")
        # The estimator's own host path when it has one; predict gives numpy or dask.
        find = getattr(som, "best_matching_units", None) or som.predict
        bmus = find(X)
    bmus = _to_numpy(bmus).astype(np.int64, copy=False).ravel()
    if bmus.size and (bmus.min() < -1 or bmus.max() >= n_nodes):
        raise ValueError(f"bmus must be node indices in [0, {n_nodes}), or -1 for none.")
    return bmus


def _torus_bounds(lattice: Lattice) -> tuple[float, float, float, float] | None:
    """``(x0, y0, width, height)`` of the rectangle a periodic map wraps onto, else None.

    The rectangle starts half a node left of and half a row below node 0, so that the square
    tiles fill it exactly and the hexagons poking out of it wrap in at the opposite side.
    """
    if not lattice.pbc:
        return None
    size_x, size_y = lattice.extent
    return -0.5, -lattice.row_height / 2, size_x, size_y


def _map_figsize(width: float, height: float, colorbar: bool) -> tuple[float, float]:
    """A figure size that fits a map of ``width x height`` lattice units, longer side 6 in."""
    scale = 6.0 / max(width, height)
    fig_w = max(width * scale, 2.0) + (1.0 if colorbar else 0.2)
    fig_h = max(height * scale, 2.0) + 0.6
    return fig_w, fig_h


def _axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    if ax is not None:
        # The plots draw on axes of a top-level Figure (print_out saves it); an Axes on a
        # SubFigure would give the SubFigure.
        return cast(Figure, ax.figure), ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def save_and_show(
    fig: Figure,
    show: bool,
    print_out: bool,
    file_name: str | os.PathLike | None,
    default: str,
) -> None:
    """Save ``fig`` and/or show it, as every plot's ``show`` / ``print_out`` do.

    With ``print_out`` the figure goes to ``file_name`` (``default`` when None) at 150 dpi;
    ``.png`` is added to a name without an extension matplotlib can write.  The file is written
    atomically (:func:`dasksom.io.atomic.atomic_file`).  With ``show``, ``plt.show()`` is called.
    """
    if print_out:
        path = Path(file_name if file_name is not None else default)
        kind = path.suffix.lstrip(".").lower()
        if kind not in fig.canvas.get_supported_filetypes():
            path, kind = path.with_name(path.name + ".png"), "png"
        with atomic_file(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", dpi=150, format=kind)
    if show:
        plt.show()


def add_colorbar(
    ax: Axes, mappable: Any, label: str | None, fontsize: float | None = None
) -> Colorbar:
    """A colorbar as tall as the (aspect-locked) map in ``ax``, right of it, without an
    outline; ``fontsize`` sizes its label (ticks 15% smaller)."""
    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)
    cbar = ax.figure.colorbar(mappable, cax=cax)
    cbar.outline.set_visible(False)
    if label:
        cbar.set_label(label, size=fontsize)
    if fontsize:
        cbar.ax.tick_params(labelsize=fontsize * 0.85)
    return cbar


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


def _wrap_points(points: np.ndarray, bounds: Sequence[float] | None) -> np.ndarray:
    """Bring points jittered across a periodic map's seam back inside the torus rectangle."""
    if bounds is None:
        return points
    x0, y0, w, h = bounds
    return np.column_stack([x0 + (points[:, 0] - x0) % w, y0 + (points[:, 1] - y0) % h])


def draw_line(
    ax: Axes,
    x: ArrayLike,
    y: ArrayLike,
    *,
    color: Any,
    xlabel: str | None,
    ylabel: str | None,
    title: str | None,
    logx: bool = False,
    logy: bool = False,
    fontsize: float | None = None,
    integer_x: bool = False,
    label: str | None = None,
) -> None:
    """A plain line with markers into ``ax``: the core of :func:`plot_convergence` and of
    simpsom's ``line_plot``.

    ``logx`` / ``logy`` make an axis logarithmic, ``integer_x`` puts ticks on whole numbers
    only, ``fontsize`` sizes the labels (the title 15% larger, ticks 15% smaller) and
    ``label`` names the line for a legend.  The top and right spines are hidden.
    """
    ax.plot(x, y, marker="o", markersize=4, color=color, label=label)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(xlabel or "", fontsize=fontsize)
    ax.set_ylabel(ylabel or "", fontsize=fontsize)
    if title:
        ax.set_title(title, fontsize=fontsize * 1.15 if fontsize else None)
    if fontsize:
        ax.tick_params(labelsize=fontsize * 0.85)


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
    cmap : str or Colormap
    bounds : (x0, y0, width, height), optional
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
    tiles = PolyCollection(verts, array=values, cmap=_colormap(cmap), **style)  # type: ignore[arg-type]
    if vmin is not None or vmax is not None:
        tiles.set_clim(vmin, vmax)
    return tiles


def _add_tiles(ax: Axes, tiles: PolyCollection, bounds: Sequence[float] | None) -> None:
    """Add a tile collection, clipped to a periodic map's rectangle when there is one."""
    ax.add_collection(tiles, autolim=False)
    if bounds is not None:
        corner = (bounds[0], bounds[1])
        tiles.set_clip_path(Rectangle(corner, bounds[2], bounds[3], transform=ax.transData))


def _overlay_tiles(ax: Axes, lattice: Lattice, nodes: np.ndarray, tiles: PolyCollection) -> None:
    """Draw the tiles of ``nodes`` again on top, styled as ``tiles`` (e.g. hatched), wrapped
    and clipped like the map under them."""
    verts = tiling_for(lattice).tiles(lattice.positions[nodes])
    bounds = _torus_bounds(lattice)
    if bounds is not None:
        verts, _ = _wrap_tiles(verts, np.zeros(len(verts)), bounds)
    # The stubs want a Sequence of polygons; matplotlib takes an (N, M, 2) array too.
    tiles.set_verts(verts)  # type: ignore[arg-type]
    _add_tiles(ax, tiles, bounds)


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
    ax : matplotlib Axes, optional
        Axes to draw into; a new figure is made when None.
    cmap : str or Colormap
    title : str, optional
    colorbar : bool
        Add a colorbar (when any node has a value).
    cbar_label : str, optional
    figsize : (float, float), optional
        Size of a new figure; by default it follows the map's shape.
    show : bool
        Call ``plt.show()``.
    print_out : bool
        Save the figure to ``file_name`` (``./som_map.png`` when None).
    file_name : str or path, optional
    **kwargs
        Passed to the tile collection, e.g. ``norm``, ``vmin``, ``vmax``, ``alpha``.

    Returns
    -------
    fig, ax
    """
    fig, ax, _ = _draw_map(
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


def _draw_map(
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
    """:func:`draw_map` without saving, also handing back the coloured tiles."""
    values = np.asarray(values, dtype=float).ravel()
    if values.shape[0] != lattice.n_nodes:
        raise ValueError(
            f"Got {values.shape[0]} values for a map of {lattice.n_nodes} nodes "
            f"({lattice.height} x {lattice.width})."
        )
    width, height = lattice.extent
    fig, ax = _axes(ax, figsize or _map_figsize(width, height, colorbar))
    mappable = draw_tiles(
        lattice.positions,
        values,
        tiling_for(lattice),
        ax=ax,
        cmap=cmap,
        bounds=_torus_bounds(lattice),
        **kwargs,
    )
    if title:
        ax.set_title(title)
    if colorbar and mappable is not None:
        add_colorbar(ax, mappable, cbar_label)
    return fig, ax, mappable


# --------------------------------------------------------------------------------------------
# Plots of a trained map


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
        Anything with ``weights_`` and ``lattice_``.
    ax, cmap, title, colorbar, show, print_out, file_name
        As :func:`draw_map` (default file ``./som_umatrix.png``).
    **kwargs
        Passed to :func:`draw_map`.

    Returns
    -------
    fig, ax
    """
    weights, lattice = _fitted(som)
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
    features : int, str, sequence of them, or None
        Features by index or by name.  One feature gives one map and returns ``(fig, ax)``; a
        sequence gives a grid and returns ``(fig, axes)``.  None shows the ``max_features``
        features whose weights vary most across the map (all when there are no more), and the
        figure title says so, e.g. "16 of 784 features, highest weight variance".
    feature_names : sequence of str, optional
        Names of all ``D`` features, for titles and choosing by name (default: the map's
        ``feature_names_in_`` when it has them).
    ncols : int, optional
        Columns of the grid (about square by default).
    ax : Axes or sequence of Axes, optional
        One axes for one feature, or at least as many axes as features.
    cmap, colorbar, show, print_out, file_name
        As :func:`draw_map` (default file ``./som_component_planes.png``).
    title : str, optional
        Title of a single plane, or the figure's title over a grid ("" for none).
    **kwargs
        Passed to :func:`draw_map` (for grids, ``figsize`` sets the whole figure's size).

    Returns
    -------
    fig, ax or fig, axes
    """
    weights, lattice = _fitted(som)
    names = _feature_names(som, feature_names, weights.shape[1])
    default_file = "./som_component_planes.png"
    if isinstance(features, int | np.integer | str):
        f = _feature_index(features, names, weights.shape[1])
        label = title if title is not None else _feature_label(f, names)
        kwargs.update(show=show, print_out=print_out, file_name=file_name or default_file)
        # One feature: one axes, as documented.
        one_ax = cast(Axes | None, ax)
        return draw_map(
            weights[:, f], lattice, ax=one_ax, cmap=cmap, title=label, colorbar=colorbar, **kwargs
        )
    chosen, default_title = _chosen_features(weights, features, names, max_features)
    fig, axes = _plane_grid(ax, len(chosen), ncols, lattice, colorbar, kwargs.pop("figsize", None))
    for panel, f in zip(axes.flat, chosen, strict=False):
        label = _feature_label(f, names)
        draw_map(
            weights[:, f], lattice, ax=panel, cmap=cmap, title=label, colorbar=colorbar, **kwargs
        )
    for unused in axes.flat[len(chosen) :]:
        unused.set_axis_off()
    # No title (None) reads as "", as matplotlib's Text does.
    fig.suptitle((default_title if title is None else title) or "")
    save_and_show(fig, show, print_out, file_name, default_file)
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
    panel_w, panel_h = _map_figsize(*lattice.extent, colorbar)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=figsize or (0.6 * panel_w * ncols, 0.6 * panel_h * nrows),
        squeeze=False,
    )
    return fig, axes


def plot_hits(
    som: Any,
    X: Any = None,
    *,
    bmus: ArrayLike | None = None,
    counts: ArrayLike | None = None,
    annotate: bool = False,
    ax: Axes | None = None,
    cmap: CmapLike = "Blues",
    title: str | None = "Hits",
    colorbar: bool = True,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """How many samples each node is the best-matching unit of; nodes without any are hatched.

    Parameters
    ----------
    som : fitted SOM
        Needs ``hit_counts`` when ``bmus`` is not given: counted chunk by chunk, so X may be
        larger than memory.
    X : array-like or dask array of shape (n_samples, D), optional
        The data; not needed with ``bmus``.
    bmus : int array of shape (n_samples,), optional
        Each sample's best-matching unit, when the caller has them: saves a pass over X.
    counts : int array of shape (M,), optional
        The hit counts themselves (``SOM.evaluate(X)["hit_counts"]``): saves a pass over X.
    annotate : bool
        Write each node's count on its tile.
    ax, cmap, title, colorbar, show, print_out, file_name
        As :func:`draw_map` (default file ``./som_hits.png``).
    **kwargs
        Passed to :func:`draw_map`.

    Returns
    -------
    fig, ax
        With a legend entry for the hatched nodes when some node has no hits.
    """
    _, lattice = _fitted(som)
    if counts is not None:
        hits = _to_numpy(counts).astype(np.int64).ravel()
        if hits.shape != (lattice.n_nodes,):
            raise ValueError(f"counts must hold one count per node ({lattice.n_nodes}).")
    elif bmus is not None:
        nodes = _host_bmus(som, X, bmus, lattice.n_nodes)
        hits = np.bincount(nodes[nodes >= 0], minlength=lattice.n_nodes)
    elif X is not None:
        hits = np.asarray(som.hit_counts(X))
    else:
        raise ValueError("Pass the data X, its best-matching units as bmus=, or counts=.")
    kwargs.setdefault("cbar_label", "samples")
    fig, ax, tiles = _draw_map(
        hits, lattice, ax=ax, cmap=cmap, title=title, colorbar=colorbar, **kwargs
    )
    empty = np.flatnonzero(hits == 0)
    if empty.size:
        # Under the map: the colorbar takes the right.
        handle = _hatch_empty_nodes(ax, lattice, empty, "no hits")
        ax.legend(handles=[handle], loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False)
    if annotate:
        assert tiles is not None, "hit counts are never NaN: every tile is coloured"
        _annotate_counts(ax, tiles, lattice, hits)
    save_and_show(fig, show, print_out, file_name, "./som_hits.png")
    return fig, ax


def _hatch_empty_nodes(ax: Axes, lattice: Lattice, nodes: np.ndarray, label: str) -> Patch:
    """Hatch nodes that no sample hits, so they read as "none" rather than as holes in the
    map; returns a legend handle that says so."""
    style: dict[str, Any] = {
        "facecolor": EMPTY_FACE,
        "edgecolor": NO_HITS_COLOR,
        "hatch": NO_HITS_HATCH,
    }
    # The stubs want a Sequence of polygons; matplotlib takes an (N, M, 2) array too.
    tiles = PolyCollection(np.empty((0, 4, 2)), linewidths=0.6, **style)  # type: ignore[arg-type]
    _overlay_tiles(ax, lattice, nodes, tiles)
    return Patch(linewidth=0.6, label=label, **style)


def _annotate_counts(ax: Axes, tiles: PolyCollection, lattice: Lattice, counts: np.ndarray) -> None:
    """Write counts on their tiles, in black or white for contrast, sized to the tiles."""
    box = ax.get_window_extent()
    x_span = np.diff(ax.get_xlim())[0]
    y_span = np.diff(ax.get_ylim())[0]
    points_per_unit = min(box.width / x_span, box.height / y_span) * 72 / ax.figure.dpi
    digits = len(str(int(counts.max())))
    fontsize = float(np.clip(points_per_unit * 0.8 / max(digits, 2), 2, 12))
    rgba = tiles.to_rgba(counts.astype(float))
    luminance = rgba[:, :3] @ np.array([0.299, 0.587, 0.114])
    x, y = lattice.positions.T.copy()
    align = np.full(lattice.n_nodes, "center")
    bounds = _torus_bounds(lattice)
    if bounds is not None:
        # A hexagonal torus splits the last tile of odd rows at the seam: write the count
        # against the seam, in the half that shows on the right, rather than across it.
        seam = bounds[0] + bounds[2]
        split = x > seam - 0.25
        x[split], align[split] = seam - 0.03, "right"
    for i, count in enumerate(counts):
        ax.text(
            x[i],
            y[i],
            str(count),
            ha=align[i],
            va="center",
            fontsize=fontsize,
            color="black" if luminance[i] > 0.5 else "white",
            clip_on=True,
        )


def plot_labels(
    som: Any,
    X: Any,
    y: Any,
    *,
    bmus: ArrayLike | None = None,
    ax: Axes | None = None,
    cmap: CmapLike | None = None,
    title: str | None = "Majority label",
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """Each node coloured by the most common label among the samples it wins.

    Parameters
    ----------
    som : fitted SOM
    X : array-like or dask array of shape (n_samples, D), or None with ``bmus``
    y : array-like or dask array of shape (n_samples,)
        Labels of any sortable type (ints, strings).  Ties go to the first label in sorted
        order; nodes that win no sample are hatched.
    bmus : int array of shape (n_samples,), optional
        Each sample's best-matching unit, when the caller has them: saves a pass over X.
    ax, title, show, print_out, file_name
        As :func:`draw_map` (default file ``./som_labels.png``).
    cmap : str or Colormap, optional
        Label colours: a qualitative map's own colours, or evenly spaced samples of any other;
        ``tab10`` / ``tab20`` by default.
    **kwargs
        Passed to :func:`draw_map`.

    Returns
    -------
    fig, ax
        With a legend of the labels right of the map.
    """
    _, lattice = _fitted(som)
    nodes = _host_bmus(som, X, bmus, lattice.n_nodes)
    classes, votes, _ = label_votes(nodes, _to_numpy(y), lattice.n_nodes)
    n_classes = len(classes)
    won = votes.sum(axis=1) > 0
    majority = np.where(won, votes.argmax(axis=1), np.nan)
    colors = categorical_colors(cmap, n_classes)
    fig, ax, _ = _draw_map(
        majority,
        lattice,
        ax=ax,
        cmap=ListedColormap(colors),
        norm=BoundaryNorm(np.arange(n_classes + 1) - 0.5, n_classes),
        title=title,
        colorbar=False,
        **kwargs,
    )
    handles = [Patch(facecolor=c, label=str(k)) for c, k in zip(colors, classes, strict=True)]
    if not won.all():
        handles.append(_hatch_empty_nodes(ax, lattice, np.flatnonzero(~won), "no samples"))
    _legend_right(ax, handles)
    save_and_show(fig, show, print_out, file_name, "./som_labels.png")
    return fig, ax


def plot_weight_mosaic(
    som: Any,
    image_shape: Sequence[int],
    *,
    ax: Axes | None = None,
    cmap: CmapLike = "gray_r",
    title: str | None = "Node weights",
    padding: int = 2,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
    figsize: tuple[float, float] | None = None,
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """Every node's weights drawn as a small image at its place on the map.

    The images are assembled into one array and drawn with a single ``imshow``, so a 50 x 50
    map of 28 x 28 images is quick.  Rows are shifted by the lattice's ``row_offsets`` (half
    an image on the odd rows of a hexagonal map), so node ``k``'s image is centred on
    ``lattice.positions[k]`` in data coordinates.

    Parameters
    ----------
    som : fitted SOM
    image_shape : (height, width) or (height, width, channels)
        Shape of one node's weights as an image, e.g. ``(28, 28)`` for MNIST; 3 or 4 channels
        are drawn as RGB(A).
    ax, cmap, title, show, print_out, file_name
        As :func:`draw_map` (default file ``./som_weights.png``); ``cmap`` is unused for RGB.
    padding : int
        Blank pixels between neighbouring images.
    figsize : (float, float), optional
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.imshow`.

    Returns
    -------
    fig, ax
    """
    weights, lattice = _fitted(som)
    image_shape = _check_image_shape(image_shape, weights.shape[1])
    # One scale for all nodes keeps their brightness comparable.
    lo, hi = float(weights.min()), float(weights.max())
    images = ((weights - lo) / (hi - lo if hi > lo else 1.0)).reshape(-1, *image_shape)
    canvas, (cell_h, cell_w) = _mosaic_canvas(images, lattice, padding)
    row_h = lattice.row_height
    extent = (-0.5, -0.5 + canvas.shape[1] / cell_w, -row_h / 2, (lattice.height - 0.5) * row_h)
    width, height = extent[1] - extent[0], lattice.height * cell_h / cell_w
    fig, ax = _axes(ax, figsize or _map_figsize(width, height, colorbar=False))
    kwargs.setdefault("interpolation", "antialiased")
    ax.imshow(canvas, cmap=_colormap(cmap), vmin=0.0, vmax=1.0, extent=extent, **kwargs)
    # Stretch rows back to square cells: one row (row_h data units) is as tall as a node is wide.
    ax.set_aspect(cell_h / cell_w / row_h)
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    save_and_show(fig, show, print_out, file_name, "./som_weights.png")
    return fig, ax


def _check_image_shape(image_shape: Sequence[int], n_features: int) -> tuple[int, ...]:
    shape = tuple(int(s) for s in image_shape)
    if int(np.prod(shape)) != n_features or len(shape) not in (2, 3):
        raise ValueError(
            f"image_shape {shape} does not hold the map's {n_features} features; "
            "pass (height, width) or (height, width, channels) with that many values."
        )
    return shape


def _mosaic_canvas(
    images: np.ndarray, lattice: Lattice, padding: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Node images ``(M, h, w[, channels])`` laid out as the map in one array, map row 0 at
    the bottom and each row shifted by its lattice offset; also the size of one cell."""
    img_h, img_w, *channels = images.shape[1:]
    cell_h, cell_w = img_h + padding, img_w + padding
    # Blank padding: NaN becomes the colormap's "bad" colour; RGB pads in white.
    blank = 1.0 if channels else np.nan
    cells = np.full((lattice.height, lattice.width, cell_h, cell_w, *channels), blank)
    top, left = padding // 2, padding // 2
    cells[:, :, top : top + img_h, left : left + img_w] = images.reshape(
        lattice.height, lattice.width, img_h, img_w, *channels
    )
    # (rows, cols, cell_h, cell_w) -> (rows, cell_h, cols * cell_w): one strip per map row.
    strip_w = lattice.width * cell_w
    strips = cells.swapaxes(1, 2).reshape(lattice.height, cell_h, strip_w, *channels)
    shifts = (lattice.row_offsets * cell_w).astype(int)
    canvas = np.full((lattice.height, cell_h, strip_w + shifts.max(), *channels), blank)
    for shift in np.unique(shifts):
        rows = shifts == shift
        canvas[rows, :, shift : shift + strip_w] = strips[rows]
    # Image rows run top-down: stack the map rows reversed.
    return canvas[::-1].reshape(lattice.height * cell_h, -1, *channels), (cell_h, cell_w)


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
    X : array-like or dask array of shape (n_samples, D), or None with ``bmus``
    labels : array-like of shape (n_samples,), optional
        Colour points by label, with a legend.
    jitter : float
        Points spread uniformly up to this far from their node's centre (0.5: the tile edge).
    bmus : int array of shape (n_samples,), optional
        Each sample's best-matching unit, when the caller has them: saves a pass over X.
    random_state : int or None
        Seed of the jitter, so that the same call draws the same picture.
    values : array-like of shape (M,), optional
        Colour the tiles underneath (e.g. the U-matrix, in grey); plain tiles by default.
    ax, title, show, print_out, file_name
        As :func:`draw_map` (default file ``./som_projection.png``).
    cmap : str or Colormap, optional
        Point colours per label (``tab10`` / ``tab20`` by default).
    marker_size : float, optional
        Point area; by default smaller the more points there are.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.scatter`.

    Returns
    -------
    fig, ax
    """
    _, lattice = _fitted(som)
    nodes = _host_bmus(som, X, bmus, lattice.n_nodes)
    assigned = nodes >= 0
    if labels is not None:
        labels = _to_numpy(labels).ravel()
        if labels.shape[0] != len(nodes):
            raise ValueError(f"Got {labels.shape[0]} labels for {len(nodes)} samples.")
        labels = labels[assigned]
    nodes = nodes[assigned]
    jitters = np.random.default_rng(random_state).uniform(-jitter, jitter, size=(len(nodes), 2))
    points = _wrap_points(lattice.positions[nodes] + jitters, _torus_bounds(lattice))
    fig, ax, _ = _draw_map(
        np.full(lattice.n_nodes, np.nan) if values is None else values,
        lattice,
        ax=ax,
        cmap="Greys",
        title=title,
        colorbar=False,
    )
    size = marker_size if marker_size is not None else float(np.clip(20000 / len(nodes), 2, 30))
    kwargs.setdefault("linewidths", 0)
    _scatter_points(ax, points, labels, cmap, size, **kwargs)
    save_and_show(fig, show, print_out, file_name, "./som_projection.png")
    return fig, ax


def _scatter_points(
    ax: Axes, points: np.ndarray, labels: Any, cmap: CmapLike | None, size: float, **kwargs: Any
) -> None:
    """The points in one colour, or one scatter per label in its own colour with a legend
    right of the map."""
    if labels is None:
        x, y = points.T
        ax.scatter(x, y, s=size, color=categorical_colors(cmap, 1)[0], **kwargs)
        return
    labels = _to_numpy(labels).ravel()
    if labels.shape[0] != len(points):
        raise ValueError(f"Got {labels.shape[0]} labels for {len(points)} samples.")
    classes = np.unique(labels)
    colors = categorical_colors(cmap, len(classes))
    for label, color in zip(classes, colors, strict=True):
        chosen = labels == label
        x, y = points[chosen].T
        ax.scatter(x, y, s=size, color=color, label=str(label), **kwargs)
    _legend_right(ax, markerscale=max(1.0, 6 / np.sqrt(size)))


def _legend_right(ax: Axes, handles: list[Any] | None = None, **kwargs: Any) -> None:
    """A frameless legend right of the map, in columns of at most 20 entries."""
    n_entries = len(handles if handles is not None else ax.get_legend_handles_labels()[0])
    if handles is not None:
        kwargs["handles"] = handles
    ax.legend(
        loc="center left",
        bbox_to_anchor=(1.02, 0.5),
        frameon=False,
        ncol=int(np.ceil(n_entries / 20)),
        **kwargs,
    )


# History measures taken of the weights an epoch started from (in the pass that updates them).
_MEASURED_BEFORE_UPDATE = frozenset({"quantization_error"})


def plot_convergence(
    history: Sequence[Mapping[str, Any]] | Any,
    key: str = "quantization_error",
    *,
    logy: bool = False,
    ax: Axes | None = None,
    cmap: CmapLike = "viridis",
    title: str | None = None,
    figsize: tuple[float, float] = (6.0, 4.0),
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
) -> tuple[Figure, Axes]:
    """One training measure along the training.

    An epoch measures the quantization error of the weights it starts from, in the pass that
    updates them: ``history[t]["quantization_error"]`` is the QE after ``t`` epochs, drawn at
    ``t`` on an "epochs completed" axis (0: the initial map).  The other measures belong to an
    epoch's update (``sigma``, ``map_difference``, ``seconds``) and are drawn at epochs 1, 2 ...

    Parameters
    ----------
    history : list of dict, or a fitted SOM
        ``SOM.history_`` (one dict per epoch); a fitted map's own history is used.
    key : str
        The measure: ``"quantization_error"``, ``"map_difference"``, ``"sigma"``, ``"seconds"``.
    logy : bool
        Logarithmic y axis.
    ax, title, figsize, show, print_out, file_name
        As :func:`draw_map` (default file ``./som_convergence.png``).
    cmap : str or Colormap
        The line takes its colour from this map.

    Returns
    -------
    fig, ax
    """
    history = getattr(history, "history_", history)
    if not history:
        raise ValueError("The history is empty: train the map first.")
    if key not in history[0]:
        raise KeyError(f"No {key!r} in the history; it holds {', '.join(history[0])}.")
    y = np.array([entry[key] for entry in history], dtype=float)
    before_update = key in _MEASURED_BEFORE_UPDATE
    fig, ax = _axes(ax, figsize)
    draw_line(
        ax,
        np.arange(len(y)) if before_update else np.arange(1, len(y) + 1),
        y,
        color=_colormap(cmap)(0.3),
        xlabel="epochs completed" if before_update else "epoch",
        ylabel=key.replace("_", " "),
        title=title if title is not None else key.replace("_", " ").capitalize(),
        logy=logy,
        integer_x=True,
        label="map after x epochs (0: initial map)" if before_update else None,
    )
    if before_update:
        ax.legend(frameon=False)
    save_and_show(fig, show, print_out, file_name, "./som_convergence.png")
    return fig, ax
