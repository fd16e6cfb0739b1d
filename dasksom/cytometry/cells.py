"""Cells as one lazy, row-chunked dask array with the sample (file) of every row.

:class:`Cells` holds the events of many samples side by side: ``data`` (``N x D`` float64,
chunked by rows), the marker names of its columns, and
``sample``, the index of each row's sample, chunked as ``data``.  The readers
(:mod:`dasksom.cytometry.reading`) build it from FCS files, AnnData and the sources dasksom
reads; the transforms (:mod:`dasksom.cytometry.transforms`) map it chunk by chunk.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import dask.array as da
import numpy as np


class UnknownMarkerError(KeyError):
    """A marker asked for that the data does not have."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Cells:
    """Events of one or more samples as a lazy array.

    Parameters
    ----------
    data : dask array of shape (n_cells, n_markers)
        The values, chunked by rows only (the FCS reader never mixes two files in a chunk;
        AnnData cells may mix samples in a chunk).
    markers : tuple of str
        The name of each column (an FCS file's ``$PnN``, AnnData's ``var_names``).
    sample : dask array of int32, shape (n_cells,)
        The index in ``samples`` of each row's sample, with the row chunks of ``data``.
    samples : tuple of str
        The samples' names (file names, or the values of an AnnData ``obs`` column).
    descriptions : tuple of str
        A longer label per marker (an FCS file's ``$PnS``, the antigen); ``markers`` again
        where there is none.
    """

    data: da.Array
    markers: tuple[str, ...]
    sample: da.Array
    samples: tuple[str, ...]
    descriptions: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or len(self.data.chunks[1]) != 1:
            raise ValueError("cells must be a 2-d array chunked by rows only")
        if self.data.shape[1] != len(self.markers):
            raise ValueError(f"{self.data.shape[1]} columns but {len(self.markers)} marker names")
        if len(self.descriptions) != len(self.markers):
            raise ValueError("one description per marker is needed")
        if len(set(self.markers)) != len(self.markers):
            raise ValueError(f"marker names repeat: {_repeated(self.markers)}")
        if self.sample.chunks[0] != self.data.chunks[0]:
            raise ValueError("the sample index must have the row chunks of the data")

    @property
    def n_cells(self) -> int:
        """Number of rows (events)."""
        return int(self.data.shape[0])

    def marker_indices(self, markers: Sequence[str]) -> list[int]:
        """Column of each marker, found by name (``$PnN``) or description (``$PnS``).

        Parameters
        ----------
        markers : sequence of str
            Names or descriptions.

        Returns
        -------
        list of int
            Their columns, in the order asked.

        Raises
        ------
        UnknownMarkerError
            Naming every marker not found, and the markers there are.
        """
        return column_indices(markers, self.markers, self.descriptions)

    def select(self, markers: Sequence[str]) -> Cells:
        """The same cells with only ``markers``, in that order (lazy)."""
        columns = self.marker_indices(markers)
        return Cells(
            self.data[:, columns],
            tuple(self.markers[c] for c in columns),
            self.sample,
            self.samples,
            tuple(self.descriptions[c] for c in columns),
        )

    def with_data(self, data: da.Array) -> Cells:
        """The same cells with new values of the same shape and row chunks."""
        return Cells(data, self.markers, self.sample, self.samples, self.descriptions)


def column_indices(
    wanted: Sequence[str], names: Sequence[str], descriptions: Sequence[str] | None = None
) -> list[int]:
    """Column of each wanted marker among ``names`` (then ``descriptions``).

    Parameters
    ----------
    wanted : sequence of str
        The markers asked for.
    names : sequence of str
        The columns' names.
    descriptions : sequence of str or None
        Second names of the columns, tried where a name does not match.

    Returns
    -------
    list of int

    Raises
    ------
    UnknownMarkerError
        Naming every marker not found and the markers there are.
    """
    if isinstance(wanted, str):
        raise TypeError("markers must be a sequence of names, not one string")
    by_name = {name: i for i, name in enumerate(names)}
    by_description: dict[str, int] = {}
    for i, text in enumerate(descriptions or ()):
        by_description.setdefault(text, i)
    columns: list[int] = []
    missing: list[str] = []
    for marker in wanted:
        column = by_name.get(marker, by_description.get(marker))
        if column is None:
            missing.append(marker)
        else:
            columns.append(column)
    if missing:
        raise UnknownMarkerError(f"unknown marker(s) {missing}; the data has {list(names)}")
    if len(set(columns)) != len(columns):
        raise ValueError(f"markers repeat: {_repeated([names[c] for c in columns])}")
    return columns


def sample_index(chunks: tuple[int, ...], samples_of_chunks: Sequence[int]) -> da.Array:
    """A lazy int32 array giving every row the sample of its chunk.

    Parameters
    ----------
    chunks : tuple of int
        Rows per chunk.
    samples_of_chunks : sequence of int
        The sample of each chunk.

    Returns
    -------
    dask array of int32 with ``chunks``
    """
    parts = [
        da.full((rows,), sample, dtype=np.int32, chunks=(rows,))
        for rows, sample in zip(chunks, samples_of_chunks, strict=True)
    ]
    if not parts:
        return da.zeros((0,), dtype=np.int32, chunks=((0,),))
    return da.concatenate(parts)


def _repeated(names: Sequence[str]) -> list[str]:
    return sorted(name for name, count in Counter(names).items() if count > 1)
