"""What every figure shares: pyplot on a headless box, colours, new figures, the fitted map's
arrays, colorbars and legends, and saving or showing a figure.

:func:`pyplot` is the one place that imports :mod:`matplotlib.pyplot`, so that the backend is
chosen (Agg on a Linux box without a display) before pyplot loads.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colorbar import Colorbar
from matplotlib.colors import Colormap, ListedColormap
from matplotlib.figure import Figure
from mpl_toolkits.axes_grid1 import make_axes_locatable
from numpy.typing import ArrayLike

from dasksom.core.lattice import Lattice
from dasksom.io.atomic import atomic_file

__all__ = [
    "EMPTY_EDGE",
    "EMPTY_FACE",
    "NO_HITS_COLOR",
    "NO_HITS_HATCH",
    "CmapLike",
    "add_colorbar",
    "categorical_colors",
    "colormap",
    "fitted_map",
    "host_bmus",
    "legend_right",
    "map_figsize",
    "new_axes",
    "pyplot",
    "save_and_show",
    "to_numpy",
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
# pyplot and the backend


@functools.cache
def pyplot() -> ModuleType:
    """:mod:`matplotlib.pyplot`, imported on the first call after choosing the backend.

    A headless Linux box (a cluster node, CI) has no display: when neither ``DISPLAY`` nor
    ``WAYLAND_DISPLAY`` is set, ``MPLBACKEND`` is not set and pyplot has not been imported yet
    (so neither the user nor their notebook has chosen a backend), Agg is chosen.  The choice
    is made once, on the first call; later calls return the module.

    Returns
    -------
    module
        :mod:`matplotlib.pyplot`.
    """
    if _headless_without_backend():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _headless_without_backend() -> bool:
    """Whether this is a Linux box without a display on which no backend was chosen."""
    return (
        sys.platform.startswith("linux")
        and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
        and not os.environ.get("MPLBACKEND")
        and "matplotlib.pyplot" not in sys.modules
    )


# --------------------------------------------------------------------------------------------
# Colours


def colormap(cmap: CmapLike | None, default: str = "viridis") -> Colormap:
    """A private copy of a colormap with empty (NaN) nodes shown blank.

    Parameters
    ----------
    cmap : str or Colormap or None
        The colormap, by name or itself; None takes ``default``.
    default : str, default="viridis"
        The colormap's name when ``cmap`` is None.

    Returns
    -------
    Colormap
        A copy whose "bad" colour is :data:`EMPTY_FACE`.
    """
    base = matplotlib.colormaps[cmap or default] if not isinstance(cmap, Colormap) else cmap
    return base.with_extremes(bad=EMPTY_FACE)


def categorical_colors(cmap: CmapLike | None, n: int) -> np.ndarray:
    """``n`` distinct colours, e.g. one per label or group.

    Parameters
    ----------
    cmap : str or Colormap or None
        A qualitative colormap (``tab10``, ``Set2`` ...) gives its own colours in order,
        cycling when ``n`` is larger; any other map is sampled evenly.  None takes ``tab10``,
        ``tab20`` or ``turbo`` by ``n``.
    n : int
        How many colours.

    Returns
    -------
    ndarray of shape (n, 4)
        RGBA colours.
    """
    if cmap is None:
        cmap = "tab10" if n <= 10 else "tab20" if n <= 20 else "turbo"
    cmap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    if isinstance(cmap, ListedColormap) and cmap.N <= 32:
        return cmap(np.arange(n) % cmap.N)
    return cmap(np.linspace(0.0, 1.0, n) if n > 1 else [0.5])


# --------------------------------------------------------------------------------------------
# The fitted map and its data


def fitted_map(som: Any) -> tuple[np.ndarray, Lattice]:
    """The weights and lattice of a fitted map.

    Parameters
    ----------
    som : fitted SOM
        Anything with ``weights_`` of shape ``(M, D)`` and a :class:`~dasksom.Lattice` in
        ``lattice_``.

    Returns
    -------
    weights : ndarray of shape (M, D)
    lattice : Lattice

    Raises
    ------
    TypeError
        When ``som`` has no ``weights_`` or no ``lattice_`` (not fitted yet).
    """
    if not (hasattr(som, "weights_") and hasattr(som, "lattice_")):
        raise TypeError(
            f"Expected a fitted map with weights_ and lattice_ attributes (a fitted "
            f"dasksom.SOM), got {type(som).__name__}; call fit(X) first."
        )
    return np.asarray(som.weights_), som.lattice_


def to_numpy(values: Any) -> np.ndarray:
    """A host numpy array from numpy, dask or cupy input.

    Parameters
    ----------
    values : array-like, dask array or cupy array

    Returns
    -------
    ndarray
        ``values`` computed (dask) and copied to the host (cupy).
    """
    if hasattr(values, "compute"):
        values = values.compute()
    if hasattr(values, "get") and not isinstance(values, np.ndarray):
        values = values.get()
    return np.asarray(values)


def host_bmus(som: Any, X: Any, bmus: ArrayLike | None, n_nodes: int) -> np.ndarray:
    """Each sample's best-matching unit: ``bmus`` when the caller has them, else one pass
    over ``X``.

    Parameters
    ----------
    som : fitted SOM
        Its ``best_matching_units`` (the estimator's host path) or else ``predict`` finds the
        units when ``bmus`` is None.
    X : array-like or dask array of shape (n_samples, D) or None
        The data; not read when ``bmus`` is given.
    bmus : int array-like of shape (n_samples,) or None
        The best-matching units, when known.
    n_nodes : int
        Nodes of the map, to check the indices against.

    Returns
    -------
    ndarray of int64, shape (n_samples,)
        Node indices; -1 marks a sample with no unit (no observed value).
    """
    if bmus is None:
        if X is None:
            raise ValueError("Pass the data X, or its best-matching units as bmus=.")
        # The estimator's own host path when it has one; predict gives numpy or dask.
        find = getattr(som, "best_matching_units", None) or som.predict
        bmus = find(X)
    bmus = to_numpy(bmus).astype(np.int64, copy=False).ravel()
    if bmus.size and (bmus.min() < -1 or bmus.max() >= n_nodes):
        raise ValueError(f"bmus must be node indices in [0, {n_nodes}), or -1 for none.")
    return bmus


# --------------------------------------------------------------------------------------------
# Figures, colorbars, legends


def map_figsize(width: float, height: float, colorbar: bool) -> tuple[float, float]:
    """A figure size that fits a map, its longer side 6 inches.

    Parameters
    ----------
    width, height : float
        The map's extent in lattice units.
    colorbar : bool
        Leave room for a colorbar on the right.

    Returns
    -------
    (float, float)
        Width and height in inches.
    """
    scale = 6.0 / max(width, height)
    fig_w = max(width * scale, 2.0) + (1.0 if colorbar else 0.2)
    fig_h = max(height * scale, 2.0) + 0.6
    return fig_w, fig_h


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """The caller's axes and their figure, or a new figure of ``figsize`` with one axes.

    Parameters
    ----------
    ax : matplotlib Axes or None
        Axes to draw into; None makes a new figure.
    figsize : (float, float)
        Size of a new figure, in inches.

    Returns
    -------
    fig, ax
    """
    if ax is not None:
        # The plots draw on axes of a top-level Figure (print_out saves it); an Axes on a
        # SubFigure would give the SubFigure.
        return cast(Figure, ax.figure), ax
    fig, ax = pyplot().subplots(figsize=figsize)
    return fig, ax


def add_colorbar(
    ax: Axes, mappable: Any, label: str | None, fontsize: float | None = None
) -> Colorbar:
    """A colorbar as tall as the (aspect-locked) map in ``ax``, right of it, without an
    outline.

    Parameters
    ----------
    ax : matplotlib Axes
        The map's axes.
    mappable : ScalarMappable
        What the colorbar shows, e.g. the tiles :func:`~dasksom.plotting.draw_tiles` returns.
    label : str or None
        The colorbar's label; None or "" for none.
    fontsize : float, default=None
        Size of the label, the ticks 15% smaller; None keeps matplotlib's.

    Returns
    -------
    Colorbar
    """
    cax = make_axes_locatable(ax).append_axes("right", size="4%", pad=0.08)
    cbar = ax.figure.colorbar(mappable, cax=cax)
    cbar.outline.set_visible(False)
    if label:
        cbar.set_label(label, size=fontsize)
    if fontsize:
        cbar.ax.tick_params(labelsize=fontsize * 0.85)
    return cbar


def legend_right(ax: Axes, handles: list[Any] | None = None, **kwargs: Any) -> None:
    """A frameless legend right of the map, in columns of at most 20 entries.

    Parameters
    ----------
    ax : matplotlib Axes
    handles : list of Artist, default=None
        The legend's entries; None takes the labelled artists of ``ax``.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.legend`.
    """
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


def save_and_show(
    fig: Figure,
    show: bool,
    print_out: bool,
    file_name: str | os.PathLike | None,
    default: str,
) -> None:
    """Save ``fig`` and/or show it, as every plot's ``show`` and ``print_out`` do.

    Parameters
    ----------
    fig : matplotlib Figure
    show : bool
        Call ``plt.show()``.
    print_out : bool
        Save the figure to ``file_name`` at 150 dpi, atomically
        (:func:`dasksom.io.atomic.atomic_file`).
    file_name : str or path or None
        Where to save it; ``.png`` is added to a name without an extension matplotlib can
        write.  None takes ``default``.
    default : str
        The file when ``file_name`` is None.
    """
    if print_out:
        path = Path(file_name if file_name is not None else default)
        kind = path.suffix.lstrip(".").lower()
        if kind not in fig.canvas.get_supported_filetypes():
            path, kind = path.with_name(path.name + ".png"), "png"
        with atomic_file(path) as tmp:
            fig.savefig(tmp, bbox_inches="tight", dpi=150, format=kind)
    if show:
        pyplot().show()
