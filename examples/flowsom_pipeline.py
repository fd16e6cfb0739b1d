# %% [markdown]
# # FlowSOM on FCS files with dasksom
#
# The FlowSOM pipeline (Van Gassen et al. 2015) on every cell of several samples: read FCS
# files lazily, fit a 10 x 10 self-organizing map and its metaclusters, map every cell, and
# write the tables cytometrists use (per node, metacluster and sample, with marker medians)
# as parquet files and an AnnData `.h5ad`.
#
# The files are synthetic, so that the answer is known and nothing is downloaded: a
# mass-cytometry-like panel of 10 markers (channels named by their metal, `$PnN`, with the
# antigen in `$PnS`) on 8 planted immune populations, two of them rare, in three samples whose
# population shares differ.  With real data, pass your own files to `read_fcs`; everything
# after it stays the same.
#
# Usage: `python examples/flowsom_pipeline.py [--output DIR] [--cells N]`: the FCS files, the
# tables, the AnnData file and the saved model go to DIR (default `flowsom_output/`); N cells
# per file (default 60,000).

# %%
import argparse
import sys
from pathlib import Path

import flowio
import numpy as np

from dasksom.cytometry import FlowSOM, read_fcs, summarise

parser = argparse.ArgumentParser(description="FlowSOM on synthetic FCS files.")
parser.add_argument("--output", default="flowsom_output", help="folder for the results")
parser.add_argument("--cells", type=int, default=60_000, help="cells per FCS file")
args = parser.parse_args([] if "ipykernel" in sys.modules else None)
output = Path(args.output)
output.mkdir(parents=True, exist_ok=True)

# %% [markdown]
# ## The planted populations
#
# Each population's level of every marker on the arcsinh scale (cofactor 5): 0 negative,
# 2 dim, 4 positive.  A cell is normal around its population's levels (spread 0.45) and is
# written as `5 sinh(level)`, so that `arcsinh(x / 5)` gives the levels back.

# %%
CHANNELS = ["Y89Di", "Nd142Di", "Nd143Di", "Nd144Di", "Nd145Di",
            "Nd146Di", "Sm147Di", "Nd148Di", "Sm149Di", "Nd150Di"]  # fmt: skip
ANTIGENS = ["CD45", "CD3", "CD4", "CD8", "CD19", "CD14", "CD16", "CD56", "HLA-DR", "CD11c"]
PHENOTYPES = {
    # population:              CD45 CD3 CD4 CD8 CD19 CD14 CD16 CD56 HLA-DR CD11c
    "CD4 T cells":             [4, 4, 4, 0, 0, 0, 0, 0, 0, 0],
    "CD8 T cells":             [4, 4, 0, 4, 0, 0, 0, 2, 0, 0],
    "B cells":                 [4, 0, 0, 0, 4, 0, 0, 0, 4, 0],
    "NK cells":                [4, 0, 0, 0, 0, 0, 4, 4, 0, 0],
    "classical monocytes":     [4, 0, 2, 0, 0, 4, 0, 0, 4, 4],
    "non-classical monocytes": [4, 0, 2, 0, 0, 2, 4, 0, 4, 4],
    "dendritic cells":         [4, 0, 0, 0, 0, 0, 0, 0, 4, 4],
    "double-negative T":       [4, 4, 0, 0, 0, 0, 0, 0, 0, 0],
}  # fmt: skip
NAMES = list(PHENOTYPES)
LEVELS = np.array(list(PHENOTYPES.values()), dtype=float)
# Each sample's share of every population (the dendritic and double-negative T cells rare).
SHARES = {
    "donor1_baseline.fcs": [0.38, 0.24, 0.10, 0.10, 0.12, 0.03, 0.015, 0.015],
    "donor1_stimulated.fcs": [0.30, 0.20, 0.10, 0.08, 0.22, 0.06, 0.02, 0.02],
    "donor2_baseline.fcs": [0.30, 0.30, 0.14, 0.12, 0.08, 0.03, 0.01, 0.02],
}
COFACTOR = 5.0

rng = np.random.default_rng(0)
populations = []
paths = []
for name, shares in SHARES.items():
    population = rng.choice(len(NAMES), size=args.cells, p=shares)
    levels = LEVELS[population] + rng.normal(scale=0.45, size=(args.cells, len(CHANNELS)))
    events = (COFACTOR * np.sinh(levels)).astype(np.float32)
    path = output / "fcs" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        flowio.create_fcs(handle, events.ravel(), CHANNELS, opt_channel_names=ANTIGENS)
    populations.append(population)
    paths.append(path)
planted = np.concatenate(populations)
print(f"wrote {len(paths)} FCS files of {args.cells:,} cells to {output / 'fcs'}")

# %% [markdown]
# ## Reading, fitting, mapping
#
# `read_fcs` reads only the files' TEXT segments here; the events are read chunk by chunk
# (`events_per_chunk`) on the workers when a computation needs them.  Markers are picked by
# antigen (`$PnS`) as well as by channel (`$PnN`).  `FlowSOM` applies the arcsinh, trains the
# map for 10 passes over every cell, builds the minimal spanning tree of the nodes and their
# consensus metaclusters, and learns the outlier threshold of every node.

# %%
cells = read_fcs(paths, markers=ANTIGENS, events_per_chunk=30_000)
model = FlowSOM(10, 10, n_clusters=len(NAMES), seed=42, cofactor=COFACTOR).fit(cells)
results = model.map(cells).persist()
print(f"{cells.n_cells:,} cells of {len(cells.samples)} samples on a 10 x 10 map")

# %% [markdown]
# ## The tables, written as parquet and AnnData
#
# `summarise` counts the cells and computes every marker's median per node, metacluster and
# sample, out of core.  The AnnData file holds the nodes in FlowSOM_Python's `cluster_data`
# layout; `FlowSOM.load` reads the saved model back to map new files.

# %%
summary = summarise(results)
tables = summary.write_parquet(output / "tables")
summary.to_anndata(model).write_h5ad(output / "nodes.h5ad")
model.save(output / "model")
print("wrote", ", ".join(str(path.relative_to(output)) for path in tables))
print(f"wrote nodes.h5ad and model/ to {output}")

# %% [markdown]
# ## What each metacluster is
#
# Its median of every marker (arcsinh scale), named after the planted population most of its
# cells come from, and how many of its cells that is.

# %%
metacluster = results.metacluster.compute()
confusion = np.zeros((len(NAMES), len(NAMES)), dtype=np.int64)
np.add.at(confusion, (metacluster, planted), 1)
labels = [
    f"{k}: {NAMES[row.argmax()]} ({100 * row.max() / max(row.sum(), 1):.0f}%)"
    for k, row in enumerate(confusion)
]
medians = summary.metaclusters.set_index("metacluster")[list(cells.markers)]
medians.columns = list(cells.descriptions)
medians.index = labels
print(medians.round(1).to_string())

# %% [markdown]
# Two things to look for in this table: a population named by two metaclusters (the map split
# it, or a metacluster holds only the few cells between populations) and a share well below
# 100% (two populations merged; here the classical and non-classical monocytes, which differ
# in CD14 and CD16 only, may share one).  dasksom's default neighbourhood, a gaussian whose
# radius ends at 1.2 nodes, smooths the codes more than FlowSOM's own, a bubble that ends at
# the node alone: `FlowSOM(..., som_params={"neighborhood": "bubble", "sigma": (6.0, 0.5)})`
# trains with a schedule of FlowSOM's kind, which separates the monocytes of these files
# (`benchmarks/flowsom_compare.py` compares the two schedules with FlowSOM_Python).

# %% [markdown]
# ## Percentages per sample
#
# The share of each sample's cells in every metacluster (FlowSOM's `GetFeatures`): the
# stimulated sample's planted rise in classical monocytes shows here.

# %%
percentages = summary.sample_metaclusters.pivot(
    index="metacluster", columns="sample", values="percentage"
)
percentages.index = labels
print(percentages.round(2).to_string())

# %% [markdown]
# ## Against the planted populations
#
# The adjusted Rand index of the metaclusters against the planted populations (1 is a
# perfect recovery, 0 what chance gives), from the contingency table above.


# %%
def adjusted_rand_index(table: np.ndarray) -> float:
    """The adjusted Rand index (Hubert and Arabie 1985) of a contingency table."""

    def pairs(counts: np.ndarray) -> float:
        return float((counts * (counts - 1) / 2).sum())

    index, rows, columns = pairs(table), pairs(table.sum(1)), pairs(table.sum(0))
    expected = rows * columns / pairs(np.array([table.sum()]))
    return (index - expected) / ((rows + columns) / 2 - expected)


print(f"ARI vs planted populations: {adjusted_rand_index(confusion):.3f}")
