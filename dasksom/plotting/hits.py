"""Which samples each node wins: hit counts and majority labels per node, with the nodes no
sample hits hatched.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from numpy.typing import ArrayLike

from dasksom.core.analysis import label_votes
from dasksom.core.lattice import Lattice
from dasksom.plotting.base import (
    EMPTY_FACE,
    NO_HITS_COLOR,
    NO_HITS_HATCH,
    CmapLike,
    categorical_colors,
    fitted_map,
    host_bmus,
    legend_right,
    save_and_show,
    to_numpy,
)
from dasksom.plotting.tiles import draw_map_tiles, overlay_tiles, torus_bounds

__all__ = ["plot_hits", "plot_labels"]


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
        Anything with ``weights_`` and ``lattice_``; its ``hit_counts`` counts ``X`` chunk by
        chunk (so X may be larger than memory) when neither ``bmus`` nor ``counts`` is given.
    X : array-like or dask array of shape (n_samples, D), default=None
        The data; not needed with ``bmus`` or ``counts``.
    bmus : int array-like of shape (n_samples,), default=None
        Each sample's best-matching unit, when the caller has them: saves a pass over X.
    counts : int array-like of shape (M,), default=None
        The hit counts themselves (``SOM.evaluate(X)["hit_counts"]``): saves a pass over X.
    annotate : bool, default=False
        Write each node's count on its tile.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    cmap : str or Colormap, default="Blues"
    title : str, default="Hits"
    colorbar : bool, default=True
        A colorbar labelled "samples" (``cbar_label=`` changes it).
    show, print_out : bool, default=False
        Call ``plt.show()``; save the figure to ``file_name``.
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./som_hits.png``.
    **kwargs
        Passed to :func:`~dasksom.plotting.draw_map`.

    Returns
    -------
    fig, ax
        With a legend entry for the hatched nodes when some node has no hits.
    """
    _, lattice = fitted_map(som)
    hits = _hit_counts(som, X, bmus, counts, lattice.n_nodes)
    kwargs.setdefault("cbar_label", "samples")
    fig, ax, tiles = draw_map_tiles(
        hits, lattice, ax=ax, cmap=cmap, title=title, colorbar=colorbar, **kwargs
    )
    _hatch_nodes_without_hits(ax, lattice, hits)
    if annotate:
        assert tiles is not None, "hit counts are never NaN: every tile is coloured"
        _annotate_counts(ax, tiles, lattice, hits)
    save_and_show(fig, show, print_out, file_name, "./som_hits.png")
    return fig, ax


def _hit_counts(
    som: Any, X: Any, bmus: ArrayLike | None, counts: ArrayLike | None, n_nodes: int
) -> np.ndarray:
    """Hits per node: ``counts`` as given, else counted from ``bmus``, else by the map's
    ``hit_counts`` over ``X``."""
    if counts is not None:
        hits = to_numpy(counts).astype(np.int64).ravel()
        if hits.shape != (n_nodes,):
            raise ValueError(f"counts must hold one count per node ({n_nodes}).")
        return hits
    if bmus is not None:
        nodes = host_bmus(som, X, bmus, n_nodes)
        return np.bincount(nodes[nodes >= 0], minlength=n_nodes)
    if X is not None:
        return np.asarray(som.hit_counts(X))
    raise ValueError("Pass the data X, its best-matching units as bmus=, or counts=.")


def _hatch_nodes_without_hits(ax: Axes, lattice: Lattice, hits: np.ndarray) -> None:
    """Hatch the nodes without hits, with a legend entry under the map (the colorbar takes
    the right)."""
    empty = np.flatnonzero(hits == 0)
    if empty.size:
        handle = _hatch_empty_nodes(ax, lattice, empty, "no hits")
        ax.legend(handles=[handle], loc="upper center", bbox_to_anchor=(0.5, 0.0), frameon=False)


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
    overlay_tiles(ax, lattice, nodes, tiles)
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
    bounds = torus_bounds(lattice)
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
        Anything with ``weights_`` and ``lattice_``, e.g. a fitted :class:`dasksom.SOM`.
    X : array-like or dask array of shape (n_samples, D), or None with ``bmus``
        The data.
    y : array-like or dask array of shape (n_samples,)
        Labels of any sortable type (ints, strings).  Ties go to the first label in sorted
        order; nodes that win no sample are hatched.
    bmus : int array-like of shape (n_samples,), default=None
        Each sample's best-matching unit, when the caller has them: saves a pass over X.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    cmap : str or Colormap, default=None
        Label colours: a qualitative map's own colours, or evenly spaced samples of any other;
        None: ``tab10`` / ``tab20`` / ``turbo`` by the number of labels.
    title : str, default="Majority label"
    show, print_out : bool, default=False
        Call ``plt.show()``; save the figure to ``file_name``.
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./som_labels.png``.
    **kwargs
        Passed to :func:`~dasksom.plotting.draw_map`.

    Returns
    -------
    fig, ax
        With a legend of the labels right of the map.
    """
    _, lattice = fitted_map(som)
    nodes = host_bmus(som, X, bmus, lattice.n_nodes)
    classes, votes, _ = label_votes(nodes, to_numpy(y), lattice.n_nodes)
    won = votes.sum(axis=1) > 0
    colors = categorical_colors(cmap, len(classes))
    majority = np.where(won, votes.argmax(axis=1), np.nan)
    fig, ax = _draw_majority(majority, lattice, colors, ax=ax, title=title, **kwargs)
    handles = [Patch(facecolor=c, label=str(k)) for c, k in zip(colors, classes, strict=True)]
    if not won.all():
        handles.append(_hatch_empty_nodes(ax, lattice, np.flatnonzero(~won), "no samples"))
    legend_right(ax, handles)
    save_and_show(fig, show, print_out, file_name, "./som_labels.png")
    return fig, ax


def _draw_majority(
    majority: np.ndarray, lattice: Lattice, colors: np.ndarray, **kwargs: Any
) -> tuple[Figure, Axes]:
    """Each node in the colour of its label's index in ``majority`` (NaN: blank), without a
    colorbar; ``kwargs`` go to :func:`draw_map_tiles`."""
    n_classes = len(colors)
    fig, ax, _ = draw_map_tiles(
        majority,
        lattice,
        cmap=ListedColormap(colors),
        norm=BoundaryNorm(np.arange(n_classes + 1) - 0.5, n_classes),
        colorbar=False,
        **kwargs,
    )
    return fig, ax
