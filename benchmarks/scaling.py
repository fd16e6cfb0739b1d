"""Scaling: epoch time on a LocalCluster of 1 and of 2 one-thread workers, and the speed-up.

MNIST 60,000 x 784 (float32 in [0, 1]) persisted on the workers, 50x50 hexagonal map, gaussian,
euclidean; the median epoch from epoch 2 on.  On this 2-core machine the ideal speed-up is 2;
the client's weight update and the reduction do not shrink with more workers.

    python benchmarks/scaling.py [--quick]
"""

from __future__ import annotations

from _common import (
    Table,
    finish,
    load_mnist,
    local_cluster,
    median_epoch_seconds,
    parser,
    start_state,
)


def epoch_seconds(x, n_workers: int, side: int, epochs: int) -> float:
    from dasksom import SOM

    cluster, client = local_cluster(n_workers)
    with cluster, client:
        som = SOM(side, side, topology="hexagonal", init="sample", epochs=epochs, random_state=0)
        return median_epoch_seconds(som.fit(x).history_)


def main() -> None:
    options = parser(__doc__).parse_args()
    start = start_state()
    rows, side, epochs = (6000, 20, 3) if options.quick else (60_000, 50, 4)
    x, _ = load_mnist(rows)
    table = Table(
        f"Scaling: MNIST {rows} x {x.shape[1]}, {side}x{side} hexagonal, LocalCluster of "
        f"one-thread workers, median epoch of epochs 2..{epochs}",
        ["workers", "epoch s", "rows / s", "speed-up", "efficiency"],
    )
    baseline = None
    for n_workers in (1, 2):
        seconds = epoch_seconds(x, n_workers, side, epochs)
        baseline = baseline or seconds
        speedup = baseline / seconds
        table.add(n_workers, seconds, rows / seconds, speedup, speedup / n_workers)
    finish("scaling", table, options.quick, start)


if __name__ == "__main__":
    main()
