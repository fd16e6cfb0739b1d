"""Data sources: everything a user may hand to ``fit`` becomes a row-chunked dask array.

Each chunk holds whole rows (one chunk along the feature axis), so a chunk can find its
best-matching units on its own.  Files are read lazily, chunk by chunk, when the graph runs;
opening a source reads only its metadata.  Inputs with more than two dimensions, such as
``(N, 28, 28)`` images, are flattened lazily to ``(N, 784)``.

Sources
-------
In memory
    numpy arrays, lists of rows, dask arrays, zarr arrays and groups, array-likes with
    ``shape``, ``dtype`` and slicing (e.g. an ``h5py.Dataset``), pandas and dask DataFrames,
    xarray ``DataArray`` objects (a dask-backed one keeps its chunks) and a variable of an
    xarray ``Dataset`` (``key="name"``).
Files and stores, as a local path or an fsspec URL (``"s3://bucket/data.zarr"``,
``"file:///data/x.npy"``; remote protocols need their fsspec backend, e.g. ``s3fs``)
    ``.zarr``        zarr store (format 2 or 3), an array or a group
    ``.npy``         memory-mapped; never read whole
    ``.npz``         an array of a numpy archive (uncompressed members are memory-mapped)
    ``.h5 .hdf5``    a dataset of an HDF5 file (needs ``pip install dasksom[hdf5]``)
    ``.parquet .pq`` a Parquet file or dataset directory; numeric columns only
    ``.csv``         a CSV file, header row optional (``header=``), fields split at
                     ``delimiter=`` (``,``); numeric columns only

    A directory without an extension is read as a zarr store when it holds zarr metadata,
    or as a Parquet dataset when it holds ``.parquet`` files.

Naming the array inside a container (a zarr group, an ``.npz`` or HDF5 file): pass
``key="name"``, or append ``"::name"`` to the path, e.g. ``SOM().fit("data.h5::images")``
or ``"s3://bucket/store.zarr::train/x"``.  A container that holds exactly one array needs no
name.  A store written by xarray's ``Dataset.to_zarr`` is a zarr group: name the variable the
same way (``"weather.zarr::temperature"``).  For tables, ``columns=[...]`` picks the columns to
use, by name or by position.

Chunks: ``chunks="auto"`` aims at :data:`TARGET_CHUNK_BYTES` per chunk, with at least
:data:`CHUNKS_PER_CORE` chunks per core, in multiples of the storage chunks of zarr and HDF5
data; it keeps the row chunks of a dask array that already has whole rows, and the
partitions of a table.  ``chunks=10_000`` asks for that many rows per chunk and
``chunks="64MiB"`` for chunks of about that size.

:func:`to_zarr` converts any source to a zarr store with row chunks, which is the fastest
format to train from repeatedly.
"""

from __future__ import annotations

import contextlib
import math
import os
import posixpath
import uuid
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from tokenize import TokenError
from typing import Any, Literal, cast

import dask.array as da
import fsspec
import numpy as np
import zarr
from dask.base import tokenize
from dask.utils import parse_bytes
from fsspec.implementations.local import LocalFileSystem

# Aim for chunks of this many bytes: big enough to keep BLAS busy, small enough to stream.
TARGET_CHUNK_BYTES = 128 * 2**20
# Data is cut into at least this many chunks per core, so every core has work.
CHUNKS_PER_CORE = 2
# Separates a container's path from the name of the array inside it.
KEY_SEPARATOR = "::"

FORMATS = {
    ".zarr": "zarr",
    ".npy": "npy",
    ".npz": "npz",
    ".h5": "hdf5",
    ".hdf5": "hdf5",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
}
SUPPORTED_EXTENSIONS = tuple(FORMATS)
_ZARR_METADATA = ("zarr.json", ".zarray", ".zgroup")
# What a library raises when the bytes it reads are not what they should be.
_READ_ERRORS = (
    OSError,
    ValueError,
    RuntimeError,
    EOFError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)
# What zipfile raises on a damaged archive (an unknown compression method, a password ...).
_ZIP_ERRORS = (zipfile.BadZipFile, OSError, EOFError, RuntimeError, NotImplementedError, zlib.error)


def row_chunk_size(
    n_rows: int,
    n_features: int,
    itemsize: int,
    target_bytes: int = TARGET_CHUNK_BYTES,
    *,
    per_core: int = CHUNKS_PER_CORE,
) -> int:
    """Rows per chunk: about ``target_bytes`` per chunk, and ``per_core`` chunks per core.

    Parameters
    ----------
    n_rows, n_features : int
        Shape of the (flattened) data.
    itemsize : int
        Bytes per value.
    target_bytes : int
        Wanted bytes per chunk.
    per_core : int
        Cut the rows into at least this many chunks per core; 0 looks at bytes only.

    Returns
    -------
    int, at least 1
    """
    rows = min(max(1, n_rows), target_bytes // max(1, n_features * itemsize))
    if per_core > 0:
        rows = min(rows, -(-n_rows // (per_core * (os.cpu_count() or 1))))
    return int(max(1, rows))


def as_dask_array(
    source: Any,
    chunks: int | str = "auto",
    *,
    key: str | None = None,
    columns: Sequence[str | int] | None = None,
    header: bool | None = None,
    delimiter: str = ",",
    storage_options: dict[str, Any] | None = None,
) -> da.Array:
    """Wrap ``source`` as a lazily read dask array whose chunks hold whole rows.

    Parameters
    ----------
    source : array, list, DataFrame, zarr array or group, path or URL
        See the module docstring for every source; a path may end in ``"::name"``.
    chunks : int, str or "auto", default="auto"
        Rows per chunk (int), about that many bytes per chunk (``"64MiB"``), or ``"auto"``.
    key : str, default=None
        Name of the array inside a zarr group, ``.npz`` or HDF5 file, or of the variable of
        an xarray ``Dataset``.
    columns : sequence of str or int, default=None
        Columns of a table (Parquet, CSV, DataFrame) to use, in this order: by name, or by
        position counted from 0 (an int that is no column's name; negative counts from the
        end).  None uses all of them.
    header : bool or None, default=None
        Whether the first line of a CSV file names the columns.  None tells from the line:
        a header unless every field is a number (pandas' ``0,1,2...`` header counts as one).
        CSV files only.
    delimiter : str, default=","
        The character between the fields of a CSV file (``";"``, ``"\\t"`` ...).  CSV
        files only.
    storage_options : dict, default=None
        fsspec options for a URL (credentials, endpoint ...).

    Returns
    -------
    dask.array.Array
        Shape ``(n_rows, n_features)`` (1-D and 0-D sources keep their shape), with exactly
        one chunk along the feature axis.
    """
    if isinstance(source, str | os.PathLike):
        return open_array(
            source,
            key=key,
            chunks=chunks,
            columns=columns,
            header=header,
            delimiter=delimiter,
            storage_options=storage_options,
        )
    _check_chunks(chunks)
    if header is not None or delimiter != ",":
        raise ValueError(
            f"header= and delimiter= are for reading CSV files, but the source is a "
            f"{type(source).__name__}; drop them."
        )
    if _is_xarray(source):
        source, key = _xarray_data(source, key), None
    if columns is not None and not _is_dataframe(source):
        raise ValueError("columns= picks columns of a table (Parquet, CSV or DataFrame).")
    if isinstance(source, zarr.Group):
        source = _zarr_member(source, key, repr(source))
    elif key is not None:
        raise ValueError(
            f"key={key!r} names an array inside a zarr group or a file, but the source is a "
            f"{type(source).__name__}; drop key."
        )
    if isinstance(source, da.Array):
        return _rechunk_rows(source, chunks)
    if isinstance(source, zarr.Array):
        return _from_reader(_ZarrReader(source, repr(source)), chunks, _storage_rows(source))
    if _is_dataframe(source):
        return _from_table(source, columns, chunks, f"the {type(source).__name__}")
    if isinstance(source, np.ndarray):
        return _from_numpy(source, chunks)
    if hasattr(source, "__array_function__") or _is_lazy_arraylike(source):
        # cupy arrays, h5py datasets ...: sliced chunk by chunk, never copied whole
        rows = _rows_for(chunks, source.shape, source.dtype, _storage_rows(source))
        return _flatten(da.from_array(source, chunks=(rows,) + tuple(source.shape[1:])))
    try:
        data = np.asarray(source)
    except ValueError as exc:
        raise ValueError(
            f"Could not make an array of the {type(source).__name__}: {exc}. Every row must "
            "have the same number of values."
        ) from exc
    return _from_numpy(data, chunks)


def open_array(
    path: str | os.PathLike,
    *,
    key: str | None = None,
    chunks: int | str = "auto",
    columns: Sequence[str | int] | None = None,
    header: bool | None = None,
    delimiter: str = ",",
    storage_options: dict[str, Any] | None = None,
) -> da.Array:
    """Open a file, store or URL lazily as a dask array whose chunks hold whole rows.

    Parameters
    ----------
    path : str or os.PathLike
        Local path or fsspec URL, optionally ending in ``"::name"`` to name the array
        inside a container.  The format comes from the extension (see
        :data:`SUPPORTED_EXTENSIONS`).
    key : str, default=None
        Name of the array inside a zarr group, ``.npz`` or HDF5 file (same as ``"::name"``).
    chunks : int, str or "auto", default="auto"
        As in :func:`as_dask_array`.
    columns : sequence of str or int, default=None
        Columns of a Parquet or CSV table to use, by name or position, as in
        :func:`as_dask_array`; None uses all of them.
    header : bool or None, default=None
        Whether the first line of a CSV file names the columns; None tells from the line, as
        in :func:`as_dask_array`.  CSV files only.
    delimiter : str, default=","
        The character between the fields of a CSV file.  CSV files only.
    storage_options : dict, default=None
        fsspec options for a URL.

    Returns
    -------
    dask.array.Array
        As in :func:`as_dask_array`.

    Raises
    ------
    FileNotFoundError
        Nothing exists at the path.
    ValueError
        Unknown extension, corrupt or truncated file, non-numeric columns, or an ambiguous
        container (several arrays and no name).
    KeyError
        The named array or column does not exist.
    ImportError
        An HDF5 file without h5py installed, or a URL without its fsspec backend.
    """
    _check_chunks(chunks)
    text, key = _split_key(os.fspath(path), key)
    src = _Location.find(text, storage_options or {})
    fmt = src.format()
    if fmt in ("npy", "parquet", "csv") and key is not None:
        raise ValueError(
            f"{text!r} holds a single {'array' if fmt == 'npy' else 'table'}; drop the key {key!r}."
        )
    if fmt != "csv" and (header is not None or delimiter != ","):
        raise ValueError(
            f"header= and delimiter= are for reading CSV files, and {text!r} is read as {fmt}; "
            "drop them."
        )
    if fmt in ("parquet", "csv"):
        table = _read_table(src, fmt, header=header, delimiter=delimiter)
        return _from_table(table, columns, chunks, repr(text))
    if columns is not None:
        raise ValueError(f"columns= picks columns of a Parquet or CSV table, not of {text!r}.")
    if fmt == "zarr":
        array = _zarr_member(src.open_zarr(), key, repr(text))
        return _from_reader(_ZarrReader(array, repr(text)), chunks, _storage_rows(array))
    if fmt == "hdf5":
        reader, storage_rows = _Hdf5Reader.open(src, key)
        return _from_reader(reader, chunks, storage_rows)
    return _from_reader(_NpyReader.open(src, key, fmt), chunks)


# --- chunking -----------------------------------------------------------------------------


def _check_chunks(chunks: int | str) -> None:
    if isinstance(chunks, int | np.integer) and not isinstance(chunks, bool) and chunks >= 1:
        return
    if chunks == "auto":
        return
    if isinstance(chunks, str):
        try:
            if parse_bytes(chunks) >= 1:
                return
        except ValueError:
            pass
    raise ValueError(
        f"chunks must be 'auto', a number of rows (an int of at least 1) or a size such as "
        f"'64MiB'; got {chunks!r}."
    )


def _rows_for(
    chunks: int | str,
    shape: Sequence[int],
    dtype: Any,
    storage_rows: int | None = None,
    *,
    per_core: int = CHUNKS_PER_CORE,
) -> int:
    """Rows per chunk for data of ``shape``: ``chunks`` itself, or sized by bytes."""
    if not isinstance(chunks, str):
        return int(chunks)
    n_features = int(np.prod(shape[1:]))
    itemsize = np.dtype(dtype).itemsize
    if chunks != "auto":
        return row_chunk_size(shape[0], n_features, itemsize, parse_bytes(chunks), per_core=0)
    rows = row_chunk_size(shape[0], n_features, itemsize, per_core=per_core)
    # Whole storage chunks, so no stored chunk is decoded twice; a smaller chunk than one
    # stored chunk is kept when it is what gives every core work.
    if storage_rows and rows >= storage_rows:
        rows -= rows % storage_rows
    return rows


def _storage_rows(array: Any) -> int | None:
    stored = getattr(array, "shards", None) or getattr(array, "chunks", None)
    return int(stored[0]) if stored else None


def _flatten(array: da.Array) -> da.Array:
    """``(N, a, b, ...)`` to ``(N, a * b * ...)``; chunks must already hold whole rows."""
    if array.ndim <= 2:
        return array
    features = math.prod(array.shape[1:])
    if array.size == 0:
        # dask cannot reshape an array of no values; there is nothing to read either.
        return da.empty((array.shape[0], features), dtype=array.dtype, chunks=(array.chunks[0], -1))
    return array.reshape(array.shape[0], features)


def _rechunk_rows(array: da.Array, chunks: int | str) -> da.Array:
    if array.ndim == 0:
        return array
    if any(np.isnan(array.chunks[0])):
        # Rows cannot be regrouped, nor a map sized, without knowing how many there are.
        array = array.compute_chunk_sizes()
    whole_rows = all(len(c) == 1 for c in array.chunks[1:])
    if chunks == "auto" and whole_rows:
        return _flatten(array)
    rows = chunks
    if isinstance(chunks, str):
        # Merging feature chunks multiplies a chunk's size: size the rows afresh.
        rows = _rows_for(chunks, array.shape, array.dtype)
    spec = {0: rows} | {axis: -1 for axis in range(1, array.ndim)}
    return _flatten(array.rechunk(spec))


def _from_numpy(data: np.ndarray, chunks: int | str) -> da.Array:
    if data.ndim == 0:
        return da.from_array(data)
    rows = _rows_for(chunks, data.shape, data.dtype)
    # Chunks are views of ``data``: ``da.from_array`` would first copy it all.
    starts = range(0, max(len(data), 1), rows)
    name = f"from-numpy-{uuid.uuid4().hex}"
    zeros = (0,) * (data.ndim - 1)
    blocks = {(name, i, *zeros): data[start : start + rows] for i, start in enumerate(starts)}
    sizes = tuple(len(block) for block in blocks.values())
    dims = tuple((n,) for n in data.shape[1:])
    return _flatten(da.Array(blocks, name, (sizes, *dims), meta=data[:0]))


def _from_reader(reader: _Reader, chunks: int | str, storage_rows: int | None = None) -> da.Array:
    rows = _rows_for(chunks, reader.shape, reader.dtype, storage_rows)
    array = da.from_array(
        reader,
        chunks=(rows,) + reader.shape[1:],
        name=f"read-{tokenize(reader, rows)}",
        meta=np.empty((0,) * reader.ndim, dtype=reader.dtype),
    )
    return _flatten(array)


# --- locations ----------------------------------------------------------------------------


def _split_key(text: str, key: str | None) -> tuple[str, str | None]:
    """Split ``"path::name"``; a file whose name really contains ``::`` is left whole."""
    if KEY_SEPARATOR not in text or os.path.exists(text):
        return text, key
    location, _, name = text.rpartition(KEY_SEPARATOR)
    if "://" in name:
        # fsspec chains protocols with "::", e.g. "simplecache::s3://bucket/x.zarr"
        return text, key
    if not name:
        raise ValueError(f"{text!r} ends in {KEY_SEPARATOR!r} but names no array after it.")
    if key is not None and key != name:
        raise ValueError(f"{text!r} names the array {name!r} but key={key!r}; give one name.")
    return location, name


@dataclass(frozen=True)
class _Location:
    """A local path or an fsspec URL that exists."""

    text: str
    url: str
    local: bool
    storage_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def find(cls, text: str, storage_options: dict[str, Any]) -> _Location:
        if "://" in text:
            fs, fspath = fsspec.core.url_to_fs(text, **storage_options)
            local = isinstance(fs, LocalFileSystem)
        else:
            fs, fspath, local = LocalFileSystem(), os.path.expanduser(text), True
        if not fs.exists(fspath):
            raise FileNotFoundError(
                f"No file or directory at {text!r}: check the path (for a URL, also its "
                "storage_options)."
            )
        # Absolute, so that workers started elsewhere find the file too.
        return cls(text, os.path.abspath(fspath) if local else text, local, storage_options)

    def _fs(self) -> tuple[Any, str]:
        if self.local:
            return LocalFileSystem(), self.url
        return fsspec.core.url_to_fs(self.url, **self.storage_options)

    def format(self) -> str:
        """The format the extension (or a directory's content) tells."""
        fs, path = self._fs()
        name = posixpath.basename(path.rstrip("/").replace(os.sep, "/")).lower()
        suffix = posixpath.splitext(name)[1]
        if suffix in FORMATS:
            return FORMATS[suffix]
        if fs.isdir(path):
            children = {posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)}
            if children & set(_ZARR_METADATA):
                return "zarr"
            if any(child.endswith(".parquet") for child in children):
                return "parquet"
        raise ValueError(
            f"Cannot tell how to read {self.text!r} (extension {suffix or 'none'!r}). "
            f"Supported: {', '.join(SUPPORTED_EXTENSIONS)}, or a directory holding a zarr "
            "store or Parquet files; convert other data to one of them, or pass an array."
        )

    def open_binary(self) -> Any:
        """A context manager giving the file opened for binary reading."""
        if self.local:
            return open(self.url, "rb")
        return fsspec.open(self.url, "rb", **self.storage_options)

    def stamp(self) -> Any:
        """Changes when a local file changes, so a rewritten file gets new dask keys."""
        if self.local:
            stat = os.stat(self.url)
            return stat.st_mtime_ns, stat.st_size
        return uuid.uuid4().hex

    def size(self) -> int:
        fs, path = self._fs()
        return int(fs.size(path))

    def open_zarr(self) -> zarr.Array | zarr.Group:
        try:
            if self.local:
                return zarr.open(store=self.url, mode="r")
            return zarr.open(store=self.url, mode="r", storage_options=self.storage_options)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(
                f"Could not open {self.text!r} as a zarr store: {exc!r}. It may be corrupt, "
                "or not a zarr store."
            ) from exc


def _zarr_member(node: zarr.Array | zarr.Group, key: str | None, label: str) -> zarr.Array:
    """The array ``key`` of a zarr group, or its only array when no key is given."""
    if isinstance(node, zarr.Array):
        if key is not None:
            raise ValueError(f"{label} is a single zarr array, not a group; drop key {key!r}.")
        return node
    if key is not None:
        try:
            member = node[key.strip("/")]
        except KeyError:
            member = None
        if isinstance(member, zarr.Array):
            return member
    arrays = {
        name: child for name, child in node.members(max_depth=None) if isinstance(child, zarr.Array)
    }
    names = sorted(arrays)
    if key is None and len(names) == 1:
        return arrays[names[0]]
    raise _missing_key(label, key, names)


def _missing_key(label: str, key: str | None, names: Sequence[str]) -> Exception:
    """The error for a container without the array ``key``, or with several and no key."""
    names = sorted(names)
    listed = ", ".join(repr(n) for n in names) or "none"
    if key is not None:
        return KeyError(f"{label} has no array named {key!r}; its arrays: {listed}.")
    if not names:
        return ValueError(f"{label} holds no arrays.")
    return ValueError(
        f"{label} holds several arrays ({listed}); name one with key={names[0]!r} or "
        f"a '{KEY_SEPARATOR}{names[0]}' suffix on the path."
    )


# --- lazy readers -------------------------------------------------------------------------


class _Reader:
    """Reads rows on demand; pickles as a location, never as data.

    ``da.from_array`` slices it once per chunk when the graph runs.  Errors from the
    underlying library become a ValueError that names the file.
    """

    label: str
    shape: tuple[int, ...]
    dtype: np.dtype
    stamp: Any

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, index: Any) -> np.ndarray:
        try:
            return self.read(index if isinstance(index, tuple) else (index,))
        except _READ_ERRORS as exc:
            raise ValueError(
                f"Could not read {self.label}: {exc!r}. The file may be corrupt or truncated."
            ) from exc

    def read(self, index: tuple) -> np.ndarray:
        raise NotImplementedError

    def __dask_tokenize__(self) -> tuple:
        return type(self).__name__, self.label, self.shape, str(self.dtype), self.stamp


class _ZarrReader(_Reader):
    def __init__(self, array: zarr.Array, label: str) -> None:
        self.array, self.label = array, label
        self.shape, self.dtype = tuple(array.shape), np.dtype(array.dtype)
        self.stamp = uuid.uuid4().hex
        _check_shape(self)

    def read(self, index: tuple) -> np.ndarray:
        # dask reads with tuples of slices, for which zarr's default (CPU) buffers give NumPy.
        return cast(np.ndarray, self.array[index])


class _NpyReader(_Reader):
    """An ``.npy`` file or a member of an ``.npz`` archive.

    Memory-maps what lies uncompressed in a local file; otherwise seeks to the first row
    wanted and reads only the rows wanted (a compressed member is decompressed up to them).
    """

    def __init__(
        self, src: _Location, label: str, header: tuple, offset: int, member: str | None
    ) -> None:
        self.src, self.label, self.offset, self.member = src, label, offset, member
        self.shape, fortran, self.dtype = header
        self.order: Literal["C", "F"] = "F" if fortran else "C"
        self.stamp = src.stamp()
        self.memmap = src.local and member is None
        _check_shape(self)
        if self.dtype.hasobject:
            raise ValueError(f"{label} holds Python objects, not numbers.")
        if fortran and not self.memmap:
            raise ValueError(
                f"{label} is stored in Fortran order, which can only be read from an "
                "uncompressed local file; re-save it with np.save(path, np.ascontiguousarray(x))."
            )

    @classmethod
    def open(cls, src: _Location, key: str | None, fmt: str) -> _NpyReader:
        label = repr(src.text)
        if fmt == "npy":
            with src.open_binary() as f:
                header, offset = _read_npy_header(f, label)
            reader = cls(src, label, header, offset, None)
            _check_size(label, src.size() - offset, reader.nbytes)
            return reader
        try:
            with src.open_binary() as f, zipfile.ZipFile(f) as archive:
                return cls._open_member(src, archive, f, key)
        except _ZIP_ERRORS as exc:
            raise ValueError(
                f"{label} is not a readable .npz archive ({exc}); it may be corrupt or truncated."
            ) from exc

    @classmethod
    def _open_member(
        cls, src: _Location, archive: zipfile.ZipFile, raw: Any, key: str | None
    ) -> _NpyReader:
        names = [n.removesuffix(".npy") for n in archive.namelist() if n.endswith(".npy")]
        if key is None and len(names) == 1:
            key = names[0]
        if key not in names:
            raise _missing_key(repr(src.text), key, names)
        info = archive.getinfo(f"{key}.npy")
        label = f"{src.text!r} (array {key!r})"
        with archive.open(info) as member:
            header, offset = _read_npy_header(member, label)
        if info.compress_type == zipfile.ZIP_STORED:
            # The member's bytes lie as they are in the archive: read them in place.
            raw.seek(info.header_offset)
            local_header = raw.read(30)
            if local_header[:4] != b"PK\x03\x04":
                raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
            name_len = int.from_bytes(local_header[26:28], "little")
            extra_len = int.from_bytes(local_header[28:30], "little")
            start = info.header_offset + 30 + name_len + extra_len
            reader = cls(src, label, header, start + offset, None)
        else:
            reader = cls(src, label, header, offset, info.filename)
        _check_size(label, info.file_size - offset, reader.nbytes)
        return reader

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize

    def read(self, index: tuple) -> np.ndarray:
        if self.nbytes == 0:
            return np.empty(self.shape, self.dtype)[index]
        if self.memmap:
            mapped = np.memmap(
                self.src.url, self.dtype, "r", self.offset, self.shape, order=self.order
            )
            # A copy, so the map closes when this task ends.
            return np.array(mapped[index])
        start, stop, _ = index[0].indices(self.shape[0])
        row_bytes = self.nbytes // self.shape[0]
        with self.src.open_binary() as f:
            if self.member is None:
                f.seek(self.offset + start * row_bytes)
                data = f.read((stop - start) * row_bytes)
            else:
                with zipfile.ZipFile(f) as archive, archive.open(self.member) as member:
                    member.seek(self.offset + start * row_bytes)
                    data = member.read((stop - start) * row_bytes)
        if len(data) != (stop - start) * row_bytes:
            raise EOFError(f"rows {start}:{stop} run past the end of the data")
        rows = np.frombuffer(data, self.dtype).reshape((stop - start,) + self.shape[1:])
        return rows[(slice(None),) + index[1:]]


class _Hdf5Reader(_Reader):
    """One dataset of an HDF5 file, opened anew for each chunk read."""

    def __init__(self, src: _Location, key: str, shape: Sequence[int], dtype: Any) -> None:
        self.src, self.key, self.label = src, key, f"{src.text!r} (dataset {key!r})"
        self.shape, self.dtype, self.stamp = tuple(shape), np.dtype(dtype), src.stamp()
        _check_shape(self)

    @classmethod
    def open(cls, src: _Location, key: str | None) -> tuple[_Hdf5Reader, int | None]:
        try:
            with _open_hdf5(src) as h5:
                names: list[str] = []
                h5.visititems(lambda n, obj: names.append(n) if _is_dataset(obj) else None)
                if key is None and len(names) == 1:
                    key = names[0]
                key = key if key is None else key.strip("/")
                if key not in names:
                    raise _missing_key(repr(src.text), key, names)
                dataset = h5[key]
                storage_rows = dataset.chunks[0] if dataset.chunks else None
                return cls(src, key, dataset.shape, dataset.dtype), storage_rows
        except OSError as exc:
            raise ValueError(
                f"Could not read {src.text!r} as HDF5 ({exc}); it may be corrupt or truncated."
            ) from exc

    def read(self, index: tuple) -> np.ndarray:
        with _open_hdf5(self.src) as h5:
            return h5[self.key][index]


@contextlib.contextmanager
def _open_hdf5(src: _Location) -> Iterator[Any]:
    h5py = _import_h5py()
    if src.local:
        with h5py.File(src.url, "r") as h5:
            yield h5
        return
    # h5py reads a remote file through the file object fsspec gives.
    with src.open_binary() as f, h5py.File(f, "r") as h5:
        yield h5


def _is_dataset(obj: Any) -> bool:
    return isinstance(obj, _import_h5py().Dataset)


def _import_h5py() -> Any:
    try:
        import h5py
    except ImportError as exc:
        raise ImportError(
            "Reading HDF5 files needs h5py: pip install dasksom[hdf5] (or pip install h5py)."
        ) from exc
    return h5py


def _read_npy_header(f: Any, label: str) -> tuple[tuple, int]:
    """``((shape, fortran_order, dtype), offset of the data)`` of the ``.npy`` bytes in f."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(f)
        else:
            header = np.lib.format.read_array_header_2_0(f)
    except (ValueError, EOFError, OSError, SyntaxError, TokenError) as exc:
        raise ValueError(
            f"{label} is not a valid .npy array ({exc}); it may be corrupt or truncated."
        ) from exc
    return header, f.tell()


def _check_size(label: str, available: int, needed: int) -> None:
    if available < needed:
        raise ValueError(
            f"{label} is truncated: its header promises {needed} bytes of data but only "
            f"{available} are there."
        )


def _check_shape(reader: _Reader) -> None:
    """Refuse what a header may claim but no data set is: a scalar, a negative length, or
    values of zero bytes (which would make any number of rows out of no data)."""
    if reader.ndim == 0:
        raise ValueError(f"{reader.label} holds a single value, not rows of samples.")
    if any(n < 0 for n in reader.shape) or math.prod(n for n in reader.shape if n) >= 2**62:
        raise ValueError(f"{reader.label} claims an impossible shape {reader.shape}.")
    if reader.dtype.itemsize == 0:
        raise ValueError(f"{reader.label} holds values of zero bytes (dtype {reader.dtype}).")


def _is_lazy_arraylike(source: Any) -> bool:
    """Sliceable without loading, like an ``h5py.Dataset``."""
    has = all(hasattr(source, a) for a in ("shape", "dtype", "__getitem__"))
    return has and len(source.shape) >= 1 and not hasattr(source, "to_numpy")


# --- xarray -------------------------------------------------------------------------------


def _is_xarray(source: Any) -> bool:
    return type(source).__module__.split(".")[0] == "xarray" and hasattr(source, "dims")


def _xarray_data(source: Any, key: str | None) -> Any:
    """The data of a ``DataArray``, or of the variable ``key`` of a ``Dataset``: a dask array
    keeps its chunks, and nothing is read here."""
    label = f"the xarray {type(source).__name__}"
    if hasattr(source, "data_vars"):
        names = [str(name) for name in source.data_vars]
        if key is None and len(names) == 1:
            key = names[0]
        if key not in names:
            raise _missing_key(label, key, names)
        source = source[key]
    elif key is not None:
        raise ValueError(
            f"key={key!r} names a variable of a Dataset, but {label} has one; drop key."
        )
    return source.data


# --- tables -------------------------------------------------------------------------------


def _is_dataframe(source: Any) -> bool:
    return hasattr(source, "columns") and hasattr(source, "dtypes")


def _read_table(
    src: _Location, fmt: str, *, header: bool | None = None, delimiter: str = ","
) -> Any:
    """A lazy dask DataFrame of a Parquet or CSV table (``header`` and ``delimiter``: CSV)."""
    import dask.dataframe as dd

    options = {} if src.local else {"storage_options": src.storage_options}
    _check_delimiter(delimiter)
    try:
        if fmt == "parquet":
            return dd.read_parquet(src.url, **options)
        if header is None:
            header = _has_header(src, delimiter)
        return dd.read_csv(src.url, header="infer" if header else None, sep=delimiter, **options)
    except (ValueError, OSError) as exc:
        raise ValueError(
            f"Could not read {src.text!r} as {fmt} ({exc}); it may be corrupt or truncated."
        ) from exc


def _check_delimiter(delimiter: str) -> None:
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in '\r\n"':
        raise ValueError(
            f"delimiter must be one character other than a quote or a line break, such as "
            f"',', ';' or '\\t'; got {delimiter!r}."
        )


def _has_header(src: _Location, delimiter: str = ",") -> bool:
    """False when the first line of a CSV is all numbers, except pandas' ``0,1,2...`` header."""
    with src.open_binary() as f:
        first = f.readline().decode("utf-8", errors="replace")
    fields = [field.strip().strip('"') for field in first.rstrip("\r\n").split(delimiter)]
    if fields == [str(i) for i in range(len(fields))]:
        return True
    return not all(_is_number(field) for field in fields)


def _is_number(text: Any) -> bool:
    try:
        float(text)
    except (TypeError, ValueError):
        return False
    return True


def _column_names(table: Any, columns: Sequence[str | int], label: str) -> list[Any]:
    """The names of ``columns``: names as they are, and ints that name no column as
    positions."""
    names = list(table.columns)
    picked, missing = [], []
    for column in columns:
        if not isinstance(column, bool) and column in names:
            picked.append(column)
        elif (
            isinstance(column, int | np.integer)
            and not isinstance(column, bool)
            and -len(names) <= column < len(names)
        ):
            picked.append(names[column])
        else:
            missing.append(column)
    if missing:
        raise KeyError(
            f"{label} has no column {missing}; its columns: {names} (an integer picks one by "
            f"position, from 0 to {len(names) - 1})."
        )
    return picked


def _from_table(
    table: Any, columns: Sequence[str | int] | None, chunks: int | str, label: str
) -> da.Array:
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    if columns is not None:
        table = table[_column_names(table, columns, label)]
    wrong = [c for c, t in table.dtypes.items() if not (is_numeric_dtype(t) or is_bool_dtype(t))]
    if wrong:
        raise ValueError(
            f"{label} has non-numeric columns {wrong}; a SOM needs numbers. Drop or encode "
            "them, or pick the numeric columns with columns=[...] (--columns on the command "
            "line)."
        )
    # One dtype for all columns; nullable and Arrow-backed numbers have no numpy dtype, so
    # they are read as float64, missing values as NaN.
    dtypes = [t if isinstance(t, np.dtype) else np.dtype("float64") for t in table.dtypes]
    common = np.result_type(*dtypes) if dtypes else np.dtype("float64")
    if any(t != common for t in table.dtypes):
        table = table.astype(common)
    if not hasattr(table, "to_dask_array"):
        return _from_numpy(table.to_numpy(), chunks)
    try:
        # Counting the rows reads the table once; the row chunks must be known.
        array = table.to_dask_array(lengths=True)
    except (ValueError, OSError) as exc:
        raise ValueError(
            f"Could not read {label} ({exc}); it may be corrupt or truncated."
        ) from exc
    return _rechunk_rows(array, chunks)
