"""Operating thresholds: Youden, target sensitivity, named policies, re-thresholding."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from numbers import Real
from typing import Any

import numpy as np

from medviz.errors import MedvizError
from medviz.metrics.curves import class_metrics, roc_curve, sensitivity_specificity
from medviz.metrics.inputs import binary_inputs, check_threshold, confusion_counts, json_float
from medviz.metrics.results import Evaluation


def youden_threshold(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """Threshold maximising Youden's J = sensitivity + specificity - 1.

    Args:
        y_true: ``(N,)`` labels in ``{0, 1}``.
        y_prob: ``(N, 2)`` probabilities, or ``(N,)`` ``P(class 1)``.

    Returns:
        The score ``t`` (predict class 1 when ``p >= t``) of the best ROC point;
        of equally good points the highest threshold. ``nan`` when a class is
        absent.
    """
    y, p = binary_inputs(y_true, y_prob)
    curve = roc_curve(y == 1, p)
    if len(curve.fpr) == 0:
        return math.nan
    # Skip the (0, 0) point at threshold inf: it is never a usable threshold.
    j = curve.tpr[1:] - curve.fpr[1:]
    return float(curve.thresholds[1:][int(np.argmax(j))])


def sensitivity_threshold(y_true: np.ndarray, p_positive: np.ndarray, *, target: float) -> float:
    """Highest threshold whose sensitivity reaches ``target``.

    Of all thresholds with ``sensitivity >= target`` the highest one has the
    fewest false positives, so this is the most specific operating point that
    still finds the wanted share of positives.

    Args:
        y_true: ``(N,)`` labels in ``{0, 1}``.
        p_positive: ``(N,)`` ``P(class 1)`` (or ``(N, 2)`` probabilities).
        target: Wanted sensitivity in ``(0, 1]``.

    Returns:
        The score ``t`` (predict class 1 when ``p >= t``); ``nan`` without positives.

    Raises:
        MedvizError: ``target`` is not in ``(0, 1]``.
    """
    if not isinstance(target, Real) or not 0.0 < float(target) <= 1.0:
        raise MedvizError(f"target sensitivity must be a number in (0, 1], got {target!r}")
    y, p = binary_inputs(y_true, p_positive)
    positives = np.sort(p[y == 1])[::-1]
    if positives.size == 0:
        return math.nan
    # p >= t keeps every positive scoring at least t: the k-th highest positive score
    # is the highest threshold that keeps k of them. The epsilon absorbs float error
    # in target * n (0.95 * 20 = 19.000000000000004 must mean 19, not 20).
    needed = max(1, math.ceil(float(target) * positives.size - 1e-9))
    return float(positives[needed - 1])


def threshold_for_sensitivity(y_true: np.ndarray, y_prob: np.ndarray, target: float) -> float:
    """:func:`sensitivity_threshold` with the target as a positional argument (Evaluate page).

    Args:
        y_true: ``(N,)`` labels in ``{0, 1}``.
        y_prob: ``(N, 2)`` probabilities, or ``(N,)`` ``P(class 1)``.
        target: Wanted sensitivity in ``(0, 1]``.

    Returns:
        The highest threshold ``t`` with ``sensitivity(t) >= target``; ``nan`` without positives.
    """
    return sensitivity_threshold(y_true, y_prob, target=target)


# --------------------------------------------------------------------------- #
# Operating threshold policy
# --------------------------------------------------------------------------- #

THRESHOLD_POLICIES: tuple[str, ...] = ("fixed", "youden", "sensitivity")


@dataclass(frozen=True)
class ThresholdPolicy:
    """How a binary model's operating threshold is chosen.

    Attributes:
        kind: ``"fixed"`` (a given threshold, 0.5 by default), ``"youden"``
            (maximise sensitivity + specificity on a split) or
            ``"sensitivity"`` (the most specific threshold reaching a target
            sensitivity on a split).
        value: The threshold of ``fixed``, the target of ``sensitivity``;
            ``None`` for ``youden``.
    """

    kind: str = "fixed"
    value: float | None = 0.5

    def __post_init__(self) -> None:
        if self.kind not in THRESHOLD_POLICIES:
            raise MedvizError(
                f"unknown threshold policy {self.kind!r}; use one of {THRESHOLD_POLICIES}"
            )
        if self.kind == "youden":
            if self.value is not None:
                raise MedvizError(f"the youden policy takes no value, got {self.value!r}")
        elif not isinstance(self.value, Real) or isinstance(self.value, bool):
            raise MedvizError(f"the {self.kind} policy needs a number, got {self.value!r}")
        elif self.kind == "fixed" and not 0.0 <= float(self.value) <= 1.0:
            raise MedvizError(f"a fixed threshold must lie in [0, 1], got {self.value!r}")
        elif self.kind == "sensitivity" and not 0.0 < float(self.value) <= 1.0:
            raise MedvizError(f"a target sensitivity must lie in (0, 1], got {self.value!r}")

    @property
    def needs_data(self) -> bool:
        """Whether the threshold is fitted on labelled data (youden, sensitivity)."""
        return self.kind != "fixed"

    def __str__(self) -> str:
        if self.kind == "youden":
            return "youden"
        return f"{self.kind}:{self.value:g}"


def parse_threshold_policy(text: str | ThresholdPolicy) -> ThresholdPolicy:
    """Parse ``"fixed"``, ``"fixed:0.4"``, ``"youden"`` or ``"sensitivity:0.95"``.

    Args:
        text: The policy as written on a command line (a policy passes through).

    Returns:
        The :class:`ThresholdPolicy`; ``"fixed"`` alone means 0.5.

    Raises:
        MedvizError: Unknown kind, missing or malformed number, or a number out of range.
    """
    if isinstance(text, ThresholdPolicy):
        return text
    kind, sep, raw = str(text).strip().lower().partition(":")
    if kind not in THRESHOLD_POLICIES:
        raise MedvizError(
            f"unknown threshold policy {text!r}; use 'fixed', 'fixed:0.4', 'youden' "
            "or 'sensitivity:0.95'"
        )
    if kind == "youden":
        if sep:
            raise MedvizError(f"the youden policy takes no value, got {text!r}")
        return ThresholdPolicy("youden", None)
    if not sep:
        if kind == "sensitivity":
            raise MedvizError(
                f"the sensitivity policy needs a target, e.g. 'sensitivity:0.95', got {text!r}"
            )
        return ThresholdPolicy("fixed", 0.5)
    try:
        value = float(raw)
    except ValueError:
        raise MedvizError(f"threshold policy {text!r}: {raw!r} is not a number") from None
    return ThresholdPolicy(kind, value)


@dataclass(frozen=True)
class ThresholdChoice:
    """An operating threshold and why it was chosen (what a model card records).

    Attributes:
        threshold: Predict class 1 when ``P(class 1) >= threshold``.
        method: The policy, e.g. ``"fixed:0.5"``, ``"youden"``, ``"sensitivity:0.95"``.
        reason: One line for people: what the threshold does and what it rests on.
        sensitivity: Sensitivity at ``threshold`` on the data it was checked on
            (``nan`` without data or without positives).
        specificity: Specificity there (``nan`` without data or negatives).
        n: Number of samples it was fitted/checked on (0 = none).
    """

    threshold: float
    method: str
    reason: str
    sensitivity: float = math.nan
    specificity: float = math.nan
    n: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``nan`` becomes ``None``."""
        return {
            "threshold": json_float(self.threshold),
            "method": self.method,
            "reason": self.reason,
            "sensitivity": json_float(self.sensitivity),
            "specificity": json_float(self.specificity),
            "n": int(self.n),
        }


def choose_threshold(
    policy: str | ThresholdPolicy,
    y_true: np.ndarray | None = None,
    p_positive: np.ndarray | None = None,
    *,
    split: str = "validation",
) -> ThresholdChoice:
    """Choose a binary operating threshold by ``policy``.

    ``fixed`` needs no data: 0.5 on calibrated probabilities predicts the more
    probable class, and does not follow the score distribution of one split
    (a threshold tuned to an in-distribution split turns into false alarms when
    the scores shift). ``youden`` and ``sensitivity`` are fitted on the data.

    Args:
        policy: A :class:`ThresholdPolicy` or its text form (see
            :func:`parse_threshold_policy`).
        y_true: ``(N,)`` labels in ``{0, 1}``; needed by youden/sensitivity,
            optional for fixed (then the sensitivity/specificity are reported).
        p_positive: ``(N,)`` calibrated ``P(class 1)`` (or ``(N, 2)``).
        split: Name of the data, for the reason line.

    Returns:
        The :class:`ThresholdChoice`.

    Raises:
        MedvizError: Bad policy; youden/sensitivity without data or without
            both classes in it.
    """
    policy = parse_threshold_policy(policy)
    if (y_true is None) != (p_positive is None):
        raise MedvizError("choose_threshold needs both y_true and p_positive, or neither")
    has_data = y_true is not None and p_positive is not None
    if policy.needs_data and not has_data:
        raise MedvizError(f"the {policy} threshold policy needs labels and probabilities")
    y, p = binary_inputs(y_true, p_positive) if has_data else (np.empty(0), np.empty(0))
    value = float(policy.value) if policy.value is not None else math.nan
    if policy.kind == "fixed":
        threshold = value
    else:
        present = sorted(set(np.unique(y).tolist()))
        if present != [0, 1]:
            raise MedvizError(
                f"the {policy} threshold policy needs both classes in the {split} data, "
                f"got classes {present} in {len(y)} samples"
            )
        if policy.kind == "youden":
            threshold = youden_threshold(y, p)
        else:
            threshold = sensitivity_threshold(y, p, target=value)
    sens = spec = math.nan
    if has_data:
        sens, spec = sensitivity_specificity(y, p, threshold)
    measured = (
        f" (n={len(y)}: sensitivity {sens:.2f}, specificity {spec:.2f})"
        if math.isfinite(sens) and math.isfinite(spec)
        else ""
    )
    if policy.kind == "fixed":
        reason = (
            f"fixed {threshold:g} on calibrated probabilities: not tuned to one split, so it "
            "does not follow that split's scores when the data shift"
            + (f"; on the {split} split{measured}" if measured else "")
        )
    elif policy.kind == "youden":
        reason = (
            f"maximises sensitivity + specificity on the {split} split{measured}; tuned "
            "in-distribution, it can turn into false alarms under shift"
        )
    else:
        reason = (
            f"the most specific threshold reaching sensitivity >= {value:g} on the {split} "
            f"split{measured}"
        )
    return ThresholdChoice(threshold, str(policy), reason, sens, spec, len(y))


def evaluation_at_threshold(evaluation: Evaluation, threshold: float) -> Evaluation:
    """``evaluation`` with its decisions re-taken at another binary threshold.

    Everything that depends on the decision (predictions, confusion, per-class
    metrics, accuracy, balanced accuracy, the threshold itself, hence the ROC
    operating point) follows ``threshold``; the curves, AUCs and calibration
    depend on the probabilities only and are kept. Cheap enough for a slider.

    Args:
        evaluation: A binary :class:`Evaluation` (``y_prob`` is ``(N, 2)``).
        threshold: Predict class 1 when ``P(class 1) >= threshold``, in ``[0, 1]``.

    Returns:
        A new :class:`Evaluation`.

    Raises:
        MedvizError: ``evaluation`` is not binary or ``threshold`` is not in ``[0, 1]``.
    """
    if not evaluation.is_binary:
        raise MedvizError(
            f"a threshold applies to binary evaluations only; this one has "
            f"{evaluation.n_classes} classes {evaluation.class_names}"
        )
    threshold = check_threshold(threshold)
    y = evaluation.y_true
    y_pred = (evaluation.y_prob[:, 1] >= threshold).astype(np.int64)
    confusion = confusion_counts(y, y_pred, 2)
    per_class = class_metrics(confusion, evaluation.class_names)
    present = np.bincount(y, minlength=2) > 0
    recalls = np.array([m.recall for m in per_class])
    return replace(
        evaluation,
        y_pred=y_pred,
        threshold=threshold,
        accuracy=float(np.mean(y_pred == y)),
        balanced_accuracy=float(recalls[present].mean()),
        confusion=confusion,
        per_class=per_class,
    )
