"""The shortcut lab: plant a spurious marker in one class, train, and measure the reliance.

Models that read hospital tags instead of lungs (Zech et al., PLoS Med 2018)
were accurate on test sets drawn like their training data and failed
elsewhere. This module makes that failure reproducible on any binary dataset:

1. :func:`plant_marker` stamps a :class:`~medviz.explore.markers.Marker` into
   a fraction of ONE class's training and validation images (test is left alone).
2. :func:`run_shortcut_lab` trains two models with :func:`medviz.training.train`
   and one :class:`~medviz.training.TrainConfig`, same seed: one on the marked
   data ("shortcut model") and a control without the spurious correlation
   ("clean model"). By default (``control="random"``) the control sees the same
   marker on a seeded random half of ALL train and val images, whatever their
   class: the marker is as familiar to it as to the shortcut model but says
   nothing about the class. With ``control="none"`` it never sees a marker.
   Why the default: on the embedded microcalcification data a network that
   never saw a marker calls ANY unfamiliar local structure (a tag, even a plain
   dark square, or a border) "microcalcification" (fast-cnn's global max
   pooling reads "something stands out" as a lesion), so a marker-free control
   scored 0.48 on the embedded data at 64 px: novelty, not a learnt shortcut.
3. Both are scored on three versions of the test split (:func:`marker_variants`):

   * **clean**: the test images as they are;
   * **aligned**: every image of the marked class carries the marker, no other
     image does (the correlation the shortcut model was trained on);
   * **swapped**: every image of the *other* class carries the marker, no image
     of the marked class does (the marker now points at the wrong class).

**Shortcut-reliance score** = balanced accuracy on *aligned* minus balanced
accuracy on *swapped* (both at the model's arg-max decision). Balanced
accuracy (mean recall of the two classes) keeps an imbalanced test split from
moving the score. A model that ignores the marker scores about 0; a model that
decides by the marker alone scores up to 1 (aligned 1.0, swapped 0.0); a
negative score means the marker pushes it towards the other class.

4. Grad-CAM (:func:`medviz.explain.methods.run_batch`) of the same few marked
   test images from both models, with the share of each heatmap's mass inside
   the marker region (:func:`marker_mass`) next to the region's share of the
   image (what a uniform heatmap would give).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from medviz.data.dataset import Dataset
from medviz.errors import DataError, MedvizError
from medviz.explore.markers import Marker, marker_masks, stamp

if TYPE_CHECKING:  # pragma: no cover - TensorFlow-free at import time
    from medviz.training import BatchProgress, EpochProgress, TrainConfig

#: Images per second fast-cnn trains at 64 px on the 2-core development CPU, shared with
#: other work (measured: see the README's "Shortcut lab"); scales with pixels.
TRAIN_IMAGES_PER_SECOND_64 = 300.0
#: Fixed cost of one model: building, compiling, first-step tracing, evaluation.
OVERHEAD_SECONDS = 6.0

VARIANTS: tuple[str, ...] = ("clean", "aligned", "swapped")
#: How the clean (control) model is trained: the marker on a random half of all images
#: ("random": present but uninformative), or no marker at all ("none").
CONTROLS: tuple[str, ...] = ("random", "none")
CONTROL_TITLES: dict[str, str] = {
    "random": "control (marker on a random half of all images)",
    "none": "control (never saw the marker)",
}
#: Defaults of the lab: both models on the embedded data in about 1 min 40 s on a quiet 2-core
#: CPU. 8 epochs, not 4: with the tag on a random half of its images the control needs 6-8
#: epochs to learn the faint specks (clean accuracy 0.55 after 4, 0.85 after 8; README).
DEFAULT_IMAGE_SIZE = 64
DEFAULT_EPOCHS = 8


class ShortcutStopped(MedvizError):
    """The user stopped the lab before both models had finished an epoch."""


@dataclass(frozen=True)
class MarkerVariants:
    """The test split three ways (see the module docstring).

    Attributes:
        labels: ``(n,)`` class indices.
        clean: ``(n, H, W, C)`` uint8 test images as they are.
        aligned: ``(n, H, W, C)`` marker on every image of the marked class.
        swapped: ``(n, H, W, C)`` marker on every image of the other class.
        marked_class: Index of the class the marker was planted in.
        masks: ``(n, H, W)`` bool marker region of each image as if it carried
            the marker (tags may be jittered per image).
    """

    labels: np.ndarray
    clean: np.ndarray
    aligned: np.ndarray
    swapped: np.ndarray
    marked_class: int
    masks: np.ndarray

    def images(self, variant: str) -> np.ndarray:
        """The images of ``variant`` (``"clean"``, ``"aligned"`` or ``"swapped"``)."""
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
        return getattr(self, variant)


@dataclass(frozen=True)
class ModelScores:
    """One model's numbers on the three test variants.

    Attributes:
        balanced_accuracy: ``{variant: balanced accuracy}`` for clean, aligned, swapped.
        accuracy: ``{variant: plain accuracy}``.
        marker_mass: Mean share of the Grad-CAM mass inside the marker region
            over the explained images (NaN for a marker without a region).
        history: The training history, ``{metric: [per epoch]}``.
        epochs_run: Epochs completed.
        seconds: Training wall time.
    """

    balanced_accuracy: dict[str, float]
    accuracy: dict[str, float]
    marker_mass: float
    history: dict[str, list[float]]
    epochs_run: int
    seconds: float

    @property
    def reliance(self) -> float:
        """Shortcut-reliance score: balanced accuracy aligned minus swapped."""
        return reliance_score(self.balanced_accuracy["aligned"], self.balanced_accuracy["swapped"])


@dataclass(frozen=True)
class ShortcutResult:
    """Everything the lab measured (numbers, example images and heatmaps).

    Attributes:
        dataset: Dataset name.
        class_names: The two class names.
        marked_class: Index of the class the marker was planted in.
        marker: The marker.
        fraction: Share of the marked class's train and val images stamped.
        n_marked: Train and val images that were stamped.
        n_test: Test images scored.
        image_size: Side the models were trained at.
        config: The training settings of both models.
        shortcut: Scores of the model trained with the marker.
        clean: Scores of the control model, trained without the correlation.
        control: How the control was trained (see :data:`CONTROLS`).
        examples: ``(k, S, S, C)`` uint8 marked test images explained.
        example_labels: ``(k,)`` their true classes.
        heatmaps_shortcut: ``(k, S, S)`` Grad-CAM of the shortcut model in [0, 1].
        heatmaps_clean: ``(k, S, S)`` Grad-CAM of the clean model.
        predicted_shortcut: ``(k,)`` the shortcut model's decided class.
        predicted_clean: ``(k,)`` the clean model's decided class.
        example_masks: ``(k, S, S)`` bool marker region of each example.
        marker_area: Mean share of the image the marker region covers (the
            mass a uniform heatmap would put there; NaN without a region).
        seconds: Wall time of the whole lab.
    """

    dataset: str
    class_names: tuple[str, ...]
    marked_class: int
    marker: Marker
    fraction: float
    n_marked: int
    n_test: int
    image_size: int
    config: TrainConfig
    shortcut: ModelScores
    clean: ModelScores
    control: str
    examples: np.ndarray
    example_labels: np.ndarray
    heatmaps_shortcut: np.ndarray
    heatmaps_clean: np.ndarray
    predicted_shortcut: np.ndarray
    predicted_clean: np.ndarray
    example_masks: np.ndarray
    marker_area: float
    seconds: float

    @property
    def marked_class_name(self) -> str:
        """Name of the class the marker was planted in."""
        return self.class_names[self.marked_class]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready numbers (no images)."""

        def scores(s: ModelScores) -> dict[str, object]:
            return {
                "reliance_score": s.reliance,
                "balanced_accuracy": dict(s.balanced_accuracy),
                "accuracy": dict(s.accuracy),
                "marker_mass": s.marker_mass,
                "epochs_run": s.epochs_run,
                "train_seconds": s.seconds,
                "val_auc_per_epoch": list(s.history.get("val_auc", [])),
            }

        return {
            "dataset": self.dataset,
            "class_names": list(self.class_names),
            "marked_class": self.marked_class_name,
            "marker": self.marker.to_dict(),
            "fraction": self.fraction,
            "n_marked_train_val": self.n_marked,
            "n_test": self.n_test,
            "image_size": self.image_size,
            "arch": self.config.arch,
            "epochs": self.config.epochs,
            "shortcut_model": scores(self.shortcut),
            "clean_model": scores(self.clean),
            "control": self.control,
            "marker_area": self.marker_area,
            "n_explained": len(self.examples),
            "seconds": self.seconds,
            "score_definition": "balanced accuracy on aligned minus on swapped test images",
        }


def reliance_score(aligned: float, swapped: float) -> float:
    """Shortcut-reliance score: ``aligned - swapped`` (balanced accuracies, in ``[-1, 1]``)."""
    return float(aligned) - float(swapped)


def class_index(class_names: tuple[str, ...] | list[str], which: str | int) -> int:
    """Index of a class given by name or index.

    Raises:
        ValueError: ``which`` names no class (the message lists them).
    """
    names = list(class_names)
    if isinstance(which, (int, np.integer)) and not isinstance(which, bool):
        if 0 <= int(which) < len(names):
            return int(which)
    elif which in names:
        return names.index(which)
    elif isinstance(which, str) and which.isdigit() and int(which) < len(names):
        return int(which)
    raise ValueError(f"class {which!r} is not one of the dataset's classes {names}")


def _check_binary(data: Dataset) -> None:
    if data.n_classes != 2:
        raise DataError(
            f"the shortcut lab needs a binary dataset; {data.name!r} has {data.n_classes} "
            f"classes {list(data.class_names)}"
        )


def plant_marker(
    data: Dataset,
    marker: Marker,
    *,
    marked_class: int | None,
    fraction: float,
    seed: int = 0,
    splits: tuple[str, ...] = ("train", "val"),
) -> tuple[Dataset, np.ndarray]:
    """Stamp ``marker`` into a seeded ``fraction`` of one class's (or every class's) images.

    Args:
        data: A binary dataset, ``(N, S, S, C)`` uint8 images.
        marker: The marker.
        marked_class: Class index whose images get it; ``None``: every class gets
            it in the same share (the marker then says nothing about the class).
        fraction: Share of that class's images (per split and class) to stamp, in ``[0, 1]``.
        seed: Chooses the images and places jittered tags.
        splits: Splits to plant into (the test split stays clean by default).

    Returns:
        ``(dataset with the stamped images, (N,) bool of the stamped images)``.
        Lesion masks are kept (a marker never covers what a lesion mask marks
        as lesion in the embedded data: it sits in a corner or on the edge).

    Raises:
        ValueError: ``fraction`` outside ``[0, 1]`` or a bad class index.
        DataError: The dataset is not binary.
    """
    _check_binary(data)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction!r}")
    if marked_class not in (0, 1, None):
        raise ValueError(f"marked_class must be 0, 1 or None, got {marked_class!r}")
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(data), dtype=bool)
    classes = (0, 1) if marked_class is None else (marked_class,)
    for split in splits:
        for label in classes:
            members = np.flatnonzero((data.splits == split) & (data.labels == label))
            count = round(fraction * len(members))
            chosen[rng.permutation(members)[:count]] = True
    images = data.images.copy()
    if chosen.any():
        images[chosen] = stamp(images[chosen], marker, seed=seed)
    return replace(data, images=images), chosen


def marker_variants(
    test: Dataset, marker: Marker, *, marked_class: int, seed: int = 0
) -> MarkerVariants:
    """The clean, aligned and swapped versions of a test split (see the module docstring).

    Args:
        test: The test images (a binary dataset or one split of it).
        marker: The marker planted in training.
        marked_class: The class it was planted in.
        seed: Places jittered tags.
    """
    _check_binary(test)
    images, labels = test.images, test.labels
    marked = stamp(images, marker, seed=seed)
    in_class = (labels == marked_class)[:, None, None, None]
    return MarkerVariants(
        labels=labels,
        clean=images,
        aligned=np.where(in_class, marked, images),
        swapped=np.where(in_class, images, marked),
        marked_class=marked_class,
        masks=marker_masks(marker, images.shape[:3], seed=seed),
    )


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray, n_classes: int = 2) -> float:
    """Mean recall over the classes present in ``labels`` (NaN for no images)."""
    recalls = [
        float(np.mean(predicted[labels == c] == c)) for c in range(n_classes) if (labels == c).any()
    ]
    return float(np.mean(recalls)) if recalls else math.nan


def marker_mass(heatmaps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each heatmap's mass inside its marker region.

    Args:
        heatmaps: ``(k, H, W)`` non-negative maps.
        masks: ``(k, H, W)`` bool marker regions.

    Returns:
        ``(k,)`` values in ``[0, 1]`` (NaN for an all-zero map).
    """
    heat = np.clip(np.asarray(heatmaps, np.float64), 0, None)
    total = heat.sum(axis=(1, 2))
    inside = (heat * masks).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / total, np.nan)


def example_indices(labels: np.ndarray, *, per_class: int, seed: int = 0) -> np.ndarray:
    """A seeded pick of up to ``per_class`` test images of each class, class 0 first."""
    rng = np.random.default_rng(seed)
    picks = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.concatenate(picks).astype(np.int64) if picks else np.zeros(0, np.int64)


def expected_seconds(n_train: int, *, image_size: int, epochs: int, models: int = 2) -> float:
    """Rough wall time of the lab with fast-cnn on a 2-core CPU (see the constants)."""
    per_image = (image_size / 64.0) ** 2 / TRAIN_IMAGES_PER_SECOND_64
    return models * (epochs * n_train * per_image + OVERHEAD_SECONDS)


def score_model(
    model: object, variants: MarkerVariants
) -> tuple[dict[str, float], dict[str, float]]:
    """Balanced and plain accuracy of ``model`` on the three variants (arg-max decisions)."""
    from medviz.explain.engine import get_explainer

    explainer = get_explainer(model)
    balanced, plain = {}, {}
    for variant in VARIANTS:
        predicted = np.argmax(explainer.predict(variants.images(variant)), axis=1)
        balanced[variant] = balanced_accuracy(variants.labels, predicted)
        plain[variant] = float(np.mean(predicted == variants.labels))
    return balanced, plain


def lab_config(
    *,
    image_size: int = DEFAULT_IMAGE_SIZE,
    epochs: int = DEFAULT_EPOCHS,
    arch: str = "fast-cnn",
    batch_size: int = 32,
    seed: int = 0,
    jit_compile: bool | str = "auto",
) -> TrainConfig:
    """The lab's :class:`~medviz.training.TrainConfig`: short, cosine schedule, no augmentation.

    One warm-up epoch then cosine decay over ``epochs`` trains fast-cnn on the embedded data
    without the accuracy collapses of a constant rate (``bench/results/stage-recipe.md``);
    augmentation is off so that the marker the model sees is exactly the one planted (a flip
    would move a corner tag to another corner). No early stopping: both models get the same
    number of epochs.
    """
    from medviz.augment import AugmentConfig
    from medviz.training import TrainConfig

    return TrainConfig(
        arch=arch,
        image_size=image_size,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        augment=AugmentConfig.none(),
        early_stopping_patience=None,
        reduce_lr_patience=None,
        lr_schedule="cosine",
        jit_compile=jit_compile,
    )


def run_shortcut_lab(
    data: Dataset,
    *,
    marker: Marker,
    marked_class: int,
    fraction: float,
    config: TrainConfig,
    control: str = "random",
    examples_per_class: int = 3,
    on_phase: Callable[[int, str], None] | None = None,
    on_epoch_end: Callable[[EpochProgress], None] | None = None,
    on_batch_end: Callable[[BatchProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ShortcutResult:
    """Plant the marker, train the shortcut and the clean model, score and explain both.

    Args:
        data: A binary dataset with train, val and test splits.
        marker: The spurious marker.
        marked_class: Class index that gets the marker.
        fraction: Share of that class's train and val images stamped, in ``[0, 1]``.
        config: A :class:`medviz.training.TrainConfig` for both models; its
            ``image_size`` (default: the data's) is where the marker is stamped
            and ``seed`` is shared by both models and the planting.
        control: ``"random"`` (the clean model sees the marker on a random half
            of all images) or ``"none"`` (it never sees it); see the module docstring.
        examples_per_class: Marked test images per class to explain.
        on_phase: Called with ``(0, "…")`` before the shortcut model, ``(1, "…")``
            before the clean one and ``(2, "…")`` before scoring.
        on_epoch_end, on_batch_end, should_stop: Passed to
            :func:`medviz.training.train` for both models.

    Returns:
        A :class:`ShortcutResult`.

    Raises:
        DataError: Not binary, or a split is missing.
        ShortcutStopped: Stopped before both models finished an epoch.
    """
    from medviz.explain.engine import get_explainer
    from medviz.explain.methods import run_batch
    from medviz.training import resize_images, train

    started = time.perf_counter()
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {CONTROLS}, got {control!r}")
    _check_binary(data)
    missing = {"train", "val", "test"} - set(data.available_splits)
    if missing:
        raise DataError(
            f"the shortcut lab needs train, val and test splits; {data.name!r} lacks "
            f"{sorted(missing)}"
        )
    size = config.image_size or data.image_shape[0]
    if data.image_shape[0] != size:
        # The marker is stamped at the training size, so its pixels are what the model sees.
        data = replace(data, images=resize_images(data.images, size), masks=None)
    config = replace(config, image_size=size)
    marked, chosen = plant_marker(
        data, marker, marked_class=marked_class, fraction=fraction, seed=config.seed
    )
    callbacks = {
        "on_epoch_end": on_epoch_end,
        "on_batch_end": on_batch_end,
        "should_stop": should_stop,
    }

    def stopped() -> bool:
        return should_stop is not None and should_stop()

    if on_phase:
        on_phase(0, "training the model with the marker")
    shortcut_run = train(config, marked, **callbacks)
    if shortcut_run.best_epoch < 0 or stopped():
        raise ShortcutStopped(
            "stopped while training the model with the marker: nothing to compare"
        )
    if on_phase:
        on_phase(1, "training the clean model")
    control_data = data
    if control == "random":
        control_data, _ = plant_marker(
            data, marker, marked_class=None, fraction=0.5, seed=config.seed + 2
        )
    clean_run = train(config, control_data, **callbacks)
    if clean_run.best_epoch < 0:
        raise ShortcutStopped(
            "stopped before the clean model finished an epoch: nothing to compare"
        )

    if on_phase:
        on_phase(2, "scoring and explaining both models")
    test = data.split("test")
    variants = marker_variants(test, marker, marked_class=marked_class, seed=config.seed + 1)
    picks = example_indices(variants.labels, per_class=examples_per_class, seed=config.seed)
    # Every explained image carries the marker: aligned for the marked class, swapped for the other.
    examples = np.where(
        (variants.labels[picks] == marked_class)[:, None, None, None],
        variants.aligned[picks],
        variants.swapped[picks],
    )
    masks = variants.masks[picks]

    def scores(run) -> tuple[ModelScores, np.ndarray, np.ndarray]:
        balanced, plain = score_model(run.model, variants)
        maps, classes, _ = run_batch(get_explainer(run.model), examples, method="gradcam")
        mass = float(np.nanmean(marker_mass(maps, masks))) if marker.has_region else math.nan
        numbers = ModelScores(
            balanced_accuracy=balanced,
            accuracy=plain,
            marker_mass=mass,
            history={k: list(v) for k, v in run.history.items()},
            epochs_run=run.epochs_run,
            seconds=run.seconds,
        )
        return numbers, maps, classes

    shortcut_scores, shortcut_maps, shortcut_classes = scores(shortcut_run)
    clean_scores, clean_maps, clean_classes = scores(clean_run)
    return ShortcutResult(
        dataset=data.name,
        class_names=tuple(data.class_names),
        marked_class=marked_class,
        marker=marker,
        fraction=float(fraction),
        n_marked=int(chosen.sum()),
        n_test=len(test),
        image_size=size,
        config=config,
        shortcut=shortcut_scores,
        clean=clean_scores,
        control=control,
        examples=examples,
        example_labels=variants.labels[picks],
        heatmaps_shortcut=np.asarray(shortcut_maps, np.float32),
        heatmaps_clean=np.asarray(clean_maps, np.float32),
        predicted_shortcut=np.asarray(shortcut_classes, np.int64),
        predicted_clean=np.asarray(clean_classes, np.int64),
        example_masks=masks,
        marker_area=float(masks.mean()) if marker.has_region else math.nan,
        seconds=time.perf_counter() - started,
    )
