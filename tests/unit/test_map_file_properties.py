"""Property-based tests of the map-file loaders: whatever the bytes, loading a map either gives a
fitted map or fails with a ValueError, FileNotFoundError or KeyError that names the file, and
never runs code stored in it (no pickle is ever loaded)."""

import io
import json
import os
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest

import dasksom
from dasksom import SOM, SOMNet

pytest.importorskip("hypothesis", reason="property tests need hypothesis (pip install hypothesis)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ALLOWED = (ValueError, FileNotFoundError, KeyError)
FAST = settings(
    max_examples=int(os.environ.get("DASKSOM_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
RAN = []


class Trap:
    """Unpickling this runs code: the tests fail if it ever does."""

    def __reduce__(self):
        return (RAN.append, ("code ran",))


@pytest.fixture(scope="module")
def good_map_bytes():
    rng = np.random.default_rng(0)
    som = SOM(3, 4, epochs=2, random_state=0).fit(rng.normal(size=(50, 3)))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "map.npz"
        som.save(path)
        return path.read_bytes()


def load_outcome(path: Path, loader=dasksom.load):
    try:
        loader(path)
    except ALLOWED as exc:
        assert path.name in str(exc), f"{type(exc).__name__} does not name the file: {exc}"
        return "refused"
    return "loaded"


@FAST
@given(st.binary(max_size=2048))
def test_random_bytes_never_load_silently_wrong(tmp_path, data):
    path = tmp_path / "random.npz"
    path.write_bytes(data)
    assert load_outcome(path) == "refused"


@FAST
@given(st.data())
def test_truncated_maps_are_refused_naming_the_file(tmp_path, good_map_bytes, data):
    cut = data.draw(st.integers(0, len(good_map_bytes) - 1))
    path = tmp_path / "truncated.npz"
    path.write_bytes(good_map_bytes[:cut])
    assert load_outcome(path) == "refused"


@FAST
@given(st.data())
def test_mutated_maps_load_or_are_refused_naming_the_file(tmp_path, good_map_bytes, data):
    mutated = bytearray(good_map_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    path = tmp_path / "mutated.npz"
    path.write_bytes(bytes(mutated))
    load_outcome(path)
    assert RAN == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@FAST
@given(metadata=JSON, weights_shape=st.lists(st.integers(0, 6), min_size=0, max_size=3))
def test_any_metadata_and_weight_shape_loads_or_is_refused(tmp_path, metadata, weights_shape):
    path = tmp_path / "odd.npz"
    with open(path, "wb") as handle:
        np.savez(handle, metadata=np.array(json.dumps(metadata)), weights=np.zeros(weights_shape))
    assert load_outcome(path) == "refused"


@FAST
@given(field=st.sampled_from(["metadata", "weights", "init"]))
def test_a_pickled_member_never_runs(tmp_path, good_map_bytes, field):
    with np.load(io.BytesIO(good_map_bytes)) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays[field] = np.array([Trap()], dtype=object)
    path = tmp_path / "pickled.npz"
    with open(path, "wb") as handle:
        np.savez(handle, allow_pickle=True, **arrays)
    load_outcome(path)
    assert RAN == []


@FAST
@given(st.binary(max_size=512) | st.just(pickle.dumps(Trap())))
def test_simpsom_map_files_of_any_bytes_are_refused_naming_the_file(tmp_path, data):
    path = tmp_path / "net.npy"
    path.write_bytes(data)
    assert load_outcome(path, lambda p: SOMNet(2, 2, None, load_file=p)) == "refused"
    assert RAN == []
