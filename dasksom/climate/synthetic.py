"""A gridded field with planted weather regimes and a known transition matrix.

:func:`planted_regimes` synthesises daily winter (DJF) fields on a latitude-longitude grid:
each day belongs to one of three regimes, which follow a Markov chain with a known transition
matrix inside each winter (and start afresh every winter and in every member); the field is the
regime's pattern plus noise, with a fixed land mask of NaN.  The known answer (labels, matrix,
expected residence times) comes back with it, so that tests and the tutorial can check that the
diagnostics recover it, without downloading anything.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

TRANSITIONS = np.array(
    [
        [0.80, 0.15, 0.05],
        [0.10, 0.75, 0.15],
        [0.10, 0.10, 0.80],
    ]
)
REGIME_NAMES = ("zonal", "blocking", "trough")


def regime_patterns(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Three anomaly patterns (hPa) on the grid: a north-south dipole, a high over the north
    of the domain and a low in its south-west, shape ``(3, lat, lon)``."""
    lon2, lat2 = np.meshgrid(lon, lat)

    def bump(lat0: float, lon0: float, width: float) -> np.ndarray:
        return np.exp(-(((lat2 - lat0) / width) ** 2 + ((lon2 - lon0) / (1.5 * width)) ** 2))

    dipole = 12.0 * (bump(40.0, -20.0, 10.0) - bump(65.0, -20.0, 10.0))
    block = 15.0 * bump(62.0, 10.0, 8.0)
    trough = -14.0 * bump(42.0, -40.0, 9.0)
    return np.stack([dipole, block, trough])


def markov_chain(transitions: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A path of ``length`` states of the chain, started from its stationary distribution."""
    values, vectors = np.linalg.eig(transitions.T)
    stationary = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
    stationary = stationary / stationary.sum()
    states = np.empty(length, dtype=np.int64)
    states[0] = rng.choice(len(stationary), p=stationary)
    cumulative = np.cumsum(transitions, axis=1)
    draws = rng.random(length)
    for t in range(1, length):
        states[t] = min(
            int(np.searchsorted(cumulative[states[t - 1]], draws[t])), len(transitions) - 1
        )
    return states


def planted_regimes(
    n_winters: int = 20,
    n_members: int | None = None,
    *,
    n_lat: int = 15,
    n_lon: int = 24,
    noise: float = 3.0,
    first_year: int = 1990,
    transitions: np.ndarray | None = None,
    seed: int = 0,
) -> xr.Dataset:
    """Daily DJF sea-level-pressure-like anomalies with three planted regimes.

    Parameters
    ----------
    n_winters : int, default=20
        Winters (December to February), each a run of consecutive days, with a gap of nine
        months before the next.
    n_members : int or None, default=None
        Ensemble members (a ``member`` dimension, each its own chain); None: no such dimension.
    n_lat, n_lon : int, default=15, 24
        Grid size over 30-72N, 60W-40E.
    noise : float, default=3.0
        Standard deviation (hPa) of the independent noise at every point and day.
    first_year : int, default=1990
        The year of the first December.
    transitions : ndarray of shape (3, 3) or None, default=None
        The chain's transition matrix (rows add up to 1); None: :data:`TRANSITIONS`.
    seed : int, default=0

    Returns
    -------
    Dataset
        ``slp`` (dims ``([member,] time, lat, lon)``, NaN over a fixed "land" box), a second
        variable ``t2m`` (a temperature anomaly, different per regime, on the same samples, for
        composites), ``regime`` (the planted label of every sample), and the known answer in
        ``transition_matrix`` (``from_regime, to_regime``) and ``expected_residence`` (days,
        ``1 / (1 - p_ii)``).
    """
    matrix = TRANSITIONS if transitions is None else np.asarray(transitions, dtype=float)
    if matrix.shape != (3, 3) or not np.allclose(matrix.sum(axis=1), 1.0) or (matrix < 0).any():
        raise ValueError("transitions must be a 3 x 3 matrix of probabilities, rows adding to 1.")
    rng = np.random.default_rng(seed)
    lat = np.linspace(30.0, 72.0, n_lat)
    lon = np.linspace(-60.0, 40.0, n_lon)
    days = [
        pd.date_range(f"{year}-12-01", f"{year + 1}-02-28", freq="D")
        for year in range(first_year, first_year + n_winters)
    ]
    time = pd.DatetimeIndex(np.concatenate([d.values for d in days]))
    members = 1 if n_members is None else n_members
    labels = np.stack(
        [np.concatenate([markov_chain(matrix, len(d), rng) for d in days]) for _ in range(members)]
    )
    patterns = regime_patterns(lat, lon)
    slp = patterns[labels] + noise * rng.standard_normal((members, len(time), n_lat, n_lon))
    land = (
        (lat[:, None] > 45.0) & (lat[:, None] < 55.0) & (lon[None, :] > 0.0) & (lon[None, :] < 20.0)
    )
    slp[..., land] = np.nan
    warmth = np.array([2.0, -4.0, 1.0])
    t2m = warmth[labels][..., None, None] * np.cos(np.deg2rad(lat))[:, None] + rng.standard_normal(
        (members, len(time), n_lat, n_lon)
    )
    dims: tuple[str, ...] = ("member", "time") if n_members is not None else ("time",)
    squeeze = (lambda a: a) if n_members is not None else (lambda a: a[0])
    coords = {
        "time": time,
        "lat": ("lat", lat, {"units": "degrees_north", "standard_name": "latitude"}),
        "lon": ("lon", lon, {"units": "degrees_east", "standard_name": "longitude"}),
    }
    if n_members is not None:
        coords["member"] = np.arange(n_members)
    residence = 1.0 / (1.0 - np.diag(matrix))
    return xr.Dataset(
        {
            "slp": (
                (*dims, "lat", "lon"),
                squeeze(slp),
                {"units": "hPa", "long_name": "sea level pressure anomaly"},
            ),
            "t2m": (
                (*dims, "lat", "lon"),
                squeeze(t2m),
                {"units": "K", "long_name": "2 m temperature anomaly"},
            ),
            "regime": (dims, squeeze(labels), {"long_name": "planted regime"}),
            "transition_matrix": (("from_regime", "to_regime"), matrix.copy()),
            "expected_residence": (("regime_index",), residence, {"units": "days"}),
        },
        coords=coords,
        attrs={"regime_names": ", ".join(REGIME_NAMES)},
    )
