"""Readers of cells: FCS files, AnnData (``.h5ad`` or in memory) and dasksom's sources.

Every reader gives a :class:`~dasksom.cytometry.cells.Cells`: one lazy float64 dask array
whose chunks are read on the workers when the graph runs, with the sample of every row.
Nothing here reads the events on the client; the FCS reader reads only the TEXT segment of
each file to learn its channels, event count and spill matrix.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np

from dasksom.cytometry.cells import Cells, column_indices, sample_index
from dasksom.io.sources import as_dask_array

# Rows per chunk of an AnnData matrix read without a chunk size.
DEFAULT_ROWS_PER_CHUNK = 500_000
# The TEXT keywords (as flowio gives them: lower case, no "$") that may hold a spill matrix.
SPILL_KEYWORDS = ("spill", "spillover")


class FCSError(ValueError):
    """An FCS file that cannot be read, or files whose channels do not match."""


@dataclass(frozen=True)
class Spill:
    """A spillover matrix: ``raw = true @ matrix`` over ``channels``.

    Parameters
    ----------
    channels : tuple of str
        The ``$PnN`` names of the channels it covers.
    matrix : ndarray of shape (len(channels), len(channels))
        Row ``i`` is how much of dye ``i`` each detector sees.
    """

    channels: tuple[str, ...]
    matrix: np.ndarray


@dataclass(frozen=True)
class FCSHeader:
    """What the TEXT segment of an FCS file says about its events (no event is read).

    Parameters
    ----------
    path : str
        The file.
    names, descriptions : tuple of str
        ``$PnN`` and ``$PnS`` (``$PnN`` again where absent) of every channel.
    n_events : int
        ``$TOT``.
    datatype : str
        ``$DATATYPE``: ``"F"``, ``"D"`` (read in blocks) or ``"I"`` (read whole by flowio).
    little_endian : bool
        ``$BYTEORD``.
    data_start : int
        Byte offset of the DATA segment.
    gains, decades, log_zeros, ranges : tuple of float
        ``$PnG``, the two values of ``$PnE`` and ``$PnR`` of every channel.
    time_index : int or None
        The time channel, scaled by ``timestep``.
    timestep : float
        ``$TIMESTEP`` (1 where absent).
    spill : Spill or None
        The file's spillover matrix, if it has one.
    """

    path: str
    names: tuple[str, ...]
    descriptions: tuple[str, ...]
    n_events: int
    datatype: str
    little_endian: bool
    data_start: int
    gains: tuple[float, ...]
    decades: tuple[float, ...]
    log_zeros: tuple[float, ...]
    ranges: tuple[float, ...]
    time_index: int | None
    timestep: float
    spill: Spill | None

    @property
    def float_dtype(self) -> np.dtype:
        """The dtype of one value of a float (``F``) or double (``D``) file."""
        order = "<" if self.little_endian else ">"
        return np.dtype(f"{order}f{4 if self.datatype == 'F' else 8}")


def read_fcs_header(path: str | os.PathLike) -> FCSHeader:
    """The channels, event count and spill matrix of an FCS file, from its TEXT segment.

    Parameters
    ----------
    path : str or path
        An FCS 2.0, 3.0 or 3.1 file.

    Returns
    -------
    FCSHeader

    Raises
    ------
    FileNotFoundError
        When there is no such file.
    FCSError
        When the file is not a readable FCS file (naming it and why), or its DATA segment
        is shorter than its event count says.
    """
    flowio = _import("flowio")
    text = os.fspath(path)
    if not Path(text).is_file():
        raise FileNotFoundError(f"no FCS file {text!r}")
    try:
        fd = flowio.FlowData(text, only_text=True)
        keywords = dict(fd.text)
        channels = [fd.channels[number] for number in sorted(fd.channels)]
        n_events = int(fd.event_count)
        data_start = int(fd.header["data_start"] or keywords.get("begindata", 0))
    except Exception as exc:  # flowio raises many kinds on damaged bytes
        raise FCSError(f"{text!r} is not a readable FCS file: {exc}") from exc
    names = tuple(str(c["pnn"]) for c in channels)
    header = FCSHeader(
        path=text,
        names=names,
        descriptions=tuple(str(c.get("pns") or c["pnn"]) for c in channels),
        n_events=n_events,
        datatype=str(keywords.get("datatype", "")).upper(),
        little_endian=str(keywords.get("byteord", "1,2,3,4")).startswith("1"),
        data_start=data_start,
        gains=tuple(float(c.get("png") or 1.0) for c in channels),
        decades=tuple(float(c["pne"][0]) for c in channels),
        log_zeros=tuple(float(c["pne"][1]) for c in channels),
        ranges=tuple(float(c["pnr"]) for c in channels),
        time_index=fd.time_index,
        timestep=_float_keyword(keywords, "timestep", text),
        spill=_spill(keywords, names, text),
    )
    if header.datatype in ("F", "D"):
        needed = data_start + n_events * len(names) * header.float_dtype.itemsize
        if Path(text).stat().st_size < needed:
            raise FCSError(
                f"{text!r} is truncated: {n_events} events need {needed} bytes, the file has "
                f"{Path(text).stat().st_size}"
            )
    return header


def read_fcs(
    paths: Sequence[str | os.PathLike],
    markers: Sequence[str] | None = None,
    *,
    events_per_chunk: int | None = None,
    compensate: bool = False,
) -> Cells:
    """Many FCS files as one lazy array of cells, the file of every row kept.

    Parameters
    ----------
    paths : sequence of str or path
        The files, one sample each, in the order of ``Cells.samples``.
    markers : sequence of str or None, default=None
        The channels to keep, by ``$PnN`` or ``$PnS``, in this order; found by name in every
        file, so files may order their channels differently.  None keeps every channel,
        and then every file must have the same channels (in any order).
    events_per_chunk : int or None, default=None
        Events per chunk; None is one chunk per file.  Float and double files (``$DATATYPE``
        F or D, nearly all cytometers') are read block by block; integer files are read
        whole by flowio, one chunk per file.
    compensate : bool, default=False
        Compensate each file with its own spill matrix (``$SPILLOVER`` or ``SPILL``):
        ``true = raw @ inv(spill)`` over the matrix's channels, before ``markers`` are
        picked.  Every file must carry one.

    Returns
    -------
    Cells
        float64 values after the FCS scaling (``$PnG`` gain, ``$PnE`` log, ``$TIMESTEP``),
        as ``flowio.FlowData.as_array(preprocess=True)``; sample names are the file names.

    Raises
    ------
    FileNotFoundError, FCSError
        A missing or damaged file; files whose channels differ (naming the file and the
        channels missing or extra); ``compensate`` for a file without a spill matrix.
    UnknownMarkerError
        A marker a file does not have.
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if not paths:
        raise ValueError("no FCS files given")
    if events_per_chunk is not None and events_per_chunk < 1:
        raise ValueError(f"events_per_chunk must be at least 1, not {events_per_chunk}")
    headers = [read_fcs_header(path) for path in paths]
    first = headers[0]
    wanted = list(markers) if markers is not None else list(first.names)
    if markers is None:
        for header in headers[1:]:
            _check_same_channels(first, header)
    blocks: list[da.Array] = []
    chunk_samples: list[int] = []
    for number, header in enumerate(headers):
        try:
            columns = column_indices(wanted, header.names, header.descriptions)
        except KeyError as exc:
            raise type(exc)(f"{header.path!r}: {exc}") from None
        if compensate and header.spill is None:
            raise FCSError(f"{header.path!r} has no spill matrix to compensate with")
        step = header.n_events
        if events_per_chunk is not None and header.datatype in ("F", "D"):
            step = events_per_chunk
        for start in range(0, header.n_events, max(step, 1)):
            stop = min(start + step, header.n_events)
            block = dask.delayed(read_fcs_events, pure=True)(
                header, start, stop, columns, compensate
            )
            blocks.append(da.from_delayed(block, (stop - start, len(columns)), np.float64))
            chunk_samples.append(number)
    data = (
        da.concatenate(blocks)
        if blocks
        else da.zeros((0, len(wanted)), np.float64, chunks=((0,), (len(wanted),)))
    )
    columns = column_indices(wanted, first.names, first.descriptions)
    return Cells(
        data,
        tuple(first.names[c] for c in columns),
        sample_index(data.chunks[0], chunk_samples),
        tuple(Path(header.path).name for header in headers),
        tuple(first.descriptions[c] for c in columns),
    )


def read_fcs_events(
    header: FCSHeader, start: int, stop: int, columns: Sequence[int], compensate: bool = False
) -> np.ndarray:
    """Events ``start:stop`` of one FCS file, scaled (and compensated), in ``columns``.

    Parameters
    ----------
    header : FCSHeader
        The file, from :func:`read_fcs_header`.
    start, stop : int
        The events to read.
    columns : sequence of int
        The channels to return, in this order.
    compensate : bool, default=False
        Apply the file's spill matrix first.

    Returns
    -------
    ndarray of float64, shape (stop - start, len(columns))
    """
    n_channels = len(header.names)
    if header.datatype in ("F", "D"):
        itemsize = header.float_dtype.itemsize
        with open(header.path, "rb") as f:
            f.seek(header.data_start + start * n_channels * itemsize)
            raw = np.fromfile(f, dtype=header.float_dtype, count=(stop - start) * n_channels)
        events = raw.reshape(stop - start, n_channels).astype(np.float64)
    else:
        try:
            fd = _import("flowio").FlowData(header.path)
        except Exception as exc:
            raise FCSError(f"{header.path!r} is not a readable FCS file: {exc}") from exc
        events = fd.as_array(preprocess=False)[start:stop]
    events = _scaled(events, header)
    if compensate:
        events = _compensated(events, header)
    return np.ascontiguousarray(events[:, list(columns)])


def read_anndata(
    source: Any,
    markers: Sequence[str] | None = None,
    *,
    sample_key: str | None = None,
    layer: str | None = None,
    chunks: int = DEFAULT_ROWS_PER_CHUNK,
) -> Cells:
    """Cells of an AnnData object or ``.h5ad`` file, markers chosen by ``var_names``.

    Parameters
    ----------
    source : AnnData, str or path
        An in-memory ``AnnData`` (numpy or dask ``X``) or an ``.h5ad`` file, whose dense
        ``X`` (or layer) is read lazily, ``chunks`` rows at a time, on the workers.
    markers : sequence of str or None, default=None
        ``var_names`` to keep, in this order; None keeps all.
    sample_key : str or None, default=None
        An ``obs`` column naming each cell's sample (read lazily from a file); None puts
        every cell in one sample named after the source.
    layer : str or None, default=None
        A layer to read instead of ``X``.
    chunks : int, default=500_000
        Rows per chunk.

    Returns
    -------
    Cells

    Raises
    ------
    FileNotFoundError, ValueError, UnknownMarkerError
        A missing file, a sparse matrix, an unknown ``obs`` column or layer, an unknown marker.
    """
    if isinstance(source, str | os.PathLike):
        return _read_h5ad(os.fspath(source), markers, sample_key, layer, chunks)
    var_names = [str(name) for name in source.var_names]
    matrix = source.X if layer is None else _member(source.layers, layer, "layer")
    if hasattr(matrix, "tocsr") or hasattr(matrix, "todense"):
        raise ValueError("the AnnData matrix is sparse; cytometry needs a dense matrix")
    data = as_dask_array(matrix, chunks).astype(np.float64)
    if sample_key is None:
        sample = da.zeros((data.shape[0],), dtype=np.int32, chunks=(data.chunks[0],))
        samples: tuple[str, ...] = ("sample",)
    else:
        column = _member(source.obs, sample_key, "obs column")
        codes, names = _codes(np.asarray(column))
        sample = da.from_array(codes, chunks=(data.chunks[0],))
        samples = names
    return _picked(data, var_names, sample, samples, markers)


def read_array(
    source: Any,
    markers: Sequence[str],
    *,
    sample: Any = None,
    samples: Sequence[str] | None = None,
    chunks: int | str = "auto",
    key: str | None = None,
) -> Cells:
    """Cells from anything :func:`dasksom.io.as_dask_array` reads (zarr, parquet, csv ...).

    Parameters
    ----------
    source : array, DataFrame, zarr array, path or URL
        The values, one row per cell.
    markers : sequence of str
        The name of every column.
    sample : array-like of int, dask array or None, default=None
        Each row's sample index; None puts all rows in one sample.
    samples : sequence of str or None, default=None
        The samples' names; ``sample-0``, ``sample-1`` ... where None.
    chunks : int, str or "auto", default="auto"
        Rows per chunk, as ``as_dask_array``.
    key : str or None, default=None
        The array inside a zarr group, ``.npz`` or HDF5 file.

    Returns
    -------
    Cells
    """
    data = as_dask_array(source, chunks, key=key).astype(np.float64)
    if data.ndim != 2 or data.shape[1] != len(markers):
        raise ValueError(f"{len(markers)} marker names for data of shape {data.shape}")
    if sample is None:
        index = da.zeros((data.shape[0],), dtype=np.int32, chunks=(data.chunks[0],))
    else:
        index = da.asarray(sample).astype(np.int32).rechunk((data.chunks[0],))
        if index.shape != (data.shape[0],):
            raise ValueError(f"one sample index per row is needed, got shape {index.shape}")
    if samples is None:
        count = 1 if sample is None else int(index.max().compute()) + 1
        samples = [f"sample-{i}" for i in range(count)]
    names = tuple(str(m) for m in markers)
    return Cells(data, names, index, tuple(samples), names)


class H5adMatrix:
    """A dense matrix inside an ``.h5ad`` file, opened anew for every slice (picklable)."""

    def __init__(self, path: str, key: str) -> None:
        h5py = _import("h5py")
        self.path, self.key = path, key
        with h5py.File(path, "r") as f:
            if key not in f:
                raise ValueError(f"{path!r} has no {key!r}")
            node = f[key]
            if not isinstance(node, h5py.Dataset):
                raise ValueError(f"{key!r} of {path!r} is sparse; cytometry needs a dense matrix")
            self.shape, self.dtype = tuple(node.shape), node.dtype
        self.ndim = len(self.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        """The values at ``index``, read from the file."""
        with _import("h5py").File(self.path, "r") as f:
            return np.asarray(f[self.key][index])


def _read_h5ad(
    path: str,
    markers: Sequence[str] | None,
    sample_key: str | None,
    layer: str | None,
    chunks: int,
) -> Cells:
    if not Path(path).exists():
        raise FileNotFoundError(f"no AnnData file {path!r}")
    h5py = _import("h5py")
    anndata = _import("anndata")
    try:
        with h5py.File(path, "r") as f:
            var = anndata.io.read_elem(f["var"])
            obs_names = list(f["obs"].keys()) if "obs" in f else []
    except (OSError, KeyError) as exc:
        raise ValueError(f"{path!r} is not a readable .h5ad file: {exc}") from exc
    matrix = H5adMatrix(path, "X" if layer is None else f"layers/{layer}")
    data = da.from_array(matrix, chunks=(chunks, matrix.shape[1])).astype(np.float64)
    if sample_key is None:
        sample = da.zeros((data.shape[0],), dtype=np.int32, chunks=(data.chunks[0],))
        samples: tuple[str, ...] = (Path(path).stem,)
    else:
        if sample_key not in obs_names:
            raise KeyError(f"{path!r} has no obs column {sample_key!r}; it has {obs_names}")
        sample, samples = _h5ad_samples(path, sample_key, data.chunks[0])
    return _picked(data, [str(name) for name in var.index], sample, samples, markers)


def _h5ad_samples(path: str, key: str, chunks: tuple[int, ...]) -> tuple[da.Array, tuple[str, ...]]:
    h5py = _import("h5py")
    with h5py.File(path, "r") as f:
        node = f[f"obs/{key}"]
        if isinstance(node, h5py.Group) and "codes" in node:
            names = tuple(str(_text(v)) for v in node["categories"][()])
            codes = da.from_array(H5adMatrix(path, f"obs/{key}/codes"), chunks=(chunks,))
            return codes.astype(np.int32), names
    values = _import("anndata").read_h5ad(path, backed="r").obs[key]
    codes_np, names = _codes(np.asarray(values))
    return da.from_array(codes_np, chunks=(chunks,)), names


def _picked(
    data: da.Array,
    var_names: list[str],
    sample: da.Array,
    samples: tuple[str, ...],
    markers: Sequence[str] | None,
) -> Cells:
    cells = Cells(data, tuple(var_names), sample, samples, tuple(var_names))
    return cells if markers is None else cells.select(markers)


def _codes(values: np.ndarray) -> tuple[np.ndarray, tuple[str, ...]]:
    names, codes = np.unique(values.astype(str), return_inverse=True)
    return codes.astype(np.int32), tuple(str(n) for n in names)


def _member(container: Any, key: str, what: str) -> Any:
    if key not in container:
        raise KeyError(f"no {what} {key!r}; there are {list(container.keys())}")
    return container[key]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_same_channels(first: FCSHeader, other: FCSHeader) -> None:
    if set(first.names) == set(other.names):
        return
    missing = [n for n in first.names if n not in other.names]
    extra = [n for n in other.names if n not in first.names]
    raise FCSError(
        f"the channels of {other.path!r} differ from those of {first.path!r}: missing "
        f"{missing}, extra {extra}; pass markers= to read the channels they share"
    )


def _scaled(events: np.ndarray, header: FCSHeader) -> np.ndarray:
    """The FCS scaling of raw values: ``$TIMESTEP``, ``$PnE`` log amplification, ``$PnG``."""
    out = events.astype(np.float64, copy=True)
    if header.time_index is not None:
        out[:, header.time_index] *= header.timestep
    for c in range(out.shape[1]):
        if header.decades[c] > 0:
            out[:, c] = 10 ** (header.decades[c] * out[:, c] / header.ranges[c])
            out[:, c] *= header.log_zeros[c]
        if header.gains[c] not in (0.0, 1.0):
            out[:, c] /= header.gains[c]
    return out


def _compensated(events: np.ndarray, header: FCSHeader) -> np.ndarray:
    spill = header.spill
    if spill is None:
        raise FCSError(f"{header.path!r} has no spill matrix to compensate with")
    columns = [header.names.index(name) for name in spill.channels]
    out = events.copy()
    out[:, columns] = np.linalg.solve(spill.matrix.T, events[:, columns].T).T
    return out


def _spill(keywords: dict, names: tuple[str, ...], path: str) -> Spill | None:
    text = next((keywords[k] for k in SPILL_KEYWORDS if keywords.get(k)), None)
    if text is None:
        return None
    fields = [field.strip() for field in str(text).split(",")]
    try:
        n = int(fields[0])
        channels = tuple(fields[1 : n + 1])
        matrix = np.asarray(fields[n + 1 :], dtype=np.float64).reshape(n, n)
    except (ValueError, IndexError) as exc:
        raise FCSError(f"{path!r} has a malformed spill matrix: {exc}") from exc
    unknown = [c for c in channels if c not in names]
    if unknown:
        raise FCSError(f"the spill matrix of {path!r} names unknown channels {unknown}")
    if np.linalg.matrix_rank(matrix) < n:
        raise FCSError(f"the spill matrix of {path!r} is singular")
    return Spill(channels, matrix)


def _float_keyword(keywords: dict, key: str, path: str) -> float:
    value = str(keywords.get(key, "")).strip()
    if not value:
        return 1.0
    try:
        return float(value)
    except ValueError:
        raise FCSError(f"{path!r}: ${key.upper()} is {value!r}, not a number") from None


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError as exc:
        raise ImportError(
            f"dasksom.cytometry needs {name}: pip install 'dasksom[cytometry]'"
        ) from exc
