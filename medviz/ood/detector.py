"""The out-of-distribution detector stored in a model card.

An image is described by a short vector of *scores* (:func:`score_table`):
the input statistics of :mod:`medviz.ood.features`, and for each chosen layer
the standardised distance of its pooled features to the nearest class mean of
the model's training images plus the log of their mean activation relative to
training. A logistic regression, trained to separate the model's own
validation images from images of other modalities and generated non-medical
images, gives a *supervised* score; a Mahalanobis distance of the same vector
to the in-domain validation images (shrunk covariance) gives a *novelty*
score. An image is out of distribution when either exceeds its limit. The
novelty term is what catches foreign images unlike any seen in fitting
(measured leave-one-source-out: white noise went from 39 % to 100 % flagged
for the chest X-ray model when it was added). Both limits are chosen on
out-of-fold validation scores so that about 2 % of in-domain images are
flagged in all.

Everything is stored as short lists of numbers (:meth:`OodDetector.to_dict`),
so the card stays small and no pickled object is ever loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medviz.errors import ModelError
from medviz.ood.features import STAT_NAMES, input_statistics

DETECTOR_VERSION = 2


@dataclass(frozen=True)
class LayerReference:
    """Pooled-feature statistics of one layer on the model's training images.

    Attributes:
        layer: Layer name, or :data:`medviz.ood.features.PENULTIMATE`.
        class_means: ``(K, D)`` mean pooled feature per class.
        scale: ``(D,)`` pooled within-class standard deviation.
        mean_activation: Mean over images and features of the pooled output.
    """

    layer: str
    class_means: np.ndarray
    scale: np.ndarray
    mean_activation: float

    def scores(self, features: np.ndarray) -> np.ndarray:
        """``(N, 2)``: log RMS standardised distance to the nearest class mean, log activation."""
        if features.ndim != 2 or features.shape[1] != self.scale.shape[0]:
            raise ModelError(
                f"layer {self.layer!r} gave features of shape {features.shape}; the card's "
                f"detector expects (N, {self.scale.shape[0]})"
            )
        best = np.full(len(features), np.inf)
        for mean in self.class_means:  # loop keeps memory at (N, D), not (N, K, D)
            z = (features - mean) / self.scale
            best = np.minimum(best, np.sqrt((z**2).mean(axis=1)))
        level = np.abs(features).mean(axis=1) / max(self.mean_activation, 1e-9)
        return np.stack([np.log(best + 1e-6), np.log(level + 1e-6)], axis=1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (rounded to keep cards small)."""
        return {
            "layer": self.layer,
            "class_means": np.round(self.class_means, 4).tolist(),
            "scale": np.round(self.scale, 5).tolist(),
            "mean_activation": float(self.mean_activation),
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> LayerReference:
        """Inverse of :meth:`to_dict`."""
        return cls(
            layer=str(values["layer"]),
            class_means=np.asarray(values["class_means"], dtype=np.float64),
            scale=np.asarray(values["scale"], dtype=np.float64),
            mean_activation=float(values["mean_activation"]),
        )


def fit_layer_reference(
    layer: str, features: np.ndarray, labels: np.ndarray, n_classes: int
) -> LayerReference:
    """Class means and pooled within-class spread of ``(N, D)`` features with ``(N,)`` labels."""
    features = np.asarray(features, np.float64)
    means = np.stack(
        [
            features[labels == c].mean(axis=0) if (labels == c).any() else features.mean(axis=0)
            for c in range(n_classes)
        ]
    )
    centred = features - means[labels]
    # The floor keeps dead units (zero spread in training) from dominating the distance.
    scale = centred.std(axis=0) + 0.05 * (centred.std() + 1e-6)
    return LayerReference(layer, means, scale, float(np.abs(features).mean()))


def score_names(layers: Sequence[LayerReference]) -> tuple[str, ...]:
    """Column names of :func:`score_table`."""
    names = list(STAT_NAMES)
    for i in range(len(layers)):
        names += [f"layer{i}_distance", f"layer{i}_activation"]
    return tuple(names)


def score_table(
    stats: np.ndarray, features: Sequence[np.ndarray], layers: Sequence[LayerReference]
) -> np.ndarray:
    """The detector's input: ``(N, F)`` from input statistics and per-layer features.

    Args:
        stats: ``(N, len(STAT_NAMES))`` from :func:`~medviz.ood.features.input_statistics`.
        features: One ``(N, D_l)`` array per entry of ``layers``.
        layers: The detector's layer references.
    """
    if len(features) != len(layers):
        raise ModelError(f"got features of {len(features)} layers, the detector has {len(layers)}")
    columns = [np.asarray(stats, np.float64)]
    columns += [
        ref.scores(np.asarray(f, np.float64)) for ref, f in zip(layers, features, strict=True)
    ]
    return np.concatenate(columns, axis=1)


@dataclass(frozen=True)
class OodDetector:
    """Supervised and novelty scores over standardised measurements, with limits and rates.

    Attributes:
        layers: Per-layer training statistics.
        centre: ``(F,)`` in-domain mean of each measurement (for standardising).
        spread: ``(F,)`` in-domain standard deviation of each measurement.
        coef: ``(F,)`` logistic-regression weights on standardised measurements.
        intercept: Its intercept.
        lr_limit: Log-odds above which the supervised score flags an image.
        novelty_location: ``(F,)`` in-domain mean of the standardised measurements.
        novelty_precision: ``(F, F)`` inverse of their shrunk covariance.
        novelty_limit: Mahalanobis distance² above which an image is novel.
        rates: What :mod:`medviz.ood.fit` measured (false-flag and flag rates).
        version: Format version.
    """

    layers: tuple[LayerReference, ...]
    centre: np.ndarray
    spread: np.ndarray
    coef: np.ndarray
    intercept: float
    lr_limit: float
    novelty_location: np.ndarray
    novelty_precision: np.ndarray
    novelty_limit: float
    rates: dict[str, Any] = field(default_factory=dict)
    version: int = DETECTOR_VERSION

    limit: float = 0.0  # the combined score is relative to both limits (see score_from_table)

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Stored layer names (may contain the penultimate marker)."""
        return tuple(ref.layer for ref in self.layers)

    def parts_from_table(self, table: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(supervised log-odds (N,), novelty distance² (N,))`` from a ``(N, F)`` table."""
        if table.ndim != 2 or table.shape[1] != self.coef.shape[0]:
            raise ModelError(
                f"detector expects {self.coef.shape[0]} measurements per image, got {table.shape}"
            )
        z = np.clip((table - self.centre) / self.spread, -50, 50)
        d = z - self.novelty_location
        return z @ self.coef + self.intercept, np.einsum(
            "ij,jk,ik->i", d, self.novelty_precision, d
        )

    def score_from_table(self, table: np.ndarray) -> np.ndarray:
        """``(N,)`` combined scores; above :attr:`limit` (0) means out of distribution.

        The score is how far the image is past the nearer of the two limits:
        ``max(log-odds − lr_limit, ln(novelty / novelty_limit))``.
        """
        supervised, novelty = self.parts_from_table(table)
        return np.maximum(
            supervised - self.lr_limit, np.log(np.maximum(novelty, 1e-12) / self.novelty_limit)
        )

    def score(self, images: np.ndarray, features: Sequence[np.ndarray]) -> np.ndarray:
        """``(N,)`` scores from model inputs ``(N, S, S, C)`` and their layer features."""
        return self.score_from_table(score_table(input_statistics(images), features, self.layers))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "version": self.version,
            "method": "logistic regression (vs other modalities) OR Mahalanobis novelty, on input "
            "statistics and multi-layer feature distances",
            "score_names": list(score_names(self.layers)),
            "layers": [ref.to_dict() for ref in self.layers],
            "centre": np.round(self.centre, 6).tolist(),
            "spread": np.round(self.spread, 6).tolist(),
            "coef": np.round(self.coef, 6).tolist(),
            "intercept": float(self.intercept),
            "lr_limit": float(self.lr_limit),
            "novelty_location": np.round(self.novelty_location, 6).tolist(),
            "novelty_precision": np.round(self.novelty_precision, 6).tolist(),
            "novelty_limit": float(self.novelty_limit),
            "limit": float(self.limit),
            "rates": self.rates,
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> OodDetector:
        """Inverse of :meth:`to_dict`.

        Raises:
            ModelError: The stored detector is malformed or of a newer format.
        """
        try:
            version = int(values.get("version", DETECTOR_VERSION))
            if version > DETECTOR_VERSION:
                raise ModelError(
                    f"the card's OOD detector has format {version}; this MedViz reads up to "
                    f"{DETECTOR_VERSION}"
                )
            detector = cls(
                layers=tuple(LayerReference.from_dict(v) for v in values["layers"]),
                centre=np.asarray(values["centre"], np.float64),
                spread=np.asarray(values["spread"], np.float64),
                coef=np.asarray(values["coef"], np.float64),
                intercept=float(values["intercept"]),
                lr_limit=float(values["lr_limit"]),
                novelty_location=np.asarray(values["novelty_location"], np.float64),
                novelty_precision=np.asarray(values["novelty_precision"], np.float64),
                novelty_limit=float(values["novelty_limit"]),
                rates=dict(values.get("rates", {})),
                version=version,
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"malformed OOD detector in model card: {err}") from None
        n = len(score_names(detector.layers))
        shapes_ok = (
            detector.centre.shape == detector.spread.shape == detector.coef.shape == (n,)
            and detector.novelty_location.shape == (n,)
            and detector.novelty_precision.shape == (n, n)
        )
        if not shapes_ok:
            raise ModelError(
                f"malformed OOD detector in model card: {n} measurements expected, got "
                f"centre {detector.centre.shape}, spread {detector.spread.shape}, coef "
                f"{detector.coef.shape}, precision {detector.novelty_precision.shape}"
            )
        return detector


@dataclass(frozen=True)
class ClassifierFit:
    """Result of :func:`fit_classifier`.

    Attributes:
        centre: ``(F,)`` standardisation centre.
        spread: ``(F,)`` standardisation spread.
        coef: ``(F,)`` weights.
        intercept: Intercept.
        limit: Threshold on the log-odds.
        oof_in_domain: ``(N_in,)`` out-of-fold log-odds of the in-domain images.
    """

    centre: np.ndarray
    spread: np.ndarray
    coef: np.ndarray
    intercept: float
    limit: float
    oof_in_domain: np.ndarray


@dataclass(frozen=True)
class NoveltyFit:
    """Result of :func:`fit_novelty`.

    Attributes:
        location: ``(F,)`` mean of the standardised in-domain measurements.
        precision: ``(F, F)`` inverse shrunk covariance.
        limit: Threshold on the Mahalanobis distance².
        oof_in_domain: ``(N_in,)`` out-of-fold distances² of the in-domain images.
    """

    location: np.ndarray
    precision: np.ndarray
    limit: float
    oof_in_domain: np.ndarray


def _mahalanobis(z: np.ndarray, location: np.ndarray, precision: np.ndarray) -> np.ndarray:
    d = z - location
    return np.einsum("ij,jk,ik->i", d, precision, d)


def fit_novelty(
    z_in: np.ndarray, *, target_rate: float = 0.01, n_folds: int = 5, seed: int = 0
) -> NoveltyFit:
    """Ledoit-Wolf Gaussian of standardised in-domain measurements ``(N, F)``, limit out-of-fold.

    Args:
        z_in: Standardised in-domain measurements.
        target_rate: Fraction of in-domain images allowed above the limit.
        n_folds: Folds for the out-of-fold distances.
        seed: Fold assignment seed.
    """
    from sklearn.covariance import LedoitWolf

    fold = np.random.default_rng(seed + 1).permutation(len(z_in)) % n_folds
    oof = np.zeros(len(z_in))
    for k in range(n_folds):
        model = LedoitWolf().fit(z_in[fold != k])
        oof[fold == k] = _mahalanobis(z_in[fold == k], model.location_, model.precision_)
    model = LedoitWolf().fit(z_in)
    limit = float(np.quantile(oof, 1.0 - target_rate))
    return NoveltyFit(model.location_, model.precision_, limit, oof)


def _logistic(x: np.ndarray, y: np.ndarray, w: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(C=c, max_iter=5000)
    clf.fit(x, y, sample_weight=w)
    return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def _weights(n_in: int, groups: np.ndarray) -> np.ndarray:
    """In-domain images weigh 1; every foreign source together weighs as much, split evenly."""
    names, counts = np.unique(groups, return_counts=True)
    per = {name: n_in / (len(names) * count) for name, count in zip(names, counts, strict=True)}
    return np.concatenate([np.ones(n_in), np.array([per[g] for g in groups])])


def fit_classifier(
    in_domain: np.ndarray,
    foreign: np.ndarray,
    groups: np.ndarray,
    *,
    target_rate: float = 0.02,
    c: float = 0.3,
    n_folds: int = 5,
    seed: int = 0,
) -> ClassifierFit:
    """Fit the logistic regression and choose its limit on out-of-fold in-domain scores.

    Args:
        in_domain: ``(N_in, F)`` score tables of the model's own (validation) images.
        foreign: ``(N_out, F)`` score tables of foreign images.
        groups: ``(N_out,)`` source name of each foreign row (each source gets
            equal weight, so a big source cannot drown a small one).
        target_rate: Fraction of in-domain images allowed above the limit.
        c: Inverse L2 regularisation strength.
        n_folds: Folds for the out-of-fold in-domain scores.
        seed: Fold assignment seed.

    Raises:
        ModelError: Too few images to fit.
    """
    if len(in_domain) < 2 * n_folds or len(foreign) < n_folds:
        raise ModelError(
            f"need at least {2 * n_folds} in-domain and {n_folds} foreign images to fit the "
            f"OOD detector, got {len(in_domain)} and {len(foreign)}"
        )
    centre = in_domain.mean(axis=0)
    spread = in_domain.std(axis=0) + 1e-6
    z_in = np.clip((in_domain - centre) / spread, -50, 50)
    z_out = np.clip((foreign - centre) / spread, -50, 50)
    x = np.concatenate([z_in, z_out])
    y = np.concatenate([np.zeros(len(z_in)), np.ones(len(z_out))])
    w = _weights(len(z_in), np.asarray(groups))
    rng = np.random.default_rng(seed)
    fold = np.concatenate(
        [rng.permutation(len(z_in)) % n_folds, rng.permutation(len(z_out)) % n_folds]
    )
    oof = np.zeros(len(z_in))
    for k in range(n_folds):
        train = fold != k
        coef, intercept = _logistic(x[train], y[train], w[train], c)
        held = np.flatnonzero((fold == k)[: len(z_in)])
        oof[held] = z_in[held] @ coef + intercept
    coef, intercept = _logistic(x, y, w, c)
    limit = float(np.quantile(oof, 1.0 - target_rate))
    return ClassifierFit(centre, spread, coef, intercept, limit, oof)
