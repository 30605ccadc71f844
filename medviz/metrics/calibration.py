"""Calibration: reliability bins, expected calibration error, temperature scaling."""

from __future__ import annotations

import math
from numbers import Real

import numpy as np

from medviz.errors import MedvizError
from medviz.metrics.inputs import as_class_probabilities, as_labels, check_lengths
from medviz.metrics.results import Calibration

# Temperatures are searched on a log scale inside these bounds.
TEMPERATURE_BOUNDS: tuple[float, float] = (0.05, 20.0)
# Probabilities are clipped to this before a log so that log(0) never occurs.
_LOG_EPS = 1e-12


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
    y = as_labels(y_true, n_classes=p.shape[1])
    check_lengths(y, p)
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
    y = as_labels(y_true, n_classes=z.shape[1])
    check_lengths(y, z)
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
    y = as_labels(y_true, n_classes=p.shape[1])
    check_lengths(y, p)
    return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], _LOG_EPS, 1.0))))
