"""GPU support: helpers with CuPy and dask-cuda absent (mocked), and, where CuPy and a GPU are
present, the same kernels, engine and clusters on CuPy chunks (skipped otherwise, with the reason).
"""

import importlib
import sys
import types

import dask.array as da
import numpy as np
import pytest
from distributed import Client, LocalCluster

from dasksom import SOM
from dasksom.backends import cuda
from dasksom.backends.arrays import SCORE_BLOCK_ELEMENTS
from dasksom.core import search
from dasksom.core.chunk_tasks import predict_chunk
from dasksom.core.metrics import METRICS
from dasksom.core.sums import partial_sums
from dasksom.io.storage import as_storage_dtype
from dasksom.training import gpu


def _gpu_missing() -> str | None:
    """Why the GPU tests cannot run here, or None when they can."""
    try:
        module = importlib.import_module("cupy")
    except ImportError:
        return "CuPy is not installed (pip install dasksom[gpu])"
    try:
        module.cuda.runtime.getDeviceCount()
    except module.cuda.runtime.CUDARuntimeError:
        return "no CUDA device is visible"
    return None


GPU_MISSING = _gpu_missing()
requires_gpu = pytest.mark.skipif(GPU_MISSING is not None, reason=GPU_MISSING or "")
cupy = None if GPU_MISSING else importlib.import_module("cupy")


def fake_cupy(devices: int = 1, free: int = 2**30) -> types.SimpleNamespace:
    """A stand-in ``cupy`` module whose arrays are NumPy arrays (for the CPU tests)."""
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: devices, memGetInfo=lambda: (free, 2 * free)
    )
    return types.SimpleNamespace(
        asarray=np.asarray,
        empty=np.empty,
        get_default_memory_pool=lambda: types.SimpleNamespace(free_bytes=lambda: 0),
        cuda=types.SimpleNamespace(
            runtime=runtime, Device=lambda: types.SimpleNamespace(synchronize=lambda: None)
        ),
    )


@pytest.fixture
def no_cupy(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", None)


@pytest.fixture
def one_fake_gpu(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy())
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


# --- without CuPy, dask-cuda or RMM ---------------------------------------------------------


def test_require_gpu_without_cupy_says_how_to_install(no_cupy):
    with pytest.raises(RuntimeError, match=r"CuPy is not installed.*pip install 'dasksom\[gpu\]'"):
        cuda.require_gpu()


@pytest.mark.parametrize("count", [0, RuntimeError("cudaErrorNoDevice")])
def test_require_gpu_without_a_device_names_what_to_check(monkeypatch, count):
    module = fake_cupy()
    if isinstance(count, Exception):

        def broken():
            raise count

        module.cuda.runtime.getDeviceCount = broken
    else:
        module.cuda.runtime.getDeviceCount = lambda: count
    monkeypatch.setitem(sys.modules, "cupy", module)
    with pytest.raises(RuntimeError, match="nvidia-smi.*CUDA_VISIBLE_DEVICES"):
        cuda.require_gpu()


def test_to_device_without_cupy_raises_the_clear_error(no_cupy):
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        gpu.to_device(da.zeros((10, 3), chunks=5))


def test_local_cuda_cluster_without_cupy_raises_before_starting_anything(no_cupy):
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        with gpu.local_cuda_cluster():
            pass


def test_local_cuda_cluster_without_dask_cuda(monkeypatch, one_fake_gpu):
    monkeypatch.setitem(sys.modules, "dask_cuda", None)
    with pytest.raises(RuntimeError, match="dask-cuda is not installed"):
        with gpu.local_cuda_cluster():
            pass


def test_warm_up_without_cupy_raises(no_cupy):
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        gpu.warm_up(4, 9, "euclidean")


# --- the helpers' logic, on a stand-in CuPy whose arrays are NumPy arrays --------------------


def test_to_device_moves_chunks_with_cupy_meta_and_stores_narrow(one_fake_gpu):
    data = da.from_array(np.arange(40, dtype=np.float64).reshape(10, 4), chunks=(5, 4))
    moved = gpu.to_device(data, storage_dtype=np.uint8)
    assert moved.dtype == np.uint8 and moved.chunks == data.chunks
    assert isinstance(moved._meta, np.ndarray)  # the stand-in's empty()
    np.testing.assert_array_equal(moved.compute(), np.arange(40).reshape(10, 4))
    assert gpu.to_device(data).dtype == np.float64


def test_to_device_refuses_a_storage_type_that_would_change_a_value(one_fake_gpu):
    data = da.from_array(np.linspace(0, 1, 40).reshape(10, 4), chunks=(5, 4))
    moved = gpu.to_device(data, storage_dtype=np.uint8)
    with pytest.raises(ValueError, match=r"Row (0 holds 0\.0256|5 holds 0\.5128).*uint8 cannot"):
        moved.compute()


def test_to_device_refuses_what_is_not_a_dask_array(one_fake_gpu):
    with pytest.raises(TypeError, match="dask array"):
        gpu.to_device(np.zeros((3, 2)))


@pytest.mark.parametrize(
    ("listed", "n_gpus", "expected"),
    [(None, None, ["0", "1", "2"]), (None, 2, ["0", "1"]), ("3, 1", None, ["3", "1"])],
)
def test_visible_devices_honour_the_environment(monkeypatch, listed, n_gpus, expected):
    if listed is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
    assert gpu.visible_devices(n_gpus, 3) == expected


def test_visible_devices_refuse_a_gpu_named_twice_and_too_many(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,0")
    with pytest.raises(ValueError, match="LocalCluster"):
        gpu.visible_devices(None, 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(ValueError, match="n_gpus=2"):
        gpu.visible_devices(2, 1)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    with pytest.raises(RuntimeError, match="No CUDA device"):
        gpu.visible_devices(None, 1)


def test_rmm_pool_auto_degrades_without_rmm_and_explicit_raises(monkeypatch):
    monkeypatch.setitem(sys.modules, "rmm", None)
    with pytest.warns(UserWarning, match="without a memory pool"):
        assert gpu.rmm_pool("auto") is None
    assert gpu.rmm_pool(None) is None
    with pytest.raises(RuntimeError, match="needs RMM"):
        gpu.rmm_pool("10GB")
    monkeypatch.setitem(sys.modules, "rmm", types.ModuleType("rmm"))
    assert gpu.rmm_pool("auto") == gpu.AUTO_POOL_FRACTION
    assert gpu.rmm_pool("10GB") == "10GB"


class FakeCUDACluster(LocalCluster):
    """Records what ``LocalCUDACluster`` was asked for; runs one in-process worker."""

    asked: dict = {}

    def __init__(self, **options):
        FakeCUDACluster.asked = options
        super().__init__(n_workers=1, processes=False, dashboard_address=None)


def test_local_cuda_cluster_asks_dask_cuda_for_one_worker_per_gpu(monkeypatch, one_fake_gpu):
    monkeypatch.setitem(sys.modules, "cupy", fake_cupy(devices=2))
    monkeypatch.setitem(
        sys.modules, "dask_cuda", types.SimpleNamespace(LocalCUDACluster=FakeCUDACluster)
    )
    monkeypatch.setitem(sys.modules, "rmm", types.ModuleType("rmm"))
    with gpu.local_cuda_cluster(protocol="tcp") as client:
        assert client.submit(sum, [1, 2]).result() == 3
    assert client.status == "closed"
    asked = FakeCUDACluster.asked
    assert asked["CUDA_VISIBLE_DEVICES"] == "0,1" and asked["n_workers"] == 2
    assert asked["host"] == "127.0.0.1" and asked["dashboard_address"].startswith("127.0.0.1:")
    assert asked["rmm_pool_size"] == gpu.AUTO_POOL_FRACTION and asked["protocol"] == "tcp"
    assert asked["rmm_allocator_external_lib_list"] == ["cupy"]
    assert asked["rmm_track_allocations"]  # so the pool's unused part counts as free


@pytest.mark.parametrize(
    ("n_nodes", "n_features", "free", "expected"),
    [
        (2500, 784, 100 * 2**30, 2**28 // 2500 - 2**28 // 2500 % 256),  # capped by the maximum
        (2500, 784, 2**30, 2**30 // (8 * 4 * 3284) // 256 * 256),  # 1/8 of free memory
        (2500, 784, 0, SCORE_BLOCK_ELEMENTS // 2500),  # never under the CPU's block
        (2**28, 50, 0, 1),  # a map too large for one row per block still gets one row
    ],
)
def test_device_block_rows(n_nodes, n_features, free, expected):
    rows = cuda.device_block_rows(n_nodes, n_features, free)
    assert rows == expected
    assert rows * n_nodes <= max(cuda.DEVICE_BLOCK_ELEMENTS_MAX, n_nodes)


def test_device_block_rows_are_aligned_and_grow_with_memory():
    sizes = [cuda.device_block_rows(1024, 50, free) for free in (2**30, 2**32, 2**34)]
    assert sizes == sorted(sizes) and all(size % cuda.ROW_ALIGNMENT == 0 for size in sizes)
    narrow, wide = (cuda.device_block_rows(1024, 50, 2**32, itemsize=size) for size in (2, 8))
    assert narrow > wide
    with pytest.raises(ValueError, match="positive"):
        cuda.device_block_rows(0, 50, 2**30)


def test_block_rows_hook_keeps_numpy_and_manhattan_rules():
    for name, metric in METRICS.items():
        assert search.block_rows(np, metric, 2500, 784) == metric.block_rows(2500, 784), name
    device = fake_cupy(free=2**34)
    assert search.block_rows(device, METRICS["euclidean"], 2500, 784) == cuda.device_block_rows(
        2500, 784, 2**34
    )
    assert search.block_rows(device, METRICS["manhattan"], 2500, 784) == METRICS[
        "manhattan"
    ].block_rows(2500, 784)


def test_device_blocks_of_float64_take_the_memory_share_of_float32_blocks():
    device = fake_cupy(free=2**32)
    single = search.block_rows(device, METRICS["euclidean"], 2500, 784)
    double = search.block_rows(device, METRICS["euclidean"], 2500, 784, itemsize=8)
    assert double == cuda.device_block_rows(2500, 784, 2**32, itemsize=8)
    assert single // 2 - cuda.ROW_ALIGNMENT <= double <= single // 2


def test_warm_up_runs_the_training_kernels_and_times_them(one_fake_gpu):
    seconds = gpu.warm_up(6, 12, "cosine", dtype=np.float16)
    assert 0 < seconds < 60


# --- on a GPU ------------------------------------------------------------------------------


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    return rng.normal(size=(500, 8)), rng.normal(size=(30, 8))


@requires_gpu
@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_partial_sums_on_the_gpu_equal_the_cpus(problem, metric):
    x, w = problem
    on_gpu = partial_sums(cupy.asarray(x), w, metric).to_host()
    on_cpu = partial_sums(x, w, metric)
    np.testing.assert_allclose(on_gpu.sums, on_cpu.sums, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(on_gpu.counts, on_cpu.counts)


@requires_gpu
def test_predict_chunk_stays_on_the_gpu(problem):
    x, w = problem
    labels = predict_chunk(cupy.asarray(x), w, "euclidean")
    assert isinstance(labels, cupy.ndarray)
    np.testing.assert_array_equal(labels.get(), predict_chunk(x, w, "euclidean"))


@requires_gpu
def test_nonfinite_values_are_found_on_the_gpu(problem):
    x, w = problem
    x = x.copy()
    x[3, 4] = np.nan
    found = partial_sums(cupy.asarray(x), w, "euclidean", row_offset=10).nonfinite
    assert (found.count, found.first) == (1, (13, 4))


@requires_gpu
def test_training_on_cupy_chunks_gives_the_cpu_map(problem):
    x, _ = problem
    on_gpu_data = da.from_array(x, chunks=(100, 8)).map_blocks(cupy.asarray)
    gpu_map = SOM(5, 6, init="pca", epochs=4).fit(on_gpu_data)
    cpu_map = SOM(5, 6, init="pca", epochs=4, chunks=100).fit(x)
    np.testing.assert_allclose(gpu_map.weights_, cpu_map.weights_, rtol=1e-8, atol=1e-10)
    assert gpu_map.quantization_error(on_gpu_data) == pytest.approx(cpu_map.quantization_error(x))


def float32_problem() -> np.ndarray:
    """Four well-separated float32 clusters, so that float rounding cannot flip a BMU."""
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=10, size=(4, 16))
    return (centres[rng.integers(0, 4, 2000)] + rng.normal(size=(2000, 16))).astype(np.float32)


def fit_map(data) -> np.ndarray:
    return SOM(6, 6, init="pca", epochs=3, random_state=0).fit(data).weights_


def assert_float32_close(found: np.ndarray, expected: np.ndarray) -> None:
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-4)


@requires_gpu
def test_float32_map_on_the_gpu_equals_the_cpu_map():
    x = float32_problem()
    on_gpu = fit_map(gpu.to_device(da.from_array(x, chunks=(500, 16))))
    assert_float32_close(on_gpu, fit_map(da.from_array(x, chunks=(500, 16))))


@requires_gpu
def test_warm_up_on_the_gpu():
    assert gpu.warm_up(16, 36, "euclidean") > 0


@requires_gpu
def test_a_local_cuda_cluster_trains_the_cpu_map():
    pytest.importorskip("dask_cuda", reason="dask-cuda is not installed")
    x = float32_problem()
    with gpu.local_cuda_cluster(n_gpus=1, rmm_pool_size=None) as client:
        assert client.run(gpu.warm_up, 16, 36, "euclidean")
        on_cluster = fit_map(gpu.to_device(da.from_array(x, chunks=(500, 16))))
    assert_float32_close(on_cluster, fit_map(da.from_array(x, chunks=(500, 16))))


@requires_gpu
def test_two_workers_on_one_gpu_give_the_map_of_one(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    x = float32_problem()
    maps = []
    for n_workers in (1, 2):
        options = {"n_workers": n_workers, "threads_per_worker": 1, "dashboard_address": None}
        with LocalCluster(host="127.0.0.1", **options) as cluster, Client(cluster):
            maps.append(fit_map(gpu.to_device(da.from_array(x, chunks=(250, 16)))))
    assert_float32_close(maps[1], maps[0])


@requires_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_search_is_numpys_argmax_with_ties_to_the_lowest_column(dtype):
    rng = np.random.default_rng(2)
    scores = rng.integers(0, 4, size=(3000, 700)).astype(dtype)  # many ties
    offsets = rng.integers(0, 2, size=700).astype(dtype)
    expected = (scores - offsets).argmax(axis=1)
    found = search.best_columns(cupy.asarray(scores), cupy.asarray(offsets))
    np.testing.assert_array_equal(found.get(), expected)
    plain = search.best_columns(cupy.asarray(scores[:, :3]))
    np.testing.assert_array_equal(plain.get(), scores[:, :3].argmax(axis=1))


@requires_gpu
@pytest.mark.parametrize("precision", ["exact", "tf32", "bfloat16", "float16"])
def test_device_products_round_as_the_cpu_emulation(precision):
    from dasksom.core.metrics import PreparedWeights

    rng = np.random.default_rng(3)
    x, w = rng.random((1000, 40)).astype(np.float32), rng.random((50, 40))
    on_cpu = PreparedWeights.build(w, "euclidean", np, np.float32, precision).product(x)
    prepared = PreparedWeights.build(w, "euclidean", cupy, np.float32, precision)
    on_gpu = prepared.product(cupy.asarray(x)).get()
    assert on_gpu.dtype == np.float32
    scale = np.abs(x) @ np.abs(w.T)
    # tf32 operands are rounded by the tensor cores (maybe truncated), the others by dasksom.
    slack = 2 * 2.0**-10 if precision == "tf32" else 1e-5
    assert np.all(np.abs(on_gpu - on_cpu) <= slack * scale)


@requires_gpu
def test_sums_on_the_gpu_are_deterministic(problem):
    x, w = problem
    chunk = cupy.asarray(x.astype(np.float32))
    first, second = (partial_sums(chunk, w, "euclidean").to_host() for _ in range(2))
    np.testing.assert_array_equal(first.sums, second.sums)


@requires_gpu
@pytest.mark.parametrize("precision", ["tf32", "bfloat16", "float16"])
def test_each_precision_on_the_gpu_trains_as_well_as_exact(precision):
    x = float32_problem()
    data = gpu.to_device(da.from_array(x, chunks=(500, 16)))

    def error(chosen: str) -> float:
        som = SOM(6, 6, init="pca", epochs=3, random_state=0, precision=chosen).fit(data)
        return som.quality(x)["quantization_error"]

    assert error(precision) <= 1.01 * error("exact")


@requires_gpu
def test_narrow_storage_on_the_gpu_trains_the_float32_map():
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, size=(2000, 16)).astype(np.uint8)
    data = da.from_array(pixels, chunks=(500, 16))
    narrow = fit_map(gpu.to_device(data, storage_dtype=np.uint8))
    assert_float32_close(narrow, fit_map(data.astype(np.float32)))


@requires_gpu
def test_float16_storage_on_the_gpu_trains_the_cpus_float16_map():
    data = da.from_array(float32_problem(), chunks=(500, 16))
    on_gpu = fit_map(gpu.to_device(data, storage_dtype=np.float16))
    assert_float32_close(on_gpu, fit_map(as_storage_dtype(data, np.float16)))


@requires_gpu
@pytest.mark.parametrize("kind", ["gaussian", "bubble", "mexican_hat"])
@pytest.mark.parametrize("topology", ["square", "hexagonal"])
@pytest.mark.parametrize("pbc", [False, True])
def test_large_map_smoothing_on_the_gpu_equals_the_cpus(kind, topology, pbc):
    from dasksom.core.lattice import Lattice
    from dasksom.core.neighborhood import structured_smooth

    lattice = Lattice(40, 30, topology, pbc)
    values = np.random.default_rng(5).random((lattice.n_nodes, 7))
    on_gpu = structured_smooth(lattice, cupy.asarray(values), 4.0, kind)
    assert isinstance(on_gpu, cupy.ndarray)
    expected = structured_smooth(lattice, values, 4.0, kind)
    np.testing.assert_allclose(on_gpu.get(), expected, rtol=1e-10, atol=1e-10)


@requires_gpu
def test_a_large_map_on_gpu_chunks_smooths_on_the_gpu_and_gives_the_cpu_map():
    from dasksom.training import engine

    x = float32_problem()
    data = gpu.to_device(da.from_array(x, chunks=(500, 16)))
    assert engine._smoothing_module(data, SOM(40, 30)._validate_params()) is cupy
    on_gpu = SOM(40, 30, init="pca", epochs=2, random_state=0).fit(data).weights_
    on_cpu = SOM(40, 30, init="pca", epochs=2, random_state=0).fit(x).weights_
    assert_float32_close(on_gpu, on_cpu)


@requires_gpu
def test_bfloat16_operands_on_the_gpu_are_the_cpus_bit_patterns():
    from dasksom.core.precision import PRECISIONS, bfloat16_bits

    values = np.random.default_rng(6).normal(scale=100, size=(300, 7)).astype(np.float32)
    on_gpu = PRECISIONS["bfloat16"].operand(cupy.asarray(values))
    assert on_gpu.dtype == np.uint16
    np.testing.assert_array_equal(on_gpu.get(), bfloat16_bits(values))


@requires_gpu
def test_a_fit_on_the_gpu_reports_its_warm_up_apart_from_epochs():
    som = SOM(6, 6, epochs=1, device="gpu", random_state=0).fit(float32_problem())
    assert som.warm_up_seconds_ > 0
    assert gpu.device_memory_budget() > 0
