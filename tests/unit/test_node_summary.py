"""The per-node summary: the chunk kernel against a plain per-row reference, exact and
order-free merging, the bottom-k row sample, and the out-of-core pass over a fitted map."""

import dask.array as da
import numpy as np
import pytest

import dasksom
from dasksom.core.node_summary import chunk_summary, merge_summaries, row_keys
from dasksom.estimator.summary import evaluate_and_summarize, summarize


@pytest.fixture
def chunk():
    rng = np.random.default_rng(1)
    weights = rng.normal(size=(6, 3))
    data = rng.normal(size=(200, 3))
    bmus = rng.integers(0, 6, 200)
    codes = rng.integers(0, 4, 200)
    return data, weights, bmus, np.arange(1000, 1200), codes


def test_chunk_summary_counts_hits_distances_and_labels_per_node(chunk):
    data, weights, bmus, ids, codes = chunk
    summary = chunk_summary(data, weights, bmus, ids, codes, 4, 5)
    for node in range(6):
        rows = data[bmus == node]
        assert summary.hits[node] == len(rows)
        expected = np.linalg.norm(rows - weights[node], axis=1).sum()
        assert summary.distance_sum[node] == pytest.approx(expected)
        for code in range(4):
            assert summary.label_counts[node, code] == np.sum((bmus == node) & (codes == code))
    np.testing.assert_allclose(summary.feature_mean, data.mean(axis=0))
    np.testing.assert_allclose(summary.feature_std, data.std(axis=0))


def test_the_sample_is_the_rows_of_smallest_key_of_each_node(chunk):
    data, weights, bmus, ids, codes = chunk
    summary = chunk_summary(data, weights, bmus, ids, codes, 4, 5)
    for node in range(6):
        members = ids[bmus == node]
        expected = members[np.argsort(row_keys(members))][:5]
        np.testing.assert_array_equal(summary.samples(node), expected)


def test_merging_chunks_gives_the_summary_of_all_rows_in_any_order(chunk):
    data, weights, bmus, ids, codes = chunk
    whole = chunk_summary(data, weights, bmus, ids, codes, 4, 5)
    parts = [
        chunk_summary(data[s], weights, bmus[s], ids[s], codes[s], 4, 5)
        for s in (slice(0, 70), slice(70, 71), slice(71, 200))
    ]
    for merged in (
        merge_summaries(merge_summaries(parts[0], parts[1]), parts[2]),
        merge_summaries(parts[2], merge_summaries(parts[1], parts[0])),
    ):
        np.testing.assert_array_equal(merged.hits, whole.hits)
        np.testing.assert_array_equal(merged.label_counts, whole.label_counts)
        np.testing.assert_array_equal(merged.sample_ids, whole.sample_ids)
        np.testing.assert_allclose(merged.distance_sum, whole.distance_sum)


def test_a_node_with_fewer_rows_than_k_keeps_them_all_and_empty_slots(chunk):
    data, weights, bmus, ids, codes = chunk
    summary = chunk_summary(data, weights, bmus, ids, codes, 4, 500)
    assert sorted(summary.samples(2)) == sorted(ids[bmus == 2])
    assert (summary.sample_ids[2] == -1).sum() == 500 - np.sum(bmus == 2)


def test_rows_without_a_unit_are_left_out(chunk):
    data, weights, bmus, ids, codes = chunk
    bmus = bmus.copy()
    bmus[:50] = -1
    summary = chunk_summary(data, weights, bmus, ids, None, 0, 3)
    assert summary.hits.sum() == 150
    assert not np.isin(ids[:50], summary.sample_ids).any()
    assert summary.label_counts.shape == (6, 0)


def test_missing_values_are_left_out_of_distances_and_feature_totals():
    data = np.array([[1.0, np.nan], [3.0, 4.0]])
    weights = np.zeros((1, 2))
    summary = chunk_summary(data, weights, np.array([0, 0]), np.arange(2), None, 0, 2)
    assert summary.distance_sum[0] == pytest.approx(1.0 + 5.0)
    np.testing.assert_allclose(summary.feature_mean, [2.0, 4.0])


def test_row_keys_are_deterministic_distinct_and_below_two_to_the_63():
    keys = row_keys(np.arange(10_000))
    np.testing.assert_array_equal(keys, row_keys(np.arange(10_000)))
    assert len(np.unique(keys)) == 10_000
    assert keys.max() < 2**63


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 4))
    return dasksom.SOM(4, 5, epochs=2, random_state=0).fit(x), x


def test_summarize_agrees_with_the_maps_hits_and_error_whatever_the_chunking(fitted):
    som, x = fitted
    labels = np.arange(len(x)) % 3
    a, values = summarize(som, da.from_array(x, chunks=97), labels, sample_size=4)
    b, _ = summarize(som, da.from_array(x, chunks=250), labels, sample_size=4)
    np.testing.assert_array_equal(a.hits, som.hit_counts(x))
    assert a.distance_sum.sum() / len(x) == pytest.approx(som.quantization_error(x))
    np.testing.assert_array_equal(a.sample_ids, b.sample_ids)
    np.testing.assert_array_equal(values, [0, 1, 2])


def test_evaluate_and_summarize_measures_what_evaluate_does_in_the_same_pass(fitted):
    som, x = fitted
    evaluation, summary, _ = evaluate_and_summarize(
        som, da.from_array(x, chunks=100), keep_bmus=True
    )
    expected = som.evaluate(x, keep_bmus=True)
    for key in ("quantization_error", "topographic_error"):
        assert evaluation[key] == pytest.approx(expected[key])
    assert evaluation["n_samples"] == expected["n_samples"]
    np.testing.assert_array_equal(evaluation["hit_counts"], expected["hit_counts"])
    np.testing.assert_array_equal(evaluation["bmus"], expected["bmus"])
    np.testing.assert_array_equal(summary.hits, expected["hit_counts"])


def test_labels_of_another_length_are_refused(fitted):
    som, x = fitted
    with pytest.raises(ValueError, match="one per row"):
        summarize(som, x, np.zeros(5))


def test_rows_of_another_width_are_refused(fitted):
    som, x = fitted
    with pytest.raises(ValueError, match="features"):
        summarize(som, x[:, :3])
