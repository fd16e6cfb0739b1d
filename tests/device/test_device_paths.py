"""The CuPy branches of dasksom, run on a NumPy-backed stand-in (``tests/support/fake_cupy.py``).

Every test compares a device run on the fake with the NumPy run of the same inputs: the
branches taken only for CuPy arrays (device block sizes, cuBLAS ``gemmEx`` for narrow
precisions, the fused search kernel, the CSR one-hot sums, device smoothing of large maps)
must give NumPy's results.  What the fake can and cannot prove is in its docstring; the same
behaviours on a real GPU are in ``tests/device/test_gpu.py``.
"""

import inspect
import sys
import types

import dask.array as da
import numpy as np
import pytest

from dasksom import SOM
from dasksom.backends import arrays, cuda
from dasksom.core import metrics, neighborhood, precision, search
from dasksom.core.chunk_tasks import (
    evaluate_chunk,
    nearest_chunk,
    predict_chunk,
    transform_chunk,
)
from dasksom.core.lattice import Lattice
from dasksom.core.metrics import PreparedWeights
from dasksom.core.neighborhood import structured_smooth
from dasksom.core.sums import partial_sums, sum_rows_by_index
from dasksom.training import engine, gpu

from ..support import fake_cupy
from ..support.fake_cupy import to_device

PRECISION_NAMES = ["exact", "tf32", "bfloat16", "float16"]
# Precisions round a product: every one with the product metrics, exact with manhattan.
SEARCHES = [(m, p) for m in ("euclidean", "cosine") for p in PRECISION_NAMES] + [
    ("manhattan", "exact")
]
METRIC_NAMES = ["euclidean", "cosine", "manhattan"]
DATA = ["float64", "float32", "uint8", "float16", "float64 with NaN", "float16 with NaN"]


@pytest.fixture
def cupy(monkeypatch):
    return fake_cupy.install(monkeypatch)


def problem(data: str, n_rows: int = 400, n_nodes: int = 30, n_features: int = 8):
    """``(chunk, weights, nan_policy)``: rows near well-separated nodes, so that no BMU is a
    near tie that float32 rounding could flip; "with NaN": 10% missing and one empty row."""
    rng = np.random.default_rng(0)
    centres = rng.uniform(20, 235, size=(n_nodes, n_features))
    x = centres[rng.integers(0, n_nodes, n_rows)] + rng.normal(scale=3, size=(n_rows, n_features))
    weights = centres + rng.normal(size=centres.shape)
    nan_policy = "raise"
    if data.endswith("with NaN"):
        x[rng.random(x.shape) < 0.1] = np.nan
        x[5] = np.nan
        nan_policy = "ignore"
    if data == "uint8":
        x = np.clip(np.rint(x), 0, 255)
    return x.astype(data.split()[0]), weights, nan_policy


def assert_sums_equal(found, expected, rtol):
    np.testing.assert_array_equal(found.counts, expected.counts)
    np.testing.assert_allclose(found.sums, expected.sums, rtol=rtol)
    np.testing.assert_allclose(found.distances, expected.distances, rtol=rtol)
    np.testing.assert_array_equal(found.per_feature_counts(), expected.per_feature_counts())
    assert found.n_rows == expected.n_rows
    assert found.rows_without_values == expected.rows_without_values


# --- the chunk kernels ----------------------------------------------------------------------


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize(("metric", "precision_name"), SEARCHES)
def test_partial_sums_of_a_device_chunk_equal_numpys(cupy, metric, precision_name, data):
    x, weights, nan_policy = problem(data)
    options = {"nan_policy": nan_policy, "precision": precision_name}
    found = partial_sums(to_device(x), weights, metric, **options)
    assert isinstance(found.sums, cupy.ndarray) and isinstance(found.counts, cupy.ndarray)
    assert_sums_equal(found.to_host(), partial_sums(x, weights, metric, **options), rtol=1e-12)


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_predict_chunk_on_a_device_chunk_gives_numpys_bmus(cupy, metric, data):
    x, weights, nan_policy = problem(data)
    found = predict_chunk(to_device(x), weights, metric, nan_policy=nan_policy)
    assert isinstance(found, cupy.ndarray) and found.dtype == np.int64
    np.testing.assert_array_equal(found.get(), predict_chunk(x, weights, metric, 0, nan_policy))


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_evaluate_chunk_on_a_device_chunk_measures_what_numpy_does(cupy, metric, data):
    x, weights, nan_policy = problem(data)
    lattice = Lattice(5, 6)
    options = {"nan_policy": nan_policy, "keep_bmus": True}
    totals, bmus = evaluate_chunk(to_device(x), weights, metric, lattice, **options)
    expected_totals, expected_bmus = evaluate_chunk(x, weights, metric, lattice, **options)
    assert type(totals) is np.ndarray and type(bmus) is np.ndarray
    np.testing.assert_allclose(totals, expected_totals, rtol=1e-12)
    np.testing.assert_array_equal(bmus, expected_bmus)


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_transform_chunk_on_a_device_chunk_gives_numpys_distances(cupy, metric, data):
    x, weights, nan_policy = problem(data)
    found = transform_chunk(to_device(x), weights, metric, nan_policy=nan_policy)
    expected = transform_chunk(x, weights, metric, nan_policy=nan_policy)
    assert isinstance(found, cupy.ndarray) and found.dtype == expected.dtype
    np.testing.assert_allclose(found.get(), expected, rtol=1e-12, equal_nan=True)


# Chunks that assign no row: dask arrays may hold empty chunks, and missing data whole
# chunks of rows without an observed value.
UNASSIGNED = {"no rows": np.zeros((0, 8)), "no observed value": np.full((6, 8), np.nan)}


@pytest.mark.parametrize("chunk", UNASSIGNED)
@pytest.mark.parametrize(("metric", "precision_name"), SEARCHES)
def test_partial_sums_of_a_device_chunk_that_assigns_no_row_equal_numpys(
    cupy, metric, precision_name, chunk
):
    x, (_, weights, _) = UNASSIGNED[chunk], problem("float64")
    options = {"nan_policy": "ignore", "precision": precision_name}
    found = partial_sums(to_device(x), weights, metric, **options).to_host()
    assert_sums_equal(found, partial_sums(x, weights, metric, **options), rtol=0)


@pytest.mark.parametrize("chunk", UNASSIGNED)
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_evaluate_chunk_of_a_device_chunk_that_assigns_no_row_measures_what_numpy_does(
    cupy, metric, chunk
):
    x, (_, weights, _) = UNASSIGNED[chunk], problem("float64")
    options = {"nan_policy": "ignore", "keep_bmus": True}
    totals, bmus = evaluate_chunk(to_device(x), weights, metric, Lattice(5, 6), **options)
    expected_totals, expected_bmus = evaluate_chunk(x, weights, metric, Lattice(5, 6), **options)
    np.testing.assert_array_equal(totals, expected_totals)
    np.testing.assert_array_equal(bmus, expected_bmus)


@pytest.mark.parametrize("precision_name", PRECISION_NAMES)
def test_a_device_chunk_searched_in_several_row_blocks_gives_numpys_bmus(
    cupy, monkeypatch, precision_name
):
    monkeypatch.setattr(fake_cupy, "FREE_BYTES", 0)  # the device's smallest blocks: 998 rows
    x, weights, _ = problem("float32", n_rows=2500, n_nodes=2100)
    assert search.block_rows(cupy, metrics.METRICS["euclidean"], 2100, 8) < 2500 // 2
    found = partial_sums(to_device(x), weights, "euclidean", precision=precision_name)
    expected = partial_sums(x, weights, "euclidean", precision=precision_name)
    assert_sums_equal(found.to_host(), expected, rtol=1e-12)


@pytest.mark.parametrize("precision_name", ["tf32", "bfloat16", "float16"])
def test_device_operands_of_float64_data_are_the_cpu_emulations(cupy, precision_name):
    # float64 values just above a narrow format's midpoint: rounded to float32 first (as the
    # emulation does) they land on the midpoint and round to even, directly they round up.
    bits = {"tf32": 10, "bfloat16": 7, "float16": 10}[precision_name]
    x = 1.0 + 2.0 ** -(bits + 1) + 2.0 ** -np.arange(40.0, 44.0)[:, None]  # (4, 1)
    weights = np.array([[1.0], [3.0]])  # one feature: each score is one exact product
    found = PreparedWeights.build(weights, "euclidean", cupy, np.float64, precision_name)
    expected = PreparedWeights.build(weights, "euclidean", np, np.float64, precision_name)
    np.testing.assert_array_equal(found.product(to_device(x)).get(), expected.product(x))


@pytest.mark.parametrize(
    ("dtype", "sum_dtype"),
    [(np.float64, None), (np.float32, None), (np.uint8, np.float32), (np.float16, np.float32)],
)
def test_csr_sums_on_the_device_equal_numpys_with_empty_groups_and_repeats(
    cupy, monkeypatch, dtype, sum_dtype
):
    monkeypatch.setattr(arrays, "SCORE_BLOCK_ELEMENTS", 500)  # narrow data: 3 row blocks
    rng = np.random.default_rng(1)
    x = rng.integers(0, 50, size=(300, 5)).astype(dtype)
    index = rng.choice([0, 2, 3, 7], size=300)  # groups 1, 4, 5, 6, 8 and 9 stay empty
    found = sum_rows_by_index(to_device(x), to_device(index), 10, sum_dtype)
    assert isinstance(found, cupy.ndarray) and found.dtype == np.float64
    expected = sum_rows_by_index(x, index, 10, sum_dtype)
    np.testing.assert_array_equal(found.get(), expected)
    assert not expected[[1, 4, 5, 6, 8, 9]].any()


def test_csr_sums_of_no_rows_on_the_device_are_zeros(cupy):
    found = sum_rows_by_index(cupy.zeros((0, 5)), cupy.zeros(0, dtype=np.int64), 10)
    assert isinstance(found, cupy.ndarray)
    np.testing.assert_array_equal(found.get(), np.zeros((10, 5)))


# --- smoothing and training -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gaussian", "bubble", "mexican_hat"])
@pytest.mark.parametrize("topology", ["square", "hexagonal"])
@pytest.mark.parametrize("pbc", [False, True])
def test_structured_smoothing_of_device_values_equals_numpys(cupy, kind, topology, pbc):
    lattice = Lattice(40, 30, topology, pbc)
    values = np.random.default_rng(5).random((lattice.n_nodes, 7))
    found = structured_smooth(lattice, to_device(values), 4.0, kind)
    assert isinstance(found, cupy.ndarray)
    expected = structured_smooth(lattice, values, 4.0, kind)
    np.testing.assert_allclose(found.get(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["gaussian", "bubble", "mexican_hat"])
def test_row_block_smoothing_of_device_values_equals_numpys(cupy, kind):
    lattice = Lattice(40, 30, "hexagonal", True)
    smoother = neighborhood._RowBlockSums(lattice, neighborhood.get_neighborhood(kind), 4.0)
    block = np.random.default_rng(6).random((40, 30, 3))
    found = smoother.apply(to_device(block))
    assert isinstance(found, cupy.ndarray)
    np.testing.assert_allclose(found.get(), smoother.apply(block), rtol=1e-12, atol=1e-12)


def clusters() -> np.ndarray:
    rng = np.random.default_rng(1)
    centres = rng.normal(scale=10, size=(4, 16))
    return centres[rng.integers(0, 4, 600)] + rng.normal(size=(600, 16))


@pytest.mark.parametrize(
    ("height", "width", "precision_name", "smoothed_on"),
    [(5, 6, "exact", "host"), (5, 6, "bfloat16", "host"), (40, 30, "exact", "device")],
)
def test_som_with_device_gpu_trains_numpys_map(
    cupy, monkeypatch, height, width, precision_name, smoothed_on
):
    x = clusters()
    settings = {"init": "pca", "epochs": 3, "random_state": 0, "chunks": 150}

    def fit(device: str) -> np.ndarray:
        som = SOM(height, width, precision=precision_name, device=device, **settings)
        return som.fit(x).weights_

    seen = {"chunks": [], "smoothed": []}

    def chunk_spy(chunk, *args):
        seen["chunks"].append(type(chunk))
        return partial_sums(chunk, *args)

    def smooth_spy(lattice, values, sigma, kind):
        seen["smoothed"].append(type(values))
        return smooth(lattice, values, sigma, kind)

    smooth = engine.smooth
    monkeypatch.setattr(engine, "partial_sums", chunk_spy)
    monkeypatch.setattr(engine, "smooth", smooth_spy)
    on_device = fit("gpu")
    assert seen["chunks"] == [cupy.ndarray] * 4 * 3  # 4 chunks, 3 epochs
    assert seen["smoothed"] == [cupy.ndarray if smoothed_on == "device" else np.ndarray] * 3
    data = gpu.to_device(da.from_array(x, chunks=(150, 16)))
    lattice = SOM(height, width)._validate_params()
    assert engine._smoothing_module(data, lattice) is (cupy if smoothed_on == "device" else np)
    np.testing.assert_allclose(on_device, fit("cpu"), rtol=1e-10, atol=1e-10)


# --- the fake itself ------------------------------------------------------------------------


def _swap(call, a, b):
    call[a], call[b] = call[b], call[a]


# Each mistake in the gemmEx call, and what the fake makes of it: an error that names it, or
# wrong products (a view of a larger chunk lets the rows operand be misread in bounds).
MISTAKES = {
    "first leading dimension + 1": (lambda c: c.update(lda=c["lda"] + 1), "leaves its"),
    "second leading dimension + 1": (lambda c: c.update(ldb=c["ldb"] + 1), None),
    "second leading dimension - 1": (lambda c: c.update(ldb=c["ldb"] - 1), "INVALID_VALUE"),
    "leading dimensions swapped": (lambda c: _swap(c, "lda", "ldb"), "INVALID_VALUE"),
    "operands swapped": (lambda c: _swap(c, "A", "B"), "leaves its"),
    "m and n swapped": (lambda c: _swap(c, "m", "n"), "INVALID_VALUE"),
    "float16 type code for bfloat16": (lambda c: c.update(Atype=2, Btype=2), None),
    "alpha and beta on the device": (lambda c: c.update(alpha=c["A"], beta=c["A"]), "host"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_fake_gemm_catches(cupy, monkeypatch, mistake):
    rng = np.random.default_rng(2)
    chunk = to_device(rng.random((100, 16), dtype=np.float32))
    weights = rng.random((30, 16))
    name = "bfloat16" if "bfloat16" in mistake else "tf32"
    prepared = PreparedWeights.build(weights, "euclidean", cupy, np.float32, name)
    block = chunk[:40]  # a view: the chunk's memory goes on past the block's
    expected = PreparedWeights.build(weights, "euclidean", np, np.float32, name).product(
        block.get()
    )
    np.testing.assert_allclose(prepared.product(block).get(), expected, rtol=1e-6)
    cublas = fake_cupy.MODULES["cupy_backends.cuda.libs.cublas"]
    signature = inspect.signature(fake_cupy.gemmEx)
    change, error = MISTAKES[mistake]

    def mistaken(*args):
        call = signature.bind(*args).arguments
        change(call)
        return fake_cupy.gemmEx(**call)

    monkeypatch.setattr(cublas, "gemmEx", mistaken)
    if error is None:
        assert not np.allclose(prepared.product(block).get(), expected, rtol=1e-3)
    else:
        with pytest.raises(ValueError, match=error):
            prepared.product(block)


def test_the_fake_refuses_host_arrays_where_cupy_does(cupy):
    device = cupy.arange(3.0)
    for operation in (
        lambda: device + np.ones(3),
        lambda: device * np.array(2.0),  # 0-d NumPy arrays too
        lambda: cupy.sqrt(np.ones(3)),
        lambda: np.concatenate([device, np.ones(3)]),
    ):
        with pytest.raises(TypeError):
            operation()
    assert isinstance(device.sum(), cupy.ndarray)  # reductions stay on the device, 0-d
    assert isinstance(device + np.float32(1), cupy.ndarray)  # NumPy scalars are fine


def test_the_fake_search_kernel_checks_its_launch(cupy):
    scores, offsets = to_device(np.zeros((4, 5))), to_device(np.zeros(5))
    kernel = search._best_columns_kernels(0)["float64"]
    out = cupy.zeros(4, dtype=np.int64)
    scores[:, 3], offsets[4] = 1.0, -1.0
    kernel((4,), (search.SEARCH_THREADS,), (scores, offsets, np.int64(5), out))
    np.testing.assert_array_equal(out.get(), [3, 3, 3, 3])  # in place; a tie: the lower column
    with pytest.raises(ValueError, match="block"):
        kernel((4,), (128,), (scores, offsets, np.int64(5), out))
    with pytest.raises(TypeError, match="n_cols"):
        kernel((4,), (search.SEARCH_THREADS,), (scores, offsets, 5, out))
    with pytest.raises(TypeError, match="float64"):
        float32_scores = scores.astype(np.float32)
        kernel((4,), (search.SEARCH_THREADS,), (float32_scores, offsets, np.int64(5), out))
    with pytest.raises(ValueError, match="offsets"):
        kernel((4,), (search.SEARCH_THREADS,), (offsets, scores, np.int64(5), out))
    swapped = search.BEST_COLUMNS_SOURCE.replace("scores, const T* offsets", "offsets, const T* x")
    module = cupy.RawModule(code=swapped, name_expressions=("best_columns<float>",))
    with pytest.raises(ValueError, match="does not declare"):
        module.get_function("best_columns<float>")


def test_warm_up_runs_on_the_fake_device(cupy):
    assert gpu.warm_up(6, 12, "cosine", dtype=np.float16, precision="bfloat16") > 0
    assert precision._device_bfloat16_bits.cache_info().currsize == 1


def test_a_fit_on_device_chunks_compiles_the_kernels_first_and_times_it_apart(cupy):
    som = SOM(4, 4, epochs=1, device="gpu", random_state=0).fit(clusters())
    assert som.warm_up_seconds_ > 0
    som.set_params(device="cpu").fit(clusters())
    assert not hasattr(som, "warm_up_seconds_")


def test_device_chunks_persist_only_when_they_fit_in_free_gpu_memory(cupy, monkeypatch):
    data = gpu.to_device(da.from_array(clusters(), chunks=(150, 16)))
    fits = int(data.nbytes / engine.DEVICE_PERSIST_FRACTION) + 1
    monkeypatch.setattr(fake_cupy, "FREE_BYTES", fits)
    assert engine.should_persist(data, "auto")
    monkeypatch.setattr(fake_cupy, "FREE_BYTES", fits - 16)
    assert not engine.should_persist(data, "auto")


def fake_rmm(pool_bytes: int, allocated: int, tracked: bool = True):
    """An ``rmm`` module whose current resource is a pool, tracked as dask-cuda's
    ``rmm_track_allocations`` wraps it."""

    class PoolMemoryResource:
        def pool_size(self):
            return pool_bytes

    class TrackingResourceAdaptor:
        def get_upstream(self):
            return PoolMemoryResource()

        def get_allocated_bytes(self):
            return allocated

    current = TrackingResourceAdaptor() if tracked else PoolMemoryResource()
    mr = types.SimpleNamespace(
        PoolMemoryResource=PoolMemoryResource,
        TrackingResourceAdaptor=TrackingResourceAdaptor,
        get_current_device_resource=lambda: current,
    )
    return types.SimpleNamespace(mr=mr)


def test_the_unused_part_of_a_tracked_rmm_pool_counts_as_free_gpu_memory(cupy, monkeypatch):
    monkeypatch.setitem(sys.modules, "rmm", fake_rmm(pool_bytes=10 << 30, allocated=3 << 30))
    assert cuda.rmm_pool_unused_bytes() == 7 << 30
    assert cuda.free_device_bytes(cupy) == fake_cupy.FREE_BYTES + (7 << 30)


def test_an_untracked_rmm_pool_counts_as_taken(cupy, monkeypatch):
    monkeypatch.setitem(sys.modules, "rmm", fake_rmm(10 << 30, 3 << 30, tracked=False))
    assert cuda.rmm_pool_unused_bytes() == 0
    monkeypatch.delitem(sys.modules, "rmm")
    assert cuda.rmm_pool_unused_bytes() == 0


def test_the_gpu_memory_budget_counts_a_gpu_shared_by_workers_once(monkeypatch):
    class Client:
        def run(self, function):
            return {"w1": ("bus-a", 10), "w2": ("bus-a", 10), "w3": ("bus-b", 5)}

    monkeypatch.setattr(engine, "distributed_client", lambda: Client())
    assert gpu.device_memory_budget() == 15


# --- the pruned search on a device ---------------------------------------------------------


@pytest.mark.parametrize("data", ["float32", "uint8", "float16"])
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_the_pruned_search_of_a_device_chunk_gives_numpys_units(cupy, metric, data):
    from dasksom.core.bmu_search import choose_plan

    x, weights, _ = problem(data, n_rows=600, n_features=24)
    plan = choose_plan("pruned", x.astype(np.float64), weights, metric, np.float32)
    index = plan.index(weights, np.float32)
    lattice = Lattice(5, 6)
    found = predict_chunk(to_device(x), weights, metric, index=index)
    assert isinstance(found, cupy.ndarray)
    np.testing.assert_array_equal(found.get(), predict_chunk(x, weights, metric))
    totals, _ = evaluate_chunk(to_device(x), weights, metric, lattice, index=index)
    np.testing.assert_allclose(totals, evaluate_chunk(x, weights, metric, lattice)[0], rtol=1e-6)
    sums = partial_sums(to_device(x), weights, metric, index=index).to_host()
    assert_sums_equal(sums, partial_sums(x, weights, metric), rtol=1e-6)


def test_the_pruned_search_takes_device_sized_groups(cupy, monkeypatch):
    from dasksom.core import pruned
    from dasksom.core.bmu_search import choose_plan

    x, weights, _ = problem("float32", n_rows=600, n_features=24)
    index = choose_plan("pruned", x, weights, "euclidean", np.float32).index(weights, "f4")
    groups = []
    real = pruned._search_groups
    monkeypatch.setattr(pruned, "_search_groups", lambda *a: groups.append(a[5]) or real(*a))
    search.best_matching_units(
        to_device(x), PreparedWeights.build(weights, "euclidean", cupy, np.float32), index=index
    )
    assert groups == [search.DEVICE_GROUP_ROWS]


@pytest.mark.parametrize("data", DATA)
@pytest.mark.parametrize("metric", METRIC_NAMES)
def test_nearest_chunk_on_a_device_chunk_gives_numpys_bmus_and_distances(cupy, metric, data):
    x, weights, nan_policy = problem(data)
    found = nearest_chunk(to_device(x), weights, metric, nan_policy=nan_policy)
    expected = nearest_chunk(x, weights, metric, nan_policy=nan_policy)
    assert isinstance(found, cupy.ndarray) and found.dtype == np.float64
    np.testing.assert_array_equal(found.get()[:, 0], expected[:, 0])
    np.testing.assert_allclose(found.get()[:, 1], expected[:, 1], rtol=1e-12, equal_nan=True)
