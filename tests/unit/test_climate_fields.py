"""FieldLayout: stacking a labelled field into rows lazily, and undoing it exactly."""

import dask.array as da
import numpy as np
import pytest

xr = pytest.importorskip("xarray")

from dasksom.climate import FieldLayout  # noqa: E402


def field(n_time=40, members=None, seed=0):
    rng = np.random.default_rng(seed)
    lat = np.array([0.0, 30.0, 60.0])
    lon = np.array([0.0, 90.0, 180.0, 270.0])
    dims = ("time", "lat", "lon")
    shape = (n_time, 3, 4)
    if members:
        dims, shape = ("member", *dims), (members, *shape)
    values = 280.0 + 10.0 * rng.standard_normal(shape)
    values[..., 2, 3] = np.nan
    coords = {"time": np.arange(n_time), "lat": lat, "lon": lon}
    return xr.DataArray(values, dims=dims, coords=coords, name="tas", attrs={"units": "K"}).chunk(
        {"time": 10}
    )


def test_stack_is_a_lazy_dask_array_of_samples_by_unmasked_points():
    data = field()
    rows = FieldLayout.learn(data).stack(data)
    assert isinstance(rows, da.Array)
    assert rows.shape == (40, 11)
    np.testing.assert_allclose(rows[:, :4].compute(), data.isel(lat=0).values, rtol=0, atol=1e-12)


def test_points_masked_in_every_sample_are_dropped_and_restored_as_nan():
    data = field()
    layout = FieldLayout.learn(data)
    back = layout.unstack(layout.stack(data).compute(), dim="time")
    assert np.isnan(back.values[:, 2, 3]).all()
    np.testing.assert_allclose(back.values, data.values, equal_nan=True)


def test_unstack_restores_the_coordinates_and_attributes_of_the_grid():
    data = field()
    layout = FieldLayout.learn(data)
    back = layout.unstack(np.zeros((2, layout.n_columns)))
    assert back.dims == ("node", "lat", "lon")
    np.testing.assert_array_equal(back["lat"], data["lat"])
    assert back.attrs["units"] == "K"
    assert back.name == "tas"


def test_a_mask_that_changes_between_samples_is_refused():
    data = field().load()
    data[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="some samples but not in others"):
        FieldLayout.learn(data)


@pytest.mark.parametrize("weights, power", [("coslat", 1.0), ("sqrt_coslat", 0.5)])
def test_coslat_weights_multiply_each_column_by_the_cosine_of_its_latitude(weights, power):
    data = field()
    rows = FieldLayout.learn(data, weights=weights).stack(data).compute()
    expected = data.isel(lat=1).values * np.cos(np.deg2rad(30.0)) ** power
    np.testing.assert_allclose(rows[:, 4:8], expected)


def test_weights_and_scaling_are_undone_on_the_way_out():
    data = field()
    layout = FieldLayout.learn(data, weights="coslat", scaling="std")
    back = layout.unstack(layout.stack(data).compute(), dim="time")
    np.testing.assert_allclose(back.values, data.values, equal_nan=True)


def test_weights_as_an_array_on_named_feature_dims():
    data = field()
    per_lon = xr.DataArray([1.0, 2.0, 3.0, 4.0], dims="lon")
    rows = FieldLayout.learn(data, weights=per_lon).stack(data).compute()
    np.testing.assert_allclose(rows[:, 1], 2.0 * data.values[:, 0, 1])


def test_a_dataset_scales_each_variable_to_unit_spread():
    data = field()
    ds = xr.Dataset({"tas": data, "pr": (data - 280.0) * 1e-3 + 5.0})
    layout = FieldLayout.learn(ds)
    rows = layout.stack(ds).compute()
    first, second = rows[:, :11], rows[:, 11:]
    for part in (first, second):
        assert abs(part.mean()) < 1e-9
        assert abs(part.std() - 1.0) < 1e-9
    back = layout.unstack(rows, dim="time")
    assert isinstance(back, xr.Dataset)
    np.testing.assert_allclose(back["pr"].values, ds["pr"].values, equal_nan=True)


def test_member_and_time_sample_dims_stack_member_major():
    data = field(n_time=5, members=3)
    rows = FieldLayout.learn(data, ("member", "time")).stack(data).compute()
    assert rows.shape == (15, 11)
    np.testing.assert_allclose(rows[5, :4], data.values[1, 0, 0])


def test_eof_reduction_of_a_low_rank_field_is_inverted_exactly():
    rng = np.random.default_rng(0)
    patterns = rng.standard_normal((2, 3, 4))
    amplitudes = rng.standard_normal((50, 2))
    values = np.einsum("tk,kij->tij", amplitudes, patterns) + 3.0
    data = xr.DataArray(values, dims=("time", "lat", "lon"), coords={"lat": [0.0, 30, 60]})
    layout = FieldLayout.learn(data.chunk({"time": 20}), n_eofs=2)
    pcs = layout.stack(data).compute()
    assert pcs.shape == (50, 2)
    assert layout.eof.explained_variance_ratio.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(layout.unstack(pcs, dim="time").values, values, atol=1e-8)


def test_stack_refuses_a_field_on_another_grid():
    layout = FieldLayout.learn(field())
    with pytest.raises(ValueError, match="Regrid"):
        layout.stack(field().isel(lon=slice(0, 3)))


def test_a_missing_sample_dimension_is_named_in_the_error():
    with pytest.raises(ValueError, match="lacks sample dimension"):
        FieldLayout.learn(field(), sample_dims=("member", "time"))


def test_a_plain_array_is_refused_with_advice():
    with pytest.raises(TypeError, match="xarray.DataArray"):
        FieldLayout.learn(np.zeros((3, 4)))


def test_stacking_members_keeps_the_time_chunks_of_the_field():
    data = field(n_time=40, members=3)
    rows = FieldLayout.learn(data, ("member", "time")).stack(data)
    assert max(rows.chunks[0]) == 10 and rows.chunks[1] == (11,)


def test_an_ensemble_projects_onto_a_layout_learnt_on_one_series():
    layout = FieldLayout.learn(field())
    ensemble = field(n_time=5, members=2)
    assert layout.sample_dims_of(ensemble) == ("member", "time")
    assert layout.stack(ensemble).shape == (10, 11)
