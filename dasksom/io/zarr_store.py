"""Converting any source to a zarr store with row chunks, the fastest format to train from.

:func:`to_zarr` writes the array under a temporary name beside its path and renames it to the
path once complete, so the path never holds a half-written store.  The copy runs on this
machine with the threaded scheduler; on an error or an interrupt (Ctrl-C) the running writes are
waited for, the partial store is removed, any earlier store at the path is left as it was, and
the error is raised again.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import dask.array as da
import fsspec
import zarr
from fsspec.implementations.local import LocalFileSystem

from dasksom.io.atomic import atomic_directory
from dasksom.io.sources import _check_chunks, _rows_for, as_dask_array, open_array
from dasksom.io.storage import as_storage_dtype


def to_zarr(
    source: Any,
    path: str | os.PathLike,
    *,
    key: str | None = None,
    chunks: int | str = "auto",
    zarr_format: Literal[2, 3] = 3,
    overwrite: bool = False,
    storage_options: dict[str, Any] | None = None,
    dtype: Any = None,
) -> da.Array:
    """Copy any source into a zarr array chunked by whole rows, streaming chunk by chunk.

    Parameters
    ----------
    source : object
        Any source accepted by :func:`dasksom.io.sources.as_dask_array`.
    path : str or os.PathLike
        Local path or fsspec URL of the new store.
    key : str or None, default=None
        Name of the array inside the source container.
    chunks : int or str, default="auto"
        Rows per stored chunk (int), about that many bytes per chunk (``"64MiB"``), or
        ``"auto"`` for about :data:`dasksom.io.sources.TARGET_CHUNK_BYTES`.
    zarr_format : {3, 2}, default=3
        The zarr format version to write.
    overwrite : bool, default=False
        Replace an existing store at ``path``; otherwise refuse.
    storage_options : dict or None, default=None
        fsspec options, used for ``path`` and for a URL ``source``.
    dtype : numpy dtype or None, default=None
        Store the values in this type, e.g. ``"float16"`` for half of float32's bytes to read
        every epoch; checked as in :func:`dasksom.io.storage.as_storage_dtype` (a value it
        cannot hold is an error, and nothing is left at ``path``).  None: the source's type.

    Returns
    -------
    dask.array.Array
        The new store, opened with :func:`dasksom.io.sources.open_array`.

    Raises
    ------
    FileExistsError
        Something exists at ``path`` and ``overwrite`` is False.
    ValueError
        For a ``zarr_format`` other than 2 or 3, ``chunks`` that are not ``"auto"``, a row
        count of at least 1 or a size, or (when computed) a value ``dtype`` cannot hold.
    """
    if zarr_format not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, got {zarr_format!r}.")
    _check_chunks(chunks)
    options = storage_options or {}
    fs, target = _new_store_location(path, options, overwrite)
    array = as_dask_array(source, key=key, storage_options=storage_options)
    if dtype is not None:
        array = as_storage_dtype(array, dtype)
    rows = _rows_for(chunks, array.shape, array.dtype, per_core=0)
    _write_staged(array, rows, fs, target, zarr_format, options)
    return open_array(path, storage_options=storage_options)


def _new_store_location(
    path: str | os.PathLike, options: dict[str, Any], overwrite: bool
) -> tuple[Any, str]:
    """The filesystem and path of the store to write; refused when taken and not ``overwrite``."""
    fs, target = fsspec.core.url_to_fs(os.fspath(path), **options)
    target = target.rstrip("/")
    if fs.exists(target) and not overwrite:
        raise FileExistsError(
            f"{os.fspath(path)!r} already exists; pass overwrite=True to replace it."
        )
    return fs, target


def _write_staged(
    array: da.Array,
    rows: int,
    fs: Any,
    target: str,
    zarr_format: Literal[2, 3],
    options: dict[str, Any],
) -> None:
    """Write ``array`` as a zarr array of ``rows``-row chunks that becomes ``target`` once whole."""
    local = isinstance(fs, LocalFileSystem)
    with _staged_store(fs, target) as partial:
        stored = zarr.create_array(
            store=partial if local else fs.unstrip_protocol(partial),
            shape=array.shape,
            dtype=array.dtype,
            chunks=(rows,) + array.shape[1:],
            zarr_format=zarr_format,
            storage_options=None if local else options,
        )
        _store_all(array.rechunk({0: rows}), stored)


@contextlib.contextmanager
def _staged_store(fs: Any, target: str) -> Iterator[str]:
    """Yield a fresh folder beside ``target`` to write into; it becomes ``target`` on success.

    Local folders go through :func:`dasksom.io.atomic.atomic_directory`.  Other filesystems
    have no such rename: the folder is moved over ``target`` (replacing an old one only once
    the new one is complete) and removed on failure.
    """
    if isinstance(fs, LocalFileSystem):
        with atomic_directory(target) as tmp:
            yield str(tmp)
        return
    parent, name = posixpath.split(target)
    tag = uuid.uuid4().hex[:8]
    partial = posixpath.join(parent, f".{name}.partial-{tag}")
    try:
        yield partial
        if fs.exists(target):
            replaced = posixpath.join(parent, f".{name}.replaced-{tag}")
            fs.mv(target, replaced, recursive=True)
            fs.mv(partial, target, recursive=True)
            fs.rm(replaced, recursive=True)
        else:
            fs.mv(partial, target, recursive=True)
    except BaseException:
        if fs.exists(partial):
            fs.rm(partial, recursive=True)
        raise


def _store_all(array: da.Array, stored: zarr.Array) -> None:
    """Write ``array`` into ``stored`` with threads of our own, on this machine.

    Whatever ends the write (an error in a task, or Ctrl-C), the tasks already running are
    waited for and the queued ones cancelled before this returns, so no write lands in the
    store after the caller has removed it.
    """
    pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="dasksom-to-zarr")
    try:
        # One dask chunk per stored chunk: no two tasks write the same chunk, so no lock.
        # dask annotates targets as NumPy-like; it only needs __setitem__, which zarr has.
        da.store(array, stored, lock=False, scheduler="threads", pool=pool)  # type: ignore[arg-type]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
