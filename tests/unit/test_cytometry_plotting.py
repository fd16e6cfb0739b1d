"""FlowSOM's pictures (dasksom.plotting.cytometry): stars, label pies and marker trees on the
spanning tree or the grid, checked against the model's numbers."""

from __future__ import annotations

import dask.array as da
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from dasksom.cytometry import FlowSOM, read_array
from dasksom.plotting import (
    label_counts,
    metacluster_colors,
    node_layout,
    plot_label_pies,
    plot_marker_tree,
    plot_stars,
    tree_layout,
)

matplotlib.use("Agg")

CENTERS = np.array(
    [[0, 0, 0, 0, 0], [5, 0, 0, 4, 0], [0, 5, 0, 0, 2], [0, 0, 5, 0, 5]], dtype=float
)
MARKERS = ["CD3", "CD4", "CD8", "CD19", "CD56"]
NAMES = np.array(["double negative", "T", "B", "NK"])


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    population = rng.integers(0, len(CENTERS), 3000)
    values = CENTERS[population] + rng.normal(scale=0.5, size=(3000, len(MARKERS)))
    cells = read_array(da.from_array(values, chunks=700), MARKERS)
    model = FlowSOM(6, 6, n_clusters=4, seed=1).fit(cells)
    node = model.map(cells).node
    return model, node, NAMES[population]


def collection(ax, gid):
    found = [c for c in ax.collections if c.get_gid() == gid]
    assert len(found) == 1, f"one collection {gid!r}, got {len(found)}"
    return found[0]


def outline(path):
    """Points along a patch's outline, on its Bezier curves (not at their control points)."""
    t = np.linspace(0.0, 1.0, 33)
    return np.concatenate([segment(t) for segment, _ in path.iter_bezier()])


def radius(path, centre):
    return np.linalg.norm(outline(path) - centre, axis=1).max()


def area(path):
    x, y = outline(path).T
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def test_a_star_per_node_has_a_wedge_per_marker_as_long_as_its_scaled_code(fitted):
    model = fitted[0]
    fig, ax = plot_stars(model, "grid")
    positions, _ = node_layout(model, "grid")
    paths = collection(ax, "stars").get_paths()
    n_nodes, n_markers = model.codes_.shape
    assert len(paths) == n_nodes * n_markers
    size = radius(collection(ax, "nodes").get_paths()[0], positions[0])
    scaled = (model.codes_ - model.codes_.min(0)) / np.ptp(model.codes_, axis=0)
    got = np.array([radius(p, positions[i // n_markers]) for i, p in enumerate(paths)]).reshape(
        n_nodes, n_markers
    )
    np.testing.assert_allclose(got, scaled * size, rtol=1e-3, atol=1e-9)
    legend_names = [t.get_text() for t in ax.get_legend().get_texts()]
    assert [t.get_text() for t in ax.artists[0].get_texts()] == MARKERS
    assert legend_names == [f"metacluster {i}" for i in range(4)]


def test_the_star_backgrounds_are_the_metacluster_colours(fitted):
    model = fitted[0]
    _, ax = plot_stars(model)
    faces = collection(ax, "metacluster background").get_facecolors()
    expected = metacluster_colors(4)[model.node_metacluster_]
    np.testing.assert_allclose(faces[:, :3], expected[:, :3])
    assert len(set(map(tuple, faces[:, :3]))) == 4


def test_node_areas_follow_the_cell_counts(fitted):
    model, node, _ = fitted
    counts = np.bincount(node.compute(), minlength=36)
    positions, _ = node_layout(model)
    _, ax = plot_stars(model, "mst", counts, background=False)
    radii = [
        radius(p, c) for p, c in zip(collection(ax, "nodes").get_paths(), positions, strict=True)
    ]
    expected = np.maximum(np.sqrt(counts / counts.max()), 0.3)
    np.testing.assert_allclose(np.array(radii) / max(radii), expected, rtol=1e-3)


def test_label_counts_per_chunk_equal_the_in_memory_counts(fitted):
    _, node, labels = fitted
    nodes = node.compute()
    classes, counts = label_counts(node, da.from_array(labels, chunks=450), 36)
    assert list(classes) == sorted(NAMES)
    expected = np.zeros((36, len(classes)), dtype=np.int64)
    np.add.at(expected, (nodes, np.searchsorted(classes, labels)), 1)
    np.testing.assert_array_equal(counts, expected)
    _, only = label_counts(nodes, labels, 36, classes=["T", "B"])
    np.testing.assert_array_equal(only, expected[:, [list(classes).index(c) for c in "TB"]])


def test_pie_wedges_are_the_label_shares_of_each_node(fitted):
    model, node, labels = fitted
    _, counts = label_counts(node, labels, 36)
    _, ax = plot_label_pies(model, node, da.from_array(labels, chunks=1000), equal_size=True)
    paths = collection(ax, "pies").get_paths()
    assert len(paths) == counts.size
    size = radius(collection(ax, "nodes").get_paths()[0], node_layout(model)[0][0])
    shares = np.array([area(p) for p in paths]).reshape(counts.shape) / (np.pi * size**2)
    expected = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    np.testing.assert_allclose(shares, expected, atol=2e-3)


def test_the_tree_layout_puts_connected_nodes_closer_than_the_average_pair(fitted):
    model = fitted[0]
    positions, edges = node_layout(model, "mst")
    np.testing.assert_array_equal(edges, model.mst_)
    distance = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    assert distance[edges[:, 0], edges[:, 1]].mean() < 0.5 * distance[np.triu_indices(36, 1)].mean()
    _, ax = plot_marker_tree(model, "CD4")
    segments = collection(ax, "edges").get_segments()
    np.testing.assert_allclose(np.array(segments), positions[edges])


def test_kamada_kawai_lays_a_chain_out_straight_at_its_path_lengths():
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]])
    start = np.random.default_rng(2).normal(size=(6, 2))
    positions = tree_layout(edges, start, iterations=2000, tol=1e-12)
    hops = np.abs(np.arange(6)[:, None] - np.arange(6)[None])
    got = np.linalg.norm(positions[:, None] - positions[None], axis=-1)
    np.testing.assert_allclose(got, hops, atol=0.01)
    # Turned to lie along x, node 0 on the left.
    assert np.ptp(positions[:, 0]) > 10 * np.ptp(positions[:, 1])
    assert positions[0, 0] < positions[5, 0]


def test_the_grid_layout_is_the_lattice_of_either_topology():
    values = np.random.default_rng(3).normal(size=(400, 3))
    cells = read_array(da.from_array(values, chunks=200), ["a", "b", "c"])
    model = FlowSOM(4, 3, n_clusters=2, som_params={"topology": "hexagonal"}).fit(cells)
    positions, edges = node_layout(model, "grid")
    np.testing.assert_array_equal(positions, model.som_.lattice_.positions)
    assert edges.shape == (0, 2)
    _, ax = plot_stars(model, "grid")
    assert not [c for c in ax.collections if c.get_gid() == "edges"]


def test_the_marker_tree_colours_nodes_by_the_markers_code(fitted, tmp_path):
    model = fitted[0]
    fig, ax = plot_marker_tree(model, "CD8", print_out=True, file_name=tmp_path / "cd8.png")
    np.testing.assert_array_equal(collection(ax, "nodes").get_array(), model.codes_[:, 2])
    assert ax.get_title() == "CD8" and len(fig.axes) == 2
    assert (tmp_path / "cd8.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: plot_marker_tree(m, "CD99"), "not a clustering marker"),
        (lambda m: plot_stars(m, "circle"), "layout must be one of"),
        (lambda m: plot_stars(m, counts=np.ones(3)), "one non-negative count per node"),
        (lambda m: plot_label_pies(m, np.zeros(3, int), np.zeros(4)), "one per cell"),
        (lambda m: node_layout(FlowSOM()), "not fitted"),
    ],
)
def test_wrong_input_is_refused(fitted, call, message):
    with pytest.raises(ValueError, match=message):
        call(fitted[0])
