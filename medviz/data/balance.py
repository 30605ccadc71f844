"""Class weights and undersampling for imbalanced datasets."""

from __future__ import annotations

import numpy as np

from medviz.errors import DataError


def _check(labels: np.ndarray, n_classes: int | None = None) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and labels.dtype.kind not in "iu"):
        raise DataError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and labels.min() < 0:
        raise DataError(f"labels must be non-negative, got {labels.min()}")
    if n_classes is not None and labels.size and labels.max() >= n_classes:
        raise DataError(f"labels must lie in [0, {n_classes - 1}], got {labels.max()}")
    return labels.astype(np.int64)


def class_weights(labels: np.ndarray, n_classes: int) -> dict[int, float]:
    """Per-class loss weights that make every present class count equally.

    Uses scikit-learn's "balanced" formula, ``n_samples / (n_present * count_c)``
    with ``n_present`` the number of classes that occur, so the weights
    average to 1 over the samples. A class absent from ``labels`` gets weight
    0.0: Keras wants an entry for every class index, and no sample uses it.

    Args:
        labels: ``(N,)`` class indices in ``[0, n_classes)``.
        n_classes: Number of classes.

    Returns:
        ``{class index: weight}`` for every index in ``range(n_classes)``.

    Raises:
        DataError: Empty or out-of-range labels, or ``n_classes < 1``.
    """
    if n_classes < 1:
        raise DataError(f"n_classes must be at least 1, got {n_classes}")
    labels = _check(labels, n_classes)
    if not labels.size:
        raise DataError("class_weights needs at least one label, got an empty array")
    counts = np.bincount(labels, minlength=n_classes)
    n_present = int((counts > 0).sum())
    return {
        c: float(len(labels) / (n_present * n)) if n else 0.0 for c, n in enumerate(counts.tolist())
    }


def undersample(labels: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Indices that cut every class down to the size of the smallest one.

    Args:
        labels: ``(N,)`` class indices.
        seed: Seed of the random choice within each class.

    Returns:
        Sorted ``(K * m,)`` int64 indices, ``m`` the smallest count among the
        ``K`` classes that occur (empty for empty labels).
    """
    labels = _check(labels)
    if not labels.size:
        return np.arange(0, dtype=np.int64)
    present, counts = np.unique(labels, return_counts=True)
    smallest = int(counts.min())
    rng = np.random.default_rng(seed)
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=smallest, replace=False) for c in present
    ]
    return np.sort(np.concatenate(chosen)).astype(np.int64)
