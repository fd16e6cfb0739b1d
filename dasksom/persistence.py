"""Saved maps: one ``.npz`` file, arrays plus JSON metadata, readable without pickle."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .lattice import Lattice

FORMAT = "dasksom-map"
FORMAT_VERSION = 1


def save_map(path: str | os.PathLike, som) -> Path:
    """Write a fitted :class:`~dasksom.SOM` to ``path`` (``.npz`` is appended if missing).

    The file holds ``weights`` (M x D float64), the lattice, every training setting and the
    history as JSON.  It is written to a temporary name and renamed, so an interrupted save
    never leaves a half-written map behind.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    params = som.get_params()
    init = params.pop("init")
    metadata = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "lattice": som.lattice_.to_dict(),
        "params": {**params, "init": init if isinstance(init, str) else "array"},
        "history": som.history_,
    }
    arrays = {"weights": np.asarray(som.weights_, dtype=np.float64)}
    if not isinstance(init, str):
        arrays["init"] = np.asarray(init, dtype=np.float64)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, metadata=np.array(json.dumps(metadata, default=_jsonable)), **arrays)
    os.replace(tmp, path)
    return path


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} in a map's metadata")


def load(path: str | os.PathLike):
    """Read a map written by :meth:`dasksom.SOM.save`; returns a fitted :class:`~dasksom.SOM`."""
    from .estimator import SOM

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No saved map at {str(path)!r}.")
    try:
        with np.load(path, allow_pickle=False) as stored:
            metadata = json.loads(str(stored["metadata"]))
            weights = stored["weights"]
            init = stored["init"] if "init" in stored.files else None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(
            f"{str(path)!r} is not a readable dasksom map ({exc}); it may be truncated or "
            "another kind of file."
        ) from exc
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a dasksom map (format {metadata.get('format')!r}).")
    if metadata["version"] > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written by a newer dasksom (format version "
            f"{metadata['version']}); upgrade dasksom to read it."
        )
    params = metadata["params"]
    if init is not None:
        params["init"] = init
    params["sigma"] = (
        tuple(params["sigma"]) if isinstance(params["sigma"], list) else params["sigma"]
    )
    som = SOM(**params)
    lattice = Lattice(**metadata["lattice"])
    if weights.shape[0] != lattice.n_nodes:
        raise ValueError(
            f"{str(path)!r} is inconsistent: {weights.shape[0]} weight rows for a "
            f"{lattice.height}x{lattice.width} map."
        )
    som._set_fitted(lattice, weights, metadata["history"])
    return som
