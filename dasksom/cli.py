"""The ``dasksom`` command line: the demo, and training as a scheduled batch job.

``dasksom demo`` trains on the handwritten digits that ship with scikit-learn on a local Dask
cluster and writes the map and its pictures.  ``dasksom train`` trains on any data source
(zarr, npy, npz, HDF5, Parquet, CSV) on a local cluster or an existing scheduler, with a
checkpoint after every epoch so that a killed job rerun with the same command resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import dask.array as da
import numpy as np

from .estimator import SOM
from .evaluation import majority_label_accuracy
from .kernels import METRICS, to_host
from .lattice import TOPOLOGIES
from .neighborhood import NEIGHBORHOODS

logger = logging.getLogger("dasksom")


def _map_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"map size must look like HEIGHTxWIDTH, e.g. 20x30, got {text!r}"
        ) from None
    return height, width


def _add_training_options(parser: argparse.ArgumentParser, size: str, epochs: int) -> None:
    parser.add_argument(
        "--size",
        type=_map_size,
        default=_map_size(size),
        metavar="HxW",
        help=f"map height x width (default {size})",
    )
    parser.add_argument("--topology", choices=TOPOLOGIES, default="hexagonal")
    parser.add_argument("--pbc", action="store_true", help="periodic boundaries (a torus)")
    parser.add_argument("--metric", choices=METRICS, default="euclidean")
    parser.add_argument("--neighborhood", choices=NEIGHBORHOODS, default="gaussian")
    parser.add_argument("--init", choices=("random", "sample", "pca"), default="pca")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("dasksom-output"),
        help="folder for the map, its summary and plots",
    )


def _add_cluster_options(parser: argparse.ArgumentParser, workers: int) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--workers",
        type=int,
        default=workers,
        help=f"start a local cluster of this many worker processes "
        f"(default {workers}; 0 uses the local threaded scheduler)",
    )
    group.add_argument(
        "--scheduler-address",
        help="connect to a running scheduler, e.g. tcp://head:8786 "
        "(tls:// uses the TLS settings of your dask config)",
    )
    group.add_argument(
        "--scheduler-file",
        help="connect through a scheduler file (dask scheduler --scheduler-file)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dasksom", description="Distributed, out-of-core batch Self-Organizing Maps."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser(
        "demo", help="train on scikit-learn's handwritten digits and draw the map"
    )
    _add_training_options(demo, size="16x16", epochs=20)
    _add_cluster_options(demo, workers=2)

    train = commands.add_parser("train", help="train on a data source (a batch job)")
    train.add_argument(
        "data",
        help="path or URL; name an array inside a container with ::name, e.g. data.h5::images",
    )
    train.add_argument("--labels", help="optional labels (one per row) for the label map")
    train.add_argument(
        "--image-shape",
        type=_map_size,
        metavar="HxW",
        help="draw node weights as images of this shape",
    )
    train.add_argument(
        "--chunks", default="auto", help="rows per chunk, or a size such as 128MiB (default auto)"
    )
    train.add_argument(
        "--persist",
        choices=("auto", "yes", "no"),
        default="auto",
        help="keep the data in worker memory between epochs (default auto)",
    )
    train.add_argument(
        "--checkpoint",
        type=Path,
        help="checkpoint file (default OUTPUT/checkpoint.npz); rerunning the "
        "same command resumes from it",
    )
    train.add_argument("--no-plots", action="store_true", help="write no pictures")
    _add_training_options(train, size="20x20", epochs=10)
    _add_cluster_options(train, workers=0)
    return parser


@contextlib.contextmanager
def dask_cluster(args: argparse.Namespace) -> Iterator[str]:
    """Connect to (or start) the cluster the arguments ask for; yields its description."""
    if args.scheduler_address or args.scheduler_file:
        from distributed import Client

        with Client(address=args.scheduler_address, scheduler_file=args.scheduler_file) as c:
            yield f"scheduler {c.scheduler.address}"
        return
    if args.workers <= 0:
        yield "the local threaded scheduler"
        return
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        yield f"a local cluster of {args.workers} worker processes ({client.dashboard_link})"


def _estimator(args: argparse.Namespace, **extra) -> SOM:
    height, width = args.size
    return SOM(
        height,
        width,
        topology=args.topology,
        pbc=args.pbc,
        metric=args.metric,
        neighborhood=args.neighborhood,
        init=args.init,
        epochs=args.epochs,
        random_state=args.seed,
        verbose=True,
        **extra,
    )


def write_results(
    som: SOM,
    data,
    output: Path,
    labels: np.ndarray | None = None,
    image_shape: Sequence[int] | None = None,
    plots: bool = True,
) -> dict:
    """Save the map, a JSON summary and the pictures into ``output``; returns the summary."""
    from . import plotting

    output.mkdir(parents=True, exist_ok=True)
    som.save(output / "map.npz")
    summary = {
        "map": str(output / "map.npz"),
        "size": [som.height, som.width],
        "epochs": som.n_iter_,
        "quantization_error": som.quantization_error(data),
        "topographic_error": som.topographic_error(data),
        "training_seconds": sum(h["seconds"] for h in som.history_),
    }
    if labels is not None:
        nodes = som.predict(data)
        nodes = to_host(nodes.compute()) if isinstance(nodes, da.Array) else nodes
        summary["majority_label_accuracy"] = majority_label_accuracy(
            nodes, labels, som.lattice_.n_nodes
        )
    if plots:
        pictures = {
            "umatrix.png": lambda f: plotting.plot_umatrix(som, print_out=True, file_name=f),
            "hits.png": lambda f: plotting.plot_hits(som, data, print_out=True, file_name=f),
            "convergence.png": lambda f: plotting.plot_convergence(
                som.history_, print_out=True, file_name=f
            ),
            "component_planes.png": lambda f: plotting.plot_component_planes(
                som,
                features=list(range(min(som.n_features_in_, 16))),
                print_out=True,
                file_name=f,
            ),
        }
        if labels is not None:
            pictures["labels.png"] = lambda f: plotting.plot_labels(
                som, data, labels, print_out=True, file_name=f
            )
            pictures["projection.png"] = lambda f: plotting.plot_projection(
                som, data, labels=labels, print_out=True, file_name=f
            )
        if image_shape is not None:
            pictures["weights.png"] = lambda f: plotting.plot_weight_mosaic(
                som, image_shape, print_out=True, file_name=f
            )
        import matplotlib.pyplot as plt

        for name, draw in pictures.items():
            fig, _ = draw(output / name)
            plt.close(fig)
        summary["plots"] = [str(output / name) for name in pictures]
    (output / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def run_demo(args: argparse.Namespace) -> dict:
    from sklearn.datasets import load_digits

    digits = load_digits()
    data = digits.data / 16.0
    with dask_cluster(args) as where:
        print(
            f"dasksom demo: {len(data)} handwritten digits (8x8 pixels, scikit-learn's copy "
            f"of the UCI set) on {where}",
            flush=True,
        )
        som = _estimator(args, chunks=200).fit(data)
        return write_results(som, data, args.output, labels=digits.target, image_shape=(8, 8))


def run_train(args: argparse.Namespace) -> dict:
    from .io import as_dask_array

    chunks = int(args.chunks) if args.chunks.isdigit() else args.chunks
    persist = {"auto": "auto", "yes": True, "no": False}[args.persist]
    checkpoint = args.checkpoint or args.output / "checkpoint.npz"
    args.output.mkdir(parents=True, exist_ok=True)
    with dask_cluster(args) as where:
        data = as_dask_array(args.data, chunks=chunks)
        labels = None
        if args.labels:
            labels = np.asarray(as_dask_array(args.labels).compute()).ravel()
        print(
            f"dasksom train: {data.shape[0]} rows x {data.shape[1]} features in "
            f"{data.numblocks[0]} chunks on {where}",
            flush=True,
        )
        som = _estimator(args, chunks=chunks, persist=persist, checkpoint=checkpoint).fit(data)
        return write_results(
            som,
            data,
            args.output,
            labels=labels,
            image_shape=args.image_shape,
            plots=not args.no_plots,
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        summary = (run_demo if args.command == "demo" else run_train)(args)
    except (ValueError, FileNotFoundError, KeyError, ImportError) as exc:
        print(f"dasksom {args.command}: error: {exc}", file=sys.stderr)
        return 2
    print(
        f"quantization error {summary['quantization_error']:.4f}, topographic error "
        f"{summary['topographic_error']:.4f}",
        end="",
    )
    if "majority_label_accuracy" in summary:
        print(f", majority-label accuracy {summary['majority_label_accuracy']:.3f}", end="")
    print(
        f"\nwrote the map, summary.json and {len(summary.get('plots', []))} pictures to "
        f"{args.output.resolve()}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
