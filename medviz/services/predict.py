"""One image in, the answer and the reason out: the predict path of the app AND the CLI.

The Classify page and ``python -m medviz predict`` both call :func:`classify`
(the Explain page :func:`predict_image`), so calibrated probabilities, the
operating threshold, the out-of-distribution check and the DICOM modality
warning are computed in one place. It uses only the
:class:`~medviz.explain.Explainer`'s compiled functions, so after
:func:`warm_up` a 64×64 model answers with prediction, Grad-CAM and the
out-of-distribution score in milliseconds.

The OOD check prefers the card's fitted detector (``card.ood``, see
:mod:`medviz.ood.detector`) and falls back to the older penultimate-distance
statistics (``card.reference``) for cards written before it existed.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medviz.errors import ModelError
from medviz.explain.mirror import mirror_default
from medviz.ood.features import penultimate_layer, pool, resolve_layer

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import DecodedImage
    from medviz.explain import Explainer
    from medviz.ood.detector import OodDetector
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


@dataclass(frozen=True)
class OodCheck:
    """The out-of-distribution verdict on one image.

    Attributes:
        score: The card's OOD score of the image (``None``: no check possible).
        limit: Scores above it are out of distribution.
        flagged: Whether the image looks unlike the training data.
        method: ``"detector"`` (fitted by ``medviz fit-ood``), ``"reference"``
            (older penultimate distance) or ``"none"``.
        message: The warning sentence when flagged, or why no check was made.
    """

    score: float | None = None
    limit: float | None = None
    flagged: bool = False
    method: str = "none"
    message: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The warning fields both front ends report (CLI JSON, CSV)."""
        return {
            "ood": self.flagged,
            "ood_score": None if self.score is None else round(self.score, 4),
            "ood_limit": None if self.limit is None else round(self.limit, 4),
            "ood_method": self.method,
            "ood_message": self.message,
        }


@dataclass(frozen=True, eq=False)
class Classification:
    """Everything the Classify page and ``medviz predict`` report for one image.

    Attributes:
        name: File or example name.
        original: ``(H, W)`` or ``(H, W, 3)`` decoded pixels at native size.
        model_input: ``(S, S, C)`` uint8 image as the model sees it.
        class_names: The model's classes.
        probabilities: ``(K,)`` calibrated probabilities (card temperature applied).
        predicted: Decided class (card threshold for binary models, else argmax).
        heatmap: ``(S, S)`` Grad-CAM of the predicted class in ``[0, 1]``
            (``None`` when not asked for).
        layer: The explained layer (``""`` without a heatmap).
        ood: The out-of-distribution check.
        mode: Stored mode, e.g. ``"L"`` or ``"DICOM:MONOCHROME2"``.
        meta: Display-safe decoding information (never patient identifiers).
        warnings: Sentences the front end must show before the answer.
        seconds: Wall time of prediction + Grad-CAM + OOD score.
    """

    name: str
    original: np.ndarray
    model_input: np.ndarray
    class_names: tuple[str, ...]
    probabilities: np.ndarray
    predicted: int
    heatmap: np.ndarray | None
    layer: str
    ood: OodCheck
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
    def ood_distance(self) -> float | None:
        """The OOD score (``None`` when the card allows no check)."""
        return self.ood.score

    @property
    def ood_threshold(self) -> float | None:
        """The OOD limit."""
        return self.ood.limit

    @property
    def is_ood(self) -> bool:
        """Whether the image looks unlike the training data."""
        return self.ood.flagged

    def row(self) -> dict[str, Any]:
        """One row of the Classify page's results table (CSV)."""
        out: dict[str, Any] = {
            "file": self.name,
            "prediction": self.label,
            "confidence": round(self.confidence, 4),
        }
        for name, p in zip(self.class_names, self.probabilities, strict=True):
            out[f"P({name})"] = round(float(p), 4)
        out["ood_score"] = None if self.ood.score is None else round(self.ood.score, 3)
        out["unlike_training_data"] = self.is_ood
        out["warnings"] = " | ".join(self.warnings)
        out["error"] = ""
        return out

    def to_json(self) -> dict[str, Any]:
        """One ``medviz predict --json`` line: the answer and the same warnings as Classify."""
        return {
            "file": self.name,
            "prediction": self.label,
            "probabilities": {
                n: round(float(p), 6)
                for n, p in zip(self.class_names, self.probabilities, strict=True)
            },
            **self.ood.to_dict(),
            "warnings": list(self.warnings),
        }


# Parsed detectors by card identity: parsing a few thousand numbers per image is wasted work.
_DETECTORS: dict[int, tuple[dict, OodDetector]] = {}
_DETECTORS_LOCK = threading.Lock()


def card_detector(card: ModelCard) -> OodDetector | None:
    """The card's fitted OOD detector (``None`` for cards without one).

    Raises:
        ModelError: The stored detector is malformed.
    """
    if not card.ood:
        return None
    from medviz.ood.detector import OodDetector

    key = id(card.ood)
    with _DETECTORS_LOCK:
        cached = _DETECTORS.get(key)
        if cached is not None and cached[0] is card.ood:
            return cached[1]
    detector = OodDetector.from_dict(card.ood)
    with _DETECTORS_LOCK:
        if len(_DETECTORS) > 16:
            _DETECTORS.clear()
        _DETECTORS[key] = (card.ood, detector)
    return detector


def _penultimate(explainer: Explainer, x: np.ndarray) -> np.ndarray:
    name = penultimate_layer(explainer.model)
    if name is not None:
        return explainer.features(x, layer=name).reshape(len(x), -1)
    from medviz.inference import penultimate_features

    return penultimate_features(explainer.model, x.astype(np.uint8))


def _detector_check(detector: OodDetector, explainer: Explainer, x: np.ndarray) -> OodCheck:
    features = [
        pool(explainer.features(x, layer=resolve_layer(explainer.model, name)))
        for name in detector.layer_names
    ]
    score = float(detector.score(x, features)[0])
    flagged = score > detector.limit
    message = None
    if flagged:
        rate = detector.rates.get("in_domain_test")
        measured = f"; the check flags {rate:.1%} of held-out in-domain images" if rate else ""
        message = (
            f"This image looks unlike the model's training data (OOD score {score:.2f}, limit "
            f"{detector.limit:.2f}{measured}): do not trust the answer."
        )
    return OodCheck(score, float(detector.limit), flagged, "detector", message)


def _reference_check(card: ModelCard, explainer: Explainer, x: np.ndarray) -> OodCheck:
    from medviz.ood.reference import ReferenceStats, distances

    stats = ReferenceStats.from_dict(card.reference)
    feats = _penultimate(explainer, x)
    if feats.shape[1] != stats.scale.shape[0]:
        return OodCheck(
            message="The card's reference statistics do not match this model: no "
            "out-of-distribution check."
        )
    distance = float(distances(feats, stats)[0])
    threshold = float(stats.threshold)
    flagged = distance > threshold
    message = None
    if flagged:
        message = (
            f"This image looks unlike the model's training data (feature distance "
            f"{distance:.2f} > {threshold:.2f}, the {stats.percentile:.0f}th percentile of the "
            "training images): do not trust the answer."
        )
    return OodCheck(distance, threshold, flagged, "reference", message)


def ood_check(card: ModelCard, explainer: Explainer, x: np.ndarray) -> OodCheck:
    """Out-of-distribution verdict on one prepared image ``(1, S, S, C)`` float32 in 0–255.

    Uses the card's fitted detector when it has one, else its reference
    statistics, else reports that no check is possible. A detector that does
    not fit the model (e.g. the model was retrained and ``fit-ood`` not re-run)
    is reported, not raised: the prediction itself is still valid.
    """
    try:
        detector = card_detector(card)
        if detector is not None:
            return _detector_check(detector, explainer, x)
    except ModelError as err:
        log.warning("OOD detector of %s unusable: %s", card.name, err)
        if not card.reference:
            return OodCheck(
                message=f"The card's out-of-distribution detector does not fit this model "
                f"({err}); run `python -m medviz fit-ood --model <folder> --write-card`."
            )
    if card.reference:
        return _reference_check(card, explainer, x)
    return OodCheck(message="This model card has no out-of-distribution statistics: no check.")


def warm_up(explainer: Explainer, card: ModelCard) -> None:
    """Trace the compiled functions once so that the first user waits no longer than the next."""
    try:
        image = np.zeros((card.image_size, card.image_size, card.channels), np.uint8)
        x = explainer.prepare(image)
        explainer.predict(x)
        explainer.explain(image, method="gradcam", class_index=0)
        ood_check(card, explainer, x)
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


def _decide(bundle: ModelBundle, explainer: Explainer, x: np.ndarray) -> tuple[np.ndarray, int]:
    from medviz.inference import calibrated_probabilities

    probs = calibrated_probabilities(explainer.predict(x), bundle.card.temperature)
    return probs[0], int(bundle.decide(probs)[0])


def predict_image(
    bundle: ModelBundle, explainer: Explainer, image: np.ndarray
) -> tuple[np.ndarray, int]:
    """The calibrated answer for one image at the model's input size (as :func:`classify`).

    Args:
        bundle: The model and its card (temperature, threshold).
        explainer: The model's :class:`~medviz.explain.Explainer`.
        image: ``(S, S, C)`` (or ``(1, S, S, C)``) raw pixels in 0–255.

    Returns:
        ``(probabilities, predicted)``: the ``(K,)`` temperature-calibrated
        probabilities and the decided class (card threshold for binary models,
        else argmax), so a page never shows two answers for one image.

    Raises:
        DataError: ``image`` does not fit the model's input.
    """
    return _decide(bundle, explainer, explainer.prepare(image))


def classify(
    bundle: ModelBundle,
    explainer: Explainer,
    decoded: DecodedImage,
    *,
    name: str,
    heatmap: bool = True,
) -> Classification:
    """Predict, explain (Grad-CAM of the decided class) and check one decoded image.

    The Grad-CAM is mirror-averaged when the model was trained with left-right
    flips (:func:`medviz.explain.mirror.mirror_default`).

    Args:
        bundle: The model and its card.
        explainer: The model's :class:`~medviz.explain.Explainer` (warmed up once).
        decoded: The decoded image.
        name: File or example name, for the result and its messages.
        heatmap: Compute the Grad-CAM heatmap (the CLI does not need it).

    Raises:
        DataError: The pixels cannot be turned into the model's input.
    """
    from medviz.data import to_model_input

    card = bundle.card
    started = time.perf_counter()
    x_uint8 = to_model_input(decoded.pixels, image_size=card.image_size, channels=card.channels)
    x = explainer.prepare(x_uint8)
    probs, predicted = _decide(bundle, explainer, x)
    explained, layer = None, ""
    if heatmap:
        explanation = explainer.explain(
            x_uint8,
            method="gradcam",
            class_index=predicted,
            mirror=mirror_default(card.training),
        )
        explained, layer = explanation.heatmap, explanation.layer or ""
    ood = ood_check(card, explainer, x)
    seconds = time.perf_counter() - started

    warnings = []
    mismatch = modality_warning(decoded.meta, card)
    if mismatch:
        warnings.append(mismatch)
    if ood.flagged and ood.message:
        warnings.append(ood.message)
    return Classification(
        name=name,
        original=np.asarray(decoded.pixels),
        model_input=x_uint8,
        class_names=tuple(card.class_names),
        probabilities=np.asarray(probs, np.float64),
        predicted=predicted,
        heatmap=explained,
        layer=layer,
        ood=ood,
        mode=decoded.mode,
        meta=display_meta(decoded),
        warnings=tuple(warnings),
        seconds=seconds,
    )
