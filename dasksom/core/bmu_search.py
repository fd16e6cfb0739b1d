"""Which BMU search to run: brute force or the exact pruned search, and with how many axes.

Both searches give the same BMUs (the pruned one is exact, :mod:`dasksom.core.pruned`); they
differ in cost.  Brute force costs one ``M x D`` product per row.  The pruned search costs a
bound product of width ``k + 2``, a few passes over each row's ``M`` bounds, and a true distance
to each node of its group's candidates; it pays only when the data has low-dimensional
structure and the map is large enough (design.md, "Pruned search").

:func:`choose_plan` decides from a sample of the rows: it counts, with the weights of the
moment, the true distances per row that the pruned search computes on ``k = min(64, D / 4)``
principal axes, and compares :func:`predicted_costs`.  The decision is a function of the sample
and the weights alone, not of timings, so a run resumed from a checkpoint decides as the
uninterrupted run did and stays bit-identical to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dasksom.backends.arrays import to_host
from dasksom.core.pruned import (
    PRUNED_METRICS,
    SORT_COMPONENTS,
    PrunedIndex,
    principal_basis,
    pruned_best_matching_units,
)

BMU_SEARCHES = ("auto", "brute", "pruned")
# The bound's width: a quarter of the features, at most MAX_COMPONENTS (n_components_for).
MAX_COMPONENTS = 64
# Rows of the sample that the principal axes come from (at most SAMPLE_SHARE of the data, so
# that choosing stays cheap beside an epoch), and of the part of it that the candidates are
# counted on.
SAMPLE_ROWS = 4096
SAMPLE_SHARE = 1 / 16
MEASURE_ROWS = 2048
# "auto" prunes only where the predicted cost is below this share of brute force's: the cost
# model is rough, and a loss must never happen.
PRUNE_BELOW = 0.8
# The cost model's units: one multiply-add of a BLAS product.  An elementwise pass over a row's
# M scores costs about ELEMENTWISE multiply-adds per element: brute force makes BRUTE_PASSES
# (offsets, best column); the pruned search's work per node and row (the node of smallest
# bound, the candidate scan, the sort key, and their share of the group's overhead) costs
# PRUNED_PASSES of them, and its per-row work in float64 (centring, norms, margins)
# ROW_OVERHEAD_PER_FEATURE per feature.  Fitted to threaded passes over 10,000 MNIST rows with
# trained 20x20 and 50x50 maps (benchmarks/pruned.py compares every prediction of its grid
# with the measured ratio; the model is pessimistic for the pruned search on very large maps,
# where brute force's weights no longer fit in cache).
ELEMENTWISE = 35.0
BRUTE_PASSES = 2
PRUNED_PASSES = 11
ROW_OVERHEAD_PER_FEATURE = 175.0
# Building the pruned index once per epoch costs about this much per weight (a float64 product
# of width 2k and a few float64 passes over the M x D weights), shared by the epoch's rows.
INDEX_COST_PER_WEIGHT = 200.0


def n_components_for(n_features: int) -> int:
    """``k``, the pruned search's number of principal axes for ``D`` features: ``D / 4``,
    between 1 and :data:`MAX_COMPONENTS` (wider bounds cost more than they prune)."""
    return max(1, min(MAX_COMPONENTS, n_features // 4))


@dataclass(frozen=True)
class SearchPlan:
    """A BMU search: brute force, or the pruned search on ``n_components`` principal axes.

    Attributes
    ----------
    strategy : {"brute", "pruned"}
    n_components : int, default=0
        ``k``, the width of the pruned search's bound (0 for brute force).
    mean : ndarray of shape (D,) or None, default=None
        The centre of the bound (the sample's mean).
    basis : ndarray of shape (D, k) or None, default=None
        Orthonormal principal axes of the sample.
    metric : str, default="euclidean"
    evaluated : float or None, default=None
        Mean true distances per row that the pruned search computed on the sample (None when
        not measured).
    predicted_ratio : float or None, default=None
        The pruned search's predicted cost over brute force's at the chosen ``k``.
    """

    strategy: str
    n_components: int = 0
    mean: np.ndarray | None = None
    basis: np.ndarray | None = None
    metric: str = "euclidean"
    evaluated: float | None = None
    predicted_ratio: float | None = None

    @property
    def pruned(self) -> bool:
        """Whether this plan runs the pruned search."""
        return self.strategy == "pruned"

    def index(self, weights: Any, dtype: Any) -> PrunedIndex | None:
        """The pruned search's index of ``weights`` in ``dtype``; None for brute force.

        Weights that the pruned search cannot bound in ``dtype`` (values that could overflow
        it) also give None: the chunks then search by brute force, with the same result.

        Parameters
        ----------
        weights : ndarray of shape (M, D)
        dtype : numpy dtype
            The chunks' compute dtype.

        Returns
        -------
        PrunedIndex or None
        """
        if not self.pruned:
            return None
        try:
            return PrunedIndex.build(weights, self.basis, self.mean, self.metric, dtype)
        except ValueError:
            return None

    def describe(self) -> str:
        """``"brute"`` or ``"pruned (k=64)"``."""
        return f"pruned (k={self.n_components})" if self.pruned else "brute"


BRUTE = SearchPlan("brute")


def predicted_costs(
    n_nodes: int, n_features: int, n_components: int, evaluated: float, n_rows: int = 1 << 30
) -> tuple:
    """Predicted cost per row of brute force and of the pruned search, in multiply-adds.

    Parameters
    ----------
    n_nodes, n_features : int
        ``M`` and ``D``.
    n_components : int
        ``k``.
    evaluated : float
        Mean true distances per row of the pruned search.
    n_rows : int, default=2**30
        Rows per epoch, which share the cost of building the index once per epoch.

    Returns
    -------
    brute, pruned : float
    """
    brute = n_nodes * n_features + BRUTE_PASSES * ELEMENTWISE * n_nodes
    bound_width = n_components + 2 + min(n_components, SORT_COMPONENTS) + 1
    pruned = (
        n_nodes * bound_width
        + n_features * (n_components + evaluated + ROW_OVERHEAD_PER_FEATURE)
        + PRUNED_PASSES * ELEMENTWISE * n_nodes
        + n_nodes * n_features * (2 * n_components + INDEX_COST_PER_WEIGHT) / max(1, n_rows)
    )
    return brute, pruned


def pruning_can_pay(n_nodes: int, n_features: int, n_rows: int = 1 << 30) -> bool:
    """Whether the pruned search could cost less than :data:`PRUNE_BELOW` of brute force on
    a map of ``n_nodes`` over ``n_features``, even at its best (one true distance per row).

    Where it cannot, ``"auto"`` needs no sample, no measurement and no compiled kernel.
    """
    k = n_components_for(n_features)
    brute_cost, best_case = predicted_costs(n_nodes, n_features, k, 1.0, n_rows)
    return best_case < PRUNE_BELOW * brute_cost


def choose_plan(
    requested: str,
    sample: np.ndarray,
    weights: np.ndarray,
    metric: str,
    dtype: Any,
    axes: tuple[np.ndarray, np.ndarray] | None = None,
    n_rows: int | None = None,
) -> SearchPlan:
    """The search to run for the map ``weights``, chosen on ``sample``.

    Parameters
    ----------
    requested : {"auto", "brute", "pruned"}
        ``"brute"`` and ``"pruned"`` are obeyed; ``"auto"`` prunes where
        :func:`predicted_costs`, with the true distances per row counted on
        :data:`MEASURE_ROWS` rows of ``sample``, says the pruned search costs less than
        :data:`PRUNE_BELOW` of brute force.
    sample : ndarray of shape (n, D)
        Rows spread over the data (:data:`SAMPLE_ROWS` are plenty).
    weights : ndarray of shape (M, D)
        The map's weights of the moment.
    metric : str
        A name in :data:`dasksom.core.metrics.METRICS`.
    dtype : numpy dtype
        The chunks' compute dtype.
    axes : (mean, basis) or None, default=None
        ``principal_basis(sample, n_components_for(D), metric)``, when the caller keeps it;
        None computes it.
    n_rows : int or None, default=None
        Rows per epoch (the index is built once for them); None: the sample's.

    Returns
    -------
    SearchPlan
    """
    if requested not in BMU_SEARCHES:
        raise ValueError(
            f"Unknown bmu_search {requested!r}; choose one of {', '.join(BMU_SEARCHES)}."
        )
    rows = np.asarray(to_host(sample))
    if requested == "brute" or metric not in PRUNED_METRICS or not np.isfinite(rows).all():
        return BRUTE  # non-finite rows: the epoch's own check names them
    n_nodes, n_features = weights.shape
    k = n_components_for(n_features)
    n_rows = rows.shape[0] if n_rows is None else n_rows
    brute_cost, best_case = predicted_costs(n_nodes, n_features, k, 1.0, n_rows)
    if requested == "auto" and not pruning_can_pay(n_nodes, n_features, n_rows):
        return SearchPlan("brute", metric=metric, predicted_ratio=best_case / brute_cost)
    mean, basis = axes or principal_basis(rows, k, metric)
    plan = SearchPlan("pruned", k, mean, basis, metric)
    index = plan.index(weights, dtype)
    if index is None:
        return BRUTE
    measured = rows[:: max(1, -(-rows.shape[0] // MEASURE_ROWS))].astype(dtype)
    evaluated = float(pruned_best_matching_units(measured, index).evaluated.mean())
    _, pruned_cost = predicted_costs(n_nodes, n_features, k, evaluated, n_rows)
    ratio = pruned_cost / brute_cost
    strategy = "pruned" if requested == "pruned" or ratio < PRUNE_BELOW else "brute"
    if strategy == "brute":
        return SearchPlan("brute", metric=metric, evaluated=evaluated, predicted_ratio=ratio)
    return SearchPlan("pruned", k, mean, basis, metric, evaluated, ratio)


def plan_for_weights(weights: np.ndarray, metric: str) -> SearchPlan:
    """The pruned search with the principal axes of the weights themselves.

    For a map whose training sample is gone (a loaded map, or weights given by hand): a
    trained map's prototypes spread over the data, so their axes bound well; any basis is
    exact.

    Parameters
    ----------
    weights : ndarray of shape (M, D)
    metric : str
        A name in :data:`dasksom.core.metrics.METRICS`.

    Returns
    -------
    SearchPlan
        With :func:`n_components_for` axes.
    """
    if metric not in PRUNED_METRICS:
        return BRUTE
    k = n_components_for(weights.shape[1])
    mean, basis = principal_basis(weights, k, metric)
    return SearchPlan("pruned", k, mean, basis, metric)
