"""The recipes of every model MedViz ships or benchmarks, and where their folders live.

A :class:`Recipe` is trained through the public API (:func:`medviz.training.train`
then :func:`medviz.pipeline.package_result`, see :mod:`tools.make_models.build`); its
``config`` is exactly what ``medviz train --config`` reads (``--list`` prints it, and every
model card stores it under ``training.config``), precise BatchNorm included
(``TrainConfig.precise_bn``);
a :class:`CliRecipe` is one ``python -m medviz train …`` command. :data:`CROSS`
and :data:`BASELINES` are the cells of the bench's cross-dataset and baseline
tables (:mod:`tools.make_models.report`).

Every path is relative to an output root: by default the checkout this tool
lives in (:data:`REPO_ROOT`), else the ``root`` passed in (``--root``).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medviz.training import TrainConfig

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The checkout holding this tool: the default output root."""
MODELS = Path("models")
"""Shipped model folders, relative to the output root."""
BENCH_RESULTS = Path("bench") / "results"
"""Where ``--bench`` writes ``models.json`` and ``models.md``, relative to the output root."""
BENCH_RUNS = Path("runs") / "bench-models"
"""Not-shipped (bench) model folders, relative to the output root (git-ignored)."""
MAX_MODEL_BYTES = 15 * 1024**2
THIS_COMMAND = "python -m tools.make_models"

RESEARCH_ONLY = (
    "Research and teaching only: not a medical device, never for diagnosis or any clinical "
    "decision."
)

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


CONFIGS = Path(__file__).resolve().parent / "configs"
"""One ``TrainConfig`` file per recipe (``<name>.yaml``), the same files ``medviz train --config``
reads; the comments in each say why its augmentation looks as it does."""


def recipe_config(name: str) -> TrainConfig:
    """The training config of recipe ``name``, read from ``configs/<name>.yaml``.

    Through :func:`medviz.cli.config_from_file`, the reader behind ``medviz train --config``,
    so the recipe and the public command cannot disagree.
    """
    from medviz.cli import config_from_file

    return config_from_file(CONFIGS / f"{name}.yaml")


def from_file(name: str) -> dict[str, Any]:
    """The data and training fields of :class:`Recipe` ``name``, read from ``configs/<name>.yaml``.

    Its ``dataset`` block (registry name, channels, display class names, lesion images) and
    its ``config`` are what ``medviz train --config`` reads
    (:func:`medviz.data.recipe.data_recipe_from_file`), so the recipe and the command agree.
    """
    from medviz.data.recipe import data_recipe_from_file

    data = data_recipe_from_file(CONFIGS / f"{name}.yaml")
    if data is None:
        raise SystemExit(f"error: {CONFIGS / f'{name}.yaml'} has no dataset block")
    return {
        "data": data.name,
        "channels": data.channels or 1,
        "class_names": data.class_names,
        "lesion_data": data.lesion_data,
        "config": recipe_config(name),
    }


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
        **from_file("pneumonia-xray"),
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
        **from_file("brain-mri"),
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
        **from_file("pneumonia-xray-28px"),
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
        shipped=False,
        **from_file("covid-ct"),
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
        shipped=False,
        **from_file("covid-ct-source-cnn"),
        limitations=("No patient ids: slices of one patient land in several splits.",),
    ),
    Recipe(
        name="mammo-microcalc",
        title="INFN mammogram patches: normal vs microcalcification (not shipped: no licence)",
        shipped=False,
        **from_file("mammo-microcalc"),
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
        shipped=False,
        **from_file("chest-vs-abdomen"),
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


def model_dir(name: str, *, root: Path = REPO_ROOT) -> Path:
    """Where the model called ``name`` lives (``root/models/`` or ``root/runs/bench-models/``)."""
    recipe = get_recipe(name)
    return Path(root) / (MODELS if recipe.shipped else BENCH_RUNS) / name


def relative(path: Path, *, root: Path = REPO_ROOT) -> str:
    """``path`` relative to ``root`` as recorded in cards and reports (else as given)."""
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


BASELINES: tuple[str, ...] = ("covid-ct", "mammo-microcalc", "chest-vs-abdomen")
"""Datasets on which the pixel-threshold baseline (120) runs beside the CNNs, on the same split."""


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
