"""Distances between rows and prototypes (design.md 5): one registry, :data:`METRICS`.

Adding a metric means adding one :class:`Metric` class there; validation, the BMU search,
``transform`` and the command line's choices all read the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dasksom.backends import arrays
from dasksom.backends.arrays import array_module, compute_dtype, is_narrow
from dasksom.core.precision import PRECISIONS, Precision, get_precision

# Elements of the rows x nodes x features difference tensor of the manhattan metric.
MANHATTAN_BLOCK_ELEMENTS = 1 << 22


def float32_limit(n_features: int) -> float:
    """The largest magnitude whose products and squared norms stay within float32.

    ``x . w`` and ``||w||^2`` stay below ``D * a^2`` for values of magnitude at most ``a``.
    """
    return float(np.sqrt(np.finfo(np.float32).max / (4.0 * max(1, n_features))))


def largest_magnitude(x: Any, weights: Any) -> float:
    """The largest absolute value of the chunk and of the weights."""
    # max and min rather than abs(): no temporary the size of the chunk.
    largest = max(float(x.max()), -float(x.min())) if x.size else 0.0
    return max(largest, float(np.abs(weights).max(initial=0.0)))


@dataclass
class PreparedWeights:
    """Weights in the form a metric's BMU search needs, built once per chunk."""

    metric: Metric
    weights: Any  # (M, D), chunk's array module and compute dtype
    scoring: Any  # the product's right operand, (D, M) (None: the metric is not a product)
    offsets: Any  # (M,) subtracted from the product's scores, or None
    precision: Precision = PRECISIONS["exact"]

    @classmethod
    def build(
        cls, weights: Any, metric: str, xp: Any, dtype: Any, precision: str = "exact"
    ) -> PreparedWeights:
        """Weights ``(M, D)`` in the array module ``xp`` and float type ``dtype``, with the
        product's operand rounded to ``precision`` (a name in :data:`PRECISIONS`)."""
        prepared = get_metric(metric).prepare(xp.asarray(weights, dtype=dtype), xp)
        chosen = get_precision(precision)
        if chosen.exact or prepared.scoring is None:
            return prepared
        product_dtype = chosen.product_dtype(dtype)
        offsets = prepared.offsets
        return cls(
            prepared.metric,
            prepared.weights,
            chosen.operand(prepared.scoring),
            None if offsets is None else offsets.astype(product_dtype),
            chosen,
        )

    @property
    def n_nodes(self) -> int:
        return self.weights.shape[0]

    def widen(self, block: Any) -> Any:
        """A row block of the data in the compute dtype (a no-op unless stored narrow)."""
        return block.astype(self.weights.dtype, copy=False)

    def product(self, block: Any) -> Any:
        """``block @ scoring`` in the chosen precision: ``(rows, M)`` scores before offsets."""
        return self.precision.matmul(self.precision.operand(block), self.scoring)


class Metric:
    """A distance between samples and node weights, as the BMU search uses it.

    ``scores`` of a row block are higher for closer nodes; a product-based metric computes them
    as one matrix product plus per-node offsets, so the search runs at BLAS speed.
    """

    name: str
    # Whether scores come from a product (the part that a narrower precision speeds up).
    uses_product = True

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        """The weights in the form :meth:`scores` needs (computed once per chunk)."""
        raise NotImplementedError

    def scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        """``(rows, M)`` scores of a row block, higher is closer.

        ``mask`` (rows x D, or None when every value is observed) marks the observed values;
        missing ones are zero in ``block`` and take no part in the distance.
        """
        raise NotImplementedError

    def search_scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        """``(scores, offsets)``: the BMU of a row is the column of its highest
        ``scores - offsets`` (offsets None: of its highest score).

        Kept apart so that a GPU subtracts and searches in one pass over the scores.
        """
        return self.scores(block, prepared, mask), None

    def distances(self, block: Any, scores: Any) -> Any:
        """``(rows, M)`` distances of a row block from its :meth:`scores`."""
        raise NotImplementedError

    def block_rows(self, n_nodes: int, n_features: int) -> int:
        """Rows per block: one ``rows x M`` score matrix of :data:`SCORE_BLOCK_ELEMENTS`."""
        return max(64, arrays.SCORE_BLOCK_ELEMENTS // max(1, n_nodes))


class Euclidean(Metric):
    """``||x - w||``; the search maximises ``x . w - ||w||^2 / 2`` (over observed features)."""

    name = "euclidean"

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        offsets = 0.5 * (weights * weights).sum(axis=1)
        return PreparedWeights(self, weights, xp.ascontiguousarray(weights.T), offsets)

    def scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        scores = prepared.product(block)
        if mask is None:
            scores -= prepared.offsets
        else:
            w = prepared.weights
            scores -= 0.5 * (mask.astype(block.dtype) @ (w * w).T)
        return scores

    def search_scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        if mask is None:
            return prepared.product(block), prepared.offsets
        return self.scores(block, prepared, mask), None

    def distances(self, block: Any, scores: Any) -> Any:
        xp = array_module(block)
        squared = (block * block).sum(axis=1)[:, None] - 2.0 * scores
        return xp.sqrt(xp.maximum(squared, 0.0))


class Cosine(Metric):
    """``1 - x . w / (||x|| ||w||)``; the search maximises ``x . w / ||w||`` (both over the
    observed features)."""

    name = "cosine"

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        norms = xp.sqrt((weights * weights).sum(axis=1))
        unit = weights / xp.maximum(norms, xp.finfo(weights.dtype).tiny)[:, None]
        return PreparedWeights(self, weights, xp.ascontiguousarray(unit.T), None)

    def scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        if mask is None:
            return prepared.product(block)
        xp = array_module(block)
        w = prepared.weights
        norms = xp.sqrt(mask.astype(block.dtype) @ (w * w).T)
        return (block @ w.T) / xp.maximum(norms, xp.finfo(block.dtype).tiny)

    def distances(self, block: Any, scores: Any) -> Any:
        xp = array_module(block)
        norms = xp.sqrt((block * block).sum(axis=1))
        return 1.0 - scores / xp.maximum(norms, xp.finfo(block.dtype).tiny)[:, None]


class Manhattan(Metric):
    """``sum |x - w|``, over a bounded ``rows x nodes x features`` difference tensor."""

    name = "manhattan"
    uses_product = False

    def prepare(self, weights: Any, xp: Any) -> PreparedWeights:
        return PreparedWeights(self, weights, None, None)

    def scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        xp = array_module(block)
        w = prepared.weights
        n_rows, n_features = block.shape
        step = max(1, MANHATTAN_BLOCK_ELEMENTS // max(1, n_rows * n_features))
        out = xp.empty((n_rows, prepared.n_nodes), dtype=block.dtype)
        weight = None if mask is None else mask.astype(block.dtype)[:, None, :]
        for start in range(0, prepared.n_nodes, step):
            diff = xp.abs(block[:, None, :] - w[None, start : start + step])
            if weight is not None:
                diff *= weight
            out[:, start : start + step] = -diff.sum(-1)
        return out

    def distances(self, block: Any, scores: Any) -> Any:
        return -scores

    def block_rows(self, n_nodes: int, n_features: int) -> int:
        return max(1, min(256, MANHATTAN_BLOCK_ELEMENTS // max(1, n_nodes * n_features)))


METRICS: dict[str, Metric] = {m.name: m for m in (Euclidean(), Cosine(), Manhattan())}


def get_metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``; ``ValueError`` naming the choices otherwise."""
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}; choose one of {', '.join(METRICS)}.")
    return METRICS[name]


def prepare(
    chunk: Any, weights: Any, metric: str, nan_policy: str = "raise", precision: str = "exact"
) -> tuple[Any, Any, PreparedWeights]:
    """A chunk made ready for the search: ``(x, mask, prepared weights)``.

    ``x`` is the chunk in its compute dtype (float64 where float32 could overflow), or as it is
    when stored narrow (:func:`is_narrow`; blocks are widened by :meth:`PreparedWeights.widen`),
    with missing values (NaN, under ``nan_policy="ignore"``) set to zero; ``mask`` marks the
    observed values, or is None when the chunk misses none.  ``precision`` (a name in
    :data:`PRECISIONS`) rounds the search's product; values it cannot hold are refused.
    """
    xp = array_module(chunk)
    dtype = compute_dtype(chunk.dtype)
    x = chunk if is_narrow(chunk.dtype) else xp.asarray(chunk, dtype=dtype)
    mask = None
    if nan_policy == "ignore" and x.dtype.kind == "f":
        missing = xp.isnan(x)
        if missing.any():
            mask = ~missing
            x = xp.where(mask, x, 0)
    chosen = get_precision(precision)
    if dtype == np.float32 or not chosen.exact:
        largest = largest_magnitude(x, weights)
        limit = float32_limit(x.shape[1])
        if not chosen.exact:
            chosen.check_range(largest, limit)
        elif largest > limit:
            dtype = np.dtype(np.float64)
            x = x.astype(dtype)
    return x, mask, PreparedWeights.build(weights, metric, xp, dtype, precision)
