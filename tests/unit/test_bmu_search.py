"""Choosing the BMU search (core.bmu_search, training.search_plans) and running it in SOM.

The pruned kernel's own exactness is in test_pruned.py; here: the plan, and that every user of
the search (training, predict, evaluate, checkpoints, a cluster) gets brute force's answer.
"""

import numpy as np
import pytest

import dasksom
from dasksom import SOM
from dasksom.core.bmu_search import (
    BRUTE,
    MAX_COMPONENTS,
    choose_plan,
    n_components_for,
    plan_for_weights,
    predicted_costs,
    pruning_can_pay,
)
from dasksom.core.metrics import PreparedWeights
from dasksom.core.search import best_matching_units
from dasksom.training.search_plans import SearchPlanner

from ..support.faults import killed_in_epoch

METRICS = ["euclidean", "cosine", "manhattan"]


def low_rank(n_rows=3000, n_features=120, rank=4, seed=0):
    """Rows near a ``rank``-dimensional plane in ``n_features`` dimensions (as images are)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n_rows, rank)) * 10
    return latent @ rng.normal(size=(rank, n_features)) + rng.normal(size=(n_rows, n_features))


def separated(n_rows=600, n_features=24, n_centres=12, seed=0):
    """float64 rows around well-separated centres in a low-dimensional subspace: no BMU of a
    map trained on them is a near tie."""
    rng = np.random.default_rng(seed)
    centres = (rng.normal(size=(n_centres, 3)) * 20) @ rng.normal(size=(3, n_features))
    rows = centres[rng.integers(0, n_centres, n_rows)]
    return rows + rng.normal(scale=0.5, size=(n_rows, n_features))


def plan(requested, rows, n_nodes, dtype=np.float32, metric="euclidean"):
    weights = rows[np.random.default_rng(1).choice(len(rows), n_nodes, replace=False)]
    return choose_plan(requested, rows, weights, metric, dtype)


# --- the plan ---------------------------------------------------------------------------------


def test_brute_is_obeyed_whatever_the_data():
    assert plan("brute", low_rank(), 900) == BRUTE


def test_pruned_is_obeyed_even_where_it_does_not_pay():
    noise = np.random.default_rng(0).uniform(size=(2000, 50))
    chosen = plan("pruned", noise, 256)
    assert chosen.pruned and chosen.n_components == n_components_for(50)
    assert chosen.predicted_ratio > 1


def test_auto_prunes_high_dimensional_data_with_low_dimensional_structure_on_a_large_map():
    chosen = plan("auto", low_rank(n_features=784), 2500)
    assert chosen.pruned and chosen.predicted_ratio < 0.8


@pytest.mark.parametrize(
    ("rows", "n_nodes"),
    [
        (low_rank(n_features=8, rank=2), 400),  # few features, as cytometry's markers
        (np.random.default_rng(0).uniform(size=(2000, 50)), 400),  # no structure
        (low_rank(), 9),  # a tiny map
    ],
    ids=["low dimension", "uniform noise", "tiny map"],
)
def test_auto_searches_by_brute_force_where_pruning_does_not_pay(rows, n_nodes):
    chosen = plan("auto", rows, n_nodes)
    assert not chosen.pruned and chosen.predicted_ratio >= 0.8


def test_a_sample_holding_nan_gives_brute_force_and_leaves_the_error_to_the_epoch():
    rows = low_rank()
    rows[3, 3] = np.nan
    assert plan("auto", rows, 900) == BRUTE


def test_unknown_search_is_refused_naming_the_choices():
    with pytest.raises(ValueError, match="auto, brute, pruned"):
        plan("fast", low_rank(), 900)


def test_weights_that_could_overflow_float32_get_no_index_and_so_brute_force():
    chosen = plan("pruned", low_rank(), 100)
    assert chosen.index(np.full((100, 120), 1e30), np.float32) is None
    assert chosen.index(np.full((100, 120), 1e30), np.float64) is not None


@pytest.mark.parametrize(("n_features", "k"), [(1, 1), (8, 2), (50, 12), (784, MAX_COMPONENTS)])
def test_the_bound_takes_a_quarter_of_the_features_up_to_64_axes(n_features, k):
    assert n_components_for(n_features) == k


def test_predicted_pruned_cost_grows_with_the_distances_it_must_compute():
    cheap = predicted_costs(2500, 784, 64, evaluated=10)
    dear = predicted_costs(2500, 784, 64, evaluated=2500)
    assert cheap[0] == dear[0] and cheap[1] < cheap[0] < dear[1]


def test_a_map_without_its_sample_prunes_on_the_axes_of_its_weights():
    weights = low_rank(n_rows=400)
    chosen = plan_for_weights(weights, "euclidean")
    np.testing.assert_allclose(chosen.mean, weights.mean(axis=0))
    np.testing.assert_allclose(chosen.basis.T @ chosen.basis, np.eye(30), atol=1e-12)


# --- the search with a plan's index -----------------------------------------------------------


@pytest.mark.parametrize("metric", METRICS)
def test_a_pruned_plan_finds_brute_forces_units_and_runners_up(metric):
    rows = separated()
    weights = rows[::50] + 0.1
    chosen = choose_plan("pruned", rows, weights, metric, np.float64)
    prepared = PreparedWeights.build(weights, metric, np, np.float64)
    brute = best_matching_units(rows, prepared, second=True)
    pruned = best_matching_units(rows, prepared, second=True, index=chosen.index(weights, "f8"))
    np.testing.assert_array_equal(pruned[0], brute[0])
    np.testing.assert_array_equal(pruned[1], brute[1])


def test_rows_with_missing_values_are_searched_by_brute_force_despite_an_index():
    rows = separated()
    weights = rows[::50] + 0.1
    index = choose_plan("pruned", rows, weights, "euclidean", np.float64).index(weights, "f8")
    prepared = PreparedWeights.build(weights, "euclidean", np, np.float64)
    mask = np.ones(rows.shape, dtype=bool)
    mask[::3, 0] = False
    masked = np.where(mask, rows, 0)
    np.testing.assert_array_equal(
        best_matching_units(masked, prepared, mask=mask, index=index),
        best_matching_units(masked, prepared, mask=mask),
    )


# --- when training chooses --------------------------------------------------------------------


def planner_on(rows, requested="pruned", n_nodes=900):
    import dask.array as da

    data = da.from_array(rows, chunks=500)
    return SearchPlanner.for_data(requested, data, "euclidean", "raise", n_nodes)


def test_training_chooses_again_only_when_the_radius_has_halved():
    rows = low_rank()
    planner = planner_on(rows)
    weights = rows[:900]
    chosen = [planner.plan_for(weights, sigma)[1] for sigma in (8.0, 6.0, 4.1, 4.0, 2.5, 1.9)]
    assert chosen == [True, False, False, True, False, True]


def test_a_planner_for_missing_values_never_samples_and_searches_by_brute_force():
    import dask.array as da

    planner = SearchPlanner.for_data("auto", da.zeros((100, 8)), "euclidean", "ignore", 4)
    assert planner.sample is None and planner.plan_for(np.zeros((4, 8)), 1.0) == (BRUTE, False)


def test_auto_never_samples_a_map_that_pruning_cannot_pay_for():
    rows = low_rank()
    assert not pruning_can_pay(9, rows.shape[1], rows.shape[0])
    planner = planner_on(rows, "auto", n_nodes=9)
    assert planner.sample is None and planner.plan_for(rows[:9], 1.0) == (BRUTE, False)


def test_training_a_small_map_never_imports_numba_on_its_workers():
    from distributed import Client, LocalCluster

    # A cluster of its own: the session's shared one may have pruned already.
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        som = SOM(3, 3, epochs=1, random_state=0).fit(low_rank())
        loaded = client.run(lambda: "numba" in __import__("sys").modules)
    assert som.search_plan_.strategy == "brute"
    assert not hasattr(som, "search_warm_up_seconds_")
    assert not any(loaded.values()), loaded


def test_a_resumed_planner_takes_back_the_plan_and_the_radius_it_was_chosen_at():
    rows = low_rank()
    first = planner_on(rows)
    history = []
    for sigma in (8.0, 5.0):
        chosen_plan, chosen = first.plan_for(rows[:900], sigma)
        history.append({"sigma": sigma, **SearchPlanner.record(chosen_plan, chosen)})
    resumed = planner_on(rows)
    resumed.resume(history)
    assert resumed.chosen_at_sigma == 8.0
    assert resumed.plan.strategy == first.plan.strategy
    np.testing.assert_array_equal(resumed.plan.basis, first.plan.basis)
    assert resumed.plan_for(rows[:900], 4.5) == (resumed.plan, False)


# --- SOM: every user of the search gets brute force's answer ----------------------------------


@pytest.mark.parametrize("topology", ["hexagonal", "square"])
@pytest.mark.parametrize("pbc", [False, True])
@pytest.mark.parametrize("metric", METRICS)
def test_pruned_and_brute_force_train_the_same_map(topology, pbc, metric):
    rows = separated()
    options = {"topology": topology, "pbc": pbc, "metric": metric, "epochs": 4}
    brute = SOM(6, 7, random_state=0, bmu_search="brute", **options).fit(rows)
    pruned = SOM(6, 7, random_state=0, bmu_search="pruned", **options).fit(rows)
    np.testing.assert_array_equal(pruned.weights_, brute.weights_)
    assert {h["bmu_search"] for h in pruned.history_} == {"pruned"}


@pytest.mark.parametrize("chunks", [600, 170, 64])
def test_pruned_training_is_exact_for_every_chunking(chunks):
    rows = separated()
    brute = SOM(6, 6, random_state=0, bmu_search="brute", chunks=chunks).fit(rows)
    pruned = SOM(6, 6, random_state=0, bmu_search="pruned", chunks=chunks).fit(rows)
    np.testing.assert_array_equal(pruned.weights_, brute.weights_)


def test_predict_evaluate_and_score_with_the_pruned_search_equal_brute_forces():
    rows = separated()
    pruned = SOM(6, 6, random_state=0, bmu_search="pruned").fit(rows)
    brute = SOM(6, 6, random_state=0, bmu_search="brute").fit(rows)
    np.testing.assert_array_equal(pruned.predict(rows), brute.predict(rows))
    found, expected = pruned.evaluate(rows, keep_bmus=True), brute.evaluate(rows, keep_bmus=True)
    np.testing.assert_array_equal(found["bmus"], expected["bmus"])
    np.testing.assert_array_equal(found["hit_counts"], expected["hit_counts"])
    assert found["topographic_error"] == expected["topographic_error"]
    np.testing.assert_allclose(found["quantization_error"], expected["quantization_error"])


def test_each_epoch_records_the_search_it_ran_and_whether_it_chose_it_then():
    som = SOM(6, 6, random_state=0, epochs=3, bmu_search="pruned").fit(separated())
    assert [h["search_chosen"] for h in som.history_][0] is True
    assert {h["bmu_search"] for h in som.history_} == {"pruned"}
    assert som.search_plan_.strategy == som.history_[-1]["bmu_search"]


def test_a_loaded_map_asked_to_prune_gives_the_units_of_brute_force(tmp_path):
    rows = separated()
    som = SOM(6, 6, random_state=0).fit(rows)
    som.save(tmp_path / "map.npz")
    loaded = dasksom.load(tmp_path / "map.npz").set_params(bmu_search="pruned")
    np.testing.assert_array_equal(
        loaded.predict(rows), som.set_params(bmu_search="brute").predict(rows)
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [({"nan_policy": "ignore"}, "nan_policy='ignore'"), ({"precision": "tf32"}, "tf32")],
)
def test_pruning_what_it_cannot_search_is_refused_naming_the_way_out(options, message):
    with pytest.raises(ValueError, match=rf"(?s)bmu_search='pruned'.*{message}.*'auto'"):
        SOM(4, 4, bmu_search="pruned", **options).fit(separated())


def test_auto_with_a_narrow_precision_searches_by_brute_force():
    som = SOM(6, 6, random_state=0, epochs=2, precision="bfloat16").fit(separated())
    assert {h["bmu_search"] for h in som.history_} == {"brute"}


def test_a_killed_pruned_fit_resumes_to_the_same_map(tmp_path):
    rows = low_rank(n_rows=1500, n_features=64)
    options = {"epochs": 6, "random_state": 0, "bmu_search": "auto"}
    whole = SOM(12, 12, **options).fit(rows)
    path = tmp_path / "ckpt.npz"
    with killed_in_epoch(4), pytest.raises(KeyboardInterrupt):
        SOM(12, 12, checkpoint=path, **options).fit(rows)
    resumed = SOM(12, 12, checkpoint=path, **options).fit(rows)
    np.testing.assert_array_equal(resumed.weights_, whole.weights_)
    assert [h["bmu_search"] for h in resumed.history_] == [h["bmu_search"] for h in whole.history_]


def test_pruned_training_on_a_local_cluster_equals_brute_force_there(client):
    rows = separated()
    brute = SOM(6, 6, random_state=0, bmu_search="brute", chunks=150).fit(rows)
    pruned = SOM(6, 6, random_state=0, bmu_search="pruned", chunks=150).fit(rows)
    np.testing.assert_array_equal(pruned.weights_, brute.weights_)
    np.testing.assert_array_equal(pruned.predict(rows), brute.predict(rows))


def test_the_command_line_trains_with_the_search_it_is_given(tmp_path):
    from dasksom.cli.main import main

    np.save(tmp_path / "x.npy", separated())
    out = tmp_path / "out"
    args = ["train", str(tmp_path / "x.npy"), "--size", "5x5", "--epochs", "2", "--workers", "0"]
    assert main([*args, "--output", str(out), "--bmu-search", "pruned", "--no-plots"]) == 0
    trained = dasksom.load(out / "map.npz")
    assert trained.bmu_search == "pruned"
    assert {h["bmu_search"] for h in trained.history_} == {"pruned"}
