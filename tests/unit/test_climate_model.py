"""FieldSOM: fit on a labelled field; prototypes, BMUs and distances as labelled xarray objects;
one call to write them to zarr or NetCDF; projection of another data set onto the map."""

import dask
import dask.array as da
import numpy as np
import pytest

xr = pytest.importorskip("xarray")

from dasksom import SOM  # noqa: E402
from dasksom.climate import FieldSOM, compare_frequencies, planted_regimes  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return planted_regimes(n_winters=3, n_members=2, n_lat=6, n_lon=8, seed=2).chunk({"time": 90})


@pytest.fixture(scope="module")
def fitted(data):
    model = FieldSOM(height=2, width=2, epochs=4, random_state=0)
    return model.fit(data["slp"], sample_dims=("member", "time"), weights="sqrt_coslat")


def test_prototypes_are_fields_on_the_original_grid_with_node_coordinates(fitted, data):
    prototypes = fitted.prototypes()
    assert prototypes.dims == ("node", "lat", "lon")
    np.testing.assert_array_equal(prototypes["lat"], data["lat"])
    assert prototypes["node_row"].values.tolist() == [0, 0, 1, 1]
    assert prototypes.attrs["units"] == "hPa"
    assert np.isnan(prototypes.values).any() and np.isfinite(prototypes.values).any()


def test_bmus_are_lazy_and_labelled_on_the_sample_dims(fitted, data):
    bmus = fitted.bmus(data["slp"])
    assert isinstance(bmus.data, da.Array)
    assert bmus.dims == ("member", "time")
    np.testing.assert_array_equal(bmus["time"], data["time"])
    flat = fitted.som_.predict(fitted.layout_.stack(data["slp"]).compute())
    np.testing.assert_array_equal(bmus.values.ravel(), flat)


def test_distances_are_those_to_the_best_matching_unit(fitted, data):
    distances = fitted.distances(data["slp"])
    assert isinstance(distances.data, da.Array)
    rows = fitted.layout_.stack(data["slp"]).compute()
    nearest = np.linalg.norm(rows[:, None, :] - fitted.som_.weights_[None], axis=2).min(axis=1)
    np.testing.assert_allclose(distances.values.ravel(), nearest, rtol=1e-6)


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_save_writes_every_result_with_cf_attributes_in_one_call(fitted, data, tmp_path, suffix):
    path = tmp_path / f"regimes{suffix}"
    fitted.save(path, data["slp"])
    opened = xr.open_zarr(path, consolidated=False) if suffix == ".zarr" else xr.open_dataset(path)
    with opened as saved:
        assert saved.attrs["Conventions"] == "CF-1.8"
        assert saved["bmu"].attrs["long_name"] == "best-matching unit of the sample"
        np.testing.assert_array_equal(saved["bmu"].values, fitted.bmus(data["slp"]).values)
        np.testing.assert_allclose(
            saved["prototype_slp"].values, fitted.prototypes().values, equal_nan=True
        )


@pytest.mark.parametrize("suffix", [".zarr", ".nc"])
def test_save_reads_each_chunk_of_the_field_once(fitted, data, tmp_path, suffix):
    reads = []

    def read(block):
        reads.append(block.size)
        return block

    field = data["slp"].copy(data=data["slp"].data.map_blocks(read, dtype=data["slp"].dtype))
    with dask.config.set(scheduler="sync"):
        fitted.save(tmp_path / f"regimes{suffix}", field)
    # Empty blocks are dask's probes for dtypes, not reads.
    assert len([size for size in reads if size]) == field.data.npartitions


def test_save_refuses_an_unknown_format(fitted, data, tmp_path):
    with pytest.raises(ValueError, match=".zarr or .nc"):
        fitted.save(tmp_path / "regimes.csv", data["slp"])


def test_a_dataset_of_several_variables_gives_one_prototype_per_variable(data):
    model = FieldSOM(height=1, width=3, epochs=2, random_state=0)
    model.fit(data[["slp", "t2m"]], sample_dims=("member", "time"))
    prototypes = model.prototypes()
    assert set(prototypes.data_vars) == {"slp", "t2m"}
    assert prototypes["t2m"].attrs["units"] == "K"
    assert set(model.results(data[["slp", "t2m"]]).data_vars) >= {"prototype_t2m", "bmu"}


def test_eof_reduced_fit_returns_prototypes_in_physical_units(data):
    model = FieldSOM(height=1, width=3, epochs=4, random_state=0)
    model.fit(data["slp"], sample_dims=("member", "time"), n_eofs=3)
    assert model.som_.weights_.shape == (3, 3)
    prototypes = model.prototypes()
    assert prototypes.dims == ("node", "lat", "lon")
    assert float(np.nanmax(np.abs(prototypes.values))) > 5.0


def test_projecting_another_data_set_uses_the_training_layout(fitted, data):
    other = planted_regimes(n_winters=2, n_lat=6, n_lon=8, seed=5)["slp"]
    other = other.expand_dims(member=[0])
    bmus = fitted.bmus(other)
    assert bmus.shape == (1, other.sizes["time"])
    same = compare_frequencies(fitted.bmus(data["slp"]), bmus, fitted.n_nodes)
    assert same["reference"].sum() == pytest.approx(1.0)


def test_a_given_som_is_trained_in_place():
    som = SOM(height=1, width=2, epochs=1, random_state=0)
    model = FieldSOM(som)
    model.fit(planted_regimes(n_winters=1, n_lat=4, n_lon=5)["slp"])
    assert model.som_ is som and hasattr(som, "weights_")


def test_results_before_fit_say_to_fit_first():
    with pytest.raises(ValueError, match="call fit"):
        FieldSOM().prototypes()


def test_settings_and_a_som_together_are_refused():
    with pytest.raises(ValueError, match="not both"):
        FieldSOM(SOM(), height=3)
