"""The tables cytometrists use, computed out of core: per node, per metacluster, and per
sample x node and sample x metacluster (FlowSOM's ``GetFeatures``), as pandas tables, parquet
files and AnnData.

:func:`summarise` reads the cells ``passes + 2`` times (one count pass, one min/max pass and
``passes`` refinement passes of :func:`~dasksom.cytometry.summaries.grouped_medians`, which
serve all four groupings at once); persist the :class:`CellResults` first to search the map
only once.  Medians carry the error bound stated in :mod:`dasksom.cytometry.summaries`.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd

from dasksom.cytometry.model import CellResults, FlowSOM
from dasksom.cytometry.summaries import (
    DEFAULT_BINS,
    DEFAULT_MAX_BYTES,
    DEFAULT_PASSES,
    grouped_counts,
    grouped_medians,
)
from dasksom.io.atomic import atomic_directory

TABLES = ("nodes", "metaclusters", "sample_nodes", "sample_metaclusters")


@dataclass(frozen=True)
class Summary:
    """The four tables of :func:`summarise`.

    Parameters
    ----------
    nodes : DataFrame
        One row per node: ``node``, ``metacluster``, ``count``, ``percentage`` (of all
        cells), ``outliers`` and the median of every marker.
    metaclusters : DataFrame
        One row per metacluster: ``metacluster``, ``count``, ``percentage``, medians.
    sample_nodes : DataFrame
        One row per sample and node (long format, ready for differential analysis):
        ``sample``, ``node``, ``count``, ``percentage`` (of the sample's cells), medians (NaN
        where the sample has no cell in the node).
    sample_metaclusters : DataFrame
        The same per sample and metacluster.
    """

    nodes: pd.DataFrame
    metaclusters: pd.DataFrame
    sample_nodes: pd.DataFrame
    sample_metaclusters: pd.DataFrame

    def write_parquet(self, folder: str | os.PathLike) -> list[Path]:
        """Write each table to ``folder/<name>.parquet`` (the folder replaced atomically).

        Parameters
        ----------
        folder : str or path

        Returns
        -------
        list of Path
            The files written, named by :data:`TABLES`.
        """
        with atomic_directory(folder) as tmp:
            for name in TABLES:
                getattr(self, name).to_parquet(Path(tmp) / f"{name}.parquet", index=False)
        return [Path(folder) / f"{name}.parquet" for name in TABLES]

    def to_anndata(self, model: FlowSOM) -> object:
        """The nodes as AnnData, in FlowSOM_Python's ``cluster_data`` layout.

        ``X`` holds the node medians (nodes x markers); ``obs`` the ``metaclustering``,
        ``counts``, ``percentages`` and ``outliers``; ``obsm["codes"]`` the prototypes,
        ``obsm["grid"]`` the grid positions; ``uns`` the MST edges and the per-sample tables
        as sample x node and sample x metacluster count matrices.

        Parameters
        ----------
        model : FlowSOM
            The fitted model the tables come from.

        Returns
        -------
        anndata.AnnData
        """
        anndata: Any = importlib.import_module("anndata")
        markers = list(model.transform_.markers)
        nodes = self.nodes
        obs = pd.DataFrame(
            {
                "metaclustering": nodes["metacluster"].to_numpy(),
                "counts": nodes["count"].to_numpy(),
                "percentages": nodes["percentage"].to_numpy(),
                "outliers": nodes["outliers"].to_numpy(),
            },
            index=[str(k) for k in nodes["node"]],
        )
        node_counts = self.sample_nodes.pivot(index="sample", columns="node", values="count")
        meta_counts = self.sample_metaclusters.pivot(
            index="sample", columns="metacluster", values="count"
        )
        return anndata.AnnData(
            X=nodes[markers].to_numpy(dtype=np.float64),
            obs=obs,
            var=pd.DataFrame(index=markers),
            obsm={"codes": model.codes_, "grid": model.som_.positions_},
            uns={
                "mst_edges": model.mst_,
                "clustering_markers": list(model.clustering_markers_),
                "samples": [str(s) for s in node_counts.index],
                "sample_node_counts": node_counts.to_numpy(dtype=np.int64),
                "sample_metacluster_counts": meta_counts.to_numpy(dtype=np.int64),
            },
        )


def summarise(
    results: CellResults,
    *,
    bins: int = DEFAULT_BINS,
    passes: int = DEFAULT_PASSES,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Summary:
    """Counts, percentages and per-marker medians per node, metacluster and sample.

    Parameters
    ----------
    results : CellResults
        From :meth:`FlowSOM.map` (persisted, ideally).
    bins, passes, max_bytes : int
        As :func:`~dasksom.cytometry.summaries.grouped_medians`.

    Returns
    -------
    Summary
    """
    cells = results.cells
    n_nodes = len(results.thresholds)
    n_meta = int(results.node_metacluster.max()) + 1
    n_samples = len(cells.samples)
    offsets = np.cumsum([0, n_nodes, n_meta, n_samples * n_nodes, n_samples * n_meta])
    n_groups = int(offsets[-1])
    # Each cell's four groups and, last, its node again where it is an outlier (else -1):
    # mapped once and kept in the workers' memory (2 or 4 bytes each, 10-20 bytes a cell)
    # for the counts and every median pass, which then read and transform the cells only.
    id_type = np.int16 if n_groups + n_nodes <= np.iinfo(np.int16).max else np.int32
    ids = da.map_blocks(
        _group_ids,
        results.node,
        cells.sample,
        results.outlier,
        results.node_metacluster,
        n_nodes,
        n_meta,
        offsets,
        id_type,
        dtype=id_type,
        new_axis=1,
        chunks=(results.node.chunks[0], (5,)),
    ).persist()
    counts = grouped_counts(ids, n_groups + n_nodes)
    counts, outliers = counts[:n_groups], counts[n_groups:]
    medians = grouped_medians(
        cells.data, ids[:, :4], n_groups, bins=bins, passes=passes, max_bytes=max_bytes
    )
    markers = list(cells.markers)
    part = [slice(offsets[i], offsets[i + 1]) for i in range(4)]
    total = max(int(counts[part[0]].sum()), 1)
    nodes = _table({"node": np.arange(n_nodes)}, counts[part[0]], total, medians[part[0]], markers)
    nodes.insert(1, "metacluster", results.node_metacluster)
    nodes["outliers"] = outliers
    metaclusters = _table(
        {"metacluster": np.arange(n_meta)}, counts[part[1]], total, medians[part[1]], markers
    )
    samples = cells.samples
    return Summary(
        nodes,
        metaclusters,
        _per_sample(samples, "node", n_nodes, counts[part[2]], medians[part[2]], markers),
        _per_sample(samples, "metacluster", n_meta, counts[part[3]], medians[part[3]], markers),
    )


def _per_sample(
    samples: tuple[str, ...],
    key: str,
    n_groups: int,
    counts: np.ndarray,
    medians: np.ndarray,
    markers: list[str],
) -> pd.DataFrame:
    per_sample = counts.reshape(len(samples), n_groups)
    totals = np.repeat(np.maximum(per_sample.sum(axis=1), 1), n_groups)
    columns = {
        "sample": np.repeat(np.asarray(samples, dtype=object), n_groups),
        key: np.tile(np.arange(n_groups), len(samples)),
    }
    return _table(columns, counts, totals, medians, markers)


def _table(
    columns: dict,
    counts: np.ndarray,
    totals: int | np.ndarray,
    medians: np.ndarray,
    markers: list[str],
) -> pd.DataFrame:
    table = pd.DataFrame(columns)
    table["count"] = counts.astype(np.int64)
    table["percentage"] = 100.0 * counts / totals
    for column, marker in enumerate(markers):
        table[marker] = medians[:, column]
    return table


def _group_ids(
    node: np.ndarray,
    sample: np.ndarray,
    outlier: np.ndarray,
    node_metacluster: np.ndarray,
    n_nodes: int,
    n_meta: int,
    offsets: np.ndarray,
    id_type: type,
) -> np.ndarray:
    node = np.asarray(node).astype(np.int64)
    sample = np.asarray(sample).astype(np.int64)
    meta = node_metacluster[node]
    return np.stack(
        [
            offsets[0] + node,
            offsets[1] + meta,
            offsets[2] + sample * n_nodes + node,
            offsets[3] + sample * n_meta + meta,
            np.where(np.asarray(outlier), offsets[4] + node, -1),
        ],
        axis=1,
    ).astype(id_type)
