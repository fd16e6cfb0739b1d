"""Lattice geometry: node positions, lattice distances, neighbours (design.md section 1).

One class, :class:`Lattice`.  Node ``k = r * width + c`` sits at row ``r`` and column ``c``.
Positions are ``(x, y)`` pairs: ``(c, r)`` on the square lattice and
``(c + 0.5 * (r % 2), r * sqrt(3) / 2)`` on the hexagonal one.  With periodic boundaries the map
is a torus and distances use the minimum image.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

TOPOLOGIES = ("square", "hexagonal")
HEX_ROW_HEIGHT = np.sqrt(3.0) / 2.0
# Lattice distance at or below which two nodes count as neighbours (design.md section 7).
NEIGHBOR_DISTANCE = 1.01


@dataclass(frozen=True)
class Lattice:
    """A ``height x width`` map of nodes on a square or hexagonal grid.

    Parameters
    ----------
    height, width : int
        Number of rows and columns; both at least 1.
    topology : {"square", "hexagonal"}, default="hexagonal"
        Tiling of the map.
    pbc : bool, default=False
        Periodic boundary conditions: the map wraps into a torus.  A hexagonal torus needs an
        even ``height`` so that the row offsets line up across the seam.

    Raises
    ------
    ValueError
        When ``height`` or ``width`` is not an integer of at least 1, ``topology`` is unknown,
        or a hexagonal torus has an odd ``height``.
    """

    height: int
    width: int
    topology: str = "hexagonal"
    pbc: bool = False

    def __post_init__(self) -> None:
        for name in ("height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{name} must be an integer of at least 1, got {value!r}.")
        if self.topology not in TOPOLOGIES:
            raise ValueError(
                f"Unknown topology {self.topology!r}; choose one of {', '.join(TOPOLOGIES)}."
            )
        if self.topology == "hexagonal" and self.pbc and self.height % 2:
            raise ValueError(
                f"A hexagonal map with periodic boundaries needs an even height, got "
                f"height={self.height}: odd rows would not line up across the seam. "
                "Use an even height, pbc=False, or topology='square'."
            )

    @property
    def n_nodes(self) -> int:
        """Number of nodes ``M = height * width``."""
        return self.height * self.width

    @cached_property
    def rows(self) -> np.ndarray:
        """Row index of every node, shape ``(M,)``."""
        return np.repeat(np.arange(self.height), self.width)

    @cached_property
    def cols(self) -> np.ndarray:
        """Column index of every node, shape ``(M,)``."""
        return np.tile(np.arange(self.width), self.height)

    @property
    def row_height(self) -> float:
        """Distance between neighbouring rows: 1 on the square lattice, ``sqrt(3) / 2`` on the
        hexagonal one."""
        return float(HEX_ROW_HEIGHT) if self.topology == "hexagonal" else 1.0

    @cached_property
    def row_offsets(self) -> np.ndarray:
        """x offset of each row's first node, shape ``(height,)``: 0.5 for the odd rows of a
        hexagonal map, else 0."""
        offsets = np.zeros(self.height)
        if self.topology == "hexagonal":
            offsets[1::2] = 0.5
        offsets.setflags(write=False)
        return offsets

    @cached_property
    def positions(self) -> np.ndarray:
        """``(M, 2)`` array of node positions ``(x, y)`` in node order."""
        x = self.cols + self.row_offsets[self.rows]
        y = self.rows * self.row_height
        return np.column_stack([x, y])

    @property
    def extent(self) -> tuple[float, float]:
        """Size ``(W, H)`` of the torus the map wraps onto when ``pbc`` is set."""
        return float(self.width), self.height * self.row_height

    def wrap(self, dx: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Position differences, reduced to the minimum image when the map is periodic.

        Parameters
        ----------
        dx, dy : ndarray
            Differences of ``x`` and of ``y`` positions, of any one shape.

        Returns
        -------
        dx, dy : ndarray
            Unchanged without ``pbc``; else wrapped into ``[-W/2, W/2]`` and ``[-H/2, H/2]``
            with ``(W, H)`` the :attr:`extent`.
        """
        if not self.pbc:
            return dx, dy
        size_x, size_y = self.extent
        dx = dx - size_x * np.round(dx / size_x)
        dy = dy - size_y * np.round(dy / size_y)
        return dx, dy

    def distances_from(self, nodes: np.ndarray | int) -> np.ndarray:
        """Lattice distances from each node in ``nodes`` to every node.

        Parameters
        ----------
        nodes : int or int array of shape (n,)
            Node indices.

        Returns
        -------
        ndarray of shape (n, M)
            One row per node of ``nodes`` (one row for an int).
        """
        nodes = np.atleast_1d(np.asarray(nodes))
        pos = self.positions
        dx, dy = self.wrap(
            pos[None, :, 0] - pos[nodes, 0][:, None], pos[None, :, 1] - pos[nodes, 1][:, None]
        )
        return np.sqrt(dx**2 + dy**2)

    def distance_matrix(self) -> np.ndarray:
        """Dense ``(M, M)`` lattice distances.  Meant for small maps and for tests.

        Returns
        -------
        ndarray of shape (M, M)
        """
        return self.distances_from(np.arange(self.n_nodes))

    def pair_distances(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Lattice distance between nodes ``a[i]`` and ``b[i]`` for every ``i``.

        Parameters
        ----------
        a, b : int arrays of one shape
            Node indices.

        Returns
        -------
        ndarray shaped like ``a``
        """
        pos = self.positions
        dx, dy = self.wrap(pos[b, 0] - pos[a, 0], pos[b, 1] - pos[a, 1])
        return np.sqrt(dx**2 + dy**2)

    def neighbors(self, node: int) -> np.ndarray:
        """Nodes at lattice distance 1 from ``node`` (inside the map: 4 square, 6 hexagonal).

        Parameters
        ----------
        node : int
            A node index.

        Returns
        -------
        int array
            The nodes within :data:`NEIGHBOR_DISTANCE` of ``node``, in increasing order.
        """
        d = self.distances_from(node)[0]
        (found,) = np.nonzero((d > 0) & (d <= NEIGHBOR_DISTANCE))
        return found

    @cached_property
    def neighbor_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Every pair of neighbouring nodes once, as index arrays ``(a, b)`` with ``a < b``.

        Neighbours are the nodes within :data:`NEIGHBOR_DISTANCE`, across the seams when the
        map is periodic, as in :meth:`neighbors`.  Candidates come from each node's "forward"
        lattice steps (right, and the 1 or 2 nodes of the next row), so time and memory stay
        linear in the number of nodes; the lattice distance then decides, which keeps tiny
        tori right, where a step can wrap onto the node itself or reach a neighbour twice.
        The arrays are sorted by ``(a, b)`` and read-only.
        """
        rows, cols = self.rows, self.cols
        steps: list[tuple[int, int | np.ndarray]] = [(0, 1), (1, 0)]
        if self.topology == "hexagonal":
            # Odd rows sit half a node right: the other node above is one column left (even
            # rows) or right (odd rows).
            steps.append((1, np.where(rows % 2 == 1, 1, -1)))
        node = np.tile(np.arange(self.n_nodes), len(steps))
        r = np.concatenate([rows + dr for dr, _ in steps])
        c = np.concatenate([cols + dc for _, dc in steps])
        if self.pbc:
            r, c = r % self.height, c % self.width
        else:
            inside = (r < self.height) & (c >= 0) & (c < self.width)
            node, r, c = node[inside], r[inside], c[inside]
        other = r * self.width + c
        d = self.pair_distances(node, other)
        keep = (d > 0) & (d <= NEIGHBOR_DISTANCE)
        lo, hi = np.minimum(node, other)[keep], np.maximum(node, other)[keep]
        codes = np.unique(lo.astype(np.int64) * self.n_nodes + hi)
        a, b = codes // self.n_nodes, codes % self.n_nodes
        a.setflags(write=False)
        b.setflags(write=False)
        return a, b

    def to_dict(self) -> dict:
        """The four settings as JSON types: ``Lattice(**lattice.to_dict())`` rebuilds the map.

        Returns
        -------
        dict
            ``height``, ``width``, ``topology`` and ``pbc``.
        """
        return {
            "height": int(self.height),
            "width": int(self.width),
            "topology": self.topology,
            "pbc": bool(self.pbc),
        }
