"""CUDA through CuPy: whether a device is there, its free memory, and row blocks sized for it.

CuPy and RMM are imported when a function needs them, never when this module is imported, so it
loads on machines without a GPU; there each function that needs one raises
:class:`GPUUnavailableError` saying what is missing."""

from __future__ import annotations

import importlib
import sys
from typing import Any

from dasksom.backends import arrays

CUPY_MISSING = (
    "CuPy is not installed: install the GPU extra, pip install 'dasksom[gpu]' "
    "(or the cupy-cudaXXx wheel that matches your CUDA)."
)


NO_DEVICE = (
    "No CUDA device is visible to CuPy: check that `nvidia-smi` lists a GPU and that "
    "CUDA_VISIBLE_DEVICES, if set, names it."
)


# One score block (rows x nodes) takes at most this share of the device's free memory, leaving
# room for the chunk itself, the offsets and argmax temporaries, and other workers on the GPU.
DEVICE_MEMORY_SHARE = 8


# Bounds on a device score block, in elements: at 2**28 (1 GiB in float32) one product already
# keeps the whole chip busy, and it is never smaller than the CPU's block.
DEVICE_BLOCK_ELEMENTS_MAX = 1 << 28
DEVICE_BLOCK_ELEMENTS_MIN = arrays.SCORE_BLOCK_ELEMENTS


# Row blocks are whole multiples of this many rows (when there are more), for aligned tiles.
ROW_ALIGNMENT = 256


class GPUUnavailableError(RuntimeError):
    """What a GPU path needs is missing: CuPy, a visible device, dask-cuda or RMM."""


def require_gpu() -> Any:
    """The ``cupy`` module, once a CUDA device is known to be visible.

    Returns
    -------
    module
        ``cupy``, imported.

    Raises
    ------
    GPUUnavailableError
        When CuPy is not installed, or no CUDA device is visible; the message says which and
        what to check.  A ``RuntimeError``.
    """
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as error:
        raise GPUUnavailableError(CUPY_MISSING) from error
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDARuntimeError, or a driver library that does not load
        raise GPUUnavailableError(f"{NO_DEVICE} ({error})") from error
    if count < 1:
        raise GPUUnavailableError(NO_DEVICE)
    return cupy


def device_block_rows(n_nodes: int, n_features: int, free_bytes: int, itemsize: int = 4) -> int:
    """Rows per BMU-search block on a GPU with ``free_bytes`` of free memory.

    One block's scores and rows (``rows x (n_nodes + n_features)`` values of ``itemsize``
    bytes) take at most ``1 / DEVICE_MEMORY_SHARE`` of the free memory, and the score block
    holds between :data:`DEVICE_BLOCK_ELEMENTS_MIN` and :data:`DEVICE_BLOCK_ELEMENTS_MAX`
    elements; above that floor the rows are a multiple of :data:`ROW_ALIGNMENT`.
    On a GPU this means a few large products per chunk instead of the CPU's thousands of small
    ones.

    Parameters
    ----------
    n_nodes : int
        Nodes of the map, the score block's columns.
    n_features : int
        Features of a row.
    free_bytes : int
        Free device memory, as :func:`free_device_bytes` counts it.
    itemsize : int, default=4
        Bytes per value once widened (4: float32, 8: float64).

    Returns
    -------
    int
        Rows per block, at least 1.

    Raises
    ------
    ValueError
        When ``n_nodes``, ``n_features`` or ``itemsize`` is below 1, or ``free_bytes`` is
        negative.
    """
    if min(n_nodes, n_features, itemsize) < 1 or free_bytes < 0:
        raise ValueError("n_nodes, n_features and itemsize must be positive, free_bytes >= 0.")
    rows = free_bytes // (DEVICE_MEMORY_SHARE * itemsize * (n_nodes + n_features))
    rows = min(rows, DEVICE_BLOCK_ELEMENTS_MAX // n_nodes)
    if rows > ROW_ALIGNMENT:
        rows -= rows % ROW_ALIGNMENT
    return max(rows, DEVICE_BLOCK_ELEMENTS_MIN // n_nodes, 1)


def free_device_bytes(cupy: Any) -> int:
    """Free memory of the current device, counting what CuPy's own pool or this process's RMM
    pool holds unused (the device reports pooled memory as taken).

    Parameters
    ----------
    cupy : module
        The ``cupy`` module (from :func:`require_gpu`).

    Returns
    -------
    int
        Bytes.
    """
    free, _total = cupy.cuda.runtime.memGetInfo()
    return int(free) + int(cupy.get_default_memory_pool().free_bytes()) + rmm_pool_unused_bytes()


def rmm_pool_unused_bytes() -> int:
    """Bytes of this process's RMM pool not handed out, where RMM tracks its allocations.

    Tracking is what dask-cuda's ``rmm_track_allocations`` sets up, and what
    :func:`dasksom.training.gpu.local_cuda_cluster` asks for.  RMM is not imported here: only a
    process that has imported it can hold a pool.

    Returns
    -------
    int
        0 without RMM, without a pool, or without tracking (then what the pool holds unused is
        unknown and counted as taken).
    """
    rmm = sys.modules.get("rmm")
    if rmm is None:
        return 0
    tracking = rmm.mr.get_current_device_resource()
    if not isinstance(tracking, rmm.mr.TrackingResourceAdaptor):
        return 0
    pool = tracking.get_upstream()
    if not isinstance(pool, rmm.mr.PoolMemoryResource):
        return 0
    return max(0, int(pool.pool_size()) - int(tracking.get_allocated_bytes()))
