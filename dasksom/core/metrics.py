"""Distances between rows and prototypes (design.md section 5): one registry, :data:`METRICS`.

Adding a metric means adding one :class:`Metric` class there; validation, the BMU search,
``transform`` and the command line's choices all read the table.  A metric turns the weights
into :class:`PreparedWeights` once per chunk, and :func:`prepare` makes a chunk ready for the
search: its compute type (float64 where float32 could overflow, :func:`float32_limit`), its
missing values and the rounding of the product (:mod:`dasksom.core.precision`)."""

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

    Parameters
    ----------
    n_features : int
        ``D``, the length of the products.

    Returns
    -------
    float
        ``sqrt(float32 max / (4 D))``: a factor 4 of headroom.
    """
    return float(np.sqrt(np.finfo(np.float32).max / (4.0 * max(1, n_features))))


def largest_magnitude(x: Any, weights: Any) -> float:
    """The largest absolute value of the chunk and of the weights.

    Parameters
    ----------
    x : array of shape (n, D), NumPy or CuPy
        The chunk (may be empty).
    weights : array-like of shape (M, D)
        The weights.

    Returns
    -------
    float
    """
    # max and min rather than abs(): no temporary the size of the chunk.
    largest = max(float(x.max()), -float(x.min())) if x.size else 0.0
    return max(largest, float(np.abs(weights).max(initial=0.0)))


@dataclass
class PreparedWeights:
    """Weights in the form a metric's BMU search needs, built once per chunk.

    Attributes
    ----------
    metric : Metric
        The metric that built them.
    weights : array of shape (M, D)
        In the chunk's array module and compute dtype.
    scoring : array of shape (D, M) or None
        The product's right operand, rounded to ``precision``; None when the metric's scores
        are not a product.
    offsets : array of shape (M,) or None
        Subtracted from the product's scores, or None.
    precision : Precision, default=PRECISIONS["exact"]
        How the product rounds its operands.
    """

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
        product's operand rounded to ``precision``.

        Parameters
        ----------
        weights : array-like of shape (M, D)
            The map's weights.
        metric : {"euclidean", "cosine", "manhattan"}
            A name in :data:`METRICS`.
        xp : module
            ``numpy`` or ``cupy``, the chunk's array module.
        dtype : numpy dtype
            The chunk's compute dtype.
        precision : {"exact", "tf32", "bfloat16", "float16"}, default="exact"
            A name in :data:`~dasksom.core.precision.PRECISIONS`; a metric whose scores are no
            product ignores it.

        Returns
        -------
        PreparedWeights

        Raises
        ------
        ValueError
            For an unknown ``metric`` or ``precision``.
        """
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
        """Number of nodes ``M``."""
        return self.weights.shape[0]

    def widen(self, block: Any) -> Any:
        """A row block of the data in the compute dtype (a no-op unless stored narrow).

        Parameters
        ----------
        block : array of shape (rows, D)
            Rows of the chunk, as :func:`prepare` left them.

        Returns
        -------
        array of shape (rows, D)
            In the weights' dtype; ``block`` itself when it already is.
        """
        return block.astype(self.weights.dtype, copy=False)

    def product(self, block: Any) -> Any:
        """``block @ scoring`` in the chosen precision: the scores before offsets.

        Parameters
        ----------
        block : array of shape (rows, D)
            Rows in the compute dtype.

        Returns
        -------
        array of shape (rows, M)
        """
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
        """The weights in the form :meth:`scores` needs (computed once per chunk).

        Parameters
        ----------
        weights : array of shape (M, D)
            In the chunk's array module and compute dtype.
        xp : module
            That array module.

        Returns
        -------
        PreparedWeights
            Exact; :meth:`PreparedWeights.build` rounds it to a precision.
        """
        raise NotImplementedError

    def scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        """``(rows, M)`` scores of a row block, higher is closer.

        Parameters
        ----------
        block : array of shape (rows, D)
            Rows in the compute dtype (see :meth:`PreparedWeights.widen`).
        prepared : PreparedWeights
            From :meth:`prepare`.
        mask : bool array of shape (rows, D) or None, default=None
            Marks the observed values; missing ones are zero in ``block`` and take no part in
            the distance.  None when every value is observed.

        Returns
        -------
        array of shape (rows, M)
        """
        raise NotImplementedError

    def search_scores(self, block: Any, prepared: PreparedWeights, mask: Any = None) -> Any:
        """Scores and offsets whose difference the BMU search maximises.

        Kept apart so that a GPU subtracts and searches in one pass over the scores.

        Parameters
        ----------
        block : array of shape (rows, D)
            Rows in the compute dtype.
        prepared : PreparedWeights
            From :meth:`prepare`.
        mask : bool array of shape (rows, D) or None, default=None
            Marks the observed values, as for :meth:`scores`.

        Returns
        -------
        scores : array of shape (rows, M)
            May be overwritten by the search.
        offsets : array of shape (M,) or None
            The BMU of a row is the column of its highest ``scores - offsets`` (offsets None:
            of its highest score).
        """
        return self.scores(block, prepared, mask), None

    def distances(self, block: Any, scores: Any) -> Any:
        """``(rows, M)`` distances of a row block from its :meth:`scores`.

        Parameters
        ----------
        block : array of shape (rows, D)
            The rows the scores were computed for.
        scores : array of shape (rows, M)
            Their :meth:`scores`.

        Returns
        -------
        array of shape (rows, M)
            In the metric's own terms.
        """
        raise NotImplementedError

    def block_rows(self, n_nodes: int, n_features: int) -> int:
        """Rows per block of the search on CPUs.

        Parameters
        ----------
        n_nodes : int
            Nodes of the map.
        n_features : int
            Features of a row.

        Returns
        -------
        int
            This default: one ``rows x M`` score matrix of
            :data:`~dasksom.backends.arrays.SCORE_BLOCK_ELEMENTS`, and at least 64 rows.
        """
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
        """Rows per block: one difference tensor of about :data:`MANHATTAN_BLOCK_ELEMENTS`, at most
        256 rows, on CPUs and GPUs alike."""
        return max(1, min(256, MANHATTAN_BLOCK_ELEMENTS // max(1, n_nodes * n_features)))


METRICS: dict[str, Metric] = {m.name: m for m in (Euclidean(), Cosine(), Manhattan())}


def get_metric(name: str) -> Metric:
    """The :class:`Metric` called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`METRICS`.

    Returns
    -------
    Metric

    Raises
    ------
    ValueError
        When ``name`` is not one, naming the choices.
    """
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"Unknown metric {name!r}; choose one of {', '.join(METRICS)}.")
    return METRICS[name]


def prepare(
    chunk: Any, weights: Any, metric: str, nan_policy: str = "raise", precision: str = "exact"
) -> tuple[Any, Any, PreparedWeights]:
    """A chunk made ready for the search: ``(x, mask, prepared weights)``.

    Parameters
    ----------
    chunk : array of shape (n, D), NumPy or CuPy
        Rows of any numeric dtype, already checked for values the data may not hold.
    weights : array-like of shape (M, D)
        The map's weights.
    metric : {"euclidean", "cosine", "manhattan"}
        A name in :data:`METRICS`.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"ignore"``: NaN marks a missing value.
    precision : {"exact", "tf32", "bfloat16", "float16"}, default="exact"
        Rounding of the search's product (see :mod:`dasksom.core.precision`).

    Returns
    -------
    x : array of shape (n, D)
        The chunk in its compute dtype (float64 where float32 could overflow), or as it is
        when stored narrow (:func:`~dasksom.backends.arrays.is_narrow`; blocks are widened by
        :meth:`PreparedWeights.widen`), with missing values (NaN, under
        ``nan_policy="ignore"``) set to zero.
    mask : bool array of shape (n, D) or None
        Marks the observed values; None when the chunk misses none.
    prepared : PreparedWeights
        The weights in ``x``'s array module and compute dtype.

    Raises
    ------
    ValueError
        When a narrow ``precision`` cannot hold the data's or the weights' largest value, or
        for an unknown ``metric`` or ``precision``.
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
