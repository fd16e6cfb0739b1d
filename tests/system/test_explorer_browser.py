"""The explorer page in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright for Python pointed at that binary; nothing downloads a browser build) opens the
written file once, and each test checks one thing on that page."""

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

import dasksom
from dasksom.core.analysis import node_differences
from dasksom.estimator.summary import summarize
from dasksom.explorer import write_explorer

pytest.importorskip("bokeh", reason="the explorer needs bokeh: pip install 'dasksom[explore]'")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="the browser tests drive Chromium with playwright (pip)"
)

CHROMIUM = os.environ.get("DASKSOM_CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Where the screenshot is kept (a folder); by default the test's temporary folder.
SHOTS = os.environ.get("DASKSOM_SCREENSHOTS")

if shutil.which(CHROMIUM) is None:
    pytest.skip(
        f"no Chromium at {CHROMIUM}: apt-get install chromium (bash .ci/run does, as root), "
        "or set DASKSOM_CHROMIUM",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def explorer(tmp_path_factory):
    """The digits map's explorer, opened once: ``(page, summary, som, events)``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x, labels = digits.data[:600] / 16.0, digits.target[:600]
    som = dasksom.SOM(8, 8, pbc=True, epochs=4, random_state=0, chunks=150).fit(x)
    summary, values = summarize(som, x, labels, sample_size=5)
    folder = tmp_path_factory.mktemp("explorer")
    path = write_explorer(som, folder / "explorer.html", summary, values, feature_shape=(8, 8))
    events = {"requests": [], "errors": [], "load_seconds": None, "folder": folder}
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(folder / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1200, "height": 1000},
        )
        page = context.new_page()
        page.on("request", lambda request: events["requests"].append(request.url))
        page.on(
            "console",
            lambda message: message.type == "error" and events["errors"].append(message.text),
        )
        page.on("pageerror", lambda error: events["errors"].append(str(error)))
        start = time.perf_counter()
        page.goto(path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=15_000)
        events["load_seconds"] = time.perf_counter() - start
        events["url"] = path.as_uri()
        yield page, summary, som, events
        context.close()


def _point_at(page, node):
    x, y = page.evaluate(f"window.dasksomExplorer.nodeScreen({node})")
    page.mouse.move(x, y)
    return x, y


def _model(page, name, column):
    return page.evaluate(
        f"Array.from(Bokeh.documents[0].get_model_by_name('{name}').data['{column}'])"
    )


def test_hovering_a_node_shows_its_index_hits_qe_and_labels(explorer):
    page, summary, _, _ = explorer
    node = int(np.argmax(summary.hits))
    _point_at(page, node)
    tooltip = page.wait_for_selector(".dasksom-tooltip", timeout=5_000)
    text = tooltip.inner_text()
    assert f"node {node} " in text
    assert page.inner_text(".tip-hits") == str(summary.hits[node])
    assert float(page.inner_text(".tip-qe")) == pytest.approx(
        summary.quantization_error[node], rel=1e-3
    )
    counts = summary.label_counts[node]
    assert page.inner_text(".tip-labels").startswith(
        f"{counts.argmax()}: {counts.max() / counts.sum():.2f}"
    )


def test_hovering_a_node_draws_its_prototype_as_an_image(explorer):
    page, summary, som, _ = explorer
    node = int(np.argsort(-summary.hits)[2])
    _point_at(page, node)
    page.wait_for_function(f"document.body.dataset.hovered === '{node}'", timeout=5_000)
    assert page.evaluate("Bokeh.documents[0].get_model_by_name('hovered_title').text").startswith(
        f"prototype of node {node} "
    )
    drawn = np.array(_model(page, "hovered_profile", "y"))
    step = np.ptp(som.weights_, axis=0) / 255
    np.testing.assert_array_less(np.abs(drawn - som.weights_[node]), step / 2 + 1e-9)
    greys = _model(page, "hovered_picture", "color")
    # Dark is high: the node's largest pixel is black.
    assert len(greys) == 64 and greys[int(np.argmax(drawn))] == "rgb(0,0,0)"


def test_switching_to_the_u_matrix_colours_its_highest_node_brightest(explorer):
    page, _, som, _ = explorer
    page.select_option("select", "U-matrix")
    page.wait_for_function("document.body.dataset.layer === 'U-matrix'", timeout=5_000)
    colors = _model(page, "tiles", "color")
    highest = int(np.nanargmax(node_differences(som.weights_, som.lattice_)))
    assert colors[highest].lower() == "#fde724"


def test_searching_a_feature_shows_its_component_plane(explorer):
    page, _, som, _ = explorer
    box = page.get_by_role("textbox").first
    box.press_sequentially("pixel (3, 4)", delay=5)
    box.press("Enter")
    page.wait_for_function(
        "document.body.dataset.layer === 'component: pixel (3, 4)'", timeout=5_000
    )
    colors = _model(page, "tiles", "color")
    assert colors[int(np.argmax(som.weights_[:, 3 * 8 + 4]))].lower() == "#fde724"


def test_clicking_pins_nodes_and_exports_them_with_their_sampled_rows(explorer):
    page, summary, _, _ = explorer
    first, second = (int(k) for k in np.argsort(-summary.hits)[:2])
    page.mouse.click(*_point_at(page, first))
    page.wait_for_function("document.body.dataset.profiles === '1'", timeout=5_000)
    page.wait_for_timeout(500)  # apart from the first click: not a double tap
    page.keyboard.down("Shift")
    page.mouse.click(*_point_at(page, second))
    page.keyboard.up("Shift")
    page.wait_for_function("document.body.dataset.profiles === '2'", timeout=5_000)
    pinned = page.eval_on_selector_all(".pinned", "cards => cards.map(c => c.dataset.node)")
    assert pinned == [str(k) for k in sorted((first, second))]
    exported = json.loads(page.get_by_role("textbox").nth(1).input_value())
    assert exported["nodes"] == sorted((first, second))
    expected = [int(i) for k in sorted((first, second)) for i in summary.samples(k)]
    assert exported["sampled_rows"] == expected
    assert len(_model(page, "profiles", "ys")[0]) == 64
    assert len(_model(page, "pictures", "color")) == 2 * 64


def test_the_screenshot_is_kept(explorer):
    page, _, _, events = explorer
    folder = Path(SHOTS) if SHOTS else events["folder"]
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "explorer-test.png"
    page.screenshot(path=str(shot))
    print(f"screenshot: {shot}")
    assert shot.stat().st_size > 20_000


def test_nothing_leaves_the_page_and_the_console_has_no_errors(explorer):
    _, _, _, events = explorer
    assert set(events["requests"]) == {events["url"]}
    assert events["errors"] == []
    assert events["load_seconds"] < 10
