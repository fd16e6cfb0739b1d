"""Data larger than the workers' memory streams through them with bounded memory."""

import dask.array as da
import numpy as np
import pytest
import zarr

from dasksom import SOM
from dasksom.training import engine
from tests.support.memory import pauses, worker_peaks

pytestmark = pytest.mark.slow

# Room for a worker's imports (dask.array alone pulls in xarray and pandas where they are
# installed: about 170 MB) and its chunks below dask's pause at 80% (400 MB workers peaked at
# 310 MiB and paused), and four times less than the data.
WORKER_MEMORY = 450_000_000


@pytest.fixture(scope="module")
def big_zarr(tmp_path_factory):
    """A 3.6 GB float32 zarr array on local disk: 4 times the memory of the cluster below."""
    path = tmp_path_factory.mktemp("ooc") / "big.zarr"
    rows, features, step = 18_000_000, 50, 100_000
    array = zarr.create_array(
        str(path), shape=(rows, features), chunks=(step, features), dtype="f4", compressors=None
    )
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4.0, size=(5, features)).astype(np.float32)
    for start in range(0, rows, step):
        block = centres[rng.integers(0, 5, step)]
        block += rng.standard_normal((step, features), dtype=np.float32)
        array[start : start + step] = block
    return str(path)


def test_streams_data_larger_than_worker_memory_within_the_limit(big_zarr):
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, memory_limit=WORKER_MEMORY, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        data = da.from_zarr(big_zarr)
        assert data.nbytes >= 4 * 2 * WORKER_MEMORY
        assert not engine.should_persist(data, "auto")
        start = np.random.default_rng(1).normal(size=(9, 50))
        with worker_peaks(client) as peaks:
            som = SOM(3, 3, init=start, epochs=2).fit(data)
        paused = pauses(client)
    assert som.n_iter_ == 2
    print("worker peak RSS (MB):", {w: round(p / 1e6) for w, p in peaks.items()})
    assert len(peaks) == 2 and max(peaks.values()) < WORKER_MEMORY, peaks
    assert not paused, paused


def test_streamed_and_persisted_zarr_training_give_the_same_map(tmp_path, client):
    data = np.random.default_rng(2).normal(size=(3000, 6))
    stored = zarr.create_array(
        str(tmp_path / "x.zarr"), shape=data.shape, chunks=(500, 6), dtype="f8"
    )
    stored[:] = data
    maps = [
        SOM(4, 4, init="pca", epochs=3, persist=persist).fit(str(tmp_path / "x.zarr")).weights_
        for persist in (True, False)
    ]
    np.testing.assert_array_equal(maps[0], maps[1])
