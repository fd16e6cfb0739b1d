import argparse
import io
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import dasksom
from dasksom.cli.main import main

from ..support.faults import killed_in_epoch
from .test_tls import spawn, stop


def test_demo_writes_the_map_summary_and_pictures(tmp_path):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--workers", "0", "--size", "6x6", "--epochs", "3", "--output", str(out)])
        == 0
    )
    summary = json.loads((out / "summary.json").read_text())
    assert summary["majority_label_accuracy"] > 0.5
    assert {os.path.basename(p) for p in summary["plots"]} >= {
        "umatrix.png",
        "hits.png",
        "labels.png",
        "weights.png",
        "convergence.png",
    }
    assert all(os.path.getsize(p) > 0 for p in summary["plots"])
    assert dasksom.load(out / "map.npz").weights_.shape == (36, 64)
    assert summary["settings"]["size"] == [6, 6] and summary["settings"]["command"] == "demo"


def test_rerunning_a_killed_train_job_resumes_to_the_same_map(tmp_path, blobs, capsys):
    np.save(tmp_path / "x.npy", blobs)
    args = ["train", str(tmp_path / "x.npy"), "--size", "4x4", "--epochs", "4"]
    args += ["--workers", "0", "--no-plots", "--output"]
    assert main([*args, str(tmp_path / "whole")]) == 0
    with killed_in_epoch(3), pytest.raises(KeyboardInterrupt):
        main([*args, str(tmp_path / "cut")])
    capsys.readouterr()
    assert main([*args, str(tmp_path / "cut")]) == 0
    checkpoint = tmp_path / "cut" / "checkpoint.npz"
    assert f"resuming from epoch 2 of 4 ({checkpoint})" in capsys.readouterr().out
    np.testing.assert_array_equal(
        dasksom.load(tmp_path / "cut" / "map.npz").weights_,
        dasksom.load(tmp_path / "whole" / "map.npz").weights_,
    )


def test_train_reports_a_missing_file_in_one_line_with_status_1(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nothing.npy"), "--output", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "nothing.npy" in err and len(err.strip().splitlines()) == 1


def test_bad_map_size_is_refused_by_the_parser_with_status_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["demo", "--size", "big"])
    assert exited.value.code == 2
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_train_on_scheduler_and_workers_started_from_the_command_line(tmp_path, blobs):
    from distributed import Client

    np.save(tmp_path / "x.npy", blobs)
    scheduler_file = tmp_path / "scheduler.json"
    local = ["--host", "127.0.0.1", "--scheduler-file", scheduler_file]
    processes = [spawn("dask_scheduler", *local, "--port", 0, "--dashboard-address", ":0")]
    try:
        worker = [*local, "--nthreads", 1, "--no-dashboard"]
        processes += [spawn("dask_worker", *worker) for _ in range(2)]
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
        args = ["train", str(tmp_path / "x.npy"), "--size", "4x5", "--epochs", "3"]
        args += ["--scheduler-file", str(scheduler_file), "--no-plots"]
        assert main([*args, "--output", str(tmp_path / "out")]) == 0
    finally:
        stop(processes)
    on_cluster = dasksom.load(tmp_path / "out" / "map.npz").weights_
    local = dasksom.SOM(4, 5, init="pca", epochs=3, random_state=0).fit(blobs).weights_
    np.testing.assert_allclose(on_cluster, local, rtol=1e-6)


def cli(*args, timeout=60):
    """``dasksom ARGS`` in a fresh interpreter (exit status and output as an operator sees)."""
    return subprocess.run(
        [sys.executable, "-m", "dasksom.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def trained(tmp_path, blobs):
    """A finished 4x4 run on ``blobs``: ``(data file, output folder, base arguments)``."""
    np.save(tmp_path / "x.npy", blobs)
    out = tmp_path / "out"
    args = ["train", str(tmp_path / "x.npy"), "--size", "4x4", "--epochs", "3", "--output"]
    args += [str(out), "--no-plots"]
    assert main(args) == 0
    return tmp_path / "x.npy", out, args


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"dasksom {dasksom.__version__}"


@pytest.mark.parametrize("command", ["demo", "train", "predict", "plot", "info"])
def test_help_shows_every_default(command):
    from dasksom.cli.main import build_parsers

    parser = build_parsers()[1][command]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if action.option_strings and action.default is not argparse.SUPPRESS:
            if not action.required:
                assert "(default" in parser.formatter_class("x")._get_help_string(action)
    assert "exit codes" in text and "2 usage error" in text


def test_choices_come_from_the_library():
    from dasksom.cli.main import build_parsers
    from dasksom.core.initialization import INITS
    from dasksom.core.lattice import TOPOLOGIES
    from dasksom.core.metrics import METRICS
    from dasksom.core.neighborhood import NEIGHBORHOODS

    options = {a.dest: a for a in build_parsers()[1]["train"]._actions}
    assert tuple(options["init"].choices) == tuple(INITS)
    assert tuple(options["metric"].choices) == tuple(METRICS)
    assert tuple(options["neighborhood"].choices) == tuple(NEIGHBORHOODS)
    assert tuple(options["topology"].choices) == tuple(TOPOLOGIES)


def test_config_file_sets_options_and_flags_override_it(tmp_path, blobs):
    np.save(tmp_path / "x.npy", blobs)
    config = tmp_path / "som.toml"
    config.write_text(
        'size = "3x5"\nepochs = 4\nno-plots = true\ntopology = "square"\n'
        'scheduler_file = "/nowhere/scheduler.json"\n'
    )
    args = ["train", str(tmp_path / "x.npy"), "--config", str(config), "--epochs", "2"]
    assert main([*args, "--workers", "0", "--output", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    settings = summary["settings"]
    assert settings["size"] == [3, 5] and settings["topology"] == "square"
    assert settings["epochs"] == 2 and summary["epochs"] == 2
    assert settings["plots"] is False and "plots" not in summary
    # --workers on the command line overrides the config file's scheduler.
    assert settings["scheduler_file"] is None and settings["workers"] == 0
    assert settings["config"] == str(config)


@pytest.mark.parametrize(
    "text, message",
    [
        ("epoch = 3\n", "unknown key 'epoch'"),
        ('epochs = "ten"\n', "epochs"),
        ('topology = "round"\n', "must be one of"),
        ("pbc = 1\n", "true or false"),
        ("connect-timeout = -5\n", "positive number of seconds"),
        ("epochs = 0\n", "at least 1"),
        ('scheduler-file = "a"\nscheduler_address = "tcp://b:1"\n', "exclude each other"),
        ("size = [", "cannot read the config file"),
    ],
)
def test_bad_config_files_are_usage_errors(tmp_path, capsys, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(SystemExit) as exited:
        main(["train", "x.npy", "--config", str(config)])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_a_finished_run_is_not_retrained(trained, capsys):
    _, out, args = trained
    before = {name: (out / name).stat().st_mtime_ns for name in ("map.npz", "summary.json")}
    capsys.readouterr()
    assert main(args) == 0
    assert (
        "the run is already finished (3 of 3 epochs; "
        f"{out / 'checkpoint.npz'}); nothing to do; use --force to retrain"
    ) in capsys.readouterr().out
    assert {name: (out / name).stat().st_mtime_ns for name in before} == before


def test_force_retrains_afresh(trained, capsys):
    _, out, args = trained
    first = dasksom.load(out / "map.npz").weights_
    capsys.readouterr()
    assert main([*args, "--force", "--log-json", str(out / "epochs.jsonl")]) == 0
    assert "--force: removed the checkpoint" in capsys.readouterr().out
    assert len((out / "epochs.jsonl").read_text().splitlines()) == 3
    np.testing.assert_array_equal(dasksom.load(out / "map.npz").weights_, first)


def test_a_finished_checkpoint_of_other_data_is_refused(trained, capsys):
    data, out, args = trained
    np.save(data, np.load(data) + 1.0)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "other data" in err and "--force" in err
    assert "already finished" not in capsys.readouterr().out


def test_a_damaged_checkpoint_is_one_line_pointing_at_force(trained, capsys):
    _, out, args = trained
    (out / "checkpoint.npz").write_bytes(b"")
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "checkpoint.npz" in err and "--force" in err and len(err.strip().splitlines()) == 1


def test_progress_lines_and_json_epoch_records(tmp_path, blobs, capsys):
    np.save(tmp_path / "x.npy", blobs)
    log = tmp_path / "epochs.jsonl"
    args = ["train", str(tmp_path / "x.npy"), "--size", "3x3", "--epochs", "3", "--no-plots"]
    assert main([*args, "--log-json", str(log), "--output", str(tmp_path / "out")]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("epoch")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    assert all("radius" in line and "QE" in line and "rows/s" in line for line in lines)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    assert {r["epochs"] for r in records} == {3} and {r["n_samples"] for r in records} == {300}
    assert {"sigma", "quantization_error", "map_difference", "seconds"} <= set(records[0])


def test_a_terminal_gets_a_live_bar():
    from dasksom.cli.progress import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    screen = Terminal()
    with progress(stream=screen):
        dasksom.SOM(3, 3, epochs=2, random_state=0).fit(np.random.default_rng(0).random((50, 2)))
    text = screen.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[##########----------] epoch 1/2" in text and "left" in text


@pytest.mark.parametrize("with_labels", [True, False])
def test_the_data_is_read_once_after_training(tmp_path, blobs, with_labels):
    import dask.array as da

    from dasksom.cli.main import write_results

    som = dasksom.SOM(3, 3, epochs=2, random_state=0).fit(blobs)
    reads = []

    def counted(block):
        reads.append(len(block))
        return block

    data = da.from_array(blobs, chunks=100).map_blocks(counted, dtype=blobs.dtype)
    labels = np.arange(len(blobs)) % 3 if with_labels else None
    summary = write_results(som, data, tmp_path, labels=labels, features=[0, 1])
    assert len(summary["plots"]) == (6 if with_labels else 4)
    assert sum(reads) == len(blobs)


def test_predict_writes_npy_and_zarr_out_of_core(trained):
    import zarr

    data, out, _ = trained
    som = dasksom.load(out / "map.npz")
    expected = som.predict(np.load(data))
    assert main(["predict", str(out / "map.npz"), str(data), "--output", str(out / "b.npy")]) == 0
    np.testing.assert_array_equal(np.load(out / "b.npy"), expected)
    args = ["predict", str(out / "map.npz"), str(data), "--positions", "--chunks", "70"]
    assert main([*args, "--output", str(out / "p.zarr")]) == 0
    np.testing.assert_array_equal(zarr.open_array(out / "p.zarr")[:], som.positions_[expected])


def test_predict_refuses_other_outputs(trained, capsys):
    data, out, _ = trained
    for target, status in (("b.csv", 2), ("s3://bucket/b.npy", 2)):
        assert main(["predict", str(out / "map.npz"), str(data), "--output", target]) == status
    assert "s3://" in capsys.readouterr().err


PLOTS = {
    "umatrix": [],
    "hits": ["DATA"],
    "components": ["--features", "0,2"],
    "convergence": [],
    "mosaic": ["--image-shape", "1x5"],
    "labels": ["DATA", "--labels", "LABELS"],
    "projection": ["DATA"],
}


@pytest.mark.parametrize("kind", PLOTS)
def test_plot_draws_any_picture_of_a_saved_map(trained, kind):
    data, out, _ = trained
    np.save(out / "y.npy", np.arange(300) % 4)
    extra = [{"DATA": str(data), "LABELS": str(out / "y.npy")}.get(a, a) for a in PLOTS[kind]]
    args = ["plot", str(out / "map.npz"), *extra, "--kind", kind]
    assert main([*args, "--output", str(out / "p.png")]) == 0
    assert (out / "p.png").stat().st_size > 0


def test_plot_says_what_a_kind_needs(trained, capsys):
    _, out, _ = trained
    assert main(["plot", str(out / "map.npz"), "--kind", "hits", "--output", "h.png"]) == 2
    assert "needs the DATA" in capsys.readouterr().err


def test_info_shows_settings_lattice_and_history(trained, capsys):
    _, out, _ = trained
    capsys.readouterr()
    assert main(["info", str(out / "map.npz")]) == 0
    text = capsys.readouterr().out
    assert "4x4 hexagonal" in text and "3 of 3 epochs" in text and "metric=euclidean" in text
    assert main(["info", str(out / "map.npz"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["lattice"]["height"] == 4 and info["epochs_done"] == 3
    assert len(info["history"]) == 3 and info["settings"]["epochs"] == 3


def test_a_url_output_is_refused(tmp_path, blobs, capsys):
    np.save(tmp_path / "x.npy", blobs)
    assert main(["train", str(tmp_path / "x.npy"), "--output", "s3://bucket/run"]) == 2
    assert "s3:// URLs" in capsys.readouterr().err
    assert not os.path.exists("s3:")


def _one_line_failure(result):
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    return result.stderr


def test_a_scheduler_file_that_never_appears_times_out(tmp_path):
    started = time.monotonic()
    err = _one_line_failure(
        cli("train", "x.npy", "--scheduler-file", tmp_path / "s.json", "--connect-timeout", 2)
    )
    assert "did not appear within 2 s" in err and "s.json" in err
    assert time.monotonic() - started < 30


def test_a_garbage_scheduler_file_is_named(tmp_path):
    (tmp_path / "s.json").write_text("not json at all")
    err = _one_line_failure(
        cli("train", "x.npy", "--scheduler-file", tmp_path / "s.json", "--connect-timeout", 2)
    )
    assert f"{str(tmp_path / 's.json')!r} is not a dask scheduler file" in err


def test_an_unreachable_scheduler_is_one_line(tmp_path):
    err = _one_line_failure(
        cli("train", "x.npy", "--scheduler-address", "tcp://127.0.0.1:1", "--connect-timeout", 2)
    )
    assert "cannot connect to the scheduler at tcp://127.0.0.1:1" in err


def test_train_with_missing_values_under_nan_policy_ignore(tmp_path, blobs, capsys):
    gappy = blobs.copy()
    gappy[np.random.default_rng(0).random(gappy.shape) < 0.1] = np.nan
    np.save(tmp_path / "x.npy", gappy)
    args = ["train", str(tmp_path / "x.npy"), "--size", "4x4", "--epochs", "2", "--workers", "0"]
    args += ["--output", str(tmp_path / "out")]
    assert main(args) == 1
    assert "nan_policy='ignore'" in capsys.readouterr().err
    assert main([*args, "--nan-policy", "ignore", "--force"]) == 0
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert np.isfinite(summary["quantization_error"])


def test_train_with_a_narrow_precision_records_it_in_the_map(tmp_path, blobs, capsys):
    np.save(tmp_path / "x.npy", blobs)
    out = tmp_path / "out"
    args = ["train", str(tmp_path / "x.npy"), "--size", "4x4", "--epochs", "2", "--workers", "0"]
    assert main([*args, "--output", str(out), "--precision", "bfloat16"]) == 0
    assert dasksom.load(out / "map.npz").precision == "bfloat16"
    assert json.loads((out / "summary.json").read_text())["settings"]["precision"] == "bfloat16"
    with pytest.raises(SystemExit):
        main([*args, "--output", str(out), "--precision", "fp8"])
    assert "invalid choice: 'fp8'" in capsys.readouterr().err


def test_train_holds_the_rows_in_the_asked_storage_type(tmp_path, blobs, capsys):
    np.save(tmp_path / "x.npy", blobs)
    out = tmp_path / "out"
    args = ["train", str(tmp_path / "x.npy"), "--size", "4x4", "--epochs", "2", "--workers", "0"]
    assert main([*args, "--output", str(out), "--storage-dtype", "float16", "--no-plots"]) == 0
    assert "300 rows x 5 features (float16)" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["settings"]["storage_dtype"] == "float16"


def test_a_storage_type_that_would_change_the_data_fails_in_one_line(tmp_path, blobs, capsys):
    np.save(tmp_path / "x.npy", blobs)
    args = ["train", str(tmp_path / "x.npy"), "--size", "4x4", "--epochs", "2", "--workers", "0"]
    assert main([*args, "--output", str(tmp_path / "out"), "--storage-dtype", "uint8"]) == 1
    err = capsys.readouterr().err
    assert "storage dtype uint8 cannot hold" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "flags",
    [
        ["--size", "0x5"],
        ["--size", "3x-1"],
        ["--epochs", "0"],
        ["--epochs", "-3"],
        ["--epochs", "ten"],
        ["--chunks", "0"],
        ["--chunks", "-1"],
        ["--chunks", "0MiB"],
        ["--chunks", "lots"],
        ["--seed", "-1"],
        ["--workers", "-1"],
        ["--gpus", "0"],
        ["--image-shape", "0x8"],
        ["--delimiter", ";;"],
    ],
)
def test_bad_values_are_usage_errors_that_create_nothing(tmp_path, blobs, capsys, flags):
    np.save(tmp_path / "x.npy", blobs)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exited:
        main(["train", str(tmp_path / "x.npy"), "--output", str(out), *flags])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"argument {flags[0]}:" in err[0], err
    assert not out.exists()


def test_settings_that_exclude_each_other_are_usage_errors_that_create_nothing(
    tmp_path, blobs, capsys
):
    np.save(tmp_path / "x.npy", blobs)
    out = tmp_path / "out"
    args = ["train", str(tmp_path / "x.npy"), "--output", str(out)]
    assert main([*args, "--precision", "bfloat16", "--metric", "manhattan"]) == 2
    assert "usage error" in capsys.readouterr().err
    assert not out.exists()


def test_an_output_inside_a_file_is_refused_before_training(tmp_path, blobs, capsys):
    np.save(tmp_path / "x.npy", blobs)
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" / "out"
    assert main(["train", str(tmp_path / "x.npy"), "--output", str(out), "--epochs", "2"]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and str(out) in err[0] and "--output" in err[0], err
    assert "is a file, not a folder" in err[0]
    assert "rows x" not in captured.out and "epoch" not in captured.err


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
def test_an_unwritable_output_folder_is_refused_before_training(tmp_path, blobs, capsys):
    # /proc exists and is a folder, but no file can be created in it, not even by root (for
    # whom permission bits do not stop writes).
    np.save(tmp_path / "x.npy", blobs)
    checkpoint = tmp_path / "checkpoint.npz"
    args = ["train", str(tmp_path / "x.npy"), "--size", "3x3", "--epochs", "3"]
    assert main([*args, "--output", "/proc", "--checkpoint", str(checkpoint)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "'/proc'" in err[0] and "give --output a path" in err[0], err
    assert "epoch" not in captured.err and "rows x" not in captured.out
    assert not checkpoint.exists()


def test_an_unwritable_json_log_is_refused_before_anything_is_created(tmp_path, blobs, capsys):
    np.save(tmp_path / "x.npy", blobs)
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "out"
    args = ["train", str(tmp_path / "x.npy"), "--output", str(out)]
    assert main([*args, "--log-json", str(tmp_path / "file" / "log.jsonl")]) == 1
    assert "--log-json" in capsys.readouterr().err
    assert not out.exists()


def test_epoch_lines_show_the_qe_before_the_update_and_the_summary_the_final_map(
    tmp_path, blobs, capsys
):
    np.save(tmp_path / "x.npy", blobs)
    out, log = tmp_path / "out", tmp_path / "epochs.jsonl"
    args = ["train", str(tmp_path / "x.npy"), "--size", "3x3", "--epochs", "3", "--no-plots"]
    assert main([*args, "--log-json", str(log), "--output", str(out)]) == 0
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("epoch")]
    assert len(lines) == 3 and all("QE before update" in line for line in lines)
    summary = json.loads((out / "summary.json").read_text())
    assert f"final map: quantization error {summary['quantization_error']:.4f}" in captured.out
    # The JSON records keep the engine's keys.
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert all("quantization_error" in r and "qe_before_update" not in r for r in records)


@pytest.mark.parametrize("command", ["predict", "plot"])
def test_required_options_show_no_default(command):
    from dasksom.cli.main import build_parsers

    parser = build_parsers()[1][command]
    text = " ".join(parser.format_help().split())
    required = [a for a in parser._actions if a.required and a.option_strings]
    assert [a.dest for a in required] == ["output"]
    for action in required:
        shown = " ".join(action.help.split())
        after = text.split(shown, 1)[1]
        assert not after.lstrip().startswith("(default"), after[:40]
    assert "(default: None)" not in text


def test_labels_help_says_it_is_a_file_and_which_formats():
    from dasksom.cli.main import build_parsers

    (labels,) = [a for a in build_parsers()[1]["train"]._actions if a.dest == "labels"]
    assert labels.metavar == "FILE" and "a file of labels, one per row" in labels.help
    assert all(ext in labels.help for ext in (".npy", ".npz", ".csv", ".parquet"))


@pytest.mark.parametrize("command", ["train", "predict", "plot"])
def test_data_help_names_every_format_read(command):
    from dasksom.cli.main import build_parsers
    from dasksom.io import SUPPORTED_EXTENSIONS

    (data,) = [a for a in build_parsers()[1][command]._actions if a.dest == "data"]
    assert all(ext in data.help for ext in SUPPORTED_EXTENSIONS)


def test_train_reads_a_csv_with_its_header_delimiter_and_columns(tmp_path, blobs):
    import pandas as pd

    table = pd.DataFrame(blobs, columns=list("abcde")).assign(name="x")
    table.to_csv(tmp_path / "x.csv", sep=";", index=False)
    out = tmp_path / "out"
    args = ["train", str(tmp_path / "x.csv"), "--size", "3x4", "--epochs", "2", "--no-plots"]
    args += ["--delimiter", ";", "--csv-header", "yes", "--columns", "a,2,-3"]
    assert main([*args, "--output", str(out)]) == 0
    expected = dasksom.SOM(3, 4, init="pca", epochs=2, random_state=0).fit(blobs[:, [0, 2, 3]])
    np.testing.assert_allclose(dasksom.load(out / "map.npz").weights_, expected.weights_, rtol=1e-6)
    settings = json.loads((out / "summary.json").read_text())["settings"]
    assert settings["columns"] == ["a", 2, -3] and settings["delimiter"] == ";"


def test_csv_options_for_data_that_is_no_csv_are_usage_errors(tmp_path, blobs, capsys):
    np.save(tmp_path / "x.npy", blobs)
    args = ["train", str(tmp_path / "x.npy"), "--output", str(tmp_path / "out")]
    assert main([*args, "--delimiter", ";"]) == 2
    assert "not a .csv file" in capsys.readouterr().err
    assert main([*args, "--columns", "0,1"]) == 2
    assert "--columns picks columns of a CSV or Parquet table" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
