"""Evaluation metrics: compute only, never draw (see :mod:`medviz.plots`).

Probabilities are always ``y_prob``: an ``(N, K)`` float array whose rows sum
to 1, ``K >= 2``; a single-sigmoid model output ``(N,)`` or ``(N, 1)`` is turned
into ``(N, 2) = [1 - p, p]`` by :func:`as_class_probabilities`. Labels are
``(N,)`` integer class indices in ``[0, K)``. In the binary case class 1 is the
positive class.

The module needs only NumPy and SciPy (no TensorFlow, Streamlit or
scikit-learn), so it is cheap to import and safe to call from any page. Every
ratio whose denominator is zero is ``nan``, without a runtime warning.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from numbers import Real
from typing import Any

import numpy as np

from medviz.errors import MedvizError

# Temperatures are searched on a log scale inside these bounds.
TEMPERATURE_BOUNDS: tuple[float, float] = (0.05, 20.0)
# Probabilities are clipped to this before a log so that log(0) never occurs.
_LOG_EPS = 1e-12
# Rows of a softmax output may drift from 1 by float32 rounding.
_ROW_SUM_ATOL = 1e-3
# Bootstrap resamples are processed in chunks of about this many counts, to
# bound memory at a few MB whatever N is.
_BOOTSTRAP_CHUNK = 1_000_000


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
                key: _json_float(getattr(self, key))
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
            "fpr": _json_list(self.fpr),
            "tpr": _json_list(self.tpr),
            "thresholds": _json_list(self.thresholds),
            "auc": _json_float(self.auc),
            "auc_ci": [_json_float(v) for v in self.auc_ci],
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
            "precision": _json_list(self.precision),
            "recall": _json_list(self.recall),
            "thresholds": _json_list(self.thresholds),
            "average_precision": _json_float(self.average_precision),
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
            "bin_edges": _json_list(self.bin_edges),
            "bin_confidence": _json_list(self.bin_confidence),
            "bin_accuracy": _json_list(self.bin_accuracy),
            "bin_count": [int(c) for c in self.bin_count],
            "ece": _json_float(self.ece),
            "mce": _json_float(self.mce),
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

    def to_dict(self, *, curves: bool = False) -> dict[str, Any]:
        """JSON-ready summary (``json.dumps(..., allow_nan=False)`` works).

        Args:
            curves: Also include the ROC and PR curves and the calibration bins.

        Returns:
            A dict with keys ``n``, ``classes``, ``accuracy``,
            ``balanced_accuracy``, ``auc``, ``auc_ci``, ``confusion_matrix``,
            ``per_class`` (list of dicts), ``ece``, ``mce``, ``threshold``,
            ``youden_threshold`` and, with ``curves``, ``roc``, ``pr`` and
            ``calibration``. Undefined values are ``None``.
        """
        out: dict[str, Any] = {
            "n": int(self.n),
            "classes": list(self.class_names),
            "accuracy": _json_float(self.accuracy),
            "balanced_accuracy": _json_float(self.balanced_accuracy),
            "auc": _json_float(self.auc),
            "auc_ci": [_json_float(v) for v in self.auc_ci],
            "confusion_matrix": self.confusion.astype(int).tolist(),
            "per_class": [m.to_dict() for m in self.per_class],
            "ece": _json_float(self.calibration.ece),
            "mce": _json_float(self.calibration.mce),
            "threshold": _json_float(self.threshold),
            "youden_threshold": _json_float(self.youden_threshold),
        }
        if curves:
            out["roc"] = [c.to_dict() for c in self.roc]
            out["pr"] = [c.to_dict() for c in self.pr]
            out["calibration"] = self.calibration.to_dict()
        return out


# --------------------------------------------------------------------------- #
# Input validation
# --------------------------------------------------------------------------- #


def as_class_probabilities(raw: np.ndarray) -> np.ndarray:
    """Return model outputs as ``(N, K)`` class probabilities.

    Args:
        raw: A single-sigmoid output ``(N,)`` or ``(N, 1)`` (probability of
            class 1), or an ``(N, K)`` softmax output with ``K >= 2``.

    Returns:
        ``(N, K)`` float64 array; a sigmoid becomes ``(N, 2) = [1 - p, p]``.

    Raises:
        MedvizError: The shape is not one of the above, a value is not finite
            or outside ``[0, 1]``, or a softmax row does not sum to 1.
    """
    try:
        p = np.array(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MedvizError(f"probabilities must be numeric, got {type(raw).__name__}") from exc
    if p.ndim == 2 and p.shape[1] == 1:
        p = p[:, 0]
    if not (p.ndim == 1 or (p.ndim == 2 and p.shape[1] >= 2)):
        raise MedvizError(
            f"probabilities must have shape (N,), (N, 1) or (N, K) with K >= 2, got {p.shape}"
        )
    if not np.isfinite(p).all():
        bad = int(np.size(p) - np.isfinite(p).sum())
        raise MedvizError(f"probabilities must be finite, got {bad} nan/inf values in {p.shape}")
    if p.size and (p.min() < -1e-6 or p.max() > 1 + 1e-6):
        raise MedvizError(
            f"probabilities must lie in [0, 1], got [{p.min():.4g}, {p.max():.4g}]; "
            "pass probabilities, not logits (see apply_temperature)"
        )
    p = np.clip(p, 0.0, 1.0)
    if p.ndim == 1:
        return np.column_stack([1.0 - p, p])
    sums = p.sum(axis=1)
    off = np.abs(sums - 1.0) > _ROW_SUM_ATOL
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise MedvizError(
            f"rows of (N, K) probabilities must sum to 1, got {int(off.sum())} rows that do not "
            f"(row {row} sums to {sums[row]:.4g}); apply a softmax first"
        )
    return p


def _as_labels(y_true: np.ndarray, *, n_classes: int | None = None) -> np.ndarray:
    """Validate ``(N,)`` (or ``(N, 1)``) integer labels and return them as int64."""
    y = np.asarray(y_true)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise MedvizError(f"labels must have shape (N,) of class indices, got {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or not np.equal(np.round(y), y).all():
            raise MedvizError("labels must be whole class indices, got non-integer floats")
    elif y.dtype.kind not in "iub":
        raise MedvizError(f"labels must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if n_classes is not None and y.size and (y.min() < 0 or y.max() >= n_classes):
        raise MedvizError(
            f"labels must lie in [0, {n_classes - 1}] for {n_classes} classes, "
            f"got [{y.min()}, {y.max()}]"
        )
    return y


def _check_lengths(y: np.ndarray, p: np.ndarray) -> None:
    if len(y) != len(p):
        raise MedvizError(
            f"labels and probabilities differ in length: y_true {y.shape}, y_prob {p.shape}"
        )


def _binary_inputs(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate binary labels and return ``(y, p_positive)``.

    ``y_prob`` may be ``(N,)``/``(N, 1)`` ``P(class 1)`` or ``(N, 2)``.
    """
    p = as_class_probabilities(y_prob)
    if p.shape[1] != 2:
        raise MedvizError(f"this needs binary probabilities (N,) or (N, 2), got shape {p.shape}")
    y = _as_labels(y_true, n_classes=2)
    _check_lengths(y, p)
    return y, p[:, 1]


def _check_threshold(threshold: float) -> float:
    if not isinstance(threshold, Real) or not 0.0 <= float(threshold) <= 1.0:
        raise MedvizError(f"threshold must be a number in [0, 1], got {threshold!r}")
    return float(threshold)


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #


def _ratio(num: float, den: float) -> float:
    """``num / den`` or ``nan`` when ``den`` is 0 (no warning)."""
    return float(num) / float(den) if den else math.nan


def _json_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _json_list(values: np.ndarray) -> list[float | None]:
    return [_json_float(v) for v in np.asarray(values, dtype=float).tolist()]


def _percentile_ci(samples: np.ndarray) -> tuple[float, float]:
    """95 % percentile interval of the finite ``samples`` (``nan`` if none)."""
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return (math.nan, math.nan)
    low, high = np.percentile(finite, [2.5, 97.5])
    return (float(low), float(high))


# --------------------------------------------------------------------------- #
# Confusion-based metrics
# --------------------------------------------------------------------------- #


def _confusion(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(n_classes * y + pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )


def class_metrics(confusion: np.ndarray, class_names: Sequence[str]) -> tuple[ClassMetrics, ...]:
    """One-vs-rest metrics of every class from a confusion matrix.

    Args:
        confusion: ``(K, K)`` counts, rows true, columns predicted.
        class_names: ``K`` names.

    Returns:
        ``K`` :class:`ClassMetrics`, ``nan`` where a denominator is 0.
    """
    c = np.asarray(confusion, dtype=np.int64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] != len(class_names):
        raise MedvizError(
            f"confusion must be (K, K) with K = {len(class_names)} class names, got {c.shape}"
        )
    total = int(c.sum())
    out = []
    for k, name in enumerate(class_names):
        tp = int(c[k, k])
        fn = int(c[k].sum()) - tp
        fp = int(c[:, k].sum()) - tp
        tn = total - tp - fn - fp
        out.append(
            ClassMetrics(
                name=str(name),
                support=tp + fn,
                precision=_ratio(tp, tp + fp),
                recall=_ratio(tp, tp + fn),
                specificity=_ratio(tn, tn + fp),
                f1=_ratio(2 * tp, 2 * tp + fp + fn),
                npv=_ratio(tn, tn + fn),
                fpr=_ratio(fp, fp + tn),
                fnr=_ratio(fn, fn + tp),
            )
        )
    return tuple(out)


def confusion_at_threshold(y_true: np.ndarray, y_prob: np.ndarray, threshold: float) -> np.ndarray:
    """Binary confusion matrix when ``P(class 1) >= threshold`` predicts class 1.

    Cheap enough to call on every move of a slider.

    Args:
        y_true: ``(N,)`` labels in ``{0, 1}``.
        y_prob: ``(N, 2)`` probabilities, or ``(N,)`` ``P(class 1)``.
        threshold: Decision threshold in ``[0, 1]``.

    Returns:
        ``(2, 2)`` int array ``[[TN, FP], [FN, TP]]`` (rows true, columns predicted).
    """
    threshold = _check_threshold(threshold)
    y, p = _binary_inputs(y_true, y_prob)
    return _confusion(y, (p >= threshold).astype(np.int64), 2)


def sensitivity_specificity(
    y_true: np.ndarray, y_prob: np.ndarray, threshold: float
) -> tuple[float, float]:
    """Sensitivity (TPR) and specificity (TNR) at a decision threshold.

    Args:
        y_true: ``(N,)`` labels in ``{0, 1}``.
        y_prob: ``(N, 2)`` probabilities, or ``(N,)`` ``P(class 1)``.
        threshold: Predict class 1 when ``P(class 1) >= threshold``.

    Returns:
        ``(sensitivity, specificity)``; ``nan`` when a class is absent.
    """
    (tn, fp), (fn, tp) = confusion_at_threshold(y_true, y_prob, threshold)
    return _ratio(tp, tp + fn), _ratio(tn, tn + fp)


def sensitivity_specificity_curve(
    y_true: np.ndarray, y_prob: np.ndarray, *, thresholds: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sensitivity and specificity over a grid of thresholds (vectorised).

    Args:
        y_true: ``(N,)`` labels in ``{0, 1}``.
        y_prob: ``(N, 2)`` probabilities, or ``(N,)`` ``P(class 1)``.
        thresholds: ``(T,)`` thresholds; default 201 points on ``[0, 1]``.

    Returns:
        ``(thresholds, sensitivity, specificity)``, each ``(T,)``; a rate is
        ``nan`` throughout when its class is absent.
    """
    y, p = _binary_inputs(y_true, y_prob)
    t = np.linspace(0.0, 1.0, 201) if thresholds is None else np.asarray(thresholds, float)
    pos = np.sort(p[y == 1])
    neg = np.sort(p[y == 0])
    # p >= t is positive: positives at or above t, negatives strictly below.
    sens = (
        (len(pos) - np.searchsorted(pos, t, side="left")) / len(pos)
        if len(pos)
        else np.full(t.shape, math.nan)
    )
    spec = np.searchsorted(neg, t, side="left") / len(neg) if len(neg) else np.full(t.shape, np.nan)
    return t, sens, spec


# --------------------------------------------------------------------------- #
# Rank-based AUC and curves
# --------------------------------------------------------------------------- #


class _RankAuc:
    """Mann–Whitney AUC of one score vector under many sample weightings.

    The sort is done once; each call takes ``(N, B)`` integer counts (how often
    each sample occurs in each of ``B`` bootstrap resamples) and returns
    ``(B,)`` AUCs.
    Ties count one half, as with the trapezoidal ROC area.
    """

    def __init__(
        self, scores: np.ndarray, positive: np.ndarray, *, owner: np.ndarray | None = None
    ) -> None:
        # ``owner[i]`` is the sample that score ``i`` belongs to (for the micro
        # average, where each sample has K flattened scores).
        order = np.argsort(scores, kind="stable")
        sorted_scores = scores[order]
        self.take = order if owner is None else owner[order]
        self.positive = positive[order]
        self.starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
        self.has_ties = len(self.starts) < len(scores)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        # Samples run along axis 0 so that the cumulative sums add whole
        # contiguous rows (much faster than a cumsum along axis 1).
        w = counts[self.take]
        w_pos = w * self.positive[:, None]
        w_neg = w - w_pos
        if self.has_ties:
            w_pos = np.add.reduceat(w_pos, self.starts, axis=0)
            w_neg = np.add.reduceat(w_neg, self.starts, axis=0)
        cum_neg = np.cumsum(w_neg, axis=0)
        # Negatives strictly below + half of those tied = cum_neg - w_neg / 2;
        # doubled to stay in exact integer arithmetic.
        twice = (w_pos * (2 * cum_neg - w_neg)).sum(axis=0)
        den = 2 * w_pos.sum(axis=0) * cum_neg[-1]
        out = np.full(counts.shape[1], math.nan)
        np.divide(twice, den, out=out, where=den > 0)
        return out


def _stratified_counts(
    y: np.ndarray, n_bootstrap: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield ``(N, b)`` counts of stratified bootstrap resamples, in chunks.

    Each class is resampled with replacement within itself, so every resample
    keeps the class counts (and an AUC defined on the data stays defined).
    """
    n = len(y)
    members = [np.flatnonzero(y == c) for c in np.unique(y)]
    chunk = max(1, _BOOTSTRAP_CHUNK // max(n, 1))
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        resample = np.arange(b)[:, None]
        # Flat index sample * b + resample, so the reshape gives (N, b).
        flat = np.concatenate(
            [(m[rng.integers(0, len(m), size=(b, len(m)))] * b + resample).ravel() for m in members]
        )
        yield np.bincount(flat, minlength=n * b).reshape(n, b)


def _binary_clf_curve(
    positive: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cumulative false and true positives at each distinct decreasing threshold."""
    order = np.argsort(scores, kind="stable")[::-1]
    s = scores[order]
    pos = positive[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]
    tps = np.cumsum(pos)[last_of_run]
    fps = 1 + last_of_run - tps
    return fps, tps, s[last_of_run]


def _empty() -> np.ndarray:
    return np.empty(0, dtype=float)


def roc_curve(positive: np.ndarray, scores: np.ndarray, *, label: str = "positive") -> RocCurve:
    """ROC curve and AUC of one score against a boolean target.

    Matches ``sklearn.metrics.roc_curve`` (with ``drop_intermediate=True``) and
    ``roc_auc_score``. The CI is left ``nan``: :func:`evaluate` fills it in.

    Args:
        positive: ``(N,)`` bool, true where the sample is positive.
        scores: ``(N,)`` scores, higher means more positive.
        label: Name of the curve.

    Returns:
        The :class:`RocCurve`; empty arrays and ``nan`` AUC when either class
        is absent.
    """
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    n_pos = int(positive.sum())
    if n_pos == 0 or n_pos == len(positive):
        return RocCurve(label, _empty(), _empty(), _empty(), math.nan, (math.nan, math.nan))
    fps, tps, thresholds = _binary_clf_curve(positive, scores)
    if len(fps) > 2:
        # Drop points on straight segments: they do not change the curve.
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    thresholds = np.r_[np.inf, thresholds]
    auc = float(_RankAuc(scores, positive)(np.ones((len(scores), 1), dtype=np.int64))[0])
    return RocCurve(label, fpr, tpr, thresholds, auc, (math.nan, math.nan))


def pr_curve(positive: np.ndarray, scores: np.ndarray, *, label: str = "positive") -> PrCurve:
    """Precision–recall curve and average precision of one score.

    Matches ``sklearn.metrics.precision_recall_curve`` and
    ``average_precision_score``.

    Args:
        positive: ``(N,)`` bool, true where the sample is positive.
        scores: ``(N,)`` scores, higher means more positive.
        label: Name of the curve.

    Returns:
        The :class:`PrCurve`; empty arrays and ``nan`` AP without positives.
    """
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=float)
    if not positive.any():
        return PrCurve(label, _empty(), _empty(), _empty(), math.nan)
    fps, tps, thresholds = _binary_clf_curve(positive, scores)
    precision = tps / (tps + fps)  # tps + fps >= 1 at every threshold
    recall = tps / tps[-1]
    precision = np.r_[precision[::-1], 1.0]
    recall = np.r_[recall[::-1], 0.0]
    ap = float(-np.sum(np.diff(recall) * precision[:-1]))
    return PrCurve(label, precision, recall, thresholds[::-1].astype(float), ap)


def _macro_roc(curves: Sequence[RocCurve], auc: float, ci: tuple[float, float]) -> RocCurve:
    """Mean of the one-vs-rest TPRs interpolated on the union of their FPRs."""
    if any(len(c.fpr) == 0 for c in curves):
        return RocCurve("macro", _empty(), _empty(), _empty(), auc, ci)
    grid = np.unique(np.concatenate([c.fpr for c in curves]))
    tpr = np.mean([np.interp(grid, c.fpr, c.tpr) for c in curves], axis=0)
    return RocCurve("macro", grid, tpr, np.full(grid.shape, math.nan), auc, ci)


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
    y, p = _binary_inputs(y_true, y_prob)
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
    y, p = _binary_inputs(y_true, p_positive)
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
"""Kinds of :class:`ThresholdPolicy`; ``fixed`` (0.5) is the default."""


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
            "threshold": _json_float(self.threshold),
            "method": self.method,
            "reason": self.reason,
            "sensitivity": _json_float(self.sensitivity),
            "specificity": _json_float(self.specificity),
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
    y, p = _binary_inputs(y_true, p_positive) if has_data else (np.empty(0), np.empty(0))
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
    threshold = _check_threshold(threshold)
    y = evaluation.y_true
    y_pred = (evaluation.y_prob[:, 1] >= threshold).astype(np.int64)
    confusion = _confusion(y, y_pred, 2)
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


# --------------------------------------------------------------------------- #
# Calibration
# --------------------------------------------------------------------------- #


def expected_calibration_error(
    y_true: np.ndarray, y_prob: np.ndarray, *, n_bins: int = 10
) -> Calibration:
    """Reliability of the top-class confidence in equal-width bins.

    Args:
        y_true: ``(N,)`` labels.
        y_prob: ``(N, K)`` probabilities (or a ``(N,)`` sigmoid output).
        n_bins: Number of equal-width bins on ``[0, 1]``.

    Returns:
        The :class:`Calibration`; ``ece`` and ``mce`` are ``nan`` for ``N = 0``.
    """
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise MedvizError(f"n_bins must be a positive integer, got {n_bins!r}")
    p = as_class_probabilities(y_prob)
    y = _as_labels(y_true, n_classes=p.shape[1])
    _check_lengths(y, p)
    confidence = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # side="left" puts a value equal to an edge in the bin that edge closes.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(index, weights=correct, minlength=n_bins)
    filled = count > 0
    bin_conf = np.full(n_bins, math.nan)
    bin_acc = np.full(n_bins, math.nan)
    bin_conf[filled] = conf_sum[filled] / count[filled]
    bin_acc[filled] = acc_sum[filled] / count[filled]
    gaps = np.abs(bin_acc[filled] - bin_conf[filled])
    n = len(y)
    ece = float(np.sum(count[filled] / n * gaps)) if n else math.nan
    mce = float(gaps.max()) if n else math.nan
    return Calibration(edges, bin_conf, bin_acc, count, ece, mce)


# --------------------------------------------------------------------------- #
# Temperature scaling
# --------------------------------------------------------------------------- #


def _as_logits(logits: np.ndarray) -> np.ndarray:
    """``(N, K)`` float logits; a single-sigmoid logit ``z`` becomes ``[0, z]``."""
    try:
        z = np.array(logits, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MedvizError(f"logits must be numeric, got {type(logits).__name__}") from exc
    if z.ndim == 2 and z.shape[1] == 1:
        z = z[:, 0]
    if z.ndim == 1:
        # softmax([0, z]) = [1 - sigmoid(z), sigmoid(z)].
        z = np.column_stack([np.zeros_like(z), z])
    if z.ndim != 2 or z.shape[1] < 2:
        raise MedvizError(f"logits must have shape (N,), (N, 1) or (N, K), got {z.shape}")
    if not np.isfinite(z).all():
        raise MedvizError(f"logits must be finite, got nan/inf in an array of shape {z.shape}")
    return z


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-likelihood of labels ``y`` under ``softmax(z)``."""
    m = z.max(axis=1, keepdims=True)
    log_norm = m[:, 0] + np.log(np.exp(z - m).sum(axis=1))
    return float(np.mean(log_norm - z[np.arange(len(y)), y]))


def apply_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax of ``logits / temperature``.

    Args:
        logits: ``(N, K)`` logits, or ``(N,)``/``(N, 1)`` single-sigmoid logits.
        temperature: ``T > 0``; ``T > 1`` softens, ``T < 1`` sharpens.

    Returns:
        ``(N, K)`` probabilities (``(N, 2)`` for a sigmoid logit).
    """
    if not isinstance(temperature, Real) or not float(temperature) > 0:
        raise MedvizError(f"temperature must be a positive number, got {temperature!r}")
    return _softmax(_as_logits(logits) / float(temperature))


def fit_temperature(
    logits: np.ndarray,
    y_true: np.ndarray,
    *,
    bounds: tuple[float, float] = TEMPERATURE_BOUNDS,
) -> float:
    """Temperature ``T`` minimising the NLL of ``softmax(logits / T)``.

    Fit on a validation split, never on the test split you report.

    Args:
        logits: ``(N, K)`` logits, or ``(N,)``/``(N, 1)`` single-sigmoid logits.
            Use :func:`logits_from_probabilities` when only probabilities exist.
        y_true: ``(N,)`` labels.
        bounds: Search interval of ``T`` (searched on a log scale).

    Returns:
        The fitted temperature.
    """
    from scipy.optimize import minimize_scalar  # imported here: only this needs it

    z = _as_logits(logits)
    y = _as_labels(y_true, n_classes=z.shape[1])
    _check_lengths(y, z)
    if len(y) == 0:
        raise MedvizError("fit_temperature needs at least one sample, got 0")
    low, high = bounds
    if not 0 < low < high:
        raise MedvizError(f"bounds must satisfy 0 < low < high, got {bounds}")
    result = minimize_scalar(
        lambda log_t: _nll(z / math.exp(log_t), y),
        bounds=(math.log(low), math.log(high)),
        method="bounded",
        options={"xatol": 1e-5},
    )
    return float(math.exp(result.x))


def logits_from_probabilities(y_prob: np.ndarray) -> np.ndarray:
    """``log(clip(p))``: logits whose softmax gives back ``y_prob``.

    Args:
        y_prob: ``(N, K)`` probabilities (or a ``(N,)`` sigmoid output).

    Returns:
        ``(N, K)`` logits (defined up to a per-row constant, which softmax ignores).
    """
    p = as_class_probabilities(y_prob)
    return np.log(np.clip(p, _LOG_EPS, 1.0))


def negative_log_likelihood(y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """Mean negative log-likelihood (cross-entropy) of ``(N, K)`` probabilities."""
    p = as_class_probabilities(y_prob)
    y = _as_labels(y_true, n_classes=p.shape[1])
    _check_lengths(y, p)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], _LOG_EPS, 1.0))))


# --------------------------------------------------------------------------- #
# evaluate
# --------------------------------------------------------------------------- #


def evaluate(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    *,
    class_names: Sequence[str],
    threshold: float | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    n_bins: int = 10,
) -> Evaluation:
    """Measure predictions: confusion, per-class metrics, ROC/PR, AUC CI, calibration.

    Args:
        y_true: ``(N,)`` int labels in ``[0, K)``.
        y_prob: ``(N, K)`` probabilities, or a ``(N,)``/``(N, 1)`` sigmoid output.
        class_names: ``K`` class names.
        threshold: Binary only: predict class 1 when ``P(class 1) >= threshold``.
            ``None`` predicts the argmax (ties go to the lower class).
        n_bootstrap: Stratified bootstrap resamples for the AUC CIs (0 = no CI).
        seed: Seed of the bootstrap.
        n_bins: Calibration bins.

    Returns:
        The :class:`Evaluation`. When a class is absent from ``y_true`` its AUC
        (and the binary or macro AUC) is ``nan`` with CI ``(nan, nan)``.

    Raises:
        MedvizError: Shapes, labels, class names or options do not fit together.
    """
    names = tuple(str(c) for c in class_names)
    p = as_class_probabilities(y_prob)
    k = p.shape[1]
    if len(names) != k:
        raise MedvizError(
            f"y_prob has {k} columns (shape {p.shape}) but {len(names)} class names {names}"
        )
    y = _as_labels(y_true, n_classes=k)
    _check_lengths(y, p)
    if len(y) == 0:
        raise MedvizError("cannot evaluate 0 samples: y_true and y_prob are empty")
    if not isinstance(n_bootstrap, int) or isinstance(n_bootstrap, bool) or n_bootstrap < 0:
        raise MedvizError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    if threshold is not None:
        if k != 2:
            raise MedvizError(
                f"threshold applies to binary problems only; got {k} classes {names}, use None"
            )
        threshold = _check_threshold(threshold)
        y_pred = (p[:, 1] >= threshold).astype(np.int64)
    else:
        y_pred = p.argmax(axis=1).astype(np.int64)

    n = len(y)
    confusion = _confusion(y, y_pred, k)
    per_class = class_metrics(confusion, names)
    recalls = np.array([m.recall for m in per_class])
    present = np.bincount(y, minlength=k) > 0
    balanced = float(recalls[present].mean())

    # Score vectors whose AUC is bootstrapped: class 1 (binary) or each class
    # one-vs-rest plus the flattened micro average (multi-class).
    onehot = np.eye(k, dtype=bool)[y]
    if k == 2:
        roc_curves = [roc_curve(y == 1, p[:, 1], label=names[1])]
        pr_curves = [pr_curve(y == 1, p[:, 1], label=names[1])]
        scorers = [_RankAuc(p[:, 1], y == 1)]
    else:
        roc_curves = [roc_curve(onehot[:, c], p[:, c], label=names[c]) for c in range(k)]
        roc_curves.append(roc_curve(onehot.ravel(), p.ravel(), label="micro"))
        pr_curves = [pr_curve(onehot[:, c], p[:, c], label=names[c]) for c in range(k)]
        pr_curves.append(pr_curve(onehot.ravel(), p.ravel(), label="micro"))
        scorers = [_RankAuc(p[:, c], onehot[:, c]) for c in range(k)]
        owner = np.repeat(np.arange(n), k)  # row-major ravel: sample i owns K scores
        scorers.append(_RankAuc(p.ravel(), onehot.ravel(), owner=owner))

    cis = [(math.nan, math.nan)] * len(scorers)
    macro_ci = (math.nan, math.nan)
    defined = [math.isfinite(c.auc) for c in roc_curves]
    if n_bootstrap and any(defined):
        rng = np.random.default_rng(seed)
        boot = np.empty((len(scorers), n_bootstrap))
        done = 0
        for counts in _stratified_counts(y, n_bootstrap, rng):
            b = counts.shape[1]
            for i, scorer in enumerate(scorers):
                boot[i, done : done + b] = scorer(counts) if defined[i] else math.nan
            done += b
        cis = [_percentile_ci(row) for row in boot]
        if k > 2 and all(defined[:k]):
            macro_ci = _percentile_ci(boot[:k].mean(axis=0))

    roc_curves = [
        RocCurve(c.label, c.fpr, c.tpr, c.thresholds, c.auc, ci)
        for c, ci in zip(roc_curves, cis, strict=True)
    ]
    if k == 2:
        auc, auc_ci = roc_curves[0].auc, roc_curves[0].auc_ci
        youden: float | None = youden_threshold(y, p[:, 1])
    else:
        per_class_auc = [c.auc for c in roc_curves[:k]]
        auc = float(np.mean(per_class_auc)) if all(defined[:k]) else math.nan
        auc_ci = macro_ci
        roc_curves.append(_macro_roc(roc_curves[:k], auc, auc_ci))
        youden = None

    return Evaluation(
        class_names=names,
        y_true=y,
        y_prob=p,
        y_pred=y_pred,
        threshold=threshold,
        accuracy=float(np.mean(y_pred == y)),
        balanced_accuracy=balanced,
        confusion=confusion,
        per_class=per_class,
        roc=tuple(roc_curves),
        auc=float(auc),
        auc_ci=auc_ci,
        pr=tuple(pr_curves),
        calibration=expected_calibration_error(y, p, n_bins=n_bins),
        youden_threshold=youden,
        n=n,
    )


# --------------------------------------------------------------------------- #
# Several runs
# --------------------------------------------------------------------------- #


def _is_number(value: object) -> bool:
    return isinstance(value, Real | np.number) and not isinstance(value, bool | np.bool_)


def summarize_runs(results: Sequence[Mapping[str, float]]) -> dict[str, tuple[float, float]]:
    """Mean and sample standard deviation of each metric over several runs.

    Args:
        results: One mapping ``{metric: value}`` per run (e.g. per seed).

    Returns:
        ``{metric: (mean, std)}`` for the numeric keys present in every run, in
        the order of the first run; ``std`` uses ``ddof=1`` and is 0 for one run.
    """
    if not results:
        return {}
    keys = [
        key
        for key, value in results[0].items()
        if _is_number(value) and all(key in r and _is_number(r[key]) for r in results[1:])
    ]
    summary: dict[str, tuple[float, float]] = {}
    for key in keys:
        values = np.array([float(r[key]) for r in results])
        std = float(values.std(ddof=1)) if len(values) > 1 else 0.0
        summary[key] = (float(values.mean()), std)
    return summary


def format_mean_std(mean: float, std: float, digits: int = 3) -> str:
    """Format ``mean ± std``, e.g. ``"0.953 ± 0.004"``."""
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


# --------------------------------------------------------------------------- #
# Cross-dataset class matching
# --------------------------------------------------------------------------- #


def normalize_class_name(name: str) -> str:
    """Casefold and drop ``_``, ``-`` and whitespace: ``"No Tumor"`` -> ``"notumor"``."""
    return "".join(ch for ch in str(name).casefold() if ch not in "_-" and not ch.isspace())


def match_classes(model_classes: Sequence[str], data_classes: Sequence[str]) -> np.ndarray:
    """Map each data class to the model class of the same (normalised) name.

    Args:
        model_classes: Class names the model was trained on, in output order.
        data_classes: Class names of the dataset to evaluate on.

    Returns:
        ``(len(data_classes),)`` int array: entry ``j`` is the model output index
        of data class ``j`` (a permutation), so ``mapping[labels]`` turns data
        labels into model labels.

    Raises:
        MedvizError: The normalised name sets differ or a name repeats after
            normalisation; the message lists both class sets verbatim.
    """
    model_norm = [normalize_class_name(c) for c in model_classes]
    data_norm = [normalize_class_name(c) for c in data_classes]
    both = f"model classes {list(model_classes)}, data classes {list(data_classes)}"
    for which, norm in (("model", model_norm), ("data", data_norm)):
        if len(set(norm)) != len(norm):
            raise MedvizError(f"{which} class names repeat after normalisation: {both}")
    if set(model_norm) != set(data_norm):
        missing = sorted(set(data_norm) - set(model_norm))
        extra = sorted(set(model_norm) - set(data_norm))
        raise MedvizError(
            f"class names do not match: {both} "
            f"(unknown to the model: {missing}; not in the data: {extra})"
        )
    index = {name: i for i, name in enumerate(model_norm)}
    return np.array([index[name] for name in data_norm], dtype=np.int64)
