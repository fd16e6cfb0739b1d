"""Pictures of a map of gridded fields (:mod:`dasksom.climate`): the prototypes as maps on
latitude-longitude axes laid out as the node grid, node frequencies and their trends on the
lattice, and the transition matrix as a graph over the lattice.

Coastlines are drawn when cartopy is installed (``coastlines=True``, or ``"auto"``); without it
the maps are plain longitude-latitude axes.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dasksom.core.lattice import Lattice
from dasksom.plotting.base import colormap, pyplot, save_and_show
from dasksom.plotting.tiles import draw_map, draw_map_tiles

CmapLike = Any


def cartopy_available() -> bool:
    """Whether cartopy (the optional cartography package) can be imported."""
    return importlib.util.find_spec("cartopy") is not None


def _use_coastlines(coastlines: bool | str) -> bool:
    if coastlines == "auto":
        return cartopy_available()
    if coastlines is True and not cartopy_available():
        raise ImportError(
            "coastlines=True needs cartopy, which is not installed: pip install cartopy, or "
            "pass coastlines='auto' (coastlines when cartopy is there) or False."
        )
    return bool(coastlines)


def _node_grid(prototypes: xr.DataArray) -> tuple[np.ndarray, np.ndarray]:
    for name in ("node_row", "node_col"):
        if name not in prototypes.coords:
            raise ValueError(
                f"The prototypes lack the {name!r} coordinate; pass FieldSOM.prototypes()."
            )
    return np.asarray(prototypes["node_row"]), np.asarray(prototypes["node_col"])


def _lat_lon(field: xr.DataArray) -> tuple[str, str]:
    dims = [d for d in field.dims if d != "node"]
    if len(dims) != 2:
        raise ValueError(
            f"A prototype map needs two grid dims besides 'node', got {dims}; select one "
            "level or variable first (e.g. prototypes.sel(level=500))."
        )
    lat = next((d for d in dims if str(d).lower().startswith(("lat", "y"))), dims[0])
    lon = next(d for d in dims if d != lat)
    return str(lat), str(lon)


def plot_prototype_maps(
    prototypes: xr.DataArray,
    *,
    frequencies: xr.DataArray | np.ndarray | None = None,
    cmap: CmapLike = "RdBu_r",
    symmetric: bool = True,
    coastlines: bool | str = "auto",
    panel_size: float = 2.2,
    cbar_label: str | None = None,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
) -> tuple[Figure, np.ndarray]:
    """The prototype of every node as a map, in a grid of panels laid out as the lattice.

    Parameters
    ----------
    prototypes : DataArray
        :meth:`FieldSOM.prototypes` (dims ``(node, lat, lon)`` with ``node_row`` and
        ``node_col``); for a Dataset, pass one variable.
    frequencies : DataArray or array of shape (M,), default=None
        Each node's frequency, written in its panel's title as a percentage.
    cmap : str or Colormap, default="RdBu_r"
    symmetric : bool, default=True
        Colour limits symmetric about zero (for anomalies).
    coastlines : bool or "auto", default="auto"
        Draw coastlines with cartopy; ``"auto"`` does when cartopy is installed.
    panel_size : float, default=2.2
        Width of one panel, in inches.
    cbar_label : str, default=None
        None: the field's ``units``.
    show, print_out, file_name
        As every plot: show, save to ``file_name`` (default ``./som_prototypes.png``).

    Returns
    -------
    fig, axes
        The figure and the ``(height, width)`` array of axes.
    """
    rows, cols = _node_grid(prototypes)
    lat, lon = _lat_lon(prototypes)
    height, width = int(rows.max()) + 1, int(cols.max()) + 1
    values = np.asarray(prototypes.transpose("node", lat, lon).values, dtype=float)
    limit = float(np.nanmax(np.abs(values))) if symmetric else None
    vmin, vmax = (-limit, limit) if limit is not None else (np.nanmin(values), np.nanmax(values))
    extent_lon, extent_lat = prototypes[lon].values, prototypes[lat].values
    aspect = np.ptp(extent_lat) / max(np.ptp(extent_lon), 1e-9)
    subplot_kw: dict[str, Any] = {}
    draw_coasts = _use_coastlines(coastlines)
    if draw_coasts:
        crs = importlib.import_module("cartopy.crs")
        subplot_kw["projection"] = crs.PlateCarree()
    fig, axes = pyplot().subplots(
        height,
        width,
        figsize=(panel_size * width + 1.0, panel_size * aspect * height + 0.4 * height + 0.3),
        squeeze=False,
        subplot_kw=subplot_kw,
        constrained_layout=True,
    )
    freq = None if frequencies is None else np.asarray(frequencies, dtype=float).ravel()
    mesh = None
    for node, (r, c) in enumerate(zip(rows, cols, strict=True)):
        ax = axes[height - 1 - r, c]
        extra = {"transform": subplot_kw["projection"]} if draw_coasts else {}
        mesh = ax.pcolormesh(
            extent_lon,
            extent_lat,
            values[node],
            cmap=colormap(cmap),
            vmin=vmin,
            vmax=vmax,
            shading="nearest",
            **extra,
        )
        if draw_coasts:
            ax.coastlines(linewidth=0.6)
        else:
            ax.set_aspect("equal")
            ax.tick_params(labelsize=7)
        title = f"node {node}"
        if freq is not None:
            title += f"  ({100 * freq[node]:.0f}%)"
        ax.set_title(title, fontsize=9)
    label = cbar_label if cbar_label is not None else prototypes.attrs.get("units", "")
    cbar = fig.colorbar(mesh, ax=axes, shrink=0.8)
    cbar.outline.set_visible(False)
    if label:
        cbar.set_label(label)
    save_and_show(fig, show, print_out, file_name, "./som_prototypes.png")
    return fig, axes


def plot_frequency_trend(
    trend: xr.Dataset,
    lattice: Lattice,
    *,
    significance: float = 0.05,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
) -> tuple[Figure, np.ndarray]:
    """Each node's mean frequency and its trend, side by side on the lattice.

    Parameters
    ----------
    trend : Dataset
        :func:`dasksom.climate.frequency_trend` (``frequency``, ``slope``, ``p_value``).
    lattice : Lattice
        The map's lattice (``FieldSOM.som_.lattice_``).
    significance : float, default=0.05
        Trends with a smaller p-value are marked with a star.
    show, print_out, file_name
        As every plot (default file ``./som_frequency_trend.png``).

    Returns
    -------
    fig, axes
    """
    fig, axes = pyplot().subplots(1, 2, figsize=(11.0, 4.6))
    fig.subplots_adjust(left=0.02, right=0.92, wspace=0.35)
    period = str(trend["frequency"].dims[0])
    mean = trend["frequency"].mean(period).values
    draw_map(
        100 * mean,
        lattice,
        ax=axes[0],
        cmap="viridis",
        title="frequency",
        cbar_label="% of samples",
    )
    slope = trend["slope"].values
    limit = float(np.abs(slope).max()) or 1.0
    draw_map(
        100 * slope,
        lattice,
        ax=axes[1],
        cmap="RdBu_r",
        title=f"trend (* p < {significance:g})",
        cbar_label=f"% per {period}",
        vmin=-100 * limit,
        vmax=100 * limit,
    )
    positions = lattice.positions
    for node in np.flatnonzero(trend["p_value"].values < significance):
        axes[1].text(
            positions[node, 0], positions[node, 1], "*", ha="center", va="center", fontsize=16
        )
    save_and_show(fig, show, print_out, file_name, "./som_frequency_trend.png")
    return fig, axes


def plot_transition_graph(
    transitions: xr.Dataset | xr.DataArray | np.ndarray,
    lattice: Lattice,
    *,
    frequencies: xr.DataArray | np.ndarray | None = None,
    threshold: float = 0.05,
    ax: Axes | None = None,
    cmap: CmapLike = "Greys",
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
) -> tuple[Figure, Axes]:
    """The transition matrix as a graph over the lattice: an arrow per likely transition.

    Parameters
    ----------
    transitions : Dataset, DataArray or ndarray
        :func:`dasksom.climate.transitions` (its ``probability``) or the ``(from_node,
        to_node)`` probabilities.
    lattice : Lattice
    frequencies : DataArray or array of shape (M,), default=None
        Colour of each node's tile; None leaves tiles blank.
    threshold : float, default=0.05
        Transitions less likely than this are not drawn.
    ax : matplotlib Axes, default=None
    cmap : str or Colormap, default="Greys"
        Colours of the node tiles.
    show, print_out, file_name
        As every plot (default file ``./som_transitions.png``).

    Returns
    -------
    fig, ax
        Arrow widths follow the probability; each node's tile shows the probability of
        staying, ``p_ii`` (nothing for a node never left).
    """
    probability = transitions["probability"] if isinstance(transitions, xr.Dataset) else transitions
    matrix = np.asarray(getattr(probability, "values", probability), dtype=float)
    n = lattice.n_nodes
    if matrix.shape != (n, n):
        raise ValueError(
            f"Expected a {n} x {n} transition matrix for the {lattice.height} x "
            f"{lattice.width} map, got {matrix.shape}; pass transitions(bmus, n_nodes)."
        )
    values = None if frequencies is None else 100 * np.asarray(frequencies, dtype=float).ravel()
    fig, ax, _ = draw_map_tiles(
        values if values is not None else np.full(n, np.nan),
        lattice,
        ax=ax,
        cmap=cmap,
        title="transitions",
        colorbar=values is not None,
        cbar_label="% of samples",
        alpha=0.6,
        edgecolors="0.5",
        linewidths=0.6,
    )
    positions = lattice.positions
    for i in range(n):
        if np.isnan(matrix[i, i]):
            continue  # a node never left: no staying probability, no arrows
        ax.text(
            positions[i, 0],
            positions[i, 1],
            f"{matrix[i, i]:.2f}",
            ha="center",
            va="center",
            fontsize=8,
        )
        for j in range(n):
            p = matrix[i, j]
            if i == j or not p >= threshold:
                continue
            start, end = positions[i], positions[j]
            ax.annotate(
                "",
                xy=start + 0.72 * (end - start),
                xytext=start + 0.28 * (end - start),
                arrowprops={
                    "arrowstyle": "-|>",
                    "lw": 0.5 + 8.0 * p,
                    "color": "tab:red",
                    "connectionstyle": "arc3,rad=0.2",
                    "shrinkA": 0,
                    "shrinkB": 0,
                },
            )
    save_and_show(fig, show, print_out, file_name, "./som_transitions.png")
    return fig, ax
