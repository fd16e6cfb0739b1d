"""The ``dasksom`` command line: the demo, training as a scheduled batch job, and the work
batch pipelines do with a trained map (``predict``, ``plot``, ``info``).

``dasksom demo`` trains on the handwritten digits that ship with scikit-learn on a local Dask
cluster and writes the map and its pictures.  ``dasksom train`` trains on any data source
(zarr, npy, npz, HDF5, Parquet, CSV) on a local cluster or a running scheduler (over TLS where
asked), with a checkpoint after every epoch so that a killed job rerun with the same command
resumes.  See docs/cli.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from dasksom import __version__
from dasksom.backends.cuda import GPUUnavailableError
from dasksom.cli.cluster import RunError, add_cluster_options, dask_cluster
from dasksom.cli.config import UsageError, effective_settings, output_path, read_config
from dasksom.cli.maps import (
    PLOT_KINDS,
    draw,
    parse_chunks,
    read_labels,
    run_info,
    run_plot,
    run_predict,
)
from dasksom.cli.progress import progress
from dasksom.core.analysis import majority_label_accuracy
from dasksom.core.initialization import INITS
from dasksom.core.lattice import TOPOLOGIES
from dasksom.core.metrics import METRICS
from dasksom.core.missing import NAN_POLICIES
from dasksom.core.neighborhood import NEIGHBORHOODS
from dasksom.core.precision import PRECISIONS
from dasksom.estimator.som import SOM
from dasksom.io.atomic import write_text
from dasksom.io.map_file import existing_map, read_map
from dasksom.io.storage import STORAGE_DTYPES

EXIT_CODES = """exit codes:
  0  success, or nothing to do (the run had already finished)
  1  data or runtime error, in one line on stderr: bad or missing data, unreachable
     scheduler, timeout, TLS refused, corrupt map or checkpoint
  2  usage error: bad flags or config file"""


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every option's default in ``--help``, and the epilog's layout kept."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # Options whose help already says their default (in words) keep it.
        if "(default" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _map_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"map size must look like HEIGHTxWIDTH, e.g. 20x30, got {text!r}"
        ) from None
    return height, width


def _features(text: str) -> list[int | str]:
    """``--features 0,3,7``: indices (or names) of features."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError("give feature indices separated by commas, e.g. 0,3,7")
    return [int(part) if part.lstrip("-").isdigit() else part for part in parts]


def _add_training_options(parser: argparse.ArgumentParser, size: str, epochs: int) -> None:
    group = parser.add_argument_group("the map and its training")
    group.add_argument("--size", type=_map_size, default=size, metavar="HxW", help="map size")
    group.add_argument("--topology", choices=TOPOLOGIES, default="hexagonal", help="lattice")
    group.add_argument(
        "--pbc",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="periodic boundaries (a torus)",
    )
    group.add_argument("--metric", choices=tuple(METRICS), default="euclidean", help="distance")
    group.add_argument(
        "--neighborhood", choices=tuple(NEIGHBORHOODS), default="gaussian", help="kernel"
    )
    group.add_argument("--init", choices=INITS, default="pca", help="initial weights")
    group.add_argument("--epochs", type=int, default=epochs, help="batch epochs")
    group.add_argument("--seed", type=int, default=0, help="random seed")
    group.add_argument(
        "--device",
        choices=("cpu", "gpu"),
        default="cpu",
        help="where the chunks are computed ('gpu': CuPy chunks; implied by --gpus)",
    )
    group.add_argument(
        "--nan-policy",
        choices=NAN_POLICIES,
        default="raise",
        help="'raise': NaN or inf in the data is an error; 'ignore': NaN marks a missing value",
    )
    group.add_argument(
        "--precision",
        choices=tuple(PRECISIONS),
        default="exact",
        help="operands of the BMU search's product during training: 'exact', or rounded to "
        "tf32, bfloat16 or float16 with float32 sums (GPU tensor cores; emulated on CPUs)",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--output", default="dasksom-output", help="folder for the map, summary.json and plots"
    )
    group.add_argument(
        "--features",
        type=_features,
        help="comma-separated feature indices for the component planes "
        "(default: the 16 with the highest weight variance)",
    )
    group.add_argument(
        "--log-json", metavar="FILE", help="append one JSON object per epoch to FILE"
    )


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of option values (long names); flags on the command line override it",
    )


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--chunks", default="auto", help="rows per chunk, or a size such as 128MiB")
    parser.add_argument("--labels", help="labels, one per row (for label maps and accuracy)")
    parser.add_argument(
        "--image-shape", type=_map_size, metavar="HxW", help="draw node weights as images"
    )


def _command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name, help=help, description=help, epilog=EXIT_CODES, formatter_class=_Formatter
    )


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``dasksom`` parser and its subcommands' parsers, by name."""
    parser = argparse.ArgumentParser(
        prog="dasksom",
        description="Distributed, out-of-core batch Self-Organizing Maps on Dask.",
        epilog=EXIT_CODES,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = _command(commands, "demo", "train on scikit-learn's handwritten digits and draw it")
    _add_training_options(demo, size="16x16", epochs=20)
    _add_output_options(demo)
    add_cluster_options(demo, workers=2)
    _add_config_option(demo)
    demo.set_defaults(run=run_demo)
    train = _command(commands, "train", "train on a data source (a batch job)")
    _add_train_arguments(train)
    train.set_defaults(run=run_train)
    predict = _command(commands, "predict", "write every row's best-matching unit or position")
    _add_predict_arguments(predict)
    predict.set_defaults(run=run_predict)
    plot = _command(commands, "plot", "draw one picture of a saved map")
    _add_plot_arguments(plot)
    plot.set_defaults(run=run_plot)
    info = _command(commands, "info", "show a saved map's settings, lattice and history")
    info.add_argument("map", help="a map (map.npz) or a checkpoint")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=run_info)
    return parser, commands.choices


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    train.add_argument(
        "data",
        help="path or URL; name an array inside a container with ::name, e.g. data.h5::images",
    )
    _add_data_options(train)
    train.add_argument(
        "--persist",
        choices=("auto", "yes", "no"),
        default="auto",
        help="keep the data in worker memory for training and the passes after it "
        "(auto: when it fits in half of it)",
    )
    train.add_argument(
        "--storage-dtype",
        choices=STORAGE_DTYPES,
        help="hold the rows in this type in (GPU) memory, e.g. float16 or uint8 for half or a "
        "quarter of float32's bytes; a value the type cannot hold is an error (default: as "
        "stored)",
    )
    train.add_argument(
        "--checkpoint",
        help="checkpoint file; rerunning the same command resumes from it "
        "(default: OUTPUT/checkpoint.npz)",
    )
    train.add_argument(
        "--force",
        action="store_true",
        help="remove an existing checkpoint and train afresh",
    )
    train.add_argument(
        "--plots", action=argparse.BooleanOptionalAction, default=True, help="draw the pictures"
    )
    _add_training_options(train, size="20x20", epochs=10)
    _add_output_options(train)
    add_cluster_options(train, workers=0)
    _add_config_option(train)


def _add_predict_arguments(predict: argparse.ArgumentParser) -> None:
    predict.add_argument("map", help="a saved map (map.npz)")
    predict.add_argument("data", help="path or URL of the rows, as for train")
    predict.add_argument(
        "--output", required=True, help="where to write: a .zarr store or a .npy file"
    )
    predict.add_argument(
        "--positions",
        action="store_true",
        help="write each row's lattice position (x, y) instead of its node index",
    )
    predict.add_argument(
        "--chunks", default="auto", help="rows per chunk, or a size such as 128MiB"
    )
    add_cluster_options(predict, workers=0)
    _add_config_option(predict)


def _add_plot_arguments(plot: argparse.ArgumentParser) -> None:
    plot.add_argument("map", help="a saved map (map.npz)")
    plot.add_argument("data", nargs="?", help="the rows, for hits, labels and projection")
    plot.add_argument("--kind", choices=tuple(PLOT_KINDS), default="umatrix", help="picture")
    plot.add_argument("--output", required=True, help="the picture file, e.g. umatrix.png")
    plot.add_argument(
        "--features", type=_features, help="comma-separated features for --kind components"
    )
    _add_data_options(plot)
    add_cluster_options(plot, workers=0)
    _add_config_option(plot)


def build_parser() -> argparse.ArgumentParser:
    """The ``dasksom`` argument parser."""
    return build_parsers()[0]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line, with the values of ``--config FILE`` as defaults.

    A bad flag or config file exits with status 2 (argparse's usage error).
    """
    parser, commands = build_parsers()
    args = parser.parse_args(argv)
    if getattr(args, "config", None) is None:
        return args
    command = commands[args.command]
    try:
        command.set_defaults(**read_config(args.config, command))
    except UsageError as exc:
        command.error(str(exc))
    return parser.parse_args(argv)


def _estimator(args: argparse.Namespace, **extra: Any) -> SOM:
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
        nan_policy=args.nan_policy,
        precision=args.precision,
        device="gpu" if getattr(args, "gpus", None) else args.device,
        # Progress comes from the command's own display, not the engine's log lines.
        verbose=False,
        **extra,
    )


def _pictures(labels: np.ndarray | None, image_shape: Sequence[int] | None) -> dict[str, str]:
    """The pictures a run draws: ``{file name: plot kind}``."""
    pictures = {
        "umatrix.png": "umatrix",
        "hits.png": "hits",
        "convergence.png": "convergence",
        "component_planes.png": "components",
    }
    if labels is not None:
        pictures.update({"labels.png": "labels", "projection.png": "projection"})
    if image_shape is not None:
        pictures["weights.png"] = "mosaic"
    return pictures


def write_results(
    som: SOM,
    data: Any,
    output: Path,
    labels: np.ndarray | None = None,
    image_shape: Sequence[int] | None = None,
    plots: bool = True,
    features: Sequence[int | str] | None = None,
    settings: dict | None = None,
) -> dict:
    """Save the map, a JSON summary and the pictures into ``output``; returns the summary.

    The data is read once: quality, hit counts and (with labels) every row's best-matching
    unit come from one pass, shared by every picture.
    """
    output.mkdir(parents=True, exist_ok=True)
    som.save(output / "map.npz")
    evaluation = som.evaluate(data, keep_bmus=labels is not None)
    summary: dict[str, Any] = {
        "map": str(output / "map.npz"),
        "size": [som.height, som.width],
        "epochs": som.n_iter_,
        "quantization_error": evaluation["quantization_error"],
        "topographic_error": evaluation["topographic_error"],
        "n_samples": evaluation["n_samples"],
        "training_seconds": sum(h["seconds"] for h in som.history_),
    }
    if hasattr(som, "warm_up_seconds_"):
        summary["warm_up_seconds"] = som.warm_up_seconds_
    if "rows_without_values" in evaluation:
        summary["rows_without_values"] = evaluation["rows_without_values"]
    bmus = evaluation.get("bmus")
    if labels is not None and bmus is not None:
        summary["majority_label_accuracy"] = majority_label_accuracy(
            bmus, labels, som.lattice_.n_nodes
        )
    if plots:
        pictures = _pictures(labels, image_shape)
        for name, kind in pictures.items():
            draw(
                kind,
                som,
                output / name,
                data=data,
                labels=labels,
                bmus=bmus,
                counts=evaluation["hit_counts"],
                image_shape=image_shape,
                features=features,
            )
        summary["plots"] = [str(output / name) for name in pictures]
    summary["settings"] = settings or {}
    write_text(output / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def run_demo(args: argparse.Namespace) -> int:
    """``dasksom demo``: the digits map, its summary and pictures."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise RunError(
            "the demo's digits ship with scikit-learn, which is not installed: "
            "pip install 'dasksom[sklearn]'"
        ) from None

    output = output_path(args.output, "output")
    log_json = output_path(args.log_json, "JSON log") if args.log_json else None
    digits = load_digits()
    data = digits.data / 16.0
    with dask_cluster(args) as where:
        print(
            f"dasksom demo: {len(data)} handwritten digits (8x8 pixels, scikit-learn's copy "
            f"of the UCI set) on {where}",
            flush=True,
        )
        with progress(log_json):
            som = _estimator(args, chunks=200).fit(data)
        summary = write_results(
            som,
            data,
            output,
            labels=digits.target,
            image_shape=(8, 8),
            features=args.features,
            settings=effective_settings(args),
        )
    _report(summary, output)
    return 0


def _report(summary: dict, output: Path) -> None:
    line = (
        f"quantization error {summary['quantization_error']:.4f}, topographic error "
        f"{summary['topographic_error']:.4f}"
    )
    if "majority_label_accuracy" in summary:
        line += f", majority-label accuracy {summary['majority_label_accuracy']:.3f}"
    print(line)
    print(
        f"wrote the map, summary.json and {len(summary.get('plots', []))} pictures to "
        f"{output.resolve()}"
    )


def _checkpoint_status(som: SOM, checkpoint: Path, force: bool) -> tuple[int, int] | None:
    """``(epochs done, epochs asked)`` of a checkpoint this run resumes from, or None.

    Prints what it found.  ``force`` removes the checkpoint instead.  A checkpoint of other
    settings gives None: ``fit`` refuses it, saying what differs.
    """
    found = existing_map(checkpoint)
    if found is None:
        return None
    if force:
        found.unlink()
        print(f"--force: removed the checkpoint {found}; training afresh")
        return None
    try:
        params, _, _, history = read_map(found)
    except ValueError as exc:
        raise RunError(f"{exc} Use --force to discard it and train afresh.") from None
    if som.changed_settings(params):
        return None
    done, asked = len(history), int(params["epochs"])
    if done < asked:
        print(f"resuming from epoch {done} of {asked} ({found})", flush=True)
    return done, asked


def _fit(som: SOM, data: Any, checkpoint: Path) -> SOM:
    """``som.fit(data)``, pointing at ``--force`` when the checkpoint is refused."""
    try:
        return som.fit(data)
    except ValueError as exc:
        if str(checkpoint) not in str(exc):
            raise
        raise RunError(f"{exc} Rerun with --force to delete it and train afresh.") from None


def run_train(args: argparse.Namespace) -> int:
    """``dasksom train``: train (or resume, or find the run finished) and write the results."""
    from dasksom.io.sources import as_dask_array
    from dasksom.io.storage import as_storage_dtype
    from dasksom.training.engine import should_persist

    output = output_path(args.output, "output")
    checkpoint = output_path(args.checkpoint or output / "checkpoint.npz", "checkpoint")
    log_json = output_path(args.log_json, "JSON log") if args.log_json else None
    chunks = parse_chunks(args.chunks)
    som = _estimator(args, chunks=chunks, persist=False, checkpoint=checkpoint)
    status = _checkpoint_status(som, checkpoint, args.force)
    # (epochs done, epochs asked) of a checkpoint that holds every epoch, else None.
    finished = status if status is not None and status[0] >= status[1] else None
    output.mkdir(parents=True, exist_ok=True)
    with dask_cluster(args) as where:
        data = as_dask_array(args.data, chunks=chunks)
        if args.storage_dtype is not None:
            data = as_storage_dtype(data, args.storage_dtype)
        labels = read_labels(args.labels, data.shape[0]) if args.labels else None
        print(
            f"dasksom train: {data.shape[0]} rows x {data.shape[1]} features ({data.dtype}) in "
            f"{data.numblocks[0]} chunks on {where}",
            flush=True,
        )
        if (
            finished is not None
            and (output / "map.npz").is_file()
            and (output / "summary.json").is_file()
        ):
            # No epoch is left: fit only checks that the checkpoint is this data's.
            _fit(som, data, checkpoint)
            print(
                f"the run is already finished ({finished[0]} of {finished[1]} epochs; "
                f"{checkpoint}); nothing to do; use --force to retrain"
            )
            return 0
        if finished is not None:
            print(f"the checkpoint holds all {finished[1]} epochs; writing the results")
        persist_choices: dict[str, bool | str] = {"auto": "auto", "yes": True, "no": False}
        persist = persist_choices[args.persist]
        if should_persist(data, persist):
            # Kept for the passes after training too, not only for the epochs.
            data = data.persist()
        with progress(log_json):
            _fit(som, data, checkpoint)
        summary = write_results(
            som,
            data,
            output,
            labels=labels,
            image_shape=args.image_shape,
            plots=args.plots,
            features=args.features,
            settings=effective_settings(args),
        )
    _report(summary, output)
    return 0


def _one_line(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dasksom``; returns the exit status (see ``EXIT_CODES``)."""
    args = parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        print(f"dasksom {args.command}: usage error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (RunError, GPUUnavailableError, ValueError, OSError, KeyError, ImportError) as exc:
        print(f"dasksom {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
