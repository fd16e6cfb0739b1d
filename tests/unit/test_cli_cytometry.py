"""``dasksom cytometry train`` and ``map``: FCS files in; a model, its tables, every cell's
results and batches of a long file list out, against the library and plain pandas."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys

import numpy as np
import pytest

flowio = pytest.importorskip("flowio")
anndata = pytest.importorskip("anndata")
pytest.importorskip("pyarrow")

import pandas as pd  # noqa: E402

from dasksom.cli.cytometry import batch_files  # noqa: E402
from dasksom.cli.main import build_parsers, main  # noqa: E402
from dasksom.cytometry import FlowSOM, read_fcs, summarise  # noqa: E402
from dasksom.cytometry.results import TABLES  # noqa: E402

CHANNELS = ["FSC-A", "CD3", "CD4", "CD8", "CD19"]
MARKERS = ["CD3", "CD4", "CD8", "CD19"]
# Four populations: CD4 T cells, CD8 T cells, B cells, and cells with none of the markers.
CENTRES = np.array(
    [[500, 300, 300, 5, 5], [500, 300, 5, 300, 5], [500, 5, 5, 5, 300], [500, 5, 5, 5, 5]],
    dtype=float,
)
# CD3 spills into CD4's detector and back: every file carries it as $SPILLOVER.
SPILL = np.array([[1.0, 0.2], [0.1, 1.0]])
SPILL_TEXT = "2,CD3,CD4," + ",".join(str(v) for v in SPILL.ravel())
TRAIN = ["--markers", ",".join(MARKERS), "--xdim", "4", "--ydim", "4", "--clusters", "4"]
TRAIN += ["--epochs", "3"]


def write_fcs(path, events, channels=CHANNELS):
    with open(path, "wb") as f:
        flowio.create_fcs(
            f,
            np.asarray(events, dtype=np.float32).ravel(),
            channels,
            opt_channel_names=[f"{c} label" for c in channels],
            metadata_dict={"SPILL": SPILL_TEXT} if "CD4" in channels else {},
        )
    return str(path)


def events(n, seed):
    """``n`` cells of the four populations (and which population each is)."""
    rng = np.random.default_rng(seed)
    population = rng.integers(0, len(CENTRES), n)
    values = CENTRES[population] * rng.lognormal(0.0, 0.15, size=(n, len(CHANNELS)))
    values[:, 1:3] = values[:, 1:3] @ SPILL
    return values.astype(np.float32), population


@pytest.fixture(scope="module")
def fcs(tmp_path_factory):
    """Six FCS files of 300 to 550 cells: ``(paths, events, populations)``."""
    folder = tmp_path_factory.mktemp("fcs")
    made = [events(300 + 50 * i, seed=i) for i in range(6)]
    paths = [write_fcs(folder / f"s{i}.fcs", values) for i, (values, _) in enumerate(made)]
    return paths, [values for values, _ in made], [population for _, population in made]


def run(*args):
    """``main(args)``: ``(exit status, stdout, stderr)``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(arg) for arg in args])
    return status, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def model(fcs, tmp_path_factory):
    """A model trained on the first three files: ``(model folder, what train printed)``."""
    folder = tmp_path_factory.mktemp("model") / "model"
    status, out, err = run("cytometry", "train", *fcs[0][:3], *TRAIN, "-o", folder)
    assert status == 0, err
    return folder, out


def tables(folder):
    return {name: pd.read_parquet(folder / "tables" / f"{name}.parquet") for name in TABLES}


def library_results(model_folder, paths, compensate=False):
    """What the library gives for ``paths``: ``(model, cells, results)``."""
    flowsom = FlowSOM.load(model_folder)
    cells = read_fcs(paths, flowsom.transform_.markers, compensate=compensate)
    return flowsom, cells, flowsom.map(cells)


def test_train_writes_a_loadable_model_and_its_tables(model, fcs):
    folder, out = model
    paths, _, populations = fcs
    assert out.startswith("dasksom cytometry train: 1050 cells of 3 samples, a 4x4 map")
    assert len(out.strip().splitlines()) == 1
    flowsom, cells, results = library_results(folder, paths[:3])
    assert flowsom.clustering_markers_ == tuple(MARKERS)
    metacluster = results.metacluster.compute()
    population = np.concatenate(populations[:3])
    # Every planted population lies (nearly) in one metacluster.
    for p in range(len(CENTRES)):
        assert np.bincount(metacluster[population == p]).max() >= 0.95 * (population == p).sum()
    written = tables(folder)
    expected = summarise(results)
    for name in TABLES:
        pd.testing.assert_frame_equal(written[name], getattr(expected, name))
    assert list(written["sample_nodes"]["sample"].unique()) == ["s0.fcs", "s1.fcs", "s2.fcs"]
    record = json.loads((folder / "training.json").read_text())
    assert record["n_cells"] == 1050 and record["settings"]["compensate"] is False


def test_map_tables_are_the_librarys_and_count_what_pandas_counts(model, fcs, tmp_path):
    paths = fcs[0][3:]
    status, out, _ = run("cytometry", "map", model[0], *paths, "-o", tmp_path / "out")
    assert status == 0
    assert "map: 3 files, 1500 cells" in out and len(out.strip().splitlines()) == 1
    written = tables(tmp_path / "out")
    flowsom, cells, results = library_results(model[0], paths)
    expected = summarise(results)
    for name in TABLES:
        pd.testing.assert_frame_equal(written[name], getattr(expected, name))
    mapped = pd.DataFrame(
        {
            "sample": np.asarray(cells.samples)[cells.sample.compute()],
            "node": results.node.compute(),
        }
    )
    counted = mapped.groupby(["sample", "node"]).size()
    table = written["sample_nodes"].set_index(["sample", "node"])["count"]
    pd.testing.assert_series_equal(
        table, counted.reindex(table.index, fill_value=0), check_names=False
    )
    assert table.sum() == 1500 and table.dtype == np.int64


def test_map_writes_every_cells_results_one_part_per_chunk(model, fcs, tmp_path):
    paths = fcs[0][3:5]
    args = ["cytometry", "map", model[0], *paths, "-o", tmp_path / "out", "--cells"]
    assert run(*args, "--events-per-chunk", 128)[0] == 0
    parts = sorted((tmp_path / "out" / "cells").iterdir())
    # 450 and 500 events in chunks of 128: 4 + 4 chunks.
    assert [p.name for p in parts] == [f"part-00000-{i:06d}.parquet" for i in range(8)]
    cells = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    _, _, results = library_results(model[0], paths)
    np.testing.assert_array_equal(cells["node"], results.node.compute())
    np.testing.assert_array_equal(cells["metacluster"], results.metacluster.compute())
    np.testing.assert_array_equal(cells["distance"], results.distance.compute())
    np.testing.assert_array_equal(cells["outlier"], results.outlier.compute())
    assert list(cells["sample"].astype(str)) == ["s3.fcs"] * 450 + ["s4.fcs"] * 500
    np.testing.assert_array_equal(cells["event"], np.r_[np.arange(450), np.arange(500)])
    assert cells["event"].dtype == np.int64 and cells["node"].dtype == np.int64
    record = json.loads((tmp_path / "out" / "batch.json").read_text())
    assert record["n_cells"] == 950 and record["cell_parts"] == 8


@pytest.mark.parametrize("n_files", [0, 1, 5, 6, 13])
@pytest.mark.parametrize("batches", [1, 2, 4, 7])
def test_batches_take_every_file_exactly_once(n_files, batches):
    files = [f"f{i}.fcs" for i in range(n_files)]
    split = [batch_files(files, batch, batches) for batch in range(batches)]
    assert sorted(f for part in split for f in part) == sorted(files)
    assert all(files.index(f) % batches == b for b, part in enumerate(split) for f in part)


def test_a_job_array_maps_a_file_list_into_one_folder_per_batch(model, fcs, tmp_path):
    listing = tmp_path / "files.txt"
    listing.write_text("# every sample\n" + "\n\n".join(fcs[0]) + "\n")
    out = tmp_path / "mapped"
    for batch in range(4):
        args = ["--files-from", listing, "--batch", batch, "--batches", 4]
        assert run("cytometry", "map", model[0], *args, "-o", out)[0] == 0
    folders = sorted(out.iterdir())
    assert [f.name for f in folders] == [f"batch-{b:05d}-of-00004" for b in range(4)]
    records = [json.loads((f / "batch.json").read_text()) for f in folders]
    assert [r["files"] for r in records] == [fcs[0][b::4] for b in range(4)]
    merged = pd.concat(tables(f)["sample_nodes"] for f in folders)
    assert sorted(merged["sample"].unique()) == [f"s{i}.fcs" for i in range(6)]
    assert merged["count"].sum() == sum(len(e) for e in fcs[1])


def test_a_batch_without_files_writes_nothing(model, fcs, tmp_path):
    args = ["cytometry", "map", model[0], *fcs[0], "--batch", 6, "--batches", 7]
    status, out, _ = run(*args, "-o", tmp_path / "out")
    assert status == 0 and "nothing to do" in out
    assert not (tmp_path / "out").exists()


def test_options_come_from_a_config_file(model, fcs, tmp_path):
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(fcs[0][:2]))
    config = tmp_path / "map.toml"
    config.write_text(f'files-from = "{listing}"\nbatch = 1\nbatches = 2\ncells = true\n')
    assert run("cytometry", "map", model[0], "--config", config, "-o", tmp_path / "out")[0] == 0
    record = json.loads((tmp_path / "out" / "batch-00001-of-00002" / "batch.json").read_text())
    assert record["files"] == [fcs[0][1]] and record["cell_parts"] == 1


def test_map_compensates_as_the_model_was_trained(fcs, tmp_path):
    small = ["--xdim", "3", "--ydim", "3", "--clusters", "2", "--epochs", "1"]
    args = ["cytometry", "train", *fcs[0][:2], "--markers", "CD3,CD4", *small, "--compensate"]
    assert run(*args, "-o", tmp_path / "model")[0] == 0
    medians = []
    for flag, compensated in (([], True), (["--no-compensate"], False)):
        out = tmp_path / f"out-{compensated}"
        assert run("cytometry", "map", tmp_path / "model", fcs[0][2], *flag, "-o", out)[0] == 0
        _, _, results = library_results(tmp_path / "model", fcs[0][2:3], compensated)
        expected = summarise(results).sample_nodes
        pd.testing.assert_frame_equal(tables(out)["sample_nodes"], expected)
        medians.append(tables(out)["metaclusters"]["CD4"].to_numpy())
    assert not np.allclose(medians[0], medians[1])


def test_map_reads_an_h5ad_file_and_parquet_tables_of_the_same_cells(model, fcs, tmp_path):
    paths, values = fcs[0][3:5], fcs[1][3:5]
    names = [f"s{i}.fcs" for i in (3, 4)]
    adata = anndata.AnnData(
        X=np.concatenate(values),
        obs=pd.DataFrame({"file": np.repeat(names, [len(v) for v in values])}).rename(index=str),
        var=pd.DataFrame(index=CHANNELS),
    )
    adata.write_h5ad(tmp_path / "cells.h5ad")
    sources = {"h5ad": [tmp_path / "cells.h5ad", "--sample-column", "file"], "parquet": []}
    for i, v in zip((3, 4), values, strict=True):
        pd.DataFrame(v, columns=CHANNELS).to_parquet(tmp_path / f"s{i}.parquet")
        sources["parquet"].append(tmp_path / f"s{i}.parquet")
    assert run("cytometry", "map", model[0], *paths, "-o", tmp_path / "fcs")[0] == 0
    expected = tables(tmp_path / "fcs")["sample_nodes"]
    for kind, args in sources.items():
        assert run("cytometry", "map", model[0], *args, "-o", tmp_path / kind)[0] == 0
        got = tables(tmp_path / kind)["sample_nodes"]
        np.testing.assert_array_equal(got["count"], expected["count"])
        np.testing.assert_allclose(got[MARKERS], expected[MARKERS])


@pytest.mark.cluster
def test_map_on_a_local_cluster_writes_what_the_threaded_scheduler_writes(model, fcs, tmp_path):
    args = ["cytometry", "map", model[0], *fcs[0][3:5], "--cells", "--events-per-chunk", 200]
    assert run(*args, "-o", tmp_path / "threads")[0] == 0
    status, out, _ = run(*args, "--workers", 2, "-o", tmp_path / "cluster")
    assert status == 0 and "a local cluster of 2 worker processes" in out
    for name in TABLES:
        pd.testing.assert_frame_equal(
            tables(tmp_path / "cluster")[name], tables(tmp_path / "threads")[name]
        )
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "cluster" / "cells"),
        pd.read_parquet(tmp_path / "threads" / "cells"),
    )


def refused(tmp_path, *args, status):
    """Run ``dasksom cytometry ARGS -o tmp_path/out``: it exits with ``status``, one line on
    stderr, nothing written; gives the line."""
    code, _, err = run("cytometry", *args, "-o", tmp_path / "out")
    assert code == status
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()
    return err


def test_missing_files_are_named(model, fcs, tmp_path):
    err = refused(tmp_path, "train", fcs[0][0], tmp_path / "gone.fcs", *TRAIN, status=1)
    assert "gone.fcs" in err
    err = refused(tmp_path, "map", model[0], "--files-from", tmp_path / "nolist.txt", status=1)
    assert "nolist.txt" in err


def test_a_folder_that_is_not_a_model_is_refused(fcs, tmp_path):
    (tmp_path / "empty").mkdir()
    err = refused(tmp_path, "map", tmp_path / "empty", fcs[0][0], status=1)
    assert "is not a saved FlowSOM model" in err and "cytometry train" in err


def test_markers_the_files_lack_are_named(model, fcs, tmp_path):
    err = refused(tmp_path, "train", fcs[0][0], *TRAIN, "--extra-markers", "CD99", status=1)
    assert "CD99" in err and "s0.fcs" in err
    values, _ = events(20, seed=9)
    lacking = write_fcs(tmp_path / "nocd19.fcs", values[:, :4], CHANNELS[:4])
    err = refused(tmp_path, "map", model[0], lacking, status=1)
    assert "CD19" in err and "nocd19.fcs" in err


@pytest.mark.parametrize(
    "args",
    [
        ["--batch", "2", "--batches", "2"],
        ["--batch", "0"],
        ["--batches", "3"],
        ["--gpus", "1"],
        ["extra.h5ad"],
        ["--sample-column", "file"],
    ],
)
def test_usage_errors_exit_with_status_2(model, fcs, tmp_path, args):
    refused(tmp_path, "map", model[0], fcs[0][0], *args, status=2)


def test_no_files_and_too_many_clusters_are_usage_errors(model, fcs, tmp_path):
    assert "no files" in refused(tmp_path, "map", model[0], status=2)
    train = ["train", fcs[0][0], "--markers", "CD3", "--xdim", "2", "--ydim", "2"]
    assert "--clusters 10" in refused(tmp_path, *train, status=2)


def test_a_folder_of_other_files_is_not_replaced(fcs, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("keep me")
    status, _, err = run("cytometry", "train", fcs[0][0], *TRAIN, "-o", tmp_path / "out")
    assert status == 1 and "folder of other files" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["notes.txt"]


def test_missing_flowio_names_the_cytometry_extra(fcs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "flowio", None)
    err = refused(tmp_path, "train", fcs[0][0], *TRAIN, status=1)
    assert "pip install 'dasksom[cytometry]'" in err


def test_the_command_line_loads_without_the_cytometry_library():
    code = (
        "import sys; from dasksom.cli.main import build_parser; build_parser(); "
        "print('dasksom.cytometry' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("command", ["cytometry train", "cytometry map"])
def test_help_shows_every_default(command):
    parser = build_parsers()[1][command]
    for action in parser._actions:
        if action.option_strings and action.help != "==SUPPRESS==" and not action.required:
            if action.dest != "help":
                assert "(default" in parser.formatter_class("x")._get_help_string(action)
    assert "exit codes" in parser.format_help()
