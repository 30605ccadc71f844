"""Stress test: how accuracy and AUC fall under controlled image shifts (compute only).

A model that scores well on an in-distribution split can still fail on images
from another scanner or site. This module degrades a sample of images in
controlled, seeded ways — contrast, gamma, blur, noise, JPEG compression,
lower resolution, small rotations, crops — at severities 1–5 (0 = the clean
image) and measures the model at each level with the same probabilities and
operating threshold as everywhere else (the card's temperature and threshold).

Every shift maps ``(N, H, W, C)`` uint8 images (C = 1 or 3) to uint8 images of
the same shape and needs only NumPy, SciPy and Pillow. Crop and resolution are
fractions of the image side; blur is in pixels of the model input, because a
blur below half a pixel changes nothing the model can see at any size.
Draw the result with :func:`medviz.plots.stress_figure`.

Why one module (over 600 lines): the eight shifts, their severity grid and the
runner that applies them form one table; a shift is a few lines and is only
meaningful next to the others.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from medviz.errors import DataError, MedvizError
from medviz.inference import predict_proba
from medviz.metrics import apply_temperature, evaluate, logits_from_probabilities

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data.dataset import Dataset
    from medviz.store import ModelBundle

SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
"""Severity levels of every shift; severity 0 is the clean image."""

DEFAULT_MAX_IMAGES = 200
"""Images sampled by default: about ten seconds for a small CNN on two CPU cores."""

# Float inputs held in memory by one predict call (about 256 MB of float32).
_PREDICT_BUDGET = 64_000_000


# --------------------------------------------------------------------------- #
# Shifts
# --------------------------------------------------------------------------- #


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _pil(image: np.ndarray):
    """``(H, W, C)`` uint8 → a Pillow image (``L`` for one channel, else ``RGB``)."""
    from PIL import Image

    return Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)


def _from_pil(picture, channels: int) -> np.ndarray:
    array = np.asarray(picture, dtype=np.uint8)
    return array[..., None] if channels == 1 else array


def _contrast(images: np.ndarray, kept: float, rng: np.random.Generator) -> np.ndarray:
    # Scale each image's deviation from its own mean: the brightness stays, the contrast goes.
    x = images.astype(np.float32)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return _to_uint8(mean + (x - mean) * kept)


def _gamma(images: np.ndarray, gamma: float, rng: np.random.Generator) -> np.ndarray:
    lut = _to_uint8(255.0 * (np.arange(256) / 255.0) ** gamma)
    return lut[images]


def _blur(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return _to_uint8(
        gaussian_filter(images.astype(np.float32), sigma=(0, sigma, sigma, 0), mode="reflect")
    )


def _noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return _to_uint8(images + rng.normal(0.0, sigma, images.shape))


def _jpeg(images: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    import io

    from PIL import Image

    out = np.empty_like(images)
    for i, image in enumerate(images):
        buffer = io.BytesIO()
        _pil(image).save(buffer, format="JPEG", quality=int(quality))
        buffer.seek(0)
        with Image.open(buffer) as decoded:  # L stays L, RGB stays RGB
            out[i] = _from_pil(decoded, images.shape[-1])
    return out


def _resolution(images: np.ndarray, kept: float, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    height, width, channels = images.shape[1:]
    small = (max(2, round(width * kept)), max(2, round(height * kept)))
    out = np.empty_like(images)
    for i, image in enumerate(images):
        # Pillow's bilinear filter widens its support when shrinking: an antialiased
        # downsample, like a detector with larger pixels, then a plain upsample.
        down = _pil(image).resize(small, Image.Resampling.BILINEAR)
        out[i] = _from_pil(down.resize((width, height), Image.Resampling.BILINEAR), channels)
    return out


def _rotation(images: np.ndarray, degrees: float, rng: np.random.Generator) -> np.ndarray:
    from scipy.ndimage import rotate

    # Half the images turn each way, so the shift has no preferred direction.
    signs = rng.choice((-1.0, 1.0), size=len(images))
    out = np.empty_like(images)
    for i, image in enumerate(images):
        # Reflected borders: black corners would be a new, easy cue of their own.
        turned = rotate(
            image.astype(np.float32),
            signs[i] * degrees,
            axes=(1, 0),
            reshape=False,
            order=1,
            mode="reflect",
        )
        out[i] = _to_uint8(turned)
    return out


def _crop(images: np.ndarray, kept: float, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image

    height, width, channels = images.shape[1:]
    crop_h, crop_w = max(2, round(height * kept)), max(2, round(width * kept))
    top, left = (height - crop_h) // 2, (width - crop_w) // 2
    box = (left, top, left + crop_w, top + crop_h)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        zoomed = _pil(image).resize((width, height), Image.Resampling.BILINEAR, box=box)
        out[i] = _from_pil(zoomed, channels)
    return out


@dataclass(frozen=True)
class Shift:
    """One controlled image shift.

    Attributes:
        name: Key, e.g. ``"blur"``.
        title: Human name with its parameter, for tables and legends.
        parameter: What ``levels`` measure.
        levels: The parameter at severities 1–5 (more severe to the right).
    """

    name: str
    title: str
    parameter: str
    levels: tuple[float, ...]
    apply: Callable[[np.ndarray, float, np.random.Generator], np.ndarray]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (without the function)."""
        return {"title": self.title, "parameter": self.parameter, "levels": list(self.levels)}


_SHIFT_LIST = (
    Shift("contrast", "Lower contrast", "share of contrast kept", (0.8, 0.65, 0.5, 0.35, 0.2),
          _contrast),
    Shift("gamma", "Gamma (darker mid-tones)", "gamma", (1.25, 1.5, 1.8, 2.2, 2.7), _gamma),
    Shift("blur", "Gaussian blur", "sigma, pixels", (0.5, 0.75, 1.0, 1.5, 2.0), _blur),
    Shift("noise", "Gaussian noise", "sigma, grey levels", (4.0, 8.0, 12.0, 18.0, 26.0), _noise),
    Shift("jpeg", "JPEG compression", "JPEG quality", (80.0, 60.0, 40.0, 25.0, 10.0), _jpeg),
    Shift("resolution", "Lower resolution", "share of the side kept",
          (0.75, 0.6, 0.45, 0.35, 0.25), _resolution),
    Shift("rotation", "Small rotation", "degrees, either way", (2.0, 4.0, 6.0, 8.0, 10.0),
          _rotation),
    Shift("crop", "Crop (zoom in)", "share of the side kept", (0.95, 0.9, 0.85, 0.8, 0.7), _crop),
)  # fmt: skip
SHIFTS: dict[str, Shift] = {s.name: s for s in _SHIFT_LIST}
"""Every shift, by name, in report order."""

DEFAULT_SHIFTS: tuple[str, ...] = tuple(SHIFTS)


def _check_images(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(
            f"stress shifts take uint8 images (N, H, W, C) with C = 1 or 3, got "
            f"{images.dtype} {images.shape}"
        )
    return images


def _check_shift(shift: str) -> Shift:
    if shift not in SHIFTS:
        raise MedvizError(f"unknown shift {shift!r}; choose from {list(SHIFTS)}")
    return SHIFTS[shift]


def _check_severity(severity: int) -> int:
    if isinstance(severity, bool) or not isinstance(severity, int | np.integer):
        raise MedvizError(f"severity must be an integer 0–5, got {severity!r}")
    if not 0 <= int(severity) <= len(SEVERITIES):
        raise MedvizError(f"severity must lie in 0–{len(SEVERITIES)}, got {severity}")
    return int(severity)


def apply_shift(images: np.ndarray, shift: str, severity: int, *, seed: int = 0) -> np.ndarray:
    """Apply one shift at one severity.

    Args:
        images: ``(N, H, W, C)`` uint8 images, ``C`` 1 or 3.
        shift: A key of :data:`SHIFTS`.
        severity: 0 (unchanged) to 5 (strongest).
        seed: Seed of the random parts (noise, rotation direction); the same
            seed, shift and severity always give the same images.

    Returns:
        ``(N, H, W, C)`` uint8 shifted images (a copy; the input is not changed).

    Raises:
        DataError: ``images`` is not a uint8 ``(N, H, W, C)`` batch with 1 or 3 channels.
        MedvizError: Unknown shift or severity outside 0–5.
    """
    images = _check_images(images)
    spec = _check_shift(shift)
    severity = _check_severity(severity)
    if severity == 0 or len(images) == 0:
        return images.copy()
    # One stream per (seed, shift, severity): asking for fewer shifts never changes the others.
    rng = np.random.default_rng([int(seed), list(SHIFTS).index(shift), severity])
    return spec.apply(images, spec.levels[severity - 1], rng)


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #


def _json_float(value: float | None) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass(frozen=True, eq=False)
class StressReport:
    """Accuracy and AUC of one model under every shift and severity.

    Attributes:
        class_names: ``K`` class names.
        shifts: ``S`` shift names (keys of :data:`SHIFTS`).
        severities: ``V`` severities (from 1–5).
        accuracy: ``(S, V)`` accuracy at the operating threshold (argmax for
            more than two classes).
        auc: ``(S, V)`` AUC (binary) or macro one-vs-rest AUC; ``nan`` when
            a class is absent from the sample.
        clean_accuracy: Accuracy on the unshifted sample (severity 0).
        clean_auc: AUC on the unshifted sample.
        n: Images in the sample.
        n_available: Images the sample was drawn from.
        seed: Seed of the sample and of the shifts.
        temperature: Calibration temperature applied to the probabilities.
        threshold: Binary operating threshold on ``P(class 1)``; ``None`` = argmax.
        seconds: Wall time of the whole test.
        split: Split the images came from (``""`` when not known).
        dataset: Dataset name (``""`` when not known).
    """

    class_names: tuple[str, ...]
    shifts: tuple[str, ...]
    severities: tuple[int, ...]
    accuracy: np.ndarray
    auc: np.ndarray
    clean_accuracy: float
    clean_auc: float
    n: int
    n_available: int
    seed: int
    temperature: float
    threshold: float | None
    seconds: float
    split: str = ""
    dataset: str = ""

    @property
    def mean_accuracy(self) -> np.ndarray:
        """``(S,)`` accuracy of each shift averaged over its severities."""
        return self.accuracy.mean(axis=1)

    @property
    def worst_shift(self) -> str:
        """The shift with the lowest mean accuracy over its severities (ties: lower AUC)."""
        auc = np.nan_to_num(self.auc.mean(axis=1), nan=np.inf)
        order = np.lexsort((auc, self.mean_accuracy))
        return self.shifts[int(order[0])]

    def rows(self) -> list[dict[str, Any]]:
        """One JSON-ready row per shift and severity (the table behind the figure)."""
        out = []
        for i, name in enumerate(self.shifts):
            spec = SHIFTS[name]
            for j, severity in enumerate(self.severities):
                out.append(
                    {
                        "shift": name,
                        "severity": severity,
                        "parameter": spec.levels[severity - 1],
                        "accuracy": _json_float(self.accuracy[i, j]),
                        "auc": _json_float(self.auc[i, j]),
                        "accuracy_drop": _json_float(self.clean_accuracy - self.accuracy[i, j]),
                    }
                )
        return out

    def summary(self) -> dict[str, Any]:
        """The headline figures: clean level, worst shift, each shift at its strongest level."""
        worst = self.shifts.index(self.worst_shift)
        return {
            "n": int(self.n),
            "clean_accuracy": _json_float(self.clean_accuracy),
            "clean_auc": _json_float(self.clean_auc),
            "worst_shift": self.worst_shift,
            "worst_mean_accuracy": _json_float(self.mean_accuracy[worst]),
            "at_max_severity": {
                name: {
                    "accuracy": _json_float(self.accuracy[i, -1]),
                    "auc": _json_float(self.auc[i, -1]),
                }
                for i, name in enumerate(self.shifts)
            },
            "seconds": round(float(self.seconds), 2),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (what a model card's ``stress`` field holds).

        Returns:
            Keys ``dataset``, ``split``, ``n``, ``n_available``, ``seed``,
            ``classes``, ``threshold``, ``temperature``, ``seconds``,
            ``severities``, ``clean`` (``accuracy``, ``auc``), ``shifts``
            (per shift: ``title``, ``parameter``, ``levels``, ``accuracy``,
            ``auc`` — lists over ``severities``) and ``worst``. Undefined
            values are ``None``.
        """
        worst = self.shifts.index(self.worst_shift)
        return {
            "dataset": self.dataset,
            "split": self.split,
            "n": int(self.n),
            "n_available": int(self.n_available),
            "seed": int(self.seed),
            "classes": list(self.class_names),
            "threshold": _json_float(self.threshold),
            "temperature": float(self.temperature),
            "seconds": round(float(self.seconds), 2),
            "severities": [int(s) for s in self.severities],
            "clean": {
                "accuracy": _json_float(self.clean_accuracy),
                "auc": _json_float(self.clean_auc),
            },
            "shifts": {
                name: {
                    **SHIFTS[name].to_dict(),
                    "levels": [SHIFTS[name].levels[s - 1] for s in self.severities],
                    "accuracy": [_json_float(v) for v in self.accuracy[i]],
                    "auc": [_json_float(v) for v in self.auc[i]],
                }
                for i, name in enumerate(self.shifts)
            },
            "worst": {
                "shift": self.worst_shift,
                "mean_accuracy": _json_float(self.mean_accuracy[worst]),
            },
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> StressReport:
        """Rebuild a report from :meth:`to_dict` (e.g. a model card's ``stress``).

        Raises:
            MedvizError: ``values`` lacks a key or names an unknown shift.
        """
        try:
            shifts = tuple(values["shifts"])
            for name in shifts:
                _check_shift(name)

            def table(key: str) -> np.ndarray:
                return np.array(
                    [
                        [math.nan if v is None else v for v in values["shifts"][s][key]]
                        for s in shifts
                    ],
                    dtype=float,
                ).reshape(len(shifts), len(values["severities"]))

            clean = values["clean"]
            return cls(
                class_names=tuple(values["classes"]),
                shifts=shifts,
                severities=tuple(int(s) for s in values["severities"]),
                accuracy=table("accuracy"),
                auc=table("auc"),
                clean_accuracy=math.nan if clean["accuracy"] is None else clean["accuracy"],
                clean_auc=math.nan if clean["auc"] is None else clean["auc"],
                n=int(values["n"]),
                n_available=int(values.get("n_available", values["n"])),
                seed=int(values.get("seed", 0)),
                temperature=float(values.get("temperature", 1.0)),
                threshold=values.get("threshold"),
                seconds=float(values.get("seconds", 0.0)),
                split=str(values.get("split", "")),
                dataset=str(values.get("dataset", "")),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise MedvizError(f"malformed stress report: {err!r}") from None


# --------------------------------------------------------------------------- #
# Running it
# --------------------------------------------------------------------------- #


def sample_indices(labels: np.ndarray, max_images: int | None, *, seed: int = 0) -> np.ndarray:
    """Seeded, class-stratified sample of at most ``max_images`` indices (sorted).

    Every class present keeps at least one image, so an AUC defined on the
    whole set stays defined on the sample.

    Args:
        labels: ``(N,)`` class indices.
        max_images: Sample size; ``None`` (or ``>= N``) keeps every index.
        seed: Seed of the draw.

    Returns:
        ``(M,)`` sorted int indices, ``M = min(N, max_images)`` (more only when
        there are more classes than ``max_images``).
    """
    labels = np.asarray(labels)
    n = len(labels)
    if max_images is None or max_images >= n:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    # Largest-remainder quotas: proportional, summing to max_images, at least one per class.
    exact = counts * max_images / n
    quota = np.maximum(np.floor(exact).astype(int), 1)
    for k in np.argsort(-(exact - np.floor(exact))):
        if quota.sum() >= max_images:
            break
        if quota[k] < counts[k]:
            quota[k] += 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=int(q), replace=False)
        for c, q in zip(classes, quota, strict=True)
    ]
    return np.sort(np.concatenate(chosen))


def _check_options(
    shifts: Sequence[str], severities: Sequence[int], max_images: int | None, temperature: float
) -> tuple[tuple[str, ...], tuple[int, ...]]:
    shifts = tuple(shifts)
    if not shifts:
        raise MedvizError(f"choose at least one shift from {list(SHIFTS)}")
    for name in shifts:
        _check_shift(name)
    if len(set(shifts)) != len(shifts):
        raise MedvizError(f"shifts repeat: {list(shifts)}")
    severities = tuple(sorted({_check_severity(s) for s in severities}))
    if not severities or severities[0] == 0:
        raise MedvizError(
            f"severities must be a non-empty subset of {list(SEVERITIES)} (the clean level 0 is "
            f"always measured), got {list(severities)}"
        )
    if max_images is not None and (
        isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1
    ):
        raise MedvizError(f"max_images must be a positive integer or None, got {max_images!r}")
    if not isinstance(temperature, int | float) or not temperature > 0:
        raise MedvizError(f"temperature must be a positive number, got {temperature!r}")
    return shifts, severities


def stress_test(
    model: Any,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    class_names: Sequence[str],
    shifts: Sequence[str] = DEFAULT_SHIFTS,
    severities: Sequence[int] = SEVERITIES,
    max_images: int | None = DEFAULT_MAX_IMAGES,
    seed: int = 0,
    temperature: float = 1.0,
    threshold: float | None = None,
    batch_size: int = 256,
    split: str = "",
    dataset: str = "",
    on_progress: Callable[[int, int], None] | None = None,
) -> StressReport:
    """Measure a model on clean and shifted copies of (a sample of) ``images``.

    All shifted copies of one severity go through the model in one batched
    predict call (split only to bound memory), so the cost is about
    ``1 + len(shifts) * len(severities)`` forward passes over the sample.

    Args:
        model: A Keras model taking raw 0–255 pixels (any MedViz model).
        images: ``(N, H, W, C)`` uint8 images at the model's input size.
        labels: ``(N,)`` class indices in the model's order.
        class_names: ``K`` class names of the model.
        shifts: Keys of :data:`SHIFTS`, in report order.
        severities: Levels from 1–5 (0, the clean level, is always measured).
        max_images: Sample size (seeded and class-stratified); ``None`` = all.
        seed: Seed of the sample and of the shifts.
        temperature: Calibration temperature (a card's ``temperature``).
        threshold: Binary operating threshold on calibrated ``P(class 1)`` (a
            card's ``threshold``); ``None`` = argmax.
        batch_size: Images per forward pass.
        split: Split name, recorded in the report.
        dataset: Dataset name, recorded in the report.
        on_progress: Called as ``on_progress(done, total)`` after each severity
            (``total = len(severities) + 1``, the clean pass included).

    Returns:
        The :class:`StressReport`.

    Raises:
        DataError: Images are not a uint8 ``(N, H, W, C)`` batch or labels do not fit them.
        MedvizError: Unknown shift, bad severity or option, or a threshold on
            a multi-class model.
    """
    started = time.perf_counter()
    images = _check_images(images)
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"labels must have shape (N,) matching {len(images)} images, got {labels.shape}"
        )
    if len(images) == 0:
        raise DataError("cannot stress-test 0 images")
    shifts, severities = _check_options(shifts, severities, max_images, temperature)
    names = tuple(str(c) for c in class_names)
    index = sample_indices(labels, max_images, seed=seed)
    x, y = images[index], labels[index]
    total = len(severities) + 1

    def probabilities(batch: np.ndarray) -> np.ndarray:
        probs = predict_proba(model, batch, batch_size=batch_size)
        if temperature != 1.0:
            probs = apply_temperature(logits_from_probabilities(probs), float(temperature))
        return probs

    def measure(probs: np.ndarray) -> tuple[float, float]:
        ev = evaluate(y, probs, class_names=names, threshold=threshold, n_bootstrap=0)
        return ev.accuracy, ev.auc

    clean_accuracy, clean_auc = measure(probabilities(x))
    if on_progress is not None:
        on_progress(1, total)
    accuracy = np.full((len(shifts), len(severities)), math.nan)
    auc = np.full_like(accuracy, math.nan)
    per_call = max(1, _PREDICT_BUDGET // max(1, x[0].size * len(x)))
    for j, severity in enumerate(severities):
        for start in range(0, len(shifts), per_call):
            group = shifts[start : start + per_call]
            batch = np.concatenate([apply_shift(x, s, severity, seed=seed) for s in group])
            probs = probabilities(batch)
            for k, chunk in enumerate(np.split(probs, len(group))):
                accuracy[start + k, j], auc[start + k, j] = measure(chunk)
        if on_progress is not None:
            on_progress(j + 2, total)
    return StressReport(
        class_names=names,
        shifts=shifts,
        severities=severities,
        accuracy=accuracy,
        auc=auc,
        clean_accuracy=float(clean_accuracy),
        clean_auc=float(clean_auc),
        n=len(y),
        n_available=len(labels),
        seed=int(seed),
        temperature=float(temperature),
        threshold=None if threshold is None else float(threshold),
        seconds=time.perf_counter() - started,
        split=split,
        dataset=dataset,
    )


def stress_split(
    bundle: ModelBundle,
    data: Dataset,
    split: str,
    *,
    threshold: float | str | None = "card",
    **options: Any,
) -> StressReport:
    """:func:`stress_test` of a model folder on one split, with its card's calibration.

    Args:
        bundle: The model and its card (temperature, threshold).
        data: Images at the model's input size, labels in the model's order
            (see :func:`medviz.cli.load_for_model`).
        split: ``"train"``, ``"val"``, ``"test"`` or ``"all"``.
        threshold: ``"card"`` (the card's threshold) or a threshold to use instead.
        **options: Passed to :func:`stress_test` (``max_images``, ``seed``,
            ``shifts``, ``severities``, ``on_progress`` …).

    Returns:
        The :class:`StressReport`.
    """
    subset = data.split(split)
    card = bundle.card
    if threshold == "card":
        threshold = card.threshold if card.n_classes == 2 else None
    return stress_test(
        bundle.model,
        subset.images,
        subset.labels,
        class_names=card.class_names,
        temperature=card.temperature,
        threshold=threshold,  # type: ignore[arg-type]
        split=split,
        dataset=data.name,
        **options,
    )
