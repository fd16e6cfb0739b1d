"""A `dasksom train` job SIGKILLed at random moments and rerun each time ends with the map of an
uninterrupted run.  CI kills it 4 times; DASKSOM_SOAK_KILLS=20 runs the full soak."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import dasksom

pytestmark = pytest.mark.slow

KILLS = int(os.environ.get("DASKSOM_SOAK_KILLS", "4"))


def train_command(data, output):
    return [
        sys.executable,
        "-m",
        "dasksom.cli",
        "train",
        str(data),
        "--size",
        "8x8",
        "--epochs",
        "12",
        "--init",
        "random",
        "--chunks",
        "500",
        "--workers",
        "0",
        "--no-plots",
        "--output",
        str(output),
    ]


def run(command, kill_after=None):
    """Run ``command``; SIGKILL it after ``kill_after`` seconds.  True if it ran to the end."""
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = process.communicate(timeout=kill_after if kill_after is not None else 300)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
        return False
    assert process.returncode == 0, err.decode()
    return True


@pytest.mark.timeout(600)
def test_a_job_killed_at_random_moments_ends_with_the_uninterrupted_map(tmp_path):
    rng = np.random.default_rng(2026)
    x = rng.normal(size=(6000, 12)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    started = time.perf_counter()
    assert run(train_command(tmp_path / "x.npy", tmp_path / "whole"))
    duration = time.perf_counter() - started
    resumed = tmp_path / "killed"
    epochs_at_kills = []
    while len(epochs_at_kills) < KILLS:
        if run(train_command(tmp_path / "x.npy", resumed), rng.uniform(0.2, duration)):
            (resumed / "checkpoint.npz").unlink()
            (resumed / "map.npz").unlink()
            continue
        checkpoint = resumed / "checkpoint.npz"
        epochs_at_kills.append(len(dasksom.load(checkpoint).history_) if checkpoint.exists() else 0)
    print(f"uninterrupted run {duration:.1f} s; epochs done at each kill: {epochs_at_kills}")
    while not run(train_command(tmp_path / "x.npy", resumed)):
        pass
    whole = dasksom.load(tmp_path / "whole" / "map.npz")
    after_kills = dasksom.load(resumed / "map.npz")
    np.testing.assert_array_equal(after_kills.weights_, whole.weights_)
    assert [h["sigma"] for h in after_kills.history_] == [h["sigma"] for h in whole.history_]
