"""Training on GPUs: CuPy chunks, a dask-cuda cluster, device-sized row blocks, kernel warm-up.

The chunk kernels (:mod:`dasksom.kernels`) compute with the chunk's array module, so a dask array
whose chunks are CuPy arrays trains on the GPU with no other change; this module gets data there
(:func:`to_device`), starts one worker per GPU (:func:`local_cuda_cluster`), sizes the BMU
search's row blocks for the device (:func:`device_block_rows`, :func:`block_rows`) and compiles
CuPy's kernels ahead of the first epoch (:func:`warm_up`).

CuPy, dask-cuda and RMM are imported when a function needs them, never when this module is
imported, so it loads on machines without a GPU; there each function that needs one raises a
``RuntimeError`` saying what is missing.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from . import kernels

CUPY_MISSING = (
    "CuPy is not installed: install the GPU extra, pip install 'dasksom[gpu]' "
    "(or the cupy-cudaXXx wheel that matches your CUDA)."
)
NO_DEVICE = (
    "No CUDA device is visible to CuPy: check that `nvidia-smi` lists a GPU and that "
    "CUDA_VISIBLE_DEVICES, if set, names it."
)
DASK_CUDA_MISSING = "dask-cuda is not installed: pip install 'dasksom[gpu]'."

# One score block (rows x nodes) takes at most this share of the device's free memory, leaving
# room for the chunk itself, the offsets and argmax temporaries, and other workers on the GPU.
DEVICE_MEMORY_SHARE = 8
# Bounds on a device score block, in elements: at 2**28 (1 GiB in float32) one product already
# keeps the whole chip busy, and it is never smaller than the CPU's block.
DEVICE_BLOCK_ELEMENTS_MAX = 1 << 28
DEVICE_BLOCK_ELEMENTS_MIN = kernels.SCORE_BLOCK_ELEMENTS
# Row blocks are whole multiples of this many rows (when there are more), for aligned tiles.
ROW_ALIGNMENT = 256
# "auto" RMM pool: this fraction of the device's memory to start, shared by its workers.
AUTO_POOL_FRACTION = 0.5
# Threads that search one row of scores in the fused kernel (a power of two).
SEARCH_THREADS = 256

# The BMU search's last step, fused: one thread block per row subtracts the offsets while it
# reads the scores and keeps the best column, so the scores are read once and never rewritten.
# Ties go to the lowest column, as numpy's argmax; ``columns`` holds ``n_cols`` for "none yet".
BEST_COLUMNS_SOURCE = r"""
template <typename T>
__global__ void best_columns(const T* scores, const T* offsets, const long long n_cols,
                             long long* out) {
    __shared__ T values[SEARCH_THREADS];
    __shared__ long long columns[SEARCH_THREADS];
    const T* line = scores + blockIdx.x * n_cols;
    T best = 0;
    long long best_column = n_cols;
    for (long long j = threadIdx.x; j < n_cols; j += SEARCH_THREADS) {
        const T value = line[j] - offsets[j];
        if (best_column == n_cols || value > best) {
            best = value;
            best_column = j;
        }
    }
    values[threadIdx.x] = best;
    columns[threadIdx.x] = best_column;
    __syncthreads();
    for (int stride = SEARCH_THREADS / 2; stride > 0; stride /= 2) {
        if (threadIdx.x < stride) {
            const T other = values[threadIdx.x + stride];
            const long long other_column = columns[threadIdx.x + stride];
            const long long mine = columns[threadIdx.x];
            if (other_column != n_cols
                && (mine == n_cols || other > values[threadIdx.x]
                    || (other == values[threadIdx.x] && other_column < mine))) {
                values[threadIdx.x] = other;
                columns[threadIdx.x] = other_column;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) {
        out[blockIdx.x] = columns[0];
    }
}
"""


class GPUUnavailableError(RuntimeError):
    """What a GPU path needs is missing: CuPy, a visible device, dask-cuda or RMM."""


def require_gpu() -> Any:
    """The ``cupy`` module, once a CUDA device is known to be visible.

    Raises
    ------
    RuntimeError
        When CuPy is not installed, or no CUDA device is visible; the message says which and
        what to check.
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


def to_device(data: Any, storage_dtype: Any = None) -> Any:
    """``data`` with every chunk moved to the GPU as a CuPy array.

    Parameters
    ----------
    data : dask.array.Array
        Rows in chunks, NumPy or CuPy.
    storage_dtype : numpy dtype, optional
        Store the chunks in this type in GPU memory (``uint8`` pixels, ``float16``), cast on the
        host before the copy, so that fewer bytes move and stay on the device.  The kernels
        widen each chunk to its compute type (float32) when they use it.  The cast is checked
        (:func:`dasksom.io.as_storage_dtype`): a value the type cannot hold (float16 beyond
        65504, a fraction or out-of-range number for an integer type) is an error, not a silent
        change.

    Returns
    -------
    dask.array.Array
        Lazy, like ``data``; its ``meta`` is a CuPy array, so dask knows where the chunks live.

    Raises
    ------
    RuntimeError
        Without CuPy or a visible GPU (see :func:`require_gpu`).
    """
    import dask.array as da

    from .io import as_storage_dtype

    cupy = require_gpu()
    if not isinstance(data, da.Array):
        raise TypeError(f"to_device takes a dask array, not {type(data).__name__}.")
    if storage_dtype is not None:
        data = as_storage_dtype(data, storage_dtype)
    meta = cupy.empty((0,) * data.ndim, dtype=data.dtype)
    return data.map_blocks(cupy.asarray, dtype=data.dtype, meta=meta)


def visible_devices(n_gpus: int | None, device_count: int) -> list[str]:
    """The GPUs the workers use: ``CUDA_VISIBLE_DEVICES`` if set, else ``0..device_count-1``.

    ``n_gpus`` takes the first ``n_gpus`` of them.  dask-cuda starts one worker per distinct
    device, so a device named twice is refused here with what to do instead.
    """
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is None:
        devices = [str(index) for index in range(device_count)]
    else:
        devices = [part.strip() for part in listed.split(",") if part.strip()]
    if len(set(devices)) != len(devices):
        raise ValueError(
            f"CUDA_VISIBLE_DEVICES={listed!r} names a GPU twice; dask-cuda starts one worker per "
            "GPU. For several workers on one GPU use distributed.LocalCluster(n_workers=k) with "
            "CUDA_VISIBLE_DEVICES set to that GPU."
        )
    if not devices:
        raise GPUUnavailableError(NO_DEVICE)
    if n_gpus is not None:
        if not 1 <= n_gpus <= len(devices):
            raise ValueError(f"n_gpus={n_gpus}, but {len(devices)} GPU(s) are visible.")
        devices = devices[:n_gpus]
    return devices


def rmm_pool(rmm_pool_size: str | float | int | None) -> str | float | int | None:
    """The ``rmm_pool_size`` to give dask-cuda; ``"auto"`` is a pool when RMM is installed.

    ``"auto"`` starts each worker with :data:`AUTO_POOL_FRACTION` of its GPU's memory (the pool
    may grow), or no pool, with a warning, where RMM is absent.  An explicit size without RMM
    raises.
    """
    if rmm_pool_size is None:
        return None
    try:
        importlib.import_module("rmm")
    except ImportError as error:
        if rmm_pool_size == "auto":
            warnings.warn(
                "RMM is not installed: the workers run without a memory pool.", stacklevel=2
            )
            return None
        raise GPUUnavailableError(
            f"rmm_pool_size={rmm_pool_size!r} needs RMM (pip install rmm-cu12 or rmm-cu13); "
            "pass rmm_pool_size=None to run without a pool."
        ) from error
    return AUTO_POOL_FRACTION if rmm_pool_size == "auto" else rmm_pool_size


@contextmanager
def local_cuda_cluster(
    n_gpus: int | None = None, rmm_pool_size: str | float | int | None = "auto", **kwargs: Any
) -> Iterator[Any]:
    """A ``dask_cuda.LocalCUDACluster`` on this machine, and a ``distributed.Client`` to it.

    One single-threaded worker per GPU named by ``CUDA_VISIBLE_DEVICES`` (all GPUs if unset;
    the first ``n_gpus`` of them if given), each with an RMM memory pool that CuPy allocates
    from (``rmm_pool_size``: ``"auto"``, bytes, ``"40GB"``, a fraction, or None), listening on
    127.0.0.1 with its dashboard on loopback.  ``kwargs`` go to ``LocalCUDACluster`` and win.

    Yields
    ------
    distributed.Client
        Also the default client inside the ``with`` block, so ``SOM.fit`` computes there.

    Raises
    ------
    RuntimeError
        Without CuPy, a visible GPU or dask-cuda, or with a pool size but no RMM.
    """
    cupy = require_gpu()
    try:
        dask_cuda = importlib.import_module("dask_cuda")
    except ImportError as error:
        raise GPUUnavailableError(DASK_CUDA_MISSING) from error
    from distributed import Client

    devices = visible_devices(n_gpus, cupy.cuda.runtime.getDeviceCount())
    pool = rmm_pool(rmm_pool_size)
    options: dict[str, Any] = {
        "CUDA_VISIBLE_DEVICES": ",".join(devices),
        "n_workers": len(devices),
        "threads_per_worker": 1,
        "host": "127.0.0.1",
        "dashboard_address": "127.0.0.1:0",
        "rmm_pool_size": pool,
    }
    if pool is not None:
        # Tracking lets free_device_bytes count the pool's unused part as free.
        options["rmm_allocator_external_lib_list"] = ["cupy"]
        options["rmm_track_allocations"] = True
    options.update(kwargs)
    with dask_cuda.LocalCUDACluster(**options) as cluster, Client(cluster) as client:
        yield client


def device_block_rows(n_nodes: int, n_features: int, free_bytes: int, itemsize: int = 4) -> int:
    """Rows per BMU-search block on a GPU with ``free_bytes`` of free memory.

    One block's scores and rows (``rows x (n_nodes + n_features)`` values of ``itemsize``
    bytes) take at most ``1 / DEVICE_MEMORY_SHARE`` of the free memory, and the score block
    holds between :data:`DEVICE_BLOCK_ELEMENTS_MIN` and :data:`DEVICE_BLOCK_ELEMENTS_MAX`
    elements; above that floor the rows are a multiple of :data:`ROW_ALIGNMENT`.
    On a GPU this means a few large products per chunk instead of the CPU's thousands of small
    ones.
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
    pool holds unused (the device reports pooled memory as taken)."""
    free, _total = cupy.cuda.runtime.memGetInfo()
    return int(free) + int(cupy.get_default_memory_pool().free_bytes()) + rmm_pool_unused_bytes()


def rmm_pool_unused_bytes() -> int:
    """Bytes of this process's RMM pool not handed out, where RMM tracks its allocations (as
    dask-cuda's ``rmm_track_allocations`` sets up, and :func:`local_cuda_cluster` asks for);
    0 without RMM, without a pool, or without tracking (then what the pool holds unused is
    unknown and counted as taken)."""
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


def block_rows(
    xp: Any, metric: kernels.Metric, n_nodes: int, n_features: int, itemsize: int = 4
) -> int:
    """Rows per block of the BMU search for data in array module ``xp``, of ``itemsize``
    bytes per value once widened (4: float32, 8: float64).

    NumPy, and metrics with a block rule of their own (manhattan), keep ``metric.block_rows``;
    product metrics on CuPy get :func:`device_block_rows` for the current device.  This is the
    hook for :func:`dasksom.kernels.best_matching_units` and ``node_distances``.
    """
    if xp is np or type(metric).block_rows is not kernels.Metric.block_rows:
        return metric.block_rows(n_nodes, n_features)
    return device_block_rows(n_nodes, n_features, free_device_bytes(xp), itemsize)


def warm_up_workers(
    n_features: int,
    n_nodes: int,
    metric: str = "euclidean",
    dtype: Any = np.float32,
    precision: str = "exact",
) -> float:
    """:func:`warm_up` where the chunks are computed: on every worker of the default
    ``distributed`` client, or in this process; the longest time, in seconds."""
    found = _where_chunks_run(warm_up, n_features, n_nodes, metric, dtype, precision)
    return max(found, default=0.0)


def _where_chunks_run(function: Any, *args: Any) -> list[Any]:
    """``function(*args)`` on every worker of the default ``distributed`` client, or in this
    process without one: the results, one per process."""
    from .engine import distributed_client

    client = distributed_client()
    if client is None:
        return [function(*args)]
    return list(client.run(function, *args).values())


def _free_memory_of_this_device() -> tuple[str, int]:
    """``(PCI bus id, free bytes)`` of this process's current GPU."""
    cupy = require_gpu()
    return str(cupy.cuda.Device().pci_bus_id), free_device_bytes(cupy)


def device_memory_budget() -> int:
    """Free memory of the GPUs that compute the chunks, each device counted once: those of
    the default client's workers (several workers may share one GPU), or this process's."""
    by_device = dict(_where_chunks_run(_free_memory_of_this_device))
    return sum(by_device.values())


@functools.cache
def _best_columns_kernels(device_id: int) -> dict[str, Any]:
    """The fused search compiled for float32 and float64 scores, once per device."""
    cupy = require_gpu()
    module = cupy.RawModule(
        code=f"#define SEARCH_THREADS {SEARCH_THREADS}\n{BEST_COLUMNS_SOURCE}",
        name_expressions=("best_columns<float>", "best_columns<double>"),
    )
    return {
        "float32": module.get_function("best_columns<float>"),
        "float64": module.get_function("best_columns<double>"),
    }


def best_columns(scores: Any, offsets: Any = None) -> Any:
    """Column of the highest ``scores - offsets`` of every row of a CuPy ``(rows, M)`` array,
    ties to the lowest column: :func:`dasksom.kernels.best_columns` on a GPU, in one kernel."""
    cupy = require_gpu()
    scores = cupy.ascontiguousarray(scores)
    n_rows, n_cols = scores.shape
    out = cupy.empty(n_rows, dtype=cupy.int64)
    if n_rows == 0:
        return out
    if offsets is None:
        offsets = cupy.zeros(n_cols, dtype=scores.dtype)
    offsets = cupy.ascontiguousarray(offsets, dtype=scores.dtype)
    kernel = _best_columns_kernels(cupy.cuda.Device().id)[scores.dtype.name]
    kernel((n_rows,), (SEARCH_THREADS,), (scores, offsets, np.int64(n_cols), out))
    return out


def warm_up(
    n_features: int,
    n_nodes: int,
    metric: str = "euclidean",
    dtype: Any = np.float32,
    precision: str = "exact",
) -> float:
    """Compile and cache, in this process, the CuPy kernels that training runs; seconds taken.

    Runs one chunk's partial sums (finite check, widening to the compute type, the product in
    ``precision``, the fused search, sums, counts, distances) and a prediction on a few random
    rows of ``dtype`` against ``n_nodes`` random weights, so that the first epoch does not pay
    for compilation.  Report the time apart from epoch times.  On a cluster, run it on every
    worker (``client.run(warm_up, ...)``, or :func:`warm_up_workers`).
    """
    cupy = require_gpu()
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    rows = rng.random((ROW_ALIGNMENT, n_features)) * 100
    x = cupy.asarray(rows.astype(np.dtype(dtype)))
    weights = rng.random((n_nodes, n_features))
    kernels.partial_sums(x, weights, metric, precision=precision).to_host()
    kernels.to_host(kernels.predict_chunk(x, weights, metric))
    cupy.cuda.Device().synchronize()
    return time.perf_counter() - start
