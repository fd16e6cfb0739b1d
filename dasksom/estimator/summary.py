"""The per-node summary of a fitted map over a dataset, out of core: one pass over the rows,
one small :class:`~dasksom.core.node_summary.NodeSummary` per chunk, merged by a tree.

:func:`evaluate_and_summarize` also measures what :meth:`dasksom.SOM.evaluate` measures (the
same checks of the rows, the same kernel and BMU search), from the same read of each chunk, so
that a batch job reads its data once after training; :func:`summarize` keeps the summary only.
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

from dasksom.backends.arrays import to_host
from dasksom.core.chunk_tasks import evaluate_chunk
from dasksom.core.node_summary import NodeSummary, chunk_summary, merge_summaries
from dasksom.estimator.som import _quality_of
from dasksom.training import engine

__all__ = ["evaluate_and_summarize", "summarize"]

# Chunk summaries merged per task of the reduction tree.
_FAN_IN = 8


def summarize(
    som: Any,
    X: Any,
    labels: np.ndarray | None = None,
    *,
    sample_size: int = 8,
) -> tuple[NodeSummary, np.ndarray]:
    """Hits, per-node QE, label counts and a sample of row ids per node of ``som`` over ``X``.

    One pass over ``X``, as :func:`evaluate_and_summarize` (whose quality measures it drops).

    Parameters
    ----------
    som : dasksom.SOM
        A fitted map.
    X : array-like, dask array or path
        The rows (anything :func:`dasksom.io.as_dask_array` reads), read chunk by chunk.
    labels : ndarray of shape (n_samples,), default=None
        One label per row (labels are small next to the rows and held in memory).
    sample_size : int, default=8
        Row ids sampled per node (a bottom-k sample on a hash of the row id: the same for any
        chunking).

    Returns
    -------
    summary : NodeSummary
        With ``label_counts`` columns in the order of ``label_values``.
    label_values : ndarray
        The distinct labels (sorted); empty without labels.

    Raises
    ------
    ValueError
        ``labels`` not one per row, ``sample_size`` negative, or rows the map refuses (another
        width, values its ``nan_policy`` refuses).
    """
    _, summary, label_values = evaluate_and_summarize(som, X, labels, sample_size=sample_size)
    return summary, label_values


def evaluate_and_summarize(
    som: Any,
    X: Any,
    labels: np.ndarray | None = None,
    *,
    sample_size: int = 8,
    keep_bmus: bool = False,
) -> tuple[dict, NodeSummary, np.ndarray]:
    """What :meth:`dasksom.SOM.evaluate` measures and the node summary, reading ``X`` once.

    ``X`` is checked and placed as :meth:`dasksom.SOM.evaluate` does it, and each chunk is
    read once: the engine's evaluation kernel
    (:func:`dasksom.core.chunk_tasks.evaluate_chunk`, with the map's BMU search) gives its
    quality totals and best-matching units, which feed the node summary of the same chunk.

    Parameters
    ----------
    som : dasksom.SOM
        A fitted map.
    X : array-like, dask array or path
        The rows.
    labels : ndarray of shape (n_samples,), default=None
        One label per row.
    sample_size : int, default=8
        Row ids sampled per node.
    keep_bmus : bool, default=False
        Also bring back every row's best-matching unit.

    Returns
    -------
    evaluation : dict
        As :meth:`dasksom.SOM.evaluate`: ``quantization_error``, ``topographic_error``,
        ``n_samples``, ``hit_counts`` (with ``nan_policy="ignore"`` ``rows_without_values``;
        with ``keep_bmus`` ``bmus``).
    summary : NodeSummary
    label_values : ndarray
        The distinct labels; empty without labels.

    Raises
    ------
    ValueError
        ``labels`` not one per row, ``sample_size`` negative, or rows the map refuses.
    """
    if sample_size < 0:
        raise ValueError(f"sample_size must be 0 or more, got {sample_size}.")
    som._check_fitted()
    data = som._place(*som._input(X, fitted=True))
    ids, codes, label_values = _ids_and_codes(data, labels)
    weights = dask.delayed(np.asarray(to_host(som.weights_)))
    index = dask.delayed(som._search_index(data.dtype))
    task = dask.delayed(_evaluate_chunk, pure=True, nout=2)
    parts = [
        task(
            block,
            weights,
            som.metric,
            som.lattice_,
            offset,
            som.nan_policy,
            index,
            row_ids,
            block_codes,
            len(label_values),
            sample_size,
        )
        for block, offset, row_ids, block_codes in zip(
            data.to_delayed().ravel(), engine.chunk_row_offsets(data), ids, codes, strict=True
        )
    ]
    totals = _tree([part[0] for part in parts])
    bmus = [part[1] for part in parts] if keep_bmus else []
    with engine.compute_context():
        (total, summary), *found = dask.compute(totals, *bmus)
    evaluation = _quality_of(total[:4], som.nan_policy)
    evaluation["hit_counts"] = total[4:].astype(np.int64)
    if keep_bmus:
        evaluation["bmus"] = np.concatenate(found)
    return evaluation, summary, label_values


def _ids_and_codes(data: da.Array, labels: np.ndarray | None) -> tuple[list, list, np.ndarray]:
    """Delayed row ids and label codes of each row chunk of ``data``, and the label values."""
    n_rows = data.shape[0]
    ids = da.arange(n_rows, chunks=(data.chunks[0],), dtype=np.int64).to_delayed().ravel()
    if labels is None:
        return list(ids), [None] * len(ids), np.empty(0)
    labels = np.asarray(labels).ravel()
    if len(labels) != n_rows:
        raise ValueError(f"labels must be one per row: {len(labels)} labels, {n_rows} rows.")
    label_values, inverse = np.unique(labels, return_inverse=True)
    codes = da.from_array(inverse.astype(np.int64), chunks=(data.chunks[0],))
    return list(ids), list(codes.to_delayed().ravel()), label_values


def _tree(parts: list) -> Any:
    """The delayed merge of delayed ``(totals, summary)`` parts by a tree of fan-in
    ``_FAN_IN``, in order (the same tree for a given chunking)."""
    task = dask.delayed(_merge, pure=True)
    while len(parts) > 1:
        parts = [task(*parts[i : i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    return parts[0]


def _evaluate_chunk(
    block: Any,
    weights: np.ndarray,
    metric: str,
    lattice: Any,
    offset: int,
    nan_policy: str,
    index: Any,
    row_ids: np.ndarray,
    codes: np.ndarray | None,
    n_labels: int,
    sample_size: int,
) -> tuple[tuple[np.ndarray, NodeSummary], np.ndarray]:
    totals, bmus = evaluate_chunk(block, weights, metric, lattice, offset, nan_policy, True, index)
    found = np.asarray(bmus)
    summary = chunk_summary(to_host(block), weights, found, row_ids, codes, n_labels, sample_size)
    return (totals, summary), found


def _merge(*parts: tuple[np.ndarray, NodeSummary]) -> tuple[np.ndarray, NodeSummary]:
    totals, summary = parts[0]
    for more_totals, more in parts[1:]:
        totals, summary = totals + more_totals, merge_summaries(summary, more)
    return totals, summary
