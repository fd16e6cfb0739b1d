"""Neighbourhood functions and the smoothing step ``H @ S`` of the batch update.

``H[j, k] = h(d(j, k))`` with ``d`` the lattice distance and ``h`` one of design.md section 2's
functions; the update is section 4's.  :func:`smooth` applies ``H`` to the per-node partial
sums once per epoch.  Small maps use the dense matrix.  Larger ones use the lattice's
structure and never hold an ``M x M`` array (a 256 x 256 map would need 34 GB):

- ``gaussian`` factorises over the axes, ``h = gx(dx) * gy(dy)``; the minimum image is taken per
  axis, so it factorises on a torus too.  Along the columns the kernel depends on the row
  classes of target and source (on the hexagonal lattice the row parity shifts ``x`` by 1/2):
  one ``W x W`` kernel per pair of classes, then one ``H x H`` kernel along the rows.
- ``mexican_hat`` is ``(1 - qx - qy) gx gy`` with ``q = d^2 / s^2``: two separable terms.
- ``bubble`` covers, for a pair of rows, one interval of columns (cyclic on a torus), summed as
  a difference of prefix sums over the columns.

The kinds are entries of :data:`NEIGHBORHOODS`, a table of :class:`Neighborhood` objects, each
with its ``h(d)`` and its structured smoother: adding a kind means adding one class there.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from dasksom.backends.arrays import array_module
from dasksom.core.lattice import Lattice

# Relative slack of the bubble's edge: a rounding error, not a change of radius.
BUBBLE_SLACK = 1e-9
# Up to this many nodes the dense M x M matrix (8 MB here) is about as fast as the structured
# product or faster: with K = 785 the two cross between 576 and 2304 nodes depending on the
# neighbourhood, and both take under 0.1 s at 1024 (`python benchmarks/large_map.py --sweep`).
DENSE_MAX_NODES = 1024
# Elements (rows x columns x value columns) of one float64 block of the separable product:
# values are processed a few columns at a time so that temporaries stay near 32 MB.
BLOCK_ELEMENTS = 1 << 22
# Elements of the bubble's per-block prefix sums: about 8 MB, so that a block stays in cache.
BUBBLE_BLOCK_ELEMENTS = 1 << 20


def inside_bubble(d: np.ndarray, sigma: float) -> np.ndarray:
    """``d <= sigma``, counting in distances that only rounding puts beyond ``sigma``.

    Hexagonal rows sit ``sqrt(3) / 2`` apart, which floats cannot hold exactly: neighbours meant
    to be at distance 1 come out at ``1 + 2e-16`` for some rows.

    Parameters
    ----------
    d : ndarray
        Lattice distances.
    sigma : float
        The radius.

    Returns
    -------
    bool ndarray shaped like ``d``
        ``d <= sigma * (1 + BUBBLE_SLACK)``.
    """
    return d <= sigma * (1.0 + BUBBLE_SLACK)


class Neighborhood:
    """A neighbourhood function ``h(d)`` and its structured ``H @ values`` for large maps."""

    name: str

    def weights(self, d: np.ndarray, sigma: float) -> np.ndarray:
        """``h(d)`` for lattice distances ``d`` and radius ``sigma`` (design.md section 2).

        Parameters
        ----------
        d : array-like
            Lattice distances.
        sigma : float
            The radius, positive.

        Returns
        -------
        float ndarray shaped like ``d``
        """
        raise NotImplementedError

    def structured(self, lattice: Lattice, geometry: _Geometry, sigma: float) -> _StructuredSums:
        """The smoother that applies ``H`` without building it (see :func:`structured_smooth`).

        This default is exact for any ``h`` and holds ``H`` one block of rows at a time: memory
        stays bounded, time grows as ``M^2``.  Kinds with structure override it.

        Parameters
        ----------
        lattice : Lattice
            The map.
        geometry : _Geometry
            Its offsets split by axis (``_Geometry.of(lattice)``).
        sigma : float
            The radius.

        Returns
        -------
        _StructuredSums
            Its ``apply`` takes ``(height, width, K)`` float64 blocks and gives ``H @ block``.
        """
        return _RowBlockSums(lattice, self, sigma)


class Gaussian(Neighborhood):
    """``exp(-d^2 / (2 s^2))``: a product of one factor per axis."""

    name = "gaussian"

    def weights(self, d: np.ndarray, sigma: float) -> np.ndarray:
        return np.exp(-0.5 * (np.asarray(d, dtype=float) ** 2 / sigma**2))

    def structured(self, lattice: Lattice, geometry: _Geometry, sigma: float) -> _StructuredSums:
        return _SeparableSums(
            geometry, [(self.weights(geometry.dx, sigma), _gauss(geometry.dy, sigma))]
        )


class MexicanHat(Neighborhood):
    """``(1 - d^2 / s^2) exp(-d^2 / (2 s^2))``: two separable terms."""

    name = "mexican_hat"

    def weights(self, d: np.ndarray, sigma: float) -> np.ndarray:
        ratio = np.asarray(d, dtype=float) ** 2 / sigma**2
        return (1.0 - ratio) * np.exp(-0.5 * ratio)

    def structured(self, lattice: Lattice, geometry: _Geometry, sigma: float) -> _StructuredSums:
        # (1 - qx - qy) gx gy = [(1 - qx) gx] gy - gx [qy gy]
        gx, gy = _gauss(geometry.dx, sigma), _gauss(geometry.dy, sigma)
        qy = geometry.dy**2 / sigma**2
        return _SeparableSums(geometry, [(self.weights(geometry.dx, sigma), gy), (-gx, qy * gy)])


class Bubble(Neighborhood):
    """1 within the radius, 0 beyond: each pair of rows covers an interval of columns."""

    name = "bubble"

    def weights(self, d: np.ndarray, sigma: float) -> np.ndarray:
        return inside_bubble(np.asarray(d, dtype=float), sigma).astype(float)

    def structured(self, lattice: Lattice, geometry: _Geometry, sigma: float) -> _StructuredSums:
        return _BubbleSums(lattice, geometry, sigma)


NEIGHBORHOODS: dict[str, Neighborhood] = {n.name: n for n in (Gaussian(), Bubble(), MexicanHat())}


def get_neighborhood(name: str) -> Neighborhood:
    """The :class:`Neighborhood` called ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`NEIGHBORHOODS`.

    Returns
    -------
    Neighborhood

    Raises
    ------
    ValueError
        When ``name`` is not one, naming the choices.
    """
    if not isinstance(name, str) or name not in NEIGHBORHOODS:
        raise ValueError(
            f"Unknown neighborhood {name!r}; choose one of {', '.join(NEIGHBORHOODS)}."
        )
    return NEIGHBORHOODS[name]


def neighborhood_weights(d: np.ndarray, sigma: float, kind: str) -> np.ndarray:
    """``h(d)`` of the neighbourhood ``kind`` for lattice distances ``d`` and radius ``sigma``.

    Parameters
    ----------
    d : array-like
        Lattice distances.
    sigma : float
        The radius, positive.
    kind : {"gaussian", "bubble", "mexican_hat"}
        A name in :data:`NEIGHBORHOODS`.

    Returns
    -------
    float ndarray shaped like ``d``

    Raises
    ------
    ValueError
        For an unknown ``kind``.
    """
    return get_neighborhood(kind).weights(d, sigma)


def _gauss(d: np.ndarray, sigma: float) -> np.ndarray:
    """The Gaussian's ``h`` of ``d``: one axis's factor of the separable kinds."""
    return NEIGHBORHOODS["gaussian"].weights(d, sigma)


def neighborhood_matrix(lattice: Lattice, sigma: float, kind: str) -> np.ndarray:
    """Dense ``(M, M)`` matrix ``H``; ``M x M`` memory, so for small maps and for tests.

    Parameters
    ----------
    lattice : Lattice
        The map.
    sigma : float
        The radius.
    kind : {"gaussian", "bubble", "mexican_hat"}
        A name in :data:`NEIGHBORHOODS`.

    Returns
    -------
    ndarray of shape (M, M)
        ``H[j, k] = h(d(j, k))``.
    """
    return neighborhood_weights(lattice.distance_matrix(), sigma, kind)


def smooth(lattice: Lattice, values: Any, sigma: float, kind: str) -> Any:
    """``H @ values`` for ``values`` of shape ``(M, K)`` (or ``(M,)``), in float64.

    Maps of up to :data:`DENSE_MAX_NODES` nodes use the dense matrix, larger ones
    :func:`structured_smooth`, which needs memory of the order of ``values`` only.

    Parameters
    ----------
    lattice : Lattice
        The map.
    values : array of shape (M, K) or (M,), NumPy or CuPy
        One row per node, in node order.
    sigma : float
        The radius.
    kind : {"gaussian", "bubble", "mexican_hat"}
        A name in :data:`NEIGHBORHOODS`.

    Returns
    -------
    array shaped like ``values``
        NumPy values give a NumPy result, CuPy values a CuPy one, computed on their GPU.

    Raises
    ------
    ValueError
        When ``values`` does not have one row per node, or for an unknown ``kind``.
    """
    if lattice.n_nodes <= DENSE_MAX_NODES:
        _check_values(lattice, values)
        return array_module(values).asarray(neighborhood_matrix(lattice, sigma, kind)) @ values
    return structured_smooth(lattice, values, sigma, kind)


def structured_smooth(lattice: Lattice, values: Any, sigma: float, kind: str) -> Any:
    """``H @ values`` without building ``H``, from the lattice's row-and-column structure.

    Parameters
    ----------
    lattice : Lattice
        The map.
    values : array of shape (M, K) or (M,), NumPy or CuPy
        One row per node, in node order ``k = r * width + c``.
    sigma : float
        Neighbourhood radius.
    kind : {"gaussian", "bubble", "mexican_hat"}
        A name in :data:`NEIGHBORHOODS`.

    Returns
    -------
    array of float64 in the module of ``values``, shaped like ``values``
        Equal to ``neighborhood_matrix(lattice, sigma, kind) @ values`` up to rounding; the
        ``bubble`` neighbourhood decides membership with the same floating-point expression
        as the dense matrix.  Cost ``O(H W^2 K + H^2 W K)``.

    Raises
    ------
    ValueError
        When ``values`` does not have one row per node, or for an unknown ``kind``.
    """
    neighborhood = get_neighborhood(kind)
    _check_values(lattice, values)
    xp = array_module(values)
    values = xp.asarray(values)
    flat = values.reshape(lattice.n_nodes, -1)
    height, width = lattice.height, lattice.width
    n_columns = flat.shape[1]
    out = xp.zeros((height, width, n_columns))
    grid = flat.reshape(height, width, n_columns)
    smoother = neighborhood.structured(lattice, _Geometry.of(lattice), sigma)
    # A GPU takes every column at once; CPUs take cache-sized blocks on their threads.
    step = smoother.block_columns(lattice) if xp is np else max(1, n_columns)

    def smooth_block(start: int) -> None:
        block = xp.ascontiguousarray(grid[:, :, start : start + step], dtype=np.float64)
        out[:, :, start : start + step] = smoother.apply(block)

    if xp is np:
        with ThreadPoolExecutor(smoother.threads) as pool:
            list(pool.map(smooth_block, range(0, n_columns, step)))
    else:
        # In this thread: CuPy's current device is per thread, and it is this one's.
        smooth_block(0)
    return out.reshape(values.shape)


def _check_values(lattice: Lattice, values: np.ndarray) -> None:
    """Refuse ``values`` without one row per node of ``lattice``."""
    if np.ndim(values) not in (1, 2) or np.shape(values)[0] != lattice.n_nodes:
        raise ValueError(
            f"values must have shape (M, K) or (M,) with M = {lattice.n_nodes} nodes, got "
            f"shape {np.shape(values)}."
        )


def _rows_index(rows: np.ndarray) -> slice | np.ndarray:
    """``rows`` (increasing) as a slice when evenly spaced, so that indexing gives a view."""
    if len(rows) == 1:
        return slice(int(rows[0]), int(rows[0]) + 1)
    steps = np.diff(rows)
    if np.all(steps == steps[0]):
        return slice(int(rows[0]), int(rows[-1]) + 1, int(steps[0]))
    return rows


@dataclass(frozen=True)
class _Geometry:
    """Lattice offsets split into a column part and a row part, minimum image taken.

    Rows whose nodes share the same ``x`` positions form a class (one class on the square
    lattice, the two row parities on the hexagonal one).

    Attributes
    ----------
    row_class : (H,) class of every row
    class_rows : index (slice) of the rows of each class
    dx : (C, C, W, W) ``dx[t, s, j, k]``: ``x`` of column ``k`` in a class-``s`` row minus ``x``
        of column ``j`` in a class-``t`` row
    dy : (H, H) ``dy[i, r]``: ``y`` of row ``r`` minus ``y`` of row ``i``
    """

    row_class: np.ndarray
    class_rows: list[slice | np.ndarray]
    dx: np.ndarray
    dy: np.ndarray

    @classmethod
    def of(cls, lattice: Lattice) -> _Geometry:
        pos = lattice.positions.reshape(lattice.height, lattice.width, 2)
        class_x, row_class = np.unique(pos[:, :, 0], axis=0, return_inverse=True)
        row_class = row_class.ravel()
        class_rows = [_rows_index(np.flatnonzero(row_class == c)) for c in range(len(class_x))]
        y = pos[:, 0, 1]
        # The same subtractions and the same wrap as Lattice.distances_from, so the same floats.
        dx, dy = lattice.wrap(
            class_x[None, :, None, :] - class_x[:, None, :, None], y[None, :] - y[:, None]
        )
        return cls(row_class, class_rows, dx, dy)


class _StructuredSums:
    """``H @ block`` for blocks of shape ``(height, width, value columns)``."""

    # Threads over blocks of value columns.
    threads = 1

    def block_columns(self, lattice: Lattice) -> int:
        """Value columns per block: matrix products like big blocks, BLAS runs its threads."""
        return max(1, BLOCK_ELEMENTS // lattice.n_nodes)

    def apply(self, block: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class _RowBlockSums(_StructuredSums):
    """``H @ block`` computed one block of ``H``'s rows at a time, from the lattice distances."""

    def __init__(self, lattice: Lattice, neighborhood: Neighborhood, sigma: float) -> None:
        self.lattice = lattice
        self.neighborhood = neighborhood
        self.sigma = sigma

    def apply(self, block: Any) -> Any:
        xp = array_module(block)
        n_nodes = self.lattice.n_nodes
        flat = block.reshape(n_nodes, -1)
        out = xp.empty_like(flat)
        step = max(1, BLOCK_ELEMENTS // n_nodes)
        for start in range(0, n_nodes, step):
            nodes = np.arange(start, min(start + step, n_nodes))
            rows = self.neighborhood.weights(self.lattice.distances_from(nodes), self.sigma)
            out[start : start + len(nodes)] = xp.asarray(rows) @ flat
        return out.reshape(block.shape)


class _SeparableSums(_StructuredSums):
    """``H @ block`` for a neighbourhood that is a sum of products ``kx(dx) * ky(dy)``.

    ``terms`` holds one ``(kx, ky)`` pair per product: ``kx`` of shape ``(C, C, W, W)`` over
    ``geometry.dx`` and ``ky`` of shape ``(H, H)`` over ``geometry.dy``.
    """

    def __init__(self, geometry: _Geometry, terms: list[tuple[np.ndarray, np.ndarray]]) -> None:
        self.geometry = geometry
        self.terms = terms

    def apply(self, block: Any) -> Any:
        xp = array_module(block)
        height, width, n_columns = block.shape
        class_rows = [_on(xp, rows) for rows in self.geometry.class_rows]
        out = xp.zeros_like(block)
        along_columns = xp.empty_like(block)
        for kx_host, ky_host in self.terms:
            kx, ky = xp.asarray(kx_host), xp.asarray(ky_host)
            for target, target_rows in enumerate(class_rows):
                for source, source_rows in enumerate(class_rows):
                    along_columns[source_rows] = xp.matmul(kx[target, source], block[source_rows])
                along_rows = ky[target_rows] @ along_columns.reshape(height, -1)
                out[target_rows] += along_rows.reshape(-1, width, n_columns)
        return out


class _BubbleSums(_StructuredSums):
    """``H @ block`` for the bubble: each pair of rows covers an interval of columns.

    Membership of each column offset is decided per pair of rows with the dense form's own
    test, :func:`inside_bubble` of ``sqrt(dx**2 + dy**2)``, on the same ``dx`` and ``dy``.  The
    covered offsets form an interval (cyclic with periodic boundaries) because that expression grows
    with ``|dx|``; it is stored as its first offset ``lo`` and its length.
    """

    # Memory-bound slice sums: blocks that stay in cache, one thread per core.
    threads = os.cpu_count() or 1

    def block_columns(self, lattice: Lattice) -> int:
        return max(1, BUBBLE_BLOCK_ELEMENTS // (lattice.height * (3 * lattice.width + 1)))

    def __init__(self, lattice: Lattice, geometry: _Geometry, sigma: float) -> None:
        width = lattice.width
        self.pbc = lattice.pbc
        # Column offsets o = k - j: every one once, one period of them on a torus.
        offsets = np.arange(width) if self.pbc else np.arange(1 - width, width)
        ahead = np.maximum(offsets, 0)
        behind = np.maximum(-offsets, 0)
        dx_by_offset = geometry.dx[:, :, behind, ahead]  # (C, C, n_offsets)
        n_rows = lattice.height
        lo = np.empty((n_rows, n_rows), dtype=np.int64)
        length = np.empty((n_rows, n_rows), dtype=np.int64)
        for row in range(n_rows):
            dx = dx_by_offset[geometry.row_class[row]][geometry.row_class]
            covered = inside_bubble(np.sqrt(dx**2 + geometry.dy[row][:, None] ** 2), sigma)
            length[row] = covered.sum(axis=1)
            if self.pbc:
                # The arc starts where a covered offset follows an uncovered one.  Shifted to
                # [-W, 0) so that every prefix-sum index below stays inside [-W, 2W].
                starts = covered & ~np.roll(covered, 1, axis=1)
                lo[row] = np.argmax(starts, axis=1) - width
            else:
                lo[row] = offsets[np.argmax(covered, axis=1)]
        full = length == len(offsets)
        self.full = full.astype(float)
        self.groups = self._group_partial(lo, length, (length > 0) & ~full)

    @staticmethod
    def _group_partial(
        lo: np.ndarray, length: np.ndarray, partial: np.ndarray
    ) -> list[tuple[int, int, slice | np.ndarray, int]]:
        """Partial row pairs grouped by (row shift, lo, length), to be summed together."""
        targets, sources = np.nonzero(partial)
        if not len(targets):
            return []
        keys = np.column_stack([sources - targets, lo[partial], length[partial]])
        unique, inverse = np.unique(keys, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse, minlength=len(unique)))[:-1]
        groups = []
        for (shift, first, size), members in zip(unique, np.split(order, bounds), strict=True):
            rows = targets[members]
            groups.append((int(shift), int(first), _rows_index(rows), int(size)))
        return groups

    def _extended_prefix(self, block: Any) -> Any:
        """``C[:, W + i]`` = sum of the values in columns ``c < i`` of each row, ``-W <= i <= 2W``.

        Without periodic boundaries columns outside the map hold nothing (C is clamped); on a
        torus column ``c`` is column ``c mod W`` (C grows by the row total every period).
        """
        xp = array_module(block)
        height, width, n_columns = block.shape
        prefix = xp.zeros((height, width + 1, n_columns))
        xp.cumsum(block, axis=1, out=prefix[:, 1:])
        index = np.arange(-width, 2 * width + 1)
        # take keeps the result C-ordered; fancy indexing would put the rows innermost.
        if not self.pbc:
            return xp.take(prefix, xp.asarray(np.clip(index, 0, width)), axis=1)
        extended = xp.take(prefix, xp.asarray(index % width), axis=1)
        periods = xp.asarray((index // width).astype(float))
        extended += periods[None, :, None] * prefix[:, width, None]
        return extended

    def apply(self, block: Any) -> Any:
        xp = array_module(block)
        height, width, n_columns = block.shape
        extended = self._extended_prefix(block)
        totals = extended[:, 2 * width]
        out = xp.repeat((xp.asarray(self.full) @ totals)[:, None, :], width, axis=1)
        for shift, lo, rows, length in self.groups:
            sources = rows + shift if isinstance(rows, np.ndarray) else _shift(rows, shift)
            sources = _on(xp, sources)
            start = width + lo
            upper = extended[sources, start + length : start + length + width]
            lower = extended[sources, start : start + width]
            out[_on(xp, rows)] += upper - lower
        return out


def _on(xp: Any, rows: slice | np.ndarray) -> Any:
    """A row index for arrays of module ``xp``: slices as they are, index arrays moved there."""
    return rows if isinstance(rows, slice) else xp.asarray(rows)


def _shift(rows: slice, shift: int) -> slice:
    """The slice ``rows`` moved by ``shift`` rows."""
    return slice(rows.start + shift, rows.stop + shift, rows.step)
