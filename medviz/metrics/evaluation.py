"""``evaluate``: everything measured on one set of predictions; summaries of runs."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np

from medviz.errors import MedvizError
from medviz.metrics.bootstrap import percentile_ci, stratified_counts
from medviz.metrics.calibration import expected_calibration_error
from medviz.metrics.curves import RankAuc, class_metrics, macro_roc, pr_curve, roc_curve
from medviz.metrics.inputs import (
    as_class_probabilities,
    as_labels,
    check_lengths,
    check_threshold,
    confusion_counts,
)
from medviz.metrics.results import Evaluation, RocCurve
from medviz.metrics.thresholds import youden_threshold

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
    y = as_labels(y_true, n_classes=k)
    check_lengths(y, p)
    if len(y) == 0:
        raise MedvizError("cannot evaluate 0 samples: y_true and y_prob are empty")
    if not isinstance(n_bootstrap, int) or isinstance(n_bootstrap, bool) or n_bootstrap < 0:
        raise MedvizError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    if threshold is not None:
        if k != 2:
            raise MedvizError(
                f"threshold applies to binary problems only; got {k} classes {names}, use None"
            )
        threshold = check_threshold(threshold)
        y_pred = (p[:, 1] >= threshold).astype(np.int64)
    else:
        y_pred = p.argmax(axis=1).astype(np.int64)

    n = len(y)
    confusion = confusion_counts(y, y_pred, k)
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
        scorers = [RankAuc(p[:, 1], y == 1)]
    else:
        roc_curves = [roc_curve(onehot[:, c], p[:, c], label=names[c]) for c in range(k)]
        roc_curves.append(roc_curve(onehot.ravel(), p.ravel(), label="micro"))
        pr_curves = [pr_curve(onehot[:, c], p[:, c], label=names[c]) for c in range(k)]
        pr_curves.append(pr_curve(onehot.ravel(), p.ravel(), label="micro"))
        scorers = [RankAuc(p[:, c], onehot[:, c]) for c in range(k)]
        owner = np.repeat(np.arange(n), k)  # row-major ravel: sample i owns K scores
        scorers.append(RankAuc(p.ravel(), onehot.ravel(), owner=owner))

    cis = [(math.nan, math.nan)] * len(scorers)
    macro_ci = (math.nan, math.nan)
    defined = [math.isfinite(c.auc) for c in roc_curves]
    if n_bootstrap and any(defined):
        rng = np.random.default_rng(seed)
        boot = np.empty((len(scorers), n_bootstrap))
        done = 0
        for counts in stratified_counts(y, n_bootstrap, rng):
            b = counts.shape[1]
            for i, scorer in enumerate(scorers):
                boot[i, done : done + b] = scorer(counts) if defined[i] else math.nan
            done += b
        cis = [percentile_ci(row) for row in boot]
        if k > 2 and all(defined[:k]):
            macro_ci = percentile_ci(boot[:k].mean(axis=0))

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
        roc_curves.append(macro_roc(roc_curves[:k], auc, auc_ci))
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
