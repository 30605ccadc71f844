"""The classical baseline of the source work: pixel-threshold counting.

Count the pixels darker than a threshold (120 by default) in each image and
assign the class whose training mean count is nearest. It is what a careful
person could do without any learning, and it is evaluated with exactly the
same metrics as the CNNs (the source work: 65.5 % on COVID-CT).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from medviz.data.dataset import Dataset
from medviz.errors import DataError
from medviz.metrics import Evaluation, evaluate


@dataclass
class ThresholdCountClassifier:
    """Nearest class mean of the dark-pixel fraction.

    Attributes:
        threshold: Grey level (0–255); pixels below it count.
        class_means: ``(K,)`` mean dark fraction per class, set by :meth:`fit`.
        scale: Pooled within-class standard deviation of the fraction.
    """

    threshold: int = 120
    class_means: np.ndarray = field(default_factory=lambda: np.zeros(0))
    scale: float = 1.0

    def features(self, images: np.ndarray) -> np.ndarray:
        """Fraction of dark pixels per image: ``(N, H, W, C)`` uint8 → ``(N,)``."""
        if images.ndim != 4:
            raise DataError(f"images must be (N, H, W, C), got shape {images.shape}")
        grey = images.mean(axis=-1)
        return (grey < self.threshold).mean(axis=(1, 2))

    def fit(self, images: np.ndarray, labels: np.ndarray) -> ThresholdCountClassifier:
        """Learn each class's mean dark fraction."""
        if not 0 <= self.threshold <= 255:
            raise DataError(f"threshold must lie in [0, 255], got {self.threshold}")
        values = self.features(images)
        classes = np.arange(labels.max() + 1)
        self.class_means = np.array(
            [values[labels == c].mean() if (labels == c).any() else np.nan for c in classes]
        )
        residual = values - self.class_means[labels]
        self.scale = float(residual.std() or 1.0)
        return self

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Softmax of the negative standardised distances to the class means, ``(N, K)``."""
        if self.class_means.size == 0:
            raise DataError("call fit() before predict_proba()")
        values = self.features(images)
        scores = -np.abs(values[:, None] - self.class_means[None]) / self.scale
        scores = np.nan_to_num(scores, nan=-1e9)
        scores -= scores.max(axis=1, keepdims=True)
        probs = np.exp(scores)
        return probs / probs.sum(axis=1, keepdims=True)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Nearest class, ``(N,)``."""
        return self.predict_proba(images).argmax(axis=1)


def evaluate_baseline(
    data: Dataset, *, split: str, threshold: int = 120, n_bootstrap: int = 1000
) -> Evaluation:
    """Fit the pixel-threshold baseline on the train split, evaluate it on ``split``.

    The app's Evaluate page and ``medviz baseline`` both call this, so a CNN
    and the baseline are judged with the same metrics on the same images.

    Args:
        data: A dataset with a ``"train"`` split and ``split``.
        split: The split to evaluate on (``"val"``, ``"test"``, ``"all"`` …).
        threshold: Grey level (0–255); darker pixels count.
        n_bootstrap: Bootstrap resamples for the AUC interval.

    Raises:
        DataError: A split is missing or the threshold is outside [0, 255].
    """
    train = data.split("train")
    classifier = ThresholdCountClassifier(threshold=threshold).fit(train.images, train.labels)
    part = data.split(split)
    return evaluate(
        part.labels,
        classifier.predict_proba(part.images),
        class_names=data.class_names,
        n_bootstrap=n_bootstrap,
    )
