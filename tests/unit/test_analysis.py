"""U-matrix values (dasksom.core.analysis), held to a plain numpy loop."""

import subprocess
import sys

import numpy as np
import pytest

from dasksom import Lattice
from dasksom.core.analysis import node_differences


def reference_differences(weights, lattice):
    """Mean distance to the neighbours found in the dense lattice distance matrix."""
    d = lattice.distance_matrix()
    out = np.full(lattice.n_nodes, np.nan)
    for k in range(lattice.n_nodes):
        neighbours = np.flatnonzero((d[k] > 0) & (d[k] <= 1.01))
        if len(neighbours):
            out[k] = np.mean([np.linalg.norm(weights[k] - weights[j]) for j in neighbours])
    return out


@pytest.mark.parametrize(
    "shape",
    [(5, 7, "square", False), (5, 7, "hexagonal", False), (6, 7, "hexagonal", True),
     (4, 5, "square", True), (2, 2, "hexagonal", True), (2, 3, "square", True),
     (1, 4, "square", True), (1, 3, "hexagonal", False), (1, 1, "square", False)],
)  # fmt: skip
def test_node_differences_match_a_plain_loop(shape):
    lattice = Lattice(*shape)
    weights = np.random.default_rng(1).normal(size=(lattice.n_nodes, 3))
    np.testing.assert_allclose(
        node_differences(weights, lattice), reference_differences(weights, lattice)
    )


@pytest.mark.parametrize("topology,count", [("hexagonal", 6), ("square", 4)])
def test_node_differences_on_a_torus_have_no_edge(topology, count):
    lattice = Lattice(6, 8, topology, pbc=True)
    weights = np.zeros((lattice.n_nodes, 1))
    weights[0] = 1.0  # a corner node: half its neighbours lie across the seams
    diff = node_differences(weights, lattice)
    assert diff[0] == pytest.approx(1.0)
    touched = np.flatnonzero(diff[1:]) + 1
    assert len(touched) == count
    np.testing.assert_allclose(diff[touched], 1.0 / count)


def test_node_differences_refuse_weights_of_another_map():
    lattice = Lattice(3, 4)
    with pytest.raises(ValueError, match="shape"):
        node_differences(np.zeros((11, 2)), lattice)


def test_plotting_reexports_node_differences():
    from dasksom import plotting

    assert plotting.node_differences is node_differences


def test_importing_analysis_does_not_import_matplotlib():
    code = "import sys, dasksom.core.analysis; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
