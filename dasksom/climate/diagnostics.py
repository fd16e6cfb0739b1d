"""Regime diagnostics from best-matching units: frequencies and their trends, transitions,
residence times, composites, and comparison of two data sets' frequencies.

Every function takes the labelled BMUs of :meth:`dasksom.climate.FieldSOM.bmus` (a
``DataArray`` of int on the sample dimensions, dask backed or not) and the number of nodes, and
returns labelled xarray results.  Counting runs on the BMUs chunk by chunk
(:func:`dask.array.bincount`); composites reduce the other variable chunk by chunk to per-node
sums, so neither ever gathers a field into memory.  Residence times follow runs along time, so
they bring the BMU series itself (8 bytes a sample, never the field) to the client.

Pairs and runs never cross a break: the end of one ensemble member and the start of the next
(each member is its own series along ``time``), a time gap (consecutive samples further apart
than the data's usual step, e.g. from one winter's February to the next December) and, with
``within="time.season"`` (or any grouping), a change of that label.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr
from scipy import sparse

from dasksom.climate.fields import sample_rows

# scipy.stats (40 MB) is imported where a trend or a test is computed, on the client: workers
# import this module to count and sum, and never need it.

TIME = "time"


def _labels(bmus: xr.DataArray) -> da.Array:
    if not isinstance(bmus, xr.DataArray):
        raise TypeError(
            f"Expected BMUs as an xarray DataArray (FieldSOM.bmus), got {type(bmus).__name__}."
        )
    values = bmus.data
    return values if isinstance(values, da.Array) else da.from_array(np.asarray(values))


def _check_nodes(n_nodes: int) -> None:
    if int(n_nodes) < 1:
        raise ValueError(f"n_nodes must be at least 1, got {n_nodes}.")


def _group_codes(bmus: xr.DataArray, groupby: str) -> tuple[np.ndarray, pd.Index]:
    """Integer code of every sample's group (broadcast to the BMUs' shape) and the groups."""
    try:
        labels = bmus[groupby]
    except KeyError:
        raise ValueError(
            f"Cannot group by {groupby!r}: not a coordinate of the BMUs (dims {bmus.dims}); "
            "use e.g. 'time.season', 'time.year' or 'time.month'."
        ) from None
    labels = labels.broadcast_like(bmus).transpose(*bmus.dims)
    codes, groups = pd.factorize(np.asarray(labels.values).ravel(), sort=True)
    return codes.reshape(bmus.shape), pd.Index(groups, name=groupby.split(".")[-1])


def hit_counts(bmus: xr.DataArray, n_nodes: int, groupby: str | None = None) -> xr.DataArray:
    """How many samples each node is the best-matching unit of, per group.

    Parameters
    ----------
    bmus : DataArray of int
        Best-matching units on the sample dims; negative values (no unit) are not counted.
    n_nodes : int
        Nodes of the map.
    groupby : str or None, default=None
        A grouping of the samples: a coordinate or a datetime component such as
        ``"time.season"``, ``"time.year"`` or ``"time.month"``.  None: all samples together.

    Returns
    -------
    DataArray of int64
        Dims ``(node,)``, or ``(group, node)`` with the group's name (``season``, ``year`` ...).
    """
    _check_nodes(n_nodes)
    labels = _labels(bmus)
    if groupby is None:
        codes, groups = da.zeros(labels.shape, dtype=np.int64, chunks=labels.chunks), None
    else:
        found, groups = _group_codes(bmus, groupby)
        codes = da.from_array(found, chunks=labels.chunks)
    n_groups = 1 if groups is None else len(groups)
    sentinel = n_groups * n_nodes
    combined = da.where(labels >= 0, codes * n_nodes + labels, sentinel)
    counts = da.bincount(combined.ravel(), minlength=sentinel + 1)[:sentinel]
    counts = np.asarray(counts.compute()).reshape(n_groups, n_nodes)
    node = np.arange(n_nodes)
    if groups is None:
        return xr.DataArray(counts[0], dims="node", coords={"node": node}, name="hits")
    dim = str(groups.name)
    return xr.DataArray(
        counts, dims=(dim, "node"), coords={dim: groups.values, "node": node}, name="hits"
    )


def frequencies(bmus: xr.DataArray, n_nodes: int, groupby: str | None = None) -> xr.DataArray:
    """Relative frequency of each node, per group: :func:`hit_counts` over the group's total.

    Parameters
    ----------
    bmus, n_nodes, groupby
        As :func:`hit_counts`.

    Returns
    -------
    DataArray of float
        Dims ``(node,)`` or ``(group, node)``; each group's frequencies add up to 1.
    """
    counts = hit_counts(bmus, n_nodes, groupby)
    total = counts.sum("node")
    result = counts / total.where(total > 0)
    result.name = "frequency"
    result.attrs.update(long_name="relative frequency of the node", units="1")
    return result


def frequency_trend(bmus: xr.DataArray, n_nodes: int, period: str = "time.year") -> xr.Dataset:
    """Linear trend of each node's frequency over successive periods, and its p-value.

    Parameters
    ----------
    bmus, n_nodes
        As :func:`hit_counts`.  Select a season first (``bmus.sel(time=bmus.time.dt.season ==
        "DJF")``) for a seasonal trend.
    period : str, default="time.year"
        A numeric grouping of the samples (the regression's x).

    Returns
    -------
    Dataset
        On ``node``: ``slope`` (frequency per unit of the period, e.g. per year),
        ``intercept``, ``p_value`` (two-sided t-test of a zero slope, ordinary least squares,
        independent periods) and ``frequency`` itself on ``(period, node)``.
    """
    freq = frequencies(bmus, n_nodes, period)
    dim = freq.dims[0]
    x = np.asarray(freq[dim].values, dtype=float)
    if x.size < 3:
        raise ValueError(f"A trend needs at least 3 periods of {period!r}; got {x.size}.")
    y = np.nan_to_num(freq.values)
    dx = x - x.mean()
    slope = dx @ (y - y.mean(axis=0)) / (dx @ dx)
    intercept = y.mean(axis=0) - slope * x.mean()
    residual = y - (intercept + slope[None, :] * x[:, None])
    dof = x.size - 2
    stderr = np.sqrt((residual**2).sum(axis=0) / dof / (dx @ dx))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(stderr > 0, slope / stderr, np.where(slope == 0, 0.0, np.inf))
    from scipy import stats

    p_value = 2.0 * stats.t.sf(np.abs(t), dof)
    node = freq["node"]
    return xr.Dataset(
        {
            "slope": (
                "node",
                slope,
                {"long_name": f"trend of frequency per {dim}", "units": f"1/{dim}"},
            ),
            "intercept": ("node", intercept),
            "p_value": ("node", p_value, {"long_name": "two-sided p-value of a zero trend"}),
            "frequency": freq,
        },
        coords={"node": node},
    )


def segments(bmus: xr.DataArray, within: str | None = None, max_step: Any = None) -> np.ndarray:
    """The segment of every time step: a new one starts after a time gap or a label change.

    Parameters
    ----------
    bmus : DataArray
        BMUs with a ``time`` dimension.
    within : str or None, default=None
        A grouping such as ``"time.season"``: a change of label starts a segment.
    max_step : timedelta-like or None, default=None
        The largest step inside a segment; None: the most common step between consecutive
        times (so any gap starts a segment).

    Returns
    -------
    ndarray of int64, shape (n_times,)
        Non-decreasing segment numbers from 0.
    """
    if TIME not in bmus.dims:
        raise ValueError(f"The BMUs have no {TIME!r} dimension (dims {bmus.dims}).")
    time = bmus[TIME].values
    if time.size < 2:
        return np.zeros(time.size, dtype=np.int64)
    steps = np.diff(time)
    if max_step is None:
        values, counts = np.unique(steps, return_counts=True)
        max_step = values[np.argmax(counts)]
    elif np.issubdtype(time.dtype, np.datetime64):
        max_step = pd.to_timedelta(max_step).to_timedelta64()
    breaks = (steps > max_step) | (steps <= steps.dtype.type(0))
    if within is not None:
        labels = np.asarray(bmus[within].values)
        breaks |= labels[1:] != labels[:-1]
    return np.concatenate([[0], np.cumsum(breaks)]).astype(np.int64)


def _series_last(bmus: xr.DataArray) -> xr.DataArray:
    """BMUs with time last: every other sample dim (``member``) indexes its own series."""
    return bmus.transpose(..., TIME)


def transitions(
    bmus: xr.DataArray,
    n_nodes: int,
    lag: int = 1,
    *,
    within: str | None = None,
    max_step: Any = None,
) -> xr.Dataset:
    """Lag-``lag`` transition counts and probabilities between nodes.

    A pair ``(t, t + lag)`` is counted when both samples lie in the same segment
    (:func:`segments`: no time gap, no change of the ``within`` label between them) of the same
    member.

    Parameters
    ----------
    bmus, n_nodes
        As :func:`hit_counts`; needs a ``time`` dimension.
    lag : int, default=1
        Steps between the two samples of a pair.
    within, max_step
        As :func:`segments`.

    Returns
    -------
    Dataset
        ``count`` (int64) and ``probability`` (rows add up to 1; NaN for a node never left
        from) on ``(from_node, to_node)``.
    """
    _check_nodes(n_nodes)
    if int(lag) < 1:
        raise ValueError(f"lag must be a positive number of steps, got {lag}.")
    series = _series_last(bmus)
    segment = segments(series, within, max_step)
    labels = _labels(series)
    if segment.size <= lag:
        raise ValueError(f"lag={lag} leaves no pair in {segment.size} time steps.")
    same = segment[lag:] == segment[:-lag]
    start, end = labels[..., :-lag], labels[..., lag:]
    sentinel = n_nodes * n_nodes
    valid = (start >= 0) & (end >= 0) & same
    pair = da.where(valid, start * n_nodes + end, sentinel)
    counts = da.bincount(pair.ravel(), minlength=sentinel + 1)[:sentinel]
    counts = np.asarray(counts.compute()).reshape(n_nodes, n_nodes)
    leaving = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        probability = np.where(leaving > 0, counts / leaving, np.nan)
    nodes = np.arange(n_nodes)
    dims = ("from_node", "to_node")
    return xr.Dataset(
        {
            "count": (dims, counts, {"long_name": f"lag-{lag} transitions between nodes"}),
            "probability": (
                dims,
                probability,
                {"long_name": f"lag-{lag} transition probability", "units": "1"},
            ),
        },
        coords={"from_node": nodes, "to_node": nodes},
        attrs={"lag": int(lag)},
    )


def _runs(labels: np.ndarray, segment: np.ndarray) -> tuple[np.ndarray, ...]:
    """Node, length and start index of every run of one series (labels >= 0 only)."""
    change = np.ones(labels.size, dtype=bool)
    change[1:] = (labels[1:] != labels[:-1]) | (segment[1:] != segment[:-1])
    starts = np.flatnonzero(change)
    lengths = np.diff(np.append(starts, labels.size))
    nodes = labels[starts]
    keep = nodes >= 0
    return nodes[keep], lengths[keep], starts[keep]


def residence_times(
    bmus: xr.DataArray,
    n_nodes: int,
    *,
    within: str | None = None,
    max_step: Any = None,
    max_length: int | None = None,
) -> xr.Dataset:
    """Run lengths per node: how many consecutive samples the series stays on a node.

    Runs end where the node changes and at every break (:func:`segments`, members).

    Parameters
    ----------
    bmus, n_nodes
        As :func:`hit_counts`; needs a ``time`` dimension.
    within, max_step
        As :func:`segments`.
    max_length : int or None, default=None
        Longest run length of the distribution; None: the longest run found.

    Returns
    -------
    Dataset
        ``mean_residence`` (``node``; in time steps), ``n_runs`` (``node``),
        ``distribution`` (``node, length``: how many runs of each length) and ``yearly_max``
        (``year, node``: the longest run starting in the year; 0 where none).
    """
    _check_nodes(n_nodes)
    series = _series_last(bmus)
    segment = segments(series, within, max_step)
    labels = np.asarray(_labels(series).compute())
    years = pd.DatetimeIndex(series[TIME].values).year.to_numpy()
    found = [_runs(row, segment) for row in labels.reshape(-1, segment.size)]
    nodes = np.concatenate([f[0] for f in found]).astype(np.int64)
    lengths = np.concatenate([f[1] for f in found]).astype(np.int64)
    run_years = np.concatenate([years[f[2]] for f in found])
    longest = int(lengths.max(initial=1)) if max_length is None else int(max_length)
    clipped = np.minimum(lengths, longest)
    distribution = np.zeros((n_nodes, longest), dtype=np.int64)
    np.add.at(distribution, (nodes, clipped - 1), 1)
    n_runs = np.bincount(nodes, minlength=n_nodes)
    total = np.bincount(nodes, weights=lengths, minlength=n_nodes)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n_runs > 0, total / n_runs, np.nan)
    year_index = np.unique(years)
    yearly = np.zeros((year_index.size, n_nodes), dtype=np.int64)
    np.maximum.at(yearly, (np.searchsorted(year_index, run_years), nodes), lengths)
    return xr.Dataset(
        {
            "mean_residence": (
                "node",
                mean,
                {"long_name": "mean run length", "units": "time steps"},
            ),
            "n_runs": ("node", n_runs),
            "distribution": (
                ("node", "length"),
                distribution,
                {"long_name": "number of runs of each length"},
            ),
            "yearly_max": (
                ("year", "node"),
                yearly,
                {"long_name": "longest run starting in the year", "units": "time steps"},
            ),
        },
        coords={
            "node": np.arange(n_nodes),
            "length": np.arange(1, longest + 1),
            "year": year_index,
        },
    )


def _group_sums(codes: np.ndarray, rows: np.ndarray, n_groups: int) -> np.ndarray:
    """Per-group sums and counts of the finite values of one block: shape (1, 2, G, F).

    A one-hot sparse product, ``O(rows x F)``; negative codes (no group) are left out."""
    finite = np.isfinite(rows)
    keep = codes >= 0
    onehot = sparse.csr_matrix(
        (np.ones(int(keep.sum())), (codes[keep], np.flatnonzero(keep))),
        shape=(n_groups, rows.shape[0]),
    )
    out = np.empty((1, 2, n_groups, rows.shape[1]))
    out[0, 0] = onehot @ np.where(finite, rows, 0.0)
    out[0, 1] = onehot @ finite.astype(np.float64)
    return out


def _anomaly_sums(
    labels: np.ndarray,
    groups: np.ndarray,
    rows: np.ndarray,
    climatology: np.ndarray,
    n_groups: int,
) -> np.ndarray:
    """Per-node sums of the values, sums of their anomalies against each sample's group's
    climatology, and counts of the finite values, of one block: shape (1, 3, M, F)."""
    sums = _group_sums(labels, rows, n_groups)
    anomalies = _group_sums(labels, rows - climatology[groups], n_groups)
    return np.concatenate([sums[:, :1], anomalies[:, :1], sums[:, 1:]], axis=1)


def _block_sums(
    function: Any, codes: list[da.Array], rows: da.Array, n_out: int, n_groups: int, **kwargs: Any
) -> np.ndarray:
    """Run ``function`` on every row block of ``rows`` (with the matching blocks of ``codes``)
    and add the results up: one out-of-core pass over ``rows``."""
    arguments: list[Any] = []
    for code in codes:
        arguments += [code.rechunk((rows.chunks[0],)), "i"]
    blocks = da.blockwise(
        function,
        "ikjf",
        *arguments,
        rows,
        "if",
        n_groups=n_groups,
        new_axes={"k": n_out, "j": n_groups},
        adjust_chunks={"i": 1},
        dtype=float,
        **kwargs,
    )
    return np.asarray(blocks.sum(axis=0).compute())


def composites(
    bmus: xr.DataArray,
    other: xr.DataArray,
    n_nodes: int,
    *,
    climatology: str | None = None,
) -> xr.Dataset:
    """Mean of another variable over the samples of each node, and its anomaly.

    One pass over ``other``, chunk by chunk (two with a grouped climatology: the climatology,
    then the per-node sums), so that a variable larger than memory is never held.

    Parameters
    ----------
    bmus, n_nodes
        As :func:`hit_counts`.
    other : DataArray
        Any variable on the same samples (the same sample dims and coordinates; e.g. a
        temperature field for a map trained on pressure), dask backed for large data.
        NaN values are left out of each mean.
    climatology : str or None, default=None
        The climatology the anomaly is taken against: None, the mean over all samples; or a
        grouping such as ``"time.month"`` or ``"time.dayofyear"``, each sample's group mean.

    Returns
    -------
    Dataset
        ``mean`` and ``anomaly`` on ``(node, *other's other dims)`` with its coordinates and
        units, ``climatology`` (on the climatology's groups and other's other dims) and
        ``count`` (samples per node).  A node without samples is NaN.
    """
    _check_nodes(n_nodes)
    if not isinstance(other, xr.DataArray):
        raise TypeError(f"Expected the other variable as a DataArray, got {type(other).__name__}.")
    sample_dims = tuple(bmus.dims)
    missing = [d for d in sample_dims if d not in other.dims]
    if missing:
        raise ValueError(
            f"The variable lacks the BMUs' sample dims {missing}; composites need both on the "
            "same samples."
        )
    for dim in sample_dims:
        if other.sizes[dim] != bmus.sizes[dim]:
            raise ValueError(
                f"The BMUs have {bmus.sizes[dim]} samples along {dim!r}, the variable "
                f"{other.sizes[dim]}; select the same samples (e.g. other.sel(time=bmus.time))."
            )
        if dim in bmus.coords and dim in other.coords:
            if not np.array_equal(bmus[dim].values, other[dim].values):
                raise ValueError(
                    f"The BMUs and the variable have different {dim!r} coordinates; select the "
                    "same samples (e.g. other.sel(time=bmus.time))."
                )
    feature_dims = tuple(d for d in other.dims if d not in sample_dims)
    if not feature_dims:
        other = other.expand_dims("feature", axis=-1)
        feature_dims = ("feature",)
    rows = sample_rows(other, sample_dims, feature_dims)
    labels = _labels(bmus).ravel()
    if climatology is None:
        codes, groups = np.zeros(bmus.shape, dtype=np.int64), pd.Index([0], name="group")
    else:
        codes, groups = _group_codes(bmus, climatology)
    group_codes = da.from_array(codes.ravel(), chunks=(rows.chunks[0],))
    if climatology is None:
        # One pass: against a constant climatology the anomaly is the mean minus it.
        node_sums = _block_sums(_group_sums, [labels], rows, 2, n_nodes)
        with np.errstate(invalid="ignore", divide="ignore"):
            clim = node_sums[0].sum(axis=0, keepdims=True) / node_sums[1].sum(axis=0, keepdims=True)
            finite = np.where(node_sums[1] > 0, node_sums[1], np.nan)
            mean = node_sums[0] / finite
        anomaly = mean - clim
    else:
        clim_sums = _block_sums(_group_sums, [group_codes], rows, 2, len(groups))
        with np.errstate(invalid="ignore", divide="ignore"):
            clim = clim_sums[0] / np.where(clim_sums[1] > 0, clim_sums[1], np.nan)
        sums = _block_sums(_anomaly_sums, [labels, group_codes], rows, 3, n_nodes, climatology=clim)
        with np.errstate(invalid="ignore", divide="ignore"):
            finite = np.where(sums[2] > 0, sums[2], np.nan)
            mean, anomaly = sums[0] / finite, sums[1] / finite
    shape = tuple(other.sizes[d] for d in feature_dims)
    coords: dict[Hashable, Any] = {
        name: coord.variable
        for name, coord in other.coords.items()
        if coord.dims and set(coord.dims) <= set(feature_dims)
    }
    coords["node"] = np.arange(n_nodes)
    group_dim = str(groups.name)
    coords[group_dim] = groups.values
    dims = ("node", *feature_dims)
    units = {"units": other.attrs["units"]} if "units" in other.attrs else {}
    against = "the mean of all samples" if climatology is None else f"{climatology} means"
    result = xr.Dataset(
        {
            "mean": (dims, mean.reshape(n_nodes, *shape), {"long_name": "composite mean", **units}),
            "anomaly": (
                dims,
                anomaly.reshape(n_nodes, *shape),
                {"long_name": f"composite anomaly against {against}", **units},
            ),
            "climatology": (
                (group_dim, *feature_dims),
                clim.reshape(len(groups), *shape),
                {"long_name": f"climatology ({against})", **units},
            ),
            "count": ("node", hit_counts(bmus, n_nodes).values, {"long_name": "samples"}),
        },
        coords=coords,
    )
    if climatology is None:
        result = result.isel({group_dim: 0}, drop=True)
    return result.squeeze("feature", drop=True) if "feature" in result.dims else result


def compare_frequencies(reference: xr.DataArray, other: xr.DataArray, n_nodes: int) -> xr.Dataset:
    """Node frequencies of two data sets projected onto one map, and whether they differ.

    Parameters
    ----------
    reference, other : DataArray of int
        BMUs of two data sets on the same map (e.g. a reanalysis and a model, or the present
        and a scenario: :meth:`FieldSOM.bmus` of each).
    n_nodes : int

    Returns
    -------
    Dataset
        ``reference`` and ``other`` frequencies and their ``difference`` (other minus
        reference) on ``node``; attributes ``chi2`` and ``p_value`` of a chi-squared test that
        both come from the same distribution (nodes never hit by either are left out).
    """
    counts = np.stack([hit_counts(reference, n_nodes).values, hit_counts(other, n_nodes).values])
    used = counts.sum(axis=0) > 0
    if used.sum() < 2:
        chi2, p_value = 0.0, 1.0
    else:
        from scipy import stats

        test = stats.chi2_contingency(counts[:, used])
        chi2, p_value = float(test.statistic), float(test.pvalue)
    freq = counts / counts.sum(axis=1, keepdims=True)
    return xr.Dataset(
        {
            "reference": ("node", freq[0], {"units": "1"}),
            "other": ("node", freq[1], {"units": "1"}),
            "difference": ("node", freq[1] - freq[0], {"units": "1"}),
        },
        coords={"node": np.arange(n_nodes)},
        attrs={"chi2": chi2, "p_value": p_value},
    )
