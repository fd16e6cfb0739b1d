"""simpsom's ``.npy`` map format: a plain float array, read and written without pickle.

simpsom 3's ``save_map`` writes ``(M + 3, D)`` float rows: height, width and PBC each repeated
across a row, then one row of weights per node.  simpsom 2's ``save`` wrote ``(M + 1, D)``: one
row ``[height, width, PBC, 0, ...]``, then the nodes.  Both order the nodes column by column,
dasksom row by row.  The topology is not stored: the format has no place for it.

:func:`write_simpsom_map` writes simpsom 3's layout, :func:`read_simpsom_map` reads either;
:func:`to_simpsom_order` and :func:`from_simpsom_order` reorder the nodes.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dasksom.core.lattice import Lattice
from dasksom.io.atomic import atomic_file

# Rows before the node weights in a simpsom 3 ``.npy`` map: height, width and PBC, each
# repeated across the row.  simpsom 2 wrote one row ``[height, width, PBC, 0, ...]``.
SIMPSOM_HEADER_ROWS = 3


def to_simpsom_order(weights: np.ndarray, lattice: Lattice) -> np.ndarray:
    """Reorder node rows from dasksom's row-major order to simpsom's column-major order.

    Parameters
    ----------
    weights : ndarray of shape (M, D)
        In dasksom's node order.
    lattice : Lattice
        The map's lattice.

    Returns
    -------
    ndarray of shape (M, D)
    """
    n_features = weights.shape[1]
    return (
        weights.reshape(lattice.height, lattice.width, n_features)
        .transpose(1, 0, 2)
        .reshape(-1, n_features)
    )


def from_simpsom_order(weights: np.ndarray, height: int, width: int) -> np.ndarray:
    """Reorder node rows from simpsom's column-major order to dasksom's row-major order.

    Parameters
    ----------
    weights : ndarray of shape (M, D)
        In simpsom's node order.
    height, width : int
        The map's rows and columns.

    Returns
    -------
    ndarray of shape (M, D)
    """
    n_features = weights.shape[1]
    return weights.reshape(width, height, n_features).transpose(1, 0, 2).reshape(-1, n_features)


def write_simpsom_map(path: str | os.PathLike, lattice: Lattice, weights: np.ndarray) -> None:
    """Write ``weights`` in simpsom 3's ``.npy`` layout, atomically.

    The layout :meth:`dasksom.simpsom.somnet.SOMNet.save_map` writes, through
    :func:`dasksom.io.atomic.atomic_file`.

    Parameters
    ----------
    path : str or os.PathLike
        A local path, written exactly.
    lattice : Lattice
        The map's lattice; its topology is not stored.
    weights : ndarray of shape (M, D)
        In dasksom's node order; stored as float64.

    Raises
    ------
    ValueError
        When ``path`` is a URL other than ``file://``.
    """
    n_features = weights.shape[1]
    header = np.repeat(
        np.array([[lattice.height], [lattice.width], [float(lattice.pbc)]]), n_features, axis=1
    )
    table = np.vstack([header, to_simpsom_order(np.asarray(weights, np.float64), lattice)])
    with atomic_file(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, table, allow_pickle=False)


def read_simpsom_map(path: str | os.PathLike) -> tuple[int, int, bool, np.ndarray]:
    """Read a map saved by simpsom (either layout) without pickle.

    Both layouts are in the module docstring; simpsom 3's is tried first.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npy`` file.

    Returns
    -------
    height, width : int
    pbc : bool
    weights : ndarray of shape (height * width, D)
        In dasksom's node order, float64.

    Raises
    ------
    FileNotFoundError
        When there is no file at ``path``.
    ValueError
        When the file is no plain numeric ``.npy`` array, or its header rows do not give
        ``height x width`` node rows.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No saved map at {str(path)!r}.")
    try:
        with open(path, "rb") as handle:
            table = np.lib.format.read_array(handle, allow_pickle=False)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise ValueError(
            f"{str(path)!r} is not a simpsom map: it cannot be read as a plain .npy array "
            f"without pickle ({type(exc).__name__}: {exc})."
        ) from exc
    if table.ndim != 2 or table.dtype.kind not in "fiu" or table.shape[0] < 2:
        raise ValueError(
            f"{str(path)!r} is not a simpsom map: expected a 2-D numeric array with header rows, "
            f"got shape {table.shape} and dtype {table.dtype}."
        )
    table = table.astype(np.float64)
    n_rows = table.shape[0]
    header = table[:SIMPSOM_HEADER_ROWS]
    if len(header) == SIMPSOM_HEADER_ROWS and (header == header[:, :1]).all():
        height, width, pbc = header[:, 0]
        if _whole(height) and _whole(width) and height * width == n_rows - SIMPSOM_HEADER_ROWS:
            weights = table[SIMPSOM_HEADER_ROWS:]
            weights = from_simpsom_order(weights, int(height), int(width))
            return int(height), int(width), bool(pbc), weights
    if table.shape[1] >= 3:
        height, width, pbc = table[0, :3]
        if _whole(height) and _whole(width) and height * width == n_rows - 1:
            weights = from_simpsom_order(table[1:], int(height), int(width))
            return int(height), int(width), bool(pbc), weights
    raise ValueError(
        f"{str(path)!r} is not a simpsom map: its {n_rows} rows do not hold a header giving "
        "height x width node rows."
    )


def _whole(value: float) -> bool:
    """Whether a header value is a positive whole number (a map size)."""
    return value >= 1 and float(value).is_integer()
