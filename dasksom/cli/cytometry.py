"""``dasksom cytometry``: FlowSOM on FCS files as batch jobs.

``dasksom cytometry train`` fits a :class:`~dasksom.cytometry.FlowSOM` model on FCS files (or
one ``.h5ad`` file, or array and table files), saves it and writes its per node, metacluster
and sample tables.  ``dasksom cytometry map`` maps new files onto a saved model (FlowSOM's
``NewData``) and writes their tables and, with ``--cells``, every cell's node, metacluster,
distance and outlier flag as Parquet parts written chunk by chunk on the workers.  One job of
a Slurm array (or a Kubernetes indexed job) maps one batch of a long list of files:
``--files-from LIST --batch I --batches K`` takes the files at positions ``I, I + K, ...``
and writes ``OUTPUT/batch-IIIII-of-KKKKK``, so the batches never write to the same folder.

``dasksom.cytometry`` (and with it pandas) is imported only when a command runs: the rest of
the command line works without the ``cytometry`` extra.  See docs/cli.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dasksom.cli.cluster import add_cluster_options, dask_cluster
from dasksom.cli.config import (
    RunError,
    UsageError,
    check_writable,
    effective_settings,
    output_path,
    whole_number,
)
from dasksom.cli.progress import progress
from dasksom.io.atomic import atomic_directory
from dasksom.training.engine import compute_context

if TYPE_CHECKING:
    from dasksom.cytometry import CellResults, Cells, FlowSOM

# ``_command`` of dasksom.cli.main: (subparsers, name, help) -> the subcommand's parser.
CommandMaker = Callable[[Any, str, str], argparse.ArgumentParser]
# The file train writes beside the model: the run's files and settings (map reads --compensate).
TRAINING_FILE = "training.json"
# The file map writes beside a batch's tables: the batch, its files and its cells.
BATCH_FILE = "batch.json"
FILES_HELP = (
    "FCS files (one sample each), one .h5ad file (--sample-column names its samples), or "
    "array and table files that dasksom reads (zarr, npy, npz, h5, parquet, csv; one sample each)"
)


def _names(text: str) -> list[str]:
    """``--markers CD3,CD4``: names, comma-separated."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give marker names separated by commas, e.g. CD3,CD4")
    return names


def _counted(number: int, noun: str) -> str:
    """``"1 file"``, ``"2 files"``."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _cofactor(text: str) -> float | None:
    """``--cofactor``: a positive number, or ``none`` for cells already transformed."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(
            f"a cofactor is a positive number (5 for mass, 150 for flow cytometry), or none for "
            f"cells already transformed; got {text!r}"
        )
    return value


def add_cytometry_commands(
    group: argparse.ArgumentParser,
    command: CommandMaker,
    add_config: Callable[[argparse.ArgumentParser], None],
) -> dict[str, argparse.ArgumentParser]:
    """Add ``train`` and ``map`` under the ``dasksom cytometry`` parser.

    Parameters
    ----------
    group : argparse.ArgumentParser
        The ``dasksom cytometry`` parser.
    command : callable
        Makes a subcommand's parser: ``command(subparsers, name, help)``.
    add_config : callable
        Adds the ``--config`` option to a parser.

    Returns
    -------
    dict
        ``{"cytometry train": parser, "cytometry map": parser}``; each parser sets
        ``command`` to its key and ``run`` to the function that runs it.
    """
    commands = group.add_subparsers(dest="cytometry_command", required=True, metavar="COMMAND")
    train = command(commands, "train", "fit a FlowSOM model on files and write its tables")
    _add_train_arguments(train)
    train.set_defaults(run=run_train)
    mapping = command(
        commands, "map", "map files onto a saved model (FlowSOM's NewData), one batch per job"
    )
    _add_map_arguments(mapping)
    mapping.set_defaults(run=run_map)
    _add_reading_options(train, "no")
    _add_reading_options(mapping, f"as the model's training run did, by its {TRAINING_FILE}")
    parsers = {"cytometry train": train, "cytometry map": mapping}
    for name, parser in parsers.items():
        add_cluster_options(parser, workers=0)
        add_config(parser)
        parser.set_defaults(command=name)
    return parsers


def _add_train_arguments(train: argparse.ArgumentParser) -> None:
    train.add_argument("files", nargs="+", metavar="FILE", help=FILES_HELP)
    train.add_argument(
        "--markers",
        type=_names,
        required=True,
        help="the markers to cluster on, comma-separated: FCS $PnN or $PnS names, .h5ad "
        "var_names, table columns, or the names of all of an array's columns in order",
    )
    train.add_argument(
        "--extra-markers",
        type=_names,
        default=[],
        metavar="MARKERS",
        help="further markers to read and report medians of, not clustered on (default: none)",
    )
    train.add_argument(
        "-o", "--output", required=True, help="the model folder (replaced whole when rerun)"
    )
    train.add_argument("--tables", help="folder for the tables (default: OUTPUT/tables)")
    group = train.add_argument_group("the model")
    group.add_argument("--xdim", type=whole_number(1, "xdim"), default=10, help="grid width")
    group.add_argument("--ydim", type=whole_number(1, "ydim"), default=10, help="grid height")
    group.add_argument(
        "--clusters", type=whole_number(1, "clusters"), default=10, help="metaclusters"
    )
    group.add_argument(
        "--epochs", type=whole_number(1, "epochs"), default=10, help="passes over the cells"
    )
    group.add_argument("--seed", type=whole_number(0, "seed"), default=42, help="random seed")
    group.add_argument(
        "--cofactor",
        type=_cofactor,
        default=5.0,
        help="arcsinh cofactor of every marker (5: mass cytometry, 150: flow), or none",
    )
    group.add_argument(
        "--scale", action="store_true", help="centre and scale every marker after the arcsinh"
    )


def _add_map_arguments(mapping: argparse.ArgumentParser) -> None:
    mapping.add_argument("model", metavar="MODEL_DIR", help="a model `cytometry train` saved")
    mapping.add_argument("files", nargs="*", metavar="FILE", help=FILES_HELP)
    mapping.add_argument(
        "-o",
        "--output",
        required=True,
        help="the results folder (replaced whole when rerun); with --batches, the batch's "
        "results go to OUTPUT/batch-IIIII-of-KKKKK",
    )
    mapping.add_argument(
        "--cells",
        action="store_true",
        help="also write every cell's sample, event, node, metacluster, distance and outlier "
        "flag to OUTPUT/cells/*.parquet, one part per chunk",
    )
    group = mapping.add_argument_group("batches (a Slurm array or a Kubernetes indexed job)")
    group.add_argument(
        "--files-from",
        metavar="LIST",
        help="a text file of one file path per line (blank lines and # comments skipped), "
        "after the FILEs",
    )
    group.add_argument(
        "--batch",
        type=whole_number(0, "batch"),
        metavar="I",
        help="map only the files whose position (from 0) modulo --batches is I, e.g. "
        "$SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX",
    )
    group.add_argument(
        "--batches", type=whole_number(1, "batches"), metavar="K", help="the number of batches"
    )


def _add_reading_options(parser: argparse.ArgumentParser, compensate_default: str) -> None:
    group = parser.add_argument_group("reading the files")
    group.add_argument(
        "--compensate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="compensate every FCS file with its own spill matrix ($SPILLOVER or SPILL) "
        f"(default: {compensate_default})",
    )
    group.add_argument(
        "--sample-column",
        metavar="COL",
        help="the obs column of a .h5ad file naming each cell's sample (default: one sample)",
    )
    group.add_argument(
        "--events-per-chunk",
        type=whole_number(1, "events per chunk"),
        metavar="N",
        help="rows per chunk (default: one chunk per FCS file; 500000 rows of a .h5ad file; "
        "auto for arrays)",
    )


def batch_files(files: Sequence[str], batch: int, batches: int) -> list[str]:
    """The files of batch ``batch`` of ``batches``: those whose position modulo ``batches``
    is ``batch``, in order.

    Parameters
    ----------
    files : sequence of str
        Every file of the job array.
    batch, batches : int
        ``0 <= batch < batches``.

    Returns
    -------
    list of str
    """
    return list(files[batch::batches])


def _listed_files(args: argparse.Namespace) -> list[str]:
    """The FILEs, then the lines of ``--files-from``."""
    files = list(args.files)
    if args.files_from:
        try:
            lines = Path(args.files_from).read_text().splitlines()
        except OSError as exc:
            raise RunError(f"cannot read the file list {args.files_from!r}: {exc}") from None
        files += [text for text in map(str.strip, lines) if text and not text.startswith("#")]
    if not files:
        raise UsageError("no files to map: give FILEs or --files-from LIST")
    return files


def _batch(args: argparse.Namespace) -> tuple[int, int]:
    """``(--batch, --batches)``, ``(0, 1)`` where neither is given."""
    if (args.batch is None) != (args.batches is None):
        raise UsageError("--batch and --batches go together, e.g. --batch 3 --batches 10")
    if args.batch is None:
        return 0, 1
    if args.batch >= args.batches:
        raise UsageError(
            f"--batch counts from 0 to --batches - 1 ({args.batches - 1}), not {args.batch}"
        )
    return args.batch, args.batches


def _kind(path: str) -> str:
    """``"fcs"``, ``"h5ad"`` or ``"array"`` (any other source dasksom reads), by extension."""
    suffix = Path(path.rstrip("/").partition("::")[0]).suffix.lower()
    return {".fcs": "fcs", ".h5ad": "h5ad"}.get(suffix, "array")


def _exists(path: str) -> bool:
    """Whether a file (or a container named before ``::``) is there; URLs are left to the
    readers."""
    return "://" in path or os.path.exists(path) or os.path.exists(path.partition("::")[0])


def _input_kind(files: Sequence[str], args: argparse.Namespace, compensate: bool) -> str:
    """The kind of every file (one kind only), with the reading options checked against it."""
    kinds = sorted({_kind(path) for path in files})
    if len(kinds) > 1:
        raise UsageError(f"give FCS files, one .h5ad file or array files, not a mix ({kinds})")
    kind = kinds[0]
    if kind == "h5ad" and len(files) > 1:
        raise UsageError("give one .h5ad file (its --sample-column names the samples)")
    if compensate and kind != "fcs":
        raise UsageError("--compensate is for FCS files (each is compensated with its spill)")
    if args.sample_column and kind != "h5ad":
        raise UsageError("--sample-column is for a .h5ad file")
    missing = [path for path in files if not _exists(path)]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise RunError(f"no such file {missing[0]!r}{more}")
    if kind != "h5ad":
        repeated = [n for n, count in Counter(Path(p).name for p in files).items() if count > 1]
        if repeated:
            raise RunError(
                f"samples are named by file name, and several files are named {repeated[0]!r}: "
                "rename them, or map them in separate runs"
            )
    return kind


def read_cells(
    files: Sequence[str], markers: Sequence[str], args: argparse.Namespace, compensate: bool
) -> Cells:
    """The cells of ``files`` with ``markers``, read lazily as the options say.

    Parameters
    ----------
    files : sequence of str
        FCS files, one ``.h5ad`` file, or array and table files (one kind).
    markers : sequence of str
        The markers to read, in this order.
    args : argparse.Namespace
        The command line, with ``sample_column`` and ``events_per_chunk``.
    compensate : bool
        Compensate FCS files with their spill matrices.

    Returns
    -------
    Cells
        Each FCS or array file a sample named by its file name; the samples of a ``.h5ad``
        file as ``--sample-column`` gives them.

    Raises
    ------
    UsageError
        Files of several kinds, several ``.h5ad`` files, or options for another kind.
    RunError
        A missing file, or two files of the same name.
    """
    from dasksom.cytometry import read_anndata, read_fcs
    from dasksom.cytometry.reading import DEFAULT_ROWS_PER_CHUNK

    kind = _input_kind(files, args, compensate)
    chunk = args.events_per_chunk
    if kind == "fcs":
        return read_fcs(files, markers, events_per_chunk=chunk, compensate=compensate)
    if kind == "h5ad":
        return read_anndata(
            files[0],
            markers,
            sample_key=args.sample_column,
            chunks=chunk or DEFAULT_ROWS_PER_CHUNK,
        )
    return _read_arrays(files, markers, chunk or "auto")


def _read_arrays(files: Sequence[str], markers: Sequence[str], chunks: int | str) -> Cells:
    """Array and table files as cells: a table's columns picked by name, an array's columns
    named by ``markers`` in order; one sample per file."""
    import dask.array as da

    from dasksom.cytometry import read_array
    from dasksom.cytometry.cells import sample_index
    from dasksom.io.sources import FORMATS, as_dask_array

    parts = []
    for path in files:
        table = FORMATS.get(Path(path.rstrip("/")).suffix.lower()) in ("csv", "parquet")
        parts.append(as_dask_array(path, chunks, columns=list(markers) if table else None))
    chunk_files = [number for number, part in enumerate(parts) for _ in part.chunks[0]]
    data = da.concatenate(parts)
    sample = sample_index(data.chunks[0], chunk_files)
    return read_array(data, markers, sample=sample, samples=[Path(p).name for p in files])


def _replaceable(path: Path, option: str, mark: str) -> None:
    """Refuse an output folder that is replaced whole but holds something else than an
    earlier output of this kind (one with ``mark`` in it)."""
    check_writable(path, f"{option} folder", option, folder=True)
    if path.is_dir() and any(path.iterdir()) and not (path / mark).exists():
        raise RunError(
            f"{option} {str(path)!r} is a folder of other files, and it would be replaced "
            f"whole: give a new folder, or an earlier output of this command (with {mark})"
        )


def _parquet() -> None:
    """Refuse to start without pyarrow, which writes the tables."""
    if importlib.util.find_spec("pyarrow") is None:
        raise RunError("the tables are Parquet files, which need pyarrow: pip install pyarrow")


def _cpu_only(args: argparse.Namespace) -> None:
    if args.gpus:
        raise UsageError("dasksom cytometry computes on CPU workers: use --workers or a scheduler")


def _train_outputs(args: argparse.Namespace) -> tuple[Path, Path | None]:
    """``(model folder, --tables folder or None)``, with the options checked first."""
    from dasksom.cytometry.model import MODEL_FILE

    if args.clusters > args.xdim * args.ydim:
        raise UsageError(
            f"--clusters {args.clusters} is more than the {args.xdim * args.ydim} nodes"
        )
    if set(args.markers) & set(args.extra_markers):
        raise UsageError("--extra-markers repeats markers of --markers")
    _cpu_only(args)
    _parquet()
    output = output_path(args.output, "model")
    _replaceable(output, "--output", MODEL_FILE)
    tables = None if args.tables is None else output_path(args.tables, "tables")
    if tables is not None:
        _replaceable(tables, "--tables", "nodes.parquet")
    return output, tables


def run_train(args: argparse.Namespace) -> int:
    """``dasksom cytometry train``: fit, save the model, write the tables, print one line.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``dasksom cytometry train`` command line.

    Returns
    -------
    int
        The exit status, 0.
    """
    from dasksom.cytometry import FlowSOM, summarise

    output, tables = _train_outputs(args)
    compensate = bool(args.compensate)
    cells = read_cells(args.files, [*args.markers, *args.extra_markers], args, compensate)
    model = FlowSOM(
        args.xdim,
        args.ydim,
        n_clusters=args.clusters,
        markers=args.markers,
        epochs=args.epochs,
        seed=args.seed,
        cofactor=args.cofactor,
        scale=args.scale,
    )
    with dask_cluster(args) as where:
        with progress():
            model.fit(cells)
        results = model.map(cells).persist()
        summary = summarise(results)
        n_outliers = int(summary.nodes["outliers"].sum())
    settings = {**effective_settings(args), "compensate": compensate}
    record = {"n_cells": cells.n_cells, "samples": list(cells.samples), "settings": settings}
    with atomic_directory(output) as folder:
        model.save(folder)
        (folder / TRAINING_FILE).write_text(json.dumps(record, indent=1) + "\n")
        if tables is None:
            summary.write_parquet(folder / "tables")
    if tables is not None:
        summary.write_parquet(tables)
    print(
        f"dasksom cytometry train: {_counted(cells.n_cells, 'cell')} of "
        f"{_counted(len(cells.samples), 'sample')}, a {args.xdim}x{args.ydim} map in "
        f"{_counted(args.clusters, 'metacluster')} on {_counted(len(args.markers), 'marker')}, "
        f"{_counted(n_outliers, 'outlier')}, on {where}; wrote the model to {output} and its "
        f"tables to {tables or output / 'tables'}"
    )
    return 0


def load_model(path: str) -> tuple[FlowSOM, bool]:
    """The model ``dasksom cytometry train`` (or :meth:`FlowSOM.save`) wrote, and whether
    its training run compensated the files.

    Parameters
    ----------
    path : str
        The model folder.

    Returns
    -------
    (FlowSOM, bool)
        The fitted model; False where no training record says the files were compensated.

    Raises
    ------
    RunError
        A folder that holds no saved model.
    """
    from dasksom.cytometry import FlowSOM
    from dasksom.cytometry.model import MODEL_FILE

    folder = Path(path)
    if not (folder / MODEL_FILE).is_file():
        raise RunError(
            f"{path!r} is not a saved FlowSOM model (no {MODEL_FILE}); give the folder "
            "`dasksom cytometry train -o` wrote"
        )
    model = FlowSOM.load(folder)
    compensated = False
    if (folder / TRAINING_FILE).is_file():
        record = json.loads((folder / TRAINING_FILE).read_text())
        compensated = bool(record.get("settings", {}).get("compensate"))
    return model, compensated


def run_map(args: argparse.Namespace) -> int:
    """``dasksom cytometry map``: one batch of files mapped onto a saved model; its tables
    (and with ``--cells`` every cell's results) written, and one line printed.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``dasksom cytometry map`` command line.

    Returns
    -------
    int
        The exit status, 0 (also for a batch without files: nothing is written).
    """
    batch, batches = _batch(args)
    _cpu_only(args)
    every_file = _listed_files(args)
    files = batch_files(every_file, batch, batches)
    _parquet()
    model, compensated = load_model(args.model)
    output = output_path(args.output, "results")
    target = output / f"batch-{batch:05d}-of-{batches:05d}" if args.batches else output
    _replaceable(target, "--output", BATCH_FILE)
    if not files:
        print(
            f"dasksom cytometry map: batch {batch} of {batches} has no files "
            f"({_counted(len(every_file), 'file')} in all); nothing to do"
        )
        return 0
    compensate = compensated if args.compensate is None else args.compensate
    cells = read_cells(files, model.transform_.markers, args, compensate)
    record: dict[str, Any] = {
        "model": str(args.model),
        "batch": batch,
        "batches": batches,
        "files": files,
    }
    with dask_cluster(args) as where:
        record = write_batch(
            model, cells, target, record, cells_too=args.cells, one_file=_kind(files[0]) == "h5ad"
        )
    parts = f" and {_counted(record['cell_parts'], 'part')} of cells" if args.cells else ""
    which = f"batch {batch} of {batches}: " if args.batches else ""
    print(
        f"dasksom cytometry map: {which}{_counted(len(files), 'file')}, "
        f"{_counted(record['n_cells'], 'cell')} ({_counted(record['outliers'], 'outlier')}) "
        f"on {where}; wrote the "
        f"tables{parts} to {target}"
    )
    return 0


def write_batch(
    model: FlowSOM,
    cells: Cells,
    folder: Path,
    record: dict[str, Any],
    *,
    cells_too: bool,
    one_file: bool,
) -> dict[str, Any]:
    """Map ``cells`` onto ``model`` and write ``folder`` whole: ``tables/*.parquet``,
    ``batch.json`` and with ``cells_too`` ``cells/part-BBBBB-CCCCCC.parquet``.

    Parameters
    ----------
    model : FlowSOM
        The fitted model.
    cells : Cells
        The batch's cells, with the markers of the model's transform.
    folder : pathlib.Path
        The batch's folder, replaced atomically.
    record : dict
        What ``batch.json`` holds besides the counts: ``batch`` (which numbers the parts),
        ``files`` ...
    cells_too : bool
        Write the per-cell results too, one part per chunk, from the workers.
    one_file : bool
        The cells are of one file (a ``.h5ad`` file), not one file per sample.

    Returns
    -------
    dict
        ``record`` with ``samples``, ``n_cells``, ``outliers`` and ``cell_parts`` (0 without
        ``cells_too``), as written to ``batch.json``.
    """
    from dasksom.cytometry import summarise

    results = model.map(cells).persist()
    summary = summarise(results)
    record = {
        **record,
        "samples": list(cells.samples),
        "n_cells": cells.n_cells,
        "outliers": int(summary.nodes["outliers"].sum()),
        "cell_parts": 0,
    }
    with atomic_directory(folder) as tmp:
        summary.write_parquet(tmp / "tables")
        if cells_too:
            starts = file_starts(cells, one_file)
            record["cell_parts"] = write_cells(results, tmp / "cells", record["batch"], starts)
        (tmp / BATCH_FILE).write_text(json.dumps(record, indent=1) + "\n")
    return record


def write_cells(results: CellResults, folder: Path, batch: int, starts: np.ndarray) -> int:
    """Every cell's results as Parquet parts, one per chunk, each written by the worker that
    computes it (so ``folder`` must be on storage the workers share); no chunk goes through
    the client.

    Each part ``part-BBBBB-CCCCCC.parquet`` (batch, chunk) holds ``sample`` (categorical),
    ``event`` (the cell's row in its file, int64), ``node``, ``metacluster`` (int64),
    ``distance`` (float64) and ``outlier`` (bool), in the order of the cells.

    Parameters
    ----------
    results : CellResults
        From :meth:`FlowSOM.map`.
    folder : pathlib.Path
        Created; the parts go into it.
    batch : int
        The batch number in the part names.
    starts : ndarray of int64
        The row where each sample's file starts (:func:`file_starts`).

    Returns
    -------
    int
        The number of parts written.
    """
    import dask

    folder.mkdir(parents=True, exist_ok=True)
    cells = results.cells
    # Row offsets in int64: a batch may hold more than 2**31 cells.
    offsets = np.concatenate([[0], np.cumsum(cells.data.chunks[0], dtype=np.int64)])
    columns = (results.node, results.metacluster, results.distance, results.outlier, cells.sample)
    blocks = zip(*(column.to_delayed().ravel() for column in columns), strict=True)
    write = dask.delayed(write_part, pure=False)
    parts = [
        write(
            folder / f"part-{batch:05d}-{number:06d}.parquet",
            offsets[number],
            starts,
            cells.samples,
            *chunk,
        )
        for number, chunk in enumerate(blocks)
    ]
    with compute_context():
        dask.compute(*parts)
    return len(parts)


def file_starts(cells: Cells, one_file: bool) -> np.ndarray:
    """The row among ``cells`` where each sample's file starts.

    Parameters
    ----------
    cells : Cells
        The cells of a batch.
    one_file : bool
        All the samples are in one file (a ``.h5ad`` file): every file starts at row 0.
        Otherwise each sample is one file, the files one after another (FCS, arrays).

    Returns
    -------
    ndarray of int64, shape (n_samples,)
    """
    from dasksom.cytometry import grouped_counts

    if one_file:
        return np.zeros(len(cells.samples), dtype=np.int64)
    counts = grouped_counts(cells.sample, len(cells.samples))
    return np.cumsum(counts) - counts


def write_part(
    path: Path,
    offset: int,
    starts: np.ndarray,
    samples: Sequence[str],
    node: np.ndarray,
    metacluster: np.ndarray,
    distance: np.ndarray,
    outlier: np.ndarray,
    sample: np.ndarray,
) -> int:
    """Write one chunk's per-cell results to the Parquet file ``path``.

    Parameters
    ----------
    path : pathlib.Path
        The part to write.
    offset : int
        The chunk's first row among the batch's cells.
    starts : ndarray of int64
        The row where each sample's file starts (:func:`file_starts`).
    samples : sequence of str
        The samples' names.
    node, metacluster, distance, outlier, sample : ndarray
        The chunk's values, one per cell.

    Returns
    -------
    int
        The number of rows written.
    """
    import pandas as pd

    codes = np.asarray(sample, dtype=np.int64)
    rows = np.int64(offset) + np.arange(len(codes), dtype=np.int64)
    table = pd.DataFrame(
        {
            "sample": pd.Categorical.from_codes(codes, categories=list(samples)),
            "event": rows - starts[codes],
            "node": np.asarray(node, dtype=np.int64),
            "metacluster": np.asarray(metacluster, dtype=np.int64),
            "distance": np.asarray(distance, dtype=np.float64),
            "outlier": np.asarray(outlier, dtype=bool),
        }
    )
    table.to_parquet(path, index=False)
    return len(table)
