"""Fixtures shared by the suite, and the markers that let a run pick its part of it.

Markers (registered in pyproject.toml) follow from where a test lives and what it uses, so they
cannot drift from the tests: ``tests/system`` is ``cluster``, ``tests/device`` is ``gpu``, a test
that takes the ``cluster`` or ``client`` fixture is ``cluster``, and one that takes ``mnist`` is
``mnist`` and ``slow``.  ``python -m pytest -m "not slow and not cluster"`` is the quick loop.
"""

import os
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
MARKERS_BY_FOLDER = {"system": ("cluster",), "device": ("gpu",)}
MARKERS_BY_FIXTURE = {"cluster": ("cluster",), "client": ("cluster",), "mnist": ("mnist", "slow")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        folder = Path(item.fspath).resolve().relative_to(TESTS).parts[0]
        names = set(MARKERS_BY_FOLDER.get(folder, ()))
        for fixture in getattr(item, "fixturenames", ()):
            names.update(MARKERS_BY_FIXTURE.get(fixture, ()))
        for name in sorted(names):
            item.add_marker(name)


# A keras-layout mnist.npz (x_train, y_train, x_test, y_test): $DASKSOM_MNIST, or the shared
# data folder beside the repository.
MNIST_VARIABLE = "DASKSOM_MNIST"
MNIST = Path(os.environ.get(MNIST_VARIABLE) or TESTS.parents[1] / "shared" / "data" / "mnist.npz")


@pytest.fixture(scope="session")
def mnist():
    """``(images, labels)`` of the real MNIST training set, or a skip where it is absent."""
    if not MNIST.exists():
        pytest.skip(
            f"real MNIST not found at {MNIST}: set {MNIST_VARIABLE} to a keras-layout mnist.npz "
            "(e.g. ~/.keras/datasets/mnist.npz, or "
            "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz)"
        )
    with np.load(MNIST) as data:
        return data["x_train"].reshape(60000, -1), data["y_train"]


@pytest.fixture(scope="session")
def cluster():
    """A LocalCluster of 2 single-threaded worker processes, shared by the session's tests."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as local:
        yield local


@pytest.fixture
def client(cluster):
    from distributed import Client

    with Client(cluster) as c:
        yield c


@pytest.fixture
def blobs():
    """300 rows of 5 features around 4 centres: small, structured data."""
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=5.0, size=(4, 5))
    return centres[rng.integers(0, 4, 300)] + rng.normal(size=(300, 5))
