"""The explorer's content (layers, hover text, 8-bit weights) and the written page, without a
browser (tests/system/test_explorer_browser.py opens it in one)."""

from html.parser import HTMLParser

import numpy as np
import pytest

pytest.importorskip("bokeh", reason="the explorer needs bokeh: pip install 'dasksom[explore]'")

import dasksom
from dasksom.core.lattice import Lattice
from dasksom.estimator.summary import summarize
from dasksom.explorer import explore, write_explorer
from dasksom.explorer.content import build_content, quantize
from dasksom.explorer.page import _ghosts, _place, delta_planes


def _fetched(text):
    """The ``src`` and ``href`` attributes of the page's tags (script bodies are not tags)."""
    found = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend(value for name, value in attrs if name in ("src", "href"))

    Tags().feed(text)
    return found


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, (150, 4)), rng.normal(6, 1, (150, 4))])
    labels = np.repeat(["a", "b"], 150)
    som = dasksom.SOM(4, 4, pbc=True, epochs=3, random_state=0).fit(x)
    return som, x, labels


def test_quantized_weights_are_within_half_a_step_of_the_weights():
    values = np.random.default_rng(0).normal(size=(50, 7))
    codes, low, high = quantize(values)
    restored = low + codes / 255 * (high - low)
    assert codes.dtype == np.uint8
    assert np.all(np.abs(restored - values) <= (high - low) / 510 + 1e-12)


def test_layers_from_the_summary_match_its_counts(fitted):
    som, x, labels = fitted
    summary, values = summarize(som, x, labels)
    content = build_content(som, summary, values)
    np.testing.assert_array_equal(content.layers["hits"], summary.hits)
    counts = summary.label_counts
    won = counts.sum(axis=1) > 0
    np.testing.assert_array_equal(content.layers["majority label"][won], counts[won].argmax(1))
    np.testing.assert_allclose(
        content.layers["purity"][won], counts[won].max(1) / counts[won].sum(1)
    )
    assert np.isnan(content.layers["majority label"][~won]).all()
    assert content.categories["majority label"] == ["a", "b"]


def test_the_hover_text_names_the_top_labels_with_fractions(fitted):
    som, x, labels = fitted
    summary, values = summarize(som, x, labels)
    content = build_content(som, summary, values)
    node = int(np.argmax(summary.hits))
    share = summary.label_counts[node].max() / summary.hits[node]
    top = values[summary.label_counts[node].argmax()]
    assert content.nodes["labels"][node].startswith(f"{top}: {share:.2f}")
    assert content.nodes["hits"][node] == str(summary.hits[node])
    assert content.nodes["samples"][node].split() == [str(i) for i in summary.samples(node)]


def test_a_node_s_distinctive_features_are_those_farthest_from_the_maps_mean(fitted):
    som = fitted[0]
    content = build_content(som, feature_names=["w", "x", "y", "z"])
    spread = som.weights_.std(0)
    z = (som.weights_ - som.weights_.mean(0)) / np.maximum(spread, spread.mean())
    first = content.nodes["features"][0].split(" (")[0]
    assert first == "wxyz"[int(np.argmax(np.abs(z[0])))]


def test_a_feature_that_hardly_varies_is_not_called_distinctive():
    rng = np.random.default_rng(0)
    x = np.c_[rng.normal(size=(200, 3)), 1e-6 * rng.normal(size=200)]
    som = dasksom.SOM(3, 3, epochs=2, random_state=0).fit(x)
    content = build_content(som, feature_names=["a", "b", "c", "flat"])
    assert not any(text.startswith("flat") for text in content.nodes["features"])


def test_without_data_only_the_maps_own_layers_are_shown(fitted):
    content = build_content(fitted[0])
    assert list(content.layers) == ["U-matrix"]


def test_clusters_become_a_categorical_layer(fitted):
    som = fitted[0]
    content = build_content(som, clusters=np.arange(16) % 3)
    assert "cluster" in content.categorical
    np.testing.assert_array_equal(content.layers["cluster"], np.arange(16) % 3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"clusters": np.zeros(5)}, "one per node"),
        ({"feature_shape": (3, 3)}, "feature_shape"),
        ({"feature_names": ["a"]}, "feature_names"),
    ],
)
def test_options_that_do_not_fit_the_map_are_refused(fitted, options, message):
    with pytest.raises(ValueError, match=message):
        build_content(fitted[0], **options)


def test_weights_travel_as_planes_of_node_differences_that_add_up_to_the_codes():
    codes = np.random.default_rng(0).integers(0, 256, (30, 5), dtype=np.uint8)
    deltas = delta_planes(codes)
    assert deltas.shape == (5, 30) and deltas.dtype == np.uint8
    # What the page does: a running sum along each plane, modulo 256.
    np.testing.assert_array_equal(np.cumsum(deltas, axis=1, dtype=np.uint8), codes.T)


def test_hexagonal_tiles_sit_at_the_lattice_positions():
    from bokeh.util.hex import axial_to_cartesian

    lattice = Lattice(5, 6, "hexagonal")
    place = _place(lattice, lattice.rows, lattice.cols)
    x, y = axial_to_cartesian(place["q"], place["r"], 1 / np.sqrt(3), "pointytop")
    np.testing.assert_allclose(np.c_[x, y], lattice.positions, atol=1e-12)
    np.testing.assert_allclose(np.c_[place["x"], place["y"]], lattice.positions, atol=1e-12)


def test_a_periodic_map_shows_the_wrapped_copies_of_its_edge_nodes():
    lattice = Lattice(4, 6, "hexagonal", pbc=True)
    ghosts = _ghosts(lattice)
    # Every node of the top row is copied below the bottom row, and of the left column to the
    # right of the right one.
    below = ghosts["node"][ghosts["row"] == -1]
    right = ghosts["node"][ghosts["col"] == 6]
    assert set(below) == set(range(18, 24))
    assert set(right) == {0, 6, 12, 18}
    assert len(ghosts["node"]) == 2 * 6 + 2 * 4 + 4


def test_the_page_is_one_file_that_loads_nothing_from_elsewhere(fitted, tmp_path):
    som, x, labels = fitted
    page = explore(som, x, labels, tmp_path / "explorer.html")
    text = page.read_text()
    assert "Bokeh" in text
    # Every script and style is inline: no tag of the page fetches anything (the browser test
    # also watches the requests the page makes).
    assert _fetched(text) == []


def test_the_page_without_data_is_written_too(fitted, tmp_path):
    page = write_explorer(fitted[0], tmp_path / "map.html")
    assert page.stat().st_size > 0


def test_labels_without_rows_are_refused(fitted, tmp_path):
    with pytest.raises(ValueError, match="labels need the rows"):
        explore(fitted[0], None, fitted[2], tmp_path / "x.html")


def test_somnet_explore_writes_the_page_into_its_output_path(tmp_path):
    from dasksom.simpsom import SOMNet

    x = np.random.default_rng(0).random((120, 4))
    net = SOMNet(4, 4, x, random_seed=0, output_path=str(tmp_path))
    net.train(train_algo="batch", epochs=2)
    page = net.explore(labels=np.arange(120) % 2)
    assert page == tmp_path / "explorer.html" and "majority label" in page.read_text()
