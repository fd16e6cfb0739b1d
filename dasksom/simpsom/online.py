"""Online (sequential) Kohonen training: simpsom's ``train_algo="online"``, for in-memory data.

Every step takes one sample ``x``, finds its best-matching unit ``b`` against the current
weights and moves every node towards the sample::

    W[j] += lr_t * h(d(j, b), sigma_t) * (x - W[j])

with ``h`` the map's neighbourhood function (design.md section 2) on true lattice distances
(periodic boundaries honoured).  Over ``T`` steps the radius follows simpsom's schedule
(design.md section 3), ``sigma_t = s0 * exp(-t / tau)`` with ``s0 = max(height, width) / 2``
and ``tau = T / ln(s0)`` (:func:`dasksom.core.schedule.radius_schedule` with ``T`` epochs), and
the learning rate decays as ``lr_t = lr0 * exp(-t / T)``.

The samples are visited pass after pass, each pass a fresh permutation of all rows drawn from
the generator, so ``T`` steps are ``ceil(T / N)`` permutations laid end to end and cut at ``T``.
One pass of ``N`` steps is this module's "epoch": the history and early stopping work per pass.
Each pass's history entry (:func:`dasksom.training.history.epoch_record`) holds ``epoch``,
``steps`` (done so far), ``sigma`` and ``learning_rate`` (at the pass's last step),
``quantization_error`` (of the weights the pass started from), ``map_difference`` (mean
absolute weight change over the pass) and ``seconds``.

Unlike the batch engine this loop is sequential by nature: it runs on one process, on NumPy
data that fits in memory.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import numpy as np

from dasksom.core.chunk_tasks import predict_chunk
from dasksom.core.lattice import Lattice
from dasksom.core.missing import find_nonfinite
from dasksom.core.neighborhood import neighborhood_weights
from dasksom.core.schedule import radius_schedule
from dasksom.core.sums import partial_sums
from dasksom.training.history import EarlyStopping, epoch_record


def sample_order(n_rows: int, steps: int, rng: np.random.Generator) -> np.ndarray:
    """Row visited at every step: ``ceil(steps / n_rows)`` permutations end to end, cut.

    Parameters
    ----------
    n_rows : int
        ``N``, the rows to visit.
    steps : int
        ``T``, the steps to take; at least 1.
    rng : numpy.random.Generator
        Draws the permutations.

    Returns
    -------
    int ndarray of shape (steps,)
    """
    passes = -(-steps // n_rows)
    return np.concatenate([rng.permutation(n_rows) for _ in range(passes)])[:steps]


def learning_rates(start_learning_rate: float, steps: int) -> np.ndarray:
    """simpsom's online learning rate ``lr0 * exp(-t / T)`` for ``t = 0 .. T - 1``.

    Parameters
    ----------
    start_learning_rate : float
        ``lr0``.
    steps : int
        ``T``.

    Returns
    -------
    ndarray of shape (steps,)
    """
    return start_learning_rate * np.exp(-np.arange(steps) / steps)


def train_online(
    data: np.ndarray,
    weights: np.ndarray,
    lattice: Lattice,
    *,
    steps: int,
    start_learning_rate: float,
    metric: str,
    neighborhood: str,
    rng: np.random.Generator,
    tol: float | None = None,
    n_iter_no_change: int = 3,
) -> tuple[np.ndarray, list[dict]]:
    """Run ``steps`` single-sample updates from ``weights``.

    Parameters
    ----------
    data : ndarray of shape (N, D)
        The samples, in memory.
    weights : ndarray of shape (M, D)
        The starting weights (not modified).
    lattice : Lattice
        The map.
    steps : int
        Number of single-sample updates ``T``.
    start_learning_rate : float
        ``lr0``.
    metric, neighborhood : str
        As for :class:`dasksom.SOM`.
    rng : numpy.random.Generator
        Source of the sample order (see :func:`sample_order`).
    tol : float or None, default=None
        Stop after a pass once the mean absolute weight change per pass has stayed below
        ``tol`` for ``n_iter_no_change`` passes in a row.  ``None`` runs every step.
    n_iter_no_change : int, default=3
        See ``tol``.

    Returns
    -------
    weights : ndarray of shape (M, D), float64
    history : list of dict
        One entry per pass (see the module docstring).

    Raises
    ------
    ValueError
        When ``data`` holds NaN or inf, naming how many and the first.
    """
    data = np.asarray(data)
    find_nonfinite(data).raise_if_any(len(data))
    weights = np.array(weights, dtype=np.float64)
    schedule = (
        sample_order(data.shape[0], steps, rng),
        radius_schedule(lattice.height, lattice.width, steps),
        learning_rates(start_learning_rate, steps),
    )
    around_bmu = functools.partial(
        _neighborhood_of, lattice=lattice, metric=metric, neighborhood=neighborhood
    )
    return weights, _run_passes(data, weights, metric, schedule, around_bmu, tol, n_iter_no_change)


def _run_passes(
    data: np.ndarray,
    weights: np.ndarray,
    metric: str,
    schedule: tuple[np.ndarray, np.ndarray, np.ndarray],
    around_bmu: Callable[[np.ndarray, np.ndarray, float], np.ndarray],
    tol: float | None,
    n_iter_no_change: int,
) -> list[dict]:
    """The passes of :func:`train_online`, ``weights`` updated in place: their history.

    ``schedule`` holds the row, the radius and the learning rate of every step; the passes
    run until the last step, or until the map difference stays below ``tol`` for
    ``n_iter_no_change`` passes in a row.
    """
    order, sigmas, rates = schedule
    steps, n_rows = len(order), data.shape[0]
    history: list[dict] = []
    stopper = EarlyStopping(tol, n_iter_no_change)
    for first in range(0, steps, n_rows):
        started = time.perf_counter()
        before = weights.copy()
        error = partial_sums(data, weights, metric, check_finite=False).quantization_error
        last = min(first + n_rows, steps)
        for t in range(first, last):
            update = rates[t] * around_bmu(data[order[t]], weights, sigmas[t])
            weights += update[:, None] * (data[order[t]] - weights)
        difference = float(np.abs(weights - before).mean())
        history.append(
            epoch_record(
                len(history),
                sigmas[last - 1],
                error,
                difference,
                time.perf_counter() - started,
                steps=last,
                learning_rate=float(rates[last - 1]),
            )
        )
        if stopper.update(difference):
            break
    return history


def _neighborhood_of(
    x: np.ndarray,
    weights: np.ndarray,
    sigma: float,
    *,
    lattice: Lattice,
    metric: str,
    neighborhood: str,
) -> np.ndarray:
    """``h(d(j, b), sigma)`` for every node ``j``, ``b`` the BMU of the sample ``x``."""
    bmu = int(predict_chunk(x[None], weights, metric)[0])
    return neighborhood_weights(lattice.distances_from(bmu)[0], sigma, neighborhood)
