"""NumPy or CuPy: which array module an array belongs to, moving results to the host, and the
types data is computed in (:func:`compute_dtype`) or kept in (:func:`is_narrow`).

Every kernel computes with its input's array module, so the same code runs on CPU workers and on
GPUs.  Nothing here imports CuPy unless it is handed a CuPy array."""

from __future__ import annotations

from typing import Any

import numpy as np

# Elements of the per-block score matrix (rows x nodes): 8 MiB in float32 is big enough for BLAS
# to run at full speed (measured: 1M to 8M elements within noise) and keeps chunk memory bounded.
SCORE_BLOCK_ELEMENTS = 1 << 21


def array_module(x: Any) -> Any:
    """``numpy`` or ``cupy``, whichever ``x`` belongs to.

    Parameters
    ----------
    x : object
        An array, or anything else (which counts as NumPy).

    Returns
    -------
    module
        ``cupy`` when ``x``'s type comes from CuPy (imported only then), else ``numpy``.
    """
    if type(x).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def to_host(x: Any) -> np.ndarray:
    """``x`` as a NumPy array, copied from its device when it is a CuPy array.

    Parameters
    ----------
    x : array-like
        A CuPy array, or anything ``numpy.asarray`` takes.

    Returns
    -------
    numpy.ndarray
        ``x`` itself when it already is a NumPy array.
    """
    return x.get() if hasattr(x, "get") else np.asarray(x)


def compute_dtype(dtype: Any) -> np.dtype:
    """Float type that the distance products run in for data of ``dtype``.

    Parameters
    ----------
    dtype : numpy dtype or its name
        The data's type.

    Returns
    -------
    numpy.dtype
        float32 where it holds the data exactly enough (float32 and narrower types, small
        integers), float64 for float64 and wide integers.
    """
    dtype = np.dtype(dtype)
    if dtype == np.float64 or (dtype.kind in "iu" and dtype.itemsize >= 4):
        return np.dtype(np.float64)
    return np.dtype(np.float32)


def is_narrow(dtype: Any) -> bool:
    """Whether data of ``dtype`` is kept as it is and widened one row block at a time.

    Types narrower than float32 (uint8 pixels, int16, float16) hold far fewer bytes than their
    float32 copy; the search widens each block to float32 as it uses it.

    Parameters
    ----------
    dtype : numpy dtype or its name
        The data's type.

    Returns
    -------
    bool
        True for integer and float types of fewer than 4 bytes.
    """
    dtype = np.dtype(dtype)
    return dtype.kind in "iuf" and dtype.itemsize < 4
