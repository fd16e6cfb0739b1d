"""The explorer of a FlowSOM model (dasksom.explorer.cytometry): its page carries the
metacluster layer, the marker names of the component planes and the manual labels."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import re

import numpy as np
import pytest

pytest.importorskip("bokeh", reason="the explorer needs bokeh: pip install 'dasksom[explore]'")

import dask.array as da  # noqa: E402

from dasksom.cytometry import FlowSOM, read_array  # noqa: E402
from dasksom.explorer.cytometry import explore_flowsom, marker_labels  # noqa: E402

CENTERS = np.array([[0, 0, 0], [5, 0, 0], [0, 5, 5]], dtype=float)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    population = rng.integers(0, len(CENTERS), 1500)
    values = CENTERS[population] + rng.normal(scale=0.5, size=(1500, 3))
    cells = read_array(da.from_array(values, chunks=500), ["FL1-A", "FL2-A", "FL3-A"])
    cells = dataclasses.replace(cells, descriptions=("CD3", "FL2-A", "CD8"))
    model = FlowSOM(4, 4, n_clusters=3, seed=0).fit(cells)
    return model, cells, np.array(["T", "B", "NK"])[population]


def page_document(path):
    """The Bokeh document a written page carries, as JSON."""
    found = re.findall(
        r'<script type="application/json"[^>]*>(.*?)</script>', path.read_text(), re.S
    )
    assert len(found) == 1
    return next(iter(json.loads(found[0]).values()))


def entries(node):
    """Every ``[key, value]`` entry of the document's maps, anywhere in it."""
    if isinstance(node, dict):
        if node.get("type") == "map":
            yield from (tuple(entry) for entry in node.get("entries", []))
        for value in node.values():
            yield from entries(value)
    elif isinstance(node, list):
        for value in node:
            yield from entries(value)


def column(document, name):
    """One column of the tiles' data source, decoded."""
    (value,) = [v for k, v in entries(document) if k == name]
    raw = base64.b64decode(value["array"]["data"])
    raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    return np.frombuffer(raw, dtype=value["dtype"]).reshape(value["shape"])


def widget(document, name):
    (found,) = [
        node["attributes"]
        for node in _objects(document)
        if node.get("attributes", {}).get("name") == name
    ]
    return found


def _objects(node):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_the_page_has_a_metacluster_layer_of_the_nodes_metaclusters(fitted, tmp_path):
    model, cells, _ = fitted
    page = explore_flowsom(model, cells, path=tmp_path / "flowsom.html")
    document = page_document(page)
    np.testing.assert_array_equal(column(document, "layer metacluster"), model.node_metacluster_)
    layer = widget(document, "layer")
    assert layer["options"][0] == "metacluster" and layer["value"] == "metacluster"
    assert "cluster" not in layer["options"]
    categorical = [v for k, v in entries(document) if k == "categorical"]
    assert categorical and all(v == ["metacluster"] for v in categorical)


def test_the_component_planes_are_named_by_the_markers(fitted, tmp_path):
    model, cells, _ = fitted
    names = marker_labels(cells)
    assert names == ["CD3 (FL1-A)", "FL2-A", "CD8 (FL3-A)"]
    document = page_document(explore_flowsom(model, cells, path=tmp_path / "flowsom.html"))
    assert widget(document, "search")["completions"] == names


def test_manual_labels_give_the_label_mix_and_the_page_opens_on_them(fitted, tmp_path):
    model, cells, labels = fitted
    page = explore_flowsom(model, cells, labels, tmp_path / "flowsom.html")
    document = page_document(page)
    assert widget(document, "layer")["value"] == "majority label"
    nodes = model.map(cells).node.compute()
    hits = column(document, "layer hits")
    np.testing.assert_array_equal(hits, np.bincount(nodes, minlength=16))
    busiest = int(np.argmax(hits))
    top = max(set(labels[nodes == busiest]), key=list(labels[nodes == busiest]).count)
    (mixes,) = [v for k, v in entries(document) if k == "label_mix"]
    assert mixes[busiest].startswith(f"{top}: ")


def test_an_unfitted_model_is_refused(fitted, tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        explore_flowsom(FlowSOM(), fitted[1], path=tmp_path / "x.html")
