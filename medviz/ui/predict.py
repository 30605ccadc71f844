"""One image in, the answer and the reason out: prediction, Grad-CAM and trust warnings.

This is glue between :mod:`medviz.store` (card: size, channels, temperature,
threshold, reference statistics), :mod:`medviz.explain` (the cached, compiled
:class:`~medviz.explain.Explainer`) and :mod:`medviz.ood`. It uses only the
Explainer's compiled functions, so after :func:`warm_up` a 64×64 model answers
with prediction, Grad-CAM and the out-of-distribution score in milliseconds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medviz.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import DecodedImage
    from medviz.explain import Explainer
    from medviz.store import ModelBundle, ModelCard

log = logging.getLogger(__name__)

# DICOM Modality (0008,0060) codes → words a model card's ``modality`` contains.
MODALITY_WORDS: dict[str, tuple[str, ...]] = {
    "MG": ("mammo",),
    "CR": ("x-ray", "xray", "radiograph"),
    "DX": ("x-ray", "xray", "radiograph"),
    "RG": ("x-ray", "xray", "radiograph"),
    "CT": ("ct", "computed tomography"),
    "MR": ("mri", "mr ", "magnetic resonance"),
    "US": ("ultrasound", "sonograph"),
    "PT": ("pet",),
    "NM": ("nuclear", "scintigraph"),
    "XA": ("angiograph",),
    "OP": ("fundus", "ophthalm"),
    "SM": ("patholog", "histolog", "microscop"),
}
MODALITY_NAMES = {
    "MG": "mammography",
    "CR": "computed radiography (X-ray)",
    "DX": "digital radiography (X-ray)",
    "RG": "radiography (X-ray)",
    "CT": "CT",
    "MR": "MRI",
    "US": "ultrasound",
    "PT": "PET",
    "NM": "nuclear medicine",
    "XA": "X-ray angiography",
    "OP": "ophthalmic photography",
    "SM": "slide microscopy",
}
# Display-only DICOM fields (decode_image's meta is already an allow-list without identifiers).
DICOM_DISPLAY_FIELDS = (
    "modality",
    "photometric_interpretation",
    "window",
    "rescale",
    "frames",
    "frame_used",
    "bits_stored",
    "transfer_syntax",
)


@dataclass(frozen=True, eq=False)
class Classification:
    """Everything the Classify page shows for one image.

    Attributes:
        name: File or example name.
        original: ``(H, W)`` or ``(H, W, 3)`` decoded pixels at native size.
        model_input: ``(S, S, C)`` uint8 image as the model sees it.
        class_names: The model's classes.
        probabilities: ``(K,)`` calibrated probabilities (card temperature applied).
        predicted: Decided class (card threshold for binary models, else argmax).
        heatmap: ``(S, S)`` Grad-CAM of the predicted class, in ``[0, 1]``.
        layer: The explained layer.
        ood_distance: Distance of the image's penultimate features to the training
            classes (``None`` when the card has no reference statistics).
        ood_threshold: The card's 99th-percentile training distance.
        mode: Stored mode, e.g. ``"L"`` or ``"DICOM:MONOCHROME2"``.
        meta: Display-safe decoding information (never patient identifiers).
        warnings: Sentences the page must show before the answer.
        seconds: Wall time of prediction + Grad-CAM + OOD score.
    """

    name: str
    original: np.ndarray
    model_input: np.ndarray
    class_names: tuple[str, ...]
    probabilities: np.ndarray
    predicted: int
    heatmap: np.ndarray
    layer: str
    ood_distance: float | None
    ood_threshold: float | None
    mode: str
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def label(self) -> str:
        """Name of the predicted class."""
        return self.class_names[self.predicted]

    @property
    def confidence(self) -> float:
        """Calibrated probability of the predicted class."""
        return float(self.probabilities[self.predicted])

    @property
    def is_ood(self) -> bool:
        """Whether the image looks unlike the training data."""
        return (
            self.ood_distance is not None
            and self.ood_threshold is not None
            and self.ood_distance > self.ood_threshold
        )

    def row(self) -> dict[str, Any]:
        """One row of the results table (CSV)."""
        out: dict[str, Any] = {
            "file": self.name,
            "prediction": self.label,
            "confidence": round(self.confidence, 4),
        }
        for name, p in zip(self.class_names, self.probabilities, strict=True):
            out[f"P({name})"] = round(float(p), 4)
        out["ood_score"] = None if self.ood_distance is None else round(self.ood_distance, 3)
        out["unlike_training_data"] = self.is_ood
        out["warnings"] = " | ".join(self.warnings)
        out["error"] = ""
        return out


def penultimate_layer(model) -> str | None:
    """Name of the layer whose output feeds the classification layer (``None`` if unclear)."""
    head = model.layers[-1]
    try:
        feeding = head.input
    except (AttributeError, ValueError):
        return None
    for layer in reversed(model.layers[:-1]):
        try:
            if layer.output is feeding:
                return layer.name
        except (AttributeError, ValueError):
            continue
    return None


def _features(explainer: Explainer, x: np.ndarray) -> np.ndarray:
    name = penultimate_layer(explainer.model)
    if name is not None:
        return explainer.features(x, layer=name).reshape(len(x), -1)
    from medviz.inference import penultimate_features

    return penultimate_features(explainer.model, x.astype(np.uint8))


def warm_up(explainer: Explainer, card: ModelCard) -> None:
    """Trace the compiled functions once so that the first user waits no longer than the next."""
    try:
        image = np.zeros((card.image_size, card.image_size, card.channels), np.uint8)
        x = explainer.prepare(image)
        explainer.predict(x)
        explainer.explain(image, method="gradcam", class_index=0)
        _features(explainer, x)
    except Exception:  # warming is an optimisation; a real call reports real errors
        log.warning("warm-up of %s failed", card.name, exc_info=True)


def modality_warning(meta: dict[str, Any], card: ModelCard) -> str | None:
    """A sentence when a DICOM's Modality does not match the model's training modality."""
    if meta.get("format") != "DICOM":
        return None
    code = str(meta.get("modality") or "").strip().upper()
    expected = (card.modality or "").strip()
    if not code or expected.lower() in ("", "unknown"):
        return None
    words = MODALITY_WORDS.get(code)
    name = MODALITY_NAMES.get(code, code)
    if words is None:
        return (
            f"This DICOM's modality is {code}, which MedViz cannot match to the model's "
            f"modality ({expected}); make sure it is the kind of image the model was trained on."
        )
    haystack = f" {expected.lower()} "
    if any(w in haystack for w in words):
        return None
    return (
        f"This DICOM is {name} (Modality {code}) but the model was trained on {expected} "
        "images: its answer says nothing about this image."
    )


def display_meta(decoded: DecodedImage) -> dict[str, Any]:
    """Decoding information safe to show (DICOM: modality, windowing … — no identifiers)."""
    meta = decoded.meta
    if meta.get("format") == "DICOM":
        shown = {k: meta[k] for k in DICOM_DISPLAY_FIELDS if meta.get(k) is not None}
    else:
        shown = {k: v for k, v in meta.items() if k in ("format", "frames", "exif_orientation")}
        if "alpha" in meta:
            shown["transparency"] = meta["alpha"]
        if "intensity_range" in meta:
            shown["intensity_range"] = meta["intensity_range"]
    shown["stored mode"] = decoded.mode
    shown["size"] = f"{decoded.size[0]}×{decoded.size[1]}"
    return shown


def classify(
    bundle: ModelBundle, explainer: Explainer, decoded: DecodedImage, *, name: str
) -> Classification:
    """Predict, explain (Grad-CAM of the decided class) and check one decoded image.

    Raises:
        DataError: The pixels cannot be turned into the model's input.
    """
    from medviz.data import to_model_input
    from medviz.inference import calibrated_probabilities
    from medviz.ood import ReferenceStats, distances

    card = bundle.card
    started = time.perf_counter()
    x_uint8 = to_model_input(decoded.pixels, image_size=card.image_size, channels=card.channels)
    x = explainer.prepare(x_uint8)
    probs = calibrated_probabilities(explainer.predict(x), card.temperature)
    predicted = int(bundle.decide(probs)[0])
    explanation = explainer.explain(x_uint8, method="gradcam", class_index=predicted)
    distance = threshold = None
    if card.reference:
        stats = ReferenceStats.from_dict(card.reference)
        feats = _features(explainer, x)
        if feats.shape[1] == stats.scale.shape[0]:
            distance = float(distances(feats, stats)[0])
            threshold = float(stats.threshold)
    seconds = time.perf_counter() - started

    warnings = []
    mismatch = modality_warning(decoded.meta, card)
    if mismatch:
        warnings.append(mismatch)
    if distance is not None and threshold is not None and distance > threshold:
        warnings.append(
            f"This image looks unlike the model's training data (feature distance "
            f"{distance:.2f} > {threshold:.2f}, the {card.reference.get('percentile', 99):.0f}th "
            "percentile of the training images): do not trust the answer."
        )
    return Classification(
        name=name,
        original=np.asarray(decoded.pixels),
        model_input=x_uint8,
        class_names=tuple(card.class_names),
        probabilities=np.asarray(probs[0], np.float64),
        predicted=predicted,
        heatmap=explanation.heatmap,
        layer=explanation.layer or "",
        ood_distance=distance,
        ood_threshold=threshold,
        mode=decoded.mode,
        meta=display_meta(decoded),
        warnings=tuple(warnings),
        seconds=seconds,
    )


def decode_upload(data: bytes, *, name: str, max_mb: int) -> DecodedImage:
    """Decode an uploaded image, refusing files over ``max_mb`` megabytes.

    Raises:
        DataError: Too large, empty, or not a supported image.
    """
    from medviz.data import decode_image

    if len(data) > max_mb * 1024 * 1024:
        raise DataError(
            f"{name}: the file is {len(data) / 1e6:.1f} MB; at most {max_mb} MB are accepted"
        )
    return decode_image(data, name=name)
