"""Reproduce every model MedViz ships, and the bench results of those it cannot ship.

``make models`` runs ``python -m tools.make_models``::

    python -m tools.make_models                     # every shipped model (models/…)
    python -m tools.make_models --only brain-mri    # one of them
    python -m tools.make_models --bench             # not-shipped models + cross-dataset table
    python -m tools.make_models --list              # the recipes, as JSON

Shipped models are trained from the real data in ``../shared/datasets`` (see
each ``SOURCE.md``; ``$MEDVIZ_DATA_ROOT`` overrides the location) and written
to ``models/<name>/`` (``model.keras`` + ``card.json`` + ``README.md``). The
data itself never enters the repository. Everything is chosen on the
training and validation splits only; the test split (carved from the
training data, grouped by file digest so duplicates never cross splits) is
evaluated once, after training.

``--bench`` trains the models whose data licences forbid shipping them
(COVID-CT, INFN mammography patches, the Open-i chest-vs-abdomen set) and the
pneumonia candidate that lost on validation into ``runs/bench-models/``
(git-ignored), evaluates them and the shipped models across datasets with
``python -m medviz evaluate … --json`` (run in-process, same code path), and
writes ``bench/results/models.json`` and ``bench/results/models.md`` from
those JSON answers. No figure in those files or in the cards is typed by hand.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medviz.augment import AugmentConfig
from medviz.training import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO_ROOT / "models"
BENCH_RESULTS = REPO_ROOT / "bench" / "results"
BENCH_RUNS = REPO_ROOT / "runs" / "bench-models"
MAX_MODEL_BYTES = 15 * 1024**2
THIS_COMMAND = "python -m tools.make_models"

RESEARCH_ONLY = (
    "Research and teaching only: not a medical device, never for diagnosis or any clinical "
    "decision."
)

# --- architecture ------------------------------------------------------------------------------

FAST_ARCH = "res-cnn-fast"  # medviz.zoo: the shipped X-ray and MRI models


# --- recipes -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """One model trained through :func:`medviz.pipeline.train_and_package`.

    Attributes:
        name: Model folder name.
        title: Human title for the card.
        data: Registry name of the dataset.
        config: Training settings (``config.seed`` also seeds the splits).
        channels: Channels the data is loaded with.
        shipped: Written to ``models/`` (else to ``runs/bench-models/`` for the bench).
        limitations: For the card.
        intended_use: For the card.
        class_names: Display names replacing the data's folder names, in label order.
        published: Reference figures of the source work (cited, not measured here).
        precise_bn: Recompute BatchNorm statistics on the training images after training.
        notes: Why this recipe looks as it does, for people.
        lesion_data: Registry name of a dataset with lesion boxes/masks whose images join
            the training data (see :func:`medviz.data.boxes.merge_lesion_data`), for
            box-guided training (``config.cam_guidance``).
    """

    name: str
    title: str
    data: str
    config: TrainConfig
    channels: int = 1
    shipped: bool = True
    limitations: tuple[str, ...] = ()
    intended_use: str = ""
    class_names: tuple[str, ...] | None = None
    published: dict[str, Any] = field(default_factory=dict)
    precise_bn: bool = True
    notes: str = ""
    lesion_data: str | None = None

    @property
    def image_size(self) -> int:
        assert self.config.image_size is not None
        return self.config.image_size

    def command(self) -> str:
        """The command that reproduces this model."""
        flag = "--only" if self.shipped else "--bench --only"
        return f"{THIS_COMMAND} {flag} {self.name}"


@dataclass(frozen=True)
class CliRecipe:
    """A shipped model made by one ``python -m medviz train …`` command (run in-process)."""

    name: str
    argv: tuple[str, ...]
    shipped: bool = True
    notes: str = ""

    def command(self) -> str:
        return "python -m medviz " + " ".join(shlex.quote(a) for a in self.argv)


XRAY_AUGMENT = AugmentConfig(rotation_deg=5.0, zoom_max=1.1, shift=0.05)
"""Chest X-ray: small rotation/zoom/shift (positioning); no flips (situs), no intensity games."""

XRAY_SHIFT_AUGMENT = AugmentConfig(
    rotation_deg=5.0,
    zoom_max=1.1,
    shift=0.05,
    brightness=0.1,
    contrast=0.2,
    gamma=0.25,
    resolution_min=0.4,
    noise_sigma=3.0,
)
"""Chest X-ray against hospital/device shift: positioning plus exposure, detector curve, noise
and resolution differences (down to 40 % of the side, about MedMNIST's 28 px at 64 px)."""

MRI_AUGMENT = AugmentConfig(
    rotation_deg=10.0,
    zoom_max=1.15,
    shift=0.05,
    horizontal_flip=True,
    brightness=0.1,
    contrast=0.1,
)
"""Brain MRI: left-right flips are anatomically plausible; intensity varies between sources."""

PATCH_AUGMENT = AugmentConfig(
    rotation_deg=0.0, zoom_max=1.0, horizontal_flip=True, vertical_flip=True
)
"""Mammogram patches: lossless flips only (resampling blurs specks 1–2 px wide)."""

PNEUMONIA_LIMITS = (
    "Paediatric patients (aged 1–5) from one hospital (Guangzhou Women and Children's Medical "
    "Center): not validated on adults, other hospitals, scanners or projections.",
    "Trained and validated on the Kermany training images only; the official test split was "
    "withheld and never used for any choice, so the validation figures here are optimistic "
    "compared with independent data (the MedMNIST test split is known to be harder).",
    "Labels are image-level (normal vs pneumonia, bacterial and viral pooled) as given "
    "upstream; no radiologist re-read, no localisation.",
    "Splits keep each patient's films together (patient ids read from the Kermany file "
    "names, joined with near-duplicate clusters), so validation and test are unseen children "
    "of the same hospital; the official test split (other period) is withheld.",
)

PNEUMONIA_28PX_LIMITS = (
    *PNEUMONIA_LIMITS[:-1],
    "Validation is MedMNIST's own validation split of PneumoniaMNIST, which is not grouped "
    "by patient (8 near-duplicate groups cross it, `python -m medviz inspect`), so its "
    "figures may be optimistic; the default pneumonia-xray model uses patient-grouped splits.",
)

BRAIN_LIMITS = (
    "The data mixes three sources (figshare, SARTAJ, Br35H); class and source are strongly "
    "correlated (e.g. most 'notumor' images come from Br35H), so the network can partly "
    "learn the source instead of the pathology. Check Grad-CAM before trusting a prediction.",
    "Upstream, image size correlates with the class; every image is resized to a square "
    "input here (aspect not kept), which removes size as a direct cue but not the "
    "differences in cropping, contrast and compression between sources.",
    "Single 2-D slices of mixed planes (axial, coronal, sagittal) and sequences; not a "
    "volumetric or multi-sequence diagnosis. Only these four classes are known.",
    "Splits are grouped by near-duplicate clusters (re-encoded or resized copies, and the "
    "figshare slices present both in the Kaggle set and in brain-tumor-boxes) and by runs of "
    "consecutive slice numbers; the file names carry no patient ids, so adjacent slices of one "
    "patient that do not look alike can still cross splits. Upstream, 103 Testing images "
    "duplicate Training images.",
    "The shipped model's split came from the first version of the near-duplicate rule, which "
    "joined more images than the current one (still never splitting a copy, so the figures "
    "stay leak-free); `make models` today gives a slightly different split.",
)

SHIPPED: tuple[Recipe | CliRecipe, ...] = (
    Recipe(
        name="pneumonia-xray",
        title="Paediatric chest X-ray: normal vs pneumonia",
        data="chest-xray-pneumonia",
        class_names=("normal", "pneumonia"),
        config=TrainConfig(
            arch="res-cnn-loc",
            image_size=64,
            epochs=30,
            batch_size=32,
            learning_rate=2e-3,
            lr_schedule="cosine",
            monitor="val_loss",
            early_stopping_patience=None,
            reduce_lr_patience=None,
            label_smoothing=0.1,
            imbalance="class-weights",
            augment=XRAY_SHIFT_AUGMENT,
            jit_compile=False,
        ),
        limitations=PNEUMONIA_LIMITS,
        intended_use="Research and teaching: a ready-made chest X-ray classifier to explore "
        "what a CNN looks at (Grad-CAM) and how calibration and thresholds behave. "
        + RESEARCH_ONLY,
        notes="64 px with photometric and lower-resolution augmentation, one model for full-size "
        "uploads and MedMNIST-style 28 px images: the earlier 128 px model scored 0.965 on its "
        "own split but 0.80 on the official Kermany test (false alarms on normal children), "
        "the 28 px one 0.917 there. Splits keep each patient's images together (file-name "
        "patient ids), operating point 0.5 on calibrated probabilities.",
    ),
    Recipe(
        name="brain-mri",
        title="Brain MRI: glioma, meningioma, no tumour, pituitary",
        data="brain-mri",
        lesion_data="brain-tumor-boxes",
        config=TrainConfig(
            arch="res-cnn-loc",
            image_size=128,
            epochs=24,
            batch_size=32,
            learning_rate=2e-3,
            lr_schedule="cosine",
            monitor="val_loss",
            early_stopping_patience=None,
            reduce_lr_patience=None,
            label_smoothing=0.1,
            augment=replace(MRI_AUGMENT, shift=0.1),
            jit_compile=False,
            cam_guidance=1.0,
        ),
        limitations=BRAIN_LIMITS,
        notes="Box-guided (cam_guidance=1.0): the figshare slices of brain-tumor-boxes (their "
        "training split) join the Kaggle images, and their class activation map is trained "
        "into the tumour box; architecture res-cnn-loc (8×8 map, symmetric padding). Both "
        "because the previous res-cnn-fast model's Grad-CAM pointed into the tumour for 0.3 % "
        "of real slices (its maximum sat on the left border), 22 % with res-cnn-loc alone. "
        "Cosine schedule (warm-up, decay to zero), chosen earlier over halving on plateaus.",
        intended_use="Research and teaching: a ready-made 4-class brain MRI classifier trained "
        "from scratch, to explore saliency and dataset shortcuts. " + RESEARCH_ONLY,
    ),
    Recipe(
        name="pneumonia-xray-28px",
        title="Paediatric chest X-ray at 28 px (PneumoniaMNIST): normal vs pneumonia",
        data="pneumoniamnist",
        config=TrainConfig(
            arch="vgg-small",
            image_size=28,
            epochs=40,
            batch_size=32,
            learning_rate=1e-3,
            monitor="val_loss",
            early_stopping_patience=8,
            reduce_lr_patience=3,
            imbalance="class-weights",
            augment=XRAY_AUGMENT,
            jit_compile=False,
        ),
        limitations=PNEUMONIA_28PX_LIMITS,
        intended_use="Research and teaching: the chest X-ray classifier for MedMNIST-style 28 px "
        "images (PneumoniaMNIST and its benchmarks); larger images are downsampled to 28 px. "
        + RESEARCH_ONLY,
        notes="Shipped beside pneumonia-xray because each wins on its own image format "
        "(bench/results/models.md, cross-dataset table): this one on PneumoniaMNIST's 28 px "
        "validation images, pneumonia-xray on the 224 px Kermany images.",
        published={
            "source": "MedMNIST v2 (Yang et al. 2023), official PneumoniaMNIST test split",
            "ResNet-18 (28)": {"auc": 0.944, "accuracy": 0.854},
            "Google AutoML Vision": {"auc": 0.991, "accuracy": 0.946},
        },
    ),
    CliRecipe(
        name="microcalc-synthetic",
        argv=(
            "train",
            "--data",
            "synthetic-microcalc",
            "--epochs",
            "10",
            "--out",
            "models/microcalc-synthetic",
            "--name",
            "microcalc-synthetic",
            "--json",
        ),
        notes="The default model of the embedded synthetic dataset; trains in about two minutes.",
    ),
)

BENCH: tuple[Recipe, ...] = (
    Recipe(
        name="covid-ct",
        title="SARS-CoV-2 CT: COVID vs non-COVID (not shipped: CC BY-NC-SA)",
        data="covid-ct",
        shipped=False,
        config=TrainConfig(
            arch=FAST_ARCH,
            image_size=128,
            epochs=30,
            batch_size=32,
            learning_rate=2e-3,
            monitor="val_loss",
            early_stopping_patience=8,
            reduce_lr_patience=3,
            augment=AugmentConfig(rotation_deg=5.0, zoom_max=1.1, horizontal_flip=True),
            jit_compile=False,
        ),
        limitations=(
            "No patient ids: slices of one patient land in several splits, so the held-out "
            "figures are optimistic.",
        ),
        published={
            "source": "Source work on the same data",
            "small CNN": {"accuracy": 0.956},
            "pixel-threshold baseline": {"accuracy": 0.655},
        },
    ),
    Recipe(
        name="covid-ct-source-cnn",
        title="SARS-CoV-2 CT with the source work's CNN (covid-cnn)",
        data="covid-ct",
        shipped=False,
        config=TrainConfig(
            arch="covid-cnn",
            image_size=128,
            epochs=25,
            batch_size=32,
            learning_rate=1e-3,
            monitor="val_loss",
            early_stopping_patience=8,
            reduce_lr_patience=3,
            augment=AugmentConfig(rotation_deg=5.0, zoom_max=1.1, horizontal_flip=True),
            jit_compile=False,
        ),
        limitations=("No patient ids: slices of one patient land in several splits.",),
    ),
    Recipe(
        name="mammo-microcalc",
        title="INFN mammogram patches: normal vs microcalcification (not shipped: no licence)",
        data="mammo-microcalc",
        class_names=("normal", "microcalcification"),
        shipped=False,
        config=TrainConfig(
            arch="fast-cnn",
            image_size=64,
            epochs=60,
            batch_size=32,
            monitor="val_loss",
            early_stopping_patience=12,
            reduce_lr_patience=4,
            augment=PATCH_AUGMENT,
            jit_compile=False,
        ),
        limitations=(
            "Several patches come from one region (_1…_5 suffixes) and are strongly correlated; "
            "the digest-grouped split does not keep them together, so held-out figures are "
            "optimistic.",
        ),
        published={
            "source": "Published CNN on the same INFN course data",
            "CNN": {"accuracy": 0.93, "auc": 0.98},
        },
    ),
    Recipe(
        name="chest-vs-abdomen",
        title="Chest vs abdominal radiograph (not shipped: licence unclear)",
        data="chest-vs-abdomen",
        class_names=("chest", "abdomen"),
        shipped=False,
        config=TrainConfig(
            arch="fast-cnn",
            image_size=64,
            epochs=150,
            batch_size=16,
            learning_rate=1e-3,
            monitor="val_loss",
            early_stopping_patience=40,
            reduce_lr_patience=None,
            augment=AugmentConfig(rotation_deg=10.0, zoom_max=1.2, shift=0.1),
            jit_compile=False,
        ),
        limitations=(
            "Only 65 training images; the 10 given validation images hold one duplicate pair.",
        ),
        notes="53 training images give 4 steps an epoch: the first recipe (128 px, 40 epochs, "
        "plateau halving) stopped at 0.6 validation accuracy; 64 px, a constant 1e-3 and 150 "
        "epochs reached 1.0 on validation (10 images) in 129 s, as did simple-cnn and vgg-small "
        "at two to three times the cost.",
        published={
            "source": "Lakhani et al. 2018 tutorial (InceptionV3 transfer, ImageNet weights)",
            "InceptionV3": {"val_accuracy_10_images": 1.0},
        },
    ),
)


@dataclass(frozen=True)
class CrossEval:
    """One cell of the cross-dataset table: a model evaluated on a dataset's split."""

    model: str  # shipped or bench model name
    data: str  # registry name
    split: str
    note: str
    class_map: tuple[tuple[str, str], ...] = ()  # data class -> model class, when names differ


CROSS: tuple[CrossEval, ...] = (
    CrossEval("brain-mri", "brain-mri", "test", "own held-out split (same preprocessing)"),
    CrossEval(
        "pneumonia-xray",
        "chest-xray-pneumonia",
        "test",
        "own held-out split (same preprocessing as training)",
    ),
    CrossEval(
        "pneumonia-xray",
        "pneumoniamnist",
        "val",
        "MedMNIST val: 28 px, centre-cropped, upsampled to the model's input; these images are "
        "part of the Kermany training set, so some may have been seen at 224 px",
    ),
    CrossEval(
        "pneumonia-xray-28px", "pneumoniamnist", "test", "own held-out split (carved from train)"
    ),
    CrossEval(
        "pneumonia-xray-28px",
        "chest-xray-pneumonia",
        "test",
        "224 px squashed JPEGs downsampled to 28 px; same patients as MedMNIST train/val",
    ),
    CrossEval(
        "microcalc-synthetic",
        "mammo-microcalc",
        "all",
        "synthetic-trained model on real INFN patches (never seen)",
        class_map=(("0", "normal"), ("1", "microcalcification")),
    ),
    CrossEval(
        "mammo-microcalc",
        "synthetic-microcalc",
        "test",
        "real-patch model on the synthetic generator's test split",
    ),
)


def recipes(*, shipped: bool = True, bench: bool = False) -> list[Recipe | CliRecipe]:
    """The recipes of the shipped models and/or the bench."""
    out: list[Recipe | CliRecipe] = []
    if shipped:
        out += SHIPPED
    if bench:
        out += BENCH
    return out


def get_recipe(name: str) -> Recipe | CliRecipe:
    """The recipe called ``name`` (shipped or bench)."""
    for recipe in recipes(shipped=True, bench=True):
        if recipe.name == name:
            return recipe
    names = [r.name for r in recipes(shipped=True, bench=True)]
    raise SystemExit(f"error: unknown model {name!r}; choose from {names}")


def model_dir(name: str) -> Path:
    """Where the model called ``name`` lives (``models/`` or ``runs/bench-models/``)."""
    recipe = get_recipe(name)
    return (MODELS_DIR if recipe.shipped else BENCH_RUNS) / name


# --- measurements beyond the card's ------------------------------------------------------------


def accuracy_ci(
    y_true: np.ndarray, y_pred: np.ndarray, *, n_bootstrap: int = 1000, seed: int = 0
) -> list[float]:
    """Stratified bootstrap 95 % percentile interval of the accuracy."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    correct = y_true == y_pred
    groups = [np.flatnonzero(y_true == c) for c in np.unique(y_true)]
    samples = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        hits = sum(correct[rng.choice(g, len(g), replace=True)].sum() for g in groups)
        samples[b] = hits / len(y_true)
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def cpu_latency_ms(model, image_size: int, channels: int, *, repeats: int = 20) -> float:
    """Median milliseconds for one image through ``model`` on this machine (batch of 1)."""
    x = np.full((1, image_size, image_size, channels), 128.0, dtype=np.float32)
    model(x, training=False)  # build/trace
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(x, training=False)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def duplicate_summary(data) -> dict[str, int]:
    """Exact-duplicate groups (by file digest) and whether any crosses a split (computed)."""
    if data.provenance is None:
        return {}
    digests = np.asarray(data.provenance.digests)
    _, inverse, counts = np.unique(digests, return_inverse=True, return_counts=True)
    crossing = 0
    for group in np.flatnonzero(counts > 1):
        if len(set(data.splits[inverse == group].tolist())) > 1:
            crossing += 1
    return {
        "duplicate_groups": int((counts > 1).sum()),
        "redundant_copies": int((counts - 1).sum()),
        "groups_crossing_splits": crossing,
    }


def load_recipe_data(recipe: Recipe, *, limit_per_class: int | None = None):
    """The recipe's dataset at its input size, with display class names."""
    from medviz.data import load_dataset
    from medviz.data.registry import get_spec

    data = load_dataset(
        recipe.data,
        image_size=recipe.image_size,
        channels=recipe.channels,
        seed=recipe.config.seed,
        limit_per_class=limit_per_class,
    )
    if recipe.class_names is not None:
        expected = get_spec(recipe.data).class_names
        if tuple(data.class_names) != tuple(expected) or len(recipe.class_names) != len(expected):
            raise SystemExit(
                f"error: recipe {recipe.name} renames {list(expected)} to "
                f"{list(recipe.class_names)}, but the data has {list(data.class_names)}"
            )
        data = replace(data, class_names=tuple(recipe.class_names))
    if recipe.lesion_data is not None:
        from medviz.data.boxes import merge_lesion_data

        lesions = load_dataset(
            recipe.lesion_data,
            image_size=recipe.image_size,
            channels=recipe.channels,
            seed=recipe.config.seed,
            limit_per_class=limit_per_class,
        )
        data = merge_lesion_data(data, lesions, seed=recipe.config.seed)
    return data


def recalibrate_batchnorm(model, images: np.ndarray, *, batch_size: int = 64, seed: int = 0) -> int:
    """Recompute every BatchNorm layer's moving statistics on ``images`` ("precise BN").

    During training the moving mean/variance are an exponential average (momentum
    0.9) over the last few *augmented* batches, so they drift from epoch to epoch;
    measured here, that alone made validation accuracy jump by several points
    between neighbouring epochs. Averaging the batch statistics over one pass of
    the un-augmented training images (shuffled, seeded) gives the population
    statistics the network is then evaluated with. Weights are not touched.

    Returns:
        The number of BatchNorm layers recalibrated.
    """
    import keras

    from medviz.inference import prepare_batch

    layers = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not layers or not len(images):
        return 0
    saved = [layer.momentum for layer in layers]
    order = np.random.default_rng(seed).permutation(len(images))
    try:
        for k, start in enumerate(range(0, len(images), batch_size)):
            for layer in layers:
                layer.momentum = k / (k + 1)  # running mean of the batch statistics
            batch = prepare_batch(images[order[start : start + batch_size]], model)
            model(batch, training=True)
    finally:
        for layer, momentum in zip(layers, saved, strict=True):
            layer.momentum = momentum
    return len(layers)


@contextlib.contextmanager
def precise_batchnorm():
    """Make :func:`medviz.pipeline.train_and_package` recalibrate BatchNorm after training.

    The pipeline fits the temperature and threshold and evaluates right after
    ``train`` returns, so the recalibration has to happen inside that call:
    ``medviz.pipeline.train`` is wrapped for the duration of the ``with`` block.
    (To be replaced by a ``TrainConfig`` option in the training engine.)
    """
    import medviz.pipeline as pipeline

    original = pipeline.train
    timing: dict[str, float] = {}

    def train_then_recalibrate(config, data, **options):
        result = original(config, data, **options)
        if result.best_epoch >= 0:
            started = time.perf_counter()
            recalibrate_batchnorm(result.model, data.split("train").images, seed=config.seed)
            timing["seconds"] = time.perf_counter() - started
        return result

    pipeline.train = train_then_recalibrate
    try:
        yield timing
    finally:
        pipeline.train = original


def inference_model(model):
    """The same layers and weights as a fresh, uncompiled model: saves without optimizer state.

    A compiled model's ``.keras`` file carries Adam's two moment tensors per
    weight, three times the weights themselves; MedViz loads with
    ``compile=False`` and never needs them.
    """
    import keras

    return keras.Model(model.input, model.output, name=model.name)


# --- building ----------------------------------------------------------------------------------


def _log(message: str) -> None:
    sys.stderr.write(f"[make_models {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def saved_result(recipe: Recipe, folder: Path | None = None):
    """The saved model of ``recipe`` with its recorded training facts, as a ``TrainResult``.

    Lets :func:`build_recipe` re-package a model (calibration, threshold,
    evaluation, stress test, card) after the packaging rules changed, without
    training it again.

    Raises:
        SystemExit: The folder has no model or card, or the card is of another recipe.
    """
    from medviz.errors import MedvizError
    from medviz.store import load_bundle
    from medviz.training import TrainResult

    folder = Path(folder) if folder is not None else model_dir(recipe.name)
    try:
        bundle = load_bundle(folder)
    except MedvizError as err:
        raise SystemExit(f"error: cannot re-package {recipe.name}: {err}") from None
    facts = dict(bundle.card.training)
    config = TrainConfig.from_dict(facts.get("config", {}))
    if config != recipe.config:
        raise SystemExit(
            f"error: {folder} was trained with another config than recipe {recipe.name}; "
            "train it again instead of re-packaging"
        )
    counts = facts.get("counts", {}).get("train", {})
    return TrainResult(
        model=bundle.model,
        history=facts.get("history", {}),
        best_epoch=int(facts.get("best_epoch", 1)) - 1,
        best_value=float("nan"),
        stopped_by_user=bool(facts.get("stopped_by_user", False)),
        stopped_early=bool(facts.get("stopped_early", False)),
        seconds=float(facts.get("seconds", 0.0)),
        config=config,
        class_names=tuple(bundle.card.class_names),
        input_shape=(bundle.card.image_size, bundle.card.image_size, bundle.card.channels),
        train_counts={str(k): int(v) for k, v in counts.items()},
    )


def build_recipe(
    recipe: Recipe,
    *,
    out: Path | None = None,
    n_bootstrap: int = 1000,
    limit_per_class: int | None = None,
    log: Callable[[str], None] = _log,
    trained=None,
) -> dict[str, Any]:
    """Train, calibrate, evaluate and save one recipe; return its summary (JSON-ready).

    ``limit_per_class`` is for smoke tests only (the card then describes a toy model).
    ``trained`` (a ``TrainResult``, see :func:`saved_result`) skips training: the
    model is only re-packaged.
    """
    from medviz.data.registry import get_spec
    from medviz.pipeline import package_result, train_and_package
    from medviz.store import (
        CARD_FILE,
        README_FILE,
        atomic_write_json,
        atomic_write_text,
        save_bundle,
    )

    spec = get_spec(recipe.data)
    if recipe.shipped and not spec.shippable:
        raise SystemExit(f"error: {recipe.data} may not be shipped ({spec.licence})")
    folder = Path(out) if out is not None else model_dir(recipe.name)
    log(f"{recipe.name}: loading {recipe.data} at {recipe.image_size} px")
    data = load_recipe_data(recipe, limit_per_class=limit_per_class)
    log(f"{recipe.name}: {data.counts()}")

    def on_epoch_end(p) -> None:
        logs = " ".join(
            f"{k}={v:.4f}"
            for k, v in p.logs.items()
            if k in ("loss", "accuracy", "val_loss", "val_accuracy", "val_auc")
        )
        log(f"{recipe.name}: epoch {p.epoch + 1}/{p.epochs} {p.elapsed_s:.0f}s {logs}")

    packaging = {
        "name": recipe.name,
        "title": recipe.title,
        "modality": spec.modality,
        "command": recipe.command(),
        "limitations": recipe.limitations,
        "intended_use": recipe.intended_use or None,
        "n_bootstrap": n_bootstrap,
    }
    bn_timing: dict[str, float] = {}
    if trained is not None:
        log(f"{recipe.name}: re-packaging the saved model (no training)")
        run = package_result(trained, data, **packaging)
    else:
        bn = precise_batchnorm() if recipe.precise_bn else contextlib.nullcontext({})
        with bn as bn_timing:
            run = train_and_package(recipe.config, data, on_epoch_end=on_epoch_end, **packaging)
    card = run.bundle.card
    metrics = {}
    for split, ev in run.evaluations.items():
        entry = dict(card.metrics[split])
        entry["accuracy_ci"] = accuracy_ci(ev.y_true, ev.y_pred, n_bootstrap=n_bootstrap)
        metrics[split] = entry
    training = dict(card.training)
    training.update(
        {
            "source_of_data": spec.source,
            "split_source": data.extras.get("split_source"),
            "duplicates": duplicate_summary(data),
            "data_classes": list(get_spec(recipe.data).class_names),
            "selection": "architecture, input size, epochs, augmentation, temperature and "
            "threshold chosen on the training/validation splits only; the test split was "
            "evaluated once, after training",
            "batchnorm_statistics": "recomputed on the un-augmented training split after "
            "training (precise BN), before temperature scaling and threshold selection"
            if recipe.precise_bn
            else "moving averages from training",
        }
    )
    if recipe.lesion_data is not None:
        from medviz.data.boxes import HELDOUT_LESIONS_KEY, heldout_lesion_sources

        training[HELDOUT_LESIONS_KEY] = heldout_lesion_sources(data)
    if "seconds" in bn_timing:
        training["batchnorm_seconds"] = round(bn_timing["seconds"], 1)
    training["reproduce"] = (
        "make models (runs python -m tools.make_models: every shipped model)"
        if recipe.shipped
        else f"{THIS_COMMAND} --bench"
    )
    card = replace(card, metrics=metrics, training=training)
    model = inference_model(run.bundle.model)
    save_bundle(model, card, folder)
    size = (folder / "model.keras").stat().st_size
    latency = cpu_latency_ms(model, card.image_size, card.channels)
    training["footprint"] = {"model_bytes": size, "cpu_latency_ms_one_image": round(latency, 1)}
    card = replace(card, training=training)
    atomic_write_json(folder / CARD_FILE, card_dict(folder, card))
    atomic_write_text(folder / README_FILE, render_readme(card))
    log(f"{recipe.name}: saved {folder} ({size / 1e6:.2f} MB) in {run.result.seconds:.0f}s")
    return summarize(card, folder, size_bytes=size, latency_ms=latency, recipe=recipe)


def _ci(values: Sequence[float | None] | None) -> str:
    if not values or any(v is None for v in values):
        return "–"
    return f"{values[0]:.3f}–{values[1]:.3f}"


def card_dict(folder: Path, card) -> dict[str, Any]:
    """``card.to_dict()`` with the ``created``/``medviz_version`` that ``save_bundle`` stamped."""
    from medviz.store import CARD_FILE

    saved = json.loads((Path(folder) / CARD_FILE).read_text(encoding="utf-8"))
    values = card.to_dict()
    for key in ("created", "medviz_version"):
        values[key] = values.get(key) or saved.get(key, "")
    return values


def render_readme(card) -> str:
    """The library's card Markdown plus what make_models adds (every figure from the card)."""
    from medviz.model_readme import built_sections
    from medviz.store import render_card_markdown

    return render_card_markdown(card) + "\n" + built_sections(card) + "\n"


def refresh_docs(name: str) -> Path:
    """Rewrite a recipe-made model's documentation (card text, README) from its recipe.

    For documentation-only changes of this module (title, intended use,
    limitations, command lines): weights and every measured figure are left
    as they are; the footprint is measured when missing.
    """
    from medviz.store import (
        CARD_FILE,
        README_FILE,
        atomic_write_json,
        atomic_write_text,
        load_bundle,
    )

    recipe = get_recipe(name)
    if not isinstance(recipe, Recipe):
        raise SystemExit(f"error: {name} is not made by a make_models recipe")
    folder = model_dir(name)
    bundle = load_bundle(folder)
    card = bundle.card
    training = dict(card.training)
    training["command"] = recipe.command()
    training["reproduce"] = (
        "make models (runs python -m tools.make_models: every shipped model)"
        if recipe.shipped
        else f"{THIS_COMMAND} --bench"
    )
    if "footprint" not in training:
        latency = cpu_latency_ms(bundle.model, card.image_size, card.channels)
        training["footprint"] = {
            "model_bytes": (folder / "model.keras").stat().st_size,
            "cpu_latency_ms_one_image": round(latency, 1),
        }
    card = replace(
        card,
        title=recipe.title,
        intended_use=recipe.intended_use or card.intended_use,
        limitations=tuple(recipe.limitations),
        training=training,
    )
    atomic_write_json(folder / CARD_FILE, card_dict(folder, card))
    atomic_write_text(folder / README_FILE, render_readme(card))
    return folder


def summarize(
    card, folder: Path, *, size_bytes: int, latency_ms: float | None, recipe=None
) -> dict[str, Any]:
    """The JSON summary of one built model (what the bench report is written from)."""
    training = card.training
    return {
        "name": card.name,
        "folder": _relative(folder),
        "shipped": bool(recipe.shipped) if recipe is not None else True,
        "data": training.get("dataset"),
        "licence": card.licence,
        "arch": card.arch,
        "params": card.params,
        "input": f"{card.image_size}x{card.image_size}x{card.channels}",
        "command": training.get("command"),
        "counts": training.get("counts"),
        "epochs_run": training.get("epochs_run"),
        "best_epoch": training.get("best_epoch"),
        "seconds": training.get("seconds"),
        "machine": training.get("machine"),
        "size_bytes": size_bytes,
        "latency_ms": latency_ms,
        "threshold": card.threshold,
        "temperature": card.temperature,
        "calibration": card.calibration,
        "metrics": {
            split: {
                k: m.get(k)
                for k in (
                    "n",
                    "accuracy",
                    "accuracy_ci",
                    "balanced_accuracy",
                    "auc",
                    "auc_ci",
                    "ece",
                    "confusion_matrix",
                )
            }
            for split, m in card.metrics.items()
        },
        "published": getattr(recipe, "published", {}) or {},
    }


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def run_cli(argv: Sequence[str]) -> dict[str, Any]:
    """Run ``python -m medviz <argv> --json`` in-process and return its JSON answer."""
    from medviz.cli import main

    argv = list(argv)
    if "--json" not in argv:
        argv.append("--json")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"error: `python -m medviz {shlex.join(argv)}` exited with {code}")
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    return json.loads(lines[-1])


def build_cli_recipe(recipe: CliRecipe, *, log: Callable[[str], None] = _log) -> dict[str, Any]:
    """Run a CLI recipe (from the repository root, as its recorded command says)."""
    import os

    from medviz.store import load_bundle

    log(f"{recipe.name}: {recipe.command()}")
    previous = Path.cwd()
    os.chdir(REPO_ROOT)
    try:
        run_cli(recipe.argv)
    finally:
        os.chdir(previous)
    folder = model_dir(recipe.name)
    bundle = load_bundle(folder)
    size = (folder / "model.keras").stat().st_size
    latency = cpu_latency_ms(bundle.model, bundle.card.image_size, bundle.card.channels)
    return summarize(bundle.card, folder, size_bytes=size, latency_ms=latency, recipe=recipe)


def existing_summary(name: str) -> dict[str, Any]:
    """The summary of a model already on disk (no training)."""
    from medviz.store import load_bundle

    recipe = get_recipe(name)
    folder = model_dir(name)
    bundle = load_bundle(folder)
    size = (folder / "model.keras").stat().st_size
    return summarize(bundle.card, folder, size_bytes=size, latency_ms=None, recipe=recipe)


# --- cross-dataset evaluation ------------------------------------------------------------------


def cross_evaluate(cell: CrossEval, *, n_bootstrap: int = 1000) -> dict[str, Any]:
    """Evaluate one cell with ``python -m medviz evaluate`` (or its in-process equivalent).

    ``medviz evaluate`` matches classes by name; when a dataset names them
    differently (the INFN folders are ``0``/``1``) the same code path runs
    in-process with the data's class names mapped as ``cell.class_map`` says.
    """
    folder = model_dir(cell.model)
    argv = [
        "evaluate",
        "--model",
        _relative(folder),
        "--data",
        cell.data,
        "--split",
        cell.split,
        "--bootstrap",
        str(n_bootstrap),
    ]
    if not cell.class_map:
        payload = run_cli(argv)
        command = "python -m medviz " + shlex.join([*argv, "--json"])
    else:
        # What cmd_evaluate does, once the data's class names are mapped to the model's.
        from medviz.data import load_dataset
        from medviz.metrics import match_classes
        from medviz.pipeline import evaluate_split
        from medviz.store import load_bundle

        bundle = load_bundle(folder)
        card = bundle.card
        data = load_dataset(cell.data, image_size=card.image_size, channels=card.channels)
        mapping = dict(cell.class_map)
        data = replace(data, class_names=tuple(mapping.get(c, c) for c in data.class_names))
        index = match_classes(card.class_names, data.class_names)
        data = replace(data, labels=index[data.labels], class_names=tuple(card.class_names))
        ev = evaluate_split(bundle, data, cell.split, n_bootstrap=n_bootstrap)
        payload = {"model": _relative(folder), "data": data.name, "split": cell.split}
        payload.update(ev.to_dict())
        command = (
            "in-process medviz evaluate with class map "
            + ", ".join(f"{a}→{b}" for a, b in cell.class_map)
            + f" (python -m medviz {shlex.join(argv)} refuses the differing class names)"
        )
    return {
        "model": cell.model,
        "data": cell.data,
        "split": cell.split,
        "note": cell.note,
        "command": command,
        "result": {
            k: payload.get(k)
            for k in ("n", "accuracy", "balanced_accuracy", "auc", "auc_ci", "ece", "threshold")
        },
    }


BASELINES: tuple[str, ...] = ("covid-ct", "mammo-microcalc", "chest-vs-abdomen")
"""Datasets on which the pixel-threshold baseline (120) runs beside the CNNs, on the same split."""


def run_bench(
    *,
    only: Sequence[str] = (),
    train: bool = True,
    n_bootstrap: int = 1000,
    log: Callable[[str], None] = _log,
) -> dict[str, Any]:
    """Train the bench recipes, evaluate across datasets, write ``bench/results/models.*``.

    Args:
        only: Restrict training to these bench recipes (the others are read
            from ``runs/bench-models/`` when present).
        train: ``False`` re-evaluates what is on disk without training.
        n_bootstrap: Bootstrap resamples for the intervals.
        log: Progress sink.
    """
    models: dict[str, dict[str, Any]] = {}
    for recipe in BENCH:
        folder = model_dir(recipe.name)
        if train and (not only or recipe.name in only):
            models[recipe.name] = build_recipe(recipe, n_bootstrap=n_bootstrap, log=log)
        elif (folder / "model.keras").exists():
            models[recipe.name] = existing_summary(recipe.name)
            models[recipe.name]["latency_ms"] = None
    for recipe in SHIPPED:
        if (model_dir(recipe.name) / "model.keras").exists():
            models[recipe.name] = existing_summary(recipe.name)
    baselines = []
    for data in BASELINES:
        argv = ["baseline", "--data", data, "--threshold", "120", "--split", "test"]
        log(f"baseline: python -m medviz {shlex.join(argv)}")
        payload = run_cli(argv)
        baselines.append(
            {
                "data": data,
                "split": "test",
                "command": "python -m medviz " + shlex.join([*argv, "--json"]),
                "result": {
                    k: payload.get(k)
                    for k in ("n", "accuracy", "balanced_accuracy", "auc", "auc_ci")
                },
            }
        )
    cross = []
    for cell in CROSS:
        if cell.model not in models:
            log(f"cross: {cell.model} is not built; skipped")
            continue
        log(f"cross: {cell.model} on {cell.data} [{cell.split}]")
        cross.append(cross_evaluate(cell, n_bootstrap=n_bootstrap))
    from medviz.pipeline import machine_description

    report = {
        "generated_by": f"{THIS_COMMAND} --bench",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "models": list(models.values()),
        "baselines": baselines,
        "cross_dataset": cross,
    }
    write_report(report)
    return report


def write_report(report: dict[str, Any], folder: Path = BENCH_RESULTS) -> None:
    """Write ``models.json`` and the Markdown rendered from it."""
    from medviz.store import atomic_write_json, atomic_write_text

    atomic_write_json(folder / "models.json", report)
    atomic_write_text(folder / "models.md", render_report(report))


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _with_ci(value: Any, ci: Sequence[Any] | None) -> str:
    text = _f(value)
    if ci and all(v is not None for v in ci):
        text += f" [{ci[0]:.3f}–{ci[1]:.3f}]"
    return text


def render_report(report: dict[str, Any]) -> str:
    """``bench/results/models.md`` from the JSON report (every figure comes from it)."""
    lines = [
        "# Models: shipped, bench-only and cross-dataset",
        "",
        f"Generated by `{report['generated_by']}` on {report['date']} "
        f"({report['machine']}) from `models.json`; do not edit by hand.",
        "Intervals are stratified bootstrap 95 % percentile intervals. Val and test splits are "
        "held out of training (test carved from the source's training data, grouped by file "
        "digest); the official test splits are withheld from this machine.",
        "",
        "## Models",
        "",
        "| model | shipped | data | input | arch | params | split | n | accuracy [95 % CI] "
        "| AUC [95 % CI] | ECE | train s | MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        for split, v in m["metrics"].items():
            lines.append(
                f"| {m['name']} | {'yes' if m['shipped'] else 'no'} | {m['data']} | {m['input']} "
                f"| {m['arch']} | {m['params']:,} | {split} | {v['n']} "
                f"| {_with_ci(v['accuracy'], v.get('accuracy_ci'))} "
                f"| {_with_ci(v['auc'], v.get('auc_ci'))} | {_f(v['ece'])} "
                f"| {_f(m['seconds'], 0)} | {m['size_bytes'] / 1e6:.2f} |"
            )
    published = [m for m in report["models"] if m.get("published")]
    if published:
        lines += ["", "## Published reference figures (cited, not measured here)", ""]
        for m in published:
            pub = dict(m["published"])
            source = pub.pop("source", "")
            parts = "; ".join(
                f"{name}: " + ", ".join(f"{k} {v}" for k, v in vals.items())
                for name, vals in pub.items()
            )
            lines.append(f"- **{m['name']}** ({source}): {parts}")
    if report["baselines"]:
        lines += [
            "",
            "## Pixel-threshold baseline (grey level 120), same split as the CNNs",
            "",
            "| data | split | n | accuracy | AUC [95 % CI] | command |",
            "|---|---|---|---|---|---|",
        ]
        for b in report["baselines"]:
            r = b["result"]
            lines.append(
                f"| {b['data']} | {b['split']} | {r['n']} | {_f(r['accuracy'])} "
                f"| {_with_ci(r['auc'], r.get('auc_ci'))} | `{b['command']}` |"
            )
    if report["cross_dataset"]:
        lines += [
            "",
            "## Cross-dataset",
            "",
            "| model | evaluated on | split | n | accuracy | AUC [95 % CI] | ECE | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in report["cross_dataset"]:
            r = c["result"]
            lines.append(
                f"| {c['model']} | {c['data']} | {c['split']} | {r['n']} | {_f(r['accuracy'])} "
                f"| {_with_ci(r['auc'], r.get('auc_ci'))} | {_f(r['ece'])} | {c['note']} |"
            )
        lines += ["", "Commands:", ""]
        lines += [f"- `{c['command']}`" for c in report["cross_dataset"]]
    lines.append("")
    return "\n".join(lines)


README_FILE_OF_REPO = REPO_ROOT / "README.md"
README_BEGIN = "<!-- shipped-models:begin (python -m tools.make_models --readme) -->"
README_END = "<!-- shipped-models:end -->"


def render_shipped_table(models_dir: Path = MODELS_DIR) -> str:
    """The README's table of shipped models, every figure read from their ``card.json``.

    Reads JSON only (no TensorFlow), so the test that keeps the README in step
    with the cards is cheap.
    """
    lines = [
        "| model | classes | input | arch, params | val accuracy [95 % CI] | val AUC [95 % CI] "
        "| in-distribution test accuracy | test AUC | ECE (val, after temperature) | training "
        "| size |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for folder in sorted(p for p in Path(models_dir).iterdir() if (p / "card.json").exists()):
        card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
        metrics = card.get("metrics", {})
        val, test = metrics.get("val", {}), metrics.get("test", {})
        training = card.get("training", {})
        size = (folder / "model.keras").stat().st_size if (folder / "model.keras").exists() else 0
        lines.append(
            f"| [`{card['name']}`](models/{folder.name}/README.md) "
            f"| {', '.join(card['class_names'])} "
            f"| {card['image_size']}×{card['image_size']}×{card['channels']} "
            f"| {card['arch']}, {card['params']:,} "
            f"| {_with_ci(val.get('accuracy'), val.get('accuracy_ci'))} "
            f"| {_with_ci(val.get('auc'), val.get('auc_ci'))} "
            f"| {_f(test.get('accuracy'))} | {_f(test.get('auc'))} | {_f(val.get('ece'))} "
            f"| {_f(training.get('seconds'), 0)} s on {training.get('machine', '?')} "
            f"| {size / 1e6:.1f} MB |"
        )
    return "\n".join(lines)


def update_readme(path: Path = README_FILE_OF_REPO, *, models_dir: Path = MODELS_DIR) -> bool:
    """Rewrite the shipped-models block of ``path`` from the cards; ``True`` if it changed.

    Raises:
        SystemExit: The README lacks the begin/end markers.
    """
    from medviz.docblocks import update_file

    try:
        return update_file(Path(path), README_BEGIN, README_END, render_shipped_table(models_dir))
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None


# --- command line ------------------------------------------------------------------------------


def describe(recipe: Recipe | CliRecipe) -> dict[str, Any]:
    """A recipe as JSON (for ``--list``)."""
    if isinstance(recipe, CliRecipe):
        return {"name": recipe.name, "shipped": recipe.shipped, "command": recipe.command()}
    return {
        "name": recipe.name,
        "shipped": recipe.shipped,
        "data": recipe.data,
        "command": recipe.command(),
        "config": recipe.config.to_dict(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.make_models``."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.make_models",
        description="Reproduce the shipped models (models/) and the bench results.",
    )
    parser.add_argument("--only", nargs="+", default=(), metavar="NAME", help="these models only")
    parser.add_argument(
        "--bench",
        action="store_true",
        help="train the not-shipped models and write bench/results/models.{json,md}",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="with --bench: re-evaluate the models on disk without training",
    )
    parser.add_argument(
        "--docs-only",
        action="store_true",
        help="rewrite the command lines and README.md of the --only models from their cards",
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help="rewrite README.md's table of shipped models from their cards (no training)",
    )
    parser.add_argument(
        "--repackage",
        action="store_true",
        help="re-run calibration, threshold policy, evaluation, stress test and card of the "
        "--only models from their saved model.keras (no training)",
    )
    parser.add_argument("--bootstrap", type=int, default=1000)
    parser.add_argument("--list", action="store_true", help="print the recipes as JSON")
    args = parser.parse_args(argv)
    if args.list:
        print(json.dumps([describe(r) for r in recipes(shipped=True, bench=True)], indent=2))
        return 0
    for name in args.only:
        get_recipe(name)  # fail fast on a typo
    if args.readme:
        _log("README.md " + ("updated" if update_readme() else "already up to date"))
        return 0
    if args.docs_only:
        for name in args.only:
            _log(f"{name}: docs refreshed in {refresh_docs(name)}")
        update_readme()
        return 0
    if args.bench:
        only = [n for n in args.only if not get_recipe(n).shipped]
        run_bench(only=only, train=not args.report_only, n_bootstrap=args.bootstrap)
        return 0
    summaries = []
    for recipe in SHIPPED:
        if args.only and recipe.name not in args.only:
            continue
        if isinstance(recipe, CliRecipe):
            summary = build_cli_recipe(recipe)
        elif args.repackage:
            summary = build_recipe(recipe, n_bootstrap=args.bootstrap, trained=saved_result(recipe))
        else:
            summary = build_recipe(recipe, n_bootstrap=args.bootstrap)
        if summary["size_bytes"] > MAX_MODEL_BYTES:
            _log(f"warning: {recipe.name} is {summary['size_bytes'] / 1e6:.1f} MB (> 15 MB)")
        summaries.append(summary)
    update_readme()
    print(json.dumps(summaries))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
