"""The planted-regime field: a map trained on it recovers the three regimes, their transition
matrix and their residence times, within the tolerances stated here."""

import numpy as np
import pytest

pytest.importorskip("xarray")

from dasksom.climate import (  # noqa: E402
    FieldSOM,
    composites,
    planted_regimes,
    residence_times,
    transitions,
)

# Tolerances: 12 winters x 2 members = 2160 days, so a transition probability is estimated from
# ~700 departures (standard error ~0.015); 0.06 is four of them.  Runs are cut at the end of
# each 90-day winter, which shortens the mean a little (a few percent for means of 4-5 days).
PURITY = 0.97
PATTERN_CORRELATION = 0.97
TRANSITION_TOLERANCE = 0.06
RESIDENCE_RELATIVE_TOLERANCE = 0.12


@pytest.fixture(scope="module")
def planted():
    data = planted_regimes(n_winters=12, n_members=2, seed=1)
    model = FieldSOM(
        height=1, width=3, topology="square", epochs=8, sigma=(1.0, 0.1), random_state=0
    )
    model.fit(data["slp"].chunk({"time": 250}), sample_dims=("member", "time"), weights="coslat")
    bmus = model.bmus(data["slp"].chunk({"time": 250})).compute()
    truth = data["regime"].values.ravel()
    confusion = np.zeros((3, 3), dtype=int)
    np.add.at(confusion, (truth, bmus.values.ravel()), 1)
    node_of_regime = confusion.argmax(axis=1)
    return data, model, bmus, confusion, node_of_regime


def test_each_planted_regime_lands_on_its_own_node(planted):
    _, _, _, confusion, node_of_regime = planted
    assert sorted(node_of_regime) == [0, 1, 2]
    purity = confusion.max(axis=1) / confusion.sum(axis=1)
    assert purity.min() >= PURITY


def test_prototypes_reproduce_the_planted_patterns_in_hpa(planted):
    data, model, _, _, node_of_regime = planted
    prototypes = model.prototypes()
    for regime, node in enumerate(node_of_regime):
        planted_mean = data["slp"].where(data["regime"] == regime).mean(("member", "time"))
        found = prototypes.sel(node=node)
        keep = np.isfinite(planted_mean.values)
        r = np.corrcoef(found.values[keep], planted_mean.values[keep])[0, 1]
        assert r >= PATTERN_CORRELATION
        np.testing.assert_array_equal(np.isnan(found.values), ~keep)
        assert abs(float(found.max()) - float(planted_mean.max())) < 2.0


def test_transition_matrix_is_recovered(planted):
    data, _, bmus, _, node_of_regime = planted
    found = transitions(bmus, 3)["probability"].values
    in_regime_order = found[np.ix_(node_of_regime, node_of_regime)]
    error = np.abs(in_regime_order - data["transition_matrix"].values).max()
    assert error <= TRANSITION_TOLERANCE


def test_residence_times_are_recovered(planted):
    data, _, bmus, _, node_of_regime = planted
    mean = residence_times(bmus, 3)["mean_residence"].values[node_of_regime]
    expected = data["expected_residence"].values
    np.testing.assert_allclose(mean, expected, rtol=RESIDENCE_RELATIVE_TOLERANCE)


def test_composites_of_another_variable_recover_each_regimes_temperature(planted):
    data, _, bmus, _, node_of_regime = planted
    found = composites(bmus, data["t2m"].chunk({"time": 300}), 3)
    warmth = np.array([2.0, -4.0, 1.0])
    for regime, node in enumerate(node_of_regime):
        at_equator_of_domain = found["mean"].sel(node=node).isel(lat=0).mean()
        expected = warmth[regime] * np.cos(np.deg2rad(30.0))
        assert abs(float(at_equator_of_domain) - expected) < 0.3
