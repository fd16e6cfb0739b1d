"""``dasksom explore`` and the explorer that ``dasksom train`` and ``dasksom demo`` write."""

import json
from html.parser import HTMLParser

import numpy as np
import pytest

from dasksom.cli.main import main

pytest.importorskip("bokeh", reason="the explorer needs bokeh: pip install 'dasksom[explore]'")

TRAIN = ["--size", "3x4", "--epochs", "2", "--workers", "0", "--no-plots"]


def _fetched(path):
    """The ``src`` and ``href`` attributes of the page's tags: what it would load."""
    found = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.extend(value for name, value in attrs if name in ("src", "href"))

    Tags().feed(path.read_text())
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A map trained by ``dasksom train`` with labels: ``(folder, data, labels)``."""
    rng = np.random.default_rng(0)
    blobs = rng.normal(scale=5.0, size=(4, 5))[rng.integers(0, 4, 300)] + rng.normal(size=(300, 5))
    folder = tmp_path_factory.mktemp("run")
    data, labels = folder / "x.npy", folder / "y.npy"
    np.save(data, blobs)
    np.save(labels, np.arange(len(blobs)) % 3)
    args = ["train", str(data), "--labels", str(labels), *TRAIN, "--output", str(folder / "out")]
    assert main(args) == 0
    return folder, data, labels


def test_explore_writes_one_self_contained_file(run, tmp_path, capsys):
    folder, data, labels = run
    page = tmp_path / "f.html"
    args = ["explore", str(folder / "out" / "map.npz"), str(data), "--labels", str(labels)]
    assert main([*args, "--workers", "0", "-o", str(page)]) == 0
    assert f"to {page}" in capsys.readouterr().out
    assert page.stat().st_size > 100_000 and _fetched(page) == []
    assert [p.name for p in tmp_path.iterdir()] == ["f.html"]


def test_explore_without_data_writes_the_maps_own_layers(run, tmp_path):
    folder, _, _ = run
    page = tmp_path / "map.html"
    assert main(["explore", str(folder / "out" / "map.npz"), "-o", str(page)]) == 0
    text = page.read_text()
    assert "U-matrix" in text and "majority label" not in text


def test_train_writes_the_explorer_beside_the_pictures_by_default(run):
    folder, _, _ = run
    summary = json.loads((folder / "out" / "summary.json").read_text())
    assert summary["explorer"] == str(folder / "out" / "explorer.html")
    assert "majority label" in (folder / "out" / "explorer.html").read_text()


def test_no_explorer_turns_it_off(tmp_path, blobs):
    np.save(tmp_path / "x.npy", blobs)
    out = tmp_path / "out"
    assert (
        main(["train", str(tmp_path / "x.npy"), *TRAIN, "--no-explorer", "--output", str(out)]) == 0
    )
    assert not (out / "explorer.html").exists()
    assert "explorer" not in json.loads((out / "summary.json").read_text())


def test_demo_writes_an_explorer(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--workers", "0", "--size", "4x4", "--epochs", "2"]
    assert main([*args, "--output", str(out)]) == 0
    assert (out / "explorer.html").stat().st_size > 100_000


def test_a_missing_map_is_one_line_with_status_1(tmp_path, capsys):
    assert main(["explore", str(tmp_path / "nothing.npz"), "-o", str(tmp_path / "a.html")]) == 1
    err = capsys.readouterr().err
    assert "nothing.npz" in err and len(err.strip().splitlines()) == 1


def test_a_corrupt_map_is_one_line_with_status_1(run, tmp_path, capsys):
    folder, _, _ = run
    bad = tmp_path / "bad.npz"
    bad.write_bytes((folder / "out" / "map.npz").read_bytes()[:500])
    assert main(["explore", str(bad), "-o", str(tmp_path / "a.html")]) == 1
    err = capsys.readouterr().err
    assert "not a readable dasksom map" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "a.html").exists()


def test_data_of_another_width_is_refused_naming_both_widths(run, tmp_path, capsys):
    folder, _, _ = run
    np.save(tmp_path / "narrow.npy", np.zeros((10, 3)))
    args = ["explore", str(folder / "out" / "map.npz"), str(tmp_path / "narrow.npy")]
    assert main([*args, "--workers", "0", "-o", str(tmp_path / "a.html")]) == 1
    err = capsys.readouterr().err
    assert "3 features" in err and "expecting 5" in err
    assert not (tmp_path / "a.html").exists()


def test_labels_without_data_are_a_usage_error(run, tmp_path, capsys):
    folder, _, labels = run
    args = ["explore", str(folder / "out" / "map.npz"), "--labels", str(labels)]
    assert main([*args, "-o", str(tmp_path / "a.html")]) == 2
    assert "--labels needs the DATA" in capsys.readouterr().err
