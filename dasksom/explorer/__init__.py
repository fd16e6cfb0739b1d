"""The interactive explorer of a trained map: one self-contained HTML file (Bokeh, inline
resources) that opens from disk with no network and no server.

:func:`explore` computes what the page shows in one out-of-core pass over the data
(:func:`dasksom.estimator.summary.summarize`) and writes the page; :func:`write_explorer`
writes it from a node summary computed already.  Needs ``pip install 'dasksom[explore]'``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dasksom.core.node_summary import NodeSummary

__all__ = ["explore", "write_explorer"]


def write_explorer(
    som: Any,
    path: str | os.PathLike = "explorer.html",
    summary: NodeSummary | None = None,
    label_values: Sequence[Any] | np.ndarray | None = None,
    *,
    clusters: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    feature_shape: Sequence[int] | None = None,
    settings: dict | None = None,
) -> Path:
    """Write the explorer of ``som`` from its node summary.

    Parameters
    ----------
    som : dasksom.SOM
        A fitted map.
    path : str or os.PathLike, default="explorer.html"
        The HTML file to write.
    summary : NodeSummary, default=None
        The node summary over the data; without it only the map's own layers are shown.
    label_values : sequence, default=None
        The labels of the summary's label codes.
    clusters : ndarray of int, shape (M,), default=None
        A cluster per node, shown as a layer.
    feature_names : sequence of str, default=None
        Names of the features.
    feature_shape : sequence of int, default=None
        ``(height, width)`` of a row as an image (prototypes are then drawn as images).
    settings : dict, default=None
        The run's settings to show (default: the map's parameters).

    Returns
    -------
    pathlib.Path
        The file written.
    """
    from dasksom.explorer.content import build_content
    from dasksom.explorer.page import render_page

    content = build_content(
        som,
        summary,
        label_values,
        clusters=clusters,
        feature_names=feature_names,
        feature_shape=feature_shape,
        settings=settings,
    )
    return render_page(content, som.lattice_, path, feature_shape=feature_shape)


def explore(
    som: Any,
    X: Any = None,
    labels: np.ndarray | None = None,
    path: str | os.PathLike = "explorer.html",
    *,
    sample_size: int = 8,
    clusters: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    feature_shape: Sequence[int] | None = None,
) -> Path:
    """Compute the node summary of ``X`` (one out-of-core pass) and write the explorer.

    Parameters
    ----------
    som : dasksom.SOM
        A fitted map.
    X : array-like, dask array or path, default=None
        The rows; None shows only the map's own layers (U-matrix, component planes).
    labels : ndarray of shape (n_samples,), default=None
        One label per row.
    path : str or os.PathLike, default="explorer.html"
        The HTML file to write.
    sample_size : int, default=8
        Row ids kept per node.
    clusters, feature_names, feature_shape
        As :func:`write_explorer`.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    summary, label_values = None, None
    if X is not None:
        from dasksom.estimator.summary import summarize

        summary, label_values = summarize(som, X, labels, sample_size=sample_size)
    elif labels is not None:
        raise ValueError("labels need the rows they label: pass X as well.")
    return write_explorer(
        som,
        path,
        summary,
        label_values,
        clusters=clusters,
        feature_names=feature_names,
        feature_shape=feature_shape,
    )
