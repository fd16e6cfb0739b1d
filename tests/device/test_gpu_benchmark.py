"""The prepared GPU check's benchmark runs its in-process sections without an error.

GPU time is scarce and the check runs once: a script error found there costs the run.  Here the
sections of ``benchmarks/gpu.py`` that run in this process (bare products, the tutorial at
every precision, the large float16 run) run on the NumPy-backed CuPy of ``fake_cupy``, with
tiny sizes.  The timings mean nothing; the test asks only that no section fails and that each
writes its rows.  Sections in child processes and clusters need a real GPU and are not run.
"""

import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from ..support import fake_cupy

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


class _Event:
    def record(self) -> None:
        self.time = time.perf_counter()

    def synchronize(self) -> None:
        pass


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)

    def standard_normal(self, shape: tuple, dtype=np.float32):
        return fake_cupy.to_device(self.rng.standard_normal(shape, dtype=dtype))


@pytest.fixture
def bench(monkeypatch):
    cupy = fake_cupy.install(monkeypatch)
    monkeypatch.setattr(cupy.cuda, "Event", _Event, raising=False)
    elapsed = lambda start, stop: 1000 * (stop.time - start.time)  # noqa: E731
    monkeypatch.setattr(cupy.cuda, "get_elapsed_time", elapsed, raising=False)
    monkeypatch.setattr(cupy, "random", types.SimpleNamespace(default_rng=_Generator), False)
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.delitem(sys.modules, "gpu", raising=False)
    import gpu

    yield gpu, cupy
    sys.modules.pop("gpu", None)


@pytest.mark.slow
def test_the_gpu_benchmarks_sections_run_and_write_their_rows(bench):
    gpu, cupy = bench
    options = gpu.options_parser().parse_args(
        ["--chunk-rows", "200", "--large-rows", "3000", "--precision-epochs", "2"]
    )
    x = np.random.default_rng(0).random((400, 784), dtype=np.float32)
    table = gpu.Table("dry run", gpu.COLUMNS)
    product = gpu.product_seconds(cupy, x, 2500)
    gpu.tutorial_rows(table, x, options, product)
    gpu.precision_rows(table, cupy, x, options)
    gpu.large_rows(table, cupy, options)
    failed = [row for row in table.rows if str(row[-1]).startswith(("failed", "skipped"))]
    assert not failed
    names = [row[0] for row in table.rows]
    assert "MNIST median epoch 2-10" in names
    assert {f"MNIST median epoch, {p}" for p in ("tf32", "bfloat16", "float16")} <= set(names)
    assert "10 epochs on 1e9 rows (PROJECTED, linear)" in names
    assert table.details["large"]["rows"] == 3000
