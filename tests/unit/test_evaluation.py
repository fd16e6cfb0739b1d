import numpy as np
import pytest

from dasksom.core.analysis import label_votes, majority_label_accuracy


def test_votes_count_each_nodes_labels():
    classes, votes, codes = label_votes([0, 0, 1, 2, 2], ["b", "a", "a", "b", "b"], 4)
    assert list(classes) == ["a", "b"]
    np.testing.assert_array_equal(votes, [[1, 1], [1, 0], [0, 2], [0, 0]])
    np.testing.assert_array_equal(codes, [1, 0, 0, 1, 1])


def test_accuracy_is_the_share_agreeing_with_their_nodes_majority():
    nodes = np.array([0, 0, 0, 1, 1])
    labels = np.array([3, 3, 5, 5, 5])
    assert majority_label_accuracy(nodes, labels, 2) == pytest.approx(4 / 5)


def test_label_count_must_match_sample_count():
    with pytest.raises(ValueError, match="Got 2 labels for 3 samples"):
        label_votes([0, 1, 1], [1, 2], 2)
