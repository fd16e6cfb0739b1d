"""Helpers shared by the benchmark scripts: data, memory, child processes, tables, results.

Every benchmark prints one :class:`Table` and writes it, with the command line, the date and
the machine, to ``benchmarks/results/<name>.json`` (``<name>.quick.json`` for ``--quick``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import resource
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
MNIST_ENV = "DASKSOM_MNIST"
# shared/ sits beside the repository, both in a session's checkout and in CI's clone.
DEFAULT_MNIST = BENCH_DIR.parent.parent / "shared" / "data" / "mnist.npz"
MIB = 2**20


def parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the ``--quick`` flag that every benchmark takes."""
    arguments = argparse.ArgumentParser(
        description=(description or "").strip().splitlines()[0] if description else None
    )
    arguments.add_argument(
        "--quick", action="store_true", help="tiny smoke version: small data, few repeats"
    )
    return arguments


# --- data -------------------------------------------------------------------------------------


def mnist_path() -> Path:
    return Path(os.environ.get(MNIST_ENV, DEFAULT_MNIST))


def load_mnist(n_rows: int | None = None, *, scale: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_rows`` MNIST training images as ``(n, 784)`` float32, and their labels.

    ``scale`` maps the pixels to [0, 1]; otherwise they keep their raw 0..255 values.
    """
    path = mnist_path()
    if not path.is_file():
        raise SystemExit(
            f"MNIST not found at {path}. These benchmarks need the keras-layout mnist.npz "
            f"(x_train (60000, 28, 28) uint8, y_train); set {MNIST_ENV}=/path/to/mnist.npz."
        )
    with np.load(path) as archive:
        images = archive["x_train"][:n_rows]
        labels = archive["y_train"][:n_rows].astype(np.int64)
    x = images.reshape(len(images), -1).astype(np.float32)
    if scale:
        x /= np.float32(255.0)
    return x, labels


# --- memory and child processes ---------------------------------------------------------------


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (``VmHWM``), in MiB.

    Not ``ru_maxrss``: on Linux an exec'd child's ``ru_maxrss`` starts from its parent's
    high-water mark, so ``wait4`` and ``RUSAGE_CHILDREN`` over-report a small child of a big
    parent.  ``VmHWM`` belongs to the process image alone.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakMemory:
    """Samples the resident memory of some processes from a thread; keeps each one's peak.

    ``pids`` is called once at the start; a process that exits is dropped silently.
    """

    def __init__(self, pids: Callable[[], Iterable[int]], interval: float = 0.05) -> None:
        self._pids = pids
        self.interval = interval
        self.peaks: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        processes = [psutil.Process(pid) for pid in self._pids()]
        while processes:
            for process in list(processes):
                try:
                    rss = process.memory_info().rss
                except psutil.Error:
                    processes.remove(process)
                    continue
                self.peaks[process.pid] = max(self.peaks.get(process.pid, 0), rss)
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peaks_mib(self) -> dict[int, float]:
        return {pid: rss / MIB for pid, rss in self.peaks.items()}


@dataclass
class ChildRun:
    """What a child process did: exit status, wall time, sampled peak memory, its output."""

    returncode: int | None
    seconds: float
    sampled_peak_mib: float
    stdout: str
    stderr: str
    timed_out: bool

    def last_json(self) -> dict | None:
        """The last line of stdout parsed as JSON (how children report), or None."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("{")]
        return json.loads(lines[-1]) if lines else None


def run_child(
    command: Sequence[str], timeout: float, env: dict[str, str] | None = None
) -> ChildRun:
    """Run ``command`` with a time limit, sampling its resident memory meanwhile.

    A child over ``timeout`` is killed with its process group and not waited for.  Children
    that can should report their exact peak themselves (:func:`peak_rss_mib`); the sampled
    peak is for those that cannot (killed, crashed).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, start_new_session=True)
        timed_out = False
        with PeakMemory(lambda: [process.pid]) as memory:
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        out.seek(0)
        err.seek(0)
        return ChildRun(
            None if timed_out else process.returncode,
            time.perf_counter() - started,
            max(memory.peaks_mib().values(), default=0.0),
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            timed_out,
        )


# --- timing -----------------------------------------------------------------------------------


def timings(run: Callable[[], object], repeats: int) -> list[float]:
    """Wall time of each of ``repeats`` calls of ``run``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def median_seconds(run: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``run``."""
    return float(np.median(timings(run, repeats)))


def min_seconds(run: Callable[[], object], repeats: int) -> float:
    """Fastest of ``repeats`` calls of ``run``: for fixed work that other load only slows."""
    return min(timings(run, repeats))


def median_epoch_seconds(history: list[dict]) -> float:
    """Median epoch time, skipping the first epoch (warm-up: first BLAS calls, data loading)."""
    seconds = [entry["seconds"] for entry in history]
    return float(np.median(seconds[1:] if len(seconds) > 1 else seconds))


def local_cluster(n_workers: int, log_level: int = logging.ERROR, **kwargs):
    """A ``LocalCluster`` of one-thread workers and a ``Client`` on it (made default).

    Workers log from ``log_level`` up; ``client.get_worker_logs()`` sees only those records.
    """
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers,
        threads_per_worker=1,
        dashboard_address=":0",
        silence_logs=log_level,
        **kwargs,
    )
    return cluster, Client(cluster)


def scored_som(weights: np.ndarray, height: int, width: int, **settings):
    """A fitted ``dasksom.SOM`` holding ``weights`` (e.g. another library's), to score them.

    Every library's map is then scored by the same ``quantization_error`` /
    ``topographic_error``.  ``settings``: ``topology`` and ``pbc`` for the lattice, the rest
    (``metric``) for the estimator.
    """
    from dasksom import SOM, Lattice

    topology = settings.pop("topology", "hexagonal")
    lattice = Lattice(height, width, topology, bool(settings.pop("pbc", False)))
    return SOM.from_weights(weights, lattice, **settings)


def pca_init(x: np.ndarray, height: int, width: int) -> np.ndarray:
    """dasksom's PCA starting weights for ``x`` on a hexagonal map (deterministic)."""
    import dask.array as da

    from dasksom import Lattice
    from dasksom.core.initialization import initial_weights

    lattice = Lattice(height, width, "hexagonal")
    return initial_weights(da.from_array(x), lattice, "pca", np.random.default_rng(0))


# --- results ----------------------------------------------------------------------------------


def blas_info() -> list[dict]:
    """What threadpoolctl sees: BLAS library, kernel (architecture), version, threads."""
    from threadpoolctl import threadpool_info

    keys = ("internal_api", "architecture", "version", "num_threads", "threading_layer")
    found = threadpool_info()
    return [{key: info.get(key) for key in keys} for info in found if info["user_api"] == "blas"]


def machine_info() -> dict:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "processor": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "blas": blas_info(),
        "env": {name: os.environ.get(name) for name in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")},
        "load_average_1m": os.getloadavg()[0],
    }


def code_state() -> dict:
    """The commit measured, and the engine files that differed from it (work in progress)."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", *args], cwd=BENCH_DIR.parent, capture_output=True, text=True
        )
        return result.stdout.strip()

    changed = git("status", "--porcelain", "--", "dasksom")
    return {"commit": git("rev-parse", "--short", "HEAD"), "dasksom_changes": changed.splitlines()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


@dataclass
class Table:
    """One benchmark's result: a titled table, plus notes and free-form details for the JSON."""

    title: str
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def add(self, *row) -> None:
        self.rows.append(list(row))

    def render(self) -> str:
        cells = [[_cell(value) for value in row] for row in self.rows]
        widths = [
            max([len(column)] + [len(row[i]) for row in cells])
            for i, column in enumerate(self.columns)
        ]
        lines = [self.title, ""]
        lines.append("  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=True)))
        lines.append("  ".join("-" * w for w in widths))
        for row, values in zip(cells, self.rows, strict=True):
            # Text left, numbers right, so that digits line up.
            lines.append(
                "  ".join(
                    c.ljust(w) if isinstance(v, str) else c.rjust(w)
                    for c, v, w in zip(row, values, widths, strict=True)
                )
            )
        lines.extend(f"* {note}" for note in self.notes)
        return "\n".join(lines)

    def markdown(self) -> str:
        """The table as GitHub markdown, for docs/performance.md."""
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rows]
        return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if not np.isfinite(value):
            return str(value)
        magnitude = abs(value)
        if magnitude >= 100:
            return f"{value:.0f}"
        if magnitude >= 1:
            return f"{value:.2f}"
        return f"{value:.3g}"
    return str(value)


def start_state() -> dict:
    """Load average and code at a benchmark's start, recorded beside those at its end.

    Other work on the machine, or a commit landing mid-run, then shows in the record.
    """
    return {"load_average_1m": os.getloadavg()[0], "code": code_state()}


def finish(name: str, table: Table, quick: bool, start: dict) -> Path:
    """Print the table and write it with its provenance to ``results/<name>[.quick].json``."""
    print(table.render(), flush=True)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}{'.quick' if quick else ''}.json"
    machine = machine_info()
    machine["load_average_1m_at_start"] = start["load_average_1m"]
    record = {
        "name": name,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "quick": quick,
        "machine": machine,
        "code": code_state(),
        "code_at_start": start["code"],
        "title": table.title,
        "columns": table.columns,
        "rows": table.rows,
        "notes": table.notes,
        "details": table.details,
        "markdown": table.markdown(),
    }
    path.write_text(json.dumps(record, indent=2, default=_jsonable) + "\n")
    print(f"\nwritten to {path.relative_to(BENCH_DIR.parent)}")
    return path


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
