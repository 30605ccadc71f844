"""Input checks and small helpers shared by every metrics module.

Probabilities are ``y_prob``: ``(N, K)`` rows summing to 1; labels are ``(N,)``
ints in ``[0, K)``. Every ratio whose denominator is zero is ``nan``, without a
runtime warning.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from medviz.errors import MedvizError

# Rows of a softmax output may drift from 1 by float32 rounding.
_ROW_SUM_ATOL = 1e-3


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


def as_labels(y_true: np.ndarray, *, n_classes: int | None = None) -> np.ndarray:
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


def check_lengths(y: np.ndarray, p: np.ndarray) -> None:
    """Raise unless labels ``y`` ``(N,)`` and probabilities ``p`` ``(N, K)`` have one row each."""
    if len(y) != len(p):
        raise MedvizError(
            f"labels and probabilities differ in length: y_true {y.shape}, y_prob {p.shape}"
        )


def binary_inputs(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate binary labels and return ``(y, p_positive)``.

    ``y_prob`` may be ``(N,)``/``(N, 1)`` ``P(class 1)`` or ``(N, 2)``.
    """
    p = as_class_probabilities(y_prob)
    if p.shape[1] != 2:
        raise MedvizError(f"this needs binary probabilities (N,) or (N, 2), got shape {p.shape}")
    y = as_labels(y_true, n_classes=2)
    check_lengths(y, p)
    return y, p[:, 1]


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float, or a :class:`MedvizError` unless it is a number in ``[0, 1]``."""
    if not isinstance(threshold, Real) or not 0.0 <= float(threshold) <= 1.0:
        raise MedvizError(f"threshold must be a number in [0, 1], got {threshold!r}")
    return float(threshold)


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #


def ratio(num: float, den: float) -> float:
    """``num / den`` or ``nan`` when ``den`` is 0 (no warning)."""
    return float(num) / float(den) if den else math.nan


def json_float(value: float | None) -> float | None:
    """``value`` as a float, ``None`` for ``None``, ``nan`` or ``inf`` (JSON has no nan)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def json_list(values: np.ndarray) -> list[float | None]:
    """``(N,)`` values as a JSON-ready list (:func:`json_float` of each)."""
    return [json_float(v) for v in np.asarray(values, dtype=float).tolist()]


def confusion_counts(y: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(K, K)`` int counts, rows true label ``y``, columns predicted ``pred`` (both ``(N,)``)."""
    return np.bincount(n_classes * y + pred, minlength=n_classes * n_classes).reshape(
        n_classes, n_classes
    )
