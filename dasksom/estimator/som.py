"""``dasksom.SOM``: the scikit-learn style estimator over the distributed engine."""

from __future__ import annotations

import functools
import inspect
import logging
import numbers
import os
import sys
from collections.abc import Callable
from typing import Any

import dask
import dask.array as da
import numpy as np

from dasksom.backends.arrays import array_module, compute_dtype, to_host
from dasksom.backends.devices import DEVICES, Device
from dasksom.core.bmu_search import BMU_SEARCHES, plan_for_weights
from dasksom.core.chunk_tasks import (
    evaluate_chunk,
    nearest_chunk,
    predict_chunk,
    transform_chunk,
)
from dasksom.core.initialization import INITS, check_init_array, initial_weights
from dasksom.core.lattice import TOPOLOGIES, Lattice
from dasksom.core.metrics import METRICS, get_metric
from dasksom.core.missing import NAN_POLICIES
from dasksom.core.neighborhood import NEIGHBORHOODS
from dasksom.core.precision import PRECISIONS
from dasksom.core.pruned import PrunedIndex
from dasksom.core.schedule import DECAYS, radius_schedule
from dasksom.estimator.params import (
    PATH,
    ArrayLike,
    InstanceOf,
    Interval,
    NoneValue,
    Options,
    PositivePair,
    StrictBool,
    validate_params,
)
from dasksom.io.map_file import existing_map, read_map, read_metadata, write_map
from dasksom.io.sources import as_dask_array
from dasksom.io.storage import first_row
from dasksom.training import engine
from dasksom.training.checkpoints import changed_settings, check_fingerprint, data_fingerprint
from dasksom.training.search_plans import SearchPlanner, warm_up_search

logger = logging.getLogger("dasksom")

# Copies of the M x D weights that a fit holds at once (weights, sums, smoothed, update).
WEIGHT_COPIES = 4


def check_data(X: Any, chunks: int | str = "auto", n_features: int | None = None) -> da.Array:
    """``X`` as a row-chunked dask array, refused with a clear message if a SOM cannot use it.

    Parameters
    ----------
    X : array-like, dask array, zarr array, DataFrame, xarray or path
        Any source :func:`dasksom.io.as_dask_array` takes.
    chunks : int or str, default="auto"
        Rows per chunk, a size such as ``"64MiB"``, or ``"auto"``.
    n_features : int or None, default=None
        The feature count the data must have (that of a fitted map); None accepts any.

    Returns
    -------
    dask.array.Array of shape (n_samples, n_features)
        In-memory rows are scattered to the workers of the default ``distributed`` client.
    """
    rows = _in_memory_as_array(X)
    return _on_workers(rows, _checked_array(rows, chunks, n_features))


def _checked_array(rows: Any, chunks: int | str, n_features: int | None) -> da.Array:
    """``rows`` as a dask array, checked as :func:`check_data` says; nothing is read or moved."""
    data = as_dask_array(rows, chunks=chunks)
    if data.ndim != 2:
        raise ValueError(
            f"Expected 2-D data (samples x features), got {data.ndim}-D data of shape "
            f"{data.shape}. Reshape your data, e.g. X.reshape(len(X), -1), or X.reshape(1, -1) "
            "for a single sample."
        )
    kind = np.dtype(data.dtype).kind
    if kind not in "biuf":
        what = "Complex data not supported" if kind == "c" else "Data must be numeric"
        raise ValueError(f"{what}: got dtype {data.dtype}; convert it, e.g. X.astype('float32').")
    n_rows, found = data.shape
    if n_rows == 0:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={data.shape}) while a minimum of 1 is "
            "required: a SOM needs at least one sample."
        )
    if found == 0:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={data.shape}) while a minimum of 1 is "
            "required: each sample needs at least one value."
        )
    if n_features is not None and found != n_features:
        raise ValueError(
            f"X has {found} features, but SOM is expecting {n_features} features as input (the "
            "map was fitted on that many); pass data with the same columns."
        )
    return data


def _on_workers(rows: Any, data: da.Array) -> da.Array:
    """``data`` with in-memory rows scattered to the workers of the default client, if any,
    rather than embedded in every graph that uses them."""
    client = engine.distributed_client()
    if client is not None and isinstance(rows, np.ndarray) and rows.ndim == 2:
        return engine.scatter_rows(rows, data, client)
    return data


def _in_memory_as_array(X: Any) -> Any:
    """Sparse matrices refused; object arrays and array-likes without a shape made numeric."""
    if type(X).__module__.startswith("scipy.sparse"):
        raise ValueError(
            "Sparse input is not supported: a SOM's weights are dense, and so is its search. "
            "Convert it with X.toarray(), or store it densely (e.g. as zarr)."
        )
    if isinstance(X, np.ndarray) and X.dtype == object:
        try:
            return X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise NonNumericDataError(
                f"Data must be numeric; this object array holds values that are not numbers "
                f"({exc}). Convert it, e.g. X.astype('float32')."
            ) from None
    if not hasattr(X, "shape") and hasattr(X, "__array__"):
        return np.asarray(X)
    return X


class NonNumericDataError(ValueError, TypeError):
    """The data holds values that are not numbers (a ``TypeError`` too, as numpy's own)."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted map was called before ``fit``.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn's own ``NotFittedError``.
    """


class SOM:
    """Batch Self-Organizing Map trained over a chunked dask array.

    A scikit-learn style clusterer (``get_params``, ``set_params``, ``fit``, ``predict``,
    ``fit_predict``, ``transform``, ``score``; ``sklearn.base.clone`` and
    ``sklearn.base.is_clusterer`` work on it) that does not import scikit-learn, so that dask
    workers, which import this package to run the kernels, stay light.  Parameters are checked
    against ``_parameter_constraints`` when ``fit`` starts, before any data is read.

    Parameters
    ----------
    height, width : int, default=10
        Map size; the map has ``M = height * width`` nodes, node ``k = r * width + c``.
    topology : {"hexagonal", "square"}, default="hexagonal"
        Tiling of the lattice (design.md section 1).
    pbc : bool, default=False
        Periodic boundaries (a torus).  A hexagonal torus needs an even ``height``.
    metric : {"euclidean", "cosine", "manhattan"}, default="euclidean"
        Distance used to find best-matching units.
    neighborhood : {"gaussian", "bubble", "mexican_hat"}, default="gaussian"
        Neighbourhood function ``h`` of the update (design.md section 2).
    init : {"random", "sample", "pca"} or array of shape (M, n_features), default="random"
        Starting weights: uniform within the data's range, distinct sampled rows, the plane
        of the two leading principal components (computed out of core), or given weights
        (checked for shape and finite values before any data is read).
    epochs : int, default=10
        Number of batch epochs.
    sigma : None, float or (float, float), default=None
        Neighbourhood radius schedule; see :func:`dasksom.core.schedule.radius_schedule`.
        ``None`` is simpsom's default, from ``max(height, width) / 2`` down.
    random_state : None, int or numpy Generator, default=None
        Seed of the ``random`` and ``sample`` initialisations.
    sigma_decay : {"exponential", "linear"}, default="exponential"
        Decay between an explicit ``(start, end)`` sigma pair.
    tol : float or None, default=None
        Stop early once the mean absolute weight change stays below ``tol`` for
        ``n_iter_no_change`` epochs.  ``None`` always runs every epoch.
    n_iter_no_change : int, default=3
        Epochs in a row below ``tol`` before training stops.
    chunks : int, str or "auto", default="auto"
        Rows per chunk for numpy input (and a new row chunking for dask input when an int), or a
        size such as ``"64MiB"``.
    persist : "auto" or bool, default="auto"
        Keep the data in (worker) memory between epochs; ``"auto"`` does so when it fits in half
        of the memory available, and otherwise streams it from its source every epoch.
    verbose : bool, default=False
        Log one line per epoch at INFO level on the ``dasksom`` logger (and show it).
    checkpoint : str, path or None, default=None
        Write the map to this file (dasksom's ``.npz`` format) after every epoch.  When the file
        already exists, was written with the same settings and for the same data (shape, dtype
        and a hash of sampled rows), ``fit`` resumes from it: a killed job rerun with the same
        command carries on where it stopped and ends with the same map.  A checkpoint written
        for other settings or other data is refused with a message saying what differs.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"raise"``: NaN or inf in the data is an error that names the count and the first
        place.  ``"ignore"``: NaN marks a missing value; each row's best-matching unit is found
        over its observed features, every metric supported, and the update counts each
        feature over the rows that observe it (``W[k, d] = sum_j h_kj S_jd / sum_j h_kj
        n_jd``).  Rows with no observed value are counted (``history_``, :meth:`quality`) and
        never assigned (:meth:`predict` gives them -1).  inf is an error under both.
    device : {"cpu", "gpu"}, default="cpu"
        ``"gpu"`` moves every chunk to the GPU as a CuPy array
        (:func:`dasksom.training.gpu.to_device`) and the same kernels run there; a clear error
        says what is missing when CuPy or a GPU is not.  Chunks that already are CuPy arrays
        run on the GPU with ``"cpu"`` too.
    precision : {"exact", "tf32", "bfloat16", "float16"}, default="exact"
        Rounding of the operands of the BMU search's product during training
        (:mod:`dasksom.core.precision`): ``"exact"`` multiplies in the data's compute type; the
        others round both operands to TF32, bfloat16 or float16 and accumulate in float32,
        which GPU tensor cores run several times faster.  Only the choice of BMU is affected:
        sums, distances, predictions and quality measures stay exact.  On CPUs the narrow
        formats are emulated (same rounding, no speed-up).  Product metrics only (euclidean,
        cosine); float16 refuses values above 65504.
    bmu_search : {"auto", "brute", "pruned"}, default="auto"
        How the best-matching units are found (:mod:`dasksom.core.bmu_search`): ``"brute"``
        computes every row-to-node distance; ``"pruned"`` bounds them all with a product on
        the data's top principal axes and computes only those that can win, exactly (the same
        BMUs but between nodes at equal distance within rounding); ``"auto"`` prunes where a
        sample of the data shows it costs less, re-deciding as the radius shrinks, and
        searches by brute force otherwise (low dimensions, small maps, data without
        low-dimensional structure, missing values, a narrow ``precision``).  The map is the
        same either way; only the time differs.

    Attributes
    ----------
    weights_ : ndarray of shape (M, n_features)
    positions_ : ndarray of shape (M, 2)
    history_ : list of dict, one per epoch (``sigma``, ``quantization_error``, ``seconds`` ...)
    lattice_ : Lattice
    n_features_in_ : int
    feature_names_in_ : ndarray of str, only when fitted on data with string column names
    n_iter_ : int, epochs run
    search_plan_ : SearchPlan, only after fit: the BMU search of the last epoch, which
        predict, evaluate and score reuse
    search_warm_up_seconds_ : float, only after a fit that may prune on CPUs: seconds spent
        compiling (or loading from numba's cache) the pruned search's kernel before the first
        epoch, on the slowest process
    warm_up_seconds_ : float, only after a fit on GPU chunks: seconds spent compiling (or
        loading from CuPy's cache) the kernels before the first epoch, on the slowest worker
    """

    def __init__(
        self,
        height: int = 10,
        width: int = 10,
        *,
        topology: str = "hexagonal",
        pbc: bool = False,
        metric: str = "euclidean",
        neighborhood: str = "gaussian",
        init: str | Any = "random",
        epochs: int = 10,
        sigma: float | tuple[float, float] | None = None,
        random_state: int | np.random.Generator | None = None,
        sigma_decay: str = "exponential",
        tol: float | None = None,
        n_iter_no_change: int = 3,
        chunks: int | str = "auto",
        persist: bool | str = "auto",
        verbose: bool = False,
        checkpoint: str | os.PathLike | None = None,
        nan_policy: str = "raise",
        device: Device = "cpu",
        precision: str = "exact",
        bmu_search: str = "auto",
    ) -> None:
        self.height = height
        self.width = width
        self.topology = topology
        self.pbc = pbc
        self.metric = metric
        self.neighborhood = neighborhood
        self.init = init
        self.epochs = epochs
        self.sigma = sigma
        self.random_state = random_state
        self.sigma_decay = sigma_decay
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.chunks = chunks
        self.persist = persist
        self.verbose = verbose
        self.checkpoint = checkpoint
        self.nan_policy = nan_policy
        self.device = device
        self.precision = precision
        self.bmu_search = bmu_search

    _estimator_type = "clusterer"

    # Every constructor parameter and the kinds of value it takes (any one suffices).
    _parameter_constraints: dict = {
        "height": [Interval(numbers.Integral, 1)],
        "width": [Interval(numbers.Integral, 1)],
        "topology": [Options(TOPOLOGIES)],
        "pbc": [StrictBool()],
        "metric": [Options(METRICS)],
        "neighborhood": [Options(NEIGHBORHOODS)],
        "init": [Options(INITS), ArrayLike()],
        "epochs": [Interval(numbers.Integral, 1)],
        "sigma": [NoneValue(), Interval(numbers.Real, 0, closed="neither"), PositivePair()],
        "random_state": [
            NoneValue(),
            Interval(numbers.Integral, 0),
            InstanceOf((np.random.Generator,), "a numpy Generator"),
        ],
        "sigma_decay": [Options(DECAYS)],
        "tol": [NoneValue(), Interval(numbers.Real, 0)],
        "n_iter_no_change": [Interval(numbers.Integral, 1)],
        "chunks": [Interval(numbers.Integral, 1), InstanceOf((str,), "'auto' or a size")],
        "persist": [Options(("auto",)), StrictBool()],
        "verbose": [StrictBool()],
        "checkpoint": [NoneValue(), PATH],
        "nan_policy": [Options(NAN_POLICIES)],
        "device": [Options(DEVICES)],
        "precision": [Options(PRECISIONS)],
        "bmu_search": [Options(BMU_SEARCHES)],
    }

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(name for name in signature.parameters if name != "self")

    @classmethod
    def _defaults(cls) -> dict[str, Any]:
        """Each constructor parameter's default."""
        parameters = inspect.signature(cls.__init__).parameters
        return {name: parameters[name].default for name in cls._get_param_names()}

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> SOM:
        """Set constructor parameters, as scikit-learn's ``set_params``; returns self."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for SOM; valid parameters: {', '.join(valid)}."
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = self._defaults()
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if not isinstance(value, np.ndarray)
            and value != defaults[name]
            or isinstance(value, np.ndarray)
        ]
        return f"SOM({', '.join(changed)})"

    def _validate_params(self, n_features: int | None = None) -> Lattice:
        """Check every parameter (see ``_parameter_constraints``); returns the lattice."""
        validate_params("SOM", self.get_params(), self._parameter_constraints)
        if isinstance(self.chunks, str) and self.chunks != "auto":
            _check_chunk_size(self.chunks)
        if self.precision != "exact" and not get_metric(self.metric).uses_product:
            raise ValueError(
                f"precision={self.precision!r} rounds the operands of a product, and "
                f"metric={self.metric!r} computes none; use precision='exact' with it, or a "
                "product metric (euclidean, cosine)."
            )
        if self.bmu_search == "pruned" and (self.nan_policy, self.precision) != ("raise", "exact"):
            raise ValueError(
                "bmu_search='pruned' needs complete rows and the exact product; with "
                f"nan_policy={self.nan_policy!r} and precision={self.precision!r} use "
                "bmu_search='auto' (which then searches by brute force) or 'brute'."
            )
        lattice = Lattice(int(self.height), int(self.width), self.topology, bool(self.pbc))
        if n_features is not None:
            _check_map_fits_memory(lattice, n_features)
        return lattice

    def _input(self, X: Any, fitted: bool) -> tuple[Any, da.Array]:
        """``X`` checked (:func:`check_data`) as ``(in-memory rows or X, dask array)``, before
        any row is read or moved."""
        rows = _in_memory_as_array(X)
        return rows, _checked_array(rows, self.chunks, self.n_features_in_ if fitted else None)

    def _place(self, rows: Any, data: da.Array) -> da.Array:
        """The checked data where it is computed: scattered to the workers, and on the GPU
        with ``device="gpu"``."""
        data = _on_workers(rows, data)
        if self.device == "gpu":
            from dasksom.training.gpu import to_device

            data = to_device(data)
        return data

    def fit(self, X: Any, y: Any = None) -> SOM:
        """Train the map on ``X``.

        Settings, an ``init`` array and a checkpoint are all checked before the data is read.

        Parameters
        ----------
        X : array-like, dask array, zarr array, DataFrame, xarray or path
            Samples in rows; anything :func:`dasksom.io.as_dask_array` reads.
        y : None, default=None
            Ignored; present for scikit-learn's API.

        Returns
        -------
        SOM
            ``self``, fitted.
        """
        self._validate_params()
        rows, data = self._input(X, fitted=False)
        lattice = self._validate_params(n_features=data.shape[1])
        sigmas = radius_schedule(self.height, self.width, self.epochs, self.sigma, self.sigma_decay)
        check_init_array(self.init, lattice, data.shape[1])
        state, fingerprint = self._resumed_state(lattice, sigmas, data, X)
        data = self._place(rows, data)
        self._warm_up_devices(data, lattice)
        if engine.should_persist(data, self.persist):
            data = data.persist()
        if state is None:
            rng = np.random.default_rng(self.random_state)
            weights = initial_weights(data, lattice, self.init, rng, self.nan_policy)
            state = engine.TrainingState(weights, sigmas)
        requested = self.bmu_search if self.precision == "exact" else "brute"
        planner = SearchPlanner.for_data(
            requested, data, self.metric, self.nan_policy, lattice.n_nodes
        )
        self._warm_up_search(planner)
        with _verbose_logging(self.verbose):
            state = engine.train(
                data,
                lattice,
                state,
                metric=self.metric,
                neighborhood=self.neighborhood,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                on_epoch_end=self._checkpoint_writer(lattice, fingerprint),
                nan_policy=self.nan_policy,
                precision=self.precision,
                planner=planner,
            )
        self._set_fitted(lattice, state.weights, state.history)
        self.search_plan_ = planner.plan
        self.feature_names_in_ = _feature_names(X)
        if self.feature_names_in_ is None:
            del self.feature_names_in_
        return self

    def _warm_up_devices(self, data: da.Array, lattice: Lattice) -> None:
        """On GPU chunks: compile the kernels before the first epoch, timed apart from it
        (``warm_up_seconds_``)."""
        if array_module(data._meta) is np:
            self.__dict__.pop("warm_up_seconds_", None)
            return
        from dasksom.training.gpu import warm_up_workers

        seconds = warm_up_workers(
            data.shape[1], lattice.n_nodes, self.metric, data.dtype, self.precision
        )
        self.warm_up_seconds_ = seconds
        logger.info("GPU kernels compiled or loaded in %.1f s, apart from epoch times", seconds)

    def _warm_up_search(self, planner: SearchPlanner) -> None:
        """Where the pruned search may run on CPUs: compile its kernel before the first epoch,
        timed apart from it (``search_warm_up_seconds_``)."""
        self.__dict__.pop("search_warm_up_seconds_", None)
        if planner.sample is None:
            return
        self.search_warm_up_seconds_ = warm_up_search(planner.dtype)
        logger.info(
            "pruned search kernel compiled or loaded in %.2f s", self.search_warm_up_seconds_
        )

    def _checkpoint_writer(
        self, lattice: Lattice, fingerprint: dict | None
    ) -> Callable[[engine.TrainingState], None] | None:
        checkpoint = self.checkpoint
        if checkpoint is None:
            return None

        def write(state: engine.TrainingState) -> None:
            write_map(
                checkpoint,
                params=self.get_params(),
                lattice=lattice,
                weights=state.weights,
                history=state.history,
                extra={"fingerprint": fingerprint},
            )

        return write

    def _resumed_state(
        self, lattice: Lattice, sigmas: np.ndarray, data: da.Array, source: Any
    ) -> tuple[engine.TrainingState | None, dict | None]:
        """The state saved in the checkpoint, once it is known to belong to this fit, and the
        fingerprint of the data.  Settings are compared before any row is read."""
        if self.checkpoint is None:
            return None, None
        if existing_map(self.checkpoint) is None:
            return None, data_fingerprint(data, source)
        metadata, _, _ = read_metadata(self.checkpoint)
        params, _, weights, history = read_map(self.checkpoint)
        self._check_checkpoint_settings(self.checkpoint, params)
        fingerprint = data_fingerprint(data, source)
        check_fingerprint(self.checkpoint, metadata.get("fingerprint"), fingerprint)
        done = "finished" if len(history) >= len(sigmas) else "resuming"
        logger.info(
            "%s: checkpoint %s holds %d of %d epochs",
            done,
            self.checkpoint,
            len(history),
            len(sigmas),
        )
        return engine.TrainingState(weights, sigmas, history), fingerprint

    def changed_settings(self, saved_params: dict) -> list[str]:
        """The training settings in which a checkpoint's parameters differ from this map's.

        Parameters
        ----------
        saved_params : dict
            The parameters a checkpoint (or any saved map) records.

        Returns
        -------
        list of str
            Sorted parameter names; empty when the checkpoint resumes this fit.  The rule is
            :func:`dasksom.training.checkpoints.changed_settings`, which the command line asks
            too: ``chunks``, ``persist``, ``verbose``, ``checkpoint`` and ``device`` never count.
        """
        return changed_settings(saved_params, self.get_params(), self._defaults())

    def _check_checkpoint_settings(self, checkpoint: str | os.PathLike, saved_params: dict) -> None:
        changed = self.changed_settings(saved_params)
        if changed:
            raise ValueError(
                f"The checkpoint {os.fspath(checkpoint)!r} was written with other settings "
                f"({', '.join(changed)} differ); delete it to start afresh, or point checkpoint "
                "at another file."
            )

    @classmethod
    def from_weights(
        cls,
        weights: np.ndarray,
        lattice: Lattice,
        history: list[dict] | None = None,
        **params: Any,
    ) -> SOM:
        """A fitted map holding ``weights`` (M x D) on ``lattice``, e.g. another library's.

        ``params`` are further constructor parameters (``metric`` for instance); the map size,
        topology and boundaries come from ``lattice`` whatever ``params`` say.
        """
        som = cls(**{**params, **lattice.to_dict()})
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 2 or weights.shape[0] != lattice.n_nodes:
            raise ValueError(
                f"weights of shape {weights.shape} do not fit a {lattice.height}x{lattice.width} "
                f"map; pass ({lattice.n_nodes}, n_features)."
            )
        som._set_fitted(lattice, weights, list(history or []))
        return som

    def _set_fitted(self, lattice: Lattice, weights: np.ndarray, history: list[dict]) -> None:
        self.lattice_ = lattice
        self.weights_ = weights
        self.positions_ = lattice.positions
        self.history_ = history
        self.n_features_in_ = weights.shape[1]
        self.n_iter_ = len(history)

    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            raise _not_fitted_error_type()(
                "This SOM is not fitted yet; call fit(X) first or load a map."
            )

    def _search_index(self, dtype: Any) -> PrunedIndex | None:
        """The pruned search's index of the fitted weights for chunks of compute type
        ``dtype``, or None for brute force: the plan of the last epoch, or (``"pruned"`` on a
        map loaded or given by hand) the principal axes of the weights."""
        if self.bmu_search == "brute" or self.nan_policy == "ignore":
            return None
        plan = getattr(self, "search_plan_", None)
        if plan is None and self.bmu_search == "pruned":
            plan = plan_for_weights(self.weights_, self.metric)
        return None if plan is None else plan.index(self.weights_, compute_dtype(dtype))

    def fit_predict(self, X: Any, y: Any = None) -> Any:
        """Fit the map on ``X`` and return the best-matching unit of every sample."""
        return self.fit(X).predict(X)

    def _map_rows(
        self,
        X: Any,
        per_chunk: Any,
        width: int | None,
        dtype_of: Callable[[np.dtype], Any],
        search: bool = False,
    ) -> Any:
        """``per_chunk(chunk, weights, metric)`` over the row chunks of ``X``, giving values of
        type ``dtype_of(data dtype)``: lazy for dask input, computed to numpy for anything
        else.  ``X`` is checked and moved to the workers once; ``search`` passes the BMU
        search's ``index``."""
        self._check_fitted()
        data = self._place(*self._input(X, fitted=True))
        dtype = dtype_of(data.dtype)
        shape = {"drop_axis": 1} if width is None else {"chunks": (data.chunks[0], (width,))}
        options = {"index": self._search_index(data.dtype)} if search else {}
        result = da.map_blocks(
            _per_chunk,
            data,
            per_chunk,
            self.weights_,
            self.metric,
            self.nan_policy,
            options,
            dtype=dtype,
            **shape,
        )
        if isinstance(X, da.Array):
            return result
        with engine.compute_context():
            return to_host(result.compute())

    def predict(self, X: Any) -> Any:
        """Index of every sample's best-matching unit.

        Parameters
        ----------
        X : array-like, dask array, zarr array, DataFrame, xarray or path
            Samples in rows; anything :func:`dasksom.io.as_dask_array` reads.

        Returns
        -------
        dask or numpy array of int64, shape (n_samples,)
            Dask in, dask out: a dask array gives a lazy dask array (with the input's chunks
            and array type, CuPy included); anything else (numpy, zarr, a path...) is computed
            and returned as numpy.  :meth:`best_matching_units` always returns numpy.  -1 for a
            sample with no observed value (``nan_policy="ignore"``).
        """
        return self._map_rows(X, predict_chunk, None, lambda _: np.int64, search=True)

    def best_matching_units(self, X: Any) -> np.ndarray:
        """Every sample's best-matching unit as a host numpy array, whatever ``X`` is."""
        labels = self.predict(X)
        if isinstance(labels, da.Array):
            with engine.compute_context():
                labels = labels.compute()
        return to_host(labels)

    def transform(self, X: Any) -> Any:
        """Distance of every sample to every node, as ``KMeans.transform``.

        Parameters
        ----------
        X : array-like, dask array, zarr array, DataFrame, xarray or path
            Samples in rows; anything :func:`dasksom.io.as_dask_array` reads.

        Returns
        -------
        dask or numpy array of shape (n_samples, M)
            Distances in the map's metric (euclidean, 1 - cosine similarity, or manhattan),
            computed chunk by chunk.  Dask in, dask out, as :meth:`predict`.
        """
        self._check_fitted()
        return self._map_rows(X, transform_chunk, self.lattice_.n_nodes, compute_dtype)

    def nearest_nodes(self, X: Any) -> tuple[Any, Any]:
        """Every sample's best-matching unit and its distance to it, from one pass over ``X``.

        What :meth:`predict` and the BMU's column of :meth:`transform` give, with the rows read
        once for both: for writing both of data larger than memory.

        Parameters
        ----------
        X : array-like, dask array, zarr array, DataFrame, xarray or path
            Samples in rows; anything :func:`dasksom.io.as_dask_array` reads.

        Returns
        -------
        bmus : dask or numpy array of int64, shape (n_samples,)
            As :meth:`predict`.
        distances : dask or numpy array of float64, shape (n_samples,)
            Distance to the BMU in the map's metric; NaN where the BMU is -1.  Dask in, dask
            out, as :meth:`predict`: the two dask arrays share their tasks, so computing them
            together (``dask.compute``, ``to_zarr`` of both) reads ``X`` once.
        """
        pairs = self._map_rows(X, nearest_chunk, 2, lambda _: np.float64, search=True)
        return pairs[:, 0].astype(np.int64), pairs[:, 1]

    def fit_transform(self, X: Any, y: Any = None) -> Any:
        """Fit the map on ``X`` and return the distances of its samples to every node."""
        return self.fit(X).transform(X)

    def evaluate(self, X: Any, *, keep_bmus: bool = False) -> dict:
        """Quality, hit counts and (optionally) every sample's BMU, from one pass over ``X``.

        Per-chunk totals are added by a tree reduction, so nothing that grows with the rows
        reaches the client unless ``keep_bmus`` asks for the BMUs.

        Parameters
        ----------
        X : array-like, dask array, zarr array, DataFrame, xarray or path
            Samples in rows; anything :func:`dasksom.io.as_dask_array` reads.
        keep_bmus : bool, default=False
            Also bring back every sample's best-matching unit.

        Returns
        -------
        dict
            The keys of :meth:`quality`, ``hit_counts`` (int64, shape ``(M,)``) and, with
            ``keep_bmus``, ``bmus`` (host int64, one per sample; -1 for a sample with no
            observed value).
        """
        self._check_fitted()
        data = self._place(*self._input(X, fitted=True))
        offsets = engine.chunk_row_offsets(data)
        chunk_task = dask.delayed(evaluate_chunk, pure=True, nout=2)
        weights = dask.delayed(self.weights_)
        index = dask.delayed(self._search_index(data.dtype))
        parts = [
            chunk_task(
                block,
                weights,
                self.metric,
                self.lattice_,
                offset,
                self.nan_policy,
                keep_bmus,
                index,
            )
            for block, offset in zip(data.to_delayed().ravel(), offsets, strict=True)
        ]
        totals = engine.tree_sum([part[0] for part in parts])
        bmus = [part[1] for part in parts] if keep_bmus else []
        with engine.compute_context():
            total, *found = dask.compute(totals, *bmus)
        result = _quality_of(total[:4], self.nan_policy)
        result["hit_counts"] = total[4:].astype(np.int64)
        if keep_bmus:
            result["bmus"] = np.concatenate(found)
        return result

    def quality(self, X: Any) -> dict:
        """Quantization and topographic error of ``X`` in one pass over the data.

        Parameters
        ----------
        X : array-like, dask array, zarr array, DataFrame, xarray or path
            Samples in rows; anything :func:`dasksom.io.as_dask_array` reads.

        Returns
        -------
        dict
            ``quantization_error`` (mean Euclidean distance from each sample to its
            best-matching unit's weights), ``topographic_error`` (share of samples whose best
            and second-best units are not lattice neighbours) and ``n_samples`` (samples
            assigned a unit); with ``nan_policy="ignore"`` also ``rows_without_values``, and
            distances over each sample's observed features.
        """
        result = self.evaluate(X)
        del result["hit_counts"]
        return result

    def hit_counts(self, X: Any) -> np.ndarray:
        """How many samples each node is the best-matching unit of, shape ``(M,)``."""
        return self.evaluate(X)["hit_counts"]

    def quantization_error(self, X: Any) -> float:
        """Mean Euclidean distance from each sample to its best-matching unit's weights."""
        return self.quality(X)["quantization_error"]

    def topographic_error(self, X: Any) -> float:
        """Share of samples whose best and second-best units are not lattice neighbours."""
        return self.quality(X)["topographic_error"]

    def score(self, X: Any, y: Any = None) -> float:
        """Minus the quantization error of ``X``: higher is better, as scikit-learn expects."""
        return -self.quantization_error(X)

    def save(self, path: str | os.PathLike) -> None:
        """Write the map to exactly ``path`` (an ``.npz`` archive; no pickle), atomically.

        Parameters
        ----------
        path : str or path
            A local or mounted path; URLs are refused.  Read it back with
            :func:`dasksom.load`.
        """
        self._check_fitted()
        write_map(
            path,
            params=self.get_params(),
            lattice=self.lattice_,
            weights=self.weights_,
            history=self.history_,
        )

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags (imported here only: workers never import scikit-learn)."""
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type="clusterer",
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(),
            input_tags=InputTags(allow_nan=False),
            non_deterministic=False,
        )


def load(path: str | os.PathLike) -> SOM:
    """Read a map written by :meth:`SOM.save` (or a checkpoint); returns a fitted :class:`SOM`."""
    params, lattice, weights, history = read_map(path)
    return SOM.from_weights(weights, lattice, history, **params)


def _check_chunk_size(chunks: str) -> None:
    from dask.utils import parse_bytes

    try:
        parse_bytes(chunks)
    except (ValueError, TypeError):
        raise ValueError(
            f"The 'chunks' parameter of SOM must be 'auto', a number of rows, or a size such "
            f"as '64MiB'; got {chunks!r}."
        ) from None


def _check_map_fits_memory(lattice: Lattice, n_features: int) -> None:
    """Refuse up front a map whose weights this machine cannot hold."""
    import psutil

    needed = WEIGHT_COPIES * 8 * lattice.n_nodes * (n_features + 1)
    available = psutil.virtual_memory().total
    if needed > available:
        raise ValueError(
            f"A {lattice.height}x{lattice.width} map on {n_features} features needs about "
            f"{needed / 2**30:.3g} GiB for its weights and sums ({WEIGHT_COPIES} float64 copies "
            f"of {lattice.n_nodes} x {n_features}), more than this machine's "
            f"{available / 2**30:.3g} GiB; use a smaller map."
        )


def _feature_names(X: Any) -> np.ndarray | None:
    columns = getattr(X, "columns", None)
    if columns is None or not all(isinstance(c, str) for c in columns):
        return None
    return np.asarray(list(columns), dtype=object)


@functools.cache
def _not_fitted_error_type() -> type:
    """:class:`NotFittedError`, also scikit-learn's own when the caller has loaded scikit-learn
    (never imported here: workers stay free of it)."""
    theirs = getattr(sys.modules.get("sklearn.exceptions"), "NotFittedError", None)
    if theirs is None:
        return NotFittedError
    return type("NotFittedError", (NotFittedError, theirs), {"__module__": __name__})


def _per_chunk(
    chunk: Any,
    per_chunk: Any,
    weights: Any,
    metric: str,
    nan_policy: str,
    options: dict,
    block_info: dict | None = None,
) -> Any:
    return per_chunk(chunk, weights, metric, first_row(block_info), nan_policy, **options)


def _quality_of(totals: np.ndarray, nan_policy: str) -> dict:
    distance_sum, errors, n_rows, without_values = (float(v) for v in totals)
    quality: dict[str, Any] = {
        "quantization_error": distance_sum / n_rows if n_rows else float("nan"),
        "topographic_error": errors / n_rows if n_rows else float("nan"),
        "n_samples": int(n_rows),
    }
    if nan_policy == "ignore":
        quality["rows_without_values"] = int(without_values)
    return quality


class _verbose_logging:
    """Show the engine's per-epoch log lines on stderr while ``verbose`` is set."""

    def __init__(self, verbose: bool) -> None:
        self.handler = logging.StreamHandler() if verbose else None

    def __enter__(self) -> None:
        if self.handler is not None:
            self.level = logger.level
            logger.addHandler(self.handler)
            logger.setLevel(logging.INFO)

    def __exit__(self, *exc: Any) -> None:
        if self.handler is not None:
            logger.removeHandler(self.handler)
            logger.setLevel(self.level)


__all__ = [
    "SOM",
    "METRICS",
    "NonNumericDataError",
    "NotFittedError",
    "load",
    "check_data",
    "data_fingerprint",
]
