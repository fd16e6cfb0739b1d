import numpy as np
import pytest

from dasksom.backends import arrays
from dasksom.core import chunk_tasks, metrics, missing, sums
from dasksom.core.metrics import PreparedWeights
from dasksom.core.search import best_matching_units
from dasksom.core.sums import partial_sums

from ..support import reference

METRICS = ["euclidean", "cosine", "manhattan"]


@pytest.fixture
def problem():
    rng = np.random.default_rng(1)
    return rng.normal(size=(97, 6)), rng.normal(size=(12, 6))


def bmus(x, weights, metric, second=False):
    prepared = PreparedWeights.build(weights, metric, np, x.dtype)
    return best_matching_units(x, prepared, second=second)


@pytest.mark.parametrize("metric", METRICS)
def test_best_matching_units_match_reference(problem, metric):
    x, w = problem
    expected = [reference.bmu(row, w, metric) for row in x]
    np.testing.assert_array_equal(bmus(x, w, metric), expected)


@pytest.mark.parametrize("metric", METRICS)
def test_row_blocks_do_not_change_the_result(problem, metric, monkeypatch):
    x, w = problem
    whole = bmus(x, w, metric)
    monkeypatch.setattr(arrays, "SCORE_BLOCK_ELEMENTS", 1)
    monkeypatch.setattr(metrics, "MANHATTAN_BLOCK_ELEMENTS", 7)
    np.testing.assert_array_equal(bmus(x, w, metric), whole)


@pytest.mark.parametrize("metric", METRICS)
def test_ties_go_to_the_lowest_index(metric):
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
    x = np.array([[2.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(bmus(x, w, metric), [0, 1])


@pytest.mark.parametrize("metric", METRICS)
def test_second_best_unit_is_the_runner_up(problem, metric):
    x, w = problem
    _, second = bmus(x, w, metric, second=True)
    for row, found in zip(x, second, strict=True):
        best = reference.bmu(row, w, metric)
        rest = np.delete(np.arange(len(w)), best)
        assert found == rest[reference.bmu(row, w[rest], metric)]


@pytest.mark.parametrize("metric", METRICS)
def test_partial_sums_regroup_rows_by_bmu(problem, metric):
    x, w = problem
    sums = partial_sums(x, w, metric)
    found = [reference.bmu(row, w, metric) for row in x]
    for k in range(len(w)):
        mine = [i for i, b in enumerate(found) if b == k]
        np.testing.assert_allclose(sums.sums[k], x[mine].sum(axis=0), atol=1e-12)
        assert sums.counts[k] == len(mine)
        expected_distance = sum(np.linalg.norm(x[i] - w[k]) for i in mine)
        np.testing.assert_allclose(sums.distances[k], expected_distance, rtol=1e-10)
    assert sums.n_rows == len(x)


@pytest.mark.parametrize("metric", METRICS)
def test_quantization_error_term_matches_reference(problem, metric):
    x, w = problem
    expected = reference.quantization_error(x, w, metric)
    assert partial_sums(x, w, metric).quantization_error == pytest.approx(expected, rel=1e-10)


def test_partial_sums_of_two_halves_add_up_to_the_whole(problem):
    x, w = problem
    halves = partial_sums(x[:40], w, "euclidean") + partial_sums(x[40:], w, "euclidean")
    whole = partial_sums(x, w, "euclidean")
    np.testing.assert_allclose(halves.sums, whole.sums)
    np.testing.assert_array_equal(halves.counts, whole.counts)
    assert halves.n_rows == whole.n_rows


def test_small_integer_data_is_summed_exactly():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, size=(500, 16)).astype(np.uint8)
    w = rng.uniform(0, 255, size=(9, 16))
    sums = partial_sums(x, w, "euclidean")
    np.testing.assert_array_equal(sums.sums.sum(axis=0), x.sum(axis=0, dtype=np.float64))


def test_narrow_types_compute_in_float32_and_wide_in_float64():
    assert arrays.compute_dtype(np.uint8) == np.float32
    assert arrays.compute_dtype(np.float32) == np.float32
    assert arrays.compute_dtype(np.float64) == np.float64
    assert arrays.compute_dtype(np.int64) == np.float64


def test_nonfinite_values_are_counted_with_the_first_location(problem):
    x, w = problem
    x = x.copy()
    x[5, 2] = np.nan
    x[9, 0] = np.inf
    sums = partial_sums(x, w, "euclidean", row_offset=100)
    assert sums.nonfinite.count == 2
    assert sums.nonfinite.first == (105, 2)


def test_nonfinite_counts_add_across_chunks_and_keep_the_first():
    a = missing.NonFinite(2, (50, 1))
    b = missing.NonFinite(3, (10, 4))
    total = a + b + missing.NonFinite()
    assert (total.count, total.first) == (5, (10, 4))


def test_sum_rows_by_index_handles_empty_chunks():
    out = sums.sum_rows_by_index(np.empty((0, 3)), np.empty(0, dtype=np.int64), 4)
    np.testing.assert_array_equal(out, np.zeros((4, 3)))


class Chebyshev(metrics.Metric):
    """A metric the package does not ship: max |x - w|."""

    name = "chebyshev"

    def prepare(self, weights, xp):
        return metrics.PreparedWeights(self, weights, None, None)

    def scores(self, block, prepared, mask=None):
        return -np.abs(block[:, None, :] - prepared.weights[None]).max(axis=-1)

    def distances(self, block, scores):
        return -scores


def test_a_metric_added_to_the_table_is_used_by_fit_predict_and_transform(monkeypatch, blobs):
    from dasksom import SOM

    monkeypatch.setitem(metrics.METRICS, "chebyshev", Chebyshev())
    som = SOM(3, 3, epochs=2, metric="chebyshev", random_state=0).fit(blobs)
    expected = np.abs(blobs[:, None, :] - som.weights_[None]).max(axis=-1)
    np.testing.assert_allclose(som.transform(blobs), expected, rtol=1e-12)
    np.testing.assert_array_equal(som.predict(blobs), expected.argmin(axis=1))


def test_an_unknown_metric_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="Unknown metric 'chebyshev'; choose one of euclidean"):
        metrics.get_metric("chebyshev")


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float16])
def test_narrow_data_stays_narrow_until_a_block_is_used(dtype):
    chunk = np.arange(24).reshape(6, 4).astype(dtype)
    x, _, prepared = metrics.prepare(chunk, np.ones((3, 4)), "euclidean")
    assert x.dtype == dtype
    assert prepared.weights.dtype == np.float32


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.float16])
def test_narrow_data_gives_what_its_float32_copy_gives(metric, dtype, monkeypatch):
    rng = np.random.default_rng(5)
    chunk = rng.integers(0, 200, size=(300, 7)).astype(dtype)
    weights = rng.uniform(0, 200, size=(10, 7))
    wide = chunk.astype(np.float32)
    monkeypatch.setattr(arrays, "SCORE_BLOCK_ELEMENTS", 64)  # several blocks per chunk
    narrow_sums, wide_sums = (partial_sums(c, weights, metric) for c in (chunk, wide))
    np.testing.assert_array_equal(narrow_sums.sums, wide_sums.sums)
    np.testing.assert_array_equal(narrow_sums.counts, wide_sums.counts)
    np.testing.assert_allclose(narrow_sums.distances, wide_sums.distances, rtol=1e-6)
    np.testing.assert_allclose(
        chunk_tasks.transform_chunk(chunk, weights, metric),
        chunk_tasks.transform_chunk(wide, weights, metric),
        rtol=1e-6,
    )


def test_narrow_data_with_missing_values_gives_what_its_float32_copy_gives():
    rng = np.random.default_rng(6)
    chunk = rng.integers(0, 100, size=(200, 5)).astype(np.float16)
    chunk[rng.random(chunk.shape) < 0.2] = np.nan
    weights = rng.uniform(0, 100, size=(8, 5))
    narrow, wide = (
        partial_sums(c, weights, "euclidean", nan_policy="ignore")
        for c in (chunk, chunk.astype(np.float32))
    )
    np.testing.assert_array_equal(narrow.sums, wide.sums)
    np.testing.assert_array_equal(narrow.feature_counts, wide.feature_counts)
