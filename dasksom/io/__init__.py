"""Data in and maps out: sources and their readers, storage types, the zarr writer, dasksom's map
file and simpsom's ``.npy`` format, atomic writes.  No training logic.

Imports :mod:`dasksom.core` and :mod:`dasksom.backends` only.
"""

from dasksom.io.sources import (
    CHUNKS_PER_CORE,
    SUPPORTED_EXTENSIONS,
    TARGET_CHUNK_BYTES,
    as_dask_array,
    open_array,
    row_chunk_size,
)
from dasksom.io.storage import STORAGE_DTYPES, as_storage_dtype, first_row
from dasksom.io.zarr_store import to_zarr

__all__ = [
    "CHUNKS_PER_CORE",
    "STORAGE_DTYPES",
    "SUPPORTED_EXTENSIONS",
    "TARGET_CHUNK_BYTES",
    "as_dask_array",
    "as_storage_dtype",
    "first_row",
    "open_array",
    "row_chunk_size",
    "to_zarr",
]
