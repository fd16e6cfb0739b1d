"""FlowSOM's pictures of a fitted :class:`~dasksom.cytometry.FlowSOM`: star glyphs per node,
pies of manual-gate labels per node and one marker's level per node, on the minimal spanning
tree or on the grid.

- :func:`plot_stars` (FlowSOM's ``PlotStars``): a star per node, one wedge per marker whose
  radius is the node's code for that marker scaled 0..1 over the nodes, on a background
  circle in the colour of the node's metacluster;
- :func:`plot_label_pies` (``PlotPies``): the share of each manual label among a node's
  cells, counted out of core (one bincount per chunk, summed);
- :func:`plot_marker_tree` (``PlotMarker``): nodes coloured by one marker's code, with a
  colorbar.

Every plot takes ``layout="mst"`` (the tree laid out by Kamada-Kawai stress majorisation on
its path lengths, :func:`tree_layout`, with the tree's edges drawn under the nodes) or
``"grid"`` (the lattice's own positions, square or hexagonal); :func:`node_layout` gives the
positions and edges.  Node sizes follow cell counts (``counts=``, e.g. the ``count`` column of
:func:`dasksom.cytometry.summarise`'s ``nodes`` table) by area.  Every plot takes ``ax``,
``show``, ``print_out`` and ``file_name`` as the map plots do and returns ``(fig, ax)``.  The
grid views of the map itself (U-matrix, component planes, hits) are the map plots of
``model.som_``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection, PatchCollection
from matplotlib.figure import Figure
from matplotlib.patches import Circle, Patch, Wedge
from numpy.typing import ArrayLike
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import shortest_path
from scipy.spatial import cKDTree

from dasksom.cytometry import FlowSOM, grouped_counts
from dasksom.plotting.base import (
    EMPTY_EDGE,
    EMPTY_FACE,
    CmapLike,
    add_colorbar,
    categorical_colors,
    colormap,
    map_figsize,
    new_axes,
    save_and_show,
    to_numpy,
)
from dasksom.training.engine import compute_context

__all__ = [
    "LAYOUTS",
    "label_counts",
    "metacluster_colors",
    "node_layout",
    "plot_label_pies",
    "plot_marker_tree",
    "plot_stars",
    "tree_layout",
]

LAYOUTS = ("mst", "grid")
EDGE_COLOR = "#8c8c8c"
# Metacluster backgrounds are drawn this much wider than the largest node, and this opaque.
BACKGROUND_SCALE = 1.25
BACKGROUND_ALPHA = 0.75
# The smallest node (fewest cells) keeps this share of the largest one's radius.
MIN_RADIUS = 0.3
# A new figure gives every layout unit at least this many inches, up to twice the map plots'.
INCHES_PER_UNIT = 0.3


# --------------------------------------------------------------------------------------------
# Node positions


def tree_layout(
    edges: ArrayLike, initial: ArrayLike, *, iterations: int = 300, tol: float = 1e-6
) -> np.ndarray:
    """Kamada-Kawai positions of a tree (or any graph) by stress majorisation.

    Minimises Kamada-Kawai's energy, ``sum_ij (|x_i - x_j| - d_ij) ** 2 / d_ij ** 2`` over
    the path lengths ``d_ij`` (edges counted), by SMACOF iterations (Gansner, Koren and North
    2004), which lower it monotonically, from ``initial`` (e.g. the grid: the same tree
    always gets the same picture), then turned to lie along x.  Nodes of different
    components sit one edge further apart than the farthest pair in one component.

    Parameters
    ----------
    edges : int array-like of shape (E, 2)
        Node pairs, e.g. :attr:`FlowSOM.mst_ <dasksom.cytometry.FlowSOM>`.
    initial : array-like of shape (M, 2)
        Starting positions, all distinct.
    iterations : int, default=300
        The most majorisation steps.
    tol : float, default=1e-6
        Stop when the stress falls by less than this share in a step.

    Returns
    -------
    ndarray of shape (M, 2)
        Positions in edge lengths: connected nodes about 1 apart.
    """
    x = np.asarray(initial, dtype=np.float64).copy()
    n = len(x)
    pairs = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    target = shortest_path(graph, directed=False, unweighted=True)
    finite = np.isfinite(target)
    target[~finite] = (target[finite].max() if finite.any() else 0.0) + 1.0
    np.fill_diagonal(target, 1.0)
    weight = target**-2.0
    np.fill_diagonal(weight, 0.0)
    np.fill_diagonal(target, 0.0)
    inverse = np.linalg.pinv(np.diag(weight.sum(axis=1)) - weight)
    stress = np.inf
    for _ in range(iterations):
        distance = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(axis=-1))
        new_stress = float((weight * (distance - target) ** 2).sum())
        if stress - new_stress < tol * new_stress:
            break
        stress = new_stress
        with np.errstate(divide="ignore", invalid="ignore"):
            pull = np.where(distance > 0, -weight * target / distance, 0.0)
        np.fill_diagonal(pull, -pull.sum(axis=1))
        x = inverse @ (pull @ x)
    return _level(x)


def _level(x: np.ndarray) -> np.ndarray:
    """``x`` centred and turned so that it spreads most along the first axis (node 0 on the
    left), which suits a landscape figure."""
    x = x - x.mean(axis=0)
    axes = np.linalg.svd(x, full_matrices=False)[2] if len(x) > 1 else np.eye(2)
    turned = x @ axes.T
    return turned * np.where(turned[0] > 0, -1.0, 1.0)


def node_layout(model: FlowSOM, layout: str = "mst") -> tuple[np.ndarray, np.ndarray]:
    """Where each node of a fitted FlowSOM is drawn, and the edges drawn between them.

    Parameters
    ----------
    model : FlowSOM
        Fitted.
    layout : {"mst", "grid"}, default="mst"
        ``"mst"``: the minimal spanning tree by :func:`tree_layout`, started from the grid;
        ``"grid"``: the lattice's positions (``model.som_.lattice_.positions``).

    Returns
    -------
    positions : ndarray of shape (M, 2)
    edges : ndarray of int64, shape (E, 2)
        The tree's edges for ``"mst"``, none for ``"grid"``.
    """
    if not hasattr(model, "som_"):
        raise ValueError("this FlowSOM is not fitted; call fit(cells) or load a model")
    grid = np.asarray(model.som_.lattice_.positions, dtype=np.float64)
    if layout == "grid":
        return grid, np.empty((0, 2), dtype=np.int64)
    if layout == "mst":
        edges = np.asarray(model.mst_, dtype=np.int64).reshape(-1, 2)
        return tree_layout(edges, grid), edges
    raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")


def metacluster_colors(n: int, cmap: CmapLike | None = None) -> np.ndarray:
    """The colour of each of ``n`` metaclusters, as every cytometry plot draws them.

    Parameters
    ----------
    n : int
        Metaclusters.
    cmap : str or Colormap, default=None
        None: the light ``Set3`` (12 colours), ``tab20`` for more, so that they stay apart
        from the markers' colours.

    Returns
    -------
    ndarray of shape (n, 4)
        RGBA, opaque.
    """
    return categorical_colors(cmap or ("Set3" if n <= 12 else "tab20"), n)


# --------------------------------------------------------------------------------------------
# The scene every plot shares: axes, node positions and radii, edges, backgrounds


@dataclass(frozen=True)
class _Scene:
    """The nodes as a plot draws them: centres, radii and the radius of the largest."""

    positions: np.ndarray
    radii: np.ndarray
    size: float


def _scene(
    model: FlowSOM,
    layout: str,
    counts: ArrayLike | None,
    size: float | None,
    ax: Axes | None,
    colorbar: bool = False,
) -> tuple[Figure, Axes, _Scene]:
    """Axes framing the nodes, the tree's edges drawn, and where the nodes go."""
    positions, edges = node_layout(model, layout)
    if size is None:
        nearest = cKDTree(positions).query(positions, k=2)[0][:, 1] if len(positions) > 1 else [1]
        size = 0.45 * float(np.median(nearest))
    scene = _Scene(positions, _radii(size, counts, len(positions)), size)
    reach = BACKGROUND_SCALE * size
    lo, hi = positions.min(axis=0) - reach, positions.max(axis=0) + reach
    fig, ax = new_axes(ax, _figsize(hi - lo, colorbar))
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect("equal")
    ax.set_axis_off()
    if len(edges):
        lines = LineCollection(positions[edges], colors=EDGE_COLOR, linewidths=1.0, zorder=1)
        lines.set_gid("edges")
        ax.add_collection(lines, autolim=False)
    return fig, ax, scene


def _figsize(extent: np.ndarray, colorbar: bool) -> tuple[float, float]:
    """The map plots' figure size, grown for a wide tree so that its nodes stay legible."""
    width, height = map_figsize(float(extent[0]), float(extent[1]), colorbar)
    grow = float(np.clip(INCHES_PER_UNIT * extent.max() / 6.0, 1.0, 2.0))
    return width * grow, height * grow


def _radii(size: float, counts: ArrayLike | None, n_nodes: int) -> np.ndarray:
    """Every node ``size``, or with ``counts`` sized by area, the largest count ``size``."""
    if counts is None:
        return np.full(n_nodes, float(size))
    values = to_numpy(counts).astype(np.float64).ravel()
    if values.shape != (n_nodes,) or (values < 0).any():
        raise ValueError(f"counts must be one non-negative count per node ({n_nodes}).")
    top = values.max()
    share = np.sqrt(values / top) if top > 0 else np.ones(n_nodes)
    return size * np.maximum(share, MIN_RADIUS)


def _add_patches(ax: Axes, patches: list, gid: str, **style: Any) -> PatchCollection:
    """The patches as one collection named ``gid`` (what the tests and users look up)."""
    collection = PatchCollection(patches, match_original=False, **style)
    collection.set_gid(gid)
    ax.add_collection(collection, autolim=False)
    return collection


def _draw_background(ax: Axes, model: FlowSOM, scene: _Scene, cmap: CmapLike | None) -> list[Patch]:
    """A circle in the metacluster's colour under every node; returns the legend's entries."""
    groups = np.asarray(model.node_metacluster_, dtype=np.int64)
    colors = metacluster_colors(int(groups.max()) + 1, cmap)
    radius = BACKGROUND_SCALE * scene.size
    circles = [Circle(tuple(p), radius) for p in scene.positions]
    faces = colors[groups].copy()
    faces[:, 3] = BACKGROUND_ALPHA
    _add_patches(ax, circles, "metacluster background", facecolors=faces, linewidths=0, zorder=0)
    return [Patch(facecolor=c, label=f"metacluster {i}") for i, c in enumerate(colors)]


def _draw_discs(ax: Axes, scene: _Scene, **style: Any) -> PatchCollection:
    """A circle of each node's radius, gid ``"nodes"`` (white with a grey rim unless
    ``style`` says)."""
    circles = [Circle(tuple(p), r) for p, r in zip(scene.positions, scene.radii, strict=True)]
    style = {"facecolors": EMPTY_FACE, "edgecolors": EMPTY_EDGE, "linewidths": 0.6, **style}
    return _add_patches(ax, circles, "nodes", zorder=2, **style)


def _draw_wedges(
    ax: Axes, scene: _Scene, radii: np.ndarray, shares: np.ndarray, colors: np.ndarray, gid: str
) -> None:
    """Wedge ``j`` of node ``k``: radius ``radii[k, j]``, angle ``shares[k, j]`` of the
    circle, clockwise from the top, in ``colors[j]``; node-major order."""
    ends = 90.0 - 360.0 * np.cumsum(shares, axis=1)
    starts = ends + 360.0 * shares
    wedges = [
        Wedge(tuple(scene.positions[k]), radii[k, j], ends[k, j], starts[k, j])
        for k in range(len(radii))
        for j in range(radii.shape[1])
    ]
    faces = np.tile(colors, (len(radii), 1))
    _add_patches(ax, wedges, gid, facecolors=faces, edgecolors="none", zorder=3)


def _legends(ax: Axes, right: list[Patch], right_title: str, below: list[Patch]) -> None:
    """``right`` beside the nodes; ``below`` (the metaclusters) under them, in even rows of
    at most 6."""
    legend = ax.legend(
        handles=right,
        title=right_title,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        ncol=int(np.ceil(len(right) / 20)),
    )
    if below:
        # add_artist clips to the axes: the legend outside them would be cut off.
        ax.add_artist(legend).set_clip_on(False)
        ax.legend(
            handles=below,
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            frameon=False,
            ncol=int(np.ceil(len(below) / np.ceil(len(below) / 6))),
        )


# --------------------------------------------------------------------------------------------
# The plots


def plot_stars(
    model: FlowSOM,
    layout: str = "mst",
    counts: ArrayLike | None = None,
    *,
    markers: Sequence[str] | None = None,
    size: float | None = None,
    background: bool = True,
    ax: Axes | None = None,
    marker_cmap: CmapLike | None = None,
    metacluster_cmap: CmapLike | None = None,
    title: str | None = "FlowSOM stars",
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
) -> tuple[Figure, Axes]:
    """FlowSOM's star plot: per node, one wedge per marker, its radius the node's code for the
    marker scaled from 0 (the lowest node) to 1 (the highest).

    Parameters
    ----------
    model : FlowSOM
        Fitted.
    layout : {"mst", "grid"}, default="mst"
        See :func:`node_layout`.
    counts : int array-like of shape (M,), default=None
        Cells per node: node areas follow them.  None: all nodes one size.
    markers : sequence of str, default=None
        The clustering markers to draw, in this order; None: all.
    size : float, default=None
        The largest node's radius, in layout units; None: 0.45 of the median distance from a
        node to its nearest.
    background : bool, default=True
        A circle in the node's metacluster colour (:func:`metacluster_colors`) under it.
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    marker_cmap, metacluster_cmap : str or Colormap, default=None
        The wedges' colours (:func:`~dasksom.plotting.categorical_colors`) and the
        backgrounds'.
    title : str, default="FlowSOM stars"
    show, print_out : bool, default=False
        Call ``plt.show()``; save the figure to ``file_name``.
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./flowsom_stars.png``.

    Returns
    -------
    fig, ax
        The wedges are the collection with gid ``"stars"``, the backgrounds
        ``"metacluster background"``; legends of the markers (right) and metaclusters (below).
    """
    names = list(model.clustering_markers_ if markers is None else markers)
    columns = [_marker_index(model, name) for name in names]
    codes = np.asarray(model.codes_, dtype=np.float64)[:, columns]
    low, span = codes.min(axis=0), np.ptp(codes, axis=0)
    scaled = (codes - low) / np.where(span > 0, span, 1.0)
    fig, ax, scene = _scene(model, layout, counts, size, ax)
    below = _draw_background(ax, model, scene, metacluster_cmap) if background else []
    _draw_discs(ax, scene)
    colors = categorical_colors(marker_cmap, len(names))
    shares = np.full(codes.shape, 1.0 / len(names))
    _draw_wedges(ax, scene, scaled * scene.radii[:, None], shares, colors, "stars")
    right = [Patch(facecolor=c, label=name) for c, name in zip(colors, names, strict=True)]
    _legends(ax, right, "markers", below)
    if title:
        ax.set_title(title)
    save_and_show(fig, show, print_out, file_name, "./flowsom_stars.png")
    return fig, ax


def plot_label_pies(
    model: FlowSOM,
    node: Any,
    labels: Any,
    layout: str = "mst",
    *,
    classes: Sequence[Any] | None = None,
    equal_size: bool = False,
    size: float | None = None,
    background: bool = False,
    ax: Axes | None = None,
    cmap: CmapLike | None = None,
    metacluster_cmap: CmapLike | None = None,
    title: str | None = "Manual labels per node",
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
) -> tuple[Figure, Axes]:
    """FlowSOM's pies: the share of each manual-gate label among each node's cells.

    Parameters
    ----------
    model : FlowSOM
        Fitted.
    node : int array-like or dask array of shape (n_cells,)
        Each cell's node (``model.map(cells).node``).
    labels : array-like or dask array of shape (n_cells,)
        Each cell's label (a gate's name, a population id).  With dask arrays the counts are
        one bincount per chunk, summed: the cells are never gathered.
    layout : {"mst", "grid"}, default="mst"
    classes : sequence, default=None
        The labels to show, in this order (cells with other labels count nowhere); None:
        every label there is, sorted.
    equal_size : bool, default=False
        All nodes one size; else their areas follow their cells.
    size : float, default=None
        The largest node's radius (see :func:`plot_stars`).
    background : bool, default=False
        Metacluster backgrounds, as :func:`plot_stars` draws them.
    ax : matplotlib Axes, default=None
    cmap, metacluster_cmap : str or Colormap, default=None
        The labels' colours and the backgrounds'.
    title : str, default="Manual labels per node"
    show, print_out : bool, default=False
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./flowsom_pies.png``.

    Returns
    -------
    fig, ax
        The wedges are the collection with gid ``"pies"`` (one per node and label, node-major,
        zero-width where a node has none of a label); nodes without cells are blank circles.
    """
    n_nodes = model.som_.lattice_.n_nodes
    values, table = label_counts(node, labels, n_nodes, classes)
    totals = table.sum(axis=1)
    fig, ax, scene = _scene(model, layout, None if equal_size else totals, size, ax)
    below = _draw_background(ax, model, scene, metacluster_cmap) if background else []
    _draw_discs(ax, scene)
    shares = table / np.maximum(totals, 1)[:, None]
    colors = categorical_colors(cmap, len(values))
    radii = np.repeat(scene.radii[:, None], len(values), axis=1)
    _draw_wedges(ax, scene, radii, shares, colors, "pies")
    right = [Patch(facecolor=c, label=str(v)) for c, v in zip(colors, values, strict=True)]
    _legends(ax, right, "labels", below)
    if title:
        ax.set_title(title)
    save_and_show(fig, show, print_out, file_name, "./flowsom_pies.png")
    return fig, ax


def label_counts(
    node: Any, labels: Any, n_nodes: int, classes: Sequence[Any] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """How many cells of each label every node holds, one bincount per chunk, summed.

    Parameters
    ----------
    node : int array-like or dask array of shape (n_cells,)
    labels : array-like or dask array of shape (n_cells,)
    n_nodes : int
    classes : sequence, default=None
        The labels to count, in this order; None: all there are, sorted (one extra pass).

    Returns
    -------
    classes : ndarray of shape (K,)
    counts : ndarray of int64, shape (n_nodes, K)
    """
    node = da.asarray(node)
    labels = da.asarray(labels)
    if node.shape != labels.shape or node.ndim != 1:
        raise ValueError(f"node and labels must be one per cell, got {node.shape}, {labels.shape}")
    labels = labels.rechunk(node.chunks)
    if classes is None:
        with compute_context():
            values = np.unique(np.asarray(da.unique(labels).compute()))
    else:
        values = np.asarray(classes)
    if values.size == 0:
        raise ValueError("no labels to count: the cells have none, or classes is empty")
    groups = da.map_blocks(_label_groups, node, labels, values, n_nodes, dtype=np.int64)
    counts = grouped_counts(groups, n_nodes * len(values))
    return values, counts.reshape(n_nodes, len(values))


def _label_groups(
    node: np.ndarray, labels: np.ndarray, classes: np.ndarray, n_nodes: int
) -> np.ndarray:
    """``node * K + label index`` for every cell, -1 where the label is not among ``classes``
    or the node is out of range."""
    order = np.argsort(classes, kind="stable")
    where = np.searchsorted(classes[order], labels)
    where = np.minimum(where, len(classes) - 1)
    found = (classes[order][where] == labels) & (node >= 0) & (node < n_nodes)
    return np.where(found, np.asarray(node) * len(classes) + order[where], -1)


def plot_marker_tree(
    model: FlowSOM,
    marker: str | int,
    layout: str = "mst",
    counts: ArrayLike | None = None,
    *,
    size: float | None = None,
    ax: Axes | None = None,
    cmap: CmapLike = "viridis",
    title: str | None = None,
    colorbar: bool = True,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
) -> tuple[Figure, Axes]:
    """The tree (or grid) with every node coloured by one marker's level, its code.

    Parameters
    ----------
    model : FlowSOM
        Fitted.
    marker : str or int
        A clustering marker, by name or position in ``model.clustering_markers_``.
    layout : {"mst", "grid"}, default="mst"
    counts : int array-like of shape (M,), default=None
        Cells per node: node areas follow them.
    size : float, default=None
        The largest node's radius (see :func:`plot_stars`).
    ax : matplotlib Axes, default=None
    cmap : str or Colormap, default="viridis"
    title : str, default=None
        None: the marker's name.
    colorbar : bool, default=True
        A colorbar of the marker's level (transformed units).
    show, print_out : bool, default=False
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./flowsom_marker.png``.

    Returns
    -------
    fig, ax
        The coloured nodes are the collection with gid ``"nodes"``.
    """
    column = _marker_index(model, marker)
    name = model.clustering_markers_[column]
    fig, ax, scene = _scene(model, layout, counts, size, ax, colorbar=colorbar)
    nodes = _draw_discs(ax, scene, cmap=colormap(cmap), edgecolors="#555555")
    nodes.set_array(np.asarray(model.codes_, dtype=np.float64)[:, column])
    if colorbar:
        add_colorbar(ax, nodes, f"{name} (transformed)")
    ax.set_title(name if title is None else title)
    save_and_show(fig, show, print_out, file_name, "./flowsom_marker.png")
    return fig, ax


def _marker_index(model: FlowSOM, marker: str | int) -> int:
    """The column of ``marker`` in the model's codes, by name or position."""
    names = list(model.clustering_markers_)
    if isinstance(marker, str):
        if marker not in names:
            raise ValueError(f"{marker!r} is not a clustering marker; the model has {names}")
        return names.index(marker)
    if not -len(names) <= int(marker) < len(names):
        raise ValueError(f"marker {marker} is out of range for {len(names)} markers")
    return int(marker) % len(names)
