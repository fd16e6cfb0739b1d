"""Neighbourhood functions (design.md section 2) and the smoothing step ``H @ values`` (4)."""

import itertools
import math
import tracemalloc

import numpy as np
import pytest

from dasksom import SOM
from dasksom.core import neighborhood
from dasksom.core.lattice import Lattice
from dasksom.core.neighborhood import (
    NEIGHBORHOODS,
    Neighborhood,
    get_neighborhood,
    neighborhood_matrix,
    neighborhood_weights,
    smooth,
    structured_smooth,
)

SHAPES = [(1, 1), (1, 7), (6, 1), (2, 3), (4, 4), (5, 7), (6, 9), (8, 5)]
# Below, at and between lattice distances (1, sqrt(3), 2 are hexagonal neighbour shells),
# and larger than every map here.
SIGMAS = [0.4, 1.0, math.sqrt(3.0), 2.0, 2.6, 50.0]


def lattices():
    """Every topology and boundary for every shape that allows it (a hexagonal torus needs
    an even height)."""
    for (height, width), topology, pbc in itertools.product(
        SHAPES, ("square", "hexagonal"), (False, True)
    ):
        if topology == "hexagonal" and pbc and height % 2:
            continue
        yield Lattice(height, width, topology, pbc)


LATTICES = list(lattices())


def lattice_id(lattice):
    return f"{lattice.height}x{lattice.width}-{lattice.topology}-{'pbc' if lattice.pbc else 'open'}"


def random_values(lattice, n_columns=3, seed=0):
    return np.random.default_rng(seed).normal(size=(lattice.n_nodes, n_columns))


def assert_close_to_dense(got, expected):
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12 * scale)


@pytest.mark.parametrize("kind", NEIGHBORHOODS)
@pytest.mark.parametrize("lattice", LATTICES, ids=lattice_id)
def test_structured_smooth_equals_dense_product(lattice, kind):
    values = random_values(lattice)
    for sigma in SIGMAS:
        expected = neighborhood_matrix(lattice, sigma, kind) @ values
        assert_close_to_dense(structured_smooth(lattice, values, sigma, kind), expected)


@pytest.mark.parametrize("kind", NEIGHBORHOODS)
@pytest.mark.parametrize("lattice", LATTICES, ids=lattice_id)
def test_structured_smooth_of_identity_is_the_dense_matrix(lattice, kind):
    identity = np.eye(lattice.n_nodes)
    for sigma in SIGMAS:
        expected = neighborhood_matrix(lattice, sigma, kind)
        assert_close_to_dense(structured_smooth(lattice, identity, sigma, kind), expected)


@pytest.mark.parametrize("lattice", LATTICES, ids=lattice_id)
def test_bubble_membership_is_bit_identical_when_sigma_is_a_distance_on_the_map(lattice):
    # sigma taken from the dense distances themselves: d == sigma exactly for some pairs, and
    # pairs at the same nominal distance may round either side of it.
    identity = np.eye(lattice.n_nodes)
    distances = np.unique(lattice.distance_matrix())
    for sigma in list(distances[:6]) + SIGMAS:
        got = structured_smooth(lattice, identity, sigma, "bubble")
        np.testing.assert_array_equal(got, neighborhood_matrix(lattice, sigma, "bubble"))


@pytest.mark.parametrize("kind", NEIGHBORHOODS)
@pytest.mark.parametrize("topology", ["square", "hexagonal"])
@pytest.mark.parametrize("pbc", [False, True])
def test_smooth_above_the_dense_threshold_equals_dense_product(monkeypatch, kind, topology, pbc):
    lattice = Lattice(6, 5, topology, pbc)
    monkeypatch.setattr(neighborhood, "DENSE_MAX_NODES", lattice.n_nodes - 1)
    values = random_values(lattice)
    expected = neighborhood_matrix(lattice, 1.7, kind) @ values
    assert_close_to_dense(smooth(lattice, values, 1.7, kind), expected)


@pytest.mark.parametrize("kind", NEIGHBORHOODS)
def test_smooth_at_or_below_the_dense_threshold_equals_dense_product(kind):
    lattice = Lattice(8, 9, "hexagonal")
    assert lattice.n_nodes <= neighborhood.DENSE_MAX_NODES
    values = random_values(lattice)
    expected = neighborhood_matrix(lattice, 2.2, kind) @ values
    assert_close_to_dense(smooth(lattice, values, 2.2, kind), expected)


@pytest.mark.parametrize("kind", NEIGHBORHOODS)
def test_structured_smooth_needs_far_less_memory_than_an_m_by_m_matrix(kind):
    lattice = Lattice(64, 64, "hexagonal", pbc=True)
    values = random_values(lattice, n_columns=2)
    dense_bytes = lattice.n_nodes**2 * 8
    tracemalloc.start()
    try:
        structured_smooth(lattice, values, 20.0, kind)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < dense_bytes / 20


@pytest.mark.parametrize("kind", NEIGHBORHOODS)
def test_structured_smooth_keeps_the_shape_of_one_dimensional_values(kind):
    lattice = Lattice(4, 5, "square")
    values = np.arange(lattice.n_nodes, dtype=float)
    got = structured_smooth(lattice, values, 1.5, kind)
    assert got.shape == (lattice.n_nodes,)
    assert_close_to_dense(got, neighborhood_matrix(lattice, 1.5, kind) @ values)


def test_structured_smooth_accepts_float32_and_returns_float64():
    lattice = Lattice(4, 6, "hexagonal")
    values = random_values(lattice).astype(np.float32)
    got = structured_smooth(lattice, values, 1.5, "gaussian")
    assert got.dtype == np.float64
    assert_close_to_dense(got, neighborhood_matrix(lattice, 1.5, "gaussian") @ values)


@pytest.mark.parametrize("smoother", [smooth, structured_smooth])
def test_smoothing_rejects_values_with_a_row_count_other_than_the_node_count(smoother):
    lattice = Lattice(3, 4)
    with pytest.raises(ValueError, match="M = 12 nodes"):
        smoother(lattice, np.ones((11, 2)), 1.0, "gaussian")


@pytest.mark.parametrize("smoother", [smooth, structured_smooth])
def test_smoothing_rejects_unknown_neighborhood(smoother):
    lattice = Lattice(3, 4)
    with pytest.raises(ValueError, match="Unknown neighborhood 'cone'"):
        smoother(lattice, np.ones((12, 2)), 1.0, "cone")


DISTANCES = [0.0, 0.5, 1.0, math.sqrt(3.0), 2.0, 2.5, 4.0, 10.0]
RADII = [0.5, 1.0, 2.0, 3.7]


@pytest.mark.parametrize("sigma", RADII)
def test_gaussian_is_exp_of_minus_d_squared_over_two_sigma_squared(sigma):
    expected = [math.exp(-(d * d) / (2 * sigma * sigma)) for d in DISTANCES]
    np.testing.assert_allclose(neighborhood_weights(DISTANCES, sigma, "gaussian"), expected)


@pytest.mark.parametrize("sigma", RADII)
def test_bubble_is_one_within_sigma_inclusive_and_zero_beyond(sigma):
    expected = [1.0 if d <= sigma else 0.0 for d in DISTANCES]
    np.testing.assert_array_equal(neighborhood_weights(DISTANCES, sigma, "bubble"), expected)


@pytest.mark.parametrize("sigma", RADII)
def test_mexican_hat_is_one_minus_d_squared_over_sigma_squared_times_gaussian(sigma):
    expected = [
        (1 - d * d / (sigma * sigma)) * math.exp(-(d * d) / (2 * sigma * sigma)) for d in DISTANCES
    ]
    np.testing.assert_allclose(
        neighborhood_weights(DISTANCES, sigma, "mexican_hat"), expected, atol=1e-15
    )


def test_mexican_hat_is_zero_at_sigma_and_negative_beyond():
    weights = neighborhood_weights([2.0, 2.5, 4.0], 2.0, "mexican_hat")
    assert weights[0] == 0.0
    assert (weights[1:] < 0).all()


@pytest.mark.parametrize("kind", NEIGHBORHOODS)
def test_every_neighborhood_is_one_at_distance_zero(kind):
    assert neighborhood_weights(0.0, 1.3, kind) == 1.0


def test_check_neighborhood_rejects_unknown_names_listing_the_choices():
    with pytest.raises(ValueError) as excinfo:
        get_neighborhood("triangle")
    message = str(excinfo.value)
    assert "'triangle'" in message
    for name in NEIGHBORHOODS:
        assert name in message


@pytest.mark.parametrize("kind", NEIGHBORHOODS)
def test_check_neighborhood_accepts_every_known_name(kind):
    get_neighborhood(kind)


@pytest.mark.parametrize("topology,count", [("square", 5), ("hexagonal", 7)])
def test_bubble_of_radius_one_holds_every_node_and_its_neighbours(topology, count):
    h = neighborhood_matrix(Lattice(6, 6, topology, pbc=True), 1.0, "bubble")
    np.testing.assert_array_equal(h.sum(axis=1), count)


class Triangle(Neighborhood):
    """A kind the package does not ship: h = max(0, 1 - d / s)."""

    name = "triangle"

    def weights(self, d, sigma):
        return np.clip(1.0 - np.asarray(d, dtype=float) / sigma, 0.0, None)


@pytest.mark.parametrize("height,width", [(6, 5), (40, 30)])
def test_a_neighborhood_added_to_the_table_smooths_small_and_large_maps(monkeypatch, height, width):
    monkeypatch.setitem(NEIGHBORHOODS, "triangle", Triangle())
    lattice = Lattice(height, width, "hexagonal", True)
    values = np.random.default_rng(0).normal(size=(lattice.n_nodes, 3))
    expected = Triangle().weights(lattice.distance_matrix(), 4.0) @ values
    np.testing.assert_allclose(smooth(lattice, values, 4.0, "triangle"), expected, rtol=1e-10)


def test_a_neighborhood_added_to_the_table_drives_the_batch_update(monkeypatch, blobs):
    monkeypatch.setitem(NEIGHBORHOODS, "triangle", Triangle())
    start = blobs[:16]
    som = SOM(4, 4, epochs=1, init=start, sigma=2.5, neighborhood="triangle").fit(blobs)
    bmu = ((blobs[:, None, :] - start[None]) ** 2).sum(axis=-1).argmin(axis=1)
    sums = np.zeros_like(start)
    np.add.at(sums, bmu, blobs)
    counts = np.bincount(bmu, minlength=16)
    h = Triangle().weights(Lattice(4, 4).distance_matrix(), 2.5)
    np.testing.assert_allclose(som.weights_, (h @ sums) / (h @ counts)[:, None], rtol=1e-9)


@pytest.mark.parametrize("height,width", [(6, 5), (40, 30)])
def test_an_unknown_neighborhood_raises_on_small_and_large_maps(height, width):
    lattice = Lattice(height, width)
    with pytest.raises(ValueError, match="Unknown neighborhood 'cone'"):
        smooth(lattice, np.ones((lattice.n_nodes, 2)), 2.0, "cone")
