"""Data sources: everything a user may hand to ``fit`` becomes a row-chunked dask array.

Each chunk holds whole rows (one chunk along the feature axis), so a chunk can find its
best-matching units on its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import dask.array as da
import numpy as np

# Aim for chunks of this many bytes: big enough to keep BLAS busy, small enough to stream.
TARGET_CHUNK_BYTES = 128 * 2**20
# In-memory data is cut into at least this many chunks per core, so every core has work.
CHUNKS_PER_CORE = 2


def row_chunk_size(
    n_rows: int, n_features: int, itemsize: int, target_bytes: int = TARGET_CHUNK_BYTES
) -> int:
    """Rows per chunk: about ``target_bytes`` per chunk, and at least two chunks per core."""
    by_bytes = max(1, target_bytes // max(1, n_features * itemsize))
    cores = os.cpu_count() or 1
    by_cores = -(-n_rows // (CHUNKS_PER_CORE * cores))
    return int(max(1, min(by_bytes, by_cores)))


def as_dask_array(source, chunks: int | str = "auto") -> da.Array:
    """Wrap ``source`` as a dask array chunked by rows.

    Parameters
    ----------
    source : numpy array, dask array, zarr array, or path to a zarr array
    chunks : int or "auto"
        Rows per chunk for in-memory data, and the new row chunking of a dask array when given
        as an int.  ``"auto"`` keeps a dask or zarr array's row chunks and picks
        :func:`row_chunk_size` for numpy data.

    Returns
    -------
    dask.array.Array whose chunks span every column
    """
    if isinstance(source, str | os.PathLike):
        array = _open_path(Path(source))
    elif isinstance(source, da.Array):
        array = source
    elif _is_zarr_array(source):
        array = da.from_zarr(source)
    else:
        data = source if hasattr(source, "__array_function__") else np.asarray(source)
        rows = chunks
        if rows == "auto":
            n_features = int(np.prod(data.shape[1:])) if data.ndim > 1 else 1
            rows = row_chunk_size(data.shape[0], n_features, data.dtype.itemsize)
        array = da.from_array(data, chunks=(rows,) + data.shape[1:])
    if array.ndim == 2:
        row_chunks = array.chunks[0] if chunks == "auto" else int(chunks)
        if len(array.chunks[1]) > 1 or chunks != "auto":
            array = array.rechunk({0: row_chunks, 1: -1})
    return array


def _is_zarr_array(source) -> bool:
    return type(source).__module__.startswith("zarr") and hasattr(source, "chunks")


def _open_path(path: Path) -> da.Array:
    if not path.exists():
        raise FileNotFoundError(
            f"No data at {str(path)!r}: check the path, or pass a numpy, dask or zarr array."
        )
    return da.from_zarr(str(path))
