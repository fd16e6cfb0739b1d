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
from dasksom.cli.config import UsageError, output_path
from dasksom.io.atomic import atomic_directory, atomic_file
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


def parse_chunks(text: str) -> int | str:
    """``--chunks``: a number of rows, or a size such as ``128MiB``, or ``auto``."""
    return int(text) if text.isdigit() else text


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
) -> None:
    """Draw one picture of ``som`` into ``file_name``.

    ``bmus`` (each row's best-matching unit) and ``counts`` (hits per node), when given, save
    the hits, labels and projection pictures a pass over ``data``.
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
        "convergence": lambda: plotting.plot_convergence(som.history_, **out),
        # Checked above: a mosaic has its image_shape.
        "mosaic": lambda: plotting.plot_weight_mosaic(som, cast(Sequence[int], image_shape), **out),
    }
    fig, _ = drawers[kind]()
    plt.close(fig)


def read_labels(source: str, n_rows: int) -> np.ndarray:
    """One label per row, read whole (labels are small next to the data)."""
    from dasksom.io.sources import as_dask_array

    labels = np.asarray(as_dask_array(source).compute()).ravel()
    if len(labels) != n_rows:
        raise ValueError(f"{source!r} holds {len(labels)} labels for {n_rows} rows of data.")
    return labels


def run_plot(args: argparse.Namespace) -> int:
    """``dasksom plot``: one picture of a saved map, with the data where the kind needs it."""
    from dasksom.estimator.som import load
    from dasksom.io.sources import as_dask_array

    output = output_path(args.output, "picture")
    if PLOT_KINDS[args.kind] and args.data is None:
        raise UsageError(f"--kind {args.kind} needs the DATA argument")
    if args.kind == "labels" and args.labels is None:
        raise UsageError("--kind labels needs --labels")
    if args.kind == "mosaic" and args.image_shape is None:
        raise UsageError("--kind mosaic needs --image-shape")
    som = load(args.map)
    with dask_cluster(args):
        data, labels, bmus = None, None, None
        if args.data is not None:
            data = as_dask_array(args.data, chunks=parse_chunks(args.chunks))
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
    """``dasksom predict``: every row's best-matching unit (or its lattice position)."""
    from dasksom.estimator.som import load
    from dasksom.io.sources import as_dask_array

    output = output_path(args.output, "predictions")
    if output.suffix not in (".zarr", ".npy"):
        raise UsageError(f"--output must end in .zarr or .npy, got {args.output!r}")
    som = load(args.map)
    with dask_cluster(args) as where:
        data = as_dask_array(args.data, chunks=parse_chunks(args.chunks))
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
    """A saved map's file, lattice, settings and training history, as JSON-ready values."""
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
    """``dasksom info``: what a saved map (or checkpoint) holds."""
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
        print(f"{'epoch':>7}{'radius':>10}{'QE':>12}{'map diff':>12}{'seconds':>10}")
    for record in info["history"]:
        print(
            f"{record.get('epoch', 0) + 1:>7}{record.get('sigma', float('nan')):>10.4g}"
            f"{record.get('quantization_error', float('nan')):>12.5g}"
            f"{record.get('map_difference', float('nan')):>12.4g}"
            f"{record.get('seconds', float('nan')):>10.3g}"
        )
    return 0
