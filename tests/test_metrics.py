"""Tests of medviz.metrics against scikit-learn and hand-computed cases."""

from __future__ import annotations

import json
import math
import time
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from medviz import metrics as M
from medviz.errors import MedvizError


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _binary(n: int, *, seed: int = 0, ties: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Labels and P(class 1) of a moderately good classifier (rounded to force ties)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    return y, (p.round(2) if ties else p)


def _multiclass(n: int, k: int = 4, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    z = rng.normal(size=(n, k))
    z[np.arange(n), y] += 1.2
    return y, _softmax(z)


@pytest.fixture(autouse=True)
def _no_runtime_warnings():
    # Undefined ratios must come out as nan without a ZeroDivision/RuntimeWarning.
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


# --------------------------------------------------------------------------- #
# Input conversion
# --------------------------------------------------------------------------- #


def test_sigmoid_output_becomes_two_columns():
    p = np.array([0.1, 0.5, 0.9], dtype=np.float32)
    expected = np.array([[0.9, 0.1], [0.5, 0.5], [0.1, 0.9]])
    np.testing.assert_allclose(M.as_class_probabilities(p), expected, atol=1e-7)
    np.testing.assert_allclose(M.as_class_probabilities(p[:, None]), expected, atol=1e-7)
    assert M.as_class_probabilities(p).dtype == np.float64


def test_softmax_output_passes_through():
    _, p = _multiclass(20, 3)
    np.testing.assert_array_equal(M.as_class_probabilities(p), p)


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (np.array([0.2, np.nan]), "finite"),
        (np.array([-2.0, 3.5]), "[0, 1]"),
        (np.array([[0.2, 0.2], [0.5, 0.5]]), "sum to 1"),
        (np.zeros((2, 2, 2)), "(2, 2, 2)"),
        (np.array(["a", "b"]), "numeric"),
    ],
)
def test_bad_probabilities_are_rejected(raw, fragment):
    with pytest.raises(MedvizError) as info:
        M.as_class_probabilities(raw)
    assert fragment in str(info.value)
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------- #
# evaluate against scikit-learn
# --------------------------------------------------------------------------- #


def test_binary_evaluation_matches_sklearn():
    y, p = _binary(600)
    ev = M.evaluate(y, p, class_names=["benign", "malignant"], n_bootstrap=200)
    pred = (p > 0.5).astype(int)  # argmax of [1 - p, p]: ties at 0.5 go to class 0
    np.testing.assert_array_equal(ev.y_pred, pred)
    np.testing.assert_array_equal(ev.confusion, skm.confusion_matrix(y, pred))
    assert ev.accuracy == pytest.approx(skm.accuracy_score(y, pred))
    assert ev.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y, pred))
    prec, rec, f1, support = skm.precision_recall_fscore_support(y, pred, zero_division=np.nan)
    for k, m in enumerate(ev.per_class):
        assert (m.precision, m.recall, m.f1, m.support) == pytest.approx(
            (prec[k], rec[k], f1[k], support[k])
        )
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    m1 = ev.per_class[1]
    assert m1.specificity == pytest.approx(tn / (tn + fp))
    assert m1.npv == pytest.approx(tn / (tn + fn))
    assert m1.fpr == pytest.approx(fp / (fp + tn))
    assert m1.fnr == pytest.approx(fn / (fn + tp))
    assert m1.sensitivity == m1.recall

    assert len(ev.roc) == 1 and ev.roc[0].label == "malignant"
    assert ev.auc == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    fpr, tpr, thresholds = skm.roc_curve(y, p)
    np.testing.assert_allclose(ev.roc[0].fpr, fpr)
    np.testing.assert_allclose(ev.roc[0].tpr, tpr)
    np.testing.assert_array_equal(ev.roc[0].thresholds, thresholds)
    precision, recall, pr_thresholds = skm.precision_recall_curve(y, p)
    np.testing.assert_allclose(ev.pr[0].precision, precision)
    np.testing.assert_allclose(ev.pr[0].recall, recall)
    np.testing.assert_allclose(ev.pr[0].thresholds, pr_thresholds)
    assert ev.pr[0].average_precision == pytest.approx(skm.average_precision_score(y, p))
    assert ev.n == 600 and ev.threshold is None and ev.is_binary


def test_multiclass_evaluation_matches_sklearn():
    y, p = _multiclass(500, 4)
    names = ["glioma", "meningioma", "notumor", "pituitary"]
    ev = M.evaluate(y, p, class_names=names, n_bootstrap=100)
    pred = p.argmax(axis=1)
    np.testing.assert_array_equal(ev.confusion, skm.confusion_matrix(y, pred))
    assert ev.balanced_accuracy == pytest.approx(skm.balanced_accuracy_score(y, pred))
    prec, rec, f1, _ = skm.precision_recall_fscore_support(y, pred, zero_division=np.nan)
    np.testing.assert_allclose([m.precision for m in ev.per_class], prec)
    np.testing.assert_allclose([m.recall for m in ev.per_class], rec)
    np.testing.assert_allclose([m.f1 for m in ev.per_class], f1)
    # Specificity of class k: true non-k predicted non-k.
    for k, m in enumerate(ev.per_class):
        negatives = y != k
        assert m.specificity == pytest.approx(np.mean(pred[negatives] != k))

    onehot = np.eye(4)[y]
    assert [c.label for c in ev.roc] == [*names, "micro", "macro"]
    assert [c.label for c in ev.pr] == [*names, "micro"]
    assert ev.auc == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"), abs=1e-12)
    assert ev.roc[-1].auc == ev.auc and ev.roc[-1].auc_ci == ev.auc_ci
    for k in range(4):
        assert ev.roc[k].auc == pytest.approx(skm.roc_auc_score(onehot[:, k], p[:, k]))
        assert ev.pr[k].average_precision == pytest.approx(
            skm.average_precision_score(onehot[:, k], p[:, k])
        )
    assert ev.roc[4].auc == pytest.approx(skm.roc_auc_score(onehot, p, average="micro"))
    assert ev.pr[4].average_precision == pytest.approx(
        skm.average_precision_score(onehot, p, average="micro")
    )
    macro = ev.roc[-1]
    assert macro.fpr[0] == 0 and macro.fpr[-1] == 1 and macro.tpr[-1] == pytest.approx(1)
    assert ev.youden_threshold is None


def test_class_metrics_hand_computed():
    # rows true, columns predicted: 5 TN, 1 FP, 2 FN, 3 TP for class 1.
    metrics = M.class_metrics(np.array([[5, 1], [2, 3]]), ["neg", "pos"])
    pos = metrics[1]
    assert pos.support == 5
    assert pos.precision == pytest.approx(3 / 4)
    assert pos.recall == pytest.approx(3 / 5)
    assert pos.specificity == pytest.approx(5 / 6)
    assert pos.f1 == pytest.approx(2 * 3 / (2 * 3 + 1 + 2))
    assert pos.npv == pytest.approx(5 / 7)
    assert pos.fpr == pytest.approx(1 / 6)
    assert pos.fnr == pytest.approx(2 / 5)
    # Class 0 is the mirror image.
    assert metrics[0].recall == pytest.approx(pos.specificity)


def test_undefined_ratios_are_nan():
    metrics = M.class_metrics(np.array([[4, 0], [0, 0]]), ["a", "b"])
    b = metrics[1]
    assert b.support == 0
    assert all(math.isnan(v) for v in (b.precision, b.recall, b.f1, b.fnr))
    assert b.specificity == 1.0


# --------------------------------------------------------------------------- #
# Thresholds
# --------------------------------------------------------------------------- #


def test_threshold_changes_predictions_and_matches_confusion_at_threshold():
    y, p = _binary(300, seed=3)
    ev = M.evaluate(y, p, class_names=["a", "b"], threshold=0.3, n_bootstrap=0)
    np.testing.assert_array_equal(ev.y_pred, (p >= 0.3).astype(int))
    np.testing.assert_array_equal(ev.confusion, M.confusion_at_threshold(y, p, 0.3))
    two_col = np.column_stack([1 - p, p])
    np.testing.assert_array_equal(ev.confusion, M.confusion_at_threshold(y, two_col, 0.3))
    sens, spec = M.sensitivity_specificity(y, p, 0.3)
    assert sens == pytest.approx(np.mean(p[y == 1] >= 0.3))
    assert spec == pytest.approx(np.mean(p[y == 0] < 0.3))
    assert ev.per_class[1].recall == pytest.approx(sens)
    assert ev.to_dict()["threshold"] == 0.3


def test_threshold_is_inclusive():
    cm = M.confusion_at_threshold([0, 1], [0.5, 0.5], 0.5)
    np.testing.assert_array_equal(cm, [[0, 1], [0, 1]])


def test_sensitivity_specificity_curve_matches_pointwise():
    y, p = _binary(200, seed=4)
    t, sens, spec = M.sensitivity_specificity_curve(y, p, thresholds=np.array([0.0, 0.37, 1.0]))
    for i, ti in enumerate(t):
        assert (sens[i], spec[i]) == pytest.approx(M.sensitivity_specificity(y, p, ti))
    assert sens[0] == 1.0 and spec[0] == 0.0


def test_youden_threshold_constructed_case():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.35, 0.5, 0.7, 0.8])
    # J(0.35) = 1 - 1/4 = 0.75 beats J(0.7) = 0.5 and J(0.5) = 0.75 - 0.25.
    assert M.youden_threshold(y, p) == pytest.approx(0.35)
    # Equal J: the highest threshold wins.
    y3 = np.array([0, 1, 0, 1])
    p3 = np.array([0.1, 0.2, 0.3, 0.4])  # J(0.4) = 0.5 = J(0.2)
    assert M.youden_threshold(y3, p3) == pytest.approx(0.4)
    ev = M.evaluate(y, p, class_names=["a", "b"], n_bootstrap=0)
    assert ev.youden_threshold == pytest.approx(0.35)


def test_sensitivity_threshold_is_the_most_specific_reaching_the_target():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.35, 0.5, 0.7, 0.8])
    assert M.sensitivity_threshold(y, p, target=0.75) == pytest.approx(0.5)
    assert M.sensitivity_threshold(y, p, target=0.76) == pytest.approx(0.35)
    assert M.sensitivity_threshold(y, p, target=1.0) == pytest.approx(0.35)
    assert M.sensitivity_threshold(y, p, target=0.25) == pytest.approx(0.8)
    # 0.95 * 20 is 19.000000000000004 in floats: 19 positives, not 20.
    y20 = np.r_[np.zeros(5, int), np.ones(20, int)]
    p20 = np.r_[np.full(5, 0.05), np.linspace(0.1, 0.99, 20)]
    t = M.sensitivity_threshold(y20, p20, target=0.95)
    assert M.sensitivity_specificity(y20, p20, t)[0] == pytest.approx(0.95)
    for target in (0.5, 0.8, 0.9, 0.97):
        y_r, p_r = _binary(300, seed=7)
        t = M.sensitivity_threshold(y_r, p_r, target=target)
        sens, _ = M.sensitivity_specificity(y_r, p_r, t)
        above = p_r[p_r > t]
        assert sens >= target
        if above.size:  # the next higher threshold misses the target
            assert M.sensitivity_specificity(y_r, p_r, above.min())[0] < target
    assert math.isnan(M.sensitivity_threshold(np.zeros(4, int), np.full(4, 0.3), target=0.9))
    with pytest.raises(MedvizError, match=r"\(0, 1\]"):
        M.sensitivity_threshold(y, p, target=0.0)


def test_threshold_policy_parsing():
    assert M.parse_threshold_policy("fixed") == M.ThresholdPolicy("fixed", 0.5)
    assert M.parse_threshold_policy(" Fixed:0.3 ") == M.ThresholdPolicy("fixed", 0.3)
    assert M.parse_threshold_policy("youden") == M.ThresholdPolicy("youden", None)
    assert M.parse_threshold_policy("sensitivity:0.95") == M.ThresholdPolicy("sensitivity", 0.95)
    assert str(M.parse_threshold_policy("sensitivity:0.95")) == "sensitivity:0.95"
    assert str(M.ThresholdPolicy()) == "fixed:0.5" and not M.ThresholdPolicy().needs_data
    policy = M.ThresholdPolicy("youden", None)
    assert M.parse_threshold_policy(policy) is policy
    for bad, fragment in [
        ("median", "unknown threshold policy"),
        ("sensitivity", "needs a target"),
        ("youden:0.3", "takes no value"),
        ("fixed:abc", "not a number"),
        ("fixed:1.5", r"\[0, 1\]"),
        ("sensitivity:0", r"\(0, 1\]"),
    ]:
        with pytest.raises(MedvizError, match=fragment):
            M.parse_threshold_policy(bad)


def test_choose_threshold_default_youden_and_sensitivity():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.35, 0.5, 0.7, 0.8])
    fixed = M.choose_threshold("fixed")
    assert fixed.threshold == 0.5 and fixed.method == "fixed:0.5" and fixed.n == 0
    assert "calibrated" in fixed.reason and math.isnan(fixed.sensitivity)
    measured = M.choose_threshold("fixed", y, p)
    assert measured.threshold == 0.5  # data never moves a fixed threshold
    assert (measured.sensitivity, measured.specificity, measured.n) == (0.75, 0.75, 8)
    youden = M.choose_threshold("youden", y, p, split="validation")
    assert youden.threshold == pytest.approx(M.youden_threshold(y, p))
    assert youden.method == "youden" and "validation" in youden.reason
    assert "\n" not in youden.reason
    sens = M.choose_threshold("sensitivity:0.75", y, p)
    assert sens.threshold == pytest.approx(0.5) and sens.sensitivity == 0.75
    assert sens.to_dict()["method"] == "sensitivity:0.75"
    json.dumps(fixed.to_dict(), allow_nan=False)
    with pytest.raises(MedvizError, match="needs labels"):
        M.choose_threshold("youden")
    with pytest.raises(MedvizError, match="both classes"):
        M.choose_threshold("sensitivity:0.9", np.ones(4, int), np.full(4, 0.7))


# --------------------------------------------------------------------------- #
# Bootstrap
# --------------------------------------------------------------------------- #


def test_rank_auc_with_weights_matches_sklearn_sample_weight():
    y, p = _binary(150, seed=5)  # rounded: many ties
    counts = np.stack(list(M._stratified_counts(y, 4, np.random.default_rng(1))), axis=0)[0]
    aucs = M._RankAuc(p, y == 1)(counts)
    for b in range(counts.shape[1]):
        expected = skm.roc_auc_score(y, p, sample_weight=counts[:, b])
        assert aucs[b] == pytest.approx(expected, abs=1e-12)


def test_bootstrap_is_stratified():
    y = np.array([0] * 30 + [1] * 7 + [2] * 13)
    for counts in M._stratified_counts(y, 20, np.random.default_rng(0)):
        for c, size in ((0, 30), (1, 7), (2, 13)):
            np.testing.assert_array_equal(counts[y == c].sum(axis=0), size)


def test_auc_ci_contains_estimate_narrows_and_is_seeded():
    y_small, p_small = _binary(100, seed=6, ties=False)
    y_large, p_large = _binary(3000, seed=6, ties=False)
    small = M.evaluate(y_small, p_small, class_names=["a", "b"], n_bootstrap=300)
    large = M.evaluate(y_large, p_large, class_names=["a", "b"], n_bootstrap=300)
    for ev in (small, large):
        low, high = ev.auc_ci
        assert low <= ev.auc <= high
        assert ev.roc[0].auc_ci == ev.auc_ci
    assert (large.auc_ci[1] - large.auc_ci[0]) < 0.5 * (small.auc_ci[1] - small.auc_ci[0])
    again = M.evaluate(y_small, p_small, class_names=["a", "b"], n_bootstrap=300)
    other = M.evaluate(y_small, p_small, class_names=["a", "b"], n_bootstrap=300, seed=1)
    assert again.auc_ci == small.auc_ci
    assert other.auc_ci != small.auc_ci
    none = M.evaluate(y_small, p_small, class_names=["a", "b"], n_bootstrap=0)
    assert all(math.isnan(v) for v in none.auc_ci) and none.auc == small.auc


def test_multiclass_ci_contains_estimates():
    y, p = _multiclass(400, 3, seed=7)
    ev = M.evaluate(y, p, class_names=["a", "b", "c"], n_bootstrap=200)
    for curve in ev.roc:
        assert curve.auc_ci[0] <= curve.auc <= curve.auc_ci[1], curve.label


def test_binary_bootstrap_is_fast():
    y, p = _binary(5000, seed=8, ties=False)
    start = time.process_time()
    M.evaluate(y, p, class_names=["a", "b"], n_bootstrap=1000)
    # CPU time, so load from other processes cannot fail it (about 0.15 s here).
    assert time.process_time() - start < 2.0


# --------------------------------------------------------------------------- #
# Absent classes
# --------------------------------------------------------------------------- #


def test_binary_split_with_one_class_absent():
    y = np.zeros(20, dtype=int)
    p = np.linspace(0.05, 0.95, 20)
    ev = M.evaluate(y, p, class_names=["normal", "cancer"], n_bootstrap=50)
    assert math.isnan(ev.auc) and all(math.isnan(v) for v in ev.auc_ci)
    assert len(ev.roc[0].fpr) == 0 and math.isnan(ev.pr[0].average_precision)
    assert math.isnan(ev.youden_threshold)
    assert ev.balanced_accuracy == pytest.approx(ev.per_class[0].recall)
    json.dumps(ev.to_dict(curves=True), allow_nan=False)


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
def test_multiclass_split_with_one_class_absent():
    y, p = _multiclass(300, 3, seed=9)
    keep = y != 2
    ev = M.evaluate(y[keep], p[keep], class_names=["a", "b", "c"], n_bootstrap=50)
    assert math.isnan(ev.auc) and all(math.isnan(v) for v in ev.auc_ci)
    assert math.isfinite(ev.roc[0].auc) and math.isfinite(ev.roc[0].auc_ci[0])
    assert math.isnan(ev.roc[2].auc)
    assert ev.per_class[2].support == 0
    assert ev.balanced_accuracy == pytest.approx(
        skm.balanced_accuracy_score(y[keep], p[keep].argmax(axis=1))
    )


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("y", "p", "names", "kwargs", "fragment"),
    [
        ([0, 1, 1], [0.2, 0.7], ["a", "b"], {}, "y_true (3,), y_prob (2, 2)"),
        ([0, 2], [0.2, 0.7], ["a", "b"], {}, "[0, 1]"),
        ([0, 1], [[0.2, 0.3, 0.5]] * 2, ["a", "b"], {}, "3 columns"),
        ([0, 1], [[0.2, 0.3, 0.5]] * 2, ["a", "b", "c"], {"threshold": 0.5}, "binary"),
        ([0, 1], [0.2, 0.7], ["a", "b"], {"threshold": 1.5}, "threshold"),
        ([], np.zeros(0), ["a", "b"], {}, "0 samples"),
        ([0.5, 1], [0.2, 0.7], ["a", "b"], {}, "whole"),
        ([0, 1], [0.2, 0.7], ["a", "b"], {"n_bootstrap": -1}, "n_bootstrap"),
    ],
)
def test_evaluate_rejects_bad_input(y, p, names, kwargs, fragment):
    with pytest.raises(MedvizError) as info:
        M.evaluate(np.asarray(y), np.asarray(p), class_names=names, **kwargs)
    assert fragment in str(info.value)


def test_to_dict_is_json_ready():
    y, p = _multiclass(120, 3, seed=10)
    ev = M.evaluate(y, p, class_names=["a", "b", "c"], n_bootstrap=20)
    d = ev.to_dict()
    for key in (
        "n",
        "classes",
        "accuracy",
        "balanced_accuracy",
        "auc",
        "auc_ci",
        "confusion_matrix",
        "per_class",
        "ece",
        "threshold",
        "youden_threshold",
    ):
        assert key in d
    assert "roc" not in d and d["n"] == 120 and d["classes"] == ["a", "b", "c"]
    assert d["confusion_matrix"] == ev.confusion.tolist()
    assert d["per_class"][0]["name"] == "a" and "specificity" in d["per_class"][0]
    full = json.loads(json.dumps(ev.to_dict(curves=True), allow_nan=False))
    assert [c["label"] for c in full["roc"]] == ["a", "b", "c", "micro", "macro"]
    assert full["roc"][0]["thresholds"][0] is None  # inf is not JSON
    assert len(full["calibration"]["bin_count"]) == 10


# --------------------------------------------------------------------------- #
# Calibration
# --------------------------------------------------------------------------- #


def test_ece_hand_computed():
    y = np.array([1, 0, 1, 1])
    p = np.array([0.95, 0.85, 0.65, 0.55])  # all predict class 1; the 0.85 one is wrong
    cal = M.expected_calibration_error(y, p, n_bins=10)
    assert cal.ece == pytest.approx((0.05 + 0.85 + 0.35 + 0.45) / 4)
    assert cal.mce == pytest.approx(0.85)
    np.testing.assert_array_equal(cal.bin_count, [0, 0, 0, 0, 0, 1, 1, 0, 1, 1])
    assert math.isnan(cal.bin_accuracy[0]) and cal.bin_accuracy[8] == 0.0
    # Two bins: everything in (0.5, 1], mean confidence 0.75 = accuracy 3/4.
    assert M.expected_calibration_error(y, p, n_bins=2).ece == pytest.approx(0.0)


def test_ece_edge_goes_to_the_bin_it_closes():
    p = np.array([[0.3, 0.3, 0.4], [0.2, 0.2, 0.6]])
    cal = M.expected_calibration_error(np.array([2, 0]), p, n_bins=10)
    assert cal.bin_count[3] == 1 and cal.bin_count[5] == 1  # (0.3, 0.4] and (0.5, 0.6]


def test_calibration_of_a_calibrated_model_is_small():
    rng = np.random.default_rng(11)
    p = rng.uniform(0, 1, 20000)
    y = (rng.uniform(0, 1, 20000) < p).astype(int)
    assert M.expected_calibration_error(y, p).ece < 0.02


# --------------------------------------------------------------------------- #
# Temperature scaling
# --------------------------------------------------------------------------- #


def test_fit_temperature_recovers_known_temperature_and_lowers_nll():
    rng = np.random.default_rng(12)
    n, k, t0 = 4000, 3, 2.5
    logits = rng.normal(0, 4, size=(n, k))
    true_p = _softmax(logits / t0)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(true_p, axis=1)).sum(axis=1)
    t = M.fit_temperature(logits, y)
    assert t == pytest.approx(t0, rel=0.12)
    before = M.negative_log_likelihood(y, M.apply_temperature(logits, 1.0))
    after = M.negative_log_likelihood(y, M.apply_temperature(logits, t))
    assert after < before
    # Working from probabilities only gives the same temperature.
    from_probs = M.logits_from_probabilities(M.apply_temperature(logits, 1.0))
    assert M.fit_temperature(from_probs, y) == pytest.approx(t, rel=1e-3)


def test_temperature_helpers():
    _, p = _multiclass(10, 3)
    np.testing.assert_allclose(M.apply_temperature(M.logits_from_probabilities(p), 1.0), p)
    z = np.array([-2.0, 0.0, 3.0])
    sig = 1 / (1 + np.exp(-z))
    np.testing.assert_allclose(M.apply_temperature(z, 1.0)[:, 1], sig)
    np.testing.assert_allclose(M.apply_temperature(z, 2.0)[:, 1], 1 / (1 + np.exp(-z / 2)))
    with pytest.raises(MedvizError, match="positive"):
        M.apply_temperature(z, 0.0)
    with pytest.raises(MedvizError, match="labels"):
        M.fit_temperature(np.zeros((3, 2)), [0, 1, 2])


# --------------------------------------------------------------------------- #
# Runs
# --------------------------------------------------------------------------- #


def test_summarize_runs():
    runs = [
        {"accuracy": 0.9, "auc": 0.95, "name": "a", "ok": True, "only_here": 1.0},
        {"accuracy": 0.8, "auc": 0.97, "name": "b", "ok": True},
        {"accuracy": 0.7, "auc": np.float32(0.96), "name": "c", "ok": False},
    ]
    summary = M.summarize_runs(runs)
    assert list(summary) == ["accuracy", "auc"]
    assert summary["accuracy"] == pytest.approx((0.8, 0.1))
    assert summary["auc"][1] == pytest.approx(np.std([0.95, 0.97, 0.96], ddof=1), rel=1e-6)
    assert M.summarize_runs([{"auc": 0.9}]) == {"auc": (0.9, 0.0)}
    assert M.summarize_runs([]) == {}


def test_format_mean_std():
    assert M.format_mean_std(0.95312, 0.0041) == "0.953 ± 0.004"
    assert M.format_mean_std(12.0, 1.25, digits=1) == "12.0 ± 1.2"


# --------------------------------------------------------------------------- #
# Cross-dataset class matching
# --------------------------------------------------------------------------- #


def test_normalize_class_name():
    assert (
        M.normalize_class_name("no_tumor")
        == M.normalize_class_name("notumor")
        == M.normalize_class_name("No Tumor")
        == M.normalize_class_name("NO-TUMOR")
        == "notumor"
    )


def test_match_classes_permutation():
    model = ["glioma", "meningioma", "notumor", "pituitary"]
    data = ["Pituitary", "No Tumor", "glioma", "Meningioma"]
    mapping = M.match_classes(model, data)
    np.testing.assert_array_equal(mapping, [3, 2, 0, 1])
    data_labels = np.array([0, 1, 2, 3, 1])
    assert [model[i] for i in mapping[data_labels]] == [
        "pituitary",
        "notumor",
        "glioma",
        "meningioma",
        "notumor",
    ]


def test_match_classes_errors_list_both_sets():
    model = ["glioma", "meningioma", "notumor", "pituitary"]
    data = ["glioma", "meningioma", "no_tumour", "pituitary"]
    with pytest.raises(MedvizError) as info:
        M.match_classes(model, data)
    message = str(info.value)
    assert str(model) in message and str(data) in message and "no_tumour" in message
    with pytest.raises(MedvizError, match="repeat"):
        M.match_classes(["no tumor", "no_tumor"], ["notumor", "x"])
    with pytest.raises(MedvizError):
        M.match_classes(["a", "b"], ["a", "b", "c"])


def test_macro_and_weighted_averages_match_scikit_learn():
    from sklearn.metrics import classification_report

    rng = np.random.default_rng(7)
    y_true = rng.integers(0, 3, 200)
    y_true[:5] = 2  # uneven support
    probs = rng.dirichlet(np.ones(3), 200)
    probs[np.arange(150), y_true[:150]] += 1.0  # mostly right
    probs /= probs.sum(axis=1, keepdims=True)
    ev = M.evaluate(y_true, probs, class_names=("a", "b", "c"), n_bootstrap=0)
    theirs = classification_report(
        y_true, ev.y_pred, labels=[0, 1, 2], output_dict=True, zero_division=0
    )
    ours = ev.averages()
    for kind, key in (("macro", "macro avg"), ("weighted", "weighted avg")):
        for name, their_name in (
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "f1-score"),
        ):
            assert ours[kind][name] == pytest.approx(theirs[key][their_name], abs=1e-12)
    assert ev.to_dict()["averages"]["macro"]["f1"] == pytest.approx(ours["macro"]["f1"])


def test_a_class_never_predicted_counts_as_zero_precision():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    probs = np.eye(3)[[0, 0, 1, 1, 1, 1]]  # class 2 is never predicted
    ours = M.evaluate(y_true, probs, class_names=("a", "b", "c"), n_bootstrap=0).averages()
    assert ours["macro"]["precision"] == pytest.approx((1 + 0.5 + 0) / 3)
    assert ours["weighted"]["recall"] == pytest.approx(4 / 6)
