"""dasksom's map format: one ``.npz`` file, arrays plus JSON metadata, readable without pickle.

:func:`write_map` writes it, :func:`read_map` reads it back (:func:`read_metadata` with the
checks for damage), :func:`existing_map` finds it.  The same file serves as a finished map
(:meth:`dasksom.SOM.save`, :func:`dasksom.load`) and as the per-epoch checkpoint of a running
fit: its history says how many epochs are done.  Files are written atomically
(:mod:`dasksom.io.atomic`) at exactly the path given.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dasksom.core.lattice import Lattice
from dasksom.io.atomic import atomic_file, local_path

FORMAT = "dasksom-map"
FORMAT_VERSION = 1
# Metadata keys every map file holds, with the JSON type each must have.
_METADATA_TYPES = {
    "format": str,
    "version": int,
    "lattice": dict,
    "params": dict,
    "history": list,
}


def jsonable(value: Any) -> Any:
    """``value`` as JSON can hold it, the ``default`` of ``json.dumps``.

    Parameters
    ----------
    value : object
        A value ``json`` cannot store itself.

    Returns
    -------
    object
        A NumPy scalar's Python value, an array's nested lists, a path's string.

    Raises
    ------
    TypeError
        For anything else.
    """
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"cannot store {type(value).__name__} in a map's metadata")


def existing_map(path: str | os.PathLike) -> Path | None:
    """The file a map saved at ``path`` lives in, or None.

    Maps saved by dasksom 0.1 got ``.npz`` appended to a name without it; they are found too.

    Parameters
    ----------
    path : str or os.PathLike
        The path the map was saved at.

    Returns
    -------
    pathlib.Path or None
        The file, or None when neither ``path`` nor ``path + ".npz"`` is one.

    Raises
    ------
    ValueError
        When ``path`` is a URL other than ``file://``.
    """
    path = local_path(path, "map")
    for candidate in (path, path.with_name(path.name + ".npz")):
        if candidate.is_file():
            return candidate
    return None


def write_map(
    path: str | os.PathLike,
    *,
    params: dict,
    lattice: Lattice,
    weights: np.ndarray,
    history: list[dict],
    extra: dict | None = None,
) -> Path:
    """Write weights, lattice, settings and history to exactly ``path``, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        A local path; nothing is appended to it.
    params : dict
        The estimator's settings, with ``init``: a name, or an array stored beside the weights.
    lattice : Lattice
        The map's lattice.
    weights : ndarray of shape (M, D)
        Stored as float64.
    history : list of dict
        One entry per epoch done.
    extra : dict or None, default=None
        Further JSON metadata (a checkpoint's data fingerprint, for instance).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ValueError
        When ``path`` is a URL other than ``file://``.
    """
    params = dict(params)
    init = params.pop("init")
    metadata = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "lattice": lattice.to_dict(),
        "params": {**params, "init": init if isinstance(init, str) else "array"},
        "history": history,
        **(extra or {}),
    }
    # Any: np.savez's keywords also take allow_pickle, which a dict of arrays never holds.
    arrays: dict[str, Any] = {"weights": np.asarray(weights, dtype=np.float64)}
    if not isinstance(init, str):
        arrays["init"] = np.asarray(init, dtype=np.float64)
    text = np.array(json.dumps(metadata, default=jsonable))
    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, metadata=text, **arrays)
    return local_path(path)


def read_metadata(path: str | os.PathLike) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """``(metadata, weights, init array or None)`` of a map file, checked for damage.

    Parameters
    ----------
    path : str or os.PathLike
        The path the map was saved at (see :func:`existing_map`).

    Returns
    -------
    metadata : dict
        The JSON metadata: ``format``, ``version``, ``lattice``, ``params``, ``history`` and
        any ``extra``.
    weights : ndarray of shape (M, D)
    init : ndarray or None
        The ``init`` array the map was fitted from, if it was one.

    Raises
    ------
    FileNotFoundError
        When there is no map.
    ValueError
        Naming the file, for anything that is not an intact dasksom map.
    """
    found = existing_map(path)
    if found is None:
        raise FileNotFoundError(f"No saved map at {os.fspath(path)!r}.")
    try:
        with np.load(found, allow_pickle=False) as stored:
            metadata = json.loads(str(stored["metadata"]))
            weights = np.asarray(stored["weights"])
            init = np.asarray(stored["init"]) if "init" in stored.files else None
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{str(found)!r} is not a readable dasksom map ({type(exc).__name__}: {exc}); it "
            "may be truncated or another kind of file."
        ) from exc
    _check_metadata(found, metadata, weights)
    return metadata, weights, init


def _check_metadata(path: Path, metadata: Any, weights: np.ndarray) -> None:
    """Refuse metadata or weights that an intact map, of this version or older, cannot hold."""

    def damaged(why: str) -> ValueError:
        return ValueError(f"{str(path)!r} is a damaged dasksom map: {why}.")

    if not isinstance(metadata, dict):
        raise damaged(f"its metadata is a JSON {type(metadata).__name__}, not an object")
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{str(path)!r} is not a dasksom map (format {metadata.get('format')!r}).")
    for key, kind in _METADATA_TYPES.items():
        if not isinstance(metadata.get(key), kind) or isinstance(metadata.get(key), bool):
            raise damaged(f"its metadata has no valid {key!r} (a JSON {kind.__name__})")
    if metadata["version"] > FORMAT_VERSION:
        raise ValueError(
            f"{str(path)!r} was written by a newer dasksom (format version "
            f"{metadata['version']}); upgrade dasksom to read it."
        )
    if not all(isinstance(record, dict) for record in metadata["history"]):
        raise damaged("its history holds entries that are not JSON objects")
    if weights.ndim != 2 or weights.dtype.kind != "f" or not np.isfinite(weights).all():
        raise damaged(
            f"its weights are not a finite 2-D float array ({weights.dtype}, {weights.shape})"
        )


def read_map(path: str | os.PathLike) -> tuple[dict, Lattice, np.ndarray, list[dict]]:
    """``(params, lattice, weights, history)`` of a map written by :func:`write_map`.

    Parameters
    ----------
    path : str or os.PathLike
        The path the map was saved at.

    Returns
    -------
    params : dict
        The settings, ``init`` an array again where it was one and ``sigma`` a tuple where it
        was a pair.
    lattice : Lattice
    weights : ndarray of shape (M, D)
    history : list of dict

    Raises
    ------
    FileNotFoundError
        When there is no map.
    ValueError
        When the file is not an intact dasksom map, or its weights do not fit its lattice.
    """
    metadata, weights, init = read_metadata(path)
    params = dict(metadata["params"])
    if init is not None:
        params["init"] = init
    if isinstance(params.get("sigma"), list):
        params["sigma"] = tuple(params["sigma"])
    try:
        lattice = Lattice(**metadata["lattice"])
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{os.fspath(path)!r} is a damaged dasksom map: its lattice: {exc}"
        ) from exc
    if weights.shape[0] != lattice.n_nodes:
        raise ValueError(
            f"{os.fspath(path)!r} is inconsistent: {weights.shape[0]} weight rows for a "
            f"{lattice.height}x{lattice.width} map."
        )
    return params, lattice, weights, metadata["history"]
