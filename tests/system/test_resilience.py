"""A worker lost in the middle of training costs a recomputation, not the fit."""

import contextlib
import os
import threading
import time

import dask.array as da
import numpy as np

from dasksom import SOM


def _slow_copy(block):
    time.sleep(0.2)
    return block.copy()


def _kill(client, worker: str) -> None:
    # The worker dies before it can answer, so the call itself ends with a closed connection.
    with contextlib.suppress(OSError):
        client.run(os._exit, 1, workers=[worker])


def test_training_survives_a_worker_killed_mid_epoch(blobs):
    from distributed import Client, LocalCluster

    reference = SOM(4, 4, init="pca", epochs=3, chunks=30).fit(blobs).weights_
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        data = da.from_array(blobs, chunks=(30, 5)).map_blocks(_slow_copy)
        victim = sorted(client.scheduler_info()["workers"])[0]
        killer = threading.Timer(1.0, _kill, (client, victim))
        killer.start()
        try:
            weights = SOM(4, 4, init="pca", epochs=3, persist=False).fit(data).weights_
        finally:
            killer.cancel()
        assert victim not in client.scheduler_info()["workers"]
    np.testing.assert_array_equal(weights, reference)
