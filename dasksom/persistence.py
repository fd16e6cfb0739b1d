"""Saved maps: one ``.npz`` file, arrays plus JSON metadata, readable without pickle.

The same file serves as a finished map (:meth:`dasksom.SOM.save`, :func:`load`) and as the
per-epoch checkpoint of a running fit: its history says how many epochs are done.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from .lattice import Lattice

FORMAT = "dasksom-map"
FORMAT_VERSION = 1


def map_path(path: str | os.PathLike) -> Path:
    """``path`` with the ``.npz`` suffix that saved maps carry."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store {type(value).__name__} in a map's metadata")


def settings_key(params: dict) -> str:
    """Canonical JSON of training settings, to tell whether a checkpoint belongs to a fit."""
    return json.dumps(params, default=_jsonable, sort_keys=True)


def write_map(
    path: str | os.PathLike,
    *,
    params: dict,
    lattice: Lattice,
    weights: np.ndarray,
    history: list[dict],
) -> Path:
    """Write weights, lattice, settings and history to ``path`` (``.npz`` appended if missing).

    The file is written under a temporary name and renamed, so an interrupted write never
    leaves a half-written map (or checkpoint) behind.
    """
    path = map_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    params = dict(params)
    init = params.pop("init")
    metadata = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "lattice": lattice.to_dict(),
        "params": {**params, "init": init if isinstance(init, str) else "array"},
        "history": history,
    }
    arrays = {"weights": np.asarray(weights, dtype=np.float64)}
    if not isinstance(init, str):
        arrays["init"] = np.asarray(init, dtype=np.float64)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, metadata=np.array(json.dumps(metadata, default=_jsonable)), **arrays)
    os.replace(tmp, path)
    return path


def read_map(path: str | os.PathLike) -> tuple[dict, Lattice, np.ndarray, list[dict]]:
    """``(params, lattice, weights, history)`` of a map written by :func:`write_map`."""
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
    if isinstance(params.get("sigma"), list):
        params["sigma"] = tuple(params["sigma"])
    lattice = Lattice(**metadata["lattice"])
    if weights.shape[0] != lattice.n_nodes:
        raise ValueError(
            f"{str(path)!r} is inconsistent: {weights.shape[0]} weight rows for a "
            f"{lattice.height}x{lattice.width} map."
        )
    return params, lattice, weights, metadata["history"]


def load(path: str | os.PathLike):
    """Read a map written by :meth:`dasksom.SOM.save`; returns a fitted :class:`~dasksom.SOM`."""
    from .estimator import SOM

    params, lattice, weights, history = read_map(path)
    return SOM.from_weights(weights, lattice, history, **params)
