"""Cytometry: the FlowSOM pipeline on all the cells, out of core.

- :mod:`~dasksom.cytometry.reading`: FCS files (many as one lazy array, one chunk per file or
  per block of events, each row's file kept), AnnData and dasksom's sources, as
  :class:`Cells`;
- :mod:`~dasksom.cytometry.transforms`: arcsinh per marker, scaling, compensation, lazily;
- :mod:`~dasksom.cytometry.model`: :class:`FlowSOM`, fit on every cell, its minimal spanning
  tree and seeded consensus metaclusters, and :meth:`FlowSOM.map` for new files;
- :mod:`~dasksom.cytometry.results`: per node, metacluster and sample tables with out-of-core
  medians (:mod:`~dasksom.cytometry.summaries` states their error), to parquet and AnnData.

Needs the ``cytometry`` extra (flowio, anndata).  A domain layer above the estimator: it never
imports matplotlib, scikit-learn or bokeh.
"""

from dasksom.cytometry.cells import Cells, UnknownMarkerError
from dasksom.cytometry.metaclusters import consensus_metaclusters, spanning_tree
from dasksom.cytometry.model import CellResults, FlowSOM, outlier_thresholds
from dasksom.cytometry.reading import (
    FCSError,
    FCSHeader,
    Spill,
    read_anndata,
    read_array,
    read_fcs,
    read_fcs_header,
)
from dasksom.cytometry.results import Summary, summarise
from dasksom.cytometry.summaries import grouped_counts, grouped_medians, median_error_bound
from dasksom.cytometry.transforms import Transform, arcsinh, column_moments, compensate

__all__ = [
    "CellResults",
    "Cells",
    "FCSError",
    "FCSHeader",
    "FlowSOM",
    "Spill",
    "Summary",
    "Transform",
    "UnknownMarkerError",
    "arcsinh",
    "column_moments",
    "compensate",
    "consensus_metaclusters",
    "grouped_counts",
    "grouped_medians",
    "median_error_bound",
    "outlier_thresholds",
    "read_anndata",
    "read_array",
    "read_fcs",
    "read_fcs_header",
    "spanning_tree",
    "summarise",
]
