"""Regime diagnostics on BMU series with a known answer: frequencies and trends, transitions
that do not cross breaks, residence times, composites and frequency comparison."""

import numpy as np
import pandas as pd
import pytest

xr = pytest.importorskip("xarray")

from dasksom.climate import (  # noqa: E402
    compare_frequencies,
    composites,
    frequencies,
    frequency_trend,
    hit_counts,
    residence_times,
    segments,
    transitions,
)


def series(labels, time=None, chunks=3):
    labels = np.asarray(labels)
    if time is None:
        time = pd.date_range("2000-01-01", periods=labels.shape[-1], freq="D")
    dims = ("time",) if labels.ndim == 1 else ("member", "time")
    return xr.DataArray(labels, dims=dims, coords={"time": time}).chunk({"time": chunks})


def two_winters():
    """Two DJF seasons of 3 days each: Dec 30 - Jan 1 of 2000/01 and of 2001/02."""
    first = pd.date_range("2000-12-30", periods=3, freq="D")
    second = pd.date_range("2001-12-30", periods=3, freq="D")
    return first.append(second)


def test_hit_counts_group_by_season():
    time = pd.to_datetime(["2000-01-05", "2000-01-06", "2000-07-01", "2000-07-02"])
    counts = hit_counts(series([0, 1, 1, 1], time), 2, "time.season")
    assert counts.dims == ("season", "node")
    assert counts.sel(season="DJF").values.tolist() == [1, 1]
    assert counts.sel(season="JJA").values.tolist() == [0, 2]


def test_frequencies_add_up_to_one_per_group_and_skip_unassigned_samples():
    freq = frequencies(series([0, 0, -1, 2, 2, 2]), 3)
    np.testing.assert_allclose(freq.values, [0.4, 0.0, 0.6])


def test_frequency_trend_recovers_a_planted_slope_and_its_significance():
    years = np.arange(2000, 2020)
    labels, time = [], []
    for i, year in enumerate(years):
        hits_of_zero = 20 + 2 * i
        labels += [0] * hits_of_zero + [1] * (100 - hits_of_zero)
        time += list(pd.date_range(f"{year}-01-01", periods=100, freq="D"))
    trend = frequency_trend(series(labels, pd.DatetimeIndex(time), chunks=500), 2)
    assert trend["slope"].sel(node=0) == pytest.approx(0.02)
    assert trend["slope"].sel(node=1) == pytest.approx(-0.02)
    assert float(trend["p_value"].sel(node=0)) < 1e-6


def test_a_trendless_node_has_a_large_p_value():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 3650)
    time = pd.date_range("2000-01-01", periods=3650, freq="D")
    trend = frequency_trend(series(labels, time, chunks=1000), 2)
    assert float(trend["p_value"].sel(node=0)) > 0.05


def test_segments_start_after_every_time_gap():
    found = segments(series([0] * 6, two_winters()))
    assert found.tolist() == [0, 0, 0, 1, 1, 1]


def test_segments_start_when_the_within_label_changes():
    time = pd.date_range("2000-02-27", periods=4, freq="D")
    assert segments(series([0] * 4, time), within="time.season").tolist() == [0, 0, 0, 1]


def test_transitions_do_not_count_pairs_across_a_gap_between_winters():
    counts = transitions(series([0, 0, 0, 1, 1, 1], two_winters()), 2)["count"]
    assert counts.values.tolist() == [[2, 0], [0, 2]]


def test_transitions_do_not_count_pairs_across_ensemble_members():
    labels = [[0, 0, 0], [1, 1, 1]]
    counts = transitions(series(labels), 2)["count"]
    assert counts.values.tolist() == [[2, 0], [0, 2]]


def test_transitions_do_not_count_pairs_across_a_season_break_when_asked():
    time = pd.date_range("2000-02-27", periods=4, freq="D")
    counts = transitions(series([0, 0, 0, 1], time), 2, within="time.season")["count"]
    assert counts.values.tolist() == [[2, 0], [0, 0]]


def test_lag_k_transitions_pair_samples_k_steps_apart():
    result = transitions(series([0, 1, 0, 1, 0]), 2, lag=2)
    assert result["count"].values.tolist() == [[2, 0], [0, 1]]
    np.testing.assert_allclose(result["probability"].values, [[1.0, 0.0], [0.0, 1.0]])


def test_transition_probabilities_of_a_node_never_left_are_nan():
    probability = transitions(series([0, 0, 1]), 3)["probability"].values
    assert np.isnan(probability[2]).all()
    np.testing.assert_allclose(probability[0], [0.5, 0.5, 0.0])


def test_residence_times_are_run_lengths_cut_at_breaks():
    result = residence_times(series([0, 0, 0, 0, 1, 1], two_winters()), 2)
    np.testing.assert_allclose(result["mean_residence"].values, [2.0, 2.0])
    assert result["n_runs"].values.tolist() == [2, 1]
    assert result["distribution"].sel(node=0).values.tolist() == [1, 0, 1]


def test_residence_times_yearly_maxima_by_the_year_a_run_starts():
    result = residence_times(series([0, 0, 0, 1, 0, 0], two_winters()), 2)
    assert result["year"].values.tolist() == [2000, 2001, 2002]
    assert result["yearly_max"].sel(node=0).values.tolist() == [3, 2, 0]
    assert result["yearly_max"].sel(year=2001).values.tolist() == [2, 1]


def test_composites_are_per_node_means_of_another_variable():
    labels = np.array([0, 1, 0, 1, 1, 2])
    values = np.arange(12.0).reshape(6, 2)
    values[5, 1] = np.nan
    other = xr.DataArray(
        values, dims=("time", "x"), coords={"time": series(labels)["time"], "x": [10, 20]}
    ).chunk({"time": 4})
    found = composites(series(labels), other, 3)
    np.testing.assert_allclose(found["mean"].sel(node=0).values, values[[0, 2]].mean(axis=0))
    np.testing.assert_allclose(found["mean"].sel(node=2).values, [10.0, np.nan])
    overall = np.nanmean(values, axis=0)
    np.testing.assert_allclose(
        found["anomaly"].sel(node=1).values, values[[1, 3, 4]].mean(axis=0) - overall
    )
    assert found["count"].values.tolist() == [2, 3, 1]


def test_composite_anomalies_against_a_monthly_climatology():
    time = pd.to_datetime(["2000-01-01", "2000-01-02", "2000-02-01", "2000-02-02"])
    other = xr.DataArray([[1.0], [3.0], [10.0], [30.0]], dims=("time", "x"), coords={"time": time})
    found = composites(series([0, 1, 0, 1], time), other, 2, climatology="time.month")
    np.testing.assert_allclose(found["anomaly"].values[:, 0], [(-1 - 10) / 2, (1 + 10) / 2])


def test_composites_refuse_a_variable_on_other_samples():
    labels = series([0, 1, 0])
    other = xr.DataArray(
        np.zeros((3, 1)),
        dims=("time", "x"),
        coords={"time": pd.date_range("1990-01-01", periods=3)},
    )
    with pytest.raises(ValueError, match="different 'time' coordinates"):
        composites(labels, other, 2)


def test_compare_frequencies_tells_a_changed_distribution_from_the_same_one():
    rng = np.random.default_rng(0)
    reference = series(rng.choice(3, 3000, p=[0.5, 0.3, 0.2]), chunks=1000)
    same = series(rng.choice(3, 3000, p=[0.5, 0.3, 0.2]), chunks=1000)
    shifted = series(rng.choice(3, 3000, p=[0.3, 0.3, 0.4]), chunks=1000)
    assert compare_frequencies(reference, same, 3).attrs["p_value"] > 0.01
    changed = compare_frequencies(reference, shifted, 3)
    assert changed.attrs["p_value"] < 1e-6
    assert changed["difference"].sel(node=2) == pytest.approx(0.2, abs=0.03)


def test_bmus_must_be_labelled():
    with pytest.raises(TypeError, match="DataArray"):
        hit_counts(np.array([0, 1]), 2)


def test_composites_of_a_time_series_have_one_value_per_node():
    labels = series([0, 1, 1, 0])
    index = xr.DataArray([1.0, 2.0, 4.0, 5.0], dims="time", coords={"time": labels["time"]})
    found = composites(labels, index, 2)
    assert found["mean"].values.tolist() == [3.0, 3.0]
    assert found["anomaly"].dims == ("node",)
