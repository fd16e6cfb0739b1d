"""The explorer of a fitted :class:`~dasksom.cytometry.FlowSOM`: the page of its map with a
metacluster layer, the clustering markers naming the component planes, and the manual-gate
labels of the cells when there are any.

The map is the model's SOM over the transformed clustering markers times their importance
(the space the cells were clustered in): with the default importance of 1 the component
planes are in transformed units.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from dasksom.cytometry import Cells, FlowSOM
from dasksom.estimator.summary import summarize
from dasksom.explorer.content import ExplorerContent, build_content
from dasksom.explorer.page import render_page

__all__ = ["explore_flowsom", "marker_labels"]

METACLUSTER_LAYER = "metacluster"


def explore_flowsom(
    model: FlowSOM,
    cells: Cells,
    labels: Any = None,
    path: str | os.PathLike = "explorer.html",
    *,
    sample_size: int = 8,
) -> Path:
    """Write the explorer of a fitted FlowSOM over ``cells`` (one out-of-core pass).

    Parameters
    ----------
    model : FlowSOM
        Fitted.
    cells : Cells
        The cells to summarise (the training cells, or new ones with the model's markers),
        raw: the model's transform is applied, lazily.
    labels : array-like of shape (n_cells,), default=None
        A manual-gate label per cell, held in memory (a dask array is computed): the page then
        shows each node's label mix and opens on the majority label.
    path : str or os.PathLike, default="explorer.html"
        The HTML file to write.
    sample_size : int, default=8
        Row ids kept per node.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        An unfitted model, or labels not one per cell.
    """
    if not hasattr(model, "som_"):
        raise ValueError("this FlowSOM is not fitted; call fit(cells) or load a model")
    clustering = model.transform_.apply(cells).select(model.clustering_markers_)
    data = clustering.data * model.importance_
    summary, label_values = summarize(model.som_, data, labels, sample_size=sample_size)
    content = build_content(
        model.som_,
        summary,
        label_values,
        clusters=model.node_metacluster_,
        feature_names=marker_labels(clustering),
        settings=_settings(model),
    )
    _name_metaclusters(content)
    return render_page(content, model.som_.lattice_, path, title="dasksom FlowSOM explorer")


def marker_labels(cells: Cells) -> list[str]:
    """Each marker's name for the page: ``"CD3 (FL1-A)"`` (the description, then the channel)
    where the description differs from the channel, else the channel.

    Parameters
    ----------
    cells : Cells

    Returns
    -------
    list of str
    """
    return [
        name if text in ("", name) else f"{text} ({name})"
        for name, text in zip(cells.markers, cells.descriptions, strict=True)
    ]


def _name_metaclusters(content: ExplorerContent) -> None:
    """Call the cluster layer "metacluster" and put it first: without labels the page opens
    on it (with labels, on the majority label)."""
    values = content.layers.pop("cluster")
    content.layers = {METACLUSTER_LAYER: values, **content.layers}
    content.categorical = (content.categorical - {"cluster"}) | {METACLUSTER_LAYER}
    content.categories[METACLUSTER_LAYER] = content.categories.pop("cluster")


def _settings(model: FlowSOM) -> dict:
    """The FlowSOM settings the page lists, then the SOM's."""
    flowsom = {
        "xdim": model.xdim,
        "ydim": model.ydim,
        "n_clusters": model.n_clusters,
        "seed": model.seed,
        "clustering_markers": list(model.clustering_markers_),
        "importance": model.importance_.tolist(),
        "mad_allowed": model.mad_allowed,
    }
    return {"flowsom": flowsom, **model.som_.get_params()}
