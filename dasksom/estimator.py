"""``dasksom.SOM``: the scikit-learn style estimator over the distributed engine."""

from __future__ import annotations

import inspect
import logging
import os

import dask
import dask.array as da
import numpy as np

from . import engine
from .initialization import INITS, initial_weights
from .io import as_dask_array
from .kernels import METRICS, check_metric, hits_chunk, predict_chunk, quality_chunk, to_host
from .lattice import Lattice
from .neighborhood import check_neighborhood
from .persistence import map_path, read_map, settings_key, write_map
from .schedule import radius_schedule

logger = logging.getLogger("dasksom")


def check_data(X, chunks: int | str = "auto", n_features: int | None = None) -> da.Array:
    """``X`` as a row-chunked dask array, refused with a clear message if a SOM cannot use it.

    Parameters
    ----------
    X : any source :func:`dasksom.io.as_dask_array` takes
    chunks : rows per chunk, a size such as "64MiB", or "auto"
    n_features : the feature count the data must have (that of a fitted map), or None

    Returns
    -------
    dask.array.Array of shape (n_samples, n_features)
    """
    data = as_dask_array(X, chunks=chunks)
    if data.ndim != 2:
        raise ValueError(
            f"Expected 2-D data (samples x features), got {data.ndim}-D data of shape "
            f"{data.shape}; reshape it, e.g. X.reshape(len(X), -1)."
        )
    if np.dtype(data.dtype).kind not in "biuf":
        raise ValueError(
            f"Data must be numeric, got dtype {data.dtype}; convert it, e.g. X.astype('float32')."
        )
    n_rows, found = data.shape
    if n_rows == 0:
        raise ValueError("The data has 0 rows; a SOM needs at least one sample.")
    if found == 0:
        raise ValueError("The data has 0 features; each sample needs at least one value.")
    if n_features is not None and found != n_features:
        raise ValueError(
            f"The data has {found} features but this map was fitted on {n_features}; pass "
            "data with the same columns."
        )
    return data


class SOM:
    """Batch Self-Organizing Map trained over a chunked dask array.

    A scikit-learn style clusterer (``get_params``, ``set_params``, ``fit``, ``predict``,
    ``fit_predict``; ``sklearn.base.clone`` works on it) that does not import scikit-learn, so
    that dask workers, which import this package to run the kernels, stay light.

    Parameters
    ----------
    height, width : int
        Map size; the map has ``M = height * width`` nodes, node ``k = r * width + c``.
    topology : {"hexagonal", "square"}
    pbc : bool
        Periodic boundaries (a torus).  A hexagonal torus needs an even ``height``.
    metric : {"euclidean", "cosine", "manhattan"}
        Distance used to find best-matching units.
    neighborhood : {"gaussian", "bubble", "mexican_hat"}
    init : {"random", "sample", "pca"} or array of shape (M, n_features)
    epochs : int
        Number of batch epochs.
    sigma : None, float or (float, float)
        Neighbourhood radius schedule; see :func:`dasksom.schedule.radius_schedule`.
        ``None`` is simpsom's default, from ``max(height, width) / 2`` down.
    random_state : None, int or numpy Generator
        Seed of the ``random`` and ``sample`` initialisations.
    sigma_decay : {"exponential", "linear"}
        Decay between an explicit ``(start, end)`` sigma pair.
    tol : float or None
        Stop early once the mean absolute weight change stays below ``tol`` for
        ``n_iter_no_change`` epochs.  ``None`` always runs every epoch.
    n_iter_no_change : int
    chunks : int or "auto"
        Rows per chunk for numpy input (and a new row chunking for dask input when an int).
    persist : "auto" or bool
        Keep the data in (worker) memory between epochs; ``"auto"`` does so when it fits in half
        of the memory available, and otherwise streams it from its source every epoch.
    verbose : bool
        Log one line per epoch at INFO level on the ``dasksom`` logger (and show it).
    checkpoint : str, path or None
        Write the map to this ``.npz`` file after every epoch.  When the file already exists
        and was written with the same settings, ``fit`` resumes from it: a killed job rerun
        with the same command carries on where it stopped and ends with the same map.

    Attributes
    ----------
    weights_ : ndarray of shape (M, n_features)
    positions_ : ndarray of shape (M, 2)
    history_ : list of dict, one per epoch (``sigma``, ``quantization_error``, ``seconds`` ...)
    lattice_ : Lattice
    n_features_in_ : int
    n_iter_ : int, epochs run
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
        init="random",
        epochs: int = 10,
        sigma=None,
        random_state=None,
        sigma_decay: str = "exponential",
        tol: float | None = None,
        n_iter_no_change: int = 3,
        chunks: int | str = "auto",
        persist: bool | str = "auto",
        verbose: bool = False,
        checkpoint: str | os.PathLike | None = None,
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

    _estimator_type = "clusterer"

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(name for name in signature.parameters if name != "self")

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters, as scikit-learn's ``get_params``."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params) -> SOM:
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
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if not isinstance(value, np.ndarray)
            and value != defaults[name].default
            or isinstance(value, np.ndarray)
        ]
        return f"SOM({', '.join(changed)})"

    def _validate_params(self) -> Lattice:
        lattice = Lattice(self.height, self.width, self.topology, bool(self.pbc))
        check_metric(self.metric)
        check_neighborhood(self.neighborhood)
        if isinstance(self.init, str) and self.init not in INITS:
            raise ValueError(
                f"Unknown init {self.init!r}; choose one of {', '.join(INITS)} or pass an "
                "(M, n_features) array."
            )
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int | np.integer):
            raise ValueError(f"epochs must be an integer of at least 1, got {self.epochs!r}.")
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}.")
        if self.tol is not None and not self.tol >= 0:
            raise ValueError(f"tol must be None or a non-negative number, got {self.tol!r}.")
        if self.n_iter_no_change < 1:
            raise ValueError(f"n_iter_no_change must be at least 1, got {self.n_iter_no_change}.")
        if self.persist not in ("auto", True, False):
            raise ValueError(f"persist must be 'auto', True or False, got {self.persist!r}.")
        return lattice

    def _check_data(self, X, fitted: bool) -> da.Array:
        return check_data(X, self.chunks, self.n_features_in_ if fitted else None)

    def fit(self, X, y=None) -> SOM:
        """Train the map on ``X`` (numpy, dask or zarr array, or a path to a zarr array).

        Returns
        -------
        self
        """
        lattice = self._validate_params()
        data = self._check_data(X, fitted=False)
        sigmas = radius_schedule(self.height, self.width, self.epochs, self.sigma, self.sigma_decay)
        if engine.should_persist(data, self.persist):
            data = data.persist()
        state = self._resumed_state(lattice, sigmas)
        if state is None:
            rng = np.random.default_rng(self.random_state)
            state = engine.TrainingState(initial_weights(data, lattice, self.init, rng), sigmas)
        with _verbose_logging(self.verbose):
            state = engine.train(
                data,
                lattice,
                state,
                metric=self.metric,
                neighborhood=self.neighborhood,
                tol=self.tol,
                n_iter_no_change=self.n_iter_no_change,
                on_epoch_end=None if self.checkpoint is None else self._write_checkpoint(lattice),
            )
        self._set_fitted(lattice, state.weights, state.history)
        return self

    def _training_settings(self) -> dict:
        """Parameters that shape the map; the others (chunking, logging...) may change."""
        ignored = {"chunks", "persist", "verbose", "checkpoint"}
        return {k: v for k, v in self.get_params().items() if k not in ignored}

    def _write_checkpoint(self, lattice: Lattice):
        def write(state: engine.TrainingState) -> None:
            write_map(
                self.checkpoint,
                params=self.get_params(),
                lattice=lattice,
                weights=state.weights,
                history=state.history,
            )

        return write

    def _resumed_state(self, lattice: Lattice, sigmas: np.ndarray) -> engine.TrainingState | None:
        if self.checkpoint is None or not map_path(self.checkpoint).exists():
            return None
        params, _, weights, history = read_map(map_path(self.checkpoint))
        saved = {k: v for k, v in params.items() if k in self._training_settings()}
        if settings_key(saved) != settings_key(self._training_settings()):
            raise ValueError(
                f"The checkpoint {str(self.checkpoint)!r} was written with other settings; "
                "delete it to start afresh, or point checkpoint at another file."
            )
        logger.info("resuming from %s after %d epochs", self.checkpoint, len(history))
        return engine.TrainingState(weights, sigmas, history)

    @classmethod
    def from_weights(
        cls, weights: np.ndarray, lattice: Lattice, history: list[dict] | None = None, **params
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
            raise RuntimeError("This SOM is not fitted yet; call fit(X) first or load a map.")

    def fit_predict(self, X, y=None):
        """Fit the map on ``X`` and return the best-matching unit of every sample."""
        return self.fit(X).predict(X)

    def predict(self, X):
        """Index of every sample's best-matching unit.

        A dask array in gives a lazy dask array out; anything else is computed to numpy.
        """
        self._check_fitted()
        data = self._check_data(X, fitted=True)
        labels = data.map_blocks(
            predict_chunk, self.weights_, self.metric, drop_axis=1, dtype=np.int64
        )
        if isinstance(X, da.Array):
            return labels
        with engine.compute_context():
            return to_host(labels.compute())

    def _sum_over_chunks(self, X, per_chunk, width: int) -> np.ndarray:
        """Add up ``per_chunk(chunk, weights, metric, lattice)``, a length-``width`` vector per
        chunk, by a tree reduction: nothing that grows with the rows reaches the client."""
        self._check_fitted()
        data = self._check_data(X, fitted=True)
        parts = data.map_blocks(
            _as_row,
            per_chunk,
            self.weights_,
            self.metric,
            self.lattice_,
            chunks=((1,) * data.numblocks[0], (width,)),
            dtype=np.float64,
            meta=np.empty((0, width)),
        )
        with engine.compute_context():
            return to_host(dask.compute(parts.sum(axis=0, split_every=engine.SPLIT_EVERY))[0])

    def _quality(self, X) -> np.ndarray:
        return self._sum_over_chunks(X, quality_chunk, 3)

    def hit_counts(self, X) -> np.ndarray:
        """How many samples each node is the best-matching unit of, shape ``(M,)``."""
        counts = self._sum_over_chunks(X, hits_chunk, self.lattice_.n_nodes)
        return counts.astype(np.int64)

    def quantization_error(self, X) -> float:
        """Mean Euclidean distance from each sample to its best-matching unit's weights."""
        distance_sum, _, n_rows = self._quality(X)
        return float(distance_sum / n_rows)

    def topographic_error(self, X) -> float:
        """Share of samples whose best and second-best units are not lattice neighbours."""
        _, errors, n_rows = self._quality(X)
        return float(errors / n_rows)

    def save(self, path: str | os.PathLike) -> None:
        """Write the map to ``path`` (an ``.npz`` file; no pickle).  See :func:`dasksom.load`."""
        self._check_fitted()
        write_map(
            path,
            params=self.get_params(),
            lattice=self.lattice_,
            weights=self.weights_,
            history=self.history_,
        )


def _as_row(chunk, per_chunk, weights, metric, lattice) -> np.ndarray:
    return np.asarray(per_chunk(chunk, weights, metric, lattice), dtype=np.float64)[None]


class _verbose_logging:
    """Show the engine's per-epoch log lines on stderr while ``verbose`` is set."""

    def __init__(self, verbose: bool) -> None:
        self.handler = logging.StreamHandler() if verbose else None

    def __enter__(self) -> None:
        if self.handler is not None:
            self.level = logger.level
            logger.addHandler(self.handler)
            logger.setLevel(logging.INFO)

    def __exit__(self, *exc) -> None:
        if self.handler is not None:
            logger.removeHandler(self.handler)
            logger.setLevel(self.level)


__all__ = ["SOM", "METRICS"]
