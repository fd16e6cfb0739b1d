"""The FlowSOM pipeline on dasksom's batch SOM: fit on all the cells, map new ones.

:class:`FlowSOM` transforms the cells (:class:`~dasksom.cytometry.transforms.Transform`),
trains a :class:`dasksom.SOM` on the clustering markers weighted by their importance (FlowSOM's
defaults: a 10 x 10 square grid, 10 passes, a seed), builds the minimal spanning tree of the
nodes and their consensus metaclusters, and learns FlowSOM's outlier thresholds per node.
:meth:`FlowSOM.map` gives every cell's node, metacluster, distance and outlier flag as lazy
dask arrays, for the training cells or any new ones.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from dasksom.cytometry.cells import Cells
from dasksom.cytometry.metaclusters import (
    DEFAULT_FRACTION,
    DEFAULT_RESAMPLES,
    consensus_metaclusters,
    spanning_tree,
)
from dasksom.cytometry.summaries import DEFAULT_BINS, DEFAULT_PASSES, grouped_medians
from dasksom.cytometry.transforms import Transform
from dasksom.estimator.som import SOM
from dasksom.estimator.som import load as load_som
from dasksom.io.atomic import atomic_directory

# R's mad() constant: the MAD of a normal sample times this estimates its standard deviation.
MAD_SCALE = 1.4826
MODEL_FILE = "flowsom.json"
MAP_FILE = "som.npz"
FORMAT = "dasksom-flowsom"
# The last radius of the bubble: below one lattice step, the node alone.
FINAL_RADIUS = 0.5


@dataclass(frozen=True)
class CellResults:
    """Per-cell results, lazy dask arrays with the row chunks of ``cells``.

    Parameters
    ----------
    cells : Cells
        The transformed cells (every marker of the model's transform).
    node : dask array of int64
        Each cell's node (best-matching unit).
    distance : dask array of float64
        Euclidean distance to its node's code, in the training space (weighted markers).
    node_metacluster : ndarray of int64, shape (M,)
        Each node's metacluster.
    thresholds : ndarray of float64, shape (M,)
        Each node's outlier threshold on ``distance``.
    """

    cells: Cells
    node: da.Array
    distance: da.Array
    node_metacluster: np.ndarray
    thresholds: np.ndarray

    @property
    def metacluster(self) -> da.Array:
        """Each cell's metacluster (lazy int64)."""
        return da.map_blocks(_lookup, self.node, self.node_metacluster, dtype=np.int64)

    @property
    def outlier(self) -> da.Array:
        """FlowSOM's outlier flag: distance above the node's median + k x MAD (lazy bool)."""
        return da.map_blocks(_above, self.node, self.distance, self.thresholds, dtype=bool)

    def persist(self) -> CellResults:
        """The same results with ``node`` and ``distance`` held in (worker) memory.

        16 bytes a cell: tables then computed from them in several passes read the cells
        without searching the map again.

        Returns
        -------
        CellResults
        """
        node, distance = dask.persist(self.node, self.distance)
        return CellResults(self.cells, node, distance, self.node_metacluster, self.thresholds)


class FlowSOM:
    """FlowSOM (Van Gassen et al. 2015) on a distributed, out-of-core batch SOM.

    Parameters
    ----------
    xdim, ydim : int, default=10
        Grid width and height (FlowSOM's 10 x 10); nodes ``k = row * xdim + column``.
    n_clusters : int, default=10
        Metaclusters.
    markers : sequence of str or None, default=None
        The clustering markers (FlowSOM's ``colsToUse``); None uses all.  Medians are
        reported for every marker.
    importance : mapping of marker to float or None, default=None
        Weight of each clustering marker in the distance (markers not named weigh 1).
    epochs : int, default=10
        Batch passes over the cells (FlowSOM's ``rlen``).
    seed : int, default=42
        Seed of the SOM's initial codes (sampled cells) and of the metaclustering.
    cofactor : float, mapping or None, default=None
        Arcsinh cofactor(s) applied first (None: the cells are already transformed).
    scale : bool, default=False
        Centre and scale every marker (FlowSOM's ``scale``).
    mad_allowed : float, default=4
        Outlier threshold in MADs above each node's median distance (FlowSOM's
        ``madAllowed``).
    resamples, fraction : int, float, default=100, 0.9
        Consensus metaclustering settings.
    som_params : mapping or None, default=None
        Further :class:`dasksom.SOM` settings (``sigma``, ``init``, ``device``, ...).

    Attributes
    ----------
    som_ : SOM
    transform_ : Transform
    clustering_markers_ : tuple of str
    importance_ : ndarray, the weight of each clustering marker
    codes_ : ndarray (M, n_clustering), prototypes in transformed (unweighted) units
    mst_ : ndarray (M - 1, 2), edges of the minimal spanning tree
    node_metacluster_ : ndarray (M,)
    thresholds_ : ndarray (M,), outlier threshold per node (inf for a node with no cell)
    """

    def __init__(
        self,
        xdim: int = 10,
        ydim: int = 10,
        *,
        n_clusters: int = 10,
        markers: Sequence[str] | None = None,
        importance: Mapping[str, float] | None = None,
        epochs: int = 10,
        seed: int = 42,
        cofactor: float | Mapping[str, float] | None = None,
        scale: bool = False,
        mad_allowed: float = 4.0,
        resamples: int = DEFAULT_RESAMPLES,
        fraction: float = DEFAULT_FRACTION,
        som_params: Mapping | None = None,
    ) -> None:
        self.xdim, self.ydim, self.n_clusters = xdim, ydim, n_clusters
        self.markers = None if markers is None else tuple(markers)
        self.importance = None if importance is None else dict(importance)
        self.epochs, self.seed, self.cofactor, self.scale = epochs, seed, cofactor, scale
        self.mad_allowed, self.resamples, self.fraction = mad_allowed, resamples, fraction
        self.som_params = dict(som_params or {})

    def fit(self, cells: Cells) -> FlowSOM:
        """Train on every cell, out of core; then the tree, metaclusters and thresholds.

        Parameters
        ----------
        cells : Cells
            From :mod:`dasksom.cytometry.reading`.

        Returns
        -------
        FlowSOM
            ``self``, fitted.
        """
        self.transform_ = Transform.learn(cells, self.cofactor, self.scale)
        transformed = self.transform_.apply(cells)
        markers = self.markers if self.markers is not None else transformed.markers
        columns = transformed.marker_indices(markers)
        self.clustering_markers_ = tuple(transformed.markers[c] for c in columns)
        self.importance_ = np.ones(len(columns))
        if self.importance:
            weighted = transformed.select(self.clustering_markers_)
            for marker, weight in self.importance.items():
                if weight <= 0:
                    raise ValueError(f"importance of {marker!r} must be positive, not {weight}")
                self.importance_[weighted.marker_indices([marker])[0]] = weight
        params = {
            "topology": "square",
            "init": "sample",
            # FlowSOM's radii: a bubble from its start radius down to 0.5, so that the last
            # epochs move each node alone.  simpsom's gaussian, ending at radius 1.17, kept
            # the codes smoothed toward their neighbours: rare populations of 0.5-2% lost a
            # node of their own (F1 0.32 against flowsom's 0.64; 0.79 with these radii,
            # benchmarks/flowsom_compare.py).
            "neighborhood": "bubble",
            "sigma": (start_radius(self.xdim, self.ydim), FINAL_RADIUS),
            "sigma_decay": "exponential",
            "epochs": self.epochs,
            "random_state": self.seed,
            **self.som_params,
        }
        self.som_ = SOM(self.ydim, self.xdim, **params).fit(self._training_data(transformed))
        self.codes_ = self.som_.weights_ / self.importance_
        self.mst_ = spanning_tree(self.som_.weights_)
        self.node_metacluster_ = consensus_metaclusters(
            self.som_.weights_,
            self.n_clusters,
            resamples=self.resamples,
            fraction=self.fraction,
            seed=self.seed,
        )
        self.thresholds_ = np.full(self.som_.lattice_.n_nodes, np.inf)
        mapped = self._mapped(transformed).persist()
        self.thresholds_ = outlier_thresholds(
            mapped.node, mapped.distance, self.som_.lattice_.n_nodes, self.mad_allowed
        )
        return self

    def map(self, cells: Cells) -> CellResults:
        """Every cell's node, metacluster, distance and outlier flag, lazily (``NewData``).

        Parameters
        ----------
        cells : Cells
            Cells with (at least) the markers the model was fitted on, found by name.

        Returns
        -------
        CellResults
        """
        self._check_fitted()
        return self._mapped(self.transform_.apply(cells))

    def _mapped(self, transformed: Cells) -> CellResults:
        data = self._training_data(transformed)
        node = self.som_.predict(data).rechunk((data.chunks[0],))
        distance = da.map_blocks(
            _distances, data, node[:, None], self.som_.weights_, dtype=np.float64, drop_axis=1
        )
        return CellResults(transformed, node, distance, self.node_metacluster_, self.thresholds_)

    def _training_data(self, transformed: Cells) -> da.Array:
        picked = transformed.select(self.clustering_markers_)
        return picked.data * self.importance_

    def _check_fitted(self) -> None:
        if not hasattr(self, "som_"):
            raise ValueError("this FlowSOM is not fitted; call fit(cells) or load a model")

    def save(self, path: str | os.PathLike) -> None:
        """Write the model to the directory ``path`` (a map file and JSON; no pickle).

        Parameters
        ----------
        path : str or path
            A directory, replaced atomically.
        """
        self._check_fitted()
        settings = {
            "format": FORMAT,
            "xdim": self.xdim,
            "ydim": self.ydim,
            "n_clusters": self.n_clusters,
            "seed": self.seed,
            "mad_allowed": self.mad_allowed,
            "transform": self.transform_.to_dict(),
            "clustering_markers": list(self.clustering_markers_),
            "importance": self.importance_.tolist(),
            "mst": self.mst_.tolist(),
            "node_metacluster": self.node_metacluster_.tolist(),
            "thresholds": [None if np.isinf(t) else float(t) for t in self.thresholds_],
        }
        with atomic_directory(path) as folder:
            self.som_.save(Path(folder) / MAP_FILE)
            (Path(folder) / MODEL_FILE).write_text(json.dumps(settings, indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> FlowSOM:
        """The model :meth:`save` wrote.

        Parameters
        ----------
        path : str or path

        Returns
        -------
        FlowSOM
            Fitted, ready to :meth:`map` new cells.
        """
        folder = Path(path)
        try:
            settings = json.loads((folder / MODEL_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"{os.fspath(path)!r} is not a saved FlowSOM model: {exc}") from exc
        if settings.get("format") != FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a saved FlowSOM model")
        model = cls(
            settings["xdim"],
            settings["ydim"],
            n_clusters=settings["n_clusters"],
            markers=settings["clustering_markers"],
            seed=settings["seed"],
            mad_allowed=settings["mad_allowed"],
        )
        model.som_ = load_som(folder / MAP_FILE)
        model.transform_ = Transform.from_dict(settings["transform"])
        model.clustering_markers_ = tuple(settings["clustering_markers"])
        model.importance_ = np.asarray(settings["importance"], dtype=float)
        model.codes_ = model.som_.weights_ / model.importance_
        model.mst_ = np.asarray(settings["mst"], dtype=np.int64).reshape(-1, 2)
        model.node_metacluster_ = np.asarray(settings["node_metacluster"], dtype=np.int64)
        model.thresholds_ = np.array(
            [np.inf if t is None else t for t in settings["thresholds"]], dtype=float
        )
        return model


def start_radius(xdim: int, ydim: int) -> float:
    """FlowSOM's first neighbourhood radius: the 0.67 quantile of the grid's Chebyshev
    distances between nodes (6 on a 10 x 10 grid).

    Parameters
    ----------
    xdim, ydim : int

    Returns
    -------
    float
        At least :data:`FINAL_RADIUS`.
    """
    column, row = np.divmod(np.arange(xdim * ydim), ydim)
    apart = np.maximum(
        np.abs(column[:, None] - column[None, :]), np.abs(row[:, None] - row[None, :])
    )
    return max(float(np.quantile(apart, 0.67)), FINAL_RADIUS)


def outlier_thresholds(
    node: da.Array,
    distance: da.Array,
    n_nodes: int,
    mad_allowed: float,
    *,
    bins: int = DEFAULT_BINS,
    passes: int = DEFAULT_PASSES,
) -> np.ndarray:
    """FlowSOM's per-node outlier thresholds: median + ``mad_allowed`` x 1.4826 x MAD.

    Medians of the distances and of their absolute deviations are computed out of core by
    :func:`~dasksom.cytometry.summaries.grouped_medians` (its error bound applies to each).

    Parameters
    ----------
    node, distance : dask arrays of shape (n,)
        Each cell's node and distance to it.
    n_nodes : int
    mad_allowed : float

    Returns
    -------
    ndarray of float64, shape (n_nodes,)
        inf for a node with no cell.
    """
    options = {"bins": bins, "passes": passes}
    median = grouped_medians(distance[:, None], node, n_nodes, **options)[:, 0]
    deviation = da.map_blocks(_deviation, node, distance, median, dtype=np.float64)
    mad = grouped_medians(deviation[:, None], node, n_nodes, **options)[:, 0]
    return np.where(np.isnan(median), np.inf, median + mad_allowed * MAD_SCALE * mad)


def _distances(block: np.ndarray, nodes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    return np.sqrt(((np.asarray(block) - weights[np.asarray(nodes)[:, 0]]) ** 2).sum(axis=1))


def _lookup(nodes: np.ndarray, table: np.ndarray) -> np.ndarray:
    return table[np.asarray(nodes)]


def _above(nodes: np.ndarray, distance: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    return np.asarray(distance) > thresholds[np.asarray(nodes)]


def _deviation(nodes: np.ndarray, distance: np.ndarray, median: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(distance) - median[np.asarray(nodes)])
