import itertools
import time

import numpy as np
import pytest

from dasksom import Lattice
from dasksom.core.lattice import NEIGHBOR_DISTANCE
from dasksom.core.schedule import radius_schedule

from ..support import reference

SHAPES = [(1, 1), (1, 5), (4, 1), (4, 6), (5, 7)]


@pytest.mark.parametrize("topology", ["square", "hexagonal"])
@pytest.mark.parametrize("height,width", SHAPES)
def test_positions_follow_node_order_and_formula(topology, height, width):
    lattice = Lattice(height, width, topology)
    np.testing.assert_allclose(
        lattice.positions, reference.positions(height, width, topology), atol=1e-12
    )


@pytest.mark.parametrize(
    "topology,pbc", list(itertools.product(["square", "hexagonal"], [False, True]))
)
@pytest.mark.parametrize("height,width", [(4, 6), (6, 5), (2, 3)])
def test_distances_match_minimum_image_reference(topology, pbc, height, width):
    lattice = Lattice(height, width, topology, pbc)
    expected = reference.distance_matrix(height, width, topology, pbc)
    np.testing.assert_allclose(lattice.distance_matrix(), expected, atol=1e-12)


@pytest.mark.parametrize(
    "topology,pbc", list(itertools.product(["square", "hexagonal"], [False, True]))
)
def test_distances_are_symmetric_with_zero_diagonal(topology, pbc):
    d = Lattice(6, 8, topology, pbc).distance_matrix()
    np.testing.assert_allclose(d, d.T, atol=1e-12)
    np.testing.assert_array_equal(np.diag(d), 0)


def test_inner_hexagonal_nodes_have_six_neighbours():
    lattice = Lattice(6, 7, "hexagonal")
    inner = [r * 7 + c for r in range(1, 5) for c in range(1, 6)]
    assert all(len(lattice.neighbors(k)) == 6 for k in inner)


def test_inner_square_nodes_have_four_neighbours():
    lattice = Lattice(6, 7, "square")
    inner = [r * 7 + c for r in range(1, 5) for c in range(1, 6)]
    assert all(len(lattice.neighbors(k)) == 4 for k in inner)


def test_corner_nodes_have_fewer_neighbours_without_pbc():
    assert len(Lattice(6, 7, "square").neighbors(0)) == 2
    assert len(Lattice(6, 7, "hexagonal").neighbors(0)) == 2


@pytest.mark.parametrize("topology,count", [("square", 4), ("hexagonal", 6)])
def test_every_node_has_full_neighbourhood_on_a_torus(topology, count):
    lattice = Lattice(6, 8, topology, pbc=True)
    assert all(len(lattice.neighbors(k)) == count for k in range(lattice.n_nodes))


def test_hexagonal_torus_with_odd_height_is_refused():
    with pytest.raises(ValueError, match="even height"):
        Lattice(5, 6, "hexagonal", pbc=True)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4"])
def test_map_sizes_below_one_or_not_integers_are_refused(bad):
    with pytest.raises(ValueError, match="height must be an integer of at least 1"):
        Lattice(bad, 4)


def test_unknown_topology_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="square, hexagonal"):
        Lattice(3, 3, "triangular")


def test_default_schedule_is_simpsoms():
    np.testing.assert_allclose(
        radius_schedule(20, 30, 10), reference.sigma_schedule(20, 30, 10), rtol=1e-12
    )


def test_default_schedule_starts_at_half_the_longer_side():
    assert radius_schedule(20, 30, 10)[0] == 15.0


def test_explicit_start_end_decays_exponentially_between_them():
    sigmas = radius_schedule(10, 10, 5, sigma=(8.0, 0.5))
    np.testing.assert_allclose(sigmas[[0, -1]], [8.0, 0.5])
    np.testing.assert_allclose(sigmas[1:] / sigmas[:-1], (0.5 / 8.0) ** 0.25)


def test_explicit_start_end_decays_linearly_when_asked():
    np.testing.assert_allclose(
        radius_schedule(10, 10, 5, sigma=(9.0, 1.0), decay="linear"), [9, 7, 5, 3, 1]
    )


def test_tiny_maps_keep_a_constant_radius():
    np.testing.assert_array_equal(radius_schedule(2, 2, 4), [1.0] * 4)


@pytest.mark.parametrize("sigma", [0.0, -1.0, float("nan"), (3.0, 0.0)])
def test_non_positive_radius_is_refused(sigma):
    with pytest.raises(ValueError, match="positive finite radius"):
        radius_schedule(10, 10, 5, sigma=sigma)


def test_unknown_decay_is_refused():
    with pytest.raises(ValueError, match="exponential, linear"):
        radius_schedule(10, 10, 5, sigma=(3.0, 1.0), decay="cosine")


# --- neighbour pairs and row geometry ---------------------------------------------------------


def brute_force_pairs(lattice):
    d = lattice.distance_matrix()
    a, b = np.nonzero((d > 0) & (d <= NEIGHBOR_DISTANCE))
    upper = a < b
    return a[upper], b[upper]


PAIR_CASES = [
    (height, width, topology, pbc)
    for height, width in [(1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (4, 1), (4, 6), (6, 5), (5, 7)]
    for topology, pbc in itertools.product(["square", "hexagonal"], [False, True])
    # A hexagonal torus needs an even height.
    if not (topology == "hexagonal" and pbc and height % 2)
]


@pytest.mark.parametrize("height,width,topology,pbc", PAIR_CASES)
def test_neighbor_pairs_match_the_distance_matrix(height, width, topology, pbc):
    lattice = Lattice(height, width, topology, pbc)
    a, b = lattice.neighbor_pairs
    expected_a, expected_b = brute_force_pairs(lattice)
    np.testing.assert_array_equal(a, expected_a)
    np.testing.assert_array_equal(b, expected_b)


def test_neighbor_pairs_agree_with_neighbors():
    lattice = Lattice(6, 8, "hexagonal", pbc=True)
    a, b = lattice.neighbor_pairs
    for k in range(lattice.n_nodes):
        found = np.sort(np.concatenate([b[a == k], a[b == k]]))
        np.testing.assert_array_equal(found, lattice.neighbors(k))


def test_neighbor_pairs_of_a_large_map_are_quick_and_cached():
    lattice = Lattice(500, 500, "hexagonal", pbc=True)
    started = time.perf_counter()
    a, b = lattice.neighbor_pairs
    assert time.perf_counter() - started < 5.0
    # Every node of a hexagonal torus has 6 neighbours, each pair counted once.
    assert len(a) == 3 * lattice.n_nodes
    assert lattice.neighbor_pairs[0] is a
    assert not a.flags.writeable


@pytest.mark.parametrize("topology", ["square", "hexagonal"])
def test_row_offsets_and_height_give_the_positions(topology):
    lattice = Lattice(5, 4, topology)
    x, y = lattice.positions.T
    np.testing.assert_allclose(x - lattice.cols, lattice.row_offsets[lattice.rows])
    np.testing.assert_allclose(y, lattice.rows * lattice.row_height)
    expected = [0, 0.5, 0, 0.5, 0] if topology == "hexagonal" else [0] * 5
    np.testing.assert_array_equal(lattice.row_offsets, expected)
