"""Outputs appear whole or not at all, with the mode the umask gives any new file."""

import os
import stat

import numpy as np
import pytest

from dasksom import SOM
from dasksom.io.atomic import atomic_directory, current_umask, write_text


@pytest.fixture
def umask():
    """Set the process umask for one test, and put the old one back."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_the_umask_is_read_without_changing_it(umask):
    umask(0o027)
    assert current_umask() == 0o027
    assert current_umask() == 0o027


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_written_file_has_the_mode_the_umask_gives(umask, tmp_path, mask, expected):
    umask(mask)
    assert mode(write_text(tmp_path / "summary.json", "{}")) == expected


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o755), (0o077, 0o700)])
def test_a_written_folder_has_the_mode_the_umask_gives(umask, tmp_path, mask, expected):
    umask(mask)
    for _ in range(2):  # a new folder, then one replacing it
        with atomic_directory(tmp_path / "store.zarr") as tmp:
            (tmp / "zarr.json").write_text("{}")
        assert mode(tmp_path / "store.zarr") == expected


def test_a_saved_map_is_readable_by_others_under_the_usual_umask(umask, tmp_path):
    umask(0o022)
    SOM(2, 2, epochs=1, random_state=0).fit(np.random.default_rng(0).random((20, 3))).save(
        tmp_path / "map.npz"
    )
    assert mode(tmp_path / "map.npz") == 0o644
