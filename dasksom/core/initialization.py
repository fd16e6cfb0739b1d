"""Initial weights (design.md section 6), computed out of core from a dask array.

:func:`initial_weights` dispatches on ``init``: ``"random"`` (uniform within each feature's
range), ``"sample"`` (distinct rows), ``"pca"`` (:func:`pca_weights`, a grid over the first two
principal components, :func:`principal_components`) or an array, checked before any data is read
(:func:`check_init_array`).
"""

from __future__ import annotations

from typing import Any

import dask
import dask.array as da
import numpy as np

from dasksom.backends.arrays import array_module, to_host
from dasksom.core.lattice import Lattice
from dasksom.core.missing import NonFinite

INITS = ("random", "sample", "pca")
# Above this many features the D x D covariance gives way to a subspace iteration: each chunk's
# partial Gram matrix is 8 D^2 bytes (32 MiB at 2048) and a tree reduction holds several at
# once in a worker (at 4096 features, 134 MB each killed 400 MB workers).
MAX_COVARIANCE_FEATURES = 2048
# Columns of the random start of the wide data's subspace iteration: the two axes wanted plus
# ten of oversampling (Halko, Martinsson & Tropp 2011).
SUBSPACE_SIZE = 12


def initial_weights(
    data: da.Array,
    lattice: Lattice,
    init: Any,
    rng: np.random.Generator,
    nan_policy: str = "raise",
) -> np.ndarray:
    """``(M, D)`` float64 starting weights.

    Parameters
    ----------
    data : dask array of shape (N, D)
        The training data.
    lattice : Lattice
        The map the weights are for.
    init : {"random", "sample", "pca"} or array of shape (M, D)
        How to start (design.md section 6); an array is checked by :func:`check_init_array`.
    rng : numpy.random.Generator
        The only source of randomness.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"ignore"`` where NaN marks a missing value: ranges and principal components are taken
        over the observed values, and sampled rows have their missing values filled with the
        feature's mean.

    Returns
    -------
    ndarray of shape (M, D), float64

    Raises
    ------
    ValueError
        For an unknown ``init``, an array that does not fit, ``"sample"`` with fewer rows than
        nodes, or ``"pca"`` on data holding values ``nan_policy`` refuses.
    """
    n_nodes, n_features = lattice.n_nodes, data.shape[1]
    check_init_array(init, lattice, n_features)
    if not isinstance(init, str):
        return np.array(to_host(init), dtype=np.float64)
    if init == "random":
        low, high = dask.compute(da.nanmin(data, axis=0), da.nanmax(data, axis=0))
        low, high = to_host(low).astype(np.float64), to_host(high).astype(np.float64)
        return low + (high - low) * rng.random((n_nodes, n_features))
    if init == "sample":
        n_rows = data.shape[0]
        if n_rows < n_nodes:
            raise ValueError(
                f"init='sample' draws {n_nodes} distinct samples but the data has only "
                f"{n_rows} rows; use init='random' or 'pca', or a smaller map."
            )
        rows = np.sort(rng.choice(n_rows, size=n_nodes, replace=False))
        picked = to_host(data[rows].compute()).astype(np.float64)
        if nan_policy == "ignore" and np.isnan(picked).any():
            means = to_host(da.nanmean(data.astype(np.float64), axis=0).compute())
            picked = np.where(np.isnan(picked), np.nan_to_num(means)[None, :], picked)
        return picked[rng.permutation(n_nodes)]
    if init == "pca":
        return pca_weights(data, lattice, rng, nan_policy)
    raise ValueError(f"Unknown init {init!r}; choose one of {', '.join(INITS)} or an (M, D) array.")


def check_init_array(init: Any, lattice: Lattice, n_features: int) -> None:
    """An ``init`` array must fit the map and the data, and hold finite numbers.

    Checked before any data is read, so that a bad array costs no pass over the data.

    Parameters
    ----------
    init : str or array-like
        The ``init`` parameter; names (``"random"`` ...) pass unchecked.
    lattice : Lattice
        The map the array initialises.
    n_features : int
        The data's feature count.

    Raises
    ------
    ValueError
        When the array's shape is not ``(lattice.n_nodes, n_features)``, when it is not numeric,
        or when it holds NaN or inf (the message names how many and the first node).
    """
    if isinstance(init, str):
        return
    shape = tuple(np.shape(init))
    if shape != (lattice.n_nodes, n_features):
        raise ValueError(
            f"init array has shape {shape}, but a {lattice.height}x{lattice.width} map on "
            f"{n_features} features needs ({lattice.n_nodes}, {n_features})."
        )
    values = to_host(init)
    if values.dtype.kind not in "biuf":
        raise ValueError(
            f"init array must hold numbers, not dtype {values.dtype}; convert it, e.g. "
            "init.astype('float64')."
        )
    bad = ~np.isfinite(values)
    if bad.any():
        node, feature = np.argwhere(bad)[0]
        raise ValueError(
            f"init array holds {int(bad.sum())} NaN or infinite values (the first at node "
            f"{node}, feature {feature}); pass finite starting weights."
        )


def locate_nonfinite(data: da.Array, count: int, nan_policy: str = "raise") -> NonFinite:
    """Where the first value ``data`` may not hold is: an extra pass, taken only to report an error.

    Parameters
    ----------
    data : dask array of shape (N, D)
        The data found to hold ``count`` such values.
    count : int
        How many there are, for the report.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"raise"`` looks for NaN and inf, ``"ignore"`` (NaN marks a missing value) for inf alone.

    Returns
    -------
    NonFinite
        ``count`` and the ``(row, column)`` of the first such value.
    """
    bad = da.isinf(data) if nan_policy == "ignore" else ~da.isfinite(data)
    flat = int(da.argmax(bad.ravel()).compute())
    return NonFinite(count, divmod(flat, data.shape[1]))


def _covariance(data: da.Array, nan_policy: str) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance in one pass; with missing values, over the observed pairs."""
    x = data.astype(np.float64)
    n_rows = data.shape[0]
    if nan_policy == "ignore":
        observed = ~da.isnan(x)
        x = da.where(observed, x, 0.0)
        ones = observed.astype(np.float64)
        total, counts, gram, pairs, infinite = dask.compute(
            x.sum(axis=0), ones.sum(axis=0), x.T @ x, ones.T @ ones, da.isinf(x).sum()
        )
        _raise_on_nonfinite(data, int(infinite), "ignore")
        mean = to_host(total) / np.maximum(to_host(counts), 1)
        pairs = np.maximum(to_host(pairs), 2)
        return mean, (to_host(gram) - pairs * np.outer(mean, mean)) / (pairs - 1)
    total, gram, nonfinite = dask.compute(x.sum(axis=0), x.T @ x, (~da.isfinite(x)).sum())
    _raise_on_nonfinite(data, int(nonfinite), "raise")
    mean = to_host(total) / n_rows
    return mean, (to_host(gram) - n_rows * np.outer(mean, mean)) / max(n_rows - 1, 1)


def _raise_on_nonfinite(data: da.Array, count: int, nan_policy: str) -> None:
    """Raise ``ValueError`` for ``count`` values ``data`` may not hold, naming the first."""
    if count:
        locate_nonfinite(data, count, nan_policy).raise_if_any(data.shape[0])


def principal_components(
    data: da.Array, rng: np.random.Generator, nan_policy: str = "raise"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, first two principal axes and their variances, in one or two passes over the data.

    Up to :data:`MAX_COVARIANCE_FEATURES` features the ``D x D`` covariance is computed in one
    pass and diagonalised; above, :func:`_subspace_axes` finds the axes in two passes (three
    with missing values) that each reduce only ``D x`` :data:`SUBSPACE_SIZE` sums.

    Parameters
    ----------
    data : dask array of shape (N, D)
        The training data.
    rng : numpy.random.Generator
        Seeds the random start of the subspace iteration (wide data only).
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"ignore"``: NaN marks a missing value; the mean is taken over observed values and the
        covariance over the pairs of features both observed (wide data: over every row, with
        the mean filled in).

    Returns
    -------
    mean : ndarray of shape (D,)
    axes : ndarray of shape (2, D)
        Unit vectors, each signed so that its largest component is positive; a zero second row
        when the data has one feature.
    variances : ndarray of shape (2,)
        Variance along each axis, at least 0.

    Raises
    ------
    ValueError
        When the data holds values ``nan_policy`` refuses, naming how many and the first.
    """
    n_rows, n_features = data.shape
    if n_features <= MAX_COVARIANCE_FEATURES:
        mean, cov = _covariance(data, nan_policy)
        variances, vectors = np.linalg.eigh(cov)
        order = np.argsort(variances)[::-1][:2]
        axes, variances = vectors[:, order].T, variances[order]
    else:
        mean, axes, variances = _subspace_axes(data, rng, nan_policy)
    if axes.shape[0] < 2:
        axes = np.vstack([axes, np.zeros_like(axes)])
        variances = np.append(variances, 0.0)
    # Deterministic signs: each axis points where its largest component is positive.
    signs = np.sign(axes[np.arange(2), np.abs(axes).argmax(axis=1)])
    axes = axes * np.where(signs == 0, 1.0, signs)[:, None]
    return mean, axes, np.clip(variances, 0.0, None)


def _subspace_axes(
    data: da.Array, rng: np.random.Generator, nan_policy: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, two principal axes and their variances of wide data: one step of subspace
    iteration on the covariance ``C`` from a random ``D x l`` start ``G``, then Rayleigh-Ritz.

    Pass one sums the rows and ``X^T (X G)``, giving ``C G`` without ever forming ``C``; pass
    two projects the rows on an orthonormal basis ``V`` of ``C G`` and sums ``(X V)^T (X V)``,
    the ``l x l`` matrix ``V^T C V`` whose leading eigenvectors give the axes.  Every chunk
    returns ``D x l`` or ``l x l`` sums, so the data is read twice and never held.
    """
    n_rows, n_features = data.shape
    x = data.astype(np.float64)
    xp = array_module(x._meta)
    start = xp.asarray(rng.standard_normal((n_features, SUBSPACE_SIZE)))
    if nan_policy == "ignore":
        mean, infinite = dask.compute(da.nanmean(x, axis=0), da.isinf(x).sum())
        _raise_on_nonfinite(data, int(infinite), "ignore")
        x = da.where(da.isnan(x), mean[None, :], x)
        total, gram_start = dask.compute(x.sum(axis=0), x.T @ (x @ start))
    else:
        total, gram_start, nonfinite = dask.compute(
            x.sum(axis=0), x.T @ (x @ start), (~da.isfinite(x)).sum()
        )
        _raise_on_nonfinite(data, int(nonfinite), "raise")
    mean = to_host(total) / n_rows
    denominator = max(n_rows - 1, 1)
    start_host = to_host(start)
    cov_start = (to_host(gram_start) - n_rows * np.outer(mean, mean @ start_host)) / denominator
    basis, _ = np.linalg.qr(cov_start)
    projected = x @ xp.asarray(basis)
    gram, sums = dask.compute(projected.T @ projected, projected.sum(axis=0))
    centre = to_host(sums) / n_rows
    ritz = (to_host(gram) - n_rows * np.outer(centre, centre)) / denominator
    variances, vectors = np.linalg.eigh(ritz)
    order = np.argsort(variances)[::-1][:2]
    return mean, (basis @ vectors[:, order]).T, variances[order]


def pca_weights(
    data: da.Array, lattice: Lattice, rng: np.random.Generator, nan_policy: str = "raise"
) -> np.ndarray:
    """Mean plus a regular grid over the first two principal components.

    The grid spans about plus/minus one standard deviation along each component, the map's
    longer side along the first component.

    Parameters
    ----------
    data : dask array of shape (N, D)
        The training data.
    lattice : Lattice
        The map; its node positions place the grid.
    rng : numpy.random.Generator
        Seeds the subspace iteration of wide data (see :func:`principal_components`).
    nan_policy : {"raise", "ignore"}, default="raise"
        As for :func:`principal_components`.

    Returns
    -------
    ndarray of shape (M, D), float64

    Raises
    ------
    ValueError
        When the data holds values ``nan_policy`` refuses.
    """
    mean, axes, variances = principal_components(data, rng, nan_policy)
    pos = lattice.positions
    span = pos.max(axis=0) - pos.min(axis=0)
    unit = np.where(span > 0, 2.0 * (pos - pos.min(axis=0)) / np.where(span > 0, span, 1) - 1, 0)
    along_x_first = lattice.width >= lattice.height
    first, second = (unit[:, 0], unit[:, 1]) if along_x_first else (unit[:, 1], unit[:, 0])
    scale = np.sqrt(variances)
    return (
        mean[None, :]
        + first[:, None] * scale[0] * axes[0][None, :]
        + second[:, None] * scale[1] * axes[1][None, :]
    )
