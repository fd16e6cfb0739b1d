# %% [markdown]
# # Weather regimes of a gridded field with dasksom
#
# A self-organizing map of daily winter pressure fields: its regimes (the prototypes, as maps),
# their frequencies and trends, the transitions between them, how long they last, composites
# of another variable per regime, and a scenario ensemble projected onto the same map.
#
# The field is synthetic, so that the answer is known and nothing is downloaded: 20 winters
# (DJF, a gap of nine months between them) of sea-level-pressure anomalies on a 15 x 24 grid
# with a land mask, made of three planted regimes that follow a known Markov chain, plus
# noise (`dasksom.climate.planted_regimes`).  With real data, open it lazily instead, e.g.
# `xr.open_dataset("slp.nc", chunks={"time": 365})["slp"]`; everything below stays the same.
#
# Usage: `python examples/climate_regimes.py [OUTPUT] [--winters 20]`: the figures and the
# saved results go to OUTPUT (default `climate_output/`).

# %%
import argparse
import sys
from pathlib import Path

import numpy as np
import xarray as xr

from dasksom.climate import (
    FieldSOM,
    compare_frequencies,
    composites,
    frequencies,
    frequency_trend,
    planted_regimes,
    residence_times,
    transitions,
)
from dasksom.plotting.fields import (
    plot_frequency_trend,
    plot_prototype_maps,
    plot_transition_graph,
)

parser = argparse.ArgumentParser(description="Weather regimes of a gridded field.")
parser.add_argument("output", nargs="?", default="climate_output", help="folder for the results")
parser.add_argument("--winters", type=int, default=20, help="winters of daily fields")
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
output = Path(args.output)
output.mkdir(parents=True, exist_ok=True)
winters = args.winters

# %% [markdown]
# ## The field, and the map
#
# `FieldSOM.fit` stacks every dimension but `time` into features lazily, drops the masked
# points (NaN in every sample), weights each point by the square root of the cosine of its
# latitude (so that squared distances are area weighted) and trains a `dasksom.SOM` on the
# dask array, chunk by chunk.

# %%
data = planted_regimes(n_winters=winters, seed=0)
slp = data["slp"].chunk({"time": 360})
model = FieldSOM(height=2, width=3, topology="hexagonal", epochs=10, random_state=0)
model.fit(slp, sample_dims="time", weights="sqrt_coslat")
bmus = model.bmus(slp).compute()
print(f"{slp.sizes['time']} days, {model.layout_.n_features} unmasked grid points")

# %% [markdown]
# Which node each planted regime lands on (the majority), and how pure that is:

# %%
confusion = np.zeros((3, model.n_nodes), dtype=int)
np.add.at(confusion, (data["regime"].values, bmus.values), 1)
for regime, name in enumerate(data.attrs["regime_names"].split(", ")):
    node = confusion[regime].argmax()
    share = confusion[regime, node] / confusion[regime].sum()
    print(f"regime {name:9s} -> node {node}  ({100 * share:.0f}% of its days)")

# %% [markdown]
# ## Prototypes: the regimes as maps, in hPa, with the land mask restored

# %%
freq = frequencies(bmus, model.n_nodes)
prototypes = model.prototypes()
plot_prototype_maps(
    prototypes, frequencies=freq, print_out=True, file_name=output / "climate_prototypes.png"
)

# %% [markdown]
# ## Frequencies per month of the winter, and their trend over the winters
#
# A winter spans two calendar years; a `winter` coordinate (the year of its December) groups
# each one together.

# %%
print(frequencies(bmus, model.n_nodes, "time.month").round(3).to_pandas())
winter = bmus["time"].dt.year - (bmus["time"].dt.month < 6)
trend = frequency_trend(bmus.assign_coords(winter=winter), model.n_nodes, period="winter")
print(trend[["slope", "p_value"]].to_pandas().round(4))
plot_frequency_trend(
    trend, model.som_.lattice_, print_out=True, file_name=output / "climate_frequency_trend.png"
)

# %% [markdown]
# ## Transitions and residence times
#
# Pairs of days are counted only within a winter: the gap from one February to the next
# December breaks the series, as would the boundary between ensemble members.

# %%
moves = transitions(bmus, model.n_nodes)
print(moves["probability"].round(2).to_pandas())
plot_transition_graph(
    moves,
    model.som_.lattice_,
    frequencies=freq,
    print_out=True,
    file_name=output / "climate_transitions.png",
)
runs = residence_times(bmus, model.n_nodes)
print(runs[["mean_residence", "n_runs"]].to_pandas().round(2))
print("planted mean residence (days):", data["expected_residence"].values.round(2))

# %% [markdown]
# ## Composites of another variable: 2 m temperature anomaly per node

# %%
temperature = composites(bmus, data["t2m"].chunk({"time": 360}), model.n_nodes)
anomaly = temperature["anomaly"].assign_coords(model.node_coords())
anomaly.attrs["units"] = "K"
plot_prototype_maps(
    anomaly, frequencies=freq, print_out=True, file_name=output / "climate_composites.png"
)

# %% [markdown]
# ## A scenario ensemble projected onto the same map
#
# Three members of a "future" in which blocking lasts longer.  `bmus` stacks them with the
# layout learnt on the training field (mask, weights); transitions keep each member apart.

# %%
future = planted_regimes(
    n_winters=winters,
    n_members=3,
    first_year=2070,
    seed=7,
    transitions=np.array([[0.75, 0.20, 0.05], [0.05, 0.85, 0.10], [0.10, 0.15, 0.75]]),
)
future_bmus = model.bmus(future["slp"].chunk({"time": 360}))
change = compare_frequencies(bmus, future_bmus, model.n_nodes)
print(change[["reference", "other", "difference"]].to_pandas().round(3))
print(f"chi-squared p-value of no change: {change.attrs['p_value']:.2g}")

# %% [markdown]
# ## Everything labelled, in one file
#
# Prototypes, BMUs and distances with CF-style attributes, to zarr or NetCDF in one call.

# %%
model.save(output / "climate_regimes.nc", slp)
model.save(output / "climate_regimes.zarr", slp)
with xr.open_dataset(output / "climate_regimes.nc") as saved:
    print(saved)
