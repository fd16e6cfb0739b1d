"""Missing and non-finite values: the NaN policies (:data:`NAN_POLICIES`), where data holds NaN
or inf (:func:`find_nonfinite`, :class:`NonFinite`), and the rows that observe any value."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dasksom.backends.arrays import array_module

NAN_POLICIES = ("raise", "ignore")


def observed_rows(mask: Any) -> Any:
    """Rows holding at least one observed value.

    Parameters
    ----------
    mask : bool array of shape (n, D) or None
        Marks the observed values; None when every value is observed.

    Returns
    -------
    bool array of shape (n,) or None
        None when ``mask`` is None.
    """
    return None if mask is None else mask.any(axis=1)


@dataclass
class NonFinite:
    """Where data met NaN or inf: how many, and the first (row, column) of the whole array.

    Instances add up over chunks (counts summed, the earliest place kept).

    Attributes
    ----------
    count : int, default=0
        How many values the data may not hold were found.
    first : (int, int) or None, default=None
        The first one's ``(row, column)`` in the whole array.
    """

    count: int = 0
    first: tuple[int, int] | None = None

    def __add__(self, other: NonFinite) -> NonFinite:
        firsts = [f for f in (self.first, other.first) if f is not None]
        return NonFinite(self.count + other.count, min(firsts) if firsts else None)

    def raise_if_any(self, n_rows: int | None = None) -> None:
        """The one error that tells the user how many NaN / inf the data holds and where.

        Parameters
        ----------
        n_rows : int or None, default=None
            Rows of the whole data, named in the message when given.

        Raises
        ------
        ValueError
            When :attr:`count` is not 0.
        """
        if not self.count:
            return
        among = "" if n_rows is None else f" among {n_rows} rows"
        where = ""
        if self.first is not None:
            where = f"; the first is at row {self.first[0]}, column {self.first[1]}"
        raise ValueError(
            f"The data contains {self.count} NaN or infinite value(s){among}{where}. Remove or "
            "impute those rows (for a dask array x: x[da.isfinite(x).all(axis=1)]), or, if NaN "
            "marks missing values, use nan_policy='ignore' (inf is never allowed)."
        )


def find_nonfinite(x: Any, row_offset: int = 0, nan_policy: str = "raise") -> NonFinite:
    """Count the values a chunk may not hold.

    Parameters
    ----------
    x : array, NumPy or CuPy
        A chunk.  Integer data is finite by construction.
    row_offset : int, default=0
        Index of the chunk's first row in the whole array.
    nan_policy : {"raise", "ignore"}, default="raise"
        ``"raise"`` counts NaN and inf, ``"ignore"`` (NaN marks a missing value) inf alone.

    Returns
    -------
    NonFinite
        The count and the first place, as a row of the whole array.
    """
    if np.dtype(x.dtype).kind not in "fc":
        return NonFinite()
    xp = array_module(x)
    bad = xp.isinf(x) if nan_policy == "ignore" else ~xp.isfinite(x)
    count = int(bad.sum())
    if not count:
        return NonFinite()
    row, col = (int(v) for v in xp.argwhere(bad)[0])
    return NonFinite(count, (row_offset + row, col))
