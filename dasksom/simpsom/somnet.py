"""simpsom's ``SOMNet`` interface, as a thin layer over the :class:`dasksom.SOM` engine.

Code written for simpsom runs with ``import dasksom as sps``: the constructor, ``train``,
``save_map``, ``find_bmu_ix``, ``project_onto_map``, ``cluster``, the ``plot_*`` methods and the
``nodes_list`` / ``polygons`` attributes keep simpsom's names and arguments.  Batch training is
the distributed engine; online training is :mod:`dasksom.simpsom.online`; plots are
:mod:`dasksom.simpsom.plots` and :mod:`dasksom.plotting`.  docs/simpsom.md lists every difference.

Node ``k`` of a ``SOMNet`` is node ``k`` of its :class:`~dasksom.SOM` (``k = row * width +
column``).  simpsom orders its nodes column by column instead; only its ``.npy`` files use that
order, and :meth:`SOMNet.save_map` and ``load_file`` convert.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask.array as da
import numpy as np

from dasksom.backends.arrays import to_host
from dasksom.backends.cuda import GPUUnavailableError
from dasksom.core.analysis import node_differences
from dasksom.core.initialization import INITS, initial_weights
from dasksom.core.lattice import Lattice
from dasksom.core.metrics import get_metric
from dasksom.core.neighborhood import get_neighborhood
from dasksom.core.precision import get_precision
from dasksom.estimator.som import SOM, check_data, load
from dasksom.io.atomic import atomic_file
from dasksom.io.simpsom_format import read_simpsom_map, write_simpsom_map
from dasksom.simpsom.online import train_online
from dasksom.training.gpu import to_device

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

logger = logging.getLogger("dasksom")

TRAIN_ALGOS = ("batch", "online")
EARLY_STOPS = ("mapdiff",)
# simpsom's epochs=-1: 10 epochs for batch training, 10 steps per sample for online training.
DEFAULT_BATCH_EPOCHS = 10
DEFAULT_ONLINE_STEPS_PER_SAMPLE = 10
# Half-width of the uniform jitter ``plot_projected_points(jitter=True)`` adds, as simpsom.
DEFAULT_JITTER = 0.15


class SOMNode:
    """One node of a :class:`SOMNet`, shaped as simpsom's nodes.

    Attributes
    ----------
    pos : ndarray of shape (2,)
        Position ``(x, y)`` of the node on the map (``Lattice.positions``).
    weights : ndarray of shape (n_features,)
        The node's weights: a view of a row of ``SOMNet.som.weights_``.
    difference : float or None
        Mean weight distance to the lattice neighbours, once
        :meth:`SOMNet.get_nodes_difference` has run.
    """

    __slots__ = ("pos", "weights", "difference")

    def __init__(self, pos: np.ndarray, weights: np.ndarray) -> None:
        self.pos = pos
        self.weights = weights
        self.difference: float | None = None

    def __repr__(self) -> str:
        return f"SOMNode(pos={self.pos.tolist()}, n_weights={self.weights.shape[0]})"


class SOMNet:
    """Self-Organizing Map with simpsom's interface, trained by the dasksom engine.

    Parameters
    ----------
    net_height, net_width : int
        Number of rows and columns of the map.
    data : numpy, dask or zarr array, path to a zarr array, or None
        Training data, ``(n_samples, n_features)``; kept as a row-chunked dask array and never
        gathered for batch training.  May be None when ``load_file`` is given (the map can then
        project and plot, but not train).
    load_file : str or None
        A map to start from: a simpsom ``.npy`` map (``.npy`` is appended when missing, as
        simpsom does) or a dasksom ``.npz`` map.  Its height, width and periodic boundaries
        (and, for ``.npz``, topology) override the constructor's.
    metric : {"euclidean", "cosine", "manhattan"}
    topology : {"hexagonal", "square"}
    neighborhood_fun : {"gaussian", "bubble", "mexican_hat"}
    init : {"random", "PCA", "sample"} or array
        ``"PCA"`` (any case) is the linear initialisation over the first two principal
        components (design.md 6).  An array is either the ``(M, n_features)`` starting
        weights or, as in simpsom, a pair ``[low, high]`` of vectors between which the
        weights are drawn uniformly (a ``(2, n_features)`` array on a map of more than two
        nodes).
    PBC : bool
        Periodic boundaries.  A hexagonal map with PBC needs an even height.
    GPU : bool
        Keep the data's chunks on the GPU as CuPy arrays for training.  Without CuPy a
        warning is given and training runs on the CPU, as in simpsom.
    random_seed : int or None
        Seeds the initialisation, then the online sample order and plot jitter.
    debug : bool
        Log one line per epoch while training (the engine's ``verbose``).
    output_path : str
        Folder that ``save_map``, ``project_onto_map``, ``cluster`` and the plots with
        ``print_out=True`` write into.
    precision : {"exact", "tf32", "bfloat16", "float16"}
        dasksom's own: rounding of the BMU search's product in batch training (see
        :class:`dasksom.SOM`); narrow formats let a GPU's tensor cores do the work.

    Attributes
    ----------
    som : SOM
        The fitted :class:`dasksom.SOM` behind the net; pass it to the functions of
        :mod:`dasksom.plotting`.  Before training it holds the initial weights.
    nodes_list : list of SOMNode
    polygons : type
        The tiling class, :class:`dasksom.plotting.Hexagons` or :class:`~dasksom.plotting.Squares`.
    convergence : list of float
        Mean absolute weight change of every epoch of the last training (every pass over the
        data for online training).
    height, width : int
    PBC : bool
    """

    def __init__(
        self,
        net_height: int,
        net_width: int,
        data: Any,
        load_file: str | os.PathLike | None = None,
        metric: str = "euclidean",
        topology: str = "hexagonal",
        neighborhood_fun: str = "gaussian",
        init: str | np.ndarray = "random",
        PBC: bool = False,
        GPU: bool = False,
        random_seed: int | None = None,
        debug: bool = False,
        output_path: str | os.PathLike = "./",
        precision: str = "exact",
    ) -> None:
        self.metric = _lower(metric, "metric")
        get_metric(self.metric)
        self.neighborhood_fun = _lower(neighborhood_fun, "neighborhood_fun")
        get_neighborhood(self.neighborhood_fun)
        self.init = _lower(init, "init") if isinstance(init, str) else np.asarray(to_host(init))
        if isinstance(self.init, str) and self.init not in INITS:
            raise ValueError(
                f"Unknown init {init!r}; choose one of {', '.join(INITS)} (any case), or pass "
                "an array of starting weights."
            )
        self.random_seed = random_seed
        self.precision = get_precision(precision).name
        self.GPU = bool(GPU)
        self.debug = bool(debug)
        self.output_path = output_path
        self.convergence: list[float] = []
        self._rng = np.random.default_rng(random_seed)
        self._nodes: list[SOMNode] | None = None
        self.data = None if data is None else self._training_data(data)

        if load_file is not None:
            lattice, weights = _load_map(load_file, _lower(topology, "topology"))
        elif self.data is None:
            raise ValueError("SOMNet needs data to initialise a map; pass data or a load_file.")
        else:
            lattice = Lattice(net_height, net_width, _lower(topology, "topology"), bool(PBC))
            weights = self._initial_weights(lattice, self.data)
        if self.data is not None and self.data.shape[1] != weights.shape[1]:
            raise ValueError(
                f"The map has {weights.shape[1]} weights per node but the data has "
                f"{self.data.shape[1]} features."
            )
        self._adopt(self._fitted_som(lattice, weights, weights, []))

    # -- the map ------------------------------------------------------------------------------

    @property
    def lattice(self) -> Lattice:
        return self.som.lattice_

    @property
    def height(self) -> int:
        return self.lattice.height

    @property
    def width(self) -> int:
        return self.lattice.width

    @property
    def PBC(self) -> bool:  # simpsom's name
        return self.lattice.pbc

    @property
    def topology(self) -> str:
        return self.lattice.topology

    @property
    def nodes_list(self) -> list[SOMNode]:
        """The nodes in dasksom order; each node's ``weights`` is a view of ``som.weights_``."""
        if self._nodes is None:
            positions, weights = self.lattice.positions, self.som.weights_
            self._nodes = [SOMNode(positions[k], weights[k]) for k in range(len(weights))]
        return self._nodes

    @property
    def polygons(self) -> type:
        from dasksom.plotting import tiling_for

        return tiling_for(self.lattice)

    def _training_data(self, data: Any) -> da.Array:
        array = check_data(data)
        if not self.GPU:
            return array
        try:
            return to_device(array)
        except GPUUnavailableError as error:
            # simpsom's meaning of GPU=True: use the GPU where there is one, else the CPU.
            warnings.warn(f"GPU=True, but {error} Training runs on the CPU.", stacklevel=3)
            self.GPU = False
            return array

    def _initial_weights(self, lattice: Lattice, data: da.Array) -> np.ndarray:
        init = self.init
        n_features = data.shape[1]
        if isinstance(init, np.ndarray) and init.shape == (2, n_features) and lattice.n_nodes != 2:
            low, high = init.astype(np.float64)
            return low + (high - low) * self._rng.random((lattice.n_nodes, n_features))
        return initial_weights(data, lattice, init, self._rng)

    def _make_som(
        self,
        lattice: Lattice,
        init: np.ndarray,
        epochs: int = DEFAULT_BATCH_EPOCHS,
        tol: float | None = None,
        n_iter_no_change: int = 3,
    ) -> SOM:
        return SOM(
            lattice.height,
            lattice.width,
            topology=lattice.topology,
            pbc=lattice.pbc,
            metric=self.metric,
            neighborhood=self.neighborhood_fun,
            init=init,
            epochs=epochs,
            random_state=self.random_seed,
            tol=tol,
            n_iter_no_change=n_iter_no_change,
            verbose=self.debug,
            precision=self.precision,
        )

    def _fitted_som(
        self, lattice: Lattice, init: np.ndarray, weights: np.ndarray, history: list[dict]
    ) -> SOM:
        """A SOM holding ``weights``, for maps that did not come out of ``SOM.fit``."""
        params = self._make_som(lattice, init).get_params()
        return SOM.from_weights(weights, lattice, history, **params)

    def _adopt(self, som: SOM) -> None:
        self.som = som
        self._nodes = None
        self.convergence = [float(h["map_difference"]) for h in som.history_]

    # -- training -----------------------------------------------------------------------------

    def train(
        self,
        train_algo: str = "batch",
        epochs: int = -1,
        start_learning_rate: float = 0.01,
        early_stop: str | None = None,
        early_stop_patience: int = 3,
        early_stop_tolerance: float = 1e-4,
        batch_size: int = -1,
    ) -> None:
        """Train the map from its current weights.

        Parameters
        ----------
        train_algo : {"batch", "online"}
            ``"batch"`` runs the distributed batch engine (:class:`dasksom.SOM`) on the data
            wherever it lives.  ``"online"`` is the classic one-sample-at-a-time Kohonen
            update of :mod:`dasksom.simpsom.online`; it loads the data into memory.
        epochs : int
            Batch: number of passes over the data, ``-1`` meaning 10.  Online, as in simpsom:
            number of single-sample steps, ``-1`` meaning 10 times the number of samples.
        start_learning_rate : float
            Online only: the learning rate of the first step, decaying as
            ``lr0 * exp(-t / epochs)``.  The batch update has no learning rate.
        early_stop : {None, "mapdiff"}
            ``"mapdiff"`` stops once the mean absolute weight change of an epoch (of a pass
            over the data, online) has stayed below ``early_stop_tolerance`` for
            ``early_stop_patience`` epochs in a row.
        early_stop_patience : int
        early_stop_tolerance : float
        batch_size : int
            Accepted for compatibility and ignored: the engine bounds memory by the data's
            row chunks (see :class:`dasksom.SOM`'s ``chunks``), not by a batch size.
        """
        _check_training(
            train_algo, epochs, early_stop, early_stop_patience, early_stop_tolerance, batch_size
        )
        if self.data is None:
            raise ValueError("This SOMNet has no data to train on; pass data to the constructor.")
        tol = early_stop_tolerance if early_stop else None
        logger.info("Training the map with the %s algorithm.", train_algo)
        if train_algo == "batch":
            batch_epochs = DEFAULT_BATCH_EPOCHS if epochs == -1 else epochs
            som = self._make_som(
                self.lattice, self.som.weights_, batch_epochs, tol, early_stop_patience
            )
            self._adopt(som.fit(self.data))
            return
        self._train_online(self.data, epochs, start_learning_rate, tol, early_stop_patience)

    def _train_online(
        self,
        data_array: da.Array,
        epochs: int,
        start_learning_rate: float,
        tol: float | None,
        patience: int,
    ) -> None:
        if not start_learning_rate > 0:
            raise ValueError(
                f"start_learning_rate must be a positive number, got {start_learning_rate!r}."
            )
        start = self.som.weights_
        data = to_host(data_array.compute())
        steps = DEFAULT_ONLINE_STEPS_PER_SAMPLE * len(data) if epochs == -1 else epochs
        weights, history = train_online(
            data,
            start,
            self.lattice,
            steps=steps,
            start_learning_rate=start_learning_rate,
            metric=self.metric,
            neighborhood=self.neighborhood_fun,
            rng=self._rng,
            tol=tol,
            n_iter_no_change=patience,
        )
        self._adopt(self._fitted_som(self.lattice, start, weights, history))

    # -- files --------------------------------------------------------------------------------

    def save_map(self, file_name: str | os.PathLike = "trained_som.npy") -> Path:
        """Write the map in simpsom's ``.npy`` layout into ``output_path``.

        The file is a plain float64 array (no pickle) that simpsom's ``SOMNet(load_file=...)``
        and this class both read: three header rows (height, width and PBC, each repeated
        across the row) and then one row of weights per node, in simpsom's node order.  The
        topology is not stored (simpsom's format has no place for it).  Use
        ``net.som.save(...)`` for a dasksom ``.npz`` map with every setting and the history.

        Returns
        -------
        Path of the written file (``.npy`` appended when missing).
        """
        path = _output_file(self.output_path, file_name, ".npy")
        write_simpsom_map(path, self.lattice, self.som.weights_)
        logger.info("Map shape and weights saved to %s", path)
        return path

    # -- projections --------------------------------------------------------------------------

    def find_bmu_ix(self, vecs: Any) -> np.ndarray:
        """Index in ``nodes_list`` of the best-matching unit of every vector.

        Parameters
        ----------
        vecs : array-like of shape (n, n_features), a single vector, or a dask / zarr array

        Returns
        -------
        ndarray of shape (n,), int64
        """
        if isinstance(vecs, list | tuple | np.ndarray):
            vecs = np.asarray(vecs)
            if vecs.ndim == 1:
                vecs = vecs[None]
        return self.som.best_matching_units(vecs)

    def project_onto_map(
        self, array: Any, file_name: str | os.PathLike | None = "./som_projected.npy"
    ) -> np.ndarray:
        """Position on the map of every sample's best-matching unit.

        Parameters
        ----------
        array : array-like of shape (n, n_features), or a dask / zarr array
        file_name : str or None
            Where in ``output_path`` to save the positions (``.npy``); None saves nothing.

        Returns
        -------
        ndarray of shape (n, 2), the ``pos`` of each sample's best-matching node
        """
        positions = self.lattice.positions[self.find_bmu_ix(array)]
        if file_name is not None:
            path = _save_npy(self.output_path, file_name, positions)
            logger.info("Projected coordinates saved to %s", path)
        return positions

    def _get(self, data: Any) -> np.ndarray:
        """``data`` as a host NumPy array (simpsom's helper; CuPy arrays are copied over)."""
        return to_host(data.compute() if isinstance(data, da.Array) else data)

    def get_nodes_difference(self) -> np.ndarray:
        """Mean weight distance of every node to its lattice neighbours (the U-matrix).

        Periodic boundaries are honoured.  Sets each node's ``difference`` and returns the
        values in node order, shape ``(M,)``.
        """
        values = np.asarray(node_differences(self.som.weights_, self.lattice), dtype=float)
        for node, value in zip(self.nodes_list, values, strict=True):
            node.difference = float(value)
        return values

    def cluster(
        self,
        coor: Any,
        project: bool = True,
        algorithm: Any = "KMeans",
        file_name: str | os.PathLike | None = "./som_clusters.npy",
        **kwargs: Any,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cluster samples by their position on the map, or any points, with scikit-learn.

        Parameters
        ----------
        coor : array-like
            Samples to project onto the map (``project=True``), or points to cluster as they
            are (``project=False``), e.g. map positions from :meth:`project_onto_map` or the
            node weights ``net.som.weights_``.
        project : bool
        algorithm : str, estimator class or estimator
            The name of a class of :mod:`sklearn.cluster` (``"KMeans"``, ``"DBSCAN"``, ...),
            or a scikit-learn style class or instance with ``fit``.
        file_name : str or None
            Where in ``output_path`` to save the labels (``.npy``); None saves nothing.
        **kwargs
            Settings for the algorithm's constructor.

        Returns
        -------
        labels : ndarray of shape (n,)
        points : ndarray, the points that were clustered
        """
        estimator = _clustering_estimator(algorithm, kwargs)
        if project:
            # As simpsom: the projected positions are kept beside the labels.
            points = self.project_onto_map(coor, file_name=f"som_projected_{_name_of(algorithm)}")
        else:
            points = self._get(coor)
        if project and self.PBC:
            warnings.warn(
                "The map has periodic boundaries but its positions are clustered with plain "
                "distances: clusters that cross the seam are split.",
                stacklevel=2,
            )
        if hasattr(estimator, "fit_predict"):
            labels = estimator.fit_predict(points)
        else:
            labels = estimator.fit(points).labels_
        labels = np.asarray(labels)
        if file_name is not None:
            path = _save_npy(self.output_path, file_name, labels)
            logger.info("Clustering results saved to %s", path)
        return labels, points

    def explore(
        self,
        data: Any = None,
        labels: Any = None,
        file_name: str | os.PathLike = "explorer.html",
        *,
        clusters: Any = None,
        feature_shape: tuple[int, int] | None = None,
    ) -> Path:
        """Write the interactive explorer of the map: one self-contained HTML file.

        dasksom's own (simpsom has no explorer); needs ``pip install 'dasksom[explore]'``.

        Parameters
        ----------
        data : array-like or dask array, default=None
            The rows to summarise per node (hits, QE, labels, sampled row ids), read chunk by
            chunk; None: the training data, when the map has it.
        labels : array-like of shape (n_samples,), default=None
            One label per row.
        file_name : str or os.PathLike, default="explorer.html"
            The file, inside ``output_path`` unless absolute.
        clusters : array-like of shape (M,), default=None
            A cluster per node (e.g. :meth:`cluster` of the node weights), shown as a layer.
        feature_shape : tuple of int, default=None
            ``(height, width)`` of a row as an image (28x28 for MNIST).

        Returns
        -------
        pathlib.Path
            The file written.
        """
        from dasksom.explorer import explore

        rows = self.data if data is None else data
        path = Path(self.output_path) / file_name
        return explore(
            self.som,
            rows,
            None if labels is None else np.asarray(labels),
            path,
            clusters=None if clusters is None else np.asarray(clusters),
            feature_shape=feature_shape,
        )

    # -- plots (drawing lives in dasksom.simpsom.plots) -----------------------------------

    def _plot_file(self, kwargs: dict, default: str) -> None:
        kwargs.setdefault("file_name", os.path.join(self.output_path, default))

    def plot_map_by_feature(
        self,
        feature: int | None = None,
        feature_ix: int | None = None,
        show: bool = True,
        print_out: bool = False,
        **kwargs: Any,
    ) -> tuple[Figure, Axes]:
        """Colour every node by one of its weights.

        Parameters
        ----------
        feature, feature_ix : int
            Index of the feature; give one of the two (``feature_ix`` is simpsom's name).
        show, print_out : bool
            Show the figure; save it to ``file_name`` (default
            ``output_path/som_feature_<index>.png``).
        **kwargs
            Passed to :func:`dasksom.simpsom.plots.plot_map` (``cmap``, ``title``, ``cbar_label``,
            ``figsize``, ``file_name`` ...).

        Returns
        -------
        (fig, ax)
        """
        from dasksom.simpsom.plots import plot_map

        index = _feature_index(feature, feature_ix, self.som.weights_.shape[1])
        self._plot_file(kwargs, f"som_feature_{index}.png")
        return plot_map(
            self.lattice.positions,
            self.som.weights_[:, index],
            self.polygons,
            show=show,
            print_out=print_out,
            **kwargs,
        )

    def plot_map_by_difference(
        self, show: bool = True, print_out: bool = False, **kwargs: Any
    ) -> tuple[Figure, Axes]:
        """Colour every node by its mean weight distance to its neighbours (U-matrix).

        Saved to ``output_path/som_difference.png`` by default when ``print_out``; other
        keyword arguments go to :func:`dasksom.simpsom.plots.plot_map`.  Returns ``(fig, ax)``.
        """
        from dasksom.simpsom.plots import plot_map

        self._plot_file(kwargs, "som_difference.png")
        kwargs.setdefault("cbar_label", "Nodes difference value")
        return plot_map(
            self.lattice.positions,
            self.get_nodes_difference(),
            self.polygons,
            show=show,
            print_out=print_out,
            **kwargs,
        )

    def plot_convergence(
        self, show: bool = True, print_out: bool = False, **kwargs: Any
    ) -> tuple[Figure, Axes]:
        """Line plot of :attr:`convergence`, the weight change of every epoch.

        Saved to ``output_path/som_convergence.png`` by default when ``print_out``; other
        keyword arguments go to :func:`dasksom.simpsom.plots.line_plot`.  Returns ``(fig, ax)``.
        """
        from dasksom.simpsom.plots import line_plot

        if not self.convergence:
            raise RuntimeError("The map has not been trained yet: there is no convergence to plot.")
        self._plot_file(kwargs, "som_convergence.png")
        kwargs.setdefault("title", "Convergence")
        kwargs.setdefault("xlabel", "Iteration")
        kwargs.setdefault("ylabel", "Score")
        return line_plot(self.convergence, show=show, print_out=print_out, **kwargs)

    def plot_projected_points(
        self,
        coor: Any,
        color_val: Any = None,
        project: bool = True,
        jitter: bool | float = True,
        show: bool = True,
        print_out: bool = False,
        **kwargs: Any,
    ) -> tuple[Figure, Axes]:
        """Scatter samples (or map positions) over the map.

        Parameters
        ----------
        coor : array-like
            Samples to project (``project=True``) or positions ``(n, 2)`` on the map.
        color_val : array-like of shape (M,) or None
            Values to colour the nodes by; None leaves them blank.
        project : bool
        jitter : bool or float
            Spread overlapping points by a uniform offset of up to ``0.15`` (``True``) or the
            given half-width, drawn from the net's generator.
        show, print_out : bool
            Show the figure; save it to ``file_name`` (default
            ``output_path/som_projected.png``).
        **kwargs
            Passed to :func:`dasksom.simpsom.plots.scatter_on_map`.

        Returns
        -------
        (fig, ax)
        """
        from dasksom.simpsom.plots import scatter_on_map

        points = self._map_points(coor, project, jitter)
        self._plot_file(kwargs, "som_projected.png")
        return scatter_on_map(
            [points],
            self.lattice.positions,
            self.polygons,
            color_val=color_val,
            show=show,
            print_out=print_out,
            **kwargs,
        )

    def plot_clusters(
        self,
        coor: Any,
        clusters: Any,
        color_val: Any = None,
        project: bool = False,
        jitter: bool | float = False,
        show: bool = True,
        print_out: bool = False,
        **kwargs: Any,
    ) -> tuple[Figure, Axes]:
        """Scatter points over the map, one colour per cluster (see :meth:`cluster`).

        Parameters are those of :meth:`plot_projected_points`, plus ``clusters``, the label of
        every point; groups are drawn in sorted label order.  Saved to
        ``output_path/som_clusters.png`` by default when ``print_out``.  Returns ``(fig, ax)``.
        """
        from dasksom.simpsom.plots import scatter_on_map

        points = self._map_points(coor, project, jitter)
        clusters = np.asarray(clusters)
        if clusters.shape != (len(points),):
            raise ValueError(
                f"clusters has shape {clusters.shape} but there are {len(points)} points; "
                "pass one label per point."
            )
        self._plot_file(kwargs, "som_clusters.png")
        return scatter_on_map(
            [points[clusters == label] for label in np.unique(clusters)],
            self.lattice.positions,
            self.polygons,
            color_val=color_val,
            show=show,
            print_out=print_out,
            **kwargs,
        )

    def _map_points(self, coor: Any, project: bool, jitter: bool | float) -> np.ndarray:
        if project:
            points = self.project_onto_map(coor, file_name=None)
        else:
            points = np.asarray(coor, dtype=float).reshape(-1, 2)
        amplitude = DEFAULT_JITTER if jitter is True else float(jitter)
        if amplitude:
            points = points + self._rng.uniform(-amplitude, amplitude, size=points.shape)
        return points


def _load_map(load_file: str | os.PathLike, topology: str) -> tuple[Lattice, np.ndarray]:
    name = os.fspath(load_file)
    if name.endswith(".npz"):
        som = load(name)
        return som.lattice_, som.weights_
    if not name.endswith(".npy"):
        name += ".npy"
    height, width, pbc, weights = read_simpsom_map(name)
    return Lattice(height, width, topology, pbc), weights


# -- argument checks ----------------------------------------------------------------------------


def _check_training(
    train_algo: str,
    epochs: int,
    early_stop: str | None,
    early_stop_patience: int,
    early_stop_tolerance: float,
    batch_size: int,
) -> None:
    """``SOMNet.train``'s arguments, checked before any work."""
    if train_algo not in TRAIN_ALGOS:
        raise ValueError(
            f"Unknown train_algo {train_algo!r}; choose one of {', '.join(TRAIN_ALGOS)}."
        )
    _check_count(epochs, "epochs", allow_default=True)
    _check_count(early_stop_patience, "early_stop_patience")
    _check_count(batch_size, "batch_size", allow_default=True)
    if early_stop is not None and early_stop not in EARLY_STOPS:
        raise ValueError(f"Unknown early_stop {early_stop!r}; choose None or 'mapdiff'.")
    if not early_stop_tolerance >= 0:
        raise ValueError(
            f"early_stop_tolerance must be a non-negative number, got {early_stop_tolerance!r}."
        )


def _lower(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}.")
    return value.lower()


def _check_count(value: Any, name: str, allow_default: bool = False) -> None:
    """A positive integer, or -1 (simpsom's "default") where ``allow_default``."""
    ok = not isinstance(value, bool) and isinstance(value, int | np.integer)
    if ok and (value >= 1 or (allow_default and value == -1)):
        return
    allowed = "a positive integer or -1" if allow_default else "a positive integer"
    raise ValueError(f"{name} must be {allowed}, got {value!r}.")


def _feature_index(feature: Any, feature_ix: Any, n_features: int) -> int:
    if feature is None and feature_ix is None:
        raise ValueError("Give the feature to plot: feature=<index> (or simpsom's feature_ix).")
    if feature is not None and feature_ix is not None and feature != feature_ix:
        raise ValueError(f"feature={feature!r} and feature_ix={feature_ix!r} disagree; give one.")
    index = feature if feature is not None else feature_ix
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise ValueError(f"The feature must be an integer index, got {index!r}.")
    if not -n_features <= index < n_features:
        raise ValueError(f"Feature index {index} is out of range for {n_features} features.")
    return int(index) % n_features


def _save_npy(folder: str | os.PathLike, file_name: str | os.PathLike, values: np.ndarray) -> Path:
    path = _output_file(folder, file_name, ".npy")
    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, values, allow_pickle=False)
    return path


def _name_of(algorithm: Any) -> str:
    if isinstance(algorithm, str):
        return algorithm
    return algorithm.__name__ if isinstance(algorithm, type) else type(algorithm).__name__


def _output_file(folder: str | os.PathLike, file_name: str | os.PathLike, suffix: str) -> Path:
    name = os.fspath(file_name)
    if not name.endswith(suffix):
        name += suffix
    return Path(folder) / name


def _clustering_estimator(algorithm: Any, kwargs: dict) -> Any:
    if isinstance(algorithm, str):
        from sklearn import cluster

        found = getattr(cluster, algorithm, None)
        if not (isinstance(found, type) and hasattr(found, "fit")):
            raise ValueError(
                f"Unknown clustering algorithm {algorithm!r}: give the name of a class of "
                "sklearn.cluster (e.g. 'KMeans', 'DBSCAN', 'AgglomerativeClustering') or an "
                "estimator with a fit method."
            )
        return found(**kwargs)
    if isinstance(algorithm, type):
        estimator = algorithm(**kwargs)
    elif kwargs:
        raise ValueError(
            "Settings were given as keyword arguments for an estimator instance; set them on "
            "the instance, or pass its class."
        )
    else:
        estimator = algorithm
    if not callable(getattr(estimator, "fit", None)):
        raise ValueError(f"{algorithm!r} has no fit method; pass a scikit-learn style estimator.")
    return estimator


__all__ = ["SOMNet", "SOMNode"]
