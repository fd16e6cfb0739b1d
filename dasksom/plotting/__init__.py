"""Pictures of a trained map: U-matrix, component planes, hits, labels, weight mosaics,
projections and convergence, on hexagonal or square tiles (dasksom's own plotting API; simpsom's
``plots`` functions are in :mod:`dasksom.simpsom.plots`).

Every map plot takes a fitted map (anything with ``weights_`` of shape ``(M, D)`` and a
:class:`~dasksom.Lattice` in ``lattice_``, e.g. a fitted :class:`dasksom.SOM`) and draws node
``k`` at ``lattice.positions[k]``.  All plots accept ``ax`` (draw into existing axes), ``cmap``
(a colormap name or object), ``show``, ``print_out`` and ``file_name`` as simpsom does, and
return ``(fig, ax)``.

The modules, one figure family each:

- :mod:`~dasksom.plotting.base`: pyplot and the headless backend, colours, new figures, the
  fitted map's arrays, colorbars, legends, saving and showing;
- :mod:`~dasksom.plotting.tiles`: square and hexagonal tiles, :func:`draw_tiles` and
  :func:`draw_map`, periodic maps wrapped onto their torus;
- :mod:`~dasksom.plotting.planes`: :func:`plot_umatrix` and :func:`plot_component_planes`;
- :mod:`~dasksom.plotting.hits`: :func:`plot_hits` and :func:`plot_labels`;
- :mod:`~dasksom.plotting.projection`: :func:`plot_projection`;
- :mod:`~dasksom.plotting.mosaic`: :func:`plot_weight_mosaic`;
- :mod:`~dasksom.plotting.convergence`: :func:`plot_convergence` and :func:`draw_line`;
- :mod:`~dasksom.plotting.cytometry`: a fitted :class:`~dasksom.cytometry.FlowSOM`'s
  :func:`plot_stars`, :func:`plot_label_pies` and :func:`plot_marker_tree`, on its minimal
  spanning tree (:func:`node_layout`, :func:`tree_layout`) or its grid.

The numbers behind the pictures live elsewhere: geometry in :class:`~dasksom.Lattice`, the
U-matrix values in :mod:`dasksom.core.analysis` (:func:`node_differences` is re-exported here).
A top layer: imports matplotlib, :mod:`dasksom.core`, :mod:`dasksom.io` and
:mod:`dasksom.cytometry`; the engine never imports it.
"""

from dasksom.core.analysis import node_differences
from dasksom.plotting.base import (
    EMPTY_EDGE,
    EMPTY_FACE,
    NO_HITS_COLOR,
    NO_HITS_HATCH,
    add_colorbar,
    categorical_colors,
    save_and_show,
)
from dasksom.plotting.convergence import draw_line, plot_convergence
from dasksom.plotting.cytometry import (
    label_counts,
    metacluster_colors,
    node_layout,
    plot_label_pies,
    plot_marker_tree,
    plot_stars,
    tree_layout,
)
from dasksom.plotting.hits import plot_hits, plot_labels
from dasksom.plotting.mosaic import plot_weight_mosaic
from dasksom.plotting.planes import plot_component_planes, plot_umatrix
from dasksom.plotting.projection import plot_projection
from dasksom.plotting.tiles import Hexagons, Squares, Tiling, draw_map, draw_tiles, tiling_for

__all__ = [
    "add_colorbar",
    "categorical_colors",
    "draw_line",
    "draw_map",
    "draw_tiles",
    "EMPTY_EDGE",
    "EMPTY_FACE",
    "Hexagons",
    "label_counts",
    "metacluster_colors",
    "NO_HITS_COLOR",
    "NO_HITS_HATCH",
    "node_differences",
    "node_layout",
    "plot_component_planes",
    "plot_convergence",
    "plot_hits",
    "plot_label_pies",
    "plot_labels",
    "plot_marker_tree",
    "plot_projection",
    "plot_stars",
    "plot_umatrix",
    "plot_weight_mosaic",
    "save_and_show",
    "Squares",
    "Tiling",
    "tiling_for",
    "tree_layout",
]
