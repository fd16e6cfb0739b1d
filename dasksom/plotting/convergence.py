"""Line plots of the training: a measure of the history along the epochs
(:func:`plot_convergence`) and the line drawing it shares with simpsom's ``line_plot``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from numpy.typing import ArrayLike

from dasksom.plotting.base import CmapLike, colormap, new_axes, save_and_show

__all__ = ["draw_line", "plot_convergence"]

# History measures taken of the weights an epoch started from (in the pass that updates them).
_MEASURED_BEFORE_UPDATE = frozenset({"quantization_error"})
# Legend entries saying which map a point of such a measure describes.
_BEFORE_UPDATE_LABEL = "map before epoch x+1's update (0: initial map)"


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
    """A plain line with markers into ``ax``, the top and right spines hidden: the core of
    :func:`plot_convergence` and of simpsom's ``line_plot``.

    Parameters
    ----------
    ax : matplotlib Axes
    x, y : array-like of shape (n,)
        The points.
    color : matplotlib colour
    xlabel, ylabel, title : str or None
        None or "" for none.
    logx, logy : bool, default=False
        Make the axis logarithmic.
    fontsize : float, default=None
        Size of the labels, the title 15% larger and the ticks 15% smaller; None keeps
        matplotlib's.
    integer_x : bool, default=False
        Ticks on whole numbers only.
    label : str, default=None
        The line's name in a legend; None: not in the legend.
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


def plot_convergence(
    history: Sequence[Mapping[str, Any]] | Any,
    key: str = "quantization_error",
    *,
    final_quantization_error: float | None = None,
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

    An epoch measures the quantization error (QE) of the weights it starts from, in the pass
    that updates them: ``history[t]["quantization_error"]`` describes the map after ``t``
    epochs, before epoch ``t + 1``'s update, and is drawn at ``t`` on an "epochs completed"
    axis (0: the initial map).  The trained map's QE is on no record; given as
    ``final_quantization_error`` it is drawn at ``len(history)``.  The other measures belong
    to an epoch's update (``sigma``, ``map_difference``, ``seconds``): drawn at epochs 1, 2 ...

    Parameters
    ----------
    history : list of dict, or a fitted SOM
        ``SOM.history_`` (one dict per epoch); a fitted map's own history is used.
    key : str, default="quantization_error"
        The measure: ``"quantization_error"``, ``"map_difference"``, ``"sigma"``, ``"seconds"``.
    final_quantization_error : float, default=None
        The trained map's QE (``som.quantization_error(X)``), drawn as the last point, with
        ``key="quantization_error"`` only; None: unknown, not drawn.
    logy : bool, default=False
        Logarithmic y axis.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure of ``figsize``.
    cmap : str or Colormap, default="viridis"
        The line takes its colour from this map.
    title : str, default=None
        None: the measure's name, e.g. "Quantization error"; "" for none.
    figsize : (float, float), default=(6.0, 4.0)
    show, print_out : bool, default=False
        Call ``plt.show()``; save the figure to ``file_name``.
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./som_convergence.png``.

    Returns
    -------
    fig, ax
    """
    y = _history_values(history, key, final_quantization_error)
    fig, ax = new_axes(ax, figsize)
    color = colormap(cmap)(0.3)
    _draw_history(ax, y, key, color, title, logy)
    if final_quantization_error is not None:
        _draw_final_map(ax, y[-1], float(final_quantization_error), len(y), color)
    if key in _MEASURED_BEFORE_UPDATE:
        ax.legend(frameon=False)
    save_and_show(fig, show, print_out, file_name, "./som_convergence.png")
    return fig, ax


def _history_values(history: Any, key: str, final_quantization_error: float | None) -> np.ndarray:
    """The measure ``key`` of every record of ``history`` (or of a fitted map's history)."""
    history = getattr(history, "history_", history)
    if not history:
        raise ValueError("The history is empty: train the map first.")
    if key not in history[0]:
        raise KeyError(f"No {key!r} in the history; it holds {', '.join(history[0])}.")
    if final_quantization_error is not None and key != "quantization_error":
        raise ValueError(
            f"final_quantization_error goes with key='quantization_error', not {key!r}."
        )
    return np.array([entry[key] for entry in history], dtype=float)


def _draw_history(
    ax: Axes, y: np.ndarray, key: str, color: Any, title: str | None, logy: bool
) -> None:
    """The records' line: at epochs completed 0, 1 ... for a measure of the map an epoch
    started from, labelled so; at epochs 1, 2 ... for a measure of an epoch's update."""
    before_update = key in _MEASURED_BEFORE_UPDATE
    draw_line(
        ax,
        np.arange(len(y)) if before_update else np.arange(1, len(y) + 1),
        y,
        color=color,
        xlabel="epochs completed" if before_update else "epoch",
        ylabel=key.replace("_", " "),
        title=title if title is not None else key.replace("_", " ").capitalize(),
        logy=logy,
        integer_x=True,
        label=_BEFORE_UPDATE_LABEL if before_update else None,
    )


def _draw_final_map(ax: Axes, last: float, final: float, n_epochs: int, color: Any) -> None:
    """The trained map's QE as a star at ``n_epochs``, dashed from the last record's (the map
    before the last update), labelled "final map"."""
    epochs = "epoch" if n_epochs == 1 else "epochs"
    ax.plot(
        [n_epochs - 1, n_epochs],
        [last, final],
        linestyle="--",
        marker="*",
        markevery=[1],
        markersize=10,
        color=color,
        label=f"final map (after {n_epochs} {epochs})",
    )
