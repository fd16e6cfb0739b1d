"""Missing and non-finite values: the NaN policies, and where data holds NaN or inf."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dasksom.backends.arrays import array_module

NAN_POLICIES = ("raise", "ignore")


def observed_rows(mask: Any) -> Any:
    """Rows holding at least one observed value, or None when every value is observed."""
    return None if mask is None else mask.any(axis=1)


@dataclass
class NonFinite:
    """Where data met NaN or inf: how many, and the first (row, column) of the whole array."""

    count: int = 0
    first: tuple[int, int] | None = None

    def __add__(self, other: NonFinite) -> NonFinite:
        firsts = [f for f in (self.first, other.first) if f is not None]
        return NonFinite(self.count + other.count, min(firsts) if firsts else None)

    def raise_if_any(self, n_rows: int | None = None) -> None:
        """The one error that tells the user how many NaN / inf the data holds and where."""
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
    """Count the values a chunk may not hold: NaN and inf, or inf alone when NaN marks a
    missing value (``nan_policy="ignore"``).  Integer data is finite by construction."""
    if np.dtype(x.dtype).kind not in "fc":
        return NonFinite()
    xp = array_module(x)
    bad = xp.isinf(x) if nan_policy == "ignore" else ~xp.isfinite(x)
    count = int(bad.sum())
    if not count:
        return NonFinite()
    row, col = (int(v) for v in xp.argwhere(bad)[0])
    return NonFinite(count, (row_offset + row, col))
