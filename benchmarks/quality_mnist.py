"""Quality on MNIST with the simpsom tutorial's settings, and simpsom at equal settings.

dasksom trains ``SOM(50, 50, topology="hexagonal", pbc=True, init="pca", metric="cosine",
random_state=32)`` (gaussian, 10 epochs: what the tutorial's ``SOMNet`` does underneath) on all
60,000 training images, once on raw pixels (0..255, as the tutorial) and once on pixels scaled
to [0, 1].  Then dasksom and simpsom 2.0.2 (from ``benchmarks/.venv-peers``, built by
``peers.py``) train a 20x20 map on the first 10,000 raw images with the same settings and the
same PCA starting weights (dasksom with and without periodic boundaries).

Each training runs in its own child process (``_peer_child.py``).  Reported: training seconds,
the child's peak RSS, and, by dasksom's code on the training rows: quantization error (in the
data's units, so 255 times larger on raw pixels), topographic error (periodic lattice), and
the share of images whose BMU's majority label is their own label.  Targets: the full dasksom
run faster than simpsom's 20x20 run on 10,000 images (~80 s earlier), and QE / TE no worse
than simpsom's at equal settings.

    python benchmarks/quality_mnist.py [--quick] [--limit SECONDS]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import (
    BENCH_DIR,
    Table,
    finish,
    load_mnist,
    parser,
    pca_init,
    run_child,
    scored_som,
    start_state,
)
from peers import VENV, ensure_peers, venv_python

from dasksom.core.analysis import majority_label_accuracy

CHILD = BENCH_DIR / "_peer_child.py"
METRIC = "cosine"
EPOCHS = 10
SIMPSOM_REFERENCE_SECONDS = 80.0


def main() -> None:
    arguments = parser(__doc__)
    arguments.add_argument("--limit", type=float, default=600.0, help="seconds per run")
    options = arguments.parse_args()
    start = start_state()
    full_rows, full_side, pair_rows, pair_side = (
        (3000, 10, 1000, 6) if options.quick else (60_000, 50, 10_000, 20)
    )
    simpsom_problem = ensure_peers().get("simpsom")
    table = Table(
        "MNIST quality, simpsom tutorial settings: hexagonal, PBC, cosine BMUs, gaussian, "
        f"{EPOCHS} epochs; QE / TE / label match by dasksom on the training rows",
        [
            "pixels",
            "rows",
            "map",
            "library",
            "init",
            "PBC",
            "train s",
            "peak MiB",
            "QE",
            "TE",
            "label",
        ],
    )
    # (pixels, rows, side, library, starting weights, periodic boundaries)
    runs = [
        ("raw", full_rows, full_side, "dasksom", "pca", True),
        ("[0, 1]", full_rows, full_side, "dasksom", "pca", True),
        ("raw", pair_rows, pair_side, "dasksom", "same PCA weights", True),
        ("raw", pair_rows, pair_side, "dasksom", "same PCA weights", False),
        ("raw", pair_rows, pair_side, "simpsom", "same PCA weights", True),
    ]
    results = {}
    with tempfile.TemporaryDirectory(prefix="dasksom-quality-") as scratch:
        for pixels, rows, side, library, init, pbc in runs:
            # simpsom 2.0.2 takes PBC=True but its batch step uses plain lattice distances:
            # score it on the lattice it trained on.
            trained_pbc = pbc and library == "dasksom"
            pbc_label = "yes" if trained_pbc else ("asked, ignored" if pbc else "no")
            row = [pixels, rows, f"{side}x{side}", library, init, pbc_label]
            if library == "simpsom" and simpsom_problem:
                table.add(*row, "not installed", None, None, None, None)
                table.notes.append(f"simpsom install failed: {simpsom_problem}")
                continue
            x, labels = load_mnist(rows, scale=pixels != "raw")
            data = Path(scratch, f"{pixels}-{rows}.npy")
            np.save(data, x)
            init_path = Path(scratch, f"init-{rows}-{side}.npy")
            if init != "pca" and not init_path.exists():
                np.save(init_path, pca_init(x, side, side))
            settings = {
                "library": library,
                "data": str(data),
                "init": "pca" if init == "pca" else str(init_path),
                "out": str(Path(scratch, "weights.npy")),
                "height": side,
                "width": side,
                "epochs": EPOCHS,
                "metric": METRIC,
                "pbc": pbc,
            }
            python = sys.executable if library == "dasksom" else str(venv_python())
            child = run_child([python, str(CHILD), json.dumps(settings)], options.limit)
            report = child.last_json()
            if report is None:
                status = "> limit" if child.timed_out else "failed"
                table.add(*row, status, child.sampled_peak_mib, None, None, None)
                table.notes.append(f"{library} {rows} rows: {child.stderr.strip()[-300:]}")
                continue
            som = scored_som(np.load(settings["out"]), side, side, metric=METRIC, pbc=trained_pbc)
            measured = {
                "seconds": report["train_seconds"],
                "qe": som.quantization_error(x),
                "te": som.topographic_error(x),
            }
            results[(pixels, rows, library, trained_pbc)] = measured
            table.add(
                *row,
                measured["seconds"],
                report["peak_rss_mib"],
                measured["qe"],
                measured["te"],
                majority_label_accuracy(som.predict(x), labels, som.lattice_.n_nodes),
            )
    table.notes += verdicts(results, full_rows, pair_rows)
    table.notes += [
        f"simpsom 2.0.2 from {VENV.name}: told PBC=True as in the tutorial, its batch step uses "
        "plain lattice distances, so it is scored without PBC and compared with dasksom "
        "trained without PBC",
        "label: share of rows whose BMU's majority label (over the rows it wins) is their own",
    ]
    finish("quality_mnist", table, options.quick, start)


def verdicts(results: dict, full_rows: int, pair_rows: int) -> list[str]:
    """Each target, met or not, with the numbers it compares (measured in this run)."""
    lines = []
    full = results.get(("raw", full_rows, "dasksom", True))
    ours = results.get(("raw", pair_rows, "dasksom", False))
    theirs = results.get(("raw", pair_rows, "simpsom", False))
    if full:
        bound = theirs["seconds"] if theirs else SIMPSOM_REFERENCE_SECONDS
        verdict = "met" if full["seconds"] < min(bound, SIMPSOM_REFERENCE_SECONDS) else "MISSED"
        lines.append(
            f"target speed: dasksom full run {full['seconds']:.1f} s vs simpsom 20x20 / 10,000 "
            f"rows {bound:.1f} s here (reference ~{SIMPSOM_REFERENCE_SECONDS:.0f} s): {verdict}"
        )
    if ours and theirs:
        ok = ours["qe"] <= theirs["qe"] * (1 + 1e-6) and ours["te"] <= theirs["te"] + 1e-9
        lines.append(
            f"target quality at equal settings: QE {ours['qe']:.4g} vs simpsom "
            f"{theirs['qe']:.4g}, TE {ours['te']:.4g} vs {theirs['te']:.4g}: "
            f"{'met' if ok else 'MISSED'}; simpsom / dasksom time "
            f"{theirs['seconds'] / ours['seconds']:.1f}x"
        )
    return lines


if __name__ == "__main__":
    main()
