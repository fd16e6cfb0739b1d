"""The pruned search's basis: a sample's principal axes against the whole data's.

Training takes the mean and principal axes of the bound from a sample of rows spread over every
chunk (``training.search_plans.search_sample``: 4,096 rows), not from the whole data.  Exactness
does not depend on the basis; the candidates per row (the true distances the pruned search
computes) do.  On MNIST (60,000 x 784 in [0, 1]) with a 50x50 hexagonal map, PCA start and 10
epochs, this counts them for every row on the weights each epoch started from, with both bases.

    python benchmarks/sample_basis.py [--quick]
"""

from __future__ import annotations

import numpy as np
from _common import Table, finish, load_mnist, parser, start_state
from roofline import candidates_by_epoch


def main() -> None:
    args = parser(__doc__).parse_args()
    start = start_state()
    x, _ = load_mnist(10_000 if args.quick else None)
    epochs = 3 if args.quick else 10
    sample = candidates_by_epoch(x, 50, 50, epochs)
    whole = candidates_by_epoch(x, 50, 50, epochs, whole_data_basis=True)
    table = Table(
        f"Candidates per row of the pruned search, sample basis vs whole-data basis: MNIST "
        f"{x.shape[0]} x {x.shape[1]}, 50x50 hexagonal, PCA start, {epochs} epochs",
        [
            "epoch",
            "sample median",
            "whole median",
            "sample mean distances",
            "whole mean distances",
            "sample / whole",
        ],
    )
    ratios = []
    for ours, theirs in zip(sample, whole, strict=True):
        ratios.append(ours["evaluated mean"] / theirs["evaluated mean"])
        table.add(
            ours["epoch"],
            ours["candidates median"],
            theirs["candidates median"],
            round(ours["evaluated mean"], 2),
            round(theirs["evaluated mean"], 2),
            round(ratios[-1], 3),
        )
    table.notes.append(
        f"sample / whole, mean true distances per row: {min(ratios):.3f} to {max(ratios):.3f}"
    )
    table.details["geometric mean ratio"] = float(np.exp(np.mean(np.log(ratios))))
    finish("sample_basis", table, args.quick, start)


if __name__ == "__main__":
    main()
