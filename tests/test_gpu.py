"""The same kernels and engine on CuPy chunks (skipped where CuPy or a GPU is absent)."""

import dask.array as da
import numpy as np
import pytest

from dasksom import SOM
from dasksom.kernels import partial_sums, predict_chunk

cupy = pytest.importorskip("cupy", reason="CuPy is not installed (pip install dasksom[gpu])")
try:
    cupy.cuda.runtime.getDeviceCount()
except cupy.cuda.runtime.CUDARuntimeError:
    pytest.skip("no CUDA device is visible", allow_module_level=True)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    return rng.normal(size=(500, 8)), rng.normal(size=(30, 8))


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_partial_sums_on_the_gpu_equal_the_cpus(problem, metric):
    x, w = problem
    on_gpu = partial_sums(cupy.asarray(x), w, metric).to_host()
    on_cpu = partial_sums(x, w, metric)
    np.testing.assert_allclose(on_gpu.sums, on_cpu.sums, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(on_gpu.counts, on_cpu.counts)


def test_predict_chunk_stays_on_the_gpu(problem):
    x, w = problem
    labels = predict_chunk(cupy.asarray(x), w, "euclidean")
    assert isinstance(labels, cupy.ndarray)
    np.testing.assert_array_equal(labels.get(), predict_chunk(x, w, "euclidean"))


def test_nonfinite_values_are_found_on_the_gpu(problem):
    x, w = problem
    x = x.copy()
    x[3, 4] = np.nan
    found = partial_sums(cupy.asarray(x), w, "euclidean", row_offset=10).nonfinite
    assert (found.count, found.first) == (1, (13, 4))


def test_training_on_cupy_chunks_gives_the_cpu_map(problem):
    x, _ = problem
    on_gpu_data = da.from_array(x, chunks=(100, 8)).map_blocks(cupy.asarray)
    gpu = SOM(5, 6, init="pca", epochs=4).fit(on_gpu_data)
    cpu = SOM(5, 6, init="pca", epochs=4, chunks=100).fit(x)
    np.testing.assert_allclose(gpu.weights_, cpu.weights_, rtol=1e-8, atol=1e-10)
    assert gpu.quantization_error(on_gpu_data) == pytest.approx(cpu.quantization_error(x))
