"""The reversible layout of a gridded field: samples in rows, grid points in columns.

:class:`FieldLayout` turns a ``DataArray`` or a ``Dataset`` of gridded fields (``time x lat x
lon``, several variables, ensemble members) into the 2-D dask array a :class:`dasksom.SOM`
trains on, lazily and without a copy: the sample dimensions are stacked into rows, every other
dimension into columns, grid points masked in every sample (a land or sea mask of NaN) are
dropped, area weights multiply the columns, each variable is scaled by its own spread, and an
optional EOF (PCA) basis reduces the columns.  It remembers all of it, so that
:meth:`FieldLayout.unstack` turns rows in the training space (prototypes) back into fields in
physical units on the original coordinates, masks restored.

Learning the layout reads the data once (which points are masked, each variable's mean and
spread), chunk by chunk; the EOF basis, when asked for, takes a randomised SVD of a few more
passes (:func:`dask.array.linalg.svd_compressed`).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

WEIGHTINGS = ("coslat", "sqrt_coslat")
SCALINGS = ("auto", "none", "std")
LATITUDE_NAMES = ("lat", "latitude", "nav_lat", "y")


@dataclass(frozen=True)
class VariableLayout:
    """How one variable's grid becomes columns.

    Attributes
    ----------
    name : hashable
        The variable's name (that of the ``DataArray`` for a single field).
    dims : tuple of str
        Its feature dimensions, in the order they are flattened.
    shape : tuple of int
        Their sizes.
    coords : dict
        Every coordinate of the variable that lies on its feature dimensions only.
    attrs : dict
        The variable's attributes (``units``, ``long_name`` ...), carried to the prototypes.
    valid : ndarray of bool, shape (prod(shape),)
        The grid points kept (not NaN in every sample).
    weights : ndarray of float, shape (valid.sum(),)
        Area weight of each kept point (ones without weighting).
    offset, scale : float
        The variable's mean and spread: columns hold ``(x - offset) / scale * weights``.
    """

    name: Hashable
    dims: tuple[str, ...]
    shape: tuple[int, ...]
    coords: dict[Hashable, xr.Variable]
    attrs: dict[Hashable, Any]
    valid: np.ndarray
    weights: np.ndarray
    offset: float
    scale: float

    @property
    def n_columns(self) -> int:
        """Columns this variable contributes (its kept grid points)."""
        return int(self.valid.sum())


@dataclass(frozen=True)
class EOFBasis:
    """Leading EOFs of the stacked, weighted field: ``pcs = (x - mean) @ components.T``.

    Attributes
    ----------
    mean : ndarray, shape (D,)
    components : ndarray, shape (k, D), orthonormal rows
    explained_variance_ratio : ndarray, shape (k,)
    """

    mean: np.ndarray
    components: np.ndarray
    explained_variance_ratio: np.ndarray


@dataclass(frozen=True)
class FieldLayout:
    """Everything needed to stack a field into rows and to undo it.

    Build one with :meth:`learn`; :meth:`stack` applies it to the training field or to any
    other field on the same grid (another model, a future scenario), :meth:`unstack` undoes
    it on rows of the training space.

    Attributes
    ----------
    sample_dims : tuple of str
        The dimensions stacked into rows, outermost first (``("member", "time")``).
    variables : tuple of VariableLayout
        One per variable, in column order.
    is_dataset : bool
        Whether the layout was learnt on a ``Dataset`` (results come back as one).
    eof : EOFBasis or None
        The reduction the rows went through, if any.
    """

    sample_dims: tuple[str, ...]
    variables: tuple[VariableLayout, ...]
    is_dataset: bool
    eof: EOFBasis | None = None

    @property
    def n_features(self) -> int:
        """Columns of the stacked field before any EOF reduction."""
        return sum(variable.n_columns for variable in self.variables)

    @property
    def n_columns(self) -> int:
        """Columns of :meth:`stack`'s rows: EOFs when reduced, grid points otherwise."""
        return self.n_features if self.eof is None else self.eof.components.shape[0]

    @classmethod
    def learn(
        cls,
        data: xr.DataArray | xr.Dataset,
        sample_dims: str | Sequence[str] = ("time",),
        *,
        weights: str | xr.DataArray | np.ndarray | None = None,
        scaling: str = "auto",
        n_eofs: int | None = None,
        random_state: int = 0,
    ) -> FieldLayout:
        """Learn the layout of ``data``: its masks, scaling and, optionally, EOF basis.

        Parameters
        ----------
        data : DataArray or Dataset
            The field(s), preferably dask backed (``xr.open_dataset(..., chunks=...)``).  Every
            variable of a Dataset needs all of ``sample_dims``.
        sample_dims : str or sequence of str, default=("time",)
            The dimensions that index samples; all the others are features.
        weights : {"coslat", "sqrt_coslat"}, DataArray, ndarray or None, default=None
            Area weights of the columns: the cosine of latitude (or its square root, which
            weights squared distances by the cosine, as EOF analysis does), read from a
            latitude coordinate (named ``lat``, ``latitude`` ... or with
            ``standard_name="latitude"``), or any array on (a subset of) the feature
            dimensions.  None: unweighted.
        scaling : {"auto", "none", "std"}, default="auto"
            ``"std"``: each variable minus its mean, divided by its standard deviation (over
            all samples and kept points), so that variables in different units count alike;
            ``"none"``: raw values; ``"auto"``: ``"std"`` for a Dataset, ``"none"`` for one field.
        n_eofs : int or None, default=None
            Reduce the columns to this many leading EOFs (randomised SVD of the stacked,
            weighted, scaled field).  None: no reduction.
        random_state : int, default=0
            Seed of the randomised SVD.

        Returns
        -------
        FieldLayout
        """
        sample_dims = _as_dims(sample_dims)
        is_dataset = isinstance(data, xr.Dataset)
        fields = _fields_of(data, sample_dims)
        if scaling not in SCALINGS:
            raise ValueError(f"scaling={scaling!r} is not one of {SCALINGS}.")
        if scaling == "auto":
            scaling = "std" if is_dataset else "none"
        stats = dask.compute(*[_statistics(field, sample_dims) for field in fields.values()])
        variables = tuple(
            _variable_layout(name, field, sample_dims, found, weights, scaling)
            for (name, field), found in zip(fields.items(), stats, strict=True)
        )
        layout = cls(sample_dims, variables, is_dataset)
        if n_eofs is None:
            return layout
        return cls(
            sample_dims, variables, is_dataset, _eof_basis(layout, data, n_eofs, random_state)
        )

    def stack(self, data: xr.DataArray | xr.Dataset) -> da.Array:
        """The rows of ``data`` in the training space: a lazy dask array ``(n_samples, n_columns)``.

        Parameters
        ----------
        data : DataArray or Dataset
            A field on the grid the layout was learnt on (same feature dimensions and sizes,
            same variables); its samples may differ.

        Returns
        -------
        dask array of float
            Row ``i`` is sample ``i`` of the sample dimensions flattened in order (the last
            varies fastest); columns are the kept, weighted, scaled grid points of every
            variable, or their EOF coefficients.
        """
        fields = _fields_of(data, self.sample_dims)
        if set(fields) != {variable.name for variable in self.variables}:
            raise ValueError(
                f"The data holds variables {sorted(map(str, fields))}; the layout was learnt on "
                f"{sorted(str(v.name) for v in self.variables)}.  Select the same variables."
            )
        dims = self.sample_dims_of(data)
        blocks = [self._stack_variable(fields[v.name], v, dims) for v in self.variables]
        rows = blocks[0] if len(blocks) == 1 else da.concatenate(blocks, axis=1)
        if self.eof is None:
            return rows
        return (rows - self.eof.mean) @ self.eof.components.T

    def sample_dims_of(self, data: xr.DataArray | xr.Dataset) -> tuple[str, ...]:
        """The sample dimensions of ``data``: the layout's, after any dimension that is
        neither one of them nor a feature dimension (the ``member`` of an ensemble projected
        onto a map trained on one series), outermost first.

        Parameters
        ----------
        data : DataArray or Dataset
            A field on the layout's grid.

        Returns
        -------
        tuple of str
        """
        fields = _fields_of(data, self.sample_dims)
        extra: list[str] = []
        for variable in self.variables:
            if variable.name not in fields:
                continue
            known = set(self.sample_dims) | set(variable.dims)
            for dim in fields[variable.name].dims:
                if dim not in known and str(dim) not in extra:
                    extra.append(str(dim))
        for name, field in fields.items():
            lacking = [d for d in extra if d not in field.dims]
            if lacking:
                raise ValueError(
                    f"Variable {name!r} lacks the dimension(s) {lacking} that other variables "
                    "have; give every variable the same sample dimensions."
                )
        return (*extra, *self.sample_dims)

    def _stack_variable(
        self, field: xr.DataArray, variable: VariableLayout, sample_dims: tuple[str, ...]
    ) -> da.Array:
        missing = [d for d in variable.dims if d not in field.dims]
        sizes = tuple(field.sizes[d] for d in variable.dims if d in field.dims)
        if missing or sizes != variable.shape:
            raise ValueError(
                f"Variable {variable.name!r} has dims {dict(field.sizes)}; the layout expects "
                f"feature dims {dict(zip(variable.dims, variable.shape, strict=True))}.  "
                "Regrid the data to the training grid first."
            )
        rows = sample_rows(field, sample_dims, variable.dims)
        rows = rows[:, np.flatnonzero(variable.valid)]
        dtype = rows.dtype if np.issubdtype(rows.dtype, np.floating) else np.dtype(np.float64)
        factor = (variable.weights / variable.scale).astype(dtype)
        return (rows - variable.offset) * factor

    def sample_coords(self, data: xr.DataArray | xr.Dataset) -> dict[Hashable, xr.Variable]:
        """The coordinates of ``data`` that lie on its sample dimensions only
        (:meth:`sample_dims_of`).

        Parameters
        ----------
        data : DataArray or Dataset

        Returns
        -------
        dict
            Name to ``xarray.Variable``.
        """
        dims = set(self.sample_dims_of(data))
        return {
            name: coord.variable
            for name, coord in data.coords.items()
            if coord.dims and set(coord.dims) <= dims
        }

    def unstack(self, rows: np.ndarray, dim: str = "node") -> xr.DataArray | xr.Dataset:
        """Rows of the training space back as fields in physical units on the original grid.

        Parameters
        ----------
        rows : ndarray of shape (n, n_columns)
            E.g. a map's prototypes (``som.weights_``).
        dim : str, default="node"
            Name of the leading dimension of the result.

        Returns
        -------
        DataArray or Dataset
            Dims ``(dim, *feature dims)``; the EOF reduction, weights and scaling undone, masked
            points NaN, the grid's coordinates and each variable's attributes restored.  A
            Dataset when the layout was learnt on one.
        """
        rows = np.asarray(rows, dtype=float)
        if rows.ndim != 2 or rows.shape[1] != self.n_columns:
            raise ValueError(f"Expected rows of shape (n, {self.n_columns}), got {rows.shape}.")
        if self.eof is not None:
            rows = rows @ self.eof.components + self.eof.mean
        arrays = {}
        start = 0
        for variable in self.variables:
            part = rows[:, start : start + variable.n_columns]
            start += variable.n_columns
            grid = np.full((rows.shape[0], variable.valid.size), np.nan)
            grid[:, variable.valid] = part / variable.weights * variable.scale + variable.offset
            arrays[variable.name] = xr.DataArray(
                grid.reshape(rows.shape[0], *variable.shape),
                dims=(dim, *variable.dims),
                coords=variable.coords,
                attrs=variable.attrs,
                name=variable.name,
            )
        if self.is_dataset:
            return xr.Dataset(arrays)
        return next(iter(arrays.values()))


def _as_dims(sample_dims: str | Sequence[str]) -> tuple[str, ...]:
    dims = (sample_dims,) if isinstance(sample_dims, str) else tuple(sample_dims)
    if not dims:
        raise ValueError("sample_dims is empty: name the dimension(s) that index samples.")
    return dims


def _fields_of(
    data: xr.DataArray | xr.Dataset, sample_dims: tuple[str, ...]
) -> dict[Hashable, xr.DataArray]:
    """The variables of ``data`` by name, each checked to carry every sample dimension."""
    if isinstance(data, xr.Dataset):
        fields = dict(data.data_vars.items())
    elif isinstance(data, xr.DataArray):
        fields = {data.name: data}
    else:
        raise TypeError(
            f"Expected an xarray DataArray or Dataset, got {type(data).__name__}; wrap the "
            "array with xarray.DataArray(values, dims=(...), coords={...})."
        )
    if not fields:
        raise ValueError("The Dataset has no data variables.")
    for name, field in fields.items():
        missing = [d for d in sample_dims if d not in field.dims]
        if missing:
            raise ValueError(
                f"Variable {name!r} (dims {field.dims}) lacks sample dimension(s) {missing}; "
                "pass sample_dims naming dimensions every variable has."
            )
        if len(field.dims) == len(sample_dims):
            raise ValueError(f"Variable {name!r} has no feature dimension besides {sample_dims}.")
    return fields


def sample_rows(
    field: xr.DataArray, sample_dims: Sequence[Hashable], feature_dims: Sequence[Hashable]
) -> da.Array:
    """``field`` as a lazy dask array ``(n_samples, n_features)``, samples in row-major order
    of ``sample_dims``, with the sample chunks of the field and whole rows per chunk.

    Parameters
    ----------
    field : DataArray
        A field with every one of ``sample_dims`` and ``feature_dims``.
    sample_dims, feature_dims : sequence of hashable
        Its dimensions in row and in column order.

    Returns
    -------
    dask array
        Row ``i`` is sample ``i`` (the last sample dim varies fastest); never a copy of the
        field in memory, and never chunks larger than the field's own along time.
    """
    values = _as_dask(field.transpose(*sample_dims, *feature_dims))
    n_outer = len(sample_dims) - 1
    values = values.rechunk({axis: -1 for axis in range(n_outer + 1, values.ndim)})
    n_features = int(np.prod(values.shape[n_outer + 1 :]))
    # One sample dim: merging whole feature chunks keeps the time chunks.  Several: reshaping
    # (member, time) into one axis would make dask merge whole series into one chunk, so each
    # outer index is reshaped on its own and the pieces are put end to end.
    pieces = [
        values[index].reshape(values.shape[n_outer], n_features)
        for index in np.ndindex(*values.shape[:n_outer])
    ]
    return pieces[0] if len(pieces) == 1 else da.concatenate(pieces, axis=0)


def _as_dask(field: xr.DataArray) -> da.Array:
    values = field.data
    if isinstance(values, da.Array):
        return values
    return da.from_array(np.asarray(values), chunks="auto")


def _chunk_statistics(block: np.ndarray, n_sample_axes: int) -> np.ndarray:
    """Per-point NaN counts, then the count, sum and sum of squares of the finite values, of
    one block, as one float64 vector (a fused task: no full-size temporaries beyond two)."""
    missing = np.isnan(block)
    finite = np.where(missing, 0, block).astype(np.float64, copy=False)
    nan_count = missing.sum(axis=tuple(range(n_sample_axes)), dtype=np.float64).ravel()
    totals = [block.size - nan_count.sum(), finite.sum(), np.einsum("i,i->", *[finite.ravel()] * 2)]
    return np.concatenate([nan_count, totals])


def _statistics(field: xr.DataArray, sample_dims: tuple[str, ...]) -> Any:
    """Lazy per-point NaN counts over samples, and the total, sum and sum of squares of the
    finite values: one pass over the field, one task per chunk."""
    feature_dims = [d for d in field.dims if d not in sample_dims]
    values = _as_dask(field.transpose(*sample_dims, *feature_dims))
    n_sample_axes = len(sample_dims)
    values = values.rechunk({axis: -1 for axis in range(n_sample_axes, values.ndim)})
    n_points = int(np.prod(values.shape[n_sample_axes:]))
    blocks = values.to_delayed().ravel()
    parts = [
        da.from_delayed(
            dask.delayed(_chunk_statistics)(block, n_sample_axes), (n_points + 3,), np.float64
        )
        for block in blocks
    ]
    return da.stack(parts).sum(axis=0, split_every=8)


def _variable_layout(
    name: Hashable,
    field: xr.DataArray,
    sample_dims: tuple[str, ...],
    stats: np.ndarray,
    weights: str | xr.DataArray | np.ndarray | None,
    scaling: str,
) -> VariableLayout:
    stats = np.asarray(stats)
    nan_count, (count, total, squares) = stats[:-3], stats[-3:]
    n_samples = int(np.prod([field.sizes[d] for d in sample_dims]))
    partial = (nan_count > 0) & (nan_count < n_samples)
    if partial.any():
        raise ValueError(
            f"Variable {name!r} has NaN at {int(partial.sum())} grid point(s) in some samples "
            "but not in others; only masks that are the same in every sample can be dropped.  "
            "Fill those gaps (e.g. .interpolate_na or .fillna) or mask the points in every sample."
        )
    valid = nan_count == 0
    if not valid.any():
        raise ValueError(f"Variable {name!r} is NaN everywhere.")
    dims = tuple(str(d) for d in field.dims if d not in sample_dims)
    shape = tuple(field.sizes[d] for d in dims)
    mean = float(total) / int(count)
    std = float(np.sqrt(max(float(squares) / int(count) - mean**2, 0.0)))
    offset, scale = (mean, std if std > 0 else 1.0) if scaling == "std" else (0.0, 1.0)
    grid_weights = _grid_weights(field, dims, shape, weights)[valid]
    if not (np.isfinite(grid_weights).all() and (grid_weights > 0).all()):
        raise ValueError(
            f"Area weights of {name!r} must be finite and positive at every unmasked point."
        )
    coords = {
        key: coord.variable
        for key, coord in field.coords.items()
        if coord.dims and set(coord.dims) <= set(dims)
    }
    return VariableLayout(
        name, dims, shape, coords, dict(field.attrs), valid, grid_weights, offset, scale
    )


def _grid_weights(
    field: xr.DataArray,
    dims: tuple[str, ...],
    shape: tuple[int, ...],
    weights: str | xr.DataArray | np.ndarray | None,
) -> np.ndarray:
    """Area weights broadcast to the feature grid, flattened."""
    if weights is None:
        return np.ones(int(np.prod(shape)))
    if isinstance(weights, str):
        if weights not in WEIGHTINGS:
            raise ValueError(f"weights={weights!r} is not one of {WEIGHTINGS} or an array.")
        lat = _latitude(field, dims)
        cos = np.cos(np.deg2rad(lat)).clip(min=0.0)
        weights = cos if weights == "coslat" else np.sqrt(cos)
    if isinstance(weights, xr.DataArray):
        extra = [d for d in weights.dims if d not in dims]
        if extra:
            raise ValueError(f"Weights have dims {extra} that are not feature dims {dims}.")
        grid = weights.broadcast_like(field.isel({d: 0 for d in field.dims if d not in dims}))
        return np.asarray(grid.transpose(*dims).values, dtype=float).ravel()
    values = np.asarray(weights, dtype=float)
    try:
        return np.broadcast_to(values, shape).ravel()
    except ValueError:
        raise ValueError(
            f"Weights of shape {values.shape} do not broadcast to the feature grid {shape} "
            f"(dims {dims}); pass a DataArray with named dims."
        ) from None


def _latitude(field: xr.DataArray, dims: tuple[str, ...]) -> xr.DataArray:
    for name, coord in field.coords.items():
        if coord.attrs.get("standard_name") == "latitude" or name in LATITUDE_NAMES:
            if coord.dims and set(coord.dims) <= set(dims):
                return coord
    raise ValueError(
        f"No latitude coordinate on the feature dims {dims} (looked for {LATITUDE_NAMES} or "
        "standard_name='latitude'); pass weights as an array instead."
    )


def _eof_basis(
    layout: FieldLayout, data: xr.DataArray | xr.Dataset, n_eofs: int, random_state: int
) -> EOFBasis:
    if not 1 <= n_eofs <= layout.n_features:
        raise ValueError(f"n_eofs={n_eofs} must lie in [1, {layout.n_features}].")
    rows = layout.stack(data)
    # The mean first, in a pass of its own: inside one graph with the SVD every chunk would
    # wait in memory for it.  compute=True re-reads the field at each pass of the randomised
    # SVD instead of holding it (out of core).
    mean = np.asarray(rows.mean(axis=0, dtype=np.float64).compute())
    centred = rows - mean.astype(rows.dtype)
    _, singular, components = da.linalg.svd_compressed(
        centred, k=n_eofs, n_power_iter=2, seed=random_state, compute=True
    )
    singular, components, total = dask.compute(
        singular, components, (centred.astype(np.float64) ** 2).sum()
    )
    ratio = np.asarray(singular, dtype=float) ** 2 / float(total)
    return EOFBasis(mean, np.asarray(components, dtype=float), ratio)
