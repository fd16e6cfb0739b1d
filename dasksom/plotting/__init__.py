"""Pictures of a trained map: U-matrix, component planes, hits, labels, weight mosaics,
projections and convergence, on hexagonal or square tiles (dasksom's own plotting API; simpsom's
``plots`` functions are in :mod:`dasksom.simpsom.plots`).

A top layer: imports matplotlib, :mod:`dasksom.core` and :mod:`dasksom.io`; the engine never
imports it.
"""

from dasksom.plotting.figures import (
    EMPTY_EDGE,
    EMPTY_FACE,
    NO_HITS_COLOR,
    NO_HITS_HATCH,
    Hexagons,
    Squares,
    Tiling,
    add_colorbar,
    categorical_colors,
    draw_line,
    draw_map,
    draw_tiles,
    node_differences,
    plot_component_planes,
    plot_convergence,
    plot_hits,
    plot_labels,
    plot_projection,
    plot_umatrix,
    plot_weight_mosaic,
    save_and_show,
    tiling_for,
)

__all__ = [
    "add_colorbar",
    "categorical_colors",
    "draw_line",
    "draw_map",
    "draw_tiles",
    "EMPTY_EDGE",
    "EMPTY_FACE",
    "Hexagons",
    "NO_HITS_COLOR",
    "NO_HITS_HATCH",
    "node_differences",
    "plot_component_planes",
    "plot_convergence",
    "plot_hits",
    "plot_labels",
    "plot_projection",
    "plot_umatrix",
    "plot_weight_mosaic",
    "save_and_show",
    "Squares",
    "Tiling",
    "tiling_for",
]
