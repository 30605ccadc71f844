"""class_weights and undersample."""

from __future__ import annotations

import numpy as np
import pytest

from medviz.data.balance import class_weights, undersample
from medviz.errors import DataError


def test_class_weights_balanced_formula():
    labels = np.array([0] * 6 + [1] * 2)
    weights = class_weights(labels, 2)
    # n_samples / (n_classes * count): 8 / (2 * 6) and 8 / (2 * 2)
    assert weights == pytest.approx({0: 8 / 12, 1: 2.0})
    # Weighted, both classes contribute equally to the loss.
    assert weights[0] * 6 == pytest.approx(weights[1] * 2)


def test_class_weights_matches_sklearn():
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.random.default_rng(0).integers(0, 4, size=101)
    expected = compute_class_weight("balanced", classes=np.arange(4), y=labels)
    assert list(class_weights(labels, 4).values()) == pytest.approx(expected.tolist())


def test_absent_class_gets_zero_weight():
    weights = class_weights(np.array([0, 0, 2, 2, 2, 2]), 3)
    assert weights[1] == 0.0
    assert weights[0] == pytest.approx(6 / (2 * 2)) and weights[2] == pytest.approx(6 / (2 * 4))


@pytest.mark.parametrize(
    ("labels", "n_classes", "message"),
    [
        (np.array([], dtype=np.int64), 2, "empty"),
        (np.array([0, 3]), 2, r"lie in \[0, 1\], got 3"),
        (np.array([0, -1]), 2, "non-negative"),
        (np.array([0.5, 1.0]), 2, "integer array"),
        (np.array([0, 1]), 0, "n_classes must be at least 1"),
    ],
)
def test_class_weights_rejects_bad_labels(labels, n_classes, message):
    with pytest.raises(DataError, match=message):
        class_weights(labels, n_classes)


def test_undersample_equalises_classes():
    labels = np.array([0] * 10 + [1] * 3 + [2] * 5)
    index = undersample(labels, seed=1)
    assert np.all(np.diff(index) > 0)  # sorted, unique
    assert np.bincount(labels[index]).tolist() == [3, 3, 3]
    assert set(np.flatnonzero(labels == 1)) <= set(index)  # the smallest class is kept whole
    np.testing.assert_array_equal(index, undersample(labels, seed=1))
    assert not np.array_equal(index, undersample(labels, seed=2))


def test_undersample_empty():
    assert undersample(np.array([], dtype=np.int64)).shape == (0,)
