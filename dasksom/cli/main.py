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
from typing import Any, NoReturn

import numpy as np

from dasksom import __version__
from dasksom.backends.cuda import GPUUnavailableError
from dasksom.backends.devices import DEVICES
from dasksom.cli.cluster import add_cluster_options, dask_cluster
from dasksom.cli.config import (
    RunError,
    UsageError,
    check_writable,
    effective_settings,
    output_path,
    read_config,
    whole_number,
)
from dasksom.cli.cytometry import add_cytometry_commands
from dasksom.cli.maps import (
    CSV_HEADERS,
    PLOT_KINDS,
    draw,
    explorer_wanted,
    open_data,
    parse_chunks,
    read_labels,
    run_explore,
    run_info,
    run_plot,
    run_predict,
    write_explorer_file,
)
from dasksom.cli.progress import progress
from dasksom.core.analysis import majority_label_accuracy
from dasksom.core.bmu_search import BMU_SEARCHES
from dasksom.core.initialization import INITS
from dasksom.core.lattice import TOPOLOGIES
from dasksom.core.metrics import METRICS
from dasksom.core.missing import NAN_POLICIES
from dasksom.core.neighborhood import NEIGHBORHOODS
from dasksom.core.precision import PRECISIONS
from dasksom.estimator.som import SOM
from dasksom.estimator.summary import evaluate_and_summarize
from dasksom.io import SUPPORTED_EXTENSIONS
from dasksom.io.atomic import write_text
from dasksom.io.map_file import existing_map, read_map
from dasksom.io.storage import STORAGE_DTYPES

EXIT_CODES = """exit codes:
  0  success, or nothing to do (the run had already finished)
  1  data or runtime error, in one line on stderr: bad or missing data, an output that
     cannot be written, unreachable scheduler, timeout, TLS refused, corrupt map or
     checkpoint
  2  usage error: bad flags or values (e.g. --epochs 0), or a bad config file"""


DATA_HELP = (
    "a file, store or folder by path or URL, read by its extension ("
    + ", ".join(SUPPORTED_EXTENSIONS)
    + "), or a folder of zarr metadata or Parquet files; name an array inside a container "
    "with ::name, e.g. data.h5::images"
)


class _Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr, exit status 2, rather than the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Every optional option's default in ``--help``, and the epilog's layout kept."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        # Options whose help already says their default (in words) keep it; a required
        # option and an argument have none to show.
        if action.required or not action.option_strings or "(default" in (action.help or ""):
            return action.help
        if action.default is None and action.option_strings:
            return f"{action.help} (default: none)"
        return super()._get_help_string(action)


def _map_size(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.lower().split("x"))
    except ValueError:
        height = width = 0
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(
            f"a size must look like HEIGHTxWIDTH with both at least 1, e.g. 20x30, got {text!r}"
        )
    return height, width


def _features(text: str) -> list[int | str]:
    """``--features 0,3,7`` or ``--columns x,y``: indices (or names), comma-separated."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts:
        raise argparse.ArgumentTypeError(
            "give names or indices separated by commas, e.g. 0,3,7 or x,y"
        )
    return [int(part) if part.lstrip("-").isdigit() else part for part in parts]


def _delimiter(text: str) -> str:
    """``--delimiter``: one character; ``tab`` or ``\\t`` for a tab."""
    value = "\t" if text in ("tab", "\\t") else text
    if len(value) != 1 or value in '\r\n"':
        raise argparse.ArgumentTypeError(
            f"a delimiter is one character other than a quote, e.g. ';' or tab, got {text!r}"
        )
    return value


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
    group.add_argument(
        "--epochs", type=whole_number(1, "epochs"), default=epochs, help="batch epochs (at least 1)"
    )
    group.add_argument(
        "--seed", type=whole_number(0, "seed"), default=0, help="random seed (0 or more)"
    )
    group.add_argument(
        "--device",
        choices=DEVICES,
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
    group.add_argument(
        "--bmu-search",
        choices=BMU_SEARCHES,
        default="auto",
        help="how BMUs are found: 'brute' (every distance), 'pruned' (exact, skips the "
        "distances that cannot win), or 'auto' (prunes where a sample shows it pays)",
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
    group.add_argument(
        "--explorer",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write explorer.html, the interactive explorer of the map, from the pass over the "
        "data after training (default: when bokeh, the 'explore' extra, is installed)",
    )


def _add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="TOML file of option values (long names); flags on the command line override it",
    )


def _add_reading_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    group = parser.add_argument_group("the data")
    group.add_argument(
        "--chunks",
        type=parse_chunks,
        default="auto",
        help="rows per chunk (at least 1), a size such as 128MiB, or auto",
    )
    group.add_argument(
        "--columns",
        type=_features,
        metavar="COLS",
        help="the columns of a CSV or Parquet table to use, comma-separated, by name (x,y,z) "
        "or by position from 0 (0,2,5); they must hold numbers (default: every column)",
    )
    group.add_argument(
        "--csv-header",
        choices=tuple(CSV_HEADERS),
        default="auto",
        help="whether a CSV file's first line names the columns; auto: yes unless every "
        "field of that line is a number",
    )
    group.add_argument(
        "--delimiter",
        type=_delimiter,
        default=",",
        metavar="CHAR",
        help="the character between a CSV file's fields, e.g. ';', or tab (or \\t) for a tab "
        "(default: ',')",
    )
    return group


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = _add_reading_options(parser)
    group.add_argument(
        "--labels",
        metavar="FILE",
        help="a file of labels, one per row of the data, for the labels and projection "
        "pictures and the majority-label accuracy: a 1-D array (.npy, .npz, .zarr, .h5; "
        "numbers or text) or a table of one column of numbers (.csv, .parquet) "
        "(default: no labels)",
    )
    group.add_argument(
        "--image-shape",
        type=_map_size,
        metavar="HxW",
        help="draw node weights as images of this shape (default: no weights picture)",
    )


def _command(commands: Any, name: str, help: str) -> argparse.ArgumentParser:
    return commands.add_parser(
        name, help=help, description=help, epilog=EXIT_CODES, formatter_class=_Formatter
    )


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``dasksom`` parser and its subcommands' parsers.

    Returns
    -------
    tuple
        ``(parser, {command name: subcommand parser})``.
    """
    parser = _Parser(
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
    explore = _command(commands, "explore", "write the interactive explorer of a saved map")
    _add_explore_arguments(explore)
    explore.set_defaults(run=run_explore)
    info = _command(commands, "info", "show a saved map's settings, lattice and history")
    info.add_argument("map", metavar="MAP", help="a map (map.npz) or a checkpoint")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(run=run_info)
    cytometry = _command(commands, "cytometry", "FlowSOM: train on FCS files, map new ones")
    cytometry_commands = add_cytometry_commands(cytometry, _command, _add_config_option)
    return parser, {**commands.choices, **cytometry_commands}


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    train.add_argument("data", metavar="DATA", help=DATA_HELP)
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
        metavar="FILE",
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
    predict.add_argument("map", metavar="MAP", help="a saved map (map.npz)")
    predict.add_argument("data", metavar="DATA", help=DATA_HELP)
    predict.add_argument(
        "--output", required=True, help="where to write: a .zarr store or a .npy file"
    )
    predict.add_argument(
        "--positions",
        action="store_true",
        help="write each row's lattice position (x, y) instead of its node index",
    )
    _add_reading_options(predict)
    add_cluster_options(predict, workers=0)
    _add_config_option(predict)


def _add_plot_arguments(plot: argparse.ArgumentParser) -> None:
    plot.add_argument("map", metavar="MAP", help="a saved map (map.npz)")
    plot.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="the rows (optional; hits, labels and projection need them): " + DATA_HELP,
    )
    plot.add_argument("--kind", choices=tuple(PLOT_KINDS), default="umatrix", help="picture")
    plot.add_argument("--output", required=True, help="the picture file, e.g. umatrix.png")
    plot.add_argument(
        "--features", type=_features, help="comma-separated features for --kind components"
    )
    _add_data_options(plot)
    add_cluster_options(plot, workers=0)
    _add_config_option(plot)


def _add_explore_arguments(explore: argparse.ArgumentParser) -> None:
    explore.add_argument("map", metavar="MAP", help="a saved map (map.npz)")
    explore.add_argument(
        "data",
        nargs="?",
        metavar="DATA",
        help="the rows (optional; hits, QE, labels and row samples need them): " + DATA_HELP,
    )
    explore.add_argument("-o", "--output", default="explorer.html", help="the HTML file to write")
    explore.add_argument(
        "--clusters",
        metavar="FILE",
        help="a file of one cluster per node (e.g. from SOMNet.cluster), shown as a layer",
    )
    explore.add_argument(
        "--sample-size",
        type=whole_number(0, "--sample-size"),
        default=8,
        metavar="K",
        help="row ids kept per node (a reproducible sample)",
    )
    _add_data_options(explore)
    add_cluster_options(explore, workers=0)
    _add_config_option(explore)


def build_parser() -> argparse.ArgumentParser:
    """The ``dasksom`` argument parser.

    Returns
    -------
    argparse.ArgumentParser
    """
    return build_parsers()[0]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line, with the values of ``--config FILE`` as defaults.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments after ``dasksom``; None reads ``sys.argv``.

    Returns
    -------
    argparse.Namespace

    Raises
    ------
    SystemExit
        With status 2 (argparse's usage error) for a bad flag, value or config file.
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
    """The map the options ask for, its settings checked: a bad combination (such as
    ``--precision bfloat16 --metric manhattan``) is a usage error before anything starts."""
    height, width = args.size
    som = SOM(
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
        bmu_search=args.bmu_search,
        device="gpu" if getattr(args, "gpus", None) else args.device,
        # Progress comes from the command's own display, not the engine's log lines.
        verbose=False,
        **extra,
    )
    try:
        som._validate_params()
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return som


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
    explorer: bool | None = None,
) -> dict:
    """Save the map, a JSON summary, the pictures and the explorer into ``output``, reading
    the data once (quality, hit counts, with labels every row's best-matching unit, and the
    explorer's node summary: one pass).

    Parameters
    ----------
    som : SOM
        The fitted map.
    data : dask array or array-like
        The rows it was trained on.
    output : pathlib.Path
        The folder, created when missing.
    labels : ndarray, default=None
        One label per row: adds the labels and projection pictures and the accuracy.
    image_shape : sequence of int, default=None
        The shape of a row as an image: adds the weights picture.
    plots : bool, default=True
        Draw the pictures.
    features : sequence of int or str, default=None
        The component planes to draw; None: those whose weights vary most.
    settings : dict, default=None
        The options of the run, stored under ``"settings"``.
    explorer : bool, default=None
        Write ``explorer.html``; None: when bokeh is installed (else a line says how).

    Returns
    -------
    dict
        The summary, as written to ``summary.json``.
    """
    output.mkdir(parents=True, exist_ok=True)
    som.save(output / "map.npz")
    summary_of_nodes, label_values = None, None
    if explorer_wanted(explorer):
        evaluation, summary_of_nodes, label_values = evaluate_and_summarize(
            som, data, labels, keep_bmus=labels is not None
        )
    else:
        evaluation = som.evaluate(data, keep_bmus=labels is not None)
    summary = _summary(som, evaluation, output, labels)
    if plots:
        pictures = _pictures(labels, image_shape)
        for name, kind in pictures.items():
            draw(
                kind,
                som,
                output / name,
                data=data,
                labels=labels,
                bmus=evaluation.get("bmus"),
                counts=evaluation["hit_counts"],
                image_shape=image_shape,
                features=features,
                final_quantization_error=evaluation["quantization_error"],
            )
        summary["plots"] = [str(output / name) for name in pictures]
    if summary_of_nodes is not None:
        page = output / "explorer.html"
        write_explorer_file(som, page, summary_of_nodes, label_values, image_shape, settings)
        summary["explorer"] = str(page)
    summary["settings"] = settings or {}
    write_text(output / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary


def _summary(som: SOM, evaluation: dict, output: Path, labels: np.ndarray | None) -> dict:
    """The summary of a fitted map from its evaluation pass (the final map's errors)."""
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
    return summary


def _outputs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """``(output folder, JSON log or None)`` of the options, each checked to be writable
    before any work starts (and nothing created)."""
    output = output_path(args.output, "output")
    check_writable(output, "output folder", "--output", folder=True)
    log_json = output_path(args.log_json, "JSON log") if args.log_json else None
    if log_json is not None:
        check_writable(log_json, "JSON log", "--log-json")
    return output, log_json


def _checkpoint_file(args: argparse.Namespace, output: Path) -> Path:
    """``--checkpoint`` (by default ``OUTPUT/checkpoint.npz``), checked to be writable."""
    checkpoint = output_path(args.checkpoint or output / "checkpoint.npz", "checkpoint")
    check_writable(checkpoint, "checkpoint", "--checkpoint")
    return checkpoint


def run_demo(args: argparse.Namespace) -> int:
    """``dasksom demo``: the digits map, its summary and pictures.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``dasksom demo`` command line.

    Returns
    -------
    int
        The exit status, 0.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise RunError(
            "the demo's digits ship with scikit-learn, which is not installed: "
            "pip install 'dasksom[sklearn]'"
        ) from None

    som = _estimator(args, chunks=200)
    output, log_json = _outputs(args)
    digits = load_digits()
    data = digits.data / 16.0
    with dask_cluster(args) as where:
        print(
            f"dasksom demo: {len(data)} handwritten digits (8x8 pixels, scikit-learn's copy "
            f"of the UCI set) on {where}",
            flush=True,
        )
        with progress(log_json):
            som.fit(data)
        summary = write_results(
            som,
            data,
            output,
            labels=digits.target,
            image_shape=(8, 8),
            features=args.features,
            settings=effective_settings(args),
            explorer=args.explorer,
        )
    _report(summary, output)
    return 0


def _report(summary: dict, output: Path) -> None:
    """The closing lines: the final map's errors (after the last epoch's update, so below the
    last epoch line's QE, which is of the map before it) and where the results are."""
    line = (
        f"final map: quantization error {summary['quantization_error']:.4f}, topographic "
        f"error {summary['topographic_error']:.4f}"
    )
    if "majority_label_accuracy" in summary:
        line += f", majority-label accuracy {summary['majority_label_accuracy']:.3f}"
    print(line)
    explorer = ", explorer.html" if "explorer" in summary else ""
    print(
        f"wrote the map, summary.json{explorer} and {len(summary.get('plots', []))} pictures to "
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


def _train_data(args: argparse.Namespace) -> tuple[Any, np.ndarray | None]:
    """The rows (held in ``--storage-dtype``) and their labels (``--labels``), or None."""
    from dasksom.io.storage import as_storage_dtype

    data = open_data(args)
    if args.storage_dtype is not None:
        data = as_storage_dtype(data, args.storage_dtype)
    labels = read_labels(args.labels, data.shape[0]) if args.labels else None
    return data, labels


def _persisted(data: Any, choice: str) -> Any:
    """The data kept in worker memory where ``--persist`` asks it (auto: when it fits)."""
    from dasksom.training.engine import should_persist

    choices: dict[str, bool | str] = {"auto": "auto", "yes": True, "no": False}
    persist = choices[choice]
    # Kept for the passes after training too, not only for the epochs.
    return data.persist() if should_persist(data, persist) else data


def run_train(args: argparse.Namespace) -> int:
    """``dasksom train``: train (or resume, or find the run finished) and write the results.

    Every option and every output is checked before the cluster starts; nothing is written
    until the data has been opened.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``dasksom train`` command line.

    Returns
    -------
    int
        The exit status, 0 (also when the run had already finished).
    """
    output, log_json = _outputs(args)
    checkpoint = _checkpoint_file(args, output)
    som = _estimator(args, chunks=args.chunks, persist=False, checkpoint=checkpoint)
    status = _checkpoint_status(som, checkpoint, args.force)
    # A checkpoint that holds every epoch, and the results of it written: nothing to train.
    finished = status is not None and status[0] >= status[1]
    done = finished and (output / "map.npz").is_file() and (output / "summary.json").is_file()
    with dask_cluster(args) as where:
        data, labels = _train_data(args)
        print(
            f"dasksom train: {data.shape[0]} rows x {data.shape[1]} features ({data.dtype}) in "
            f"{data.numblocks[0]} chunks on {where}",
            flush=True,
        )
        if status is not None and done:
            # No epoch is left: fit only checks that the checkpoint is this data's.
            _fit(som, data, checkpoint)
            print(
                f"the run is already finished ({status[0]} of {status[1]} epochs; "
                f"{checkpoint}); nothing to do; use --force to retrain"
            )
            return 0
        if status is not None and finished:
            print(f"the checkpoint holds all {status[1]} epochs; writing the results")
        data = _persisted(data, args.persist)
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
            explorer=args.explorer,
        )
    _report(summary, output)
    return 0


def _one_line(exc: BaseException) -> str:
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    return " ".join(str(text).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dasksom``.

    Parameters
    ----------
    argv : sequence of str, default=None
        The arguments after ``dasksom``; None reads ``sys.argv``.

    Returns
    -------
    int
        The exit status (see ``EXIT_CODES``): 0 done, 1 data or runtime error, 2 usage error
        (argparse's own usage errors exit with 2 through ``SystemExit``).
    """
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
