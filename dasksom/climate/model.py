"""A SOM of gridded fields: fit on a labelled field, results as labelled xarray objects.

:class:`FieldSOM` learns a :class:`~dasksom.climate.fields.FieldLayout` of the field (stacked
sample dimensions, masks, area weights, per-variable scaling, optional EOFs), trains a
:class:`dasksom.SOM` on the stacked dask array, and gives back the prototypes as fields in
physical units on the original grid, and best-matching units and distances as lazy
``DataArray`` objects on the sample dimensions, with CF-style attributes; :meth:`FieldSOM.save`
writes them all to zarr or NetCDF in one call.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr

from dasksom.climate.fields import FieldLayout
from dasksom.estimator.som import SOM

CONVENTIONS = "CF-1.8"


class FieldSOM:
    """A Self-Organizing Map of gridded fields with xarray in and out.

    Parameters
    ----------
    som : SOM or None, default=None
        The map to train (its settings: size, topology, epochs ...); None makes a
        ``SOM(**som_params)``.
    **som_params
        Settings of a new :class:`dasksom.SOM` when ``som`` is None.

    Attributes
    ----------
    som_ : SOM
        The fitted map (in the training space: weighted, scaled, EOF-reduced).
    layout_ : FieldLayout
        How the field was stacked, and how to undo it.
    """

    def __init__(self, som: SOM | None = None, **som_params: Any) -> None:
        if som is not None and som_params:
            raise ValueError("Pass either a SOM or its settings, not both.")
        self.som = som if som is not None else SOM(**som_params)

    def fit(
        self,
        data: xr.DataArray | xr.Dataset,
        sample_dims: str | Sequence[str] = ("time",),
        *,
        weights: str | xr.DataArray | np.ndarray | None = None,
        scaling: str = "auto",
        n_eofs: int | None = None,
    ) -> FieldSOM:
        """Learn the field's layout and train the map on it, out of core.

        Parameters
        ----------
        data : DataArray or Dataset
            The field(s), dask backed for data larger than memory.
        sample_dims : str or sequence of str, default=("time",)
            The dimensions that index samples (e.g. ``("member", "time")``); every other
            dimension is a feature.
        weights, scaling, n_eofs
            As :meth:`FieldLayout.learn`: area weights (``"coslat"``, ``"sqrt_coslat"`` or an
            array), per-variable scaling, and an optional EOF reduction.

        Returns
        -------
        FieldSOM
            ``self``, fitted.
        """
        self.layout_ = FieldLayout.learn(
            data, sample_dims, weights=weights, scaling=scaling, n_eofs=n_eofs
        )
        self.som.fit(self.layout_.stack(data))
        self.som_ = self.som
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "som_"):
            raise ValueError("This FieldSOM is not fitted yet; call fit(data) first.")

    @property
    def n_nodes(self) -> int:
        """Nodes of the map."""
        self._check_fitted()
        return self.som_.lattice_.n_nodes

    def node_coords(self) -> dict[str, Any]:
        """The ``node`` coordinate and each node's lattice row, column and position."""
        self._check_fitted()
        lattice = self.som_.lattice_
        positions = lattice.positions
        return {
            "node": ("node", np.arange(lattice.n_nodes), {"long_name": "SOM node index"}),
            "node_row": ("node", lattice.rows, {"long_name": "row of the node on the lattice"}),
            "node_col": ("node", lattice.cols, {"long_name": "column of the node on the lattice"}),
            "node_x": ("node", positions[:, 0], {"long_name": "x position on the lattice"}),
            "node_y": ("node", positions[:, 1], {"long_name": "y position on the lattice"}),
        }

    def prototypes(self) -> xr.DataArray | xr.Dataset:
        """The map's prototypes as fields in physical units on the original grid.

        Returns
        -------
        DataArray or Dataset
            Dims ``(node, *feature dims)`` (a Dataset for a Dataset fit), with the grid's
            coordinates, the node's lattice coordinates and each variable's attributes; masked
            points NaN.
        """
        self._check_fitted()
        result = self.layout_.unstack(self.som_.weights_)
        result = result.assign_coords(self.node_coords())
        if isinstance(result, xr.Dataset):
            for name in result.data_vars:
                result[name].attrs.update(_prototype_attrs(result[name].attrs))
        else:
            result.attrs.update(_prototype_attrs(result.attrs))
        return result

    def _on_samples(
        self, data: xr.DataArray | xr.Dataset, values: da.Array, name: str, **attrs: Any
    ) -> xr.DataArray:
        dims = self.layout_.sample_dims_of(data)
        shape = tuple(data.sizes[d] for d in dims)
        return xr.DataArray(
            values.reshape(shape),
            dims=dims,
            coords=self.layout_.sample_coords(data),
            name=name,
            attrs=attrs,
        )

    def bmus(self, data: xr.DataArray | xr.Dataset) -> xr.DataArray:
        """Every sample's best-matching unit, lazily (dask backed).

        Parameters
        ----------
        data : DataArray or Dataset
            The training field, or any field on its grid (another model, a scenario): it is
            stacked with the layout learnt in :meth:`fit` (masks, weights, scaling, EOFs).

        Returns
        -------
        DataArray of int64
            On the sample dimensions, with their coordinates; ``.compute()`` to evaluate.
        """
        self._check_fitted()
        return self._bmus_on_samples(data, self.som_.predict(self.layout_.stack(data)))

    def _bmus_on_samples(self, data: xr.DataArray | xr.Dataset, values: da.Array) -> xr.DataArray:
        return self._on_samples(
            data,
            values,
            "bmu",
            long_name="best-matching unit of the sample",
            comment="index of the SOM node nearest the sample; see the node coordinate",
            valid_min=0,
            valid_max=self.n_nodes - 1,
        )

    def distances(self, data: xr.DataArray | xr.Dataset) -> xr.DataArray:
        """Every sample's distance to its best-matching unit, lazily (dask backed).

        Parameters
        ----------
        data : DataArray or Dataset
            As :meth:`bmus`.

        Returns
        -------
        DataArray of float
            On the sample dimensions; distances in the training space (weighted, scaled and
            EOF-reduced columns), in the map's metric.
        """
        self._check_fitted()
        _, distances = self.som_.nearest_nodes(self.layout_.stack(data))
        return self._distances_on_samples(data, distances)

    def _distances_on_samples(
        self, data: xr.DataArray | xr.Dataset, values: da.Array
    ) -> xr.DataArray:
        return self._on_samples(
            data,
            values,
            "bmu_distance",
            long_name="distance of the sample to its best-matching unit",
            comment=f"{self.som_.metric} distance in the weighted, scaled training space",
        )

    def results(self, data: xr.DataArray | xr.Dataset) -> xr.Dataset:
        """Prototypes, BMUs and distances of ``data`` in one Dataset, lazy where possible.

        Parameters
        ----------
        data : DataArray or Dataset
            As :meth:`bmus`.

        Returns
        -------
        Dataset
            ``bmu`` and ``bmu_distance`` on the sample dims, the prototypes (named
            ``prototype_<variable>``) on ``(node, *feature dims)``, CF-style attributes.
        """
        prototypes = self.prototypes()
        fields = (
            dict(prototypes.data_vars.items())
            if isinstance(prototypes, xr.Dataset)
            else {prototypes.name: prototypes}
        )
        variables: dict[Any, xr.DataArray] = {
            f"prototype_{name}": field for name, field in fields.items()
        }
        # One search for both: written together, they read the field once.
        self._check_fitted()
        bmus, distances = self.som_.nearest_nodes(self.layout_.stack(data))
        variables["bmu"] = self._bmus_on_samples(data, bmus)
        variables["bmu_distance"] = self._distances_on_samples(data, distances)
        lattice = self.som_.lattice_
        return xr.Dataset(
            variables,
            attrs={
                "Conventions": CONVENTIONS,
                "title": "Self-Organizing Map of gridded fields",
                "source": "dasksom.climate.FieldSOM",
                "som_height": lattice.height,
                "som_width": lattice.width,
                "som_topology": lattice.topology,
                "som_periodic": int(lattice.pbc),
                "som_metric": self.som_.metric,
                "sample_dims": " ".join(self.layout_.sample_dims),
            },
        )

    def save(self, path: str | os.PathLike, data: xr.DataArray | xr.Dataset) -> None:
        """Write :meth:`results` of ``data`` to zarr or NetCDF, computing chunk by chunk.

        Parameters
        ----------
        path : str or path
            A ``.zarr`` store or a ``.nc`` file (the writer of :func:`netcdf_engine`).
        data : DataArray or Dataset
            As :meth:`bmus`.
        """
        target = os.fspath(path)
        if not target.endswith((".zarr", ".nc", ".nc4")):
            raise ValueError(f"Cannot tell the format of {target!r}: end it with .zarr or .nc.")
        results = self.results(data)
        # Zarr needs equal chunks (but the last) along each dim: those of the first chunk.
        chunks = results["bmu"].chunksizes
        results = results.chunk({dim: sizes[0] for dim, sizes in chunks.items()})
        if target.endswith(".zarr"):
            results.to_zarr(target, mode="w", consolidated=False)
        else:
            results.to_netcdf(target, engine=netcdf_engine())


def netcdf_engine() -> Literal["h5netcdf", "netcdf4", "scipy"]:
    """The NetCDF writer :meth:`FieldSOM.save` uses: NetCDF4 through h5netcdf or netCDF4 where
    one is installed, otherwise NetCDF3 through scipy (always there; BMUs stored as int32).

    Returns
    -------
    str
        An xarray ``engine`` name.
    """
    if importlib.util.find_spec("h5netcdf") is not None:
        return "h5netcdf"
    if importlib.util.find_spec("netCDF4") is not None:
        return "netcdf4"
    return "scipy"


def _prototype_attrs(attrs: dict) -> dict[str, str]:
    name = attrs.get("long_name", "field")
    return {
        "long_name": f"SOM prototype of {name}",
        "cell_methods": "node: mean (batch SOM prototype)",
    }
