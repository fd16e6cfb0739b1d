"""Checkpoints: the one home of the rule that says whether a saved map resumes a fit.

A checkpoint resumes a fit when it was trained with the same settings (every parameter but those
in :data:`RUN_ONLY_PARAMS`, which change how a run computes, not what it computes) on the same data
(:func:`data_fingerprint`).  The estimator and the command line both ask
:func:`changed_settings`."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import dask
import dask.array as da
import numpy as np

from dasksom.backends.arrays import to_host
from dasksom.io.map_file import jsonable
from dasksom.training.engine import compute_context

# Parameters that say how a run computes (where, in which pieces, by which BMU search, what it
# prints and where it saves), not what: a checkpoint written under other values of these resumes
# the fit.
RUN_ONLY_PARAMS = frozenset({"chunks", "persist", "verbose", "checkpoint", "device", "bmu_search"})


def settings_key(params: dict) -> str:
    """Canonical JSON of training settings, to tell whether a checkpoint belongs to a fit."""
    return json.dumps(params, default=jsonable, sort_keys=True)


def changed_settings(saved: dict, current: dict, defaults: dict[str, Any]) -> list[str]:
    """Names of the training settings in which a checkpoint's parameters differ from a fit's.

    Parameters
    ----------
    saved : dict
        The parameters recorded in the checkpoint.
    current : dict
        The fit's parameters (``get_params()``).
    defaults : dict
        Each parameter's default: a setting added to dasksom after the checkpoint was written
        had its default then.

    Returns
    -------
    list of str
        Sorted; empty when the checkpoint resumes the fit.  :data:`RUN_ONLY_PARAMS` are never
        compared.
    """
    return sorted(
        name
        for name, value in current.items()
        if name not in RUN_ONLY_PARAMS
        and settings_key({name: saved.get(name, defaults.get(name))}) != settings_key({name: value})
    )


# Rows sampled, evenly spaced, to fingerprint the data a checkpoint was written for.
FINGERPRINT_ROWS = 16


def data_fingerprint(data: da.Array, source: Any) -> dict:
    """What binds a checkpoint to its data: shape, dtype, source and a hash of sampled rows.

    Reads :data:`FINGERPRINT_ROWS` single rows, evenly spaced, not the data.
    """
    n_rows = data.shape[0]
    rows = sorted({int(i) for i in np.linspace(0, n_rows - 1, FINGERPRINT_ROWS)})
    with compute_context():
        sample = dask.compute(*[data[i : i + 1] for i in rows])
    digest = hashlib.sha256()
    for row in sample:
        digest.update(np.ascontiguousarray(to_host(row)).tobytes())
    return {
        "shape": [int(n) for n in data.shape],
        "dtype": str(data.dtype),
        "source": os.fspath(source)
        if isinstance(source, str | os.PathLike)
        else type(source).__name__,
        "sample_sha256": digest.hexdigest(),
    }


def check_fingerprint(path: Any, saved: dict | None, current: dict | None) -> None:
    if saved is None or current is None:
        raise ValueError(
            f"The checkpoint {os.fspath(path)!r} does not record which data it was written for "
            "(an older dasksom wrote it); delete it to start afresh, or point checkpoint at "
            "another file."
        )
    differ = [key for key in ("shape", "dtype", "sample_sha256") if saved.get(key) != current[key]]
    if not differ:
        return
    what = {
        "shape": f"shape {tuple(saved.get('shape') or ())} then, {tuple(current['shape'])} now",
        "dtype": f"dtype {saved.get('dtype')} then, {current['dtype']} now",
        "sample_sha256": "the values of sampled rows differ",
    }
    raise ValueError(
        f"The checkpoint {os.fspath(path)!r} was written for other data (from "
        f"{saved.get('source')!r}: {'; '.join(what[k] for k in differ)}). Delete it (or use "
        "another checkpoint or output folder) to train afresh on this data."
    )
