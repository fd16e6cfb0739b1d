import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

import dasksom
from dasksom.cli import main

from .faults import killed_in_epoch


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


def test_rerunning_a_killed_train_job_resumes_to_the_same_map(tmp_path, blobs):
    np.save(tmp_path / "x.npy", blobs)
    args = ["train", str(tmp_path / "x.npy"), "--size", "4x4", "--epochs", "4"]
    args += ["--workers", "0", "--no-plots", "--output"]
    assert main([*args, str(tmp_path / "whole")]) == 0
    with killed_in_epoch(3), pytest.raises(KeyboardInterrupt):
        main([*args, str(tmp_path / "cut")])
    assert main([*args, str(tmp_path / "cut")]) == 0
    np.testing.assert_array_equal(
        dasksom.load(tmp_path / "cut" / "map.npz").weights_,
        dasksom.load(tmp_path / "whole" / "map.npz").weights_,
    )


def test_train_reports_a_missing_file_without_a_traceback(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nothing.npy"), "--output", str(tmp_path)]) == 2
    assert "nothing.npy" in capsys.readouterr().err


def test_bad_map_size_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--size", "big"])
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_train_on_scheduler_and_workers_started_from_the_command_line(tmp_path, blobs):
    np.save(tmp_path / "x.npy", blobs)
    scheduler_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    scheduler = subprocess.Popen(
        [
            *dask,
            "--port",
            "0",
            "--dashboard-address",
            ":0",
            "--scheduler-file",
            str(scheduler_file),
        ],
        stderr=subprocess.DEVNULL,
    )
    workers = []
    try:
        deadline = time.time() + 60
        while not scheduler_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "distributed.cli.dask_worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                ],
                stderr=subprocess.DEVNULL,
            )
            for _ in range(2)
        ]
        from distributed import Client

        with Client(scheduler_file=str(scheduler_file)) as client:
            client.wait_for_workers(2, timeout=60)
        assert (
            main(
                [
                    "train",
                    str(tmp_path / "x.npy"),
                    "--size",
                    "4x5",
                    "--epochs",
                    "3",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--no-plots",
                    "--output",
                    str(tmp_path / "out"),
                ]
            )
            == 0
        )
    finally:
        for process in [*workers, scheduler]:
            process.terminate()
        for process in [*workers, scheduler]:
            process.wait(timeout=30)
    on_cluster = dasksom.load(tmp_path / "out" / "map.npz").weights_
    local = dasksom.SOM(4, 5, init="pca", epochs=3, random_state=0).fit(blobs).weights_
    np.testing.assert_allclose(on_cluster, local, rtol=1e-6)
