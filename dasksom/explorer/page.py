"""The explorer page: a Bokeh document with inline resources, written as one HTML file that
opens from disk with no network and no server.

The map is drawn at its real geometry (hexagonal tiles in offset rows, or squares); on a
periodic map a faded ring of wrapped tiles around the edges shows which nodes meet across the
seams.  The small per-node layers travel as columns of the tiles' data source; the weights
travel once, as 8-bit codes plane by plane, each plane as differences between successive nodes
(:func:`delta_planes`) compressed with zlib, and are inflated in the browser
(``DecompressionStream``) the first time a component plane or a prototype is shown.  Hovering a
node draws its prototype (as an image with ``feature_shape``, and as a profile); clicking pins
it.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from bokeh.document import Document
from bokeh.embed import file_html
from bokeh.layouts import column, row
from bokeh.models import (
    ColumnDataSource,
    CustomJS,
    HoverTool,
    LinearColorMapper,
    Range1d,
    TapTool,
)
from bokeh.models.annotations import ColorBar
from bokeh.models.widgets import AutocompleteInput, Button, Div, Select, TextAreaInput
from bokeh.palettes import Category20, Viridis256
from bokeh.plotting import figure
from bokeh.resources import INLINE

from dasksom.explorer.content import ExplorerContent
from dasksom.io.atomic import write_text

__all__ = ["delta_planes", "render_page"]

# Nodes whose prototypes are drawn at once (a selection may hold more; all are exported).
MAX_PINNED = 8
# Pinned prototypes drawn as images per line of the pinned pictures.
PICTURES_PER_ROW = 4
PIN_COLORS = list(Category20[20][::2][:MAX_PINNED])
CATEGORY_COLORS = list(Category20[20])
EMPTY_COLOR = "#dddddd"

_TOOLTIP = """
<div class="dasksom-tooltip" style="max-width:360px;font-size:12px">
<b>node @node</b> (row @row, column @col)<br>
hits: <span class="tip-hits">@hits</span><br>
QE: <span class="tip-qe">@qe</span><br>
labels: <span class="tip-labels">@labels</span><br>
distinctive: @features
</div>
"""

# Shared by every callback: state kept on window.dasksomExplorer, the weights inflated once.
_PRELUDE = """
const S = window.dasksomExplorer = window.dasksomExplorer || {};
S.meta = meta;
S.weights = S.weights || (async () => {
  const text = atob(blob.data.b64[0]);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  const inflate = new DecompressionStream("deflate");
  const stream = new Blob([bytes]).stream().pipeThrough(inflate);
  const W = new Uint8Array(await new Response(stream).arrayBuffer());
  const M = meta.n_nodes;
  for (let start = 0; start < W.length; start += M)
    for (let i = start + 1; i < start + M; i++) W[i] = W[i] + W[i - 1];
  return W;
})();
function plane(W, d) {
  const M = meta.n_nodes, out = new Float64Array(M);
  const low = meta.low[d], step = (meta.high[d] - low) / 255;
  for (let k = 0; k < M; k++) out[k] = low + W[d * M + k] * step;
  return out;
}
function prototype(W, k) {
  const D = meta.n_features, M = meta.n_nodes, out = new Array(D);
  for (let d = 0; d < D; d++)
    out[d] = meta.low[d] + W[d * M + k] / 255 * (meta.high[d] - meta.low[d]);
  return out;
}
function greys(p, shape, left, bottom) {
  let lo = Math.min(...p), hi = Math.max(...p);
  if (!(hi > lo)) hi = lo + 1;
  const x = [], y = [], color = [];
  p.forEach((v, d) => {
    const level = Math.round(255 * (1 - (v - lo) / (hi - lo)));
    x.push(left + d % shape[1] + 0.5);
    y.push(bottom + shape[0] - Math.floor(d / shape[1]) - 0.5);
    color.push(`rgb(${level},${level},${level})`);
  });
  return {x: x, y: y, color: color};
}
"""

_SHOW_LAYER = (
    _PRELUDE
    + """
(async () => {
  if (cb_obj === search && layer.value !== "component") { layer.value = "component"; return; }
  let name = layer.value, values, label = name;
  if (name === "component") {
    const d = meta.feature_names.indexOf(search.value);
    if (d < 0) return;
    values = plane(await S.weights, d);
    label = "component: " + search.value;
  } else {
    values = tiles.data["layer " + name];
  }
  const categorical = meta.categorical.includes(name);
  let lo = Infinity, hi = -Infinity;
  for (const v of values) if (!Number.isNaN(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  if (!(hi > lo)) { hi = lo + 1; }
  const colors = new Array(values.length);
  for (let k = 0; k < values.length; k++) {
    const v = values[k];
    if (Number.isNaN(v)) colors[k] = empty;
    else if (categorical) colors[k] = category[v % category.length];
    else {
      const step = Math.floor((v - lo) / (hi - lo) * palette.length);
      colors[k] = palette[Math.min(palette.length - 1, step)];
    }
  }
  tiles.data.color = colors;
  tiles.change.emit();
  ghosts.data.color = Array.from(ghosts.data.node, (k) => colors[Number(k)]);
  ghosts.change.emit();
  mapper.low = lo; mapper.high = hi;
  bar.visible = !categorical;
  let legend = "";
  if (categorical) legend = meta.categories[name].map((c, i) =>
    `<span style="background:${category[i % category.length]}">&nbsp;&nbsp;&nbsp;</span> ${c}`
  ).join(" &nbsp;");
  caption.text = `<b>${label}</b> ` + (categorical ? legend :
    `from ${lo.toPrecision(4)} to ${hi.toPrecision(4)}`);
  document.body.dataset.layer = label;
})();
"""
)

_PIN = (
    _PRELUDE
    + """
const selected = tiles.selected.indices.slice().sort((a, b) => a - b);
const rows = [];
for (const k of selected)
  for (const id of tiles.data.samples[k].split(" "))
    if (/^[0-9]+$/.test(id)) rows.push(Number(id));
exported.value = JSON.stringify({nodes: selected, sampled_rows: rows});
const pinned = selected.slice(0, meta.max_pinned);
let text = selected.length > pinned.length ?
  `<p>${selected.length} nodes selected; the first ${pinned.length} are drawn.</p>` : "";
pinned.forEach((k, i) => {
  const style = `border-left:6px solid ${pin_colors[i]};padding-left:6px;margin:4px 0`;
  text += `<div class="pinned" data-node="${k}" style="${style}">` +
    `<b>node ${k}</b> (row ${tiles.data.row[k]}, column ${tiles.data.col[k]}): ` +
    `${tiles.data.hits[k]} hits, QE ${tiles.data.qe[k]}<br>` +
    `labels: ${tiles.data.label_mix[k]}<br>sampled rows: ${tiles.data.samples[k]}</div>`;
});
details.text = text || "<p>Click a node to pin it (shift-click adds more).</p>";
document.body.dataset.pinned = pinned.join(",");
(async () => {
  const W = await S.weights;
  const xs = [], ys = [], colors = [], px = [], py = [], grey = [];
  const shape = meta.feature_shape;
  pinned.forEach((k, i) => {
    const p = prototype(W, k);
    xs.push(p.map((_, d) => d)); ys.push(p); colors.push(pin_colors[i]);
    if (shape) {
      const slot = i % meta.pictures_per_row, line = Math.floor(i / meta.pictures_per_row);
      const lines = Math.ceil(meta.max_pinned / meta.pictures_per_row);
      const image = greys(p, shape, slot * (shape[1] + 1), (lines - 1 - line) * (shape[0] + 1));
      px.push(...image.x); py.push(...image.y); grey.push(...image.color);
    }
  });
  profiles.data = {xs: xs, ys: ys, color: colors};
  if (shape) pictures.data = {x: px, y: py, color: grey};
  document.body.dataset.profiles = String(xs.length);
})();
"""
)

_HOVER = (
    _PRELUDE
    + """
const found = cb_data.index.indices;
if (found.length === 0 || S.hovered === found[0]) return;
const k = S.hovered = found[0];
(async () => {
  const p = prototype(await S.weights, k);
  if (S.hovered !== k) return;
  if (meta.feature_shape) hovered_picture.data = greys(p, meta.feature_shape, 0, 0);
  hovered_profile.data = {x: p.map((_, d) => d), y: p};
  hovered_title.text = `prototype of node ${k} (under the pointer; ` +
    `labels ${tiles.data.labels[k]})`;
  document.body.dataset.hovered = String(k);
})();
"""
)

_DOWNLOAD = """
const blob = new Blob([exported.value || "{}"], {type: "application/json"});
const link = document.createElement("a");
link.href = URL.createObjectURL(blob);
link.download = "selection.json";
link.click();
"""

# At load: the caption, legend and colour bar of the first layer, then the page is ready.
_READY = (
    _SHOW_LAYER
    + """
S.nodeScreen = (k) => {
  const view = Bokeh.index.find_one(plot);
  const rect = view.el.getBoundingClientRect();
  const x = view.frame.x_scale.compute(tiles.data.x[k]);
  const y = view.frame.y_scale.compute(tiles.data.y[k]);
  return [rect.left + x, rect.top + y];
};
document.body.dataset.ready = "1";
"""
)


def _axial(rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bokeh's pointy-top axial ``(q, r)`` of nodes in dasksom's offset rows (odd rows half a
    node to the right), with ``r`` negated so that row 0 is at the bottom as in dasksom."""
    return cols + (rows + 1) // 2, -rows


def _ghosts(lattice: Any) -> dict[str, np.ndarray]:
    """The wrapped copies of a periodic map's nodes that lie within one node of its edges."""
    rows, cols = lattice.rows, lattice.cols
    height, width = lattice.height, lattice.width
    nodes, ghost_rows, ghost_cols = [], [], []
    for dr in (-1, 0, 1):
        for dc in (-1, 0, 1):
            if dr == 0 and dc == 0:
                continue
            r, c = rows + dr * height, cols + dc * width
            near = (r >= -1) & (r <= height) & (c >= -1) & (c <= width)
            nodes.append(np.arange(lattice.n_nodes)[near])
            ghost_rows.append(r[near])
            ghost_cols.append(c[near])
    return {
        "node": np.concatenate(nodes),
        "row": np.concatenate(ghost_rows),
        "col": np.concatenate(ghost_cols),
    }


def _place(lattice: Any, rows: np.ndarray, cols: np.ndarray) -> dict[str, np.ndarray]:
    """Centres (and for hexagons the axial coordinates) of tiles at ``rows``, ``cols``."""
    hexagonal = lattice.topology == "hexagonal"
    x = cols + (0.5 * (rows % 2) if hexagonal else 0.0)
    y = rows * (math.sqrt(3) / 2 if hexagonal else 1.0)
    place = {"x": x.astype(np.float64), "y": y.astype(np.float64)}
    if hexagonal:
        q, r = _axial(rows, cols)
        place.update({"q": q, "r": r})
    return place


def _initial_colors(values: np.ndarray, categorical: bool) -> list[str]:
    finite = values[~np.isnan(values)]
    lo, hi = (finite.min(), finite.max()) if len(finite) else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1
    colors = []
    for v in values:
        if np.isnan(v):
            colors.append(EMPTY_COLOR)
        elif categorical:
            colors.append(CATEGORY_COLORS[int(v) % len(CATEGORY_COLORS)])
        else:
            colors.append(Viridis256[min(255, int((v - lo) / (hi - lo) * 256))])
    return colors


def _tiles(plot: Any, lattice: Any, source: ColumnDataSource, alpha: float) -> Any:
    if lattice.topology == "hexagonal":
        return plot.hex_tile(
            q="q",
            r="r",
            size=1 / math.sqrt(3),
            source=source,
            fill_color="color",
            line_color=None,
            fill_alpha=alpha,
        )
    return plot.rect(
        x="x",
        y="y",
        width=1,
        height=1,
        source=source,
        fill_color="color",
        line_color=None,
        fill_alpha=alpha,
    )


def delta_planes(codes: np.ndarray) -> np.ndarray:
    """The 8-bit weights ``(M, D)`` as planes ``(D, M)``, each coded as the differences
    between successive nodes (modulo 256): neighbouring nodes of a trained map are alike, so
    the differences are small and compress well.  The page adds them up again.

    Parameters
    ----------
    codes : ndarray of uint8, shape (M, D)

    Returns
    -------
    ndarray of uint8, shape (D, M)
    """
    planes = np.ascontiguousarray(np.asarray(codes, dtype=np.uint8).T)
    deltas = planes.copy()
    deltas[:, 1:] -= planes[:, :-1]
    return deltas


def _pixels(
    shape: Sequence[int],
    source: ColumnDataSource,
    lines: int,
    per_line: int,
    width: int,
    title: str,
) -> Any:
    """A figure of grey pixels from ``source``: ``lines`` x ``per_line`` images of ``shape``."""
    image_height, image_width = shape
    x_end, y_end = (image_width + 1) * per_line, (image_height + 1) * lines
    picture = figure(
        title=title or None,
        width=width,
        height=int(width * y_end / x_end) + (30 if title else 0),
        x_range=Range1d(start=0, end=x_end),
        y_range=Range1d(start=0, end=y_end),
        toolbar_location=None,
    )
    picture.axis.visible = False
    picture.grid.visible = False
    picture.rect(x="x", y="y", width=1, height=1, color="color", source=source)
    return picture


def _history_figure(history: list[dict]) -> Any:
    plot = figure(
        title="training history", width=420, height=220, x_axis_label="epoch", toolbar_location=None
    )
    epochs = [record.get("epoch", i) + 1 for i, record in enumerate(history)]
    series = [("quantization_error", "QE before the epoch", "#1f77b4")]
    series.append(("topographic_error", "TE", "#d62728"))
    for key, name, color in series:
        values = [record.get(key, float("nan")) for record in history]
        if history and not all(isinstance(v, float) and math.isnan(v) for v in values):
            plot.line(epochs, values, legend_label=name, color=color, line_width=2)
            plot.scatter(epochs, values, color=color, size=5)
    return plot


def _settings_div(content: ExplorerContent, lattice: Any) -> Div:
    settings = {"lattice": lattice.to_dict(), **content.settings}
    cells = "".join(
        f"<tr><td>{html.escape(str(key))}</td><td>{html.escape(json.dumps(value, default=str))}"
        "</td></tr>"
        for key, value in settings.items()
    )
    return Div(
        text=f"<b>settings of the run</b><table class='settings' style='font-size:11px'>{cells}"
        "</table>",
        width=420,
    )


def render_page(
    content: ExplorerContent,
    lattice: Any,
    path: str | os.PathLike,
    *,
    feature_shape: Sequence[int] | None = None,
    title: str = "dasksom explorer",
) -> Path:
    """Write the explorer of ``content`` to ``path`` as one self-contained HTML file.

    Parameters
    ----------
    content : ExplorerContent
        What to show (:func:`dasksom.explorer.content.build_content`).
    lattice : Lattice
        The map's lattice.
    path : str or os.PathLike
        The HTML file to write.
    feature_shape : sequence of int, default=None
        ``(height, width)`` of a row as an image: prototypes are also drawn as images.
    title : str, default="dasksom explorer"
        The page's title.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    names = list(content.layers)
    # With labels the page opens on them: what a node holds is the first question.
    first = "majority label" if "majority label" in content.layers else names[0]
    place = _place(lattice, lattice.rows, lattice.cols)
    columns: dict[str, Any] = {**place, **content.nodes}
    for name, values in content.layers.items():
        columns[f"layer {name}"] = np.asarray(values, dtype=np.float64)
    columns["color"] = _initial_colors(content.layers[first], first in content.categorical)
    tiles = ColumnDataSource(columns, name="tiles")
    ghost_columns: dict[str, Any] = {"node": np.zeros(0, dtype=np.int64)}
    if lattice.pbc:
        ghost_columns = _ghosts(lattice)
        ghost_columns.update(_place(lattice, ghost_columns["row"], ghost_columns["col"]))
    ghost_columns["color"] = [columns["color"][k] for k in ghost_columns["node"]]
    ghosts = ColumnDataSource(ghost_columns, name="ghosts")

    width_units = lattice.width + (2 if lattice.pbc else 1)
    height_units = lattice.height * (math.sqrt(3) / 2 if lattice.topology == "hexagonal" else 1)
    side = 620
    plot = figure(
        name="map",
        width=side,
        height=int(side * min(2.0, max(0.4, (height_units + 1) / width_units))),
        match_aspect=True,
        tools="pan,wheel_zoom,box_select,reset,save",
        title=f"{lattice.height} x {lattice.width} {lattice.topology} map"
        + (
            ", periodic: faded tiles are the wrapped copies across the edges" if lattice.pbc else ""
        ),
        output_backend="canvas",
    )
    plot.axis.visible = False
    plot.grid.visible = False
    if lattice.pbc:
        _tiles(plot, lattice, ghosts, alpha=0.35)
    renderer = _tiles(plot, lattice, tiles, alpha=1.0)
    renderer.nonselection_glyph = renderer.glyph.clone()
    renderer.selection_glyph = renderer.glyph.clone(line_color="black", line_width=2)
    hover = HoverTool(renderers=[renderer], tooltips=_TOOLTIP)
    plot.add_tools(hover, TapTool(renderers=[renderer]))
    mapper = LinearColorMapper(palette=Viridis256, low=0, high=1)
    bar = ColorBar(color_mapper=mapper, width=10)
    plot.add_layout(bar, "right")

    options: list[str | tuple[Any, str]] = [
        *names,
        *(["component"] if content.feature_names else []),
    ]
    layer = Select(title="layer", value=first, options=options, name="layer")
    search = AutocompleteInput(
        title=f"component plane (search {len(content.feature_names)} features)",
        completions=content.feature_names,
        case_sensitive=False,
        min_characters=1,
        name="search",
        max_completions=20,
    )
    caption = Div(text=f"<b>{first}</b>", name="caption", width=side)
    details = Div(
        text="<p>Click a node to pin it (shift-click adds more).</p>", width=440, name="details"
    )
    exported = TextAreaInput(
        title="selection (node ids and their sampled rows)", rows=3, width=side, name="exported"
    )

    n_features = len(content.feature_names)
    profile = figure(
        title="pinned prototypes against the data's mean +/- 1 sd",
        width=440,
        height=240,
        x_axis_label="feature",
        toolbar_location=None,
        x_range=Range1d(start=-0.5, end=max(n_features - 0.5, 0.5)),
    )
    index = np.arange(len(content.feature_names), dtype=np.float64)
    profile.varea(
        index,
        content.feature_mean - content.feature_std,
        content.feature_mean + content.feature_std,
        fill_color="#bbbbbb",
        fill_alpha=0.5,
    )
    profile.line(index, content.feature_mean, color="black", line_width=1)
    profiles = ColumnDataSource({"xs": [], "ys": [], "color": []}, name="profiles")
    profile.multi_line(xs="xs", ys="ys", color="color", source=profiles, line_width=2)
    hovered_profile = ColumnDataSource({"x": [], "y": []}, name="hovered_profile")
    profile.line(
        x="x", y="y", source=hovered_profile, color="black", line_dash="dashed", line_width=1.5
    )
    hovered_title = Div(
        text="<b>prototype of the node under the pointer</b> (hover the map)",
        width=440,
        name="hovered_title",
    )
    side_panel: list[Any] = [hovered_title]
    hovered_picture = ColumnDataSource({"x": [], "y": [], "color": []}, name="hovered_picture")
    pictures = ColumnDataSource({"x": [], "y": [], "color": []}, name="pictures")
    if feature_shape is not None:
        side_panel.append(_pixels(feature_shape, hovered_picture, 1, 1, 180, ""))
    side_panel.append(profile)
    if feature_shape is not None:
        lines = math.ceil(MAX_PINNED / PICTURES_PER_ROW)
        title = "pinned prototypes as images (dark: high)"
        side_panel.append(_pixels(feature_shape, pictures, lines, PICTURES_PER_ROW, 440, title))
    side_panel.append(details)

    packed = zlib.compress(delta_planes(content.weights_u8).tobytes(), 6)
    blob = ColumnDataSource({"b64": [base64.b64encode(packed).decode("ascii")]}, name="blob")
    meta = {
        "n_nodes": lattice.n_nodes,
        "n_features": len(content.feature_names),
        "low": [float(v) for v in content.low],
        "high": [float(v) for v in content.high],
        "feature_names": content.feature_names,
        "feature_shape": list(feature_shape) if feature_shape is not None else None,
        "categorical": sorted(content.categorical),
        "categories": content.categories,
        "max_pinned": MAX_PINNED,
        "pictures_per_row": PICTURES_PER_ROW,
    }
    args = {"meta": meta, "blob": blob, "tiles": tiles}
    show = CustomJS(
        args={
            **args,
            "ghosts": ghosts,
            "layer": layer,
            "search": search,
            "mapper": mapper,
            "bar": bar,
            "caption": caption,
            "palette": list(Viridis256),
            "category": CATEGORY_COLORS,
            "empty": EMPTY_COLOR,
        },
        code=_SHOW_LAYER,
    )
    layer.js_on_change("value", show)
    ready = CustomJS(args={**show.args, "plot": plot}, code=_READY)
    search.js_on_change("value", show)
    pin = CustomJS(
        args={
            **args,
            "details": details,
            "exported": exported,
            "profiles": profiles,
            "pictures": pictures,
            "pin_colors": PIN_COLORS,
        },
        code=_PIN,
    )
    tiles.selected.js_on_change("indices", pin)
    hover.callback = CustomJS(
        args={
            **args,
            "hovered_picture": hovered_picture,
            "hovered_profile": hovered_profile,
            "hovered_title": hovered_title,
        },
        code=_HOVER,
    )
    download = Button(label="download the selection as JSON", width=260)
    download.js_on_event("button_click", CustomJS(args={"exported": exported}, code=_DOWNLOAD))

    layout = column(
        row(layer, search),
        caption,
        row(plot, column(*side_panel)),
        row(exported, download),
        row(_history_figure(content.history), _settings_div(content, lattice)),
    )
    document = Document()
    document.add_root(layout)
    document.js_on_event("document_ready", ready)
    document.title = title
    path = Path(path)
    write_text(path, file_html(document, INLINE, title))
    return path
