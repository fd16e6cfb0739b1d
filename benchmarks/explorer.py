"""The explorer page at scale: file size, load time and responsiveness in headless Chromium.

Maps of 50x50 and 200x200 hexagonal nodes with 784 features (MNIST's pixels).  The weights are
a 10x10 map trained on 5,000 MNIST images for 4 epochs, interpolated bilinearly over the larger
grid (smooth, as a trained map is; they compress as a trained map's do); the node summary is
synthetic: each node takes the label mix of the nearest node of the small map (its real
summary over the 5,000 images), Poisson hits and 8 random sampled row ids.  Load time is from
navigation to the first frame painted after Bokeh has drawn the map; a hover is until the
tooltip and the hovered prototype are shown; a switch is until the new colours are painted.
Chromium: Debian's ``/usr/bin/chromium`` driven by Playwright (``DASKSOM_CHROMIUM`` to change).
Target: the 200x200 map opens in under 3 s.

    python benchmarks/explorer.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import MIB, Table, finish, load_mnist, parser, start_state

CHROMIUM = os.environ.get("DASKSOM_CHROMIUM", "/usr/bin/chromium")
SMALL = 10
# Waits for the next painted frame.
PAINTED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def coarse_map(n_rows: int):
    """A small map trained on MNIST and its real node summary."""
    import dasksom
    from dasksom.estimator.summary import summarize

    x, labels = load_mnist(n_rows)
    som = dasksom.SOM(SMALL, SMALL, epochs=4, init="pca", random_state=0).fit(x)
    summary, values = summarize(som, x, labels)
    return som, summary, values


def scaled_map(coarse, summary, size: int, seed: int):
    """A ``size`` x ``size`` map interpolated from ``coarse`` and its synthetic summary."""
    import dasksom
    from dasksom.core.node_summary import EMPTY_KEY, NodeSummary

    grid = coarse.weights_.reshape(SMALL, SMALL, -1)
    position = np.linspace(0, SMALL - 1, size)
    low = np.minimum(position.astype(int), SMALL - 2)
    t = (position - low)[:, None]
    rows = grid[low] * (1 - t[:, :, None]) + grid[low + 1] * t[:, :, None]
    weights = rows[:, low] * (1 - t[None, :, :]) + rows[:, low + 1] * t[None, :, :]
    lattice = dasksom.Lattice(size, size, "hexagonal")
    som = dasksom.SOM.from_weights(weights.reshape(size * size, -1), lattice)
    som.history_ = coarse.history_
    rng = np.random.default_rng(seed)
    nearest = (np.rint(position).astype(int)[:, None] * SMALL + np.rint(position)).astype(int)
    mix = summary.label_counts[nearest.ravel()] + 1
    hits = rng.poisson(30, size * size)
    counts = np.array([rng.multinomial(h, p / p.sum()) for h, p in zip(hits, mix, strict=True)])
    ids = rng.integers(0, 60_000, (size * size, 8))
    features = len(summary.feature_sum)
    fake = NodeSummary(
        hits=hits,
        distance_sum=hits * rng.uniform(4, 7, size * size),
        label_counts=counts,
        sample_keys=np.where(ids >= 0, np.uint64(0), EMPTY_KEY),
        sample_ids=ids,
        feature_sum=summary.feature_sum * size * size / SMALL**2,
        feature_square_sum=summary.feature_square_sum * size * size / SMALL**2,
        feature_count=np.full(features, summary.feature_count.max() * size * size // SMALL**2),
    )
    return som, fake


def measure(browser, path: Path, n_nodes: int) -> dict:
    """Load, hover, switch and pin times of the page at ``path``, in seconds."""
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    errors: list[str] = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    start = time.perf_counter()
    page.goto(path.as_uri())
    page.wait_for_selector("body[data-ready='1']", timeout=60_000)
    page.evaluate(PAINTED)
    result = {"load": time.perf_counter() - start}

    def timed(action, done: str) -> float:
        began = time.perf_counter()
        action()
        page.wait_for_function(done, timeout=60_000)
        page.evaluate(PAINTED)
        return time.perf_counter() - began

    def hover(node: int) -> float:
        x, y = page.evaluate(f"window.dasksomExplorer.nodeScreen({node})")
        began = time.perf_counter()
        page.mouse.move(x, y)
        # Bokeh draws the tooltip in a shadow root, which Playwright's selectors see into.
        page.wait_for_selector(f".dasksom-tooltip:has-text('node {node} ')", timeout=60_000)
        page.wait_for_function(f"document.body.dataset.hovered === '{node}'", timeout=60_000)
        page.evaluate(PAINTED)
        return time.perf_counter() - began

    nodes = np.linspace(n_nodes // 7, n_nodes - n_nodes // 7, 6).astype(int)
    result["first hover"] = hover(int(nodes[0]))
    result["hover"] = statistics.median(hover(int(k)) for k in nodes[1:])
    result["layer switch"] = timed(
        lambda: page.select_option("select", "U-matrix"),
        "document.body.dataset.layer === 'U-matrix'",
    )
    result["component plane"] = timed(
        lambda: page.evaluate(
            "Bokeh.documents[0].get_model_by_name('search').value = 'pixel (14, 14)'"
        ),
        "document.body.dataset.layer === 'component: pixel (14, 14)'",
    )
    x, y = page.evaluate(f"window.dasksomExplorer.nodeScreen({int(nodes[2])})")
    result["pin"] = timed(lambda: page.mouse.click(x, y), "document.body.dataset.profiles === '1'")
    result["errors"] = errors
    page.close()
    return result


def main() -> None:
    from playwright.sync_api import sync_playwright

    from dasksom.explorer import write_explorer

    options = parser(__doc__).parse_args()
    start = start_state()
    sizes = (10, 30) if options.quick else (50, 200)
    coarse, summary, values = coarse_map(1_000 if options.quick else 5_000)
    table = Table(
        "The explorer of hexagonal maps with 784 features in headless Chromium "
        "(seconds; hover and switches: until painted)",
        ["map", "nodes", "file MiB", "write s", "load s", "first hover s", "hover s"]
        + ["layer switch s", "component plane s", "pin s"],
    )
    errors = {}
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        for seed, size in enumerate(sizes):
            som, fake = scaled_map(coarse, summary, size, seed)
            path = Path(folder) / f"explorer-{size}.html"
            began = time.perf_counter()
            write_explorer(som, path, fake, values, feature_shape=(28, 28))
            written = time.perf_counter() - began
            times = measure(browser, path, size * size)
            errors[f"{size}x{size}"] = times.pop("errors")
            table.add(
                f"{size}x{size}",
                size * size,
                round(path.stat().st_size / MIB, 1),
                round(written, 1),
                *(round(value, 2) for value in times.values()),
            )
        browser.close()
    table.notes.append(
        "first hover inflates the 8-bit weights in the page (once); a component plane reads "
        "them, the other layers are per-node columns"
    )
    table.details["console_errors"] = errors
    table.details["chromium"] = CHROMIUM
    finish("explorer", table, options.quick, start)


if __name__ == "__main__":
    main()
