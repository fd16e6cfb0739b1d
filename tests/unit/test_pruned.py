"""The pruned BMU search (dasksom.core.pruned) against brute force and the plain reference.

Equality is exact except between nodes whose true distances are equal within rounding: where
the pruned and the brute-force BMU differ, their float64 distances agree to a relative 1e-6,
and that happens for few rows.
"""

import numpy as np
import pytest

from dasksom.core import pruned
from dasksom.core.lattice import NEIGHBOR_DISTANCE, Lattice
from dasksom.core.metrics import PreparedWeights
from dasksom.core.pruned import (
    PrunedIndex,
    principal_basis,
    pruned_best_matching_units,
)
from dasksom.core.search import best_matching_units

from ..support import reference

METRICS = ["euclidean", "cosine", "manhattan"]
# Near-ties: two nodes whose float64 distances agree to this relative tolerance may swap.
TIE_TOLERANCE = 1e-6
# At most this share of rows may differ from brute force (all of them near-ties).
RARE = 0.01


def clustered(rng, n_rows, n_nodes, n_features, scale=1.0, offset=0.0):
    """Rows around a few centres and nodes near the same centres: a map-like problem."""
    centres = rng.normal(scale=4.0, size=(6, n_features))
    x = centres[rng.integers(0, 6, n_rows)] + rng.normal(size=(n_rows, n_features))
    w = centres[rng.integers(0, 6, n_nodes)] + rng.normal(scale=0.7, size=(n_nodes, n_features))
    return (x * scale + offset).astype(np.float32), (w * scale + offset).astype(np.float32)


def brute(x, w, metric, second=False, dtype=np.float32):
    prepared = PreparedWeights.build(w, metric, np, dtype)
    return best_matching_units(x.astype(dtype), prepared, second=second)


def distances64(x, w, metric):
    """(n, M) float64 distances of the metric (cosine: 1 - similarity), from the float32 values."""
    x = np.asarray(x, dtype=np.float64)
    w = np.asarray(w, dtype=np.float64)
    if metric == "manhattan":
        return np.abs(x[:, None, :] - w[None, :, :]).sum(-1)
    if metric == "cosine":
        xn = np.maximum(np.linalg.norm(x, axis=1), np.finfo(float).tiny)
        wn = np.maximum(np.linalg.norm(w, axis=1), np.finfo(float).tiny)
        return 1.0 - (x @ w.T) / xn[:, None] / wn[None, :]
    return ((x[:, None, :] - w[None, :, :]) ** 2).sum(-1)


def assert_same_units(found, expected, x, w, metric, rare=RARE):
    """Equal, or near-ties: float64 distances within TIE_TOLERANCE, for few rows."""
    found, expected = np.asarray(found), np.asarray(expected)
    differ = np.flatnonzero(found != expected)
    assert differ.size <= max(1, rare * found.size), f"{differ.size} of {found.size} rows differ"
    if differ.size:
        d = distances64(x[differ], w, metric)
        mine = d[np.arange(differ.size), found[differ]]
        theirs = d[np.arange(differ.size), expected[differ]]
        scale = np.maximum(np.abs(mine), np.abs(theirs)) + 1e-12
        np.testing.assert_array_less(np.abs(mine - theirs) / scale, TIE_TOLERANCE)


def search(x, w, metric="euclidean", k=4, rows=None, **options):
    index = PrunedIndex.from_rows(w, x if rows is None else rows, k, metric)
    return pruned_best_matching_units(x, index, **options)


@pytest.fixture
def problem():
    return clustered(np.random.default_rng(0), 600, 40, 12)


@pytest.mark.parametrize("metric", METRICS)
def test_best_units_match_brute_force(problem, metric):
    x, w = problem
    found = search(x, w, metric)
    assert_same_units(found.best, brute(x, w, metric), x, w, metric)
    assert found.second is None


@pytest.mark.parametrize("metric", METRICS)
def test_best_units_match_plain_reference(metric):
    x, w = clustered(np.random.default_rng(1), 120, 25, 7)
    expected = [reference.bmu(row.astype(float), w.astype(float), metric) for row in x]
    assert_same_units(search(x, w, metric, k=3).best, expected, x, w, metric)


@pytest.mark.parametrize("metric", METRICS)
def test_second_best_units_match_brute_force(problem, metric):
    x, w = problem
    found = search(x, w, metric, second=True)
    best, runner_up = brute(x, w, metric, second=True)
    assert_same_units(found.best, best, x, w, metric)
    same_best = found.best == best
    assert_same_units(found.second[same_best], runner_up[same_best], x[same_best], w, metric)


def test_topographic_error_equals_brute_force():
    rng = np.random.default_rng(2)
    lattice = Lattice(6, 8, "hexagonal", False)
    x, w = clustered(rng, 800, lattice.n_nodes, 10)
    found = search(x, w, second=True)
    best, runner_up = brute(x, w, "euclidean", second=True)

    def error(a, b):
        return float(np.mean(lattice.pair_distances(a, b) > NEIGHBOR_DISTANCE))

    assert error(found.best, found.second) == pytest.approx(error(best, runner_up), abs=2e-3)


@pytest.mark.parametrize("metric", METRICS)
def test_duplicate_prototypes_tie_to_the_lowest_index(metric):
    rng = np.random.default_rng(3)
    distinct = rng.normal(size=(10, 7)).astype(np.float32)
    w = np.concatenate([distinct, distinct[::-1], distinct])  # node j, 19 - j, 20 + j equal
    x = (distinct[rng.integers(0, 10, 300)] + 0.3 * rng.normal(size=(300, 7))).astype(np.float32)
    found = search(x, w, metric, k=3, second=True)
    best, runner_up = brute(x, w, metric, second=True)
    np.testing.assert_array_equal(found.best, best)
    np.testing.assert_array_equal(found.best, np.minimum(found.best % 20, 19 - found.best % 20))
    np.testing.assert_array_equal(found.second, runner_up)
    np.testing.assert_array_equal(found.second, 19 - found.best)


@pytest.mark.parametrize("metric", METRICS)
def test_constant_features_are_harmless(metric):
    x, w = clustered(np.random.default_rng(4), 400, 30, 9)
    x[:, [0, 4]] = 2.5
    w[:, [0, 4]] = 2.5
    assert_same_units(search(x, w, metric).best, brute(x, w, metric), x, w, metric)


def test_more_components_than_features_are_clipped_by_the_helper():
    x, w = clustered(np.random.default_rng(5), 300, 20, 5)
    mean, basis = principal_basis(x, n_components=12)
    assert basis.shape == (5, 5)
    np.testing.assert_allclose(basis.T @ basis, np.eye(5), atol=1e-12)
    found = pruned_best_matching_units(x, PrunedIndex.build(w, basis, mean))
    assert_same_units(found.best, brute(x, w, "euclidean"), x, w, "euclidean")


def test_more_columns_than_features_are_refused():
    w = np.zeros((4, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="cannot exist in 3 dimensions"):
        PrunedIndex.build(w, np.zeros((3, 4)), np.zeros(3))


def test_a_full_basis_leaves_almost_only_the_winner():
    x, w = clustered(np.random.default_rng(6), 400, 30, 6)
    found = search(x, w, k=6)
    assert_same_units(found.best, brute(x, w, "euclidean"), x, w, "euclidean")
    assert np.median(found.candidates) <= 2


@pytest.mark.parametrize("metric", METRICS)
def test_no_components_bound_by_norms_alone(problem, metric):
    x, w = problem
    found = search(x, w, metric, k=0)
    assert found.candidates.max() <= w.shape[0]
    assert_same_units(found.best, brute(x, w, metric), x, w, metric)


def test_rows_far_from_every_node():
    rng = np.random.default_rng(7)
    x, w = clustered(rng, 300, 30, 8)
    x[:100] = 1e3 * rng.normal(size=(100, 8))
    found = search(x, w, rows=x[100:], second=True)
    best, runner_up = brute(x, w, "euclidean", second=True)
    assert_same_units(found.best, best, x, w, "euclidean")


def test_huge_dynamic_range_between_features():
    rng = np.random.default_rng(8)
    x, w = clustered(rng, 500, 30, 8)
    scales = np.array([1e-3, 1e6, 1.0, 1e-3, 1e6, 10.0, 1e-3, 1e3], dtype=np.float32)
    x, w = x * scales, w * scales
    found = search(x, w, k=3)
    assert_same_units(found.best, brute(x, w, "euclidean"), x, w, "euclidean")


def test_data_far_from_the_origin_keeps_its_digits():
    # Around 1e4 float32 brute force loses the distances in ``x . w - |w|^2 / 2``; the
    # centred search does not, so it is held to the float64 search.
    x, w = clustered(np.random.default_rng(9), 500, 30, 8, offset=1e4)
    found = search(x, w, k=3)
    expected = brute(x.astype(np.float64), w.astype(np.float64), "euclidean", dtype=np.float64)
    assert_same_units(found.best, expected, x, w, "euclidean")


@pytest.mark.parametrize("metric", METRICS)
def test_uint8_rows_are_widened_block_by_block(metric, monkeypatch):
    rng = np.random.default_rng(10)
    x = rng.integers(0, 256, size=(300, 16)).astype(np.uint8)
    w = rng.uniform(0, 255, size=(25, 16)).astype(np.float32)
    monkeypatch.setattr(pruned, "PREPARE_BLOCK_ELEMENTS", 16 * 70)
    found = search(x, w, metric, rows=x.astype(np.float32))
    assert_same_units(found.best, brute(x.astype(np.float32), w, metric), x, w, metric)


def test_float16_rows_give_the_result_of_their_float32_copy():
    x, w = clustered(np.random.default_rng(11), 300, 25, 10)
    narrow = x.astype(np.float16)
    index = PrunedIndex.from_rows(w, x, 4)
    wide = pruned_best_matching_units(narrow.astype(np.float32), index)
    np.testing.assert_array_equal(pruned_best_matching_units(narrow, index).best, wide.best)


def test_a_single_row():
    x, w = clustered(np.random.default_rng(12), 1, 30, 6)
    found = search(x, w, rows=w, second=True)
    best, runner_up = brute(x, w, "euclidean", second=True)
    np.testing.assert_array_equal(found.best, best)
    np.testing.assert_array_equal(found.second, runner_up)


@pytest.mark.parametrize("metric", METRICS)
def test_a_single_node_is_best_and_second(metric):
    x, w = clustered(np.random.default_rng(13), 50, 1, 6)
    found = search(x, w, metric, rows=x, second=True)
    best, runner_up = brute(x, w, metric, second=True)
    np.testing.assert_array_equal(found.best, best)
    np.testing.assert_array_equal(found.second, runner_up)


def test_no_rows_give_empty_results():
    _, w = clustered(np.random.default_rng(14), 1, 10, 4)
    found = search(np.empty((0, 4), dtype=np.float32), w, rows=w, second=True)
    assert found.best.shape == found.second.shape == found.candidates.shape == (0,)


def test_cosine_zero_rows_and_zero_nodes_follow_brute_force():
    x, w = clustered(np.random.default_rng(15), 200, 20, 6)
    x[:5] = 0.0
    w[3] = 0.0
    found = search(x, w, "cosine", rows=x[5:], second=True)
    best, runner_up = brute(x, w, "cosine", second=True)
    np.testing.assert_array_equal(found.best[:5], best[:5])
    np.testing.assert_array_equal(found.second[:5], runner_up[:5])
    assert_same_units(found.best, best, x, w, "cosine")


@pytest.mark.parametrize("group", [1, 7, 5000])
def test_group_size_does_not_change_the_result(problem, group):
    x, w = problem
    whole = search(x, w, second=True)
    found = search(x, w, second=True, block_rows=group)
    np.testing.assert_array_equal(found.best, whole.best)
    np.testing.assert_array_equal(found.second, whole.second)


def test_previous_units_as_threshold_give_the_same_units(problem):
    x, w = problem
    index = PrunedIndex.from_rows(w, x, 4)
    plain = pruned_best_matching_units(x, index)
    guess = np.random.default_rng(16).integers(0, w.shape[0], x.shape[0])
    for previous in (plain.best, guess):
        found = pruned_best_matching_units(x, index, previous=previous)
        np.testing.assert_array_equal(found.best, plain.best)


def test_candidate_counts_are_reported_per_row(problem):
    x, w = problem
    found = search(x, w, second=True)
    assert found.candidates.shape == found.evaluated.shape == (x.shape[0],)
    assert found.candidates.min() >= 2
    assert np.all(found.candidates <= found.evaluated)
    assert found.evaluated.max() <= w.shape[0]
    assert 0 < found.fraction_evaluated(w.shape[0]) < 1


def test_the_bound_is_a_lower_bound_of_every_distance(problem):
    x, w = problem
    index = PrunedIndex.from_rows(w, x, 3)
    bounds = pruned._bound_rows(x, index, None, 64)
    scores = bounds.left.astype(np.float64) @ index.operand.astype(np.float64)
    centred = x.astype(np.float64) - index.mean.astype(np.float64)
    lower = (centred**2).sum(1)[:, None] + scores - bounds.slack[:, None]
    exact = distances64(x, w, "euclidean")
    assert np.all(lower <= exact * (1 + 1e-6) + 1e-6)


def test_a_rotated_basis_within_rounding_of_orthonormal_is_exact(problem):
    x, w = problem
    q, _ = np.linalg.qr(np.random.default_rng(17).normal(size=(12, 5)))
    index = PrunedIndex.build(w, q.astype(np.float32), x.mean(axis=0))
    assert 0 < index.gram_error < 1e-5
    found = pruned_best_matching_units(x, index)
    assert_same_units(found.best, brute(x, w, "euclidean"), x, w, "euclidean")


def test_float64_index_matches_float64_brute_force(problem):
    x, w = (a.astype(np.float64) for a in problem)
    index = PrunedIndex.from_rows(w, x, 4, dtype=np.float64)
    found = pruned_best_matching_units(x, index, second=True)
    best, _ = brute(x, w, "euclidean", second=True, dtype=np.float64)
    assert_same_units(found.best, best, x, w, "euclidean", rare=0)


def test_a_basis_far_from_orthonormal_is_refused():
    w = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="not orthonormal"):
        PrunedIndex.build(w, 2 * np.eye(4)[:, :2], np.zeros(4))


def test_masks_are_refused(problem):
    x, w = problem
    index = PrunedIndex.from_rows(w, x, 2)
    with pytest.raises(ValueError, match="missing values"):
        pruned_best_matching_units(x, index, mask=np.ones(x.shape, dtype=bool))


def test_non_finite_rows_are_refused(problem):
    x, w = problem
    x = x.copy()
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        search(x, w, rows=w)


def test_rows_wider_than_the_index_are_refused(problem):
    x, w = problem
    index = PrunedIndex.from_rows(w, x, 2)
    with pytest.raises(ValueError, match="wider"):
        pruned_best_matching_units(x.astype(np.float64), index)


def test_values_that_could_overflow_float32_are_refused():
    w = np.full((3, 4), 1e37, dtype=np.float32)
    with pytest.raises(ValueError, match="overflow"):
        PrunedIndex.build(w, np.eye(4)[:, :1], np.zeros(4))


def test_gamma_is_the_standard_bound():
    u = 2.0**-24
    assert pruned.gamma(10, u) == pytest.approx(10 * u / (1 - 10 * u), rel=1e-15)
    assert pruned.gamma(10, u) >= 10 * u / (1 - 10 * u)
    with pytest.raises(ValueError):
        pruned.gamma(2**23, u)


def test_rows_and_nodes_all_at_the_centre_are_searched_exactly():
    # One sample row: its mean is the row, every centred vector and squared norm is zero.
    x = np.random.default_rng(0).normal(size=(1, 10))
    weights = np.repeat(x, 5, axis=0)
    mean, basis = principal_basis(x, 2)
    found = pruned_best_matching_units(
        x.astype(np.float32), PrunedIndex.build(weights, basis, mean)
    )
    np.testing.assert_array_equal(found.best, [0])
