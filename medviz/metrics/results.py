"""Result types of :mod:`medviz.metrics`: frozen dataclasses with ``to_dict``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from medviz.metrics.inputs import json_float, json_list

# --------------------------------------------------------------------------- #
# Result types
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class ClassMetrics:
    """One-vs-rest metrics of one class; ``nan`` where a ratio is undefined.

    Attributes:
        name: Class name.
        support: Number of samples whose true label is this class.
        precision: ``TP / (TP + FP)`` (positive predictive value).
        recall: ``TP / (TP + FN)``, i.e. sensitivity.
        specificity: ``TN / (TN + FP)``.
        f1: ``2 TP / (2 TP + FP + FN)``.
        npv: ``TN / (TN + FN)`` (negative predictive value).
        fpr: ``FP / (FP + TN)`` (``1 - specificity``).
        fnr: ``FN / (FN + TP)`` (``1 - recall``).
    """

    name: str
    support: int
    precision: float
    recall: float
    specificity: float
    f1: float
    npv: float
    fpr: float
    fnr: float

    @property
    def sensitivity(self) -> float:
        """Alias of :attr:`recall`."""
        return self.recall

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``nan`` becomes ``None``."""
        return {
            "name": self.name,
            "support": int(self.support),
            **{
                key: json_float(getattr(self, key))
                for key in ("precision", "recall", "specificity", "f1", "npv", "fpr", "fnr")
            },
        }


# Array-holding results compare by identity (eq=False): the generated __eq__
# would compare arrays element-wise and raise on ``bool()``.
@dataclass(frozen=True, eq=False)
class RocCurve:
    """A receiver operating characteristic curve.

    Attributes:
        label: Positive class name, or ``"micro"`` / ``"macro"``.
        fpr: ``(M,)`` false positive rates, increasing from 0 to 1.
        tpr: ``(M,)`` true positive rates, increasing from 0 to 1.
        thresholds: ``(M,)`` decreasing score thresholds (``p >= t`` is
            positive); the first is ``inf``. All ``nan`` for ``"macro"``.
        auc: Area under the curve (``nan`` when a class is absent).
        auc_ci: Bootstrap 95 % percentile interval of ``auc``.

    When the curve is undefined (no positive or no negative sample) the three
    arrays are empty.
    """

    label: str
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    auc_ci: tuple[float, float]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; non-finite numbers become ``None``."""
        return {
            "label": self.label,
            "fpr": json_list(self.fpr),
            "tpr": json_list(self.tpr),
            "thresholds": json_list(self.thresholds),
            "auc": json_float(self.auc),
            "auc_ci": [json_float(v) for v in self.auc_ci],
        }


@dataclass(frozen=True, eq=False)
class PrCurve:
    """A precision–recall curve (scikit-learn's conventions).

    Attributes:
        label: Positive class name, or ``"micro"``.
        precision: ``(M + 1,)`` precision; the last value is 1.
        recall: ``(M + 1,)`` recall, decreasing; the last value is 0.
        thresholds: ``(M,)`` increasing score thresholds.
        average_precision: ``sum_n (R_n - R_{n-1}) P_n`` (``nan`` without positives).
    """

    label: str
    precision: np.ndarray
    recall: np.ndarray
    thresholds: np.ndarray
    average_precision: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; non-finite numbers become ``None``."""
        return {
            "label": self.label,
            "precision": json_list(self.precision),
            "recall": json_list(self.recall),
            "thresholds": json_list(self.thresholds),
            "average_precision": json_float(self.average_precision),
        }


@dataclass(frozen=True, eq=False)
class Calibration:
    """Reliability of the top-class confidence, in equal-width bins on ``[0, 1]``.

    Attributes:
        bin_edges: ``(B + 1,)`` bin edges; bin ``b`` is ``(edges[b], edges[b + 1]]``
            (the first bin also holds 0).
        bin_confidence: ``(B,)`` mean confidence per bin (``nan`` if empty).
        bin_accuracy: ``(B,)`` accuracy per bin (``nan`` if empty).
        bin_count: ``(B,)`` samples per bin.
        ece: Expected calibration error, ``sum_b n_b / N |acc_b - conf_b|``.
        mce: Maximum calibration error over non-empty bins.
    """

    bin_edges: np.ndarray
    bin_confidence: np.ndarray
    bin_accuracy: np.ndarray
    bin_count: np.ndarray
    ece: float
    mce: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; ``nan`` becomes ``None``."""
        return {
            "bin_edges": json_list(self.bin_edges),
            "bin_confidence": json_list(self.bin_confidence),
            "bin_accuracy": json_list(self.bin_accuracy),
            "bin_count": [int(c) for c in self.bin_count],
            "ece": json_float(self.ece),
            "mce": json_float(self.mce),
        }


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Everything :func:`evaluate` measures on one set of predictions.

    Attributes:
        class_names: ``K`` class names; index ``i`` names label ``i``.
        y_true: ``(N,)`` int true labels.
        y_prob: ``(N, K)`` class probabilities.
        y_pred: ``(N,)`` int predicted labels.
        threshold: Binary only: predict class 1 when ``P(class 1) >= threshold``;
            ``None`` means argmax.
        accuracy: Fraction of correct predictions.
        balanced_accuracy: Mean recall over the classes present in ``y_true``.
        confusion: ``(K, K)`` int counts, rows true, columns predicted.
        per_class: ``K`` one-vs-rest :class:`ClassMetrics`.
        roc: Binary: one curve for class 1. Multi-class: one-vs-rest curves per
            class, then ``"micro"`` and ``"macro"``.
        auc: Binary AUC, or macro one-vs-rest AUC (``nan`` if a class is absent).
        auc_ci: Stratified bootstrap 95 % percentile interval of ``auc``.
        pr: Binary: one curve for class 1. Multi-class: per class, then ``"micro"``.
        calibration: Reliability of the top-class confidence.
        youden_threshold: Binary only: threshold maximising ``TPR - FPR``.
        n: Number of samples.
    """

    class_names: tuple[str, ...]
    y_true: np.ndarray
    y_prob: np.ndarray
    y_pred: np.ndarray
    threshold: float | None
    accuracy: float
    balanced_accuracy: float
    confusion: np.ndarray
    per_class: tuple[ClassMetrics, ...]
    roc: tuple[RocCurve, ...]
    auc: float
    auc_ci: tuple[float, float]
    pr: tuple[PrCurve, ...]
    calibration: Calibration
    youden_threshold: float | None
    n: int

    @property
    def n_classes(self) -> int:
        """Number of classes ``K``."""
        return len(self.class_names)

    @property
    def is_binary(self) -> bool:
        """Whether there are exactly two classes."""
        return self.n_classes == 2

    @property
    def ece(self) -> float:
        """Expected calibration error (shortcut to ``calibration.ece``)."""
        return self.calibration.ece

    def averages(self) -> dict[str, dict[str, float]]:
        """Macro and support-weighted averages of precision, recall (sensitivity) and F1.

        As scikit-learn's ``classification_report``: ``"macro"`` is the plain
        mean over the classes, ``"weighted"`` weights each class by its support;
        an undefined class value (``nan``, e.g. precision of a class never
        predicted) counts as 0, as scikit-learn's ``zero_division=0``.

        Returns:
            ``{"macro": {"precision", "recall", "f1"}, "weighted": {...}}``.
        """
        keys = ("precision", "recall", "f1")
        values = np.nan_to_num(
            np.array([[getattr(m, k) for k in keys] for m in self.per_class], np.float64)
        )
        support = np.array([m.support for m in self.per_class], np.float64)
        weights = support / support.sum() if support.sum() > 0 else support
        return {
            "macro": {k: float(v) for k, v in zip(keys, values.mean(axis=0), strict=True)},
            "weighted": {k: float(v) for k, v in zip(keys, weights @ values, strict=True)},
        }

    def to_dict(self, *, curves: bool = False) -> dict[str, Any]:
        """JSON-ready summary (``json.dumps(..., allow_nan=False)`` works).

        Args:
            curves: Also include the ROC and PR curves and the calibration bins.

        Returns:
            A dict with keys ``n``, ``classes``, ``accuracy``,
            ``balanced_accuracy``, ``auc``, ``auc_ci``, ``confusion_matrix``,
            ``per_class`` (list of dicts), ``averages`` (macro and weighted
            precision, recall, F1; see :meth:`averages`), ``ece``, ``mce``, ``threshold``,
            ``youden_threshold`` and, with ``curves``, ``roc``, ``pr`` and
            ``calibration``. Undefined values are ``None``.
        """
        out: dict[str, Any] = {
            "n": int(self.n),
            "classes": list(self.class_names),
            "accuracy": json_float(self.accuracy),
            "balanced_accuracy": json_float(self.balanced_accuracy),
            "auc": json_float(self.auc),
            "auc_ci": [json_float(v) for v in self.auc_ci],
            "confusion_matrix": self.confusion.astype(int).tolist(),
            "per_class": [m.to_dict() for m in self.per_class],
            "averages": {
                kind: {k: json_float(v) for k, v in values.items()}
                for kind, values in self.averages().items()
            },
            "ece": json_float(self.calibration.ece),
            "mce": json_float(self.calibration.mce),
            "threshold": json_float(self.threshold),
            "youden_threshold": json_float(self.youden_threshold),
        }
        if curves:
            out["roc"] = [c.to_dict() for c in self.roc]
            out["pr"] = [c.to_dict() for c in self.pr]
            out["calibration"] = self.calibration.to_dict()
        return out
