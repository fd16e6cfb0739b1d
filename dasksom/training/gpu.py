"""Training on GPUs: CuPy chunks, a dask-cuda cluster, the GPUs' free memory, kernel warm-up.

The chunk kernels (:mod:`dasksom.core`) compute with the chunk's array module, so a dask array
whose chunks are CuPy arrays trains on the GPU with no other change; this module gets data there
(:func:`to_device`), starts one worker per GPU (:func:`local_cuda_cluster`, with
:func:`visible_devices` and :func:`rmm_pool`), measures the free memory of the GPUs that compute
the chunks (:func:`device_memory_budget`, for the choice to persist) and compiles CuPy's kernels
ahead of the first epoch (:func:`warm_up`, :func:`warm_up_workers`).  Sizing the BMU search's row
blocks for a device is :func:`dasksom.backends.cuda.device_block_rows` and
:func:`dasksom.core.search.block_rows`.

CuPy, dask-cuda and RMM are imported when a function needs them, never when this module is
imported, so it loads on machines without a GPU; there each function that needs one raises
:class:`~dasksom.backends.cuda.GPUUnavailableError` (a ``RuntimeError``) saying what is missing.
"""

from __future__ import annotations

import importlib
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from dasksom.backends import arrays
from dasksom.backends.cuda import (
    NO_DEVICE,
    ROW_ALIGNMENT,
    GPUUnavailableError,
    free_device_bytes,
    require_gpu,
)
from dasksom.core import chunk_tasks, sums

DASK_CUDA_MISSING = "dask-cuda is not installed: pip install 'dasksom[gpu]'."

# "auto" RMM pool: this fraction of the device's memory to start, shared by its workers.
AUTO_POOL_FRACTION = 0.5


def to_device(data: Any, storage_dtype: Any = None) -> Any:
    """``data`` with every chunk moved to the GPU as a CuPy array.

    Parameters
    ----------
    data : dask.array.Array
        Rows in chunks, NumPy or CuPy.
    storage_dtype : numpy dtype or None, default=None
        Store the chunks in this type in GPU memory (``uint8`` pixels, ``float16``), cast on the
        host before the copy, so that fewer bytes move and stay on the device.  The kernels
        widen each chunk to its compute type (float32) when they use it.  The cast is checked
        (:func:`dasksom.io.storage.as_storage_dtype`): a value the type cannot hold (float16
        beyond 65504, a fraction or out-of-range number for an integer type) is an error, not a
        silent change.  None keeps the chunks' own type.

    Returns
    -------
    dask.array.Array
        Lazy, like ``data``; its ``meta`` is a CuPy array, so dask knows where the chunks live.

    Raises
    ------
    GPUUnavailableError
        Without CuPy or a visible GPU (see :func:`~dasksom.backends.cuda.require_gpu`).
    TypeError
        When ``data`` is not a dask array.
    ValueError
        When ``storage_dtype`` is not a real number type.
    """
    import dask.array as da

    from dasksom.io.storage import as_storage_dtype

    cupy = require_gpu()
    if not isinstance(data, da.Array):
        raise TypeError(f"to_device takes a dask array, not {type(data).__name__}.")
    if storage_dtype is not None:
        data = as_storage_dtype(data, storage_dtype)
    meta = cupy.empty((0,) * data.ndim, dtype=data.dtype)
    return data.map_blocks(cupy.asarray, dtype=data.dtype, meta=meta)


def visible_devices(n_gpus: int | None, device_count: int) -> list[str]:
    """The GPUs the workers use: ``CUDA_VISIBLE_DEVICES`` if set, else ``0..device_count-1``.

    dask-cuda starts one worker per distinct device, so a device named twice is refused here
    with what to do instead.

    Parameters
    ----------
    n_gpus : int or None
        Take the first ``n_gpus`` of them; None takes all.
    device_count : int
        How many devices CUDA sees, used when ``CUDA_VISIBLE_DEVICES`` is unset.

    Returns
    -------
    list of str
        The device names or indices, as ``CUDA_VISIBLE_DEVICES`` takes them.

    Raises
    ------
    ValueError
        When a device is named twice, or ``n_gpus`` is not between 1 and the devices visible.
    GPUUnavailableError
        When no device is visible.
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

    Parameters
    ----------
    rmm_pool_size : "auto", str, float, int or None
        ``"auto"`` starts each worker with :data:`AUTO_POOL_FRACTION` of its GPU's memory (the
        pool may grow), or no pool, with a warning, where RMM is absent.  A size (bytes,
        ``"40GB"``, a fraction) is passed on; None means no pool.

    Returns
    -------
    str, float, int or None

    Raises
    ------
    GPUUnavailableError
        When a size is given but RMM is not installed.
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

    One single-threaded worker per GPU, each with an RMM memory pool that CuPy allocates from,
    listening on 127.0.0.1 with its dashboard on loopback.

    Parameters
    ----------
    n_gpus : int or None, default=None
        Use the first ``n_gpus`` of the GPUs named by ``CUDA_VISIBLE_DEVICES`` (all GPUs if
        unset); None uses them all (see :func:`visible_devices`).
    rmm_pool_size : "auto", str, float, int or None, default="auto"
        Each worker's pool: ``"auto"``, bytes, ``"40GB"``, a fraction, or None (see
        :func:`rmm_pool`).
    **kwargs
        Go to ``LocalCUDACluster`` and win over the settings above.

    Yields
    ------
    distributed.Client
        Also the default client inside the ``with`` block, so ``SOM.fit`` computes there.

    Raises
    ------
    GPUUnavailableError
        Without CuPy, a visible GPU or dask-cuda, or with a pool size but no RMM.
    ValueError
        When ``CUDA_VISIBLE_DEVICES`` names a GPU twice, or ``n_gpus`` is out of range.
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


def warm_up_workers(
    n_features: int,
    n_nodes: int,
    metric: str = "euclidean",
    dtype: Any = np.float32,
    precision: str = "exact",
) -> float:
    """:func:`warm_up` where the chunks are computed: on every worker of the default
    ``distributed`` client, or in this process.

    Parameters
    ----------
    n_features : int
        Features of the data to train on.
    n_nodes : int
        Nodes of the map.
    metric : {"euclidean", "cosine", "manhattan"}, default="euclidean"
        The metric training uses.
    dtype : numpy dtype, default=numpy.float32
        The chunks' type on the device.
    precision : {"exact", "tf32", "bfloat16", "float16"}, default="exact"
        Rounding of the BMU search's product.

    Returns
    -------
    float
        The longest time a process took, in seconds.
    """
    found = _where_chunks_run(warm_up, n_features, n_nodes, metric, dtype, precision)
    return max(found, default=0.0)


def _where_chunks_run(function: Any, *args: Any) -> list[Any]:
    """``function(*args)`` on every worker of the default ``distributed`` client, or in this
    process without one: the results, one per process."""
    from dasksom.training.engine import distributed_client

    client = distributed_client()
    if client is None:
        return [function(*args)]
    return list(client.run(function, *args).values())


def _free_memory_of_this_device() -> tuple[str, int]:
    """``(PCI bus id, free bytes)`` of this process's current GPU."""
    cupy = require_gpu()
    return str(cupy.cuda.Device().pci_bus_id), free_device_bytes(cupy)


def device_memory_budget() -> int:
    """Free memory of the GPUs that compute the chunks, each device counted once.

    Those are the GPUs of the default client's workers (several workers may share one GPU), or
    this process's without a client.

    Returns
    -------
    int
        Bytes, as :func:`~dasksom.backends.cuda.free_device_bytes` counts them.

    Raises
    ------
    GPUUnavailableError
        Where a process has no CuPy or no visible GPU.
    """
    by_device = dict(_where_chunks_run(_free_memory_of_this_device))
    return sum(by_device.values())


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

    Parameters
    ----------
    n_features : int
        Features of the data to train on.
    n_nodes : int
        Nodes of the map.
    metric : {"euclidean", "cosine", "manhattan"}, default="euclidean"
        The metric training uses.
    dtype : numpy dtype, default=numpy.float32
        The chunks' type on the device (a narrow storage type compiles its widening).
    precision : {"exact", "tf32", "bfloat16", "float16"}, default="exact"
        Rounding of the BMU search's product (see :mod:`dasksom.core.precision`).

    Returns
    -------
    float
        Seconds taken.

    Raises
    ------
    GPUUnavailableError
        Without CuPy or a visible GPU.
    """
    cupy = require_gpu()
    start = time.perf_counter()
    rng = np.random.default_rng(0)
    rows = rng.random((ROW_ALIGNMENT, n_features)) * 100
    x = cupy.asarray(rows.astype(np.dtype(dtype)))
    weights = rng.random((n_nodes, n_features))
    sums.partial_sums(x, weights, metric, precision=precision).to_host()
    arrays.to_host(chunk_tasks.predict_chunk(x, weights, metric))
    cupy.cuda.Device().synchronize()
    return time.perf_counter() - start
