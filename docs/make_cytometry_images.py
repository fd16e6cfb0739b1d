"""Put the cytometry pictures (:mod:`dasksom.plotting.cytometry`) into docs/images/.

Run ``python docs/make_cytometry_images.py`` (``--output FOLDER`` writes elsewhere).  It
plants five blood populations in eight markers (20,000 cells, already in arcsinh units, seed
0; a random tenth of them "ungated"), fits ``FlowSOM(10, 10, n_clusters=6, seed=42)`` on them
and draws the star plot on the spanning tree, the pies of the planted populations (the
"manual gates") per node on the grid, and CD4's level on the tree.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import dask.array as da
import numpy as np

from dasksom.cytometry import FlowSOM, grouped_counts, read_array
from dasksom.plotting import plot_label_pies, plot_marker_tree, plot_stars
from dasksom.plotting.base import pyplot

IMAGES = Path(__file__).resolve().parent / "images"
MARKERS = ["CD3", "CD4", "CD8", "CD19", "CD14", "CD16", "CD56", "HLA-DR"]
# Each population's mean level (arcsinh units) of every marker, in the order of MARKERS.
POPULATIONS = {
    "CD4 T": [4, 4, 0, 0, 0, 0, 0, 0],
    "CD8 T": [4, 0, 4, 0, 0, 0, 1.5, 0],
    "B": [0, 0, 0, 4, 0, 0, 0, 4],
    "monocyte": [0, 1.5, 0, 0, 4, 1, 0, 3],
    "NK": [0.5, 0, 1.5, 0, 0, 3, 3, 0],
}
SHARES = [0.35, 0.2, 0.15, 0.2, 0.1]
# The share of cells no manual gate catches, labelled "ungated".
UNGATED = 0.1


def planted_cells(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cells of the planted populations and each cell's population name.

    Parameters
    ----------
    n : int, default=20000
    seed : int, default=0

    Returns
    -------
    values : ndarray of shape (n, 8)
    labels : ndarray of str, shape (n,)
        The population, or "ungated" for a random tenth of the cells.
    """
    rng = np.random.default_rng(seed)
    names = np.array(list(POPULATIONS))
    population = rng.choice(len(names), size=n, p=SHARES)
    centres = np.array(list(POPULATIONS.values()), dtype=np.float64)
    values = centres[population] + rng.normal(scale=0.6, size=(n, len(MARKERS)))
    labels = np.where(rng.random(n) < UNGATED, "ungated", names[population])
    return values, labels


def make_images(output: Path) -> list[Path]:
    """Fit the model and write the three pictures into ``output``.

    Parameters
    ----------
    output : pathlib.Path
        The folder, created when missing.

    Returns
    -------
    list of pathlib.Path
        ``cytometry_stars.png``, ``cytometry_pies.png``, ``cytometry_marker_tree.png``.
    """
    output.mkdir(parents=True, exist_ok=True)
    values, labels = planted_cells()
    cells = read_array(da.from_array(values, chunks=5_000), MARKERS)
    model = FlowSOM(10, 10, n_clusters=6, seed=42).fit(cells)
    node = model.map(cells).node
    counts = grouped_counts(node, model.som_.lattice_.n_nodes)
    labels_lazy = da.from_array(labels, chunks=node.chunks)
    paths = [output / name for name in ("stars", "pies", "marker_tree")]
    paths = [path.with_name(f"cytometry_{path.name}.png") for path in paths]
    plot_stars(model, "mst", counts, print_out=True, file_name=paths[0])
    plot_label_pies(model, node, labels_lazy, "grid", print_out=True, file_name=paths[1])
    plot_marker_tree(model, "CD4", "mst", counts, print_out=True, file_name=paths[2])
    pyplot().close("all")
    return paths


def main() -> None:
    """Write the pictures (``--output``, default docs/images/)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=IMAGES)
    for path in make_images(parser.parse_args().output):
        print(path)


if __name__ == "__main__":
    main()
