"""The FlowSOM pipeline: medians, metaclusters, per-cell results and tables against numpy."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("anndata")

import dask.array as da  # noqa: E402
import pandas as pd  # noqa: E402

from dasksom.cytometry import (  # noqa: E402
    FlowSOM,
    consensus_metaclusters,
    grouped_counts,
    grouped_medians,
    median_error_bound,
    read_array,
    spanning_tree,
    summarise,
)

CENTERS = np.array([[0, 0, 0, 0], [6, 0, 0, 0], [0, 6, 0, 0], [0, 0, 6, 6]], dtype=float)
MARKERS = ["a", "b", "c", "d"]


def adjusted_rand(a, b):
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)

    def pairs(x):
        return (x * (x - 1) / 2).sum()

    index, rows, cols = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * cols / pairs(np.array([len(a)]))
    return (index - expected) / ((rows + cols) / 2 - expected)


def planted(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    population = rng.integers(0, len(CENTERS), n)
    values = CENTERS[population] + rng.normal(scale=0.5, size=(n, 4))
    sample = rng.integers(0, 3, n)
    return values, population, sample


@pytest.fixture(scope="module")
def fitted():
    values, population, sample = planted()
    cells = read_array(da.from_array(values, chunks=700), MARKERS, sample=sample)
    model = FlowSOM(6, 6, n_clusters=4, seed=3).fit(cells)
    return model, cells, values, population, sample


def test_grouped_medians_are_within_their_bound_of_numpy_at_every_chunking():
    rng = np.random.default_rng(1)
    values = np.column_stack([rng.normal(size=3000), rng.integers(0, 4, 3000)])
    groups = rng.integers(-1, 6, 3000)
    groups[groups == 2] = -1
    for rows in (3000, 1000, 333):
        got = grouped_medians(da.from_array(values, chunks=rows), da.from_array(groups, rows), 6)
        for g in range(6):
            member = values[groups == g]
            if g == 2:
                assert np.isnan(got[g]).all()
                continue
            bound = median_error_bound(member.min(0), member.max(0))
            assert np.all(np.abs(got[g] - np.median(member, axis=0)) <= bound)


def test_grouped_medians_in_batches_equal_one_batch():
    rng = np.random.default_rng(2)
    values, groups = rng.normal(size=(900, 2)), rng.integers(0, 9, 900)
    data, keys = da.from_array(values, chunks=100), da.from_array(groups, chunks=100)
    np.testing.assert_array_equal(
        grouped_medians(data, keys, 9, max_bytes=1), grouped_medians(data, keys, 9)
    )


def test_histogram_kernel_counts_each_value_in_the_bin_its_edges_hold():
    from dasksom.cytometry.histograms import histogram_counts

    rng = np.random.default_rng(4)
    values, groups = rng.normal(size=(500, 3)), rng.integers(0, 4, (500, 2))
    low = rng.uniform(-1.5, -0.5, (2, 4, 3))
    high = low + rng.uniform(0.5, 2.0, (2, 4, 3))
    values[:10, 0] = high[0, groups[:10, 0], 0]  # on a closed bracket's upper edge
    closed = np.zeros((2, 4, 3), dtype=bool)
    closed[0] = True
    bins = 7
    out = np.zeros((2, 4, 3, bins), dtype=np.int64)
    histogram_counts(values, groups, 0, low, high, closed, bins, out)
    expected = np.zeros_like(out)
    for row, cell_groups in zip(values, groups, strict=True):
        for g in cell_groups:
            for k in range(2):
                for m, v in enumerate(row):
                    lo, hi = low[k, g, m], high[k, g, m]
                    edges = lo + (hi - lo) * (np.arange(bins + 1) / bins)
                    if lo <= v < hi or (closed[k, g, m] and v == hi):
                        t = min(int(np.searchsorted(edges, v, side="right")) - 1, bins - 1)
                        expected[k, g, m, t] += 1
    np.testing.assert_array_equal(out, expected)


def test_grouped_medians_are_exact_for_a_constant_group():
    got = grouped_medians(da.full((10, 1), 2.5, chunks=3), da.zeros(10, int, chunks=3), 1)
    assert got[0, 0] == 2.5


def test_grouped_counts_match_bincount_and_skip_minus_one():
    groups = np.random.default_rng(3).integers(-1, 5, 1000)
    got = grouped_counts(da.from_array(groups, chunks=77), 5)
    np.testing.assert_array_equal(got, np.bincount(groups[groups >= 0], minlength=5))


def test_spanning_tree_is_the_minimal_one_over_the_codes():
    codes = np.array([[0.0], [1.0], [3.0], [10.0]])
    np.testing.assert_array_equal(spanning_tree(codes), [[0, 1], [1, 2], [2, 3]])


def test_consensus_metaclusters_are_reproducible_under_a_seed():
    codes = np.random.default_rng(4).normal(size=(49, 3))
    first = consensus_metaclusters(codes, 5, seed=11)
    np.testing.assert_array_equal(first, consensus_metaclusters(codes, 5, seed=11))
    assert first[0] == 0 and set(first) == set(range(5))


def test_consensus_metaclusters_recover_separated_groups():
    rng = np.random.default_rng(5)
    truth = np.repeat(np.arange(3), 10)
    codes = np.array([[0, 0], [8, 0], [0, 8]])[truth] + rng.normal(scale=0.3, size=(30, 2))
    assert adjusted_rand(consensus_metaclusters(codes, 3, seed=0), truth) == 1.0


def test_flowsom_recovers_planted_populations(fitted):
    model, cells, _, population, _ = fitted
    labels = model.map(cells).metacluster.compute()
    assert adjusted_rand(labels, population) > 0.95


def test_flowsom_fit_is_reproducible_under_a_seed(fitted):
    model, cells, *_ = fitted
    again = FlowSOM(6, 6, n_clusters=4, seed=3).fit(cells)
    np.testing.assert_array_equal(again.som_.weights_, model.som_.weights_)
    np.testing.assert_array_equal(again.node_metacluster_, model.node_metacluster_)


def test_cell_results_are_lazy_with_the_row_chunks_of_the_cells(fitted):
    model, cells, *_ = fitted
    results = model.map(cells)
    for array in (results.node, results.metacluster, results.distance, results.outlier):
        assert isinstance(array, da.Array) and array.chunks[0] == cells.data.chunks[0]


def test_distances_and_outliers_match_numpy(fitted):
    model, cells, values, *_ = fitted
    results = model.map(cells)
    node = results.node.compute()
    distance = np.linalg.norm(values - model.som_.weights_[node], axis=1)
    np.testing.assert_allclose(results.distance.compute(), distance)
    expected = np.zeros(len(values), dtype=bool)
    for k in np.unique(node):
        d = distance[node == k]
        mad = np.median(np.abs(d - np.median(d)))
        threshold = np.median(d) + 4 * 1.4826 * mad
        assert abs(model.thresholds_[k] - threshold) < 1e-6
        expected[node == k] = d > threshold
    np.testing.assert_array_equal(results.outlier.compute(), expected)


def test_importance_weights_scale_the_training_space():
    values, *_ = planted(600)
    cells = read_array(da.from_array(values, chunks=200), MARKERS)
    model = FlowSOM(3, 3, n_clusters=2, importance={"b": 3.0}).fit(cells)
    np.testing.assert_array_equal(model.importance_, [1, 3, 1, 1])
    np.testing.assert_allclose(model.codes_ * [1, 3, 1, 1], model.som_.weights_)


def reference_tables(values, node, meta, sample, n_nodes, n_meta, n_samples):
    def table(keys, n_groups):
        rows = []
        for g in range(n_groups):
            member = values[keys == g]
            medians = np.median(member, axis=0) if len(member) else np.full(4, np.nan)
            rows.append([len(member), *medians])
        return np.array(rows)

    return (
        table(node, n_nodes),
        table(meta, n_meta),
        table(sample * n_nodes + node, n_samples * n_nodes),
        table(sample * n_meta + meta, n_samples * n_meta),
    )


@pytest.mark.parametrize("rows", [4000, 700, 333])
def test_summary_tables_match_numpy_at_every_chunking(fitted, rows):
    model, _, values, _, sample = fitted
    cells = read_array(da.from_array(values, chunks=rows), MARKERS, sample=sample)
    results = model.map(cells).persist()
    summary = summarise(results, max_bytes=2**16)
    node, meta = results.node.compute(), results.metacluster.compute()
    expected = reference_tables(values, node, meta, sample, 36, 4, 3)
    for table, reference in zip(
        (summary.nodes, summary.metaclusters, summary.sample_nodes, summary.sample_metaclusters),
        expected,
        strict=True,
    ):
        np.testing.assert_array_equal(table["count"], reference[:, 0])
        np.testing.assert_allclose(table[MARKERS].to_numpy(), reference[:, 1:], atol=1e-6)


def test_sample_percentages_are_of_each_sample(fitted):
    model, cells, _, _, sample = fitted
    table = summarise(model.map(cells)).sample_metaclusters
    totals = np.bincount(sample)
    np.testing.assert_allclose(table["percentage"], 100 * table["count"] / totals[table.index // 4])
    assert list(table["sample"].unique()) == ["sample-0", "sample-1", "sample-2"]


def test_summary_writes_parquet_and_anndata(fitted, tmp_path):
    model, cells, *_ = fitted
    summary = summarise(model.map(cells))
    files = summary.write_parquet(tmp_path / "tables")
    pd.testing.assert_frame_equal(pd.read_parquet(files[2]), summary.sample_nodes)
    adata = summary.to_anndata(model)
    assert adata.shape == (36, 4) and adata.uns["sample_node_counts"].shape == (3, 36)
    adata.write_h5ad(tmp_path / "nodes.h5ad")


def test_saved_model_maps_new_cells_as_the_original(fitted, tmp_path):
    model, cells, *_ = fitted
    model.save(tmp_path / "model")
    loaded = FlowSOM.load(tmp_path / "model")
    np.testing.assert_array_equal(
        loaded.map(cells).metacluster.compute(), model.map(cells).metacluster.compute()
    )
    np.testing.assert_array_equal(loaded.thresholds_, model.thresholds_)


def test_load_refuses_a_folder_that_is_no_model(tmp_path):
    with pytest.raises(ValueError, match="not a saved FlowSOM model"):
        FlowSOM.load(tmp_path)


def test_flowsom_shrinks_a_bubble_from_flowsoms_start_radius_to_the_node_alone(fitted):
    from dasksom.cytometry.model import FINAL_RADIUS, start_radius

    model = fitted[0]
    assert start_radius(10, 10) == 6.0
    assert model.som_.neighborhood == "bubble"
    assert model.som_.sigma == (start_radius(model.xdim, model.ydim), FINAL_RADIUS)
    assert FINAL_RADIUS < 1.0
