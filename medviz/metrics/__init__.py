"""Evaluation metrics: compute only, never draw (see :mod:`medviz.plots`).

Probabilities are always ``y_prob``: an ``(N, K)`` float array whose rows sum
to 1, ``K >= 2``; a single-sigmoid model output ``(N,)`` or ``(N, 1)`` is turned
into ``(N, 2) = [1 - p, p]`` by :func:`as_class_probabilities`. Labels are
``(N,)`` integer class indices in ``[0, K)``. In the binary case class 1 is the
positive class.

The package needs only NumPy and SciPy (no TensorFlow, Streamlit or
scikit-learn), so it is cheap to import and safe to call from any page. Every
ratio whose denominator is zero is ``nan``, without a runtime warning.

Modules, by concern (each imports only those above it):
``inputs`` (checks, JSON helpers) → ``results`` (result dataclasses) →
``bootstrap`` (the one resampler) → ``curves`` (confusion, ROC/PR, rank AUC) →
``thresholds`` (operating points) → ``calibration`` (ECE, temperature) →
``evaluation`` (``evaluate``, run summaries); ``classes`` (name matching).
"""

from __future__ import annotations

from medviz.metrics.bootstrap import (
    BOOTSTRAP_CHUNK,
    bootstrap_ci,
    percentile_ci,
    stratified_counts,
)
from medviz.metrics.calibration import (
    TEMPERATURE_BOUNDS,
    apply_temperature,
    expected_calibration_error,
    fit_temperature,
    logits_from_probabilities,
    negative_log_likelihood,
)
from medviz.metrics.classes import match_classes, normalize_class_name
from medviz.metrics.curves import (
    RankAuc,
    class_metrics,
    confusion_at_threshold,
    pr_curve,
    roc_curve,
    sensitivity_specificity,
    sensitivity_specificity_curve,
)
from medviz.metrics.evaluation import evaluate, format_mean_std, summarize_runs
from medviz.metrics.inputs import as_class_probabilities
from medviz.metrics.results import Calibration, ClassMetrics, Evaluation, PrCurve, RocCurve
from medviz.metrics.thresholds import (
    THRESHOLD_POLICIES,
    ThresholdChoice,
    ThresholdPolicy,
    choose_threshold,
    evaluation_at_threshold,
    parse_threshold_policy,
    sensitivity_threshold,
    threshold_for_sensitivity,
    youden_threshold,
)

# Names of the single-module era, kept for callers and tests that use them.
_stratified_counts = stratified_counts
_RankAuc = RankAuc

__all__ = [
    "BOOTSTRAP_CHUNK",
    "TEMPERATURE_BOUNDS",
    "THRESHOLD_POLICIES",
    "Calibration",
    "ClassMetrics",
    "Evaluation",
    "PrCurve",
    "RankAuc",
    "RocCurve",
    "ThresholdChoice",
    "ThresholdPolicy",
    "apply_temperature",
    "as_class_probabilities",
    "bootstrap_ci",
    "choose_threshold",
    "class_metrics",
    "confusion_at_threshold",
    "evaluate",
    "evaluation_at_threshold",
    "expected_calibration_error",
    "fit_temperature",
    "format_mean_std",
    "logits_from_probabilities",
    "match_classes",
    "negative_log_likelihood",
    "normalize_class_name",
    "parse_threshold_policy",
    "percentile_ci",
    "pr_curve",
    "roc_curve",
    "sensitivity_specificity",
    "sensitivity_specificity_curve",
    "sensitivity_threshold",
    "stratified_counts",
    "summarize_runs",
    "threshold_for_sensitivity",
    "youden_threshold",
]
