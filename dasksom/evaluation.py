"""Label-based views of a trained map: which label each node stands for, and how well."""

from __future__ import annotations

import numpy as np


def label_votes(
    nodes: np.ndarray, labels: np.ndarray, n_nodes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count the labels of the samples each node wins.

    Parameters
    ----------
    nodes : int array of shape (n_samples,), each sample's best-matching unit; -1 (a row with
        no observed value, under ``nan_policy="ignore"``) votes for no node
    labels : array of shape (n_samples,), labels of any sortable type
    n_nodes : number of nodes of the map

    Returns
    -------
    classes : the distinct labels, sorted
    votes : int array of shape (n_nodes, len(classes))
    codes : each sample's label as an index into ``classes``
    """
    nodes = np.asarray(nodes).ravel()
    classes, codes = np.unique(np.asarray(labels).ravel(), return_inverse=True)
    if codes.shape[0] != nodes.shape[0]:
        raise ValueError(f"Got {codes.shape[0]} labels for {nodes.shape[0]} samples.")
    assigned = nodes >= 0
    votes = np.bincount(
        nodes[assigned] * len(classes) + codes[assigned], minlength=n_nodes * len(classes)
    )
    return classes, votes.reshape(n_nodes, len(classes)), codes


def majority_label_accuracy(nodes: np.ndarray, labels: np.ndarray, n_nodes: int) -> float:
    """Share of the samples with a node whose node's majority label is their own (ties: first
    sorted label)."""
    _, votes, codes = label_votes(nodes, labels, n_nodes)
    nodes = np.asarray(nodes).ravel()
    assigned = nodes >= 0
    return float((votes.argmax(axis=1)[nodes[assigned]] == codes[assigned]).mean())
