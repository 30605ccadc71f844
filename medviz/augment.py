"""On-the-fly augmentation as Keras preprocessing layers.

Augmentations run batch-wise inside the ``tf.data`` pipeline (never stored
in the saved model, never pre-generated). Each one carries a note on whether
it keeps a medical image realistic: an augmented image the scanner could
never have produced teaches the network the wrong thing.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

import numpy as np

from medviz.errors import MedvizError


@dataclass(frozen=True)
class AugmentConfig:
    """Strength of every augmentation; zero (or ``False``) switches one off.

    Attributes:
        rotation_deg: Maximum rotation in degrees (± this).
        zoom_max: Maximum zoom-in factor; 1.2 means 100–120 %.
        shift: Maximum translation as a fraction of the side.
        shear: Maximum shear factor.
        horizontal_flip: Random left-right flip.
        vertical_flip: Random up-down flip.
        brightness: Maximum brightness change as a fraction of the range.
        contrast: Maximum contrast change factor.
        noise_sigma: Gaussian noise standard deviation in pixel units (0–255).
        elastic: Elastic deformation strength (0 = none).
        gamma: Maximum gamma change: each image gets a gamma in
            ``[1 / (1 + gamma), 1 + gamma]`` (0 = none).
        resolution_min: Smallest down-then-up scale: each batch is shrunk to a
            random ``[resolution_min, 1]`` of its side and enlarged back, as
            images from a lower-resolution source look (1 = none).
    """

    rotation_deg: float = 5.0
    zoom_max: float = 1.2
    shift: float = 0.0
    shear: float = 0.0
    horizontal_flip: bool = False
    vertical_flip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    noise_sigma: float = 0.0
    elastic: float = 0.0
    gamma: float = 0.0
    resolution_min: float = 1.0

    def __post_init__(self) -> None:
        limits = {
            "rotation_deg": (0.0, 180.0),
            "zoom_max": (1.0, 2.0),
            "shift": (0.0, 0.5),
            "shear": (0.0, 1.0),
            "brightness": (0.0, 1.0),
            "contrast": (0.0, 1.0),
            "noise_sigma": (0.0, 128.0),
            "elastic": (0.0, 1.0),
            "gamma": (0.0, 1.0),
            "resolution_min": (0.1, 1.0),
        }
        for name, (lo, hi) in limits.items():
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise MedvizError(f"augmentation {name}={value} is outside [{lo}, {hi}]")

    @classmethod
    def none(cls) -> AugmentConfig:
        """No augmentation at all."""
        return cls(rotation_deg=0.0, zoom_max=1.0)

    @property
    def is_identity(self) -> bool:
        """Whether this config changes nothing."""
        return self == AugmentConfig.none()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> AugmentConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise MedvizError(f"unknown augmentation(s) {sorted(unknown)}; known: {sorted(known)}")
        return cls(**values)


@dataclass(frozen=True)
class AugmentationInfo:
    """What one augmentation does and whether it keeps images realistic."""

    field: str
    title: str
    realism: str


AUGMENTATIONS: tuple[AugmentationInfo, ...] = (
    AugmentationInfo(
        "rotation_deg",
        "Rotation",
        "Small angles (±5°) mimic patient positioning; large ones create anatomy no scanner shows.",
    ),
    AugmentationInfo(
        "zoom_max",
        "Zoom",
        "100–120 % mimics magnification and collimation differences; zooming out adds "
        "fake borders.",
    ),
    AugmentationInfo(
        "shift",
        "Shift",
        "Small shifts mimic positioning; large ones cut the region of interest out of the frame.",
    ),
    AugmentationInfo(
        "shear",
        "Shear",
        "Mild shear mimics projection differences; strong shear distorts organ shapes "
        "unrealistically.",
    ),
    AugmentationInfo(
        "horizontal_flip",
        "Horizontal flip",
        "Realistic only where left and right look alike (texture patches); wrong where the "
        "anatomy has a side, e.g. the heart of a chest image moves to the right.",
    ),
    AugmentationInfo(
        "vertical_flip",
        "Vertical flip",
        "Almost never realistic for whole images (anatomy upside down); acceptable for patches.",
    ),
    AugmentationInfo(
        "brightness",
        "Brightness",
        "Mimics exposure and windowing differences between scanners; keep it small.",
    ),
    AugmentationInfo(
        "contrast",
        "Contrast",
        "Mimics different kVp/windowing; strong values wash out subtle findings.",
    ),
    AugmentationInfo(
        "noise_sigma",
        "Gaussian noise",
        "Mimics the noise of low-dose or fast acquisitions (σ≈20 of 255 is already strong); it "
        "can hide findings a few pixels wide.",
    ),
    AugmentationInfo(
        "gamma",
        "Gamma",
        "Mimics different detector response curves and post-processing between hospitals; "
        "small values only.",
    ),
    AugmentationInfo(
        "resolution_min",
        "Lower resolution",
        "Mimics images from lower-resolution sources (downsampled archives, MedMNIST-style "
        "28 px sets); below a third of the side, small findings vanish.",
    ),
    AugmentationInfo(
        "elastic",
        "Elastic deformation",
        "Mimics soft-tissue deformation (compression, breathing); keep it mild, bones do not bend.",
    ),
)


# Realism notes that differ by imaging modality: {modality: {augmentation field: note}}.
# Keys are DatasetSpec.modality casefolded; a field missing here uses the general note of
# AUGMENTATIONS, and so does a modality missing here (see realism_note).
_RADIOGRAPH: dict[str, str] = {
    "rotation_deg": "±5° mimics patient positioning on the detector; larger angles never occur "
    "on a radiograph.",
    "zoom_max": "100–120 % mimics collimation and source-to-detector distance; zooming out adds "
    "fake borders.",
    "horizontal_flip": "Unrealistic: organs with a side (heart, liver, stomach) change sides and "
    "the side marker reads backwards.",
    "vertical_flip": "Never realistic: radiographs are not taken upside down.",
    "brightness": "Mimics exposure (kVp, mAs) and processing differences between units; keep it "
    "small.",
    "noise_sigma": "Mimics quantum noise of low-dose or portable exposures (σ≈20 of 255 is already "
    "strong); it hides fine structure.",
    "elastic": "Mimics breathing and soft-tissue differences; keep it mild, bones do not bend.",
}
MODALITY_REALISM: dict[str, dict[str, str]] = {
    "mammography": {
        "rotation_deg": "Patches have no up or down, but resampling blurs microcalcifications "
        "1–2 px wide; whole mammograms are positioned within a few degrees.",
        "zoom_max": "Mimics magnification views and detector pixel sizes; strong zoom makes "
        "calcifications larger than real ones.",
        "shear": "No mammographic projection shears breast tissue; leave it off.",
        "horizontal_flip": "Realistic: left and right breasts are mirror images and a patch has "
        "no side.",
        "vertical_flip": "Fine for patches (tissue texture has no up); on whole MLO views it moves "
        "the pectoral muscle to the bottom.",
        "brightness": "Mimics vendor processing and exposure; keep it small, calcifications are "
        "the brightest pixels.",
        "noise_sigma": "Mimics quantum noise of the low dose; a σ of a few grey levels already "
        "hides microcalcifications a few pixels wide.",
        "elastic": "Mimics different breast compression; keep it mild.",
    },
    "chest x-ray": {
        **_RADIOGRAPH,
        "horizontal_flip": "Unrealistic: the heart moves to the right (situs inversus, about 1 "
        "in 10,000 people) and the side marker reads backwards.",
        "shift": "Small shifts mimic positioning; large ones cut the lung apices or bases out.",
        "elastic": "Mimics breathing depth and soft tissue; keep it mild, ribs and spine do not "
        "bend.",
    },
    "x-ray": dict(_RADIOGRAPH),
    "mri": {
        "rotation_deg": "Mimics head tilt in the coil (a few degrees); slices are rarely rotated "
        "more.",
        "zoom_max": "Mimics different fields of view; zooming out adds borders no scanner shows.",
        "shift": "Mimics head position; keep the whole brain in the frame.",
        "horizontal_flip": "Plausible: the brain is nearly symmetric and lesions occur on either "
        "side (the left-right convention is lost, which matters for lateralised findings).",
        "vertical_flip": "Unrealistic: the skull base ends up at the top.",
        "brightness": "MRI intensities have no absolute scale: shifts mimic scanners and "
        "normalisation, moderate values are realistic.",
        "contrast": "Mimics different sequence settings (TR/TE) and coil bias; moderate values "
        "are realistic.",
        "noise_sigma": "MRI noise is Rician and strongest where the signal is low, not Gaussian; "
        "use a small σ only.",
        "elastic": "Mild warps mimic anatomical variation; strong ones put structures where no "
        "brain has them.",
    },
    "ct": {
        "rotation_deg": "Mimics patient positioning on the table (a few degrees).",
        "zoom_max": "Mimics different reconstruction fields of view; zooming out adds borders.",
        "shear": "Gantry tilt gives a real but mild shear; strong shear is unrealistic.",
        "horizontal_flip": "Unrealistic for chest and abdomen: heart, aorta and liver change "
        "sides (images follow the radiological convention).",
        "vertical_flip": "Unrealistic: the table would be on top of the patient.",
        "brightness": "CT numbers (HU) are absolute: a brightness shift changes tissue density; "
        "keep it tiny and vary the window instead.",
        "contrast": "Mimics a different display window; realistic within the usual presets.",
        "noise_sigma": "Mimics low-dose CT noise; small σ is realistic, strong noise hides "
        "ground-glass opacities.",
        "elastic": "Mimics breathing and soft-tissue variation; keep it mild, bones do not bend.",
    },
}


def realism_note(field: str, modality: str | None = None) -> str:
    """How realistic one augmentation is for images of ``modality``.

    Args:
        field: An :class:`AugmentConfig` field, e.g. ``"horizontal_flip"``.
        modality: A :attr:`DatasetSpec.modality <medviz.data.DatasetSpec.modality>`
            such as ``"chest X-ray"`` or ``"MRI"`` (case ignored); ``None`` or an
            unknown modality gives the general note.

    Returns:
        The modality's note when :data:`MODALITY_REALISM` has one, else the
        general note of :data:`AUGMENTATIONS`.

    Raises:
        MedvizError: ``field`` is not an augmentation.
    """
    general = {info.field: info.realism for info in AUGMENTATIONS}
    if field not in general:
        raise MedvizError(f"unknown augmentation {field!r}; known: {sorted(general)}")
    notes = MODALITY_REALISM.get((modality or "").strip().casefold(), {})
    return notes.get(field, general[field])


AugmenterPart = Literal["all", "geometric", "photometric"]


def build_augmenter(config: AugmentConfig, *, seed: int | None = None, part: AugmenterPart = "all"):
    """A ``keras.Sequential`` applying ``config`` to float batches in [0, 255].

    Args:
        config: The augmentations.
        seed: Seed of the random layers (``None``: nondeterministic).
        part: ``"geometric"`` keeps only the spatial transforms (rotation,
            zoom, shift, shear, flips, elastic), ``"photometric"`` only the
            intensity ones; box-guided training moves the lesion masks with
            the geometric part and leaves them out of the photometric one.

    Returns:
        A model mapping ``(B, H, W, C)`` float32 in [0, 255] to the same shape,
        or ``None`` when nothing is left to apply. Call it with
        ``training=True``.
    """
    if part not in ("all", "geometric", "photometric"):
        raise MedvizError(f"part must be 'all', 'geometric' or 'photometric', got {part!r}")
    if part == "geometric":
        config = replace(
            config, brightness=0.0, contrast=0.0, noise_sigma=0.0, gamma=0.0, resolution_min=1.0
        )
    elif part == "photometric":
        config = replace(
            config,
            rotation_deg=0.0,
            zoom_max=1.0,
            shift=0.0,
            shear=0.0,
            horizontal_flip=False,
            vertical_flip=False,
            elastic=0.0,
        )
    if config.is_identity:
        return None
    import keras
    from keras import layers

    stack: list[keras.Layer] = []
    if config.rotation_deg:
        stack.append(
            layers.RandomRotation(config.rotation_deg / 360.0, fill_mode="reflect", seed=seed)
        )
    if config.zoom_max > 1.0:
        # Keras: a negative height_factor zooms in; 1 - 1/zoom makes 1.2 mean a 120 % view.
        zoom_in = 1.0 - 1.0 / config.zoom_max
        stack.append(layers.RandomZoom((-zoom_in, 0.0), fill_mode="reflect", seed=seed))
    if config.shift:
        stack.append(
            layers.RandomTranslation(config.shift, config.shift, fill_mode="reflect", seed=seed)
        )
    if config.shear:
        stack.append(layers.RandomShear(config.shear, config.shear, fill_mode="reflect", seed=seed))
    flip = {
        (True, False): "horizontal",
        (False, True): "vertical",
        (True, True): "horizontal_and_vertical",
    }.get((config.horizontal_flip, config.vertical_flip))
    if flip:
        stack.append(layers.RandomFlip(flip, seed=seed))
    if config.elastic:
        stack.append(
            layers.RandomElasticTransform(
                factor=1.0, scale=config.elastic, value_range=(0, 255), seed=seed
            )
        )
    if config.brightness:
        stack.append(layers.RandomBrightness(config.brightness, value_range=(0, 255), seed=seed))
    if config.contrast:
        stack.append(layers.RandomContrast(config.contrast, value_range=(0, 255), seed=seed))
    if config.gamma:
        stack.append(random_gamma_layer(config.gamma, seed=seed))
    if config.resolution_min < 1.0:
        stack.append(random_resolution_layer(config.resolution_min, seed=seed))
    if config.noise_sigma:
        # GaussianNoise only takes stddev <= 1: apply it on [0, 1] pixels.
        stack.append(layers.Rescaling(1.0 / 255.0))
        stack.append(layers.GaussianNoise(config.noise_sigma / 255.0, seed=seed))
        stack.append(layers.Rescaling(255.0))
    return keras.Sequential(stack, name="augment")


def _random_layer_base():
    import keras

    class RandomBatchLayer(keras.layers.Layer):
        """A seeded random augmentation that acts only with ``training=True``."""

        def __init__(self, *, seed: int | None = None, **kwargs) -> None:
            super().__init__(**kwargs)
            self.seed_generator = keras.random.SeedGenerator(seed)

        def compute_output_shape(self, input_shape):
            return input_shape

    return RandomBatchLayer


def random_gamma_layer(gamma: float, *, seed: int | None = None):
    """A layer applying a random gamma in ``[1/(1+gamma), 1+gamma]`` per image (pixels 0–255)."""
    import keras

    class _RandomGamma(_random_layer_base()):
        def call(self, images, training=False):
            if not training:
                return images
            batch = keras.ops.shape(images)[0]
            log_g = keras.random.uniform(
                (batch, 1, 1, 1),
                minval=-np.log1p(gamma),
                maxval=np.log1p(gamma),
                seed=self.seed_generator,
            )
            unit = keras.ops.clip(images / 255.0, 0.0, 1.0)
            return 255.0 * keras.ops.power(unit, keras.ops.exp(log_g))

    return _RandomGamma(seed=seed, name="random_gamma")


def random_resolution_layer(min_scale: float, *, seed: int | None = None):
    """A layer shrinking each batch to a random ``[min_scale, 1]`` of its side and back."""
    import keras
    import tensorflow as tf

    class _RandomResolution(_random_layer_base()):
        def call(self, images, training=False):
            if not training:
                return images
            scale = keras.random.uniform((), minval=min_scale, maxval=1.0, seed=self.seed_generator)
            size = tf.shape(images)[1:3]
            small = tf.maximum(tf.cast(tf.round(tf.cast(size, tf.float32) * scale), tf.int32), 1)
            low = tf.image.resize(images, small, method="area")
            return tf.image.resize(low, size, method="bilinear")

    return _RandomResolution(seed=seed, name="random_resolution")


def augment_batch(augmenter, images):
    """Apply ``augmenter`` (or nothing) to a float batch and clip to [0, 255]."""
    import tensorflow as tf

    if augmenter is None:
        return images
    return tf.clip_by_value(augmenter(images, training=True), 0.0, 255.0)


def preview(
    image: np.ndarray,
    config: AugmentConfig,
    *,
    n: int = 8,
    seed: int = 0,
) -> np.ndarray:
    """``n`` augmented versions of one image, deterministic by ``seed``.

    Args:
        image: ``(H, W, C)`` or ``(H, W)`` uint8 image.
        config: Augmentations to apply.
        n: How many versions.
        seed: Same seed, same versions.

    Returns:
        ``(n, H, W, C)`` uint8 array.
    """
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise MedvizError(f"image must be (H, W) or (H, W, C), got shape {image.shape}")
    if n < 1:
        raise MedvizError(f"n must be at least 1, got {n}")
    batch = np.repeat(image[None].astype(np.float32), n, axis=0)
    augmenter = build_augmenter(config, seed=seed)
    out = np.asarray(augment_batch(augmenter, batch))
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
