"""The usual cytometry transforms as lazy, chunk-by-chunk steps on :class:`Cells`.

:class:`Transform` is what a model stores and applies again to new files: an arcsinh with a
cofactor per marker, then (optionally) a per-marker centring and scaling learned out of core
in one pass.  :func:`compensate` applies one explicit spill matrix (the FCS reader applies each
file's own with ``read_fcs(..., compensate=True)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np

from dasksom.cytometry.cells import Cells, column_indices

# The cofactor usual for mass cytometry; flow cytometry uses about 150.
DEFAULT_COFACTOR = 5.0


def arcsinh(cells: Cells, cofactor: float | Mapping[str, float] = DEFAULT_COFACTOR) -> Cells:
    """``arcsinh(x / cofactor)`` per marker, lazily.

    Parameters
    ----------
    cells : Cells
    cofactor : float or mapping of marker to float, default=5
        One cofactor for every marker, or one per marker named (by ``$PnN`` or ``$PnS``);
        markers a mapping does not name are left as they are.

    Returns
    -------
    Cells
    """
    factors = cofactors(cells, cofactor)
    return cells.with_data(da.map_blocks(_arcsinh, cells.data, factors, dtype=np.float64))


def cofactors(cells: Cells, cofactor: float | Mapping[str, float]) -> np.ndarray:
    """The cofactor of every column of ``cells`` (NaN: leave the column untransformed).

    Parameters
    ----------
    cells : Cells
    cofactor : float or mapping of marker to float

    Returns
    -------
    ndarray of float64, shape (n_markers,)
    """
    factors = np.full(len(cells.markers), np.nan)
    if isinstance(cofactor, Mapping):
        columns = column_indices(list(cofactor), cells.markers, cells.descriptions)
        factors[columns] = list(cofactor.values())
    else:
        factors[:] = cofactor
    given = factors[~np.isnan(factors)]
    if np.any(given <= 0) or not np.all(np.isfinite(given)):
        raise ValueError(f"cofactors must be positive and finite, got {cofactor}")
    return factors


def column_moments(data: da.Array) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (``ddof=1``, as R's ``scale``) of every column, one pass.

    Each chunk gives its count, mean and sum of squared deviations; the client combines them
    with Chan's pairwise update, which stays accurate where the mean is far from zero.

    Parameters
    ----------
    data : dask array of shape (n, d)

    Returns
    -------
    (ndarray, ndarray) of shape (d,)
    """
    parts = dask.compute(*[dask.delayed(_moments)(block) for block in data.to_delayed().ravel()])
    count, mean, squares = 0, np.zeros(data.shape[1]), np.zeros(data.shape[1])
    for n, block_mean, block_squares in parts:
        if n == 0:
            continue
        delta = block_mean - mean
        total = count + n
        mean = mean + delta * (n / total)
        squares = squares + block_squares + delta**2 * (count * n / total)
        count = total
    return mean, np.sqrt(squares / max(count - 1, 1))


@dataclass(frozen=True)
class Transform:
    """Arcsinh then centring and scaling, per marker, as learned on training cells.

    Parameters
    ----------
    markers : tuple of str
        The markers, in the order of the columns it applies to.
    cofactors : ndarray of shape (n_markers,)
        Arcsinh cofactor per marker; NaN leaves a marker linear.
    center, scale : ndarray of shape (n_markers,)
        Subtracted, then divided by, after the arcsinh (0 and 1: no scaling).
    """

    markers: tuple[str, ...]
    cofactors: np.ndarray
    center: np.ndarray
    scale: np.ndarray

    @classmethod
    def learn(
        cls,
        cells: Cells,
        cofactor: float | Mapping[str, float] | None = None,
        scale: bool = False,
    ) -> Transform:
        """The transform of ``cells``: its cofactors, and its moments when ``scale``.

        Parameters
        ----------
        cells : Cells
        cofactor : float, mapping of marker to float or None, default=None
            As :func:`arcsinh`; None applies no arcsinh.
        scale : bool, default=False
            Centre and scale each marker to mean 0 and standard deviation 1 (ddof 1),
            computed out of core in one pass over the arcsinh-transformed cells.

        Returns
        -------
        Transform
        """
        n = len(cells.markers)
        factors = np.full(n, np.nan) if cofactor is None else cofactors(cells, cofactor)
        center, spread = np.zeros(n), np.ones(n)
        if scale:
            center, spread = column_moments(
                da.map_blocks(_arcsinh, cells.data, factors, dtype=np.float64)
            )
            spread = np.where(spread > 0, spread, 1.0)
        return cls(tuple(cells.markers), factors, center, spread)

    def apply(self, cells: Cells) -> Cells:
        """The transform of ``cells``' columns named as ``markers`` (picked by name), lazily.

        Parameters
        ----------
        cells : Cells
            Cells with (at least) ``markers``.

        Returns
        -------
        Cells
            Only ``markers``, transformed.
        """
        picked = cells.select(list(self.markers))
        data = da.map_blocks(
            _transformed, picked.data, self.cofactors, self.center, self.scale, dtype=np.float64
        )
        return picked.with_data(data)

    def to_dict(self) -> dict:
        """The transform as JSON-ready lists (NaN cofactors as None)."""
        return {
            "markers": list(self.markers),
            "cofactors": [None if np.isnan(c) else float(c) for c in self.cofactors],
            "center": self.center.tolist(),
            "scale": self.scale.tolist(),
        }

    @classmethod
    def from_dict(cls, values: Mapping) -> Transform:
        """The transform :meth:`to_dict` wrote."""
        return cls(
            tuple(values["markers"]),
            np.array([np.nan if c is None else c for c in values["cofactors"]], dtype=float),
            np.asarray(values["center"], dtype=float),
            np.asarray(values["scale"], dtype=float),
        )


def compensate(cells: Cells, spill: np.ndarray, channels: Sequence[str]) -> Cells:
    """Compensate ``channels`` with one spillover matrix, lazily: ``true = raw @ inv(spill)``.

    Parameters
    ----------
    cells : Cells
    spill : ndarray of shape (k, k)
        Row ``i``: the share of dye ``i`` that each of the ``k`` detectors sees.
    channels : sequence of str
        The ``k`` markers the matrix covers, in its order.

    Returns
    -------
    Cells
    """
    matrix = np.asarray(spill, dtype=np.float64)
    if matrix.shape != (len(channels), len(channels)):
        raise ValueError(f"a spill matrix over {len(channels)} channels must be square")
    if np.linalg.matrix_rank(matrix) < len(channels):
        raise ValueError("the spill matrix is singular")
    columns = column_indices(channels, cells.markers, cells.descriptions)
    inverse = np.linalg.inv(matrix)
    data = da.map_blocks(_compensated, cells.data, columns, inverse, dtype=np.float64)
    return cells.with_data(data)


def _arcsinh(block: np.ndarray, factors: np.ndarray) -> np.ndarray:
    out = np.array(block, dtype=np.float64, copy=True)
    columns = ~np.isnan(factors)
    # In single precision, numpy's vectorised arcsinh is four times faster than in double,
    # and the training passes re-read and transform every cell; cytometers record float32
    # (relative error of the result: about 1e-7).
    scaled = (out[:, columns] / factors[columns]).astype(np.float32)
    out[:, columns] = np.arcsinh(scaled)
    return out


def _transformed(
    block: np.ndarray, factors: np.ndarray, center: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    return (_arcsinh(block, factors) - center) / scale


def _compensated(block: np.ndarray, columns: list[int], inverse: np.ndarray) -> np.ndarray:
    out = np.array(block, dtype=np.float64, copy=True)
    out[:, columns] = block[:, columns] @ inverse
    return out


def _moments(block: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    values = np.asarray(block, dtype=np.float64)
    if values.shape[0] == 0:
        return 0, np.zeros(values.shape[1]), np.zeros(values.shape[1])
    mean = values.mean(axis=0)
    return values.shape[0], mean, ((values - mean) ** 2).sum(axis=0)
