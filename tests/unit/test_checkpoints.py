"""Checkpoints are bound to their settings and their data, and map files never load damaged."""

import json
import zipfile

import dask.array as da
import numpy as np
import pytest

import dasksom
from dasksom import SOM
from dasksom.io.map_file import read_map


def unreadable(shape, chunks=50):
    """A dask array whose every chunk raises when read: proof that nothing was read."""

    def explode(block):
        raise RuntimeError("the data was read")

    return da.zeros(shape, chunks=(chunks, shape[1])).map_blocks(explode, dtype=float)


@pytest.fixture
def checkpointed(tmp_path, blobs):
    path = tmp_path / "ckpt.npz"
    SOM(4, 4, epochs=2, random_state=0, checkpoint=path).fit(blobs)
    return path


def test_finished_checkpoint_of_other_data_is_refused_saying_what_differs(checkpointed, blobs):
    other = blobs + 1.0
    with pytest.raises(ValueError, match="written for other data.*sampled rows differ"):
        SOM(4, 4, epochs=2, random_state=0, checkpoint=checkpointed).fit(other)


def test_checkpoint_of_data_with_other_features_is_refused(checkpointed, blobs):
    with pytest.raises(ValueError, match=r"shape \(300, 5\) then, \(300, 4\) now"):
        SOM(4, 4, epochs=2, random_state=0, checkpoint=checkpointed).fit(blobs[:, :4])


def test_checkpoint_of_data_with_other_rows_is_refused(checkpointed, blobs):
    with pytest.raises(ValueError, match=r"shape \(300, 5\) then, \(200, 5\) now"):
        SOM(4, 4, epochs=2, random_state=0, checkpoint=checkpointed).fit(blobs[:200])


def test_finished_checkpoint_of_the_same_data_returns_its_map_without_training(checkpointed, blobs):
    saved = dasksom.load(checkpointed)
    again = SOM(4, 4, epochs=2, random_state=0, checkpoint=checkpointed, chunks=70).fit(blobs)
    np.testing.assert_array_equal(again.weights_, saved.weights_)
    assert again.history_ == saved.history_


def test_checkpoint_settings_are_checked_before_the_data_is_read(checkpointed):
    som = SOM(4, 4, epochs=2, random_state=0, metric="cosine", checkpoint=checkpointed)
    with pytest.raises(ValueError, match="other settings .*metric differ"):
        som.fit(unreadable((300, 5)))


def test_init_array_is_checked_before_the_data_is_read():
    som = SOM(4, 4, init=np.zeros((16, 3)))
    with pytest.raises(ValueError, match=r"needs \(16, 5\)"):
        som.fit(unreadable((300, 5)))


@pytest.mark.parametrize(
    ("init", "message"),
    [
        (np.full((16, 5), np.nan), "80 NaN or infinite values"),
        (
            np.eye(16, 5) / np.eye(16, 5),
            r"NaN or infinite values \(the first at node 0, feature 1\)",
        ),
        (np.full((16, 5), "a"), "must hold numbers"),
    ],
)
def test_a_bad_init_array_is_refused_before_the_data_is_read(init, message):
    with pytest.raises(ValueError, match=message):
        SOM(4, 4, init=init).fit(unreadable((300, 5)))


def test_an_init_array_is_checked_before_in_memory_rows_go_to_the_workers(
    client, blobs, monkeypatch
):
    from dasksom.training import engine

    def refuse(*args):
        raise AssertionError("the rows were scattered before the init array was checked")

    monkeypatch.setattr(engine, "scatter_rows", refuse)
    with pytest.raises(ValueError, match=r"needs \(16, 5\)"):
        SOM(4, 4, init=np.zeros((16, 3))).fit(blobs)


def test_parameters_are_checked_before_the_data_is_read():
    with pytest.raises(ValueError, match="'pbc' parameter"):
        SOM(4, 4, pbc="no").fit(unreadable((300, 5)))


def test_zero_byte_checkpoint_gives_a_clear_error(tmp_path, blobs):
    path = tmp_path / "ckpt.npz"
    path.write_bytes(b"")
    with pytest.raises(ValueError, match="ckpt.npz.* not a readable dasksom map"):
        SOM(4, 4, epochs=2, checkpoint=path).fit(blobs)


def rewrite_metadata(path, change):
    with np.load(path, allow_pickle=False) as stored:
        arrays = {name: stored[name] for name in stored.files}
    metadata = json.loads(str(arrays.pop("metadata")))
    metadata = change(metadata)
    with open(path, "wb") as handle:
        np.savez(handle, metadata=np.array(json.dumps(metadata)), **arrays)


def without(key):
    return lambda metadata: {k: v for k, v in metadata.items() if k != key}


DAMAGE = {
    "no history": without("history"),
    "no version": without("version"),
    "no lattice": without("lattice"),
    "no params": without("params"),
    "a list": lambda metadata: [metadata],
    "history of numbers": lambda metadata: {**metadata, "history": [1, 2]},
    "lattice of strings": lambda metadata: {**metadata, "lattice": {"height": "four"}},
    "version as text": lambda metadata: {**metadata, "version": "1"},
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE.keys())
def test_damaged_map_metadata_gives_a_value_error_naming_the_file(checkpointed, damage):
    rewrite_metadata(checkpointed, damage)
    with pytest.raises(ValueError, match="ckpt.npz"):
        dasksom.load(checkpointed)


def test_map_without_weights_gives_a_value_error_naming_the_file(checkpointed):
    with np.load(checkpointed) as stored:
        metadata = stored["metadata"]
    with open(checkpointed, "wb") as handle:
        np.savez(handle, metadata=metadata)
    with pytest.raises(ValueError, match="ckpt.npz.*not a readable dasksom map"):
        read_map(checkpointed)


def test_truncated_map_gives_a_value_error_naming_the_file(checkpointed):
    data = checkpointed.read_bytes()
    checkpointed.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="ckpt.npz"):
        dasksom.load(checkpointed)


def test_map_holding_a_pickle_is_refused(checkpointed):
    with zipfile.ZipFile(checkpointed, "a") as archive, archive.open("evil.npy", "w") as member:
        np.save(member, np.array([object()], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(checkpointed) as archive:
        assert "evil.npy" in archive.namelist()
    assert dasksom.load(checkpointed).weights_.shape == (16, 5)


def test_saved_map_is_written_through_a_fresh_file_not_a_planted_link(tmp_path, blobs):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (tmp_path / "map.npz").symlink_to(target)
    SOM(3, 3, epochs=1, random_state=0).fit(blobs).save(tmp_path / "map.npz")
    assert target.read_text() == "keep me"
    assert not (tmp_path / "map.npz").is_symlink()
    assert dasksom.load(tmp_path / "map.npz").weights_.shape == (9, 5)


def test_saving_to_a_url_is_refused_instead_of_writing_a_local_folder(tmp_path, blobs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    som = SOM(3, 3, epochs=1, random_state=0).fit(blobs)
    with pytest.raises(ValueError, match="s3:// URLs"):
        som.save("s3://bucket/map.npz")
    assert not (tmp_path / "s3:").exists()


def test_checkpoint_written_before_a_setting_existed_counts_as_its_default(checkpointed, blobs):
    from dasksom.io.map_file import read_metadata, write_map

    metadata, _, _ = read_metadata(checkpointed)
    params, lattice, weights, history = read_map(checkpointed)
    del params["precision"]  # as dasksom wrote it before precision= existed
    write_map(
        checkpointed,
        params={**params, "init": "random"},
        lattice=lattice,
        weights=weights,
        history=history,
        extra={"fingerprint": metadata["fingerprint"]},
    )
    again = SOM(4, 4, epochs=2, random_state=0, checkpoint=checkpointed).fit(blobs)
    np.testing.assert_array_equal(again.weights_, weights)


def test_checkpoint_of_another_precision_is_refused(checkpointed, blobs):
    with pytest.raises(ValueError, match=r"precision differ"):
        SOM(4, 4, epochs=2, random_state=0, checkpoint=checkpointed, precision="tf32").fit(blobs)


# One other value of every parameter (but the checkpoint's own path) of the map `checkpointed`
# trains: SOM(4, 4, epochs=2, random_state=0).
OTHER_VALUES = {
    "height": 6,
    "width": 6,
    "topology": "square",
    "pbc": True,
    "metric": "cosine",
    "neighborhood": "bubble",
    "init": "sample",
    "epochs": 3,
    "sigma": 1.5,
    "random_state": 1,
    "sigma_decay": "linear",
    "tol": 1e-3,
    "n_iter_no_change": 5,
    "chunks": 70,
    "persist": False,
    "verbose": True,
    "nan_policy": "ignore",
    "device": "gpu",
    "precision": "bfloat16",
    "bmu_search": "brute",
}


def test_every_parameter_has_another_value_in_the_agreement_test():
    assert set(OTHER_VALUES) == set(SOM().get_params()) - {"checkpoint"}


@pytest.mark.parametrize("name", sorted(OTHER_VALUES))
def test_the_command_line_and_fit_agree_whether_a_checkpoint_resumes(
    name, checkpointed, blobs, capsys
):
    from dasksom.cli.main import _checkpoint_status

    params = {"height": 4, "width": 4, "epochs": 2, "random_state": 0, name: OTHER_VALUES[name]}
    som = SOM(**params, checkpoint=checkpointed)
    cli_resumes = _checkpoint_status(som, checkpointed, force=False) is not None
    if name == "device":  # no GPU here: where the chunks run never decides
        assert cli_resumes and not som.changed_settings(read_map(checkpointed)[0])
        return
    try:
        som.fit(blobs)
        fit_resumes = True
    except ValueError as error:
        assert "other settings" in str(error) and name in str(error)
        fit_resumes = False
    assert cli_resumes == fit_resumes
    assert fit_resumes == (name in {"chunks", "persist", "verbose", "bmu_search"})
