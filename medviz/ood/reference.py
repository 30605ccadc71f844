"""Legacy out-of-distribution statistics: penultimate-feature distance to class means.

At training time the model card stores per-feature statistics of the
training images' penultimate activations (per-class means, pooled standard
deviation) and the 99th percentile of their distances. At prediction time an
image whose distance exceeds that percentile is flagged: the model is
answering about something unlike anything it was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medviz.errors import ModelError


@dataclass(frozen=True)
class ReferenceStats:
    """Feature statistics stored in a model card.

    Attributes:
        class_means: ``(K, D)`` mean feature vector per class.
        scale: ``(D,)`` pooled per-feature standard deviation.
        threshold: Distance above which an image is out of distribution.
        percentile: The training percentile ``threshold`` was taken at.
    """

    class_means: np.ndarray
    scale: np.ndarray
    threshold: float
    percentile: float = 99.0

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict (rounded to keep cards small)."""
        return {
            "class_means": np.round(self.class_means, 5).tolist(),
            "scale": np.round(self.scale, 5).tolist(),
            "threshold": float(self.threshold),
            "percentile": float(self.percentile),
        }

    @classmethod
    def from_dict(cls, values: dict) -> ReferenceStats:
        """Inverse of :meth:`to_dict`."""
        try:
            return cls(
                class_means=np.asarray(values["class_means"], dtype=np.float32),
                scale=np.asarray(values["scale"], dtype=np.float32),
                threshold=float(values["threshold"]),
                percentile=float(values.get("percentile", 99.0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"malformed reference statistics in model card: {err}") from None


def distances(features: np.ndarray, stats: ReferenceStats) -> np.ndarray:
    """RMS standardised distance of each ``(N, D)`` feature row to its nearest class mean."""
    if features.shape[1] != stats.scale.shape[0]:
        raise ModelError(
            f"features have {features.shape[1]} dimensions, reference statistics "
            f"{stats.scale.shape[0]}"
        )
    z = (features[:, None, :] - stats.class_means[None]) / stats.scale[None, None]
    return np.sqrt((z**2).mean(axis=2)).min(axis=1)


def fit_reference(
    features: np.ndarray, labels: np.ndarray, n_classes: int, *, percentile: float = 99.0
) -> ReferenceStats:
    """Reference statistics from training features ``(N, D)`` and labels ``(N,)``."""
    means = np.stack(
        [
            features[labels == c].mean(axis=0) if (labels == c).any() else features.mean(axis=0)
            for c in range(n_classes)
        ]
    )
    centred = features - means[labels]
    scale = centred.std(axis=0) + 1e-3 * (features.std() + 1e-6)
    stats = ReferenceStats(means.astype(np.float32), scale.astype(np.float32), 0.0, percentile)
    threshold = float(np.percentile(distances(features, stats), percentile))
    return ReferenceStats(stats.class_means, stats.scale, threshold, percentile)
