"""Property-based tests of the file readers: whatever the bytes, reading a file either gives
an array or fails with a ValueError, FileNotFoundError or KeyError that names the file, and
never runs code stored in it."""

import io as stdio
import json
import os
import pickle
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import zarr

from dasksom.io.sources import as_dask_array

pytest.importorskip("hypothesis", reason="property tests need hypothesis (pip install hypothesis)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

ALLOWED = (ValueError, FileNotFoundError, KeyError)
FAST = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
DTYPES = st.sampled_from(
    ["<f4", ">f8", "<i2", "|u1", "|b1", "<c8", "<U3", "|S2", "<M8[s]", "<m8[ms]", "<f2"]
)
ODD_DESCRS = st.sampled_from(
    ["|O", "<U0", "|V0", "|V8", "<M8[ns]", [("a", "<f4"), ("b", "|O")], [("a", "<i4")], "<f8"]
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
ODD_SHAPES = st.lists(
    st.one_of(st.integers(-3, 6), st.sampled_from([2**31, 2**40, 2**63 - 1])), max_size=3
).map(tuple)


class _Payload:
    """Pickled into a file: loading it would create ``flag``."""

    def __init__(self, flag: Path) -> None:
        self.flag = flag

    def __reduce__(self):
        return (Path.touch, (self.flag,))


def read_or_refuse(path: Path) -> BaseException | None:
    """Open ``path`` and compute it; a refusal must be an allowed error that names the file."""
    try:
        as_dask_array(path).compute(scheduler="sync")
    except ALLOWED as exc:
        assert path.name in str(exc), f"{type(exc).__name__} does not name the file: {exc}"
        return exc
    return None


@pytest.fixture
def folder(tmp_path):
    """A fresh folder for each example (hypothesis runs many in one test)."""

    def make() -> Path:
        return Path(tempfile.mkdtemp(dir=tmp_path))

    yield make
    shutil.rmtree(tmp_path, ignore_errors=True)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = stdio.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npz_bytes(array: np.ndarray, compressed: bool) -> bytes:
    buffer = stdio.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, x=array)
    return buffer.getvalue()


def mutate(raw: bytes, data: st.DataObject) -> bytes:
    """``raw`` with a few bytes replaced, cut short, or both."""
    mutated = bytearray(raw)
    for _ in range(data.draw(st.integers(0, 4))):
        if mutated:
            mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    return bytes(mutated[: data.draw(st.integers(0, len(mutated)))])


# --- whole files of random bytes ----------------------------------------------------------


@FAST
@given(raw=st.binary(max_size=512), suffix=st.sampled_from([".npy", ".npz", ".csv", ".parquet"]))
def test_random_bytes_are_refused_by_name(folder, raw, suffix):
    path = folder() / f"data{suffix}"
    path.write_bytes(raw)
    read_or_refuse(path)


@FAST
@given(text=st.text(alphabet=st.sampled_from(list('0123456789.,-+eE\n"ab nan'))))
def test_random_csv_text_is_read_or_refused_by_name(folder, text):
    path = folder() / "data.csv"
    path.write_text(text)
    read_or_refuse(path)


@FAST
@given(raw=st.binary(max_size=256), name=st.sampled_from(["zarr.json", ".zarray", ".zgroup"]))
def test_random_zarr_metadata_is_refused_by_name(folder, raw, name):
    path = folder() / "data.zarr"
    path.mkdir()
    (path / name).write_bytes(raw)
    read_or_refuse(path)


# --- valid files, then damaged ------------------------------------------------------------


@FAST
@given(array=hnp.arrays(DTYPES, SHAPES), data=st.data())
def test_damaged_npy_is_read_or_refused_by_name(folder, array, data):
    path = folder() / "data.npy"
    path.write_bytes(mutate(npy_bytes(array), data))
    read_or_refuse(path)


@FAST
@given(array=hnp.arrays(DTYPES, SHAPES), compressed=st.booleans(), data=st.data())
def test_damaged_npz_is_read_or_refused_by_name(folder, array, compressed, data):
    path = folder() / "data.npz"
    path.write_bytes(mutate(npz_bytes(array, compressed), data))
    read_or_refuse(path)


@FAST
@given(
    array=hnp.arrays(st.sampled_from(["<f4", "<i8", "|u1"]), hnp.array_shapes(max_dims=2)),
    zarr_format=st.sampled_from([2, 3]),
    data=st.data(),
)
def test_damaged_zarr_is_read_or_refused_by_name(folder, array, zarr_format, data):
    path = folder() / "data.zarr"
    stored = zarr.create_array(
        path,
        shape=array.shape,
        dtype=array.dtype,
        chunks=(2,) * array.ndim,
        zarr_format=zarr_format,
    )
    stored[...] = array
    files = sorted(p for p in path.rglob("*") if p.is_file())
    victim = data.draw(st.sampled_from(files))
    victim.write_bytes(mutate(victim.read_bytes(), data))
    read_or_refuse(path)


@FAST
@given(
    array=hnp.arrays(st.sampled_from(["<f8", "<i4"]), hnp.array_shapes(max_dims=2)), data=st.data()
)
def test_damaged_csv_is_read_or_refused_by_name(folder, array, data):
    path = folder() / "data.csv"
    lines = [",".join(map(str, np.atleast_1d(row))) for row in np.atleast_2d(array)]
    path.write_bytes(mutate("\n".join(lines).encode(), data))
    read_or_refuse(path)


# --- odd headers: dtypes and shapes a header may claim ------------------------------------


@FAST
@given(descr=ODD_DESCRS, shape=ODD_SHAPES, fortran=st.booleans(), body=st.binary(max_size=64))
def test_odd_npy_headers_are_read_or_refused_by_name(folder, descr, shape, fortran, body):
    path = folder() / "data.npy"
    with open(path, "wb") as f:
        header = {"descr": descr, "fortran_order": fortran, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        f.write(body)
    read_or_refuse(path)


# --- no code runs ---------------------------------------------------------------------------


def test_pickled_npy_is_refused_and_never_loaded(tmp_path):
    flag = tmp_path / "ran"
    np.save(tmp_path / "evil.npy", np.array([_Payload(flag)], dtype=object), allow_pickle=True)
    error = read_or_refuse(tmp_path / "evil.npy")
    assert isinstance(error, ValueError) and "Python objects" in str(error)
    assert not flag.exists()


def test_pickled_npz_member_is_refused_and_never_loaded(tmp_path):
    flag = tmp_path / "ran"
    np.savez(tmp_path / "evil.npz", x=np.array([_Payload(flag)], dtype=object))
    error = read_or_refuse(tmp_path / "evil.npz")
    assert isinstance(error, ValueError) and "Python objects" in str(error)
    assert not flag.exists()


def test_pickled_zarr_chunk_is_refused_and_never_loaded(tmp_path):
    flag = tmp_path / "ran"
    path = tmp_path / "evil.zarr"
    path.mkdir()
    metadata = {
        "zarr_format": 2,
        "shape": [1],
        "chunks": [1],
        "dtype": "|O",
        "compressor": None,
        "fill_value": 0,
        "filters": [{"id": "pickle", "protocol": 5}],
        "order": "C",
    }
    (path / ".zarray").write_text(json.dumps(metadata))
    (path / "0").write_bytes(pickle.dumps(np.array([_Payload(flag)], dtype=object)))
    assert isinstance(read_or_refuse(path), ValueError)
    assert not flag.exists()


def test_pickle_inside_a_zip_named_npz_is_never_loaded(tmp_path):
    flag = tmp_path / "ran"
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as archive:
        archive.writestr("x.pkl", pickle.dumps(_Payload(flag)))
    assert isinstance(read_or_refuse(tmp_path / "evil.npz"), ValueError)
    assert not flag.exists()


def test_missing_file_is_named(tmp_path):
    assert isinstance(read_or_refuse(tmp_path / "absent.npy"), FileNotFoundError)
    assert not os.listdir(tmp_path)
