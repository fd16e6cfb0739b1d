"""The weight mosaic: every node's weights drawn as a small image at its place on the map
(digits, image patches), all in one ``imshow``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from dasksom.core.lattice import Lattice
from dasksom.plotting.base import (
    CmapLike,
    colormap,
    fitted_map,
    map_figsize,
    new_axes,
    save_and_show,
)

__all__ = ["plot_weight_mosaic"]


def plot_weight_mosaic(
    som: Any,
    image_shape: Sequence[int],
    *,
    ax: Axes | None = None,
    cmap: CmapLike = "gray_r",
    title: str | None = "Node weights",
    padding: int = 2,
    show: bool = False,
    print_out: bool = False,
    file_name: str | os.PathLike | None = None,
    figsize: tuple[float, float] | None = None,
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """Every node's weights drawn as a small image at its place on the map.

    The images are assembled into one array and drawn with a single ``imshow``, so a 50 x 50
    map of 28 x 28 images is quick.  Rows are shifted by the lattice's ``row_offsets`` (half
    an image on the odd rows of a hexagonal map), so node ``k``'s image is centred on
    ``lattice.positions[k]`` in data coordinates.

    Parameters
    ----------
    som : fitted SOM
        Anything with ``weights_`` and ``lattice_``, e.g. a fitted :class:`dasksom.SOM`.
    image_shape : (height, width) or (height, width, channels)
        Shape of one node's weights as an image, e.g. ``(28, 28)`` for MNIST; 3 or 4 channels
        are drawn as RGB(A).
    ax : matplotlib Axes, default=None
        Axes to draw into; None makes a new figure.
    cmap : str or Colormap, default="gray_r"
        Unused for RGB(A) images.
    title : str, default="Node weights"
    padding : int, default=2
        Blank pixels between neighbouring images.
    show, print_out : bool, default=False
        Call ``plt.show()``; save the figure to ``file_name``.
    file_name : str or path, default=None
        Where ``print_out`` saves; None: ``./som_weights.png``.
    figsize : (float, float), default=None
        Size of a new figure; None follows the map's shape.
    **kwargs
        Passed to :meth:`~matplotlib.axes.Axes.imshow` (``interpolation`` is "antialiased"
        unless given).

    Returns
    -------
    fig, ax
    """
    weights, lattice = fitted_map(som)
    images = _node_images(weights, image_shape)
    canvas, cell = _mosaic_canvas(images, lattice, padding)
    fig, ax = _draw_canvas(ax, canvas, cell, lattice, cmap, figsize, **kwargs)
    if title:
        ax.set_title(title)
    save_and_show(fig, show, print_out, file_name, "./som_weights.png")
    return fig, ax


def _node_images(weights: np.ndarray, image_shape: Sequence[int]) -> np.ndarray:
    """The weights as images ``(M, *image_shape)`` scaled to [0, 1]: one scale for all nodes
    keeps their brightness comparable."""
    image_shape = _check_image_shape(image_shape, weights.shape[1])
    lo, hi = float(weights.min()), float(weights.max())
    return ((weights - lo) / (hi - lo if hi > lo else 1.0)).reshape(-1, *image_shape)


def _draw_canvas(
    ax: Axes | None,
    canvas: np.ndarray,
    cell: tuple[int, int],
    lattice: Lattice,
    cmap: CmapLike,
    figsize: tuple[float, float] | None,
    **kwargs: Any,
) -> tuple[Figure, Axes]:
    """The mosaic in ``ax`` (or a new figure), node ``k``'s image centred on
    ``lattice.positions[k]``, cells square, no axis."""
    cell_h, cell_w = cell
    row_h = lattice.row_height
    extent = (-0.5, -0.5 + canvas.shape[1] / cell_w, -row_h / 2, (lattice.height - 0.5) * row_h)
    width, height = extent[1] - extent[0], lattice.height * cell_h / cell_w
    fig, ax = new_axes(ax, figsize or map_figsize(width, height, colorbar=False))
    kwargs.setdefault("interpolation", "antialiased")
    ax.imshow(canvas, cmap=colormap(cmap), vmin=0.0, vmax=1.0, extent=extent, **kwargs)
    # Stretch rows back to square cells: one row (row_h data units) is as tall as a node is wide.
    ax.set_aspect(cell_h / cell_w / row_h)
    ax.set_axis_off()
    return fig, ax


def _check_image_shape(image_shape: Sequence[int], n_features: int) -> tuple[int, ...]:
    shape = tuple(int(s) for s in image_shape)
    if int(np.prod(shape)) != n_features or len(shape) not in (2, 3):
        raise ValueError(
            f"image_shape {shape} does not hold the map's {n_features} features; "
            "pass (height, width) or (height, width, channels) with that many values."
        )
    return shape


def _mosaic_canvas(
    images: np.ndarray, lattice: Lattice, padding: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """Node images ``(M, h, w[, channels])`` laid out as the map in one array, map row 0 at
    the bottom and each row shifted by its lattice offset; also the size of one cell."""
    img_h, img_w, *channels = images.shape[1:]
    cell_h, cell_w = img_h + padding, img_w + padding
    # Blank padding: NaN becomes the colormap's "bad" colour; RGB pads in white.
    blank = 1.0 if channels else np.nan
    cells = np.full((lattice.height, lattice.width, cell_h, cell_w, *channels), blank)
    top, left = padding // 2, padding // 2
    cells[:, :, top : top + img_h, left : left + img_w] = images.reshape(
        lattice.height, lattice.width, img_h, img_w, *channels
    )
    # (rows, cols, cell_h, cell_w) -> (rows, cell_h, cols * cell_w): one strip per map row.
    strip_w = lattice.width * cell_w
    strips = cells.swapaxes(1, 2).reshape(lattice.height, cell_h, strip_w, *channels)
    shifts = (lattice.row_offsets * cell_w).astype(int)
    canvas = np.full((lattice.height, cell_h, strip_w + shifts.max(), *channels), blank)
    for shift in np.unique(shifts):
        rows = shifts == shift
        canvas[rows, :, shift : shift + strip_w] = strips[rows]
    # Image rows run top-down: stack the map rows reversed.
    return canvas[::-1].reshape(lattice.height * cell_h, -1, *channels), (cell_h, cell_w)
