import itertools

import dask
import dask.array as da
import numpy as np
import pytest

from dasksom import SOM, Lattice
from dasksom.core.neighborhood import neighborhood_matrix
from dasksom.core.sums import partial_sums
from dasksom.training.engine import WORKER_MMAP_THRESHOLD, epoch_sums, update_weights

from ..support import reference

GRID = list(
    itertools.product(
        ["square", "hexagonal"],
        [False, True],
        ["euclidean", "cosine", "manhattan"],
        ["gaussian", "bubble", "mexican_hat"],
    )
)


@pytest.fixture(scope="module")
def small():
    rng = np.random.default_rng(3)
    centres = rng.normal(scale=3.0, size=(3, 4))
    return centres[rng.integers(0, 3, 60)] + rng.normal(size=(60, 4))


@pytest.mark.parametrize("topology,pbc,metric,neighborhood", GRID)
def test_every_epoch_matches_the_per_sample_reference(small, topology, pbc, metric, neighborhood):
    lattice = Lattice(4, 6, topology, pbc)
    data = da.from_array(small, chunks=(17, 4))
    weights = np.random.default_rng(4).normal(size=(24, 4))
    for sigma in reference.sigma_schedule(4, 6, 3):
        mine = update_weights(
            lattice, epoch_sums(data, weights, metric), weights, sigma, neighborhood
        )
        weights = reference.batch_epoch(
            small, weights, sigma, 4, 6, topology, pbc, metric, neighborhood
        )
        np.testing.assert_allclose(mine, weights, rtol=1e-9, atol=1e-9)


# A wide radius on a small torus pulls nodes onto (nearly) the same weights, and bubble maps
# hold exactly tied nodes: then a BMU rests on rounding.  The whole-run comparison keeps the
# radius small so nodes stay apart; the epoch-by-epoch one above covers the rest.
@pytest.mark.parametrize("topology,pbc,metric,neighborhood", GRID)
def test_training_matches_the_per_sample_reference(small, topology, pbc, metric, neighborhood):
    start = np.random.default_rng(4).normal(size=(24, 4))
    som = SOM(
        4,
        6,
        topology=topology,
        pbc=pbc,
        metric=metric,
        neighborhood=neighborhood,
        init=start,
        epochs=3,
        sigma=(1.2, 0.6),
        chunks=17,
    ).fit(small)
    sigmas = [1.2 * 0.5 ** (t / 2) for t in range(3)]
    expected = reference.train(small, start, 4, 6, topology, pbc, metric, neighborhood, sigmas)
    np.testing.assert_allclose(som.weights_, expected, rtol=1e-9, atol=1e-9)


def test_update_keeps_weights_where_no_neighbourhood_mass_arrives():
    lattice = Lattice(1, 6, "square")
    weights = np.arange(12.0).reshape(6, 2)
    sums = partial_sums(np.array([[100.0, 100.0]]), weights, "euclidean")
    updated = update_weights(lattice, sums, weights, sigma=1.0, neighborhood="bubble")
    bmu = int(np.argmax(sums.counts))
    far = np.abs(np.arange(6) - bmu) > 1
    np.testing.assert_array_equal(updated[far], weights[far])
    np.testing.assert_array_equal(updated[~far], [[100.0, 100.0]] * int((~far).sum()))


def test_update_is_the_neighbourhood_weighted_mean(small):
    lattice = Lattice(4, 5, "hexagonal")
    weights = np.random.default_rng(5).normal(size=(20, 4))
    sums = partial_sums(small, weights, "euclidean")
    h = neighborhood_matrix(lattice, 1.5, "gaussian")
    expected = (h @ sums.sums) / (h @ sums.counts)[:, None]
    np.testing.assert_allclose(
        update_weights(lattice, sums, weights, 1.5, "gaussian"), expected, rtol=1e-12
    )


@pytest.mark.parametrize("chunks", [1, 7, 60])
def test_epoch_sums_do_not_depend_on_chunking(small, chunks):
    weights = np.random.default_rng(6).normal(size=(24, 4))
    whole = partial_sums(small, weights, "euclidean")
    summed = epoch_sums(da.from_array(small, chunks=(chunks, 4)), weights, "euclidean")
    np.testing.assert_allclose(summed.sums, whole.sums, rtol=1e-12)
    np.testing.assert_array_equal(summed.counts, whole.counts)


def fit(data, **kwargs):
    return SOM(6, 7, init="pca", epochs=4, **kwargs).fit(data).weights_


def test_same_chunking_gives_bit_identical_weights(blobs):
    np.testing.assert_array_equal(fit(blobs, chunks=37), fit(blobs, chunks=37))


@pytest.mark.parametrize("chunks", [300, 64, 9])
def test_chunkings_agree_within_tolerance(blobs, chunks):
    np.testing.assert_allclose(fit(blobs, chunks=chunks), fit(blobs, chunks=50), rtol=1e-4)


def test_random_state_makes_random_init_reproducible(blobs):
    a = SOM(5, 5, epochs=2, random_state=7).fit(blobs).weights_
    b = SOM(5, 5, epochs=2, random_state=7).fit(blobs).weights_
    np.testing.assert_array_equal(a, b)


def test_local_cluster_gives_the_threaded_map(blobs, client):
    on_cluster = fit(blobs, chunks=40)
    with dask.config.set(scheduler="threads"):
        threaded = fit(blobs, chunks=40)
    np.testing.assert_array_equal(on_cluster, threaded)


def test_worker_count_does_not_change_the_map(blobs, cluster):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as one:
        with Client(one):
            single = fit(blobs, chunks=40)
    with Client(cluster):
        double = fit(blobs, chunks=40)
    np.testing.assert_allclose(single, double, rtol=1e-4)


def test_persisted_and_streamed_training_agree(blobs):
    np.testing.assert_array_equal(
        fit(blobs, chunks=40, persist=True), fit(blobs, chunks=40, persist=False)
    )


def test_history_records_every_epoch(blobs):
    som = SOM(5, 5, epochs=3, random_state=0).fit(blobs)
    assert [h["epoch"] for h in som.history_] == [0, 1, 2]
    assert all(
        {"sigma", "quantization_error", "map_difference", "seconds"} <= set(h) for h in som.history_
    )


def test_early_stopping_ends_training_once_the_map_settles(blobs):
    som = SOM(5, 5, epochs=50, sigma=(1.0, 1.0), random_state=0, tol=1e-3, n_iter_no_change=2).fit(
        blobs
    )
    assert som.n_iter_ < 50
    assert all(h["map_difference"] < 1e-3 for h in som.history_[-2:])


def test_training_lowers_the_quantization_error(blobs):
    som = SOM(6, 6, epochs=10, init="random", random_state=0).fit(blobs)
    assert som.history_[-1]["quantization_error"] < 0.5 * som.history_[0]["quantization_error"]


def test_fusing_the_first_reduction_level_into_chunk_tasks_changes_no_bit(monkeypatch):
    from dasksom.training import engine

    rng = np.random.default_rng(9)
    data = da.from_array(rng.normal(size=(2000, 6)), chunks=10)
    weights = rng.normal(size=(9, 6))
    monkeypatch.setattr(engine, "FUSE_TASKS_PER_THREAD", 10**9)
    apart = engine.epoch_sums(data, weights, "euclidean")
    monkeypatch.setattr(engine, "FUSE_TASKS_PER_THREAD", 0)
    fused = engine.epoch_sums(data, weights, "euclidean")
    np.testing.assert_array_equal(fused.sums, apart.sums)
    np.testing.assert_array_equal(fused.distances, apart.distances)
    np.testing.assert_array_equal(fused.counts, apart.counts)


def test_numpy_input_on_a_cluster_goes_to_the_workers_not_inside_every_graph(blobs, client):
    import logging
    import warnings

    rows = np.repeat(blobs, 20, axis=0)
    threaded_free = SOM(4, 4, epochs=2, chunks=500, random_state=0)
    with (
        dask.config.set({"distributed.admin.large-graph-warning-threshold": "200kB"}),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("error", message=".*[Ll]arge graph.*")
        logging.getLogger("distributed.client").setLevel(logging.ERROR)
        som = threaded_free.fit(rows)
        assert som.predict(rows).shape == (6000,)
        som.quality(rows)
    with dask.config.set(scheduler="threads"):
        alone = SOM(4, 4, epochs=2, chunks=500, random_state=0).fit(rows)
    np.testing.assert_array_equal(som.weights_, alone.weights_)


def test_workers_a_local_cluster_starts_reuse_freed_blocks_below_32_mib(client):
    import os

    thresholds = client.run(lambda: os.environ.get("MALLOC_MMAP_THRESHOLD_"))
    assert set(thresholds.values()) == {str(WORKER_MMAP_THRESHOLD)}
