"""When training chooses its BMU search, and on which rows (:mod:`dasksom.core.bmu_search`).

A plan is chosen on a sample of the data before the first epoch and again whenever the
neighbourhood radius has halved since the last choice: as the map unfolds and shrinks onto the
data, the candidates per row change.  Each epoch's history entry records the search it ran
(``bmu_search``, ``search_components``) and whether it chose it then (``search_chosen``); a
resumed run takes the plan of its last entry back, so it decides exactly as the uninterrupted
run did.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from dasksom.backends.arrays import array_module, compute_dtype, to_host
from dasksom.core.bmu_search import (
    BRUTE,
    SAMPLE_ROWS,
    SAMPLE_SHARE,
    SearchPlan,
    choose_plan,
    n_components_for,
    pruning_can_pay,
)
from dasksom.core.pruned import principal_basis


def search_sample(data: da.Array, n_rows: int = SAMPLE_ROWS) -> np.ndarray:
    """Rows spread evenly over ``data`` (every chunk gives some), float64: ``n_rows``, or
    :data:`SAMPLE_SHARE` of the rows where that is fewer (at least 64).

    Parameters
    ----------
    data : dask array of shape (N, D)
        Rows, not yet checked for NaN or inf (the first epoch does).
    n_rows : int, default=SAMPLE_ROWS

    Returns
    -------
    ndarray of shape (about min(N, n_rows, max(64, N * SAMPLE_SHARE)), D)
    """
    n_rows = min(n_rows, max(64, int(data.shape[0] * SAMPLE_SHARE)))
    stride = max(1, -(-data.shape[0] // n_rows))
    return np.asarray(to_host(data[::stride].compute()), dtype=np.float64)


def warm_up_search(dtype: Any) -> float:
    """Compile, or load from numba's cache, the pruned search's CPU kernel wherever chunks run
    (every worker of the default ``distributed`` client, or this process), before the first
    epoch, so that epoch times do not include it.

    Parameters
    ----------
    dtype : numpy dtype
        The chunks' compute dtype.

    Returns
    -------
    float
        The longest time a process took, in seconds.
    """
    from dasksom.training.engine import distributed_client

    client = distributed_client()
    if client is None:
        return _timed_warm_up(dtype)
    return max(client.run(_timed_warm_up, dtype).values(), default=0.0)


def _timed_warm_up(dtype: Any) -> float:
    from dasksom.core.candidates import warm_up

    started = time.perf_counter()
    warm_up(dtype)
    return time.perf_counter() - started


@dataclass
class SearchPlanner:
    """Chooses each epoch's BMU search.

    Attributes
    ----------
    requested : {"auto", "brute", "pruned"}
    metric : str
    dtype : numpy dtype
        The chunks' compute dtype.
    sample : ndarray of shape (n, D) or None, default=None
        The rows plans are chosen on; None (with ``"brute"``) never samples.
    plan : SearchPlan, default=BRUTE
        The plan of the moment.
    chosen_at_sigma : float or None, default=None
        The radius at which it was chosen; None before the first choice.
    n_rows : int or None, default=None
        Rows per epoch, for the cost model; None: the sample's.
    """

    requested: str
    metric: str
    dtype: Any
    sample: np.ndarray | None = None
    plan: SearchPlan = BRUTE
    chosen_at_sigma: float | None = None
    n_rows: int | None = None
    _axes: tuple[np.ndarray, np.ndarray] | None = None

    def axes(self) -> tuple[np.ndarray, np.ndarray]:
        """The sample's mean and principal axes, computed once."""
        if self._axes is None:
            assert self.sample is not None
            k = n_components_for(self.sample.shape[1])
            self._axes = principal_basis(self.sample, k, self.metric)
        return self._axes

    @classmethod
    def for_data(
        cls, requested: str, data: da.Array, metric: str, nan_policy: str, n_nodes: int
    ) -> Any:
        """A planner for training a map of ``n_nodes`` on ``data``: brute force alone where
        pruning cannot run (missing values), is not measured (``"auto"`` on GPU chunks) or
        cannot pay for this shape (``"auto"``, :func:`pruning_can_pay`); a sample of ``data``
        otherwise."""
        dtype = compute_dtype(data.dtype)
        # On GPUs "auto" keeps brute force: the cost model is measured on CPUs only.
        on_device = array_module(data._meta) is not np
        hopeless = not pruning_can_pay(n_nodes, data.shape[1], data.shape[0])
        if (
            requested == "brute"
            or nan_policy == "ignore"
            or (requested == "auto" and (on_device or hopeless))
        ):
            return cls("brute", metric, dtype)
        return cls(requested, metric, dtype, search_sample(data), n_rows=data.shape[0])

    def resume(self, history: list[dict]) -> None:
        """Take back the plan of a checkpoint's last epoch, and the radius it was chosen at."""
        if self.sample is None or not history or "bmu_search" not in history[-1]:
            return
        chosen = [record for record in history if record.get("search_chosen")]
        if not chosen:
            return
        self.chosen_at_sigma = float(chosen[-1]["sigma"])
        last = history[-1]
        if last["bmu_search"] != "pruned":
            self.plan = BRUTE
            return
        mean, basis = self.axes()
        self.plan = SearchPlan("pruned", basis.shape[1], mean, basis, self.metric)

    def plan_for(self, weights: np.ndarray, sigma: float) -> tuple[SearchPlan, bool]:
        """The epoch's plan, and whether it was chosen now.

        Parameters
        ----------
        weights : ndarray of shape (M, D)
            The epoch's starting weights.
        sigma : float
            Its radius.

        Returns
        -------
        plan : SearchPlan
        chosen : bool
        """
        if self.sample is None:
            return self.plan, False
        if self.chosen_at_sigma is not None and sigma > self.chosen_at_sigma / 2:
            return self.plan, False
        if not np.isfinite(self.sample).all():
            return BRUTE, False  # the first epoch's check names the values
        self.plan = choose_plan(
            self.requested, self.sample, weights, self.metric, self.dtype, self.axes(), self.n_rows
        )
        self.chosen_at_sigma = float(sigma)
        return self.plan, True

    @staticmethod
    def record(plan: SearchPlan, chosen: bool) -> dict:
        """The history entry's fields for an epoch that ran ``plan``."""
        return {
            "bmu_search": plan.strategy,
            "search_components": int(plan.n_components),
            "search_chosen": bool(chosen),
        }
