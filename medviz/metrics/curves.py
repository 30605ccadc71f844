"""Confusion-based metrics, rank AUC and the ROC / PR curves."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from medviz.errors import MedvizError
from medviz.metrics.inputs import binary_inputs, check_threshold, confusion_counts, ratio
from medviz.metrics.results import ClassMetrics, PrCurve, RocCurve


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
                precision=ratio(tp, tp + fp),
                recall=ratio(tp, tp + fn),
                specificity=ratio(tn, tn + fp),
                f1=ratio(2 * tp, 2 * tp + fp + fn),
                npv=ratio(tn, tn + fn),
                fpr=ratio(fp, fp + tn),
                fnr=ratio(fn, fn + tp),
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
    threshold = check_threshold(threshold)
    y, p = binary_inputs(y_true, y_prob)
    return confusion_counts(y, (p >= threshold).astype(np.int64), 2)


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
    return ratio(tp, tp + fn), ratio(tn, tn + fp)


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
    y, p = binary_inputs(y_true, y_prob)
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


class RankAuc:
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


def binary_clf_curve(
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
    fps, tps, thresholds = binary_clf_curve(positive, scores)
    if len(fps) > 2:
        # Drop points on straight segments: they do not change the curve.
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        fps, tps, thresholds = fps[keep], tps[keep], thresholds[keep]
    fpr = np.r_[0.0, fps / fps[-1]]
    tpr = np.r_[0.0, tps / tps[-1]]
    thresholds = np.r_[np.inf, thresholds]
    auc = float(RankAuc(scores, positive)(np.ones((len(scores), 1), dtype=np.int64))[0])
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
    fps, tps, thresholds = binary_clf_curve(positive, scores)
    precision = tps / (tps + fps)  # tps + fps >= 1 at every threshold
    recall = tps / tps[-1]
    precision = np.r_[precision[::-1], 1.0]
    recall = np.r_[recall[::-1], 0.0]
    ap = float(-np.sum(np.diff(recall) * precision[:-1]))
    return PrCurve(label, precision, recall, thresholds[::-1].astype(float), ap)


def macro_roc(curves: Sequence[RocCurve], auc: float, ci: tuple[float, float]) -> RocCurve:
    """Mean of the one-vs-rest TPRs interpolated on the union of their FPRs."""
    if any(len(c.fpr) == 0 for c in curves):
        return RocCurve("macro", _empty(), _empty(), _empty(), auc, ci)
    grid = np.unique(np.concatenate([c.fpr for c in curves]))
    tpr = np.mean([np.interp(grid, c.fpr, c.tpr) for c in curves], axis=0)
    return RocCurve("macro", grid, tpr, np.full(grid.shape, math.nan), auc, ci)
