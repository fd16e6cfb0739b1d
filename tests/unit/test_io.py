"""Every data source becomes a lazily read dask array whose chunks hold whole rows."""

import os
import pickle
import re
import signal
import sys
import time

import dask.array as da
import fsspec
import numpy as np
import pandas as pd
import pytest
import zarr
from dask import delayed

from dasksom.io.sources import TARGET_CHUNK_BYTES, as_dask_array, open_array, row_chunk_size
from dasksom.io.storage import STORAGE_DTYPES, as_storage_dtype
from dasksom.io.zarr_store import to_zarr

h5py = pytest.importorskip("h5py")


@pytest.fixture
def data():
    return np.arange(60 * 7, dtype="float32").reshape(60, 7)


def check(array, expected):
    """``array`` is a dask array with whole rows per chunk and the values of ``expected``."""
    assert isinstance(array, da.Array)
    assert len(array.chunks[1]) == 1
    np.testing.assert_array_equal(array.compute(), expected)


def write_zarr(path, x, zarr_format, name=None, row_chunks=10):
    """Write ``x`` as a zarr array at ``path``, or as array ``name`` of a group there."""
    options = {"shape": x.shape, "dtype": x.dtype, "chunks": (row_chunks, 3)}
    if name is None:
        z = zarr.create_array(path, zarr_format=zarr_format, **options)
    else:
        z = zarr.open_group(path, mode="w", zarr_format=zarr_format).create_array(name, **options)
    z[:] = x
    return z


@pytest.fixture
def memory_fs():
    fs = fsspec.filesystem("memory")
    yield fs
    fs.rm("/dasksom-test", recursive=True)


# --- round trips --------------------------------------------------------------------------


def test_numpy_round_trips(data):
    check(as_dask_array(data), data)


def test_numpy_data_is_not_copied(data):
    array = as_dask_array(data)
    data[0, 0] = -1.0
    assert array[0, 0].compute() == -1.0


def test_list_round_trips(data):
    check(as_dask_array(data.tolist()), data)


def test_dask_array_merges_feature_chunks(data):
    check(as_dask_array(da.from_array(data, chunks=(20, 3))), data)


def test_dask_array_keeps_its_whole_row_chunks(data):
    assert as_dask_array(da.from_array(data, chunks=(25, 7))).chunks[0] == (25, 25, 10)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_store_path_round_trips(tmp_path, data, zarr_format):
    write_zarr(tmp_path / "x.zarr", data, zarr_format)
    check(as_dask_array(tmp_path / "x.zarr"), data)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_array_object_round_trips(tmp_path, data, zarr_format):
    check(as_dask_array(write_zarr(tmp_path / "x.zarr", data, zarr_format)), data)


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_zarr_group_array_by_key(tmp_path, data, zarr_format):
    write_zarr(tmp_path / "g.zarr", data, zarr_format, name="train/x")
    zarr.open_group(tmp_path / "g.zarr", mode="a").create_array("y", shape=(3,), dtype="i4")
    check(as_dask_array(tmp_path / "g.zarr", key="train/x"), data)


def test_zarr_group_array_by_suffix(tmp_path, data):
    write_zarr(tmp_path / "g.zarr", data, 3, name="x")
    zarr.open_group(tmp_path / "g.zarr", mode="a").create_array("y", shape=(3,), dtype="i4")
    check(as_dask_array(f"{tmp_path / 'g.zarr'}::x"), data)


def test_zarr_group_with_one_array_needs_no_key(tmp_path, data):
    write_zarr(tmp_path / "g.zarr", data, 3, name="x")
    check(as_dask_array(tmp_path / "g.zarr"), data)


def test_zarr_group_object_by_key(tmp_path, data):
    write_zarr(tmp_path / "g.zarr", data, 3, name="x")
    check(as_dask_array(zarr.open_group(tmp_path / "g.zarr", mode="r"), key="x"), data)


def test_zarr_memory_url_round_trips(memory_fs, data):
    write_zarr("memory://dasksom-test/x.zarr", data, 3)
    check(as_dask_array("memory://dasksom-test/x.zarr"), data)


def test_zarr_file_url_round_trips(tmp_path, data):
    write_zarr(tmp_path / "x.zarr", data, 2)
    check(as_dask_array((tmp_path / "x.zarr").as_uri()), data)


def test_zarr_directory_without_extension_is_recognised(tmp_path, data):
    write_zarr(tmp_path / "store", data, 3)
    check(as_dask_array(tmp_path / "store"), data)


def test_npy_round_trips(tmp_path, data):
    np.save(tmp_path / "x.npy", data)
    check(as_dask_array(tmp_path / "x.npy"), data)


def test_npy_graph_holds_no_data(tmp_path):
    big = np.ones((5000, 40))
    np.save(tmp_path / "x.npy", big)
    graph = dict(as_dask_array(tmp_path / "x.npy").__dask_graph__())
    assert len(pickle.dumps(graph)) < big.nbytes // 100


def test_npy_is_read_when_computed_not_when_opened(tmp_path, data):
    np.save(tmp_path / "x.npy", data)
    array = as_dask_array(tmp_path / "x.npy")
    np.save(tmp_path / "x.npy", data + 1)
    check(array, data + 1)


def test_npy_in_fortran_order_round_trips(tmp_path, data):
    np.save(tmp_path / "x.npy", np.asfortranarray(data))
    check(as_dask_array(tmp_path / "x.npy", chunks=7), data)


def test_npy_memory_url_round_trips(memory_fs, data):
    with fsspec.open("memory://dasksom-test/x.npy", "wb") as f:
        np.save(f, data)
    check(as_dask_array("memory://dasksom-test/x.npy", chunks=7), data)


def test_npz_array_by_key(tmp_path, data):
    np.savez(tmp_path / "x.npz", train=data, labels=np.arange(60))
    check(as_dask_array(tmp_path / "x.npz", key="train"), data)


def test_npz_with_one_array_needs_no_key(tmp_path, data):
    np.savez(tmp_path / "x.npz", data)
    check(as_dask_array(tmp_path / "x.npz"), data)


def test_npz_compressed_round_trips(tmp_path, data):
    np.savez_compressed(tmp_path / "x.npz", train=data)
    check(as_dask_array(tmp_path / "x.npz", chunks=7), data)


def test_hdf5_dataset_by_key(tmp_path, data):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["group/images"] = data
        f["labels"] = np.arange(60)
    check(as_dask_array(tmp_path / "x.h5", key="group/images"), data)


def test_hdf5_dataset_by_suffix(tmp_path, data):
    with h5py.File(tmp_path / "x.hdf5", "w") as f:
        f["images"] = data
        f["labels"] = np.arange(60)
    check(as_dask_array(f"{tmp_path / 'x.hdf5'}::images"), data)


def test_hdf5_dataset_object_round_trips(tmp_path, data):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["images"] = data
    with h5py.File(tmp_path / "x.h5", "r") as f:
        check(as_dask_array(f["images"]), data)


def test_parquet_round_trips(tmp_path, data):
    pd.DataFrame(data, columns=list("abcdefg")).to_parquet(tmp_path / "x.parquet")
    check(as_dask_array(tmp_path / "x.parquet"), data)


def test_csv_round_trips(tmp_path, data):
    pd.DataFrame(data, columns=list("abcdefg")).to_csv(tmp_path / "x.csv", index=False)
    check(as_dask_array(tmp_path / "x.csv"), data)


def test_csv_without_header_keeps_its_first_row(tmp_path, data):
    np.savetxt(tmp_path / "x.csv", data, delimiter=",")
    check(as_dask_array(tmp_path / "x.csv"), data)


def test_table_columns_pick_numeric_ones(tmp_path, data):
    table = pd.DataFrame(data[:, :2], columns=["a", "b"]).assign(label="x")
    table.to_csv(tmp_path / "x.csv", index=False)
    check(as_dask_array(tmp_path / "x.csv", columns=["a", "b"]), data[:, :2])


def test_csv_delimiter_and_header_are_read_as_asked(tmp_path, data):
    # A header of numbers would be taken for a row of data; header=True says it is one.
    lines = [";".join(str(i + 10) for i in range(7))]
    lines += [";".join(repr(float(v)) for v in row) for row in data]
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    check(as_dask_array(tmp_path / "x.csv", delimiter=";", header=True), data)
    assert as_dask_array(tmp_path / "x.csv", delimiter=";").shape == (61, 7)


def test_csv_header_false_keeps_a_first_line_that_looks_like_pandas_header(tmp_path, data):
    # The first row, 0,1,...,6, reads as pandas' header of unnamed columns unless told not.
    np.savetxt(tmp_path / "x.csv", data, delimiter=",", fmt="%d")
    assert as_dask_array(tmp_path / "x.csv").shape == (59, 7)
    check(as_dask_array(tmp_path / "x.csv", header=False), data)


def test_table_columns_by_position_and_name(tmp_path, data):
    pd.DataFrame(data, columns=list("abcdefg")).to_csv(tmp_path / "x.csv", index=False)
    check(as_dask_array(tmp_path / "x.csv", columns=[3, "a", -1]), data[:, [3, 0, 6]])
    np.savetxt(tmp_path / "y.csv", data, delimiter="\t")
    check(as_dask_array(tmp_path / "y.csv", columns=[1, 2], delimiter="\t"), data[:, 1:3])
    with pytest.raises(KeyError, match=r"no column \[7\].*from 0 to 6"):
        as_dask_array(tmp_path / "x.csv", columns=[7])


def test_csv_options_on_other_sources_are_refused(tmp_path, data):
    np.save(tmp_path / "x.npy", data)
    with pytest.raises(ValueError, match="header= and delimiter= are for reading CSV files"):
        as_dask_array(tmp_path / "x.npy", delimiter=";")
    with pytest.raises(ValueError, match="header= and delimiter= are for reading CSV files"):
        as_dask_array(data, header=True)
    pd.DataFrame(data).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(ValueError, match="delimiter must be one character"):
        as_dask_array(tmp_path / "x.csv", delimiter=";;")


def test_pandas_dataframe_round_trips(data):
    check(as_dask_array(pd.DataFrame(data)), data)


def test_xarray_dask_data_array_keeps_its_chunks(data):
    xr = pytest.importorskip("xarray")
    lazy = xr.DataArray(data, dims=("row", "feature")).chunk({"row": 15})
    array = as_dask_array(lazy)
    assert array.chunks == ((15, 15, 15, 15), (7,))
    check(array, data)


def test_xarray_data_array_is_not_read_on_the_client(data):
    xr = pytest.importorskip("xarray")
    lazy = xr.DataArray(da.from_delayed(_fail(), shape=data.shape, dtype=data.dtype))
    assert as_dask_array(lazy).shape == data.shape


def test_xarray_numpy_data_array_round_trips(data):
    xr = pytest.importorskip("xarray")
    check(as_dask_array(xr.DataArray(data)), data)


def test_xarray_dataset_variable_by_key(data):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset({"x": (("row", "f"), data), "y": (("row",), np.arange(60))}).chunk(20)
    array = as_dask_array(ds, key="x")
    assert array.chunks[0] == (20, 20, 20)
    check(array, data)


def test_xarray_dataset_with_one_variable_needs_no_key(data):
    xr = pytest.importorskip("xarray")
    check(as_dask_array(xr.Dataset({"x": (("row", "f"), data)})), data)


def test_xarray_dataset_missing_variable_lists_them(data):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset({"x": (("row", "f"), data), "y": (("row",), np.arange(60))})
    with pytest.raises(KeyError, match="no array named 'z'.*'x', 'y'"):
        as_dask_array(ds, key="z")
    with pytest.raises(ValueError, match="several arrays.*key='x'"):
        as_dask_array(ds)


def test_xarray_zarr_store_variable_by_suffix(tmp_path, data):
    xr = pytest.importorskip("xarray")
    ds = xr.Dataset({"x": (("row", "f"), data)}, coords={"row": np.arange(60)})
    ds.to_zarr(tmp_path / "ds.zarr", mode="w", consolidated=False)
    check(as_dask_array(f"{tmp_path / 'ds.zarr'}::x"), data)


def test_images_are_flattened_to_rows(data):
    images = data.reshape(60, 7, 1)
    check(as_dask_array(da.from_array(images, chunks=(10, 3, 1))), data)


def test_fit_reads_an_hdf5_dataset_named_by_suffix(tmp_path, data):
    from dasksom import SOM

    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["images"] = data
        f["labels"] = np.arange(60)
    som = SOM(2, 2, epochs=1, random_state=0).fit(f"{tmp_path / 'x.h5'}::images")
    assert som.weights_.shape == (4, 7)


# --- chunk sizes --------------------------------------------------------------------------


def test_auto_chunks_stay_under_the_target_bytes():
    array = as_dask_array(da.zeros((10**5, 2000), chunks=(1000, 500)))
    assert max(array.chunks[0]) * 2000 * 8 <= TARGET_CHUNK_BYTES


def test_auto_chunks_give_every_core_two_chunks(monkeypatch, data):
    monkeypatch.setattr(os, "cpu_count", lambda: 3)
    assert len(as_dask_array(data).chunks[0]) >= 6


def test_row_chunk_size_fills_the_target():
    rows = row_chunk_size(10**7, 1000, 8, per_core=0)
    assert rows * 1000 * 8 <= TARGET_CHUNK_BYTES < (rows + 1) * 1000 * 8


def test_chunks_as_bytes_bound_the_chunk_size():
    array = as_dask_array(da.zeros((10**5, 100), chunks=(50_000, 100)), chunks="1MiB")
    assert max(array.chunks[0]) * 100 * 8 <= 2**20


def test_chunks_as_rows_are_used(data):
    assert as_dask_array(data, chunks=25).chunks[0] == (25, 25, 10)


def test_auto_chunks_hold_whole_storage_chunks(tmp_path, data):
    write_zarr(tmp_path / "x.zarr", data, 3, row_chunks=4)
    assert all(rows % 4 == 0 for rows in as_dask_array(tmp_path / "x.zarr").chunks[0][:-1])


# --- to_zarr ------------------------------------------------------------------------------


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_to_zarr_round_trips(tmp_path, data, zarr_format):
    np.save(tmp_path / "x.npy", data)
    to_zarr(tmp_path / "x.npy", tmp_path / "x.zarr", zarr_format=zarr_format)
    check(open_array(tmp_path / "x.zarr"), data)


def test_to_zarr_stores_whole_rows(tmp_path, data):
    to_zarr(da.from_array(data, chunks=(7, 2)), tmp_path / "x.zarr", chunks=20)
    assert zarr.open_array(tmp_path / "x.zarr", mode="r").chunks == (20, 7)


def test_to_zarr_refuses_to_overwrite(tmp_path, data):
    to_zarr(data, tmp_path / "x.zarr")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        to_zarr(data + 1, tmp_path / "x.zarr")


def test_to_zarr_overwrites_when_asked(tmp_path, data):
    to_zarr(data, tmp_path / "x.zarr")
    check(to_zarr(data + 1, tmp_path / "x.zarr", overwrite=True), data + 1)


def test_to_zarr_leaves_only_the_store(tmp_path, data):
    to_zarr(data, tmp_path / "x.zarr")
    to_zarr(data, tmp_path / "x.zarr", overwrite=True)
    assert os.listdir(tmp_path) == ["x.zarr"]


@delayed
def _fail():
    raise RuntimeError("boom")


def test_to_zarr_failure_leaves_nothing(tmp_path):
    broken = da.from_delayed(_fail(), shape=(4, 2), dtype="f8")
    with pytest.raises(RuntimeError, match="boom"):
        to_zarr(broken, tmp_path / "x.zarr")
    assert os.listdir(tmp_path) == []


def test_to_zarr_writes_to_a_memory_url(memory_fs, data):
    check(to_zarr(data, "memory://dasksom-test/x.zarr"), data)


def test_to_zarr_memory_url_failure_leaves_nothing(memory_fs):
    broken = da.from_delayed(_fail(), shape=(4, 2), dtype="f8")
    memory_fs.mkdir("/dasksom-test")
    with pytest.raises(RuntimeError, match="boom"):
        to_zarr(broken, "memory://dasksom-test/x.zarr")
    assert memory_fs.ls("/dasksom-test") == []


def _interrupted(n_blocks, interrupt_at=None, ctrl_c_at=None):
    """Rows that take a while per chunk; reading chunk ``interrupt_at`` raises
    KeyboardInterrupt in the task, reading chunk ``ctrl_c_at`` sends this process a SIGINT
    (as Ctrl-C does) while later chunks still wait."""

    def read(block, block_info=None):
        where = block_info[0]["chunk-location"][0]
        if where == interrupt_at:
            time.sleep(0.1)  # the other threads are busy with their chunks by now
            raise KeyboardInterrupt
        if where == ctrl_c_at:
            os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.3)
        return block

    rows = da.ones((n_blocks * 10, 3), chunks=(10, 3))
    return rows.map_blocks(read, dtype=rows.dtype)


def test_interrupted_to_zarr_leaves_nothing(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        to_zarr(_interrupted(8, 3), tmp_path / "x.zarr", chunks=10)
    # Writes still running at the interrupt would land after the cleanup.
    time.sleep(0.6)
    assert os.listdir(tmp_path) == []


@pytest.fixture
def ctrl_c_interrupts():
    """SIGINT raises KeyboardInterrupt, as in a terminal, even where the suite runs as a
    background job (``cmd &``, nohup), which starts with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_during_to_zarr_leaves_nothing(tmp_path, ctrl_c_interrupts):
    with pytest.raises(KeyboardInterrupt):
        to_zarr(_interrupted(8, ctrl_c_at=2), tmp_path / "x.zarr", chunks=10)
    time.sleep(0.6)
    assert os.listdir(tmp_path) == []


def test_interrupted_to_zarr_keeps_the_old_store(tmp_path, data):
    to_zarr(data, tmp_path / "x.zarr")
    with pytest.raises(KeyboardInterrupt):
        to_zarr(_interrupted(8, 3), tmp_path / "x.zarr", chunks=10, overwrite=True)
    time.sleep(0.6)
    assert os.listdir(tmp_path) == ["x.zarr"]
    check(open_array(tmp_path / "x.zarr"), data)


# --- storage types ------------------------------------------------------------------------


@pytest.fixture
def small(data):
    """Whole numbers that every storage type holds."""
    return data % 100


@pytest.mark.parametrize("dtype", STORAGE_DTYPES)
def test_values_a_storage_type_holds_are_kept(small, dtype):
    stored = as_storage_dtype(da.from_array(small, chunks=(16, 7)), dtype)
    assert stored.dtype == dtype
    np.testing.assert_array_equal(stored.compute().astype("float32"), small)


def test_float16_storage_rounds_to_11_significant_bits():
    x = np.random.default_rng(0).normal(size=(50, 4))
    stored = as_storage_dtype(da.from_array(x, chunks=10), "float16").compute()
    np.testing.assert_allclose(stored, x, rtol=2.0**-11, atol=2.0**-24)


def test_missing_values_stay_missing_in_a_float_storage_type():
    x = np.array([[1.0, np.nan], [np.inf, 2.0]])
    check(as_storage_dtype(da.from_array(x), "float16"), x.astype("float16"))


@pytest.mark.parametrize(
    ("value", "dtype", "holds"),
    [
        (70000.0, "float16", "magnitudes up to 65504"),
        (-1e39, "float32", "magnitudes up to 3.40282e+38"),
        (2.5, "uint8", "whole numbers from 0 to 255"),
        (256.0, "uint8", "whole numbers from 0 to 255"),
        (-1, "uint8", "whole numbers from 0 to 255"),
        (np.nan, "int16", "whole numbers from -32768 to 32767"),
        (np.inf, "int8", "whole numbers from -128 to 127"),
    ],
)
def test_a_value_the_storage_type_cannot_hold_names_its_row(value, dtype, holds):
    x = np.zeros((30, 3))
    x[23, 1] = value
    stored = as_storage_dtype(da.from_array(x, chunks=(10, 3)), dtype)
    with pytest.raises(ValueError, match=f"Row 23 holds .*{re.escape(holds)}.*wider type"):
        stored.compute()


def test_a_storage_type_is_applied_lazily(small):
    x = small.copy()
    x[3, 3] = 0.5
    stored = as_storage_dtype(da.from_array(x, chunks=(16, 7)), "uint8")
    assert stored.dtype == np.uint8  # no error until the chunk is read
    with pytest.raises(ValueError, match="Row 3 holds 0.5"):
        stored.compute()


def test_the_same_storage_type_returns_the_data_itself(data):
    array = da.from_array(data, chunks=(16, 7))
    assert as_storage_dtype(array, "float32") is array


@pytest.mark.parametrize("dtype", ["U3", "complex64", "bool", "no such type"])
def test_a_storage_type_must_be_a_real_number_type(data, dtype):
    with pytest.raises(ValueError, match="[Ss]torage dtype"):
        as_storage_dtype(da.from_array(data), dtype)


def test_to_zarr_stores_the_asked_type(tmp_path, data):
    stored = to_zarr(data, tmp_path / "x.zarr", dtype="uint16")
    assert zarr.open_array(tmp_path / "x.zarr", mode="r").dtype == np.uint16
    check(stored, data.astype("uint16"))


def test_to_zarr_refusing_a_value_leaves_nothing(tmp_path, data):
    with pytest.raises(ValueError, match="storage dtype int8 cannot hold"):
        to_zarr(data, tmp_path / "x.zarr", dtype="int8")
    assert os.listdir(tmp_path) == []


# --- errors -------------------------------------------------------------------------------


def test_missing_path_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.npy"):
        as_dask_array(tmp_path / "nothing.npy")


def test_unknown_extension_lists_supported_ones(tmp_path):
    (tmp_path / "x.txt").write_text("1")
    with pytest.raises(ValueError, match=r"extension '\.txt'.*\.zarr, \.npy, \.npz, \.h5"):
        as_dask_array(tmp_path / "x.txt")


def test_corrupt_npy_is_named(tmp_path):
    (tmp_path / "x.npy").write_bytes(b"garbage" * 10)
    with pytest.raises(ValueError, match=r"x\.npy' is not a valid \.npy array"):
        as_dask_array(tmp_path / "x.npy")


def test_truncated_npy_is_named(tmp_path, data):
    np.save(tmp_path / "x.npy", data)
    raw = (tmp_path / "x.npy").read_bytes()
    (tmp_path / "x.npy").write_bytes(raw[:-10])
    with pytest.raises(ValueError, match=r"x\.npy' is truncated"):
        as_dask_array(tmp_path / "x.npy")


def test_corrupt_npz_is_named(tmp_path, data):
    np.savez(tmp_path / "x.npz", data)
    raw = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "x.npz").write_bytes(raw[:100])
    with pytest.raises(ValueError, match=r"x\.npz' is not a readable \.npz archive"):
        as_dask_array(tmp_path / "x.npz")


def test_corrupt_hdf5_is_named(tmp_path, data):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = data
    raw = (tmp_path / "x.h5").read_bytes()
    (tmp_path / "x.h5").write_bytes(raw[:500])
    with pytest.raises(ValueError, match=r"x\.h5' as HDF5.*corrupt or truncated"):
        as_dask_array(tmp_path / "x.h5")


def test_corrupt_parquet_is_named(tmp_path):
    (tmp_path / "x.parquet").write_bytes(b"nope" * 100)
    with pytest.raises(ValueError, match=r"x\.parquet' as parquet"):
        as_dask_array(tmp_path / "x.parquet")


def test_corrupt_zarr_is_named(tmp_path):
    (tmp_path / "x.zarr").mkdir()
    (tmp_path / "x.zarr" / "zarr.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"x\.zarr' as a zarr store"):
        as_dask_array(tmp_path / "x.zarr")


def test_corrupt_zarr_chunk_is_named_when_read(tmp_path, data):
    write_zarr(tmp_path / "x.zarr", data, 2)
    (tmp_path / "x.zarr" / "0.0").write_bytes(b"junk")
    with pytest.raises(ValueError, match=r"x\.zarr'.*corrupt or truncated"):
        as_dask_array(tmp_path / "x.zarr").compute()


def test_missing_npz_key_lists_the_arrays(tmp_path, data):
    np.savez(tmp_path / "x.npz", train=data, labels=np.arange(60))
    with pytest.raises(KeyError, match="no array named 'test'.*'labels', 'train'"):
        as_dask_array(tmp_path / "x.npz", key="test")


def test_missing_hdf5_key_lists_the_datasets(tmp_path, data):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["images"] = data
    with pytest.raises(KeyError, match="no array named 'pixels'.*'images'"):
        as_dask_array(f"{tmp_path / 'x.h5'}::pixels")


def test_missing_zarr_key_lists_the_arrays(tmp_path, data):
    write_zarr(tmp_path / "g.zarr", data, 3, name="x")
    with pytest.raises(KeyError, match="no array named 'y'.*'x'"):
        as_dask_array(tmp_path / "g.zarr", key="y")


def test_several_arrays_without_key_are_listed(tmp_path, data):
    np.savez(tmp_path / "x.npz", train=data, labels=np.arange(60))
    with pytest.raises(ValueError, match="several arrays.*'labels', 'train'.*key="):
        as_dask_array(tmp_path / "x.npz")


def test_non_numeric_columns_are_named(tmp_path, data):
    pd.DataFrame({"a": [1.0, 2.0], "name": ["u", "v"]}).to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(ValueError, match=r"non-numeric columns \['name'\]"):
        as_dask_array(tmp_path / "x.csv")


def test_missing_h5py_says_what_to_install(tmp_path, monkeypatch, data):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = data
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(ImportError, match=r"pip install dasksom\[hdf5\]"):
        as_dask_array(tmp_path / "x.h5")


def test_key_on_a_single_array_file_is_refused(tmp_path, data):
    np.save(tmp_path / "x.npy", data)
    with pytest.raises(ValueError, match="drop the key"):
        as_dask_array(tmp_path / "x.npy", key="x")


def test_conflicting_key_and_suffix_are_refused(tmp_path, data):
    np.savez(tmp_path / "x.npz", a=data, b=data)
    with pytest.raises(ValueError, match="give one name"):
        as_dask_array(f"{tmp_path / 'x.npz'}::a", key="b")


@pytest.mark.parametrize("chunks", [0, -5, "lots", 2.5, True])
def test_bad_chunks_are_refused(data, chunks):
    with pytest.raises(ValueError, match="chunks must be 'auto'"):
        as_dask_array(data, chunks=chunks)
