"""Watching a real cluster's workers: their peak resident memory and whether they paused."""

import contextlib
import threading
from collections.abc import Iterator

import psutil


def _worker_rss() -> int:
    return psutil.Process().memory_info().rss


@contextlib.contextmanager
def worker_peaks(client, interval: float = 0.1) -> Iterator[dict[str, int]]:
    """Sample every worker's RSS each ``interval`` seconds; the dict holds each one's peak."""
    peaks: dict[str, int] = {}
    done = threading.Event()

    def watch():
        while not done.wait(interval):
            for worker, rss in client.run(_worker_rss).items():
                peaks[worker] = max(peaks.get(worker, 0), rss)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield peaks
    finally:
        done.set()
        watcher.join()


def pauses(client) -> list[str]:
    """The workers' "Pausing worker" log lines: each time one passed dask's pause threshold."""
    logs = client.get_worker_logs()
    return [msg for lines in logs.values() for _, msg in lines if "pausing worker" in msg.lower()]
