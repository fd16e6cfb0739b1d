"""nan_policy="ignore": NaN marks a missing value (design.md, "Missing values")."""

import dask.array as da
import numpy as np
import pytest

from dasksom import SOM
from dasksom.core import chunk_tasks, metrics
from dasksom.core.sums import partial_sums

from ..support import reference

METRICS = ["euclidean", "cosine", "manhattan"]


@pytest.fixture
def gappy():
    """60 rows of 5 features, 10% of values missing, one row with none observed."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(60, 5)) + rng.integers(0, 3, size=(60, 1)) * 4.0
    x[rng.random(x.shape) < 0.1] = np.nan
    x[17] = np.nan
    return x


@pytest.mark.parametrize("metric", METRICS)
def test_bmus_are_found_over_the_observed_features(gappy, metric):
    weights = np.random.default_rng(4).normal(size=(9, 5)) * 3
    found = chunk_tasks.predict_chunk(gappy, weights, metric, nan_policy="ignore")
    expected = [reference.bmu_observed(x, weights, metric) for x in gappy]
    np.testing.assert_array_equal(found, [-1 if b is None else b for b in expected])


@pytest.mark.parametrize("metric", METRICS)
def test_nearest_nodes_measure_the_distance_over_the_observed_features(gappy, metric):
    weights = np.random.default_rng(4).normal(size=(9, 5)) * 3
    found = chunk_tasks.nearest_chunk(gappy, weights, metric, nan_policy="ignore")
    for x, (bmu, far) in zip(gappy, found, strict=True):
        seen = ~np.isnan(x)
        if not seen.any():
            assert bmu == -1 and np.isnan(far)
            continue
        assert bmu == reference.bmu_observed(x, weights, metric)
        assert far == pytest.approx(reference.distance(x[seen], weights[int(bmu), seen], metric))


@pytest.mark.parametrize("metric", METRICS)
def test_partial_sums_count_each_feature_over_the_rows_that_observe_it(gappy, metric):
    weights = np.random.default_rng(4).normal(size=(9, 5)) * 3
    sums = partial_sums(gappy, weights, metric, nan_policy="ignore")
    bmus = [reference.bmu_observed(x, weights, metric) for x in gappy]
    for k in range(9):
        mine = gappy[[b == k for b in bmus]]
        np.testing.assert_allclose(sums.sums[k], np.nansum(mine, axis=0), atol=1e-12)
        np.testing.assert_array_equal(sums.feature_counts[k], (~np.isnan(mine)).sum(axis=0))
    assert sums.rows_without_values == 1 and sums.n_rows == 59


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("topology,pbc", [("hexagonal", False), ("square", True)])
def test_an_epoch_with_missing_values_matches_the_reference(gappy, metric, topology, pbc):
    start = np.random.default_rng(5).normal(size=(12, 5)) * 3
    som = SOM(
        4,
        3,
        topology=topology,
        pbc=pbc,
        metric=metric,
        init=start,
        epochs=1,
        sigma=1.5,
        chunks=17,
        nan_policy="ignore",
    ).fit(gappy)
    expected = reference.batch_epoch_observed(
        gappy, start, 1.5, 4, 3, topology, pbc, metric, "gaussian"
    )
    np.testing.assert_allclose(som.weights_, expected, rtol=1e-9)


def test_rows_without_values_are_reported_and_never_assigned(gappy):
    som = SOM(3, 3, epochs=2, random_state=0, nan_policy="ignore").fit(gappy)
    assert [h["rows_without_values"] for h in som.history_] == [1, 1]
    assert som.predict(gappy)[17] == -1
    assert np.isnan(som.transform(gappy)[17]).all()
    assert som.hit_counts(gappy).sum() == 59
    quality = som.quality(gappy)
    assert quality["n_samples"] == 59 and quality["rows_without_values"] == 1


@pytest.mark.parametrize("init", ["random", "sample", "pca"])
def test_every_initialisation_works_with_missing_values(gappy, init):
    som = SOM(3, 3, epochs=2, init=init, random_state=0, nan_policy="ignore").fit(gappy)
    assert np.isfinite(som.weights_).all()


def test_infinity_is_an_error_even_when_nan_is_ignored(gappy):
    gappy[5, 1] = np.inf
    with pytest.raises(ValueError, match="row 5, column 1"):
        SOM(3, 3, epochs=1, nan_policy="ignore").fit(gappy)


def test_missing_values_are_an_error_under_the_default_policy(gappy):
    with pytest.raises(ValueError, match="nan_policy='ignore'"):
        SOM(3, 3, epochs=1).fit(gappy)


def test_a_map_trained_with_a_tenth_of_values_missing_is_nearly_as_good():
    from sklearn.datasets import load_digits

    complete = load_digits().data / 16.0
    gappy = complete.copy()
    gappy[np.random.default_rng(0).random(gappy.shape) < 0.1] = np.nan
    settings = {"epochs": 10, "init": "pca", "random_state": 0, "chunks": 300}
    reference_map = SOM(10, 10, **settings).fit(complete)
    missing_map = SOM(10, 10, nan_policy="ignore", **settings).fit(da.from_array(gappy, 300))
    ratio = missing_map.quantization_error(complete) / reference_map.quantization_error(complete)
    print(f"QE on complete data, trained with 10% missing / complete: {ratio:.4f}")
    assert ratio < 1.03


# -- values too large for float32 --------------------------------------------------------------


def test_values_too_large_for_float32_train_the_scaled_map(blobs):
    start = blobs[:9]
    settings = {"epochs": 3, "init": start, "random_state": 0}
    plain = SOM(3, 3, **settings).fit(blobs)
    scale = 1e20
    big = SOM(3, 3, **{**settings, "init": start * scale}).fit((blobs * scale).astype(np.float32))
    assert all(np.isfinite(h["quantization_error"]) for h in big.history_)
    np.testing.assert_allclose(big.weights_ / scale, plain.weights_, rtol=1e-5)


def test_values_too_large_even_for_float64_are_refused_naming_the_column(blobs):
    data = blobs.copy()
    data[:, 3] *= 1e160
    with pytest.raises(ValueError, match="column 3 .*Rescale"):
        SOM(3, 3, epochs=2, random_state=0).fit(data)


def test_large_float32_chunks_compute_in_float64():
    x = np.full((4, 3), 3e19, dtype=np.float32)
    chunk, _, prepared = metrics.prepare(x, np.zeros((2, 3)), "euclidean")
    assert chunk.dtype == np.float64 and prepared.weights.dtype == np.float64
    assert metrics.prepare(x / 1e10, np.zeros((2, 3)), "euclidean")[0].dtype == np.float32


def test_plots_and_label_accuracy_leave_out_rows_without_values(gappy):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dasksom import plotting
    from dasksom.core.analysis import majority_label_accuracy

    som = SOM(3, 3, epochs=2, random_state=0, nan_policy="ignore").fit(gappy)
    labels = np.arange(60) % 3
    nodes = som.best_matching_units(gappy)
    assert 0 <= majority_label_accuracy(nodes, labels, 9) <= 1
    for draw in (
        lambda: plotting.plot_hits(som, gappy),
        lambda: plotting.plot_labels(som, gappy, labels),
        lambda: plotting.plot_projection(som, gappy, labels=labels),
    ):
        fig, ax = draw()
        plt.close(fig)
    fig, ax = plotting.plot_projection(som, None, bmus=nodes)
    assert sum(len(c.get_offsets()) for c in ax.collections[1:]) == 59
    plt.close(fig)
