"""The epoch's fixed cost per chunk: many tiny chunks, where scheduling is all there is.

200,000 x 8 float32 rows in 2,000 chunks of 100 rows, persisted; a 4x4 map.  The best of three
epochs, divided by the number of chunks, on the threaded scheduler and on a LocalCluster of two
one-thread workers; each with the first reduction level fused into the chunk tasks (the
default) and apart.  Target: under 1 ms per chunk on the LocalCluster.

    python benchmarks/scheduler_overhead.py [--quick]
"""

from __future__ import annotations

import numpy as np
from _common import Table, finish, local_cluster, min_seconds, parser, start_state


def ms_per_chunk(data, weights, fused: bool, repeats: int) -> float:
    from dasksom.training import engine

    saved = engine.FUSE_TASKS_PER_THREAD
    engine.FUSE_TASKS_PER_THREAD = saved if fused else 10**9
    try:
        engine.epoch_sums(data, weights, "euclidean")
        seconds = min_seconds(lambda: engine.epoch_sums(data, weights, "euclidean"), repeats)
    finally:
        engine.FUSE_TASKS_PER_THREAD = saved
    return 1e3 * seconds / data.numblocks[0]


def main() -> None:
    import dask
    import dask.array as da

    options = parser(__doc__).parse_args()
    start = start_state()
    n_chunks = 400 if options.quick else 2000
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(100 * n_chunks, 8)).astype(np.float32)
    weights = rng.normal(size=(16, 8))
    table = Table(
        f"Fixed cost per chunk: {n_chunks} chunks of 100 rows x 8, 4x4 map, best of 3 epochs",
        ["scheduler", "first level", "ms per chunk"],
    )
    data = da.from_array(rows, chunks=(100, 8))
    with dask.config.set(scheduler="threads"):
        local = data.persist()
        for fused in (False, True):
            table.add(
                "threaded", "fused" if fused else "apart", ms_per_chunk(local, weights, fused, 3)
            )
    cluster, client = local_cluster(2)
    with cluster, client:
        spread = client.persist(data)
        for fused in (False, True):
            label = "fused" if fused else "apart"
            table.add("LocalCluster 2x1", label, ms_per_chunk(spread, weights, fused, 3))
    finish("scheduler_overhead", table, options.quick, start)


if __name__ == "__main__":
    main()
