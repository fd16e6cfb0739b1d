"""Storage types: rows kept narrow (uint8, int16, float16) with a checked conversion.

:func:`as_storage_dtype` converts lazily and refuses, with the row, a value the type cannot
hold; :func:`first_row` finds that row for this and other chunk-level error messages."""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from dasksom.backends.arrays import array_module

# Types worth holding rows in (:func:`as_storage_dtype`): float32, which the kernels compute
# in, and the narrow ones that they keep as they are and widen one row block at a time.
STORAGE_DTYPES = ("float32", "float16", "uint8", "int8", "int16")


def as_storage_dtype(data: da.Array, dtype: Any) -> da.Array:
    """``data`` with every chunk stored as ``dtype``, refusing values that type cannot hold.

    Narrow types save memory and bandwidth: the kernels keep ``uint8``, ``int8``, ``int16``
    and ``float16`` chunks as they are (on the host or a GPU) and widen one row block at a
    time.  A float type rounds (``float16`` keeps 11 significant bits) but must not overflow;
    an integer type must get whole numbers within its range, so that no value changes.  NaN
    and inf stay as they are in a float type (the ``nan_policy`` deals with them).

    Parameters
    ----------
    data : dask.array.Array
        Rows in chunks, NumPy or CuPy.
    dtype : numpy dtype or its name
        A real numeric type, e.g. ``"float16"`` or ``"uint8"``.

    Returns
    -------
    dask.array.Array
        Lazy, like ``data``; ``data`` itself when it already has that type.

    Raises
    ------
    ValueError
        At once for a ``dtype`` that is no real number type.  A chunk holding a value that the
        type cannot hold raises it when computed, naming the row, the value and what to do.
    """
    try:
        target = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"Unknown storage dtype {dtype!r}: {exc}.") from None
    if target.kind not in "iuf":
        raise ValueError(
            f"Storage dtype {target} is not a real number type; choose e.g. float32, float16 or "
            "uint8."
        )
    if target == data.dtype:
        return data
    return da.map_blocks(_cast_exactly, data, target, dtype=target, meta=data._meta.astype(target))


def _cast_exactly(chunk: Any, dtype: np.dtype, block_info: dict | None = None) -> Any:
    """``chunk.astype(dtype)``, refusing a value that overflows or is not kept whole."""
    xp = array_module(chunk)
    # Overflow and out-of-range values are found below, with the row; no warning on the way.
    with np.errstate(over="ignore", invalid="ignore"):
        cast = chunk.astype(dtype)
    if dtype.kind == "f":
        lost = xp.isinf(cast) & ~xp.isinf(chunk)
        holds = f"magnitudes up to {np.finfo(dtype).max:g}"
    else:
        lost = cast != chunk
        info = np.iinfo(dtype)
        holds = f"whole numbers from {info.min} to {info.max}"
    if bool(lost.any()):
        where = tuple(int(i) for i in xp.argwhere(lost)[0])
        row, value = first_row(block_info) + where[0], chunk[where].item()
        raise ValueError(
            f"Row {row} holds {value!r}, which storage dtype {dtype} cannot hold (it holds "
            f"{holds}); store the data in a wider type (e.g. float32) or rescale it."
        )
    return cast


def first_row(block_info: dict | None) -> int:
    """Index of a chunk's first row in the whole array, for error messages that name a row.

    Parameters
    ----------
    block_info : dict or None
        What ``dask.array.map_blocks`` passes as ``block_info``.

    Returns
    -------
    int
        0 without ``block_info``.
    """
    return int(block_info[0]["array-location"][0][0]) if block_info else 0
