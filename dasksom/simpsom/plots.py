"""simpsom's ``simpsom.plots`` functions, drawn by :mod:`dasksom.plotting`.

Same names, arguments and defaults as simpsom 2, so that code written for simpsom runs
unchanged: ``plot_map``, ``line_plot`` and ``scatter_on_map``.  Formatting comes in as
keyword arguments (``figsize``, ``title``, ``cbar_label``, ``fontsize``, ``cmap`` ...); other
keywords are ignored, as simpsom does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

from dasksom.plotting import (
    Hexagons,
    Squares,
    Tiling,
    add_colorbar,
    categorical_colors,
    draw_line,
    draw_tiles,
    save_and_show,
)
from dasksom.plotting.base import pyplot

__all__ = ["plot_map", "line_plot", "scatter_on_map", "Squares", "Hexagons"]

_FONTSIZE = 12


def plot_map(
    centers: ArrayLike,
    feature: ArrayLike,
    polygons_class: type[Tiling] | Tiling,
    show: bool = True,
    print_out: bool = False,
    file_name: str = "./som_plot.png",
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """Draw a map's nodes as tiles coloured by one value per node.

    Parameters
    ----------
    centers : array-like of shape (M, 2)
        Node positions ``(x, y)``, e.g. ``SOM.positions_``.
    feature : array-like of shape (M,)
        The value colouring each node (e.g. one weight, or the U-matrix); all NaN draws a
        plain map without a colorbar.
    polygons_class : Squares or Hexagons
        The tiling (class or instance), as simpsom's ``SOMNet.polygons``.
    show : bool, default=True
        Call ``plt.show()``.
    print_out : bool, default=False
        Save the figure to ``file_name``.
    file_name : str, default="./som_plot.png"
        Path of the saved figure; ``.png`` is added without a known extension.
    **kwargs
        ``figsize`` (default (5, 5)), ``title`` ("SOM"), ``cbar_label`` ("Feature value"),
        ``fontsize`` (12; the title 15% larger, ticks 15% smaller), ``cmap`` (viridis).

    Returns
    -------
    fig, ax
    """
    fontsize = kwargs.get("fontsize", _FONTSIZE)
    fig, ax = pyplot().subplots(figsize=kwargs.get("figsize", (5, 5)))
    mappable = draw_tiles(centers, feature, polygons_class, ax=ax, cmap=kwargs.get("cmap"))
    ax.set_title(kwargs.get("title", "SOM"), size=fontsize * 1.15)
    if mappable is not None:
        add_colorbar(ax, mappable, kwargs.get("cbar_label", "Feature value"), fontsize)
    save_and_show(fig, show, print_out, file_name, "./som_plot.png")
    return fig, ax


def line_plot(
    y_val: ArrayLike,
    x_val: ArrayLike | None = None,
    show: bool = True,
    print_out: bool = False,
    file_name: str = "./line_plot.png",
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """A simple line plot, e.g. of a convergence history.

    Parameters
    ----------
    y_val : array-like
        Values along the y axis.
    x_val : array-like, default=None
        Values along the x axis; None: ``0, 1, 2 ...``.
    show : bool, default=True
        Call ``plt.show()``.
    print_out : bool, default=False
        Save the figure to ``file_name``.
    file_name : str, default="./line_plot.png"
        Path of the saved figure; ``.png`` is added without a known extension.
    **kwargs
        ``figsize`` (default (5, 5)), ``title`` ("Line plot"), ``xlabel`` ("x"), ``ylabel``
        ("y"), ``logx``, ``logy`` (False), ``fontsize`` (12).

    Returns
    -------
    fig, ax
    """
    y_val = np.asarray(y_val, dtype=float)
    fig, ax = pyplot().subplots(figsize=kwargs.get("figsize", (5, 5)))
    draw_line(
        ax,
        np.arange(len(y_val)) if x_val is None else x_val,
        y_val,
        color="C0",
        xlabel=kwargs.get("xlabel", "x"),
        ylabel=kwargs.get("ylabel", "y"),
        title=kwargs.get("title", "Line plot"),
        logx=kwargs.get("logx", False),
        logy=kwargs.get("logy", False),
        fontsize=kwargs.get("fontsize", _FONTSIZE),
        integer_x=x_val is None,
    )
    fig.tight_layout()
    save_and_show(fig, show, print_out, file_name, "./line_plot.png")
    return fig, ax


def scatter_on_map(
    datagroups: Sequence[ArrayLike],
    centers: ArrayLike,
    polygons_class: type[Tiling] | Tiling,
    color_val: ArrayLike | None = None,
    show: bool = True,
    print_out: bool = False,
    file_name: str = "./som_scatter.png",
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """Points projected onto a map, one colour per group, over the map's tiles.

    Parameters
    ----------
    datagroups : sequence of array-like of shape (n_i, 2)
        Projected ``(x, y)`` points, one array per group (e.g. per class); an empty group
        still gets its legend entry.
    centers : array-like of shape (M, 2)
        Node positions.
    polygons_class : Squares or Hexagons
        The tiling (class or instance), as simpsom's ``SOMNet.polygons``.
    color_val : array-like of shape (M,), default=None
        Colour the tiles by this value (with a colorbar); None: plain tiles.
    show : bool, default=True
        Call ``plt.show()``.
    print_out : bool, default=False
        Save the figure to ``file_name``.
    file_name : str, default="./som_scatter.png"
        Path of the saved figure; ``.png`` is added without a known extension.
    **kwargs
        As :func:`plot_map`, title "Projection onto SOM"; ``cmap`` gives the groups' colours.

    Returns
    -------
    fig, ax
    """
    kwargs.setdefault("title", "Projection onto SOM")
    fontsize = kwargs.get("fontsize", _FONTSIZE)
    feature = np.full(len(np.asarray(centers)), np.nan) if color_val is None else color_val
    fig, ax = plot_map(centers, feature, polygons_class, show=False, print_out=False, **kwargs)
    colors = categorical_colors(kwargs.get("cmap"), len(datagroups))
    for i, (group, color) in enumerate(zip(datagroups, colors, strict=True)):
        points = np.asarray(group, dtype=float).reshape(-1, 2)
        ax.scatter(
            points[:, 0], points[:, 1], color=color, edgecolor="white", linewidth=0.5, label=str(i)
        )
    ax.legend(
        loc="upper right",
        bbox_to_anchor=(-0.02, 1.0),
        frameon=False,
        title="Groups",
        fontsize=fontsize * 0.85,
        title_fontsize=fontsize,
        ncol=len(datagroups) // 10 + 1,
    )
    save_and_show(fig, show, print_out, file_name, "./som_scatter.png")
    return fig, ax
