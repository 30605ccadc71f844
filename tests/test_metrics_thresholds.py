"""Threshold helpers of medviz.metrics: policies for the Evaluate page's slider."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medviz import metrics as M
from medviz.errors import MedvizError

Y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
P = np.array([0.1, 0.2, 0.3, 0.6, 0.35, 0.5, 0.7, 0.8])


def test_youden_threshold_takes_y_prob_by_name_and_two_columns():
    two = np.column_stack([1 - P, P])
    assert M.youden_threshold(Y, y_prob=two) == pytest.approx(0.35)


@pytest.mark.parametrize(
    ("target", "expected"),
    [(0.25, 0.8), (0.5, 0.7), (0.51, 0.5), (0.75, 0.5), (0.9, 0.35), (1.0, 0.35)],
)
def test_threshold_for_sensitivity_is_the_highest_that_reaches_the_target(target, expected):
    t = M.threshold_for_sensitivity(Y, P, target)
    assert t == pytest.approx(expected)
    sensitivity, _ = M.sensitivity_specificity(Y, P, t)
    assert sensitivity >= target
    above = np.nextafter(t, 1.0)
    assert M.sensitivity_specificity(Y, P, above)[0] < target, "any higher threshold misses"


def test_threshold_for_sensitivity_counts_exactly_and_rejects_bad_targets():
    y = np.r_[np.zeros(5), np.ones(10)].astype(int)
    p = np.r_[np.full(5, 0.05), np.linspace(0.1, 1.0, 10)]
    # 0.9 × 10 positives = 9 exactly (not 9.000000000000002 → 10).
    assert M.threshold_for_sensitivity(y, p, 0.9) == pytest.approx(0.2)
    assert math.isnan(M.threshold_for_sensitivity(np.zeros(4, int), np.full(4, 0.3), 0.9))
    for bad in (0.0, 1.5, "0.9", None):
        with pytest.raises(MedvizError, match="target sensitivity"):
            M.threshold_for_sensitivity(y, p, bad)
    with pytest.raises(MedvizError, match="binary"):
        M.threshold_for_sensitivity(np.array([0, 1, 2]), np.eye(3), 0.9)


def test_evaluation_at_threshold_equals_evaluating_at_that_threshold():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    p = np.clip(0.3 * y + rng.random(300) * 0.7, 0, 1)
    base = M.evaluate(y, p, class_names=["neg", "pos"], threshold=0.5, n_bootstrap=20)
    for t in (0.0, 0.31, 0.77, 1.0):
        moved = M.evaluation_at_threshold(base, t)
        direct = M.evaluate(y, p, class_names=["neg", "pos"], threshold=t, n_bootstrap=20)
        assert moved.threshold == t
        np.testing.assert_array_equal(moved.confusion, direct.confusion)
        np.testing.assert_array_equal(moved.y_pred, direct.y_pred)
        assert moved.accuracy == direct.accuracy
        assert moved.balanced_accuracy == direct.balanced_accuracy
        assert [m.to_dict() for m in moved.per_class] == [m.to_dict() for m in direct.per_class]
        assert moved.auc == base.auc and moved.auc_ci == base.auc_ci, "AUC does not move"
    assert base.threshold == 0.5, "the original is unchanged"


def test_evaluation_at_threshold_refuses_multiclass_and_bad_thresholds():
    y = np.array([0, 1, 2, 1])
    p = np.eye(3)[[0, 1, 2, 0]]
    ev = M.evaluate(y, p, class_names=["a", "b", "c"], n_bootstrap=0)
    with pytest.raises(MedvizError, match="binary evaluations only"):
        M.evaluation_at_threshold(ev, 0.5)
    binary = M.evaluate(Y, P, class_names=["a", "b"], n_bootstrap=0)
    with pytest.raises(MedvizError, match="threshold"):
        M.evaluation_at_threshold(binary, 1.5)
