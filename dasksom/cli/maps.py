"""The command line's work on saved maps: pictures, predictions written out of core, and a
description of a map file (``dasksom plot``, ``dasksom predict``, ``dasksom info``)."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import dask
import dask.array as da
import numpy as np

from dasksom.backends.arrays import to_host
from dasksom.cli.cluster import dask_cluster
from dasksom.cli.config import RunError, UsageError, check_writable, output_path
from dasksom.io.atomic import atomic_directory, atomic_file
from dasksom.io.sources import FORMATS
from dasksom.training.engine import compute_context

# Plot kinds and whether each needs the data.
PLOT_KINDS = {
    "umatrix": False,
    "hits": True,
    "components": False,
    "labels": True,
    "projection": True,
    "convergence": False,
    "mosaic": False,
}
# Row chunks of predictions computed at once when writing a .npy file from the client.
_NPY_BATCH = 16
# ``--csv-header`` choices and the ``header=`` of the CSV reader each stands for.
CSV_HEADERS: dict[str, bool | None] = {"auto": None, "yes": True, "no": False}


def parse_chunks(text: str | int) -> int | str:
    """``--chunks``: a number of rows, a size such as ``128MiB``, or ``auto``.

    Parameters
    ----------
    text : str or int
        The option's value.

    Returns
    -------
    int or str
        Rows per chunk (at least 1), or the size or ``"auto"`` as given.

    Raises
    ------
    argparse.ArgumentTypeError
        For anything else (0, a negative number, a size of no bytes, a word), so that the
        parser refuses it as a usage error before any work starts.
    """
    from dask.utils import parse_bytes

    value = str(text).strip()
    if value.isdigit() and int(value) >= 1:
        return int(value)
    if value == "auto":
        return value
    if value[-1:].isalpha():
        try:
            if parse_bytes(value) >= 1:
                return value
        except (ValueError, TypeError):
            pass
    raise argparse.ArgumentTypeError(
        f"chunks must be a number of rows (at least 1), a size such as 128MiB, or auto; "
        f"got {text!r}"
    )


def _format_of(source: str) -> str | None:
    """The format a data path's extension names (``"csv"`` ...), or None (a folder, or an
    extension dasksom does not know)."""
    path = os.fspath(source)
    if "::" in path and not os.path.exists(path):
        path = path.rpartition("::")[0]
    return FORMATS.get(os.path.splitext(path.rstrip("/"))[1].lower())


def open_data(args: argparse.Namespace) -> da.Array:
    """The rows of ``args.data``, read with the data options (``--chunks``, ``--columns``,
    ``--csv-header``, ``--delimiter``).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed command line, with ``data``, ``chunks``, ``columns``, ``csv_header`` and
        ``delimiter``.

    Returns
    -------
    dask.array.Array
        Row-chunked, as :func:`dasksom.io.as_dask_array` gives it.

    Raises
    ------
    UsageError
        The CSV options given for data that is not a ``.csv`` file, or ``--columns`` for data
        that is not a table.
    """
    from dasksom.io.sources import as_dask_array

    fmt = _format_of(args.data)
    if (args.csv_header != "auto" or args.delimiter != ",") and fmt != "csv":
        raise UsageError(
            f"--csv-header and --delimiter are for CSV data, and {args.data!r} is not a .csv file"
        )
    if args.columns is not None and fmt not in ("csv", "parquet", None):
        raise UsageError(
            f"--columns picks columns of a CSV or Parquet table, and {args.data!r} is {fmt} data"
        )
    return as_dask_array(
        args.data,
        chunks=args.chunks,
        columns=args.columns,
        header=CSV_HEADERS[args.csv_header],
        delimiter=args.delimiter,
    )


def draw(
    kind: str,
    som: Any,
    file_name: str | os.PathLike,
    *,
    data: Any = None,
    labels: np.ndarray | None = None,
    bmus: np.ndarray | None = None,
    counts: np.ndarray | None = None,
    image_shape: Sequence[int] | None = None,
    features: Sequence[int | str] | None = None,
    final_quantization_error: float | None = None,
) -> None:
    """Draw one picture of ``som`` into ``file_name``.

    Parameters
    ----------
    kind : str
        One of :data:`PLOT_KINDS`.
    som : fitted SOM
        The map.
    file_name : str or os.PathLike
        The picture file (its extension picks the format, e.g. ``.png``).
    data : array-like or dask array, default=None
        The rows, for ``hits``, ``labels`` and ``projection``.
    labels : ndarray, default=None
        One label per row, for ``labels`` (and colours of ``projection``).
    bmus : ndarray, default=None
        Each row's best-matching unit, when known: saves the hits, labels and projection
        pictures a pass over ``data``.
    counts : ndarray, default=None
        Hits per node, when known: saves the hits picture a pass over ``data``.
    image_shape : sequence of int, default=None
        The shape of one row as an image, for ``mosaic`` (which needs it).
    features : sequence of int or str, default=None
        The component planes to draw; None: those whose weights vary most.
    final_quantization_error : float, default=None
        The fitted map's own QE, drawn as the last point of ``convergence`` when known.
    """
    import matplotlib.pyplot as plt

    from dasksom import plotting

    if kind == "mosaic" and image_shape is None:
        raise ValueError("the mosaic picture needs image_shape")
    out: dict[str, Any] = {"print_out": True, "file_name": file_name}
    drawers = {
        "umatrix": lambda: plotting.plot_umatrix(som, **out),
        "hits": lambda: plotting.plot_hits(som, data, bmus=bmus, counts=counts, **out),
        "components": lambda: plotting.plot_component_planes(som, features=features, **out),
        "labels": lambda: plotting.plot_labels(som, data, labels, bmus=bmus, **out),
        "projection": lambda: plotting.plot_projection(som, data, labels=labels, bmus=bmus, **out),
        "convergence": lambda: plotting.plot_convergence(
            som.history_, final_quantization_error=final_quantization_error, **out
        ),
        # Checked above: a mosaic has its image_shape.
        "mosaic": lambda: plotting.plot_weight_mosaic(som, cast(Sequence[int], image_shape), **out),
    }
    fig, _ = drawers[kind]()
    plt.close(fig)


def read_labels(source: str, n_rows: int) -> np.ndarray:
    """One label per row, read whole (labels are small next to the data).

    Parameters
    ----------
    source : str
        A file (or store) in any format the data may be in (``.npy``, ``.npz``, ``.csv``,
        ``.parquet``, ``.zarr``, ``.h5`` ...): a 1-D array, or a table of one numeric column
        (a CSV file's header row is optional).  It is flattened.
    n_rows : int
        The number of rows of the data, which the labels must match.

    Returns
    -------
    ndarray of shape (n_rows,)

    Raises
    ------
    ValueError
        The file holds another number of labels (or cannot be read).
    """
    from dasksom.io.sources import as_dask_array

    labels = np.asarray(as_dask_array(source).compute()).ravel()
    if len(labels) != n_rows:
        raise ValueError(f"{source!r} holds {len(labels)} labels for {n_rows} rows of data.")
    return labels


def run_plot(args: argparse.Namespace) -> int:
    """``dasksom plot``: one picture of a saved map, with the data where the kind needs it.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``dasksom plot`` command line.

    Returns
    -------
    int
        The exit status, 0.
    """
    from dasksom.estimator.som import load

    output = output_path(args.output, "picture")
    if PLOT_KINDS[args.kind] and args.data is None:
        raise UsageError(f"--kind {args.kind} needs the DATA argument")
    if args.kind == "labels" and args.labels is None:
        raise UsageError("--kind labels needs --labels")
    if args.kind == "mosaic" and args.image_shape is None:
        raise UsageError("--kind mosaic needs --image-shape")
    check_writable(output, "picture", "--output")
    som = load(args.map)
    with dask_cluster(args):
        data, labels, bmus = None, None, None
        if args.data is not None:
            data = open_data(args)
            labels = read_labels(args.labels, data.shape[0]) if args.labels else None
            if args.kind in ("labels", "projection"):
                bmus = som.best_matching_units(data)
        draw(
            args.kind,
            som,
            output,
            data=data,
            labels=labels,
            bmus=bmus,
            image_shape=args.image_shape,
            features=args.features,
        )
    print(f"wrote the {args.kind} picture of {args.map} to {output}")
    return 0


def _positions_of(nodes: Any, positions: np.ndarray) -> np.ndarray:
    return positions[to_host(nodes)]


def write_predictions(result: da.Array, output: Path) -> None:
    """Write ``result`` chunk by chunk to a ``.zarr`` store or a ``.npy`` file, atomically.

    A zarr store is written by the workers (so it must be on storage they share); a ``.npy``
    file by this process, a few chunks at a time.

    Parameters
    ----------
    result : dask.array.Array
        What to write.
    output : pathlib.Path
        The store or file; its suffix, ``.zarr`` or otherwise, picks the format.
    """
    if output.suffix == ".zarr":
        with atomic_directory(output) as tmp, compute_context():
            da.to_zarr(result, os.fspath(tmp), overwrite=True)
        return
    from numpy.lib.format import open_memmap

    blocks = result.to_delayed().ravel()
    with atomic_file(output, suffix=".npy") as tmp:
        stored = open_memmap(tmp, mode="w+", dtype=result.dtype, shape=result.shape)
        start = 0
        for first in range(0, len(blocks), _NPY_BATCH):
            with compute_context():
                parts = dask.compute(*blocks[first : first + _NPY_BATCH])
            for part in parts:
                stored[start : start + len(part)] = to_host(part)
                start += len(part)
        stored.flush()
        del stored


def run_predict(args: argparse.Namespace) -> int:
    """``dasksom predict``: every row's best-matching unit (or its lattice position).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``dasksom predict`` command line.

    Returns
    -------
    int
        The exit status, 0.
    """
    from dasksom.estimator.som import load

    output = output_path(args.output, "predictions")
    if output.suffix not in (".zarr", ".npy"):
        raise UsageError(f"--output must end in .zarr or .npy, got {args.output!r}")
    # A store replaces whatever is at its name; a .npy file must not be a folder.
    check_writable(
        output.parent if output.suffix == ".zarr" else output,
        "predictions",
        "--output",
        folder=output.suffix == ".zarr",
    )
    som = load(args.map)
    with dask_cluster(args) as where:
        data = open_data(args)
        result = som.predict(data)
        what = "best-matching unit"
        if args.positions:
            what = "lattice position (x, y)"
            result = result.map_blocks(
                _positions_of,
                som.positions_,
                new_axis=1,
                chunks=(result.chunks[0], (2,)),
                dtype=np.float64,
            )
        print(
            f"dasksom predict: the {what} of {data.shape[0]} rows in {data.numblocks[0]} "
            f"chunks on {where}",
            flush=True,
        )
        write_predictions(result, output)
    print(f"wrote {result.shape} {result.dtype} to {output}")
    return 0


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return f"array of shape {list(value.shape)}"
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot describe {type(value).__name__}")


def describe_map(path: str) -> dict:
    """A saved map's file, lattice, settings and training history, as JSON-ready values.

    Parameters
    ----------
    path : str
        A map (``map.npz``) or a checkpoint.

    Returns
    -------
    dict
        ``map``, ``lattice``, ``n_nodes``, ``n_features``, ``settings``, ``epochs_done`` and
        ``history``.
    """
    from dasksom.io.map_file import existing_map, read_map

    params, lattice, weights, history = read_map(path)
    return json.loads(
        json.dumps(
            {
                "map": str(existing_map(path)),
                "lattice": lattice.to_dict(),
                "n_nodes": lattice.n_nodes,
                "n_features": int(weights.shape[1]),
                "settings": params,
                "epochs_done": len(history),
                "history": history,
            },
            default=_jsonable,
        )
    )


def run_info(args: argparse.Namespace) -> int:
    """``dasksom info``: what a saved map (or checkpoint) holds.

    The history's QE of epoch ``t`` is that of the map before epoch ``t``'s update (it comes
    from the epoch's own pass over the data).

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``dasksom info`` command line.

    Returns
    -------
    int
        The exit status, 0.
    """
    info = describe_map(args.map)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    lattice, settings = info["lattice"], info["settings"]
    periodic = "periodic (a torus)" if lattice["pbc"] else "not periodic"
    print(f"map       {info['map']}")
    print(
        f"lattice   {lattice['height']}x{lattice['width']} {lattice['topology']}, {periodic}; "
        f"{info['n_nodes']} nodes x {info['n_features']} features"
    )
    print("settings  " + "  ".join(f"{k}={v}" for k, v in sorted(settings.items())))
    seconds = sum(record.get("seconds", 0.0) for record in info["history"])
    print(
        f"training  {info['epochs_done']} of {settings.get('epochs', '?')} epochs, {seconds:.3g} s"
    )
    if info["history"]:
        print(f"{'epoch':>7}{'radius':>10}{'QE before':>12}{'map diff':>12}{'seconds':>10}")
    for record in info["history"]:
        print(
            f"{record.get('epoch', 0) + 1:>7}{record.get('sigma', float('nan')):>10.4g}"
            f"{record.get('quantization_error', float('nan')):>12.5g}"
            f"{record.get('map_difference', float('nan')):>12.4g}"
            f"{record.get('seconds', float('nan')):>10.3g}"
        )
    return 0


def _bokeh_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def explorer_wanted(wanted: bool | None) -> bool:
    """Whether to write the explorer: ``--explorer`` (bokeh must be installed), ``--no-explorer``,
    or neither (when bokeh is installed; otherwise a line says how to get it).

    Parameters
    ----------
    wanted : bool or None
        The option's value.

    Returns
    -------
    bool

    Raises
    ------
    RunError
        ``wanted`` is True and bokeh is not installed.
    """
    if wanted is False:
        return False
    if _bokeh_installed():
        return True
    hint = "the explorer needs bokeh: pip install 'dasksom[explore]'"
    if wanted:
        raise RunError(hint)
    print(f"no explorer.html: {hint} (or pass --no-explorer)")
    return False


def write_explorer_file(
    som: Any,
    path: Path,
    summary: Any = None,
    label_values: np.ndarray | None = None,
    image_shape: Sequence[int] | None = None,
    settings: dict | None = None,
    clusters: np.ndarray | None = None,
) -> Path:
    """Write the interactive explorer of ``som`` to ``path``.

    Parameters
    ----------
    som : fitted SOM
        The map.
    path : pathlib.Path
        The HTML file.
    summary : NodeSummary, default=None
        The node summary of the data (:mod:`dasksom.estimator.summary`); None shows the map's
        own layers only.
    label_values : ndarray, default=None
        The labels of the summary's label codes.
    image_shape : sequence of int, default=None
        The shape of a row as an image.
    settings : dict, default=None
        The run's settings to show.
    clusters : ndarray, default=None
        One cluster per node.

    Returns
    -------
    pathlib.Path
        The file.
    """
    from dasksom.explorer import write_explorer

    return write_explorer(
        som,
        path,
        summary,
        label_values,
        clusters=clusters,
        feature_shape=image_shape,
        settings=settings,
    )


def run_explore(args: argparse.Namespace) -> int:
    """``dasksom explore``: the interactive explorer of a saved map, as one HTML file.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``dasksom explore`` command line.

    Returns
    -------
    int
        The exit status, 0.
    """
    from dasksom.estimator.som import load

    output = output_path(args.output, "explorer")
    if args.labels is not None and args.data is None:
        raise UsageError("--labels needs the DATA argument (the rows they label)")
    if not _bokeh_installed():
        raise RunError("the explorer needs bokeh: pip install 'dasksom[explore]'")
    check_writable(output, "explorer", "--output")
    som = load(args.map)
    clusters = None
    if args.clusters is not None:
        clusters = read_labels(args.clusters, som.lattice_.n_nodes)
    from dasksom.estimator.summary import summarize

    with dask_cluster(args):
        summary, label_values = None, None
        if args.data is not None:
            data = open_data(args)
            labels = read_labels(args.labels, data.shape[0]) if args.labels else None
            summary, label_values = summarize(som, data, labels, sample_size=args.sample_size)
        try:
            write_explorer_file(
                som, output, summary, label_values, args.image_shape, som.get_params(), clusters
            )
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    print(f"wrote the explorer of {args.map} to {output}")
    return 0
