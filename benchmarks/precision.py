"""Map quality at each precision of the BMU search's product, on the MNIST tutorial's settings.

Trains ``SOM(50, 50, topology="hexagonal", pbc=True, metric="cosine", init="pca",
random_state=32)`` for 10 epochs on the 60,000 MNIST training images in [0, 1] with
``precision`` = exact, tf32, bfloat16 and float16, and scores every map with exact products:
quantization error, topographic error and the share of images whose BMU's majority label is
their own.  Each narrow map's QE and TE are reported as ratios to the exact map's.

On CPUs the narrow formats are emulated (dasksom.core.precision): the operands are rounded exactly
as a GPU's tensor cores take them, so these qualities are what a GPU run gives up to the order of
float32 additions; the times show the emulation's cost, not a GPU's speed.
Also compared: the same map trained on the pixels kept as uint8 (widened per block), and on
the [0, 1] values stored as float16 (``dasksom.io.as_storage_dtype``; scored on the float32
values, so its ratios compare like with like).

    python benchmarks/precision.py [--quick]
"""

from __future__ import annotations

import time

import dask.array as da
import numpy as np
from _common import Table, finish, load_mnist, parser, start_state

from dasksom import SOM
from dasksom.core.analysis import majority_label_accuracy
from dasksom.core.precision import PRECISIONS
from dasksom.io.storage import as_storage_dtype

SETTINGS = {"topology": "hexagonal", "pbc": True, "metric": "cosine", "init": "pca"}
EPOCHS = 10
SEED = 32


def main() -> None:
    options = parser(__doc__).parse_args()
    start = start_state()
    rows, side = (3000, 12) if options.quick else (60_000, 50)
    x, labels = load_mnist(rows)
    table = Table(
        f"MNIST {rows} x 784 in [0, 1], {side}x{side} hexagonal PBC cosine, {EPOCHS} epochs: "
        "map quality per precision of the training search (scored with exact products)",
        ["precision", "data", "train s", "QE", "TE", "label", "QE / exact", "TE / exact"],
    )
    runs = [(name, "float32") for name in PRECISIONS] + [
        ("exact", "uint8 pixels"),
        ("exact", "float16"),
        ("bfloat16", "float16"),
    ]
    stored_as = {
        "float32": x,
        "uint8 pixels": np.rint(x * 255).astype(np.uint8),
        "float16": as_storage_dtype(da.from_array(x, chunks=(10_000, -1)), "float16"),
    }
    exact: dict = {}
    for precision, stored in runs:
        data = stored_as[stored]
        som = SOM(side, side, epochs=EPOCHS, random_state=SEED, precision=precision, **SETTINGS)
        started = time.perf_counter()
        som.fit(data)
        seconds = time.perf_counter() - started
        quality = som.evaluate(x if stored == "float16" else data, keep_bmus=True)
        label = majority_label_accuracy(quality["bmus"], labels, som.lattice_.n_nodes)
        if precision == "exact" and stored == "float32":
            exact = quality
        table.add(
            precision,
            stored,
            seconds,
            quality["quantization_error"],
            quality["topographic_error"],
            label,
            quality["quantization_error"] / exact["quantization_error"],
            quality["topographic_error"] / max(exact["topographic_error"], 1e-12),
        )
        print(table.rows[-1], flush=True)
    table.notes.append(
        "narrow precisions emulated on the CPU: the same operand rounding as tensor cores, "
        "float32 accumulation; QE of the uint8 run is in pixel units (255x)"
    )
    finish("precision", table, options.quick, start)


if __name__ == "__main__":
    main()
