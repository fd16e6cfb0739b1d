"""What the explorer page shows, as plain arrays and strings: the layers, the text of each
node's hover card, the 8-bit weights and the run's history and settings.  No drawing here."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dasksom.core.analysis import node_differences
from dasksom.core.node_summary import NodeSummary

__all__ = ["ExplorerContent", "build_content", "quantize"]

# Labels and distinctive features named in a node's hover card.
TOP_LABELS = 3
TOP_FEATURES = 3


@dataclass
class ExplorerContent:
    """Everything the page needs, computed from a map and (optionally) its node summary.

    Attributes
    ----------
    layers : dict of str to ndarray of shape (M,)
        Layer name to one value per node (NaN where undefined).
    categorical : set of str
        Layers whose values are category codes (majority label, cluster).
    categories : dict of str to list of str
        The names of the codes of each categorical layer.
    nodes : dict of str to list or ndarray
        Per-node columns of the hover card (``node``, ``row``, ``col``, ``hits``, ``qe``,
        ``labels``, ``label_mix``, ``features``, ``samples``).
    weights_u8 : ndarray of uint8, shape (M, D)
        The weights, each feature scaled to 0..255 between ``low[d]`` and ``high[d]``.
    low, high : ndarray of shape (D,)
    feature_names : list of str
    feature_mean, feature_std : ndarray of shape (D,)
        The data's mean and spread per feature (the map's, without data).
    history : list of dict
    settings : dict
    """

    layers: dict[str, np.ndarray]
    categorical: set[str]
    categories: dict[str, list[str]]
    nodes: dict[str, Any]
    weights_u8: np.ndarray
    low: np.ndarray
    high: np.ndarray
    feature_names: list[str]
    feature_mean: np.ndarray
    feature_std: np.ndarray
    history: list[dict] = field(default_factory=list)
    settings: dict = field(default_factory=dict)


def quantize(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each column of ``values`` scaled to 8 bits between its minimum and maximum.

    Parameters
    ----------
    values : ndarray of shape (M, D)

    Returns
    -------
    codes : ndarray of uint8, shape (M, D)
    low, high : ndarray of shape (D,)
        ``values ~ low + codes / 255 * (high - low)``, within ``(high - low) / 510``.
    """
    values = np.asarray(values, dtype=np.float64)
    low, high = values.min(axis=0), values.max(axis=0)
    span = np.where(high > low, high - low, 1.0)
    codes = np.rint((values - low) / span * 255.0)
    return codes.astype(np.uint8), low, high


def _feature_names(som: Any, n_features: int, names: Sequence[str] | None, shape: Any) -> list:
    if names is not None:
        if len(names) != n_features:
            raise ValueError(
                f"feature_names must name all {n_features} features, got {len(names)}."
            )
        return [str(name) for name in names]
    if getattr(som, "feature_names_in_", None) is not None:
        return [str(name) for name in som.feature_names_in_]
    if shape is not None:
        return [f"pixel ({d // shape[1]}, {d % shape[1]})" for d in range(n_features)]
    return [f"feature {d}" for d in range(n_features)]


def _fraction_text(counts: np.ndarray, values: Sequence[str], top: int | None) -> list[str]:
    totals = counts.sum(axis=1)
    order = np.argsort(-counts, axis=1, kind="stable")
    texts = []
    for node in range(len(counts)):
        if totals[node] == 0:
            texts.append("none")
            continue
        picked = [j for j in order[node, :top] if counts[node, j] > 0]
        texts.append(
            ", ".join(f"{values[j]}: {counts[node, j] / totals[node]:.2f}" for j in picked)
        )
    return texts


def _distinctive(weights: np.ndarray, names: list[str]) -> list[str]:
    """Per node, the features farthest from the map's mean, in the map's standard deviations.

    A feature's spread counts as at least the average spread of all features, so that a
    feature that hardly varies (a border pixel) is not called distinctive for a tiny change."""
    spread = weights.std(axis=0)
    floor = spread.mean()
    z = (weights - weights.mean(axis=0)) / np.maximum(spread, floor if floor > 0 else 1.0)
    top = min(TOP_FEATURES, weights.shape[1])
    picked = np.argpartition(-np.abs(z), top - 1, axis=1)[:, :top]
    texts = []
    for node, candidates in enumerate(picked):
        ranked = sorted(candidates, key=lambda d: -abs(z[node, d]))
        texts.append(", ".join(f"{names[d]} ({z[node, d]:+.1f} sd)" for d in ranked))
    return texts


def build_content(
    som: Any,
    summary: NodeSummary | None = None,
    label_values: Sequence[Any] | np.ndarray | None = None,
    *,
    clusters: np.ndarray | None = None,
    feature_names: Sequence[str] | None = None,
    feature_shape: Sequence[int] | None = None,
    settings: dict | None = None,
) -> ExplorerContent:
    """The content of the explorer of ``som``.

    Parameters
    ----------
    som : dasksom.SOM
        A fitted map.
    summary : NodeSummary, default=None
        Its node summary over the data (:func:`dasksom.estimator.summary.summarize`); without
        it the page shows the map's own layers only (U-matrix, components).
    label_values : sequence, default=None
        The labels of the summary's label codes.
    clusters : ndarray of int, shape (M,), default=None
        A cluster per node.
    feature_names : sequence of str, default=None
        Names of the features (default: the map's ``feature_names_in_``, pixel positions with
        ``feature_shape``, or ``feature d``).
    feature_shape : sequence of int, default=None
        ``(height, width)`` of a row as an image.
    settings : dict, default=None
        The run's settings to show (default: the map's parameters).

    Returns
    -------
    ExplorerContent

    Raises
    ------
    ValueError
        ``clusters``, ``feature_names`` or ``feature_shape`` that do not fit the map.
    """
    weights = np.asarray(som.weights_, dtype=np.float64)
    lattice = som.lattice_
    n_nodes, n_features = weights.shape
    if feature_shape is not None and math.prod(feature_shape) != n_features:
        raise ValueError(
            f"feature_shape {tuple(feature_shape)} holds {math.prod(feature_shape)} values, "
            f"and the map has {n_features} features."
        )
    names = _feature_names(som, n_features, feature_names, feature_shape)
    layers: dict[str, np.ndarray] = {"U-matrix": node_differences(weights, lattice)}
    categorical: set[str] = set()
    categories: dict[str, list[str]] = {}
    nodes: dict[str, Any] = {
        "node": np.arange(n_nodes),
        "row": lattice.rows,
        "col": lattice.cols,
        "hits": ["-"] * n_nodes,
        "qe": ["-"] * n_nodes,
        "labels": ["-"] * n_nodes,
        "label_mix": ["-"] * n_nodes,
        "features": _distinctive(weights, names),
        "samples": ["-"] * n_nodes,
    }
    mean, std = weights.mean(axis=0), weights.std(axis=0)
    if summary is not None:
        hits = summary.hits.astype(np.float64)
        qe = summary.quantization_error
        layers = {
            "hits": hits,
            "hits (log10)": np.log10(1.0 + hits),
            **layers,
            "quantization error": qe,
        }
        nodes["hits"] = [str(h) for h in summary.hits]
        nodes["qe"] = ["-" if np.isnan(v) else f"{v:.4g}" for v in qe]
        nodes["samples"] = [
            " ".join(str(i) for i in summary.samples(k)) or "none" for k in range(n_nodes)
        ]
        if any(summary.feature_count > 0):
            mean, std = summary.feature_mean, summary.feature_std
        counts = summary.label_counts
        if counts.shape[1] > 0:
            values = [str(v) for v in (label_values if label_values is not None else [])]
            if len(values) != counts.shape[1]:
                raise ValueError("label_values must name every label code of the summary.")
            totals = counts.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                layers["majority label"] = np.where(totals > 0, counts.argmax(axis=1), np.nan)
                layers["purity"] = np.where(totals > 0, counts.max(axis=1) / totals, np.nan)
            categorical.add("majority label")
            categories["majority label"] = values
            nodes["labels"] = _fraction_text(counts, values, TOP_LABELS)
            nodes["label_mix"] = _fraction_text(counts, values, None)
    if clusters is not None:
        clusters = np.asarray(clusters).ravel()
        if len(clusters) != n_nodes:
            raise ValueError(f"clusters must be one per node ({n_nodes}), got {len(clusters)}.")
        cluster_values, codes = np.unique(clusters, return_inverse=True)
        layers["cluster"] = codes.astype(np.float64)
        categorical.add("cluster")
        categories["cluster"] = [str(v) for v in cluster_values]
    codes_u8, low, high = quantize(weights)
    return ExplorerContent(
        layers=layers,
        categorical=categorical,
        categories=categories,
        nodes=nodes,
        weights_u8=codes_u8,
        low=low,
        high=high,
        feature_names=names,
        feature_mean=np.nan_to_num(mean),
        feature_std=np.nan_to_num(std),
        history=list(getattr(som, "history_", [])),
        settings=dict(settings if settings is not None else som.get_params()),
    )
