"""Real data: the MNIST digits from the shared data folder (skipped where it is absent)."""

import numpy as np
import pytest

from dasksom import SOM
from dasksom.core.analysis import majority_label_accuracy


@pytest.fixture(scope="module")
def digits(mnist):
    images, labels = mnist
    return images[:10_000].astype(np.float32) / 255.0, labels[:10_000]


@pytest.fixture(scope="module")
def trained(digits):
    images, _ = digits
    return SOM(20, 20, topology="hexagonal", init="random", epochs=10, random_state=0).fit(images)


def test_training_lowers_the_quantization_error_well_below_the_initial_maps(trained, digits):
    images, _ = digits
    initial = trained.history_[0]["quantization_error"]
    final = trained.quantization_error(images)
    assert final < 0.6 * initial


def test_topographic_error_is_reported_and_small(trained, digits):
    images, _ = digits
    error = trained.topographic_error(images)
    print(f"20x20 hexagonal map on 10,000 MNIST images: topographic error {error:.4f}")
    assert 0.0 <= error < 0.2


def test_nodes_separate_the_digit_classes(trained, digits):
    images, labels = digits
    assert majority_label_accuracy(trained.predict(images), labels, 400) > 0.75
