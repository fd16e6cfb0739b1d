"""Exact best-matching units that skip distances which cannot win (design.md, "Pruned search").

:func:`dasksom.core.search.best_matching_units` scores every row against every node with one
``n x D`` by ``D x M`` product.  The pruned search first bounds every distance from below with
a product of width ``k + 2`` (``k`` principal axes, much smaller than ``D``), computes a true
distance to one cheap node per row, and computes true distances only to the nodes whose lower
bound does not exceed it:

- centre: ``x' = x - mu``, ``w' = w - mu`` (``mu`` the data mean, so the digits of large
  offsets are not lost in the products);
- project: ``a = P^T x'``, ``c = P^T w'`` on an orthonormal basis ``P`` (``D x k``), and take the
  residual norms ``r = sqrt(|x'|^2 - |a|^2)``;
- bound: ``|x' - w'|^2 >= |x'|^2 + |w'|^2 - 2 (a . c + r_x r_w)`` (Cauchy-Schwarz on the
  residuals), one product ``[1, -2a, -2r_x] @ [|w'|^2, c, r_w]^T`` for a block of rows;
- threshold: the true distance of the node with the smallest bound (two nodes with
  ``second=True``, or the row's previous BMU), made an upper bound for its rounding;
- candidates: the nodes whose bound is at most the threshold plus a margin that covers every
  rounding of the bound (derived in design.md from ``|fl(a . b) - a . b| <= gamma_n |a| |b|``);
- the BMU is the best candidate by the metric's own score, ties to the lowest index.

Every node whose exact distance is at most the threshold is a candidate, whatever the rounding,
so the exact best (and second-best) node is always among them: the result equals brute force
except between nodes whose distances are equal within rounding.  Cosine searches unit rows and
unit weights (a euclidean search); manhattan uses ``|v|_1 >= |v|_2``.  Rows stored narrow
(uint8, float16) are widened one block at a time.

The search runs in two phases over blocks of up to :data:`SORT_BLOCK_ROWS` rows.  Phase 1
streams the rows once and keeps ``O(k)`` values per row: the bound's left operand, its margins,
and a key, the node nearest in the :data:`SORT_COMPONENTS` leading coordinates.  Phase 2 sorts
the rows by their key and takes them in groups of :data:`GROUP_ROWS` (rows of one key together,
so that their candidates' weights stay in cache): each group computes its bound matrix and
thresholds, then scores the candidates.  On CPUs the compiled kernel of
:mod:`dasksom.core.candidates` scores each row's own candidates in one pass over its bounds; on
GPUs, where branching per element is slow, the candidates of a group are masked and compacted
into the union of its rows' candidates and scored by one dense product (rows with many more
candidates than the group's median get a union of their own).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from dasksom.backends.arrays import array_module, to_host

PRUNED_METRICS = ("euclidean", "cosine", "manhattan")
# Principal axes of the bound when none are given (principal_basis, PrunedIndex.from_rows).
DEFAULT_COMPONENTS = 32
# Rows per group on CPUs: one (rows x M) bound matrix per group; fewer rows pay Python's
# per-group overhead more often, more gain nothing (benchmarks: 64 rows 0.53 s, 256 0.49 s,
# 2048 0.50 s for an MNIST epoch's pass with a 50x50 map).
GROUP_ROWS = 256
# Rows sorted together into groups: phase 1 keeps O(k) values for each of them.
SORT_BLOCK_ROWS = 1 << 16
# Elements (rows x D) of the widened, centred row block of phase 1.
PREPARE_BLOCK_ELEMENTS = 1 << 21
# Leading principal coordinates of the key that rows are grouped by, and the elements of
# its (rows x M) score block.
SORT_COMPONENTS = 16
KEY_BLOCK_ELEMENTS = 1 << 18
# A row of a group with more candidates than this times the group's median has its own union.
HEAVY_ROW_FACTOR = 3
# Elements (pairs x D) of the gathered differences of the manhattan candidates.
PAIR_BLOCK_ELEMENTS = 1 << 20
# Above this many features the principal axes of the (in-memory) sample come from an SVD of
# its rows, cheaper there than the eigenvectors of the D x D covariance.
MAX_COVARIANCE_FEATURES = 4096
U64 = 2.0**-53


def unit_roundoff(dtype: Any) -> float:
    """``u``, half the machine epsilon of ``dtype`` (2**-24 for float32, 2**-53 for float64)."""
    return float(np.finfo(dtype).eps) / 2.0


def gamma(n: int, u: float) -> float:
    """``gamma_n = n u / (1 - n u)``, rounded up: the relative error bound of ``n`` roundings.

    ``n u`` and ``1 - n u`` are exact for a power-of-two ``u`` and ``n u < 1``; the division
    rounds once, and the result is moved up by one ulp.
    """
    nu = n * u
    if nu >= 0.5:
        raise ValueError(f"gamma_{n} is undefined for unit roundoff {u}: too many operations")
    return float(np.nextafter(nu / (1.0 - nu), np.inf))


# --- directed float64 arithmetic -------------------------------------------------------------
# Each float64 operation rounds once, to nearest; moving its result one ulp outwards gives an
# upper (lower) bound of the exact result of that operation on its floating operands.


def _up(value: Any) -> Any:
    return np.nextafter(value, np.inf)


def _down(value: Any) -> Any:
    return np.nextafter(value, -np.inf)


def _upper(value: Any, relative: float) -> Any:
    """Upper bound of a nonnegative exact ``v`` from ``value``, ``|value - v| <= relative v``."""
    return _up(value * float(_up(1.0 + 2.0 * relative)))  # 1 / (1 - g) <= 1 + 2 g, g <= 1/2


def _lower(value: Any, relative: float) -> Any:
    """Lower bound of a nonnegative exact ``v`` from ``value``, ``|value - v| <= relative v``."""
    return _down(value * float(_down(1.0 - relative)))  # 1 / (1 + g) >= 1 - g


def _in_dtype(value: Any, dtype: Any, upward: bool) -> Any:
    """float64 ``value`` in ``dtype``, rounded up (or down) rather than to nearest."""
    xp = array_module(value)
    rounded = value.astype(dtype)
    wide = rounded.astype(np.float64)
    limit = xp.asarray(np.inf if upward else -np.inf, dtype=dtype)
    wrong = wide < value if upward else wide > value
    return xp.where(wrong, xp.nextafter(rounded, limit), rounded)


def _sum_squares(a: Any) -> tuple[Any, Any]:
    """Lower and upper float64 bounds of every row's exact ``sum a_i^2``.

    The products of float32 values are exact in float64 and float64 ones round once; the sum
    of ``n`` nonnegative terms then errs by at most ``gamma_n`` of itself.
    """
    xp = array_module(a)
    if a.shape[1] == 0:
        zeros = xp.zeros(a.shape[0], dtype=np.float64)
        return zeros, zeros
    total = xp.einsum("ij,ij->i", a, a, dtype=np.float64)
    relative = gamma(a.shape[1] + 1, U64)
    # A sum of squares is never negative: the directed rounding of 0 would be.
    return xp.maximum(_lower(total, relative), 0.0), _upper(total, relative)


# --- the index -------------------------------------------------------------------------------


@dataclass
class PrunedIndex:
    """Node weights prepared for :func:`pruned_best_matching_units`: centred, projected, bounded.

    Build it with :meth:`build` (from a basis and a mean) or :meth:`from_rows` (which computes
    them); every field is derived from the weights, the basis and the mean.

    Attributes
    ----------
    metric : str
        ``"euclidean"``, ``"cosine"`` or ``"manhattan"``.
    weights : array (M, D)
        The nodes searched, in the compute dtype (unit rows for cosine, as
        :class:`dasksom.core.metrics.Cosine` scores them).
    mean : array (D,)
        ``mu``, in the compute dtype.
    basis : array (D, k)
        ``P``, in the compute dtype.
    centred : array (M, D)
        ``w' = fl(w - mu)``.
    half_norms : array (M,)
        ``|w'|^2 / 2`` in the compute dtype: the euclidean score of a candidate is
        ``x' . w' - |w'|^2 / 2``.
    operand : array (k + 2, M)
        The bound product's right operand ``[nu_w; c~; r~_w]``: ``|w'|^2`` rounded down,
        projections, residual norms rounded up.
    sort_operand : array (k_s + 1, M)
        ``[|c~_s|^2; c~_s]`` for the ``k_s = min(k, SORT_COMPONENTS)`` leading coordinates:
        the node nearest in them is the key rows are grouped by.
    node_norms : float64 array (M,)
        Upper bounds of ``|w_k|`` (cosine: of the unit rows).
    gram_error : float
        ``phi_G``, an upper bound of ``||P^T P - I||_2``.
    row_projection_error : float
        ``eps_a``: ``|fl(P^T x') - P^T x'| <= eps_a |x'|``.
    cross_error : float
        ``psi``: ``x' . w' <= a~ . c~ + r~_x r~_w + psi |x'| |w'|``.
    max_centred_norm : float
        Upper bound of ``max_k |w'_k|``.
    max_operand_norm : float
        Upper bound of ``max_k |[c~_k, r~_wk]|``.
    max_squared_norm : float
        ``max_k nu_wk``.
    max_node_square : float
        Upper bound of ``max_k |w_k|^2`` (cosine's threshold).
    """

    metric: str
    weights: Any
    mean: Any
    basis: Any
    centred: Any
    half_norms: Any
    operand: Any
    sort_operand: Any
    node_norms: Any
    gram_error: float
    row_projection_error: float
    cross_error: float
    max_centred_norm: float
    max_operand_norm: float
    max_squared_norm: float
    max_node_square: float

    @property
    def n_nodes(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def n_components(self) -> int:
        return int(self.basis.shape[1])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.weights.dtype)

    @property
    def unit_roundoff(self) -> float:
        return unit_roundoff(self.dtype)

    def to(self, xp: Any) -> PrunedIndex:
        """This index with its arrays in the array module ``xp`` (itself where they are)."""
        if array_module(self.weights) is xp:
            return self
        moved = {name: xp.asarray(getattr(self, name)) for name in _INDEX_ARRAYS}
        return replace(self, **moved)

    @classmethod
    def build(
        cls,
        weights: Any,
        basis: Any,
        mean: Any,
        metric: str = "euclidean",
        dtype: Any = np.float32,
    ) -> PrunedIndex:
        """Prepare ``weights`` for the pruned search.

        Parameters
        ----------
        weights : array (M, D)
            Node weights, numpy or cupy.
        basis : array (D, k)
            Orthonormal columns (``k = 0`` allowed): the top principal axes of the data give
            the tightest bounds, but any orthonormal basis gives exact results.  Columns that
            are orthonormal only to within rounding are accounted for; a basis further than
            1/2 from orthonormal (``||P^T P - I||_2``) is refused.
        mean : array (D,)
            ``mu``, the centre (the data mean; for cosine the mean of the unit rows).  Any
            vector gives exact results; the mean keeps the bounds tight.
        metric : {"euclidean", "cosine", "manhattan"}, default "euclidean"
        dtype : float dtype, default float32
            The compute dtype: the rows searched must be of this type or narrower.

        Returns
        -------
        PrunedIndex
        """
        if metric not in PRUNED_METRICS:
            raise ValueError(
                f"Unknown metric {metric!r}; choose one of {', '.join(PRUNED_METRICS)}."
            )
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, not {dtype}")
        xp = array_module(weights)
        w = xp.asarray(weights, dtype=dtype)
        if w.ndim != 2 or w.shape[0] == 0:
            raise ValueError(f"weights must be a non-empty (M, D) array, got shape {w.shape}")
        n_nodes, n_features = w.shape
        p = xp.asarray(basis, dtype=dtype)
        if p.ndim != 2 or p.shape[0] != n_features:
            raise ValueError(f"basis must be ({n_features}, k), got shape {p.shape}")
        n_components = p.shape[1]
        if n_components > n_features:
            raise ValueError(
                f"a basis of {n_components} orthonormal columns cannot exist in "
                f"{n_features} dimensions; use at most {n_features}"
            )
        mu = xp.asarray(mean, dtype=dtype).reshape(-1)
        if mu.shape != (n_features,):
            raise ValueError(f"mean must have {n_features} values, got {mu.shape}")
        for name, value in (("weights", w), ("basis", p), ("mean", mu)):
            if not bool(xp.isfinite(value).all()):
                raise ValueError(f"{name} holds NaN or infinite values")
        if metric == "cosine":
            norms = xp.sqrt((w * w).sum(axis=1))
            w = w / xp.maximum(norms, xp.finfo(dtype).tiny)[:, None]
        _check_range(max(_largest(w), _largest(mu)), n_features, dtype)

        u = unit_roundoff(dtype)
        gram_error, frobenius = _orthonormality(p)
        root = float(_up(np.sqrt(float(_up(1.0 + gram_error)))))  # sqrt(1 + phi_G)
        inverse_error = float(_up(gram_error / float(_down(1.0 - gram_error))))  # ||G^-1 - I||
        row_error = float(_up(gamma(n_features, u) * frobenius))
        g64 = gamma(n_features + 1, U64) * frobenius
        node_error = float(_up(_up(g64 * (1.0 + u)) + _up(u * root)))
        cross_error = float(
            _up(
                _up(_up(inverse_error * float(_up(1.0 + gram_error))))
                + _up(root * float(_up(row_error + node_error)))
                + _up(row_error * node_error)
            )
        )

        centred = w - mu[None, :]
        # Node side in float64 (products of float32 values are exact there), then rounded.
        projections = (centred.astype(np.float64) @ p.astype(np.float64)).astype(dtype)
        squares_low, squares_high = _sum_squares(centred)
        residuals = _residual_norms(projections, squares_low, squares_high, node_error, gram_error)
        operand = xp.empty((n_components + 2, n_nodes), dtype=dtype)
        operand[0] = xp.maximum(_in_dtype(squares_low, dtype, upward=False), 0)
        operand[1 : n_components + 1] = projections.T
        operand[n_components + 1] = residuals
        operand_squares = _sum_squares(xp.ascontiguousarray(operand[1:].T))[1]
        leading = projections[:, : min(SORT_COMPONENTS, n_components)]
        sort_operand = xp.concatenate([(leading * leading).sum(axis=1)[None, :], leading.T])
        node_squares = _sum_squares(w)[1]
        return cls(
            metric=metric,
            weights=w,
            mean=mu,
            basis=p,
            centred=centred,
            half_norms=(0.5 * (centred * centred).sum(axis=1)).astype(dtype),
            operand=xp.ascontiguousarray(operand),
            sort_operand=xp.ascontiguousarray(sort_operand),
            node_norms=_up(xp.sqrt(node_squares)),
            gram_error=gram_error,
            row_projection_error=row_error,
            cross_error=cross_error,
            max_centred_norm=float(_up(np.sqrt(float(squares_high.max())))),
            max_operand_norm=float(_up(np.sqrt(float(operand_squares.max())))),
            max_squared_norm=float(operand[0].max()),
            max_node_square=float(node_squares.max()),
        )

    @classmethod
    def from_rows(
        cls,
        weights: Any,
        rows: Any = None,
        n_components: int = DEFAULT_COMPONENTS,
        metric: str = "euclidean",
        dtype: Any = np.float32,
    ) -> PrunedIndex:
        """:meth:`build` with the mean and top principal axes of ``rows`` (:func:`principal_basis`).

        Parameters
        ----------
        weights : array (M, D)
        rows : array (n, D) or None, default None
            A sample of the data; None takes the weights themselves.
        n_components : int, default :data:`DEFAULT_COMPONENTS`
            ``k``, clipped to ``D``.
        metric : {"euclidean", "cosine", "manhattan"}, default "euclidean"
        dtype : float dtype, default float32
        """
        mean, basis = principal_basis(weights if rows is None else rows, n_components, metric)
        return cls.build(weights, basis, mean, metric, dtype)


_INDEX_ARRAYS = (
    "weights",
    "mean",
    "basis",
    "centred",
    "half_norms",
    "operand",
    "sort_operand",
    "node_norms",
)


def principal_basis(
    rows: Any, n_components: int = DEFAULT_COMPONENTS, metric: str = "euclidean"
) -> tuple[np.ndarray, np.ndarray]:
    """Mean and top principal axes of ``rows``, for :meth:`PrunedIndex.build`.

    Training takes them from a sample of rows spread over every chunk
    (:func:`dasksom.training.search_plans.search_sample`).

    Parameters
    ----------
    rows : array (n, D)
        A sample of the data, or the weights.  Cosine takes their unit rows.
    n_components : int, default :data:`DEFAULT_COMPONENTS`
        ``k``, clipped to ``D`` (and, above :data:`MAX_COVARIANCE_FEATURES` features, to ``n``).
    metric : str, default "euclidean"

    Returns
    -------
    mean : float64 array (D,)
    basis : float64 array (D, k), orthonormal columns in order of decreasing variance
    """
    r = np.array(to_host(rows), dtype=np.float64)
    if r.ndim != 2 or r.shape[0] == 0:
        raise ValueError(f"rows must be a non-empty (n, D) array, got shape {r.shape}")
    if metric == "cosine":
        norms = np.sqrt((r * r).sum(axis=1))
        r /= np.maximum(norms, np.finfo(np.float64).tiny)[:, None]
    mean = r.mean(axis=0)
    r -= mean
    n_features = r.shape[1]
    k = max(0, min(int(n_components), n_features))
    if n_features <= MAX_COVARIANCE_FEATURES:
        _, vectors = np.linalg.eigh(r.T @ r)
        basis = vectors[:, ::-1][:, :k]
    else:
        _, _, vt = np.linalg.svd(r, full_matrices=False)
        basis = vt[:k].T
    return mean, np.ascontiguousarray(basis)


def _largest(a: Any) -> float:
    return max(float(a.max()), -float(a.min())) if a.size else 0.0


def _range_limit(dtype: Any, n_features: int) -> float:
    """Largest magnitude for which every operand and product of the bound stays finite.

    With values of magnitude at most ``v``, ``|x'| <= 2 v sqrt(D)``, the bound's terms are at
    most ``12 D v^2``: below ``16 D v^2 <= max`` they cannot overflow.
    """
    return float(np.sqrt(np.finfo(dtype).max / (16.0 * max(1, n_features))))


def _check_range(largest: float, n_features: int, dtype: Any) -> None:
    if not np.isfinite(largest):
        raise ValueError(
            "the pruned search needs finite values; NaN-masked rows (nan_policy='ignore') "
            "are not supported, use dasksom.core.search.best_matching_units"
        )
    limit = _range_limit(dtype, n_features)
    if largest > limit:
        raise ValueError(
            f"values up to {largest:.3g} could overflow the {np.dtype(dtype).name} bound "
            f"(limit {limit:.3g} for {n_features} features); build the index with "
            "dtype=float64"
        )


def _orthonormality(p: Any) -> tuple[float, float]:
    """``(phi_G, ||P||_F)``: upper bounds of ``||P^T P - I||_2`` and of the Frobenius norm.

    ``G`` is computed in float64 (errs by at most ``gamma_{D+1} |P|^T |P|`` elementwise, whose
    Frobenius norm is at most ``||P||_F^2``); the spectral norm is at most the Frobenius norm.
    """
    n_features, n_components = p.shape
    if n_components == 0:
        return 0.0, 0.0
    wide = to_host(p).astype(np.float64)
    squares = float((wide * wide).sum())
    squares_high = float(_upper(squares, gamma(n_features * n_components + 1, U64)))
    gram = wide.T @ wide
    deviation = gram - np.eye(n_components)
    frob = float(np.sqrt((deviation * deviation).sum()))
    frob_high = float(_upper(frob, gamma(n_components * n_components + 4, U64)))
    gram_error = float(_up(frob_high + float(_up(gamma(n_features + 1, U64) * squares_high))))
    if gram_error >= 0.5:
        raise ValueError(
            f"basis columns are not orthonormal (||P^T P - I|| up to {gram_error:.3g}); pass "
            "orthonormal columns, e.g. from principal_basis or numpy.linalg.qr"
        )
    return gram_error, float(_up(np.sqrt(squares_high)))


def _residual_norms(
    projections: Any, squares_low: Any, squares_high: Any, error: float, gram_error: float
) -> Any:
    """Upper bounds of ``|R v|`` (the part of ``v`` outside the basis), in the compute dtype.

    ``|R v|^2 = |v|^2 - a^T G^-1 a <= |v|^2 - |a|^2 / (1 + phi_G)`` with the exact projection
    ``a``, and ``|a| >= |a~| - eps |v|`` for the computed one ``a~``.
    """
    xp = array_module(projections)
    norms_high = _up(xp.sqrt(squares_high))
    projected_low = _down(xp.sqrt(_sum_squares(projections)[0]))
    exact_low = xp.maximum(_down(projected_low - _up(error * norms_high)), 0.0)
    inside_low = _down(_down(exact_low * exact_low) / float(_up(1.0 + gram_error)))
    outside = _up(xp.sqrt(xp.maximum(_up(squares_high - inside_low), 0.0)))
    return _in_dtype(outside, projections.dtype, upward=True)


# --- the search ------------------------------------------------------------------------------


@dataclass
class PrunedSearch:
    """What :func:`pruned_best_matching_units` found.

    Attributes
    ----------
    best : int64 array (n,)
        BMU of every row, ties to the lowest index (as brute force).
    second : int64 array (n,) or None
        Second-best unit (``second=True``), None otherwise.
    candidates : int64 array (n,)
        Nodes whose bound passed the threshold, per row: the nodes that could have won.
    evaluated : int64 array (n,)
        Nodes whose true distance was computed for the row (its group's union of candidates
        for euclidean and cosine, its own candidates for manhattan), at least ``candidates``.
    """

    best: Any
    second: Any
    candidates: Any
    evaluated: Any

    def fraction_evaluated(self, n_nodes: int) -> float:
        """Mean share of the ``n x M`` true distances that were computed."""
        if self.evaluated.size == 0:
            return 0.0
        return float(self.evaluated.mean()) / n_nodes


@dataclass
class _RowBounds:
    """Phase 1's per-row results for a sort block: the bound operand and its margins."""

    left: Any  # (n, k + 2) [1, -2 a~, -2 r~_x], compute dtype
    squares_low: Any  # float64 lower bound of |x'|^2
    slack: Any  # float64 upper bound of the bound's rounding, added to the threshold
    centring: Any  # float64 eta_x + eta_W: |x - w| and |x' - w'| differ by at most this
    norms_high: Any  # float64 upper bound of |x^| (cosine's threshold), or None
    squares_high: Any  # float64 upper bound of |x^|^2 (cosine's threshold), or None
    key: Any  # (n,) the node rows are sorted by: smallest bound, or the previous BMU


def pruned_best_matching_units(
    x: Any,
    index: PrunedIndex,
    second: bool = False,
    previous: Any = None,
    block_rows: int | None = None,
    mask: Any = None,
) -> PrunedSearch:
    """BMU of every row of ``x`` (and the second-best), exact, computing few distances.

    Parameters
    ----------
    x : array (n, D), numpy or cupy
        Rows in the index's compute dtype or narrower (uint8, int16, float16: widened one
        block at a time).  A wider type is refused rather than rounded.
    index : PrunedIndex
    second : bool, default False
        Also find the second-best unit of every row (for the topographic error).
    previous : int array (n,) or None, default None
        A guess of every row's BMU (the previous epoch's).  Rows are grouped by it, and with
        ``second=False`` its true distance is the threshold, which saves finding the node of
        smallest bound first.
    block_rows : int or None, default None
        Rows per group (:data:`GROUP_ROWS`): one ``block_rows x M`` bound matrix and one dense
        product against the union of the group's candidates.
    mask : None
        Missing values are not supported: anything but None is refused.

    Returns
    -------
    PrunedSearch
        ``best`` (and ``second``) equal brute force's except between nodes whose distances
        are equal within rounding; ``candidates`` and ``evaluated`` count nodes per row.
    """
    if mask is not None:
        raise ValueError(
            "the pruned search does not take missing values (nan_policy='ignore'); use "
            "dasksom.core.search.best_matching_units for masked rows"
        )
    xp = array_module(x)
    if x.ndim != 2 or x.shape[1] != index.n_features:
        raise ValueError(f"x must be (n, {index.n_features}), got shape {x.shape}")
    if not np.can_cast(x.dtype, index.dtype, casting="safe"):
        raise ValueError(
            f"rows of type {x.dtype} are wider than the index's {index.dtype}; build the "
            "index with that dtype"
        )
    n_rows = x.shape[0]
    group = max(1, int(block_rows or GROUP_ROWS))
    if previous is not None:
        previous = xp.asarray(previous).astype(np.int64).reshape(-1)
        if previous.shape != (n_rows,):
            raise ValueError(
                f"previous must hold one node per row ({n_rows}), got {previous.shape}"
            )
        if n_rows and (int(previous.min()) < 0 or int(previous.max()) >= index.n_nodes):
            raise ValueError(f"previous holds nodes outside 0..{index.n_nodes - 1}")
    found = PrunedSearch(
        best=xp.empty(n_rows, dtype=np.int64),
        second=xp.empty(n_rows, dtype=np.int64) if second else None,
        candidates=xp.empty(n_rows, dtype=np.int64),
        evaluated=xp.empty(n_rows, dtype=np.int64),
    )
    for start in range(0, n_rows, SORT_BLOCK_ROWS):
        part = slice(start, min(start + SORT_BLOCK_ROWS, n_rows))
        guess = None if previous is None else previous[part]
        bounds = _bound_rows(x[part], index, guess, group)
        _search_groups(
            x[part], bounds, index, second, guess is not None and not second, group, found, start
        )
    return found


def _widen(x: Any, index: PrunedIndex) -> Any:
    """Rows in the compute dtype (cosine: unit rows, as :class:`metrics.Cosine` scores)."""
    xp = array_module(x)
    rows = x.astype(index.dtype, copy=False)
    if index.metric == "cosine":
        norms = xp.sqrt((rows * rows).sum(axis=1))
        rows = rows / xp.maximum(norms, xp.finfo(index.dtype).tiny)[:, None]
    return rows


def _bound_rows(x: Any, index: PrunedIndex, previous: Any, group: int) -> _RowBounds:
    """Phase 1: widen, centre and project the rows block by block; bound their roundings.

    Keeps ``O(k)`` values per row, not the rows; the sort key is the node of smallest bound
    (or ``previous``).
    """
    xp = array_module(x)
    step = max(group, PREPARE_BLOCK_ELEMENTS // max(1, index.n_features))
    pieces = [_bound_block(x[s : s + step], index) for s in range(0, x.shape[0], step)]

    def joined(i: int) -> Any:
        if pieces[0][i] is None:
            return None
        return xp.concatenate([piece[i] for piece in pieces]) if pieces else None

    if not pieces:
        empty = xp.empty(0, dtype=np.float64)
        left = xp.empty((0, index.n_components + 2), dtype=index.dtype)
        return _RowBounds(left, empty, empty, empty, None, None, xp.empty(0, dtype=np.int64))
    left = joined(0)
    if previous is None:
        # The node nearest in the leading coordinates: close rows share candidates.
        width = index.sort_operand.shape[0]
        key = xp.empty(left.shape[0], dtype=np.int64)
        step = max(1, KEY_BLOCK_ELEMENTS // index.n_nodes)
        for s in range(0, left.shape[0], step):
            key[s : s + step] = (left[s : s + step, :width] @ index.sort_operand).argmin(axis=1)
    else:
        key = previous
    return _RowBounds(left, joined(1), joined(2), joined(3), joined(4), joined(5), key)


def _bound_block(x: Any, index: PrunedIndex) -> tuple[Any, ...]:
    """One block of phase 1 (design.md, "Pruned search": the margin)."""
    xp = array_module(x)
    dtype = index.dtype
    u = index.unit_roundoff
    n_components = index.n_components
    rows = _widen(x, index)
    if rows.size:
        _check_range(_largest(rows), index.n_features, dtype)
    norms_high = row_squares_high = None
    if index.metric == "cosine":
        row_squares_high = _sum_squares(rows)[1]
        norms_high = _up(xp.sqrt(row_squares_high))
    centred = rows - index.mean[None, :]
    projections = centred @ index.basis
    squares_low, squares_high = _sum_squares(centred)
    norms = _up(xp.sqrt(squares_high))
    residuals = _residual_norms(
        projections, squares_low, squares_high, index.row_projection_error, index.gram_error
    )
    left = xp.empty((rows.shape[0], n_components + 2), dtype=dtype)
    left[:, 0] = 1
    left[:, 1 : n_components + 1] = -2 * projections
    left[:, n_components + 1] = -2 * residuals
    # |[a~, r~_x]|, then the bound's rounding: gamma_{k+2} (2 |u~| max|v~| + max nu) from the
    # product and 2 psi |x'| max|w'| from the projections and the basis.
    wide = residuals.astype(np.float64)
    operand_norms = _up(xp.sqrt(_up(_sum_squares(projections)[1] + _up(wide * wide))))
    product_error = gamma(n_components + 2, u)
    reach = _up(_up(2.0 * operand_norms * index.max_operand_norm) + index.max_squared_norm)
    from_product = _up(product_error * reach)
    from_basis = _up(_up(2.0 * index.cross_error * norms) * index.max_centred_norm)
    ratio = float(_up(u / (1.0 - u)))  # |fl(v - mu) - (v - mu)| <= u / (1 - u) |fl(v - mu)|
    centring = _up(_up(ratio * norms) + float(_up(ratio * index.max_centred_norm)))
    slack = _up(from_product + from_basis)
    return left, squares_low, slack, centring, norms_high, row_squares_high


def _search_groups(
    x: Any,
    bounds: _RowBounds,
    index: PrunedIndex,
    second: bool,
    use_key: bool,
    group: int,
    found: PrunedSearch,
    offset: int,
) -> None:
    """Phase 2: rows sorted by their key, ``group`` at a time; results go into ``found``.

    Each group computes its bound matrix and its thresholds, then scores its candidates: with
    the compiled kernel on CPUs (:func:`_scan_group`), by one dense product against the
    union of its rows' candidates on GPUs.
    """
    xp = array_module(x)
    n_nodes = index.n_nodes
    order = xp.argsort(bounds.key, kind="stable")
    for start, stop in _group_bounds(bounds.key[order], group):
        rows = order[start:stop]
        local = xp.arange(rows.shape[0])
        scores = bounds.left[rows] @ index.operand
        if use_key:
            nodes = bounds.key[rows][:, None]
        else:
            first = scores.argmin(axis=1)
            nodes = first[:, None]
            if second and n_nodes > 1:
                kept = scores[local, first].copy()
                scores[local, first] = np.inf
                runner = scores.argmin(axis=1)
                scores[local, first] = kept
                nodes = xp.stack([first, runner], axis=1)
        block = _widen(x[rows], index)
        limit = _in_dtype(_threshold(block, rows, nodes, bounds, index), index.dtype, upward=True)
        targets = offset + rows
        if xp is np:
            _scan_group(block, scores, limit, index, targets, found)
            continue
        candidates = scores <= limit[:, None]
        counts = xp.count_nonzero(candidates, axis=1)
        _check_candidates(counts)
        found.candidates[targets] = counts
        if index.metric == "manhattan":
            distances, union = _manhattan_scores(block, candidates, index)
            found.evaluated[targets] = counts
            _take_best(distances, union, targets, found)
            continue
        # The union is as wide as the group's widest row: rows with many more candidates
        # than the group's median get a union of their own.
        heavy = counts > HEAVY_ROW_FACTOR * xp.sort(counts)[counts.shape[0] // 2]
        parts = (~heavy, heavy) if bool(heavy.any()) else (None,)
        for part in parts:
            chosen = local if part is None else xp.flatnonzero(part)
            wanted = candidates if part is None else candidates[chosen]
            union = xp.flatnonzero(wanted.any(axis=0))
            distances = _product_scores(block[chosen], union, index)
            found.evaluated[targets[chosen]] = union.shape[0]
            _take_best(distances, union, targets[chosen], found)


def _check_candidates(counts: Any) -> None:
    if counts.shape[0] and int(counts.min()) == 0:
        raise ValueError("the pruned search found no candidate: the rows hold NaN or inf")


def _scan_group(
    block: Any, bounds: Any, limits: Any, index: PrunedIndex, targets: Any, found: PrunedSearch
) -> None:
    """A group on the CPU: each row's own candidates scored by the compiled kernel
    (:func:`dasksom.core.candidates.best_candidates`), in the metric's terms."""
    if index.metric == "euclidean":
        rows, nodes, offsets = block - index.mean[None, :], index.centred, index.half_norms
    else:
        rows, nodes, offsets = block, index.weights, np.zeros(index.n_nodes, dtype=block.dtype)
    # numba is imported only where a CPU process prunes: brute-force workers never pay for it.
    from dasksom.core.candidates import best_candidates

    best, second, counts = best_candidates(bounds, limits, rows, nodes, offsets, index.metric)
    _check_candidates(counts)
    found.best[targets] = best
    if found.second is not None:
        # A map of one node: brute force names it second as well.
        found.second[targets] = np.where(second < 0, best, second)
    found.candidates[targets] = counts
    found.evaluated[targets] = counts


def _group_bounds(keys: Any, group: int) -> list[tuple[int, int]]:
    """``(start, stop)`` of consecutive groups of the sorted ``keys``, at most ``group`` rows.

    A group ends where a key ends unless that leaves it under half full, so that rows of one
    key (which share most candidates) stay together.
    """
    xp = array_module(keys)
    n_rows = keys.shape[0]
    ends = to_host(xp.flatnonzero(keys[1:] != keys[:-1]) + 1).tolist() + [n_rows]
    out = []
    start = 0
    for end in ends:
        while end - start > group:
            out.append((start, start + group))
            start += group
        if end - start >= group // 2 or end == n_rows:
            if end > start:
                out.append((start, end))
            start = end
    return out


def _take_best(distances: Any, union: Any, targets: Any, found: PrunedSearch) -> None:
    """The lowest (and second-lowest) distance of every row, ties to the lowest node."""
    xp = array_module(distances)
    top = distances.argmin(axis=1)
    found.best[targets] = union[top]
    if found.second is not None:
        distances[xp.arange(distances.shape[0]), top] = np.inf
        found.second[targets] = union[distances.argmin(axis=1)]


def _threshold(block: Any, rows: Any, nodes: Any, bounds: _RowBounds, index: PrunedIndex) -> Any:
    """Per row, the float64 threshold that every candidate's computed bound is held to.

    From an upper bound ``t`` of the true distance of the threshold node(s) (the larger of two
    for ``second``): every node ``k`` with ``d_k <= t`` has ``|x' - w'_k|^2 <= T``,
    ``T = (sqrt(t) + eta)^2`` (manhattan: ``(t + eta)^2``), hence a computed bound of at most
    ``T - |x'|^2 + slack``.
    """
    xp = array_module(block)
    n_features = index.n_features
    u = index.unit_roundoff
    worst = None
    for column in range(nodes.shape[1]):
        w = index.weights[nodes[:, column]]
        if index.metric == "cosine":
            # s~ = fl(x^ . w^) errs by at most gamma_D |x^| |w^|; t = |x^|^2 + max|w^|^2 - 2 s.
            similarity = xp.einsum("ij,ij->i", block, w).astype(np.float64)
            norms = _up(bounds.norms_high[rows] * index.node_norms[nodes[:, column]])
            low = _down(similarity - _up(gamma(n_features, u) * norms))
            reach = _up(_up(bounds.squares_high[rows] + index.max_node_square) - 2.0 * low)
        else:
            difference = block - w
            if index.metric == "euclidean":
                total = xp.einsum("ij,ij->i", difference, difference).astype(np.float64)
                reach = _upper(total, gamma(n_features + 2, u))
            else:
                total = xp.abs(difference).sum(axis=1).astype(np.float64)
                reach = _upper(total, gamma(n_features, u))
        worst = reach if worst is None else xp.maximum(worst, reach)
    if index.metric == "manhattan":
        radius = _up(worst + bounds.centring[rows])
    else:
        radius = _up(_up(xp.sqrt(xp.maximum(worst, 0.0))) + bounds.centring[rows])
    squared = _up(radius * radius)
    return _up(_up(squared - bounds.squares_low[rows]) + bounds.slack[rows])


def _product_scores(block: Any, union: Any, index: PrunedIndex) -> Any:
    """``(rows, |union|)`` scores, lower is closer, from one dense product.

    Euclidean: ``|w'|^2 / 2 - x' . w'`` (centred, as brute force's ``x . w - |w|^2 / 2`` but
    without the offset's cancellation); cosine: ``-x^ . w^`` (brute force's similarity).
    """
    if index.metric == "cosine":
        return -(block @ index.weights[union].T)
    scores = (block - index.mean[None, :]) @ index.centred[union].T
    return index.half_norms[union][None, :] - scores


def _manhattan_scores(block: Any, candidates: Any, index: PrunedIndex) -> tuple[Any, Any]:
    """``(rows, M)`` L1 distances of the candidate pairs, inf elsewhere; and the node indices.

    The candidate pairs are gathered in batches of :data:`PAIR_BLOCK_ELEMENTS` elements.
    """
    xp = array_module(block)
    pair_rows, pair_nodes = xp.nonzero(candidates)
    scores = xp.full(candidates.shape, np.inf, dtype=index.dtype)
    step = max(1, PAIR_BLOCK_ELEMENTS // max(1, index.n_features))
    for start in range(0, pair_rows.shape[0], step):
        r = pair_rows[start : start + step]
        k = pair_nodes[start : start + step]
        scores[r, k] = xp.abs(block[r] - index.weights[k]).sum(axis=1)
    return scores, xp.arange(index.n_nodes)
