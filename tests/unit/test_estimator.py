import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.base import clone

import dasksom
from dasksom import SOM, Lattice
from dasksom.core.initialization import (
    MAX_COVARIANCE_FEATURES,
    initial_weights,
    principal_components,
)
from dasksom.estimator.som import NotFittedError

from ..support import reference
from ..support.faults import killed_in_epoch


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    data = rng.normal(size=(200, 5))
    return SOM(4, 6, epochs=3, random_state=0).fit(data), data


def test_fitted_attributes_have_the_documented_shapes(fitted):
    som, data = fitted
    assert som.weights_.shape == (24, 5)
    assert som.positions_.shape == (24, 2)
    assert som.n_features_in_ == 5
    assert len(som.history_) == som.n_iter_ == 3


def test_positions_follow_node_order(fitted):
    som, _ = fitted
    np.testing.assert_array_equal(som.positions_, Lattice(4, 6, "hexagonal").positions)


def test_predict_on_numpy_returns_numpy_bmus(fitted):
    som, data = fitted
    labels = som.predict(data)
    assert isinstance(labels, np.ndarray) and labels.shape == (200,)
    d = ((data[:, None, :] - som.weights_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, d.argmin(axis=1))


def test_predict_on_dask_stays_lazy(fitted):
    som, data = fitted
    labels = som.predict(da.from_array(data, chunks=(50, 5)))
    assert isinstance(labels, da.Array)
    np.testing.assert_array_equal(labels.compute(), som.predict(data))


def test_quantization_error_is_the_mean_distance_to_the_bmu(fitted):
    som, data = fitted
    d = np.sqrt(((data[:, None, :] - som.weights_[None]) ** 2).sum(-1))
    assert som.quantization_error(data) == pytest.approx(d.min(axis=1).mean(), rel=1e-10)


def test_topographic_error_counts_non_adjacent_best_pairs(fitted):
    som, data = fitted
    d = ((data[:, None, :] - som.weights_[None]) ** 2).sum(-1)
    order = d.argsort(axis=1)
    pos = som.positions_
    gap = np.linalg.norm(pos[order[:, 0]] - pos[order[:, 1]], axis=1)
    assert som.topographic_error(data) == pytest.approx((gap > 1.01).mean())


def test_get_and_set_params_follow_scikit_learn(fitted):
    som, _ = fitted
    copy = clone(som).set_params(height=7, metric="cosine")
    assert copy.get_params()["height"] == 7 and copy.metric == "cosine"
    assert not hasattr(copy, "weights_")


def test_save_and_load_round_trip_gives_identical_predictions(fitted, tmp_path):
    som, data = fitted
    som.save(tmp_path / "map.npz")
    loaded = dasksom.load(tmp_path / "map.npz")
    np.testing.assert_array_equal(loaded.weights_, som.weights_)
    np.testing.assert_array_equal(loaded.predict(data), som.predict(data))
    assert loaded.get_params() == som.get_params()
    assert loaded.history_ == som.history_


def test_save_writes_exactly_the_path_given_and_load_reads_it(fitted, tmp_path):
    som, _ = fitted
    som.save(tmp_path / "m.som")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.som"]
    np.testing.assert_array_equal(dasksom.load(tmp_path / "m.som").weights_, som.weights_)


def test_saved_map_loads_without_pickle(fitted, tmp_path):
    som, _ = fitted
    path = tmp_path / "map.npz"
    som.save(path)
    with np.load(path, allow_pickle=False) as stored:
        assert set(stored.files) == {"weights", "metadata"}


def test_an_init_array_is_saved_with_the_map(tmp_path):
    data = np.random.default_rng(1).normal(size=(50, 3))
    start = np.random.default_rng(2).normal(size=(4, 3))
    SOM(2, 2, init=start, epochs=1).fit(data).save(tmp_path / "m.npz")
    np.testing.assert_array_equal(dasksom.load(tmp_path / "m.npz").init, start)


def test_loading_a_corrupt_file_says_so(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(ValueError, match="not a readable dasksom map"):
        dasksom.load(path)


def test_loading_a_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        dasksom.load(tmp_path / "nothere.npz")


def test_fits_a_zarr_array_on_disk_by_path(tmp_path):
    import zarr

    data = np.random.default_rng(3).normal(size=(120, 4))
    stored = zarr.create_array(
        str(tmp_path / "x.zarr"), shape=data.shape, chunks=(40, 4), dtype="f8"
    )
    stored[:] = data
    from_path = SOM(3, 3, init="pca", epochs=2).fit(str(tmp_path / "x.zarr"))
    from_memory = SOM(3, 3, init="pca", epochs=2, chunks=40).fit(data)
    np.testing.assert_allclose(from_path.weights_, from_memory.weights_, rtol=1e-10)


def test_random_init_lies_within_each_features_range():
    data = np.random.default_rng(4).uniform([0, 10], [1, 20], size=(100, 2))
    weights = initial_weights(
        da.from_array(data), Lattice(5, 5), "random", np.random.default_rng(0)
    )
    assert (weights >= data.min(0)).all() and (weights <= data.max(0)).all()


def test_sample_init_draws_distinct_rows_of_the_data():
    data = np.arange(200.0).reshape(100, 2)
    weights = initial_weights(
        da.from_array(data, chunks=(30, 2)), Lattice(3, 4), "sample", np.random.default_rng(0)
    )
    rows = {tuple(r) for r in data}
    assert len({tuple(w) for w in weights}) == 12 and all(tuple(w) in rows for w in weights)


def test_pca_init_spans_the_first_two_components():
    rng = np.random.default_rng(5)
    data = rng.normal(size=(2000, 3)) * [5.0, 2.0, 0.1] + [1.0, -1.0, 3.0]
    weights = initial_weights(
        da.from_array(data, chunks=(300, 3)), Lattice(4, 6, "square"), "pca", rng
    )
    values, vectors = np.linalg.eigh(np.cov(data.T))
    centred = weights - data.mean(axis=0)
    np.testing.assert_allclose(centred.mean(axis=0), 0, atol=1e-9)
    along = centred @ vectors[:, ::-1]
    # The longer side (width, columns) runs along the first component, the rows along the second.
    np.testing.assert_allclose(np.abs(along[:, 0]).max(), np.sqrt(values[-1]), rtol=1e-6)
    np.testing.assert_allclose(np.abs(along[:, 1]).max(), np.sqrt(values[-2]), rtol=1e-6)
    np.testing.assert_allclose(along[:, 2], 0, atol=1e-9)
    first_row = along[:6, 0]
    assert np.all(np.diff(first_row) > 0) or np.all(np.diff(first_row) < 0)


@pytest.mark.parametrize("nan_policy", ["raise", "ignore"])
def test_wide_data_finds_its_principal_axes_in_two_passes_without_the_covariance(nan_policy):
    rng = np.random.default_rng(3)
    n_features = MAX_COVARIANCE_FEATURES + 100
    frame, _ = np.linalg.qr(rng.standard_normal((n_features, 3)))
    data = rng.standard_normal((1500, 3)) * [6.0, 3.0, 1.0] @ frame.T + 2.0
    data += 0.01 * rng.standard_normal(data.shape)
    values, vectors = np.linalg.eigh(np.cov(data.T))
    mean, axes, variances = principal_components(
        da.from_array(data, chunks=(400, n_features)), rng, nan_policy
    )
    np.testing.assert_allclose(mean, data.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(np.abs(axes @ vectors[:, ::-1][:, :2]), np.eye(2), atol=1e-6)
    np.testing.assert_allclose(variances, values[::-1][:2], rtol=1e-6)


BAD_PARAMS = [
    ({"height": 0}, r"'height' parameter of SOM must be an integer in \[1, inf\); got 0"),
    ({"width": -2}, r"'width' parameter of SOM must be an integer in \[1, inf\); got -2"),
    ({"height": 2.5}, "'height' parameter of SOM must be an integer"),
    ({"topology": "triangle"}, "'topology' parameter of SOM must be one of 'square', 'hexagonal'"),
    ({"metric": "chebyshev"}, "'metric' parameter of SOM must be one of 'euclidean'"),
    ({"neighborhood": "cone"}, "'neighborhood' parameter of SOM must be one of 'gaussian'"),
    ({"init": "kmeans"}, "'init' parameter of SOM must be one of 'random', 'sample', 'pca'"),
    ({"epochs": 0}, "'epochs' parameter of SOM must be an integer in"),
    ({"epochs": True}, "'epochs' parameter of SOM must be an integer in"),
    ({"pbc": "no"}, "'pbc' parameter of SOM must be True or False; got 'no'"),
    ({"pbc": 1}, "'pbc' parameter of SOM must be True or False; got 1"),
    ({"verbose": "yes"}, "'verbose' parameter of SOM must be True or False"),
    ({"sigma": -1.0}, "'sigma' parameter of SOM must be None; or a finite number in"),
    ({"sigma": (3.0, 0.0)}, "'sigma' parameter of SOM must be .*a pair"),
    ({"sigma": float("nan")}, "'sigma' parameter of SOM"),
    ({"sigma_decay": "cubic"}, "'sigma_decay' parameter of SOM must be one of 'exponential'"),
    ({"tol": -0.1}, "'tol' parameter of SOM must be None; or a finite number in"),
    ({"n_iter_no_change": 0}, "'n_iter_no_change' parameter of SOM"),
    ({"chunks": 0}, "'chunks' parameter of SOM"),
    ({"chunks": "lots"}, "'chunks' parameter of SOM must be 'auto', a number of rows, or a size"),
    ({"random_state": "seed"}, "'random_state' parameter of SOM"),
    ({"checkpoint": 5}, "'checkpoint' parameter of SOM must be None; or a path"),
    ({"topology": "hexagonal", "pbc": True, "height": 5}, "even height"),
    ({"init": np.zeros((3, 3))}, r"needs \(16, 2\)"),
    (
        {"persist": "sometimes"},
        "'persist' parameter of SOM must be one of 'auto'; or True or False",
    ),
    ({"height": 100_000, "width": 100_000}, r"needs about .* GiB .* use a smaller map"),
]


@pytest.mark.parametrize("params,message", BAD_PARAMS)
def test_bad_parameters_are_refused_with_a_clear_message(params, message):
    som = SOM(**{"height": 4, "width": 4, "epochs": 2, **params})
    with pytest.raises(ValueError, match=message):
        som.fit(np.ones((10, 2)))


BAD_DATA = [
    (np.ones(10), "Expected 2-D data"),
    (np.ones((0, 3)), r"0 sample\(s\)"),
    (np.ones((5, 0)), r"0 feature\(s\)"),
    (np.array([["a", "b"], ["c", "d"]]), "must be numeric"),
]


@pytest.mark.parametrize("data,message", BAD_DATA)
def test_bad_data_is_refused_before_any_work(data, message):
    with pytest.raises(ValueError, match=message):
        SOM(2, 2).fit(data)


def test_nan_in_the_data_is_reported_with_count_and_place():
    data = np.random.default_rng(6).normal(size=(100, 3))
    data[[17, 60], [1, 2]] = np.nan
    data[80, 0] = np.inf
    with pytest.raises(ValueError, match=r"3 NaN or infinite.*row 17, column 1"):
        SOM(3, 3, init="sample", epochs=2, chunks=25, random_state=0).fit(data)


def test_nan_failure_leaves_the_estimator_unfitted():
    data = np.full((20, 2), np.nan)
    som = SOM(2, 2, init=np.zeros((4, 2)))
    with pytest.raises(ValueError):
        som.fit(data)
    assert not hasattr(som, "weights_")


def test_predict_refuses_a_different_feature_count(fitted):
    som, _ = fitted
    with pytest.raises(ValueError, match="X has 3 features, but SOM is expecting 5"):
        som.predict(np.ones((4, 3)))


def test_a_missing_path_is_named_in_the_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.zarr"):
        SOM(2, 2).fit(str(tmp_path / "missing.zarr"))


def test_using_an_unfitted_map_asks_for_fit():
    with pytest.raises(NotFittedError, match="not fitted"):
        SOM(2, 2).predict(np.ones((3, 2)))


def test_checkpoint_is_written_after_every_epoch(tmp_path, blobs):
    path = tmp_path / "ckpt.npz"
    SOM(4, 4, epochs=3, random_state=0, checkpoint=path).fit(blobs)
    assert len(dasksom.load(path).history_) == 3


def test_killed_fit_resumes_from_its_checkpoint_to_the_same_map(tmp_path, blobs):
    whole = SOM(4, 4, epochs=5, random_state=0).fit(blobs)
    path = tmp_path / "ckpt.npz"
    with killed_in_epoch(3), pytest.raises(KeyboardInterrupt):
        SOM(4, 4, epochs=5, random_state=0, checkpoint=path).fit(blobs)
    assert len(dasksom.load(path).history_) == 2
    resumed = SOM(4, 4, epochs=5, random_state=0, checkpoint=path).fit(blobs)
    np.testing.assert_array_equal(resumed.weights_, whole.weights_)
    assert [h["sigma"] for h in resumed.history_] == [h["sigma"] for h in whole.history_]


def test_checkpoint_from_other_settings_is_refused(tmp_path, blobs):
    path = tmp_path / "ckpt.npz"
    SOM(4, 4, epochs=2, random_state=0, checkpoint=path).fit(blobs)
    with pytest.raises(ValueError, match="written with other settings"):
        SOM(4, 4, epochs=2, random_state=0, metric="cosine", checkpoint=path).fit(blobs)


def test_unknown_parameters_are_refused_by_set_params():
    with pytest.raises(ValueError, match="Invalid parameter 'heigth'"):
        SOM().set_params(heigth=3)


def test_repr_names_the_parameters_that_differ_from_the_defaults():
    assert repr(SOM(3, 4, metric="cosine")) == "SOM(height=3, metric='cosine', width=4)"


def test_fit_predict_returns_the_bmus_of_the_training_data(blobs):
    som = SOM(3, 3, epochs=2, random_state=0)
    np.testing.assert_array_equal(som.fit_predict(blobs), som.predict(blobs))


def test_from_weights_makes_a_fitted_map_of_given_weights(fitted):
    som, data = fitted
    copy = SOM.from_weights(som.weights_, som.lattice_, metric=som.metric)
    np.testing.assert_array_equal(copy.predict(data), som.predict(data))


def test_from_weights_refuses_weights_that_do_not_fit_the_lattice():
    with pytest.raises(ValueError, match=r"pass \(12, n_features\)"):
        SOM.from_weights(np.zeros((10, 3)), Lattice(3, 4))


def test_hit_counts_are_the_bmu_histogram(fitted):
    som, data = fitted
    counts = som.hit_counts(da.from_array(data, chunks=(30, 5)))
    np.testing.assert_array_equal(counts, np.bincount(som.predict(data), minlength=24))


def test_nan_is_reported_by_the_pca_pass_with_count_and_place():
    data = np.random.default_rng(7).normal(size=(100, 3))
    data[42, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite.*row 42, column 2"):
        SOM(3, 3, init="pca", chunks=30).fit(data)


# -- the scikit-learn surface -------------------------------------------------------------------


def test_som_is_a_clusterer_for_scikit_learn():
    from sklearn.base import is_clusterer

    assert is_clusterer(SOM())


@pytest.mark.slow
def test_som_passes_scikit_learns_estimator_checks():
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(SOM(3, 3, epochs=2, random_state=0), on_fail=None)
    failed = [r["check_name"] for r in results if r["status"] == "failed"]
    assert failed == []


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_transform_gives_the_distance_to_every_node_in_the_maps_metric(blobs, metric):
    som = SOM(3, 4, epochs=2, metric=metric, random_state=0).fit(blobs)
    w = som.weights_
    if metric == "euclidean":
        expected = np.linalg.norm(blobs[:, None, :] - w[None], axis=2)
    elif metric == "manhattan":
        expected = np.abs(blobs[:, None, :] - w[None]).sum(axis=2)
    else:
        unit_x = blobs / np.linalg.norm(blobs, axis=1, keepdims=True)
        unit_w = w / np.linalg.norm(w, axis=1, keepdims=True)
        expected = 1 - unit_x @ unit_w.T
    np.testing.assert_allclose(som.transform(blobs), expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(som.transform(blobs).argmin(axis=1), som.predict(blobs))


def test_transform_keeps_dask_input_lazy(blobs):
    som = SOM(3, 3, epochs=1, random_state=0).fit(blobs)
    out = som.transform(da.from_array(blobs, chunks=70))
    assert isinstance(out, da.Array) and out.shape == (300, 9)
    np.testing.assert_allclose(out.compute(), som.transform(blobs))


@pytest.mark.parametrize("metric", ["euclidean", "cosine", "manhattan"])
def test_nearest_nodes_gives_predicts_bmus_and_the_distance_to_them(blobs, metric):
    som = SOM(3, 4, epochs=2, metric=metric, random_state=0).fit(blobs)
    bmus, distances = som.nearest_nodes(blobs)
    np.testing.assert_array_equal(bmus, som.predict(blobs))
    nodes = som.weights_[bmus]
    expected = [reference.distance(x, w, metric) for x, w in zip(blobs, nodes, strict=True)]
    np.testing.assert_allclose(distances, expected, rtol=1e-6, atol=1e-6)


def test_nearest_nodes_of_dask_input_read_each_chunk_once_for_both(blobs):
    som = SOM(3, 3, epochs=1, random_state=0).fit(blobs)
    reads = []

    def read(block):
        reads.append(block.shape[0])
        return block

    data = da.from_array(blobs, chunks=(70, 5)).map_blocks(read, dtype=blobs.dtype)
    bmus, distances = som.nearest_nodes(data)
    assert isinstance(bmus, da.Array) and isinstance(distances, da.Array)
    found, far = dask.compute(bmus, distances, scheduler="sync")
    rows_read = sorted(n for n in reads if n)  # dask probes with empty blocks for the dtype
    assert rows_read == sorted(data.chunks[0])
    np.testing.assert_array_equal(found, som.predict(blobs))
    np.testing.assert_allclose(far, som.nearest_nodes(blobs)[1])


def test_score_is_minus_the_quantization_error(blobs):
    som = SOM(3, 3, epochs=2, random_state=0).fit(blobs)
    assert som.score(blobs) == -som.quantization_error(blobs)


def test_quality_gives_both_errors_from_one_pass(blobs):
    som = SOM(3, 3, epochs=2, random_state=0).fit(blobs)
    quality = som.quality(blobs)
    assert quality == {
        "quantization_error": som.quantization_error(blobs),
        "topographic_error": som.topographic_error(blobs),
        "n_samples": 300,
    }


def test_best_matching_units_are_numpy_whatever_the_input(blobs):
    som = SOM(3, 3, epochs=1, random_state=0).fit(blobs)
    found = som.best_matching_units(da.from_array(blobs, chunks=70))
    assert isinstance(found, np.ndarray)
    np.testing.assert_array_equal(found, som.predict(blobs))


def test_predict_keeps_numpy_in_numpy_out_and_dask_in_dask_out(blobs):
    som = SOM(3, 3, epochs=1, random_state=0).fit(blobs)
    assert isinstance(som.predict(blobs), np.ndarray)
    assert isinstance(som.predict(da.from_array(blobs, chunks=70)), da.Array)


def test_feature_names_come_from_a_dataframes_columns(blobs):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(blobs, columns=[f"f{i}" for i in range(5)])
    som = SOM(3, 3, epochs=1, random_state=0).fit(frame)
    assert list(som.feature_names_in_) == ["f0", "f1", "f2", "f3", "f4"]
    assert not hasattr(SOM(3, 3, epochs=1).fit(blobs), "feature_names_in_")


def test_predict_refuses_a_row_of_nan_naming_its_place(blobs):
    som = SOM(3, 3, epochs=1, random_state=0).fit(blobs)
    bad = blobs.copy()
    bad[123] = np.nan
    with pytest.raises(ValueError, match="5 NaN .*row 123, column 0"):
        som.predict(bad)
    with pytest.raises(ValueError, match="row 123, column 0"):
        som.predict(da.from_array(bad, chunks=50)).compute()


def test_quality_measures_refuse_rows_of_nan(blobs):
    som = SOM(3, 3, epochs=1, random_state=0).fit(blobs)
    bad = blobs.copy()
    bad[7, 2] = np.inf
    with pytest.raises(ValueError, match="row 7, column 2"):
        som.topographic_error(bad)
    with pytest.raises(ValueError, match="row 7, column 2"):
        som.hit_counts(bad)


def test_evaluate_gives_quality_hits_and_bmus_from_one_pass(blobs):
    som = SOM(3, 3, epochs=2, random_state=0).fit(blobs)
    reads = []

    def counted(block):
        reads.append(len(block))
        return block

    data = da.from_array(blobs, chunks=70).map_blocks(counted, dtype=blobs.dtype)
    found = som.evaluate(data, keep_bmus=True)
    assert sum(reads) == len(blobs)
    np.testing.assert_array_equal(found["bmus"], som.predict(blobs))
    np.testing.assert_array_equal(found["hit_counts"], np.bincount(found["bmus"], minlength=9))
    assert found["quantization_error"] == pytest.approx(som.quality(blobs)["quantization_error"])


def test_transform_checks_and_scatters_its_input_once(client, blobs, monkeypatch):
    from dasksom.training import engine

    som = SOM(3, 3, epochs=1, random_state=0).fit(blobs)
    scattered = []
    real = engine.scatter_rows
    monkeypatch.setattr(engine, "scatter_rows", lambda *a: scattered.append(1) or real(*a))
    distances = som.transform(blobs)
    assert distances.shape == (300, 9) and len(scattered) == 1
