"""The one registry of datasets MedViz knows by name.

Each entry is a small frozen :class:`DatasetSpec`. Real datasets live under
the data root (``$MEDVIZ_DATA_ROOT``, default ``../shared/datasets`` next to
MedViz's home folder, see :mod:`medviz.locations`); the embedded default is
generated on the fly and needs no files at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from medviz import locations
from medviz.augment import AugmentConfig
from medviz.data.boxes import load_annotated_folder
from medviz.data.dataset import Dataset
from medviz.data.folders import load_folder
from medviz.data.npz import load_npz
from medviz.data.synthetic import generate_microcalc
from medviz.errors import DataError

DEFAULT_DATASET = "synthetic-microcalc"


def data_root() -> Path:
    """Folder holding the real datasets (``$MEDVIZ_DATA_ROOT`` or ``<home>/../shared/datasets``).

    See :mod:`medviz.locations` for how the home folder is found with or without a checkout.
    """
    return locations.data_root()


@dataclass(frozen=True)
class DatasetSpec:
    """One named dataset.

    Attributes:
        name: Registry key, e.g. ``"brain-mri"``.
        title: Human title.
        modality: ``"mammography"``, ``"chest X-ray"``, ``"MRI"``, ``"CT"`` …
        class_names: The classes in label order.
        kind: ``"generated"``, ``"folder"`` or ``"npz"``.
        location: Path below :func:`data_root` (``None`` when generated).
        image_size: Default side length images are resized to.
        channels: Default channel count (1 for grayscale).
        licence: Licence of the data.
        source: Origin / citation.
        shippable: Whether models trained on it may ship with MedViz.
        notes: Known traps, for people.
        augment: The augmentation that keeps these images realistic.
        group_pattern: Regular expression reading the patient (or subject)
            id out of a file's relative path (first capture group), so one
            patient's images share a split; ``None`` when names carry no id
            (groups are then near-duplicate clusters). See
            :mod:`medviz.data.groups`.
        recipe: :class:`~medviz.training.TrainConfig` fields that train this
            dataset well (measured), the defaults of ``medviz train`` and the
            Train page for it; explicit settings override them.
    """

    name: str
    title: str
    modality: str
    class_names: tuple[str, ...]
    kind: Literal["generated", "folder", "npz"]
    location: str | None
    image_size: int
    channels: int
    licence: str
    source: str
    shippable: bool = True
    notes: str = ""
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    group_pattern: str | None = None
    recipe: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def path(self, root: Path | None = None) -> Path | None:
        """Where the data lives, or ``None`` for generated data."""
        if self.location is None:
            return None
        return (root or data_root()) / self.location

    def is_available(self, root: Path | None = None) -> bool:
        """Whether the data can be loaded without a download."""
        path = self.path(root)
        return path is None or path.exists()

    def load(
        self,
        *,
        image_size: int | None = None,
        channels: int | None = None,
        seed: int = 0,
        root: Path | None = None,
        limit_per_class: int | None = None,
        group_pattern: str | None = None,
    ) -> Dataset:
        """Load (or generate) the dataset.

        Args:
            image_size: Side length to resize to (default: the spec's).
            channels: 1 or 3 (default: the spec's).
            seed: Seed for generation and for splits the source lacks.
            root: Data root overriding :func:`data_root`.
            limit_per_class: Keep at most this many images per class and
                split (for quick looks and tests).
            group_pattern: Patient-id pattern overriding the spec's.

        Raises:
            DataError: The data is not present under the data root.
        """
        size = image_size or self.image_size
        chans = channels or self.channels
        if self.kind == "generated":
            n = 2400 if limit_per_class is None else 2 * limit_per_class
            return generate_microcalc(n, image_size=size, channels=chans, seed=seed)
        path = self.path(root)
        assert path is not None
        if not path.exists():
            raise DataError(
                f"dataset {self.name!r} is not available: {path} does not exist "
                f"(set MEDVIZ_DATA_ROOT to the folder holding {self.location!r})"
            )
        common = {
            "image_size": size,
            "channels": chans,
            "seed": seed,
            "name": self.name,
            "licence": self.licence,
            "limit_per_class": limit_per_class,
            "group_pattern": group_pattern or self.group_pattern,
        }
        if self.kind == "npz":
            dataset = load_npz(path, class_names=self.class_names, **common)
        else:
            dataset = load_folder(path, **common)
        return dataset


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="synthetic-microcalc",
            title="Synthetic mammogram patches: normal tissue vs microcalcification cluster",
            modality="mammography",
            class_names=("normal", "microcalcification"),
            kind="generated",
            location=None,
            image_size=64,
            channels=1,
            licence="CC0-1.0 (generated by MedViz)",
            source="medviz.data.synthetic: power-law (beta=3) tissue texture with clusters "
            "of 3-8 bright specks; ground-truth masks included",
            # Flips are lossless and patches have no left/right. Rotation and zoom resample
            # bilinearly, which blurs specks 1-2 px wide: the network then sees sharper specks
            # at inference than in training (measured: val AUC lagged train by 0.3).
            augment=AugmentConfig(
                rotation_deg=0.0, zoom_max=1.0, horizontal_flip=True, vertical_flip=True
            ),
            # The stage recipe (bench/results/stage-recipe.md): with the constant rate and
            # ReduceLROnPlateau, val AUC fell back to 0.57 after reaching 0.99; one warm-up
            # epoch then cosine decay over 6 epochs never fell below 0.8 after the first.
            recipe={
                "epochs": 6,
                "lr_schedule": "cosine",
                "warmup_epochs": 1.0,
                "reduce_lr_patience": None,
            },
        ),
        DatasetSpec(
            name="pneumoniamnist",
            title="PneumoniaMNIST 28x28 (paediatric chest X-ray)",
            modality="chest X-ray",
            class_names=("normal", "pneumonia"),
            kind="npz",
            location="pneumoniamnist/pneumoniamnist_train_val.npz",
            image_size=28,
            channels=1,
            licence="CC BY 4.0",
            source="MedMNIST v2 (Yang et al., Sci Data 2023); Kermany et al., Cell 2018",
            notes="Official test split withheld; make validation choices on train/val.",
        ),
        DatasetSpec(
            name="chest-xray-pneumonia",
            title="Paediatric chest X-ray, normal vs pneumonia (224 px JPEG)",
            modality="chest X-ray",
            class_names=("NORMAL", "PNEUMONIA"),
            kind="folder",
            location="chest_xray_pneumonia_224",
            image_size=128,
            channels=1,
            licence="CC BY 4.0",
            source="Kermany et al., Mendeley Data v2, doi:10.17632/rscbjbr9sj.2",
            notes="Squashed to 224x224 upstream; 30 duplicate groups; imbalance 1:2.9.",
            # personN_bacteria_M.jpeg, IM-xxxx-000k.jpeg, NORMAL2-IM-xxxx-000k.jpeg: 2,846
            # patients in train, 1,075 of them with several X-rays
            group_pattern=r"(?:^|/)((?:NORMAL2-)?IM-\d+|person\d+)[-_][^/]*$",
        ),
        DatasetSpec(
            name="brain-mri",
            title="Brain tumour MRI, 4 classes",
            modality="MRI",
            class_names=("glioma", "meningioma", "notumor", "pituitary"),
            kind="folder",
            location="brain_mri",
            image_size=128,
            channels=1,
            licence="CC0-1.0 (Kaggle listing); components CC BY 4.0 / Kaggle uploads",
            source="Kaggle 'Brain Tumor MRI Dataset' (Nickparvar): figshare + SARTAJ + Br35H",
            notes="Mixed L/RGB; 5 PNGs named .jpg; 194 duplicate groups; size predicts class.",
        ),
        DatasetSpec(
            name="covid-ct",
            title="SARS-CoV-2 lung CT, COVID vs non-COVID",
            modality="CT",
            class_names=("COVID", "non-COVID"),
            kind="folder",
            location="sars_cov2_ct",
            image_size=128,
            channels=1,
            licence="CC BY-NC-SA 4.0",
            source="Soares et al., medRxiv 2020, doi:10.1101/2020.04.24.20078584",
            shippable=False,
            notes="No patient ids: slices of one patient can land in several splits.",
        ),
        DatasetSpec(
            name="mammo-microcalc",
            title="Mammogram patches, normal vs microcalcification cluster (60x60 PGM)",
            modality="mammography",
            class_names=("0", "1"),
            kind="folder",
            location="mammo_microcalc",
            image_size=64,
            channels=1,
            licence="none stated (INFN Pisa course material)",
            source="INFN Pisa CMEPDA course data via lorenzomarini96/microcal_classifier",
            shippable=False,
            notes="0 = normal tissue, 1 = microcalcification cluster; neighbouring patches "
            "correlate.",
            # 0006s1_1_1_1.pgm_3.pgm: the 4-digit mammogram id, shared by all patches of it
            group_pattern=r"(?:^|/)(\d{4})[a-z]\d*_[^/]*$",
        ),
        DatasetSpec(
            name="chest-vs-abdomen",
            title="Chest vs abdominal radiograph ('Hello World Deep Learning')",
            modality="X-ray",
            class_names=("openI_CXR", "openI_abd_xray"),
            kind="folder",
            location="chest_vs_abd_xray",
            image_size=128,
            channels=1,
            licence="none stated (Open-i images)",
            source="Lakhani et al., J Digit Imaging 2018",
            shippable=False,
            notes="Image size alone separates the classes unless resized.",
        ),
    )
}


# --- localisation data: folders with lesion boxes or masks beside the images ----------------------
@dataclass(frozen=True)
class AnnotatedFolderSpec(DatasetSpec):
    """A class-folder dataset with box ``.txt`` files or ``*_mask`` images (see
    :mod:`medviz.data.boxes`); it loads with ``masks``.

    Attributes:
        group_consecutive: Keep runs of consecutive file numbers of one class
            in one split (slices numbered in acquisition order).
    """

    group_consecutive: bool = False

    def load(
        self,
        *,
        image_size: int | None = None,
        channels: int | None = None,
        seed: int = 0,
        root: Path | None = None,
        limit_per_class: int | None = None,
        group_pattern: str | None = None,
    ) -> Dataset:
        """Load the folder with its lesion masks (see :meth:`DatasetSpec.load`).

        ``group_pattern`` is accepted for a uniform signature; splits of this
        folder are grouped by runs of consecutive numbers (``group_consecutive``)
        and near-duplicates, not by a file-name pattern.
        """
        path = self.path(root)
        assert path is not None
        if not path.exists():
            raise DataError(
                f"dataset {self.name!r} is not available: {path} does not exist "
                f"(set MEDVIZ_DATA_ROOT to the folder holding {self.location!r})"
            )
        return load_annotated_folder(
            path,
            image_size=image_size or self.image_size,
            channels=channels or self.channels,
            seed=seed,
            name=self.name,
            licence=self.licence,
            limit_per_class=limit_per_class,
            group_consecutive=self.group_consecutive,
        )


DATASETS["brain-tumor-boxes"] = AnnotatedFolderSpec(
    name="brain-tumor-boxes",
    title="Brain tumour MRI with tumour boxes (figshare, 3 classes; localisation benchmark)",
    modality="MRI",
    class_names=("glioma", "meningioma", "pituitary"),
    kind="folder",
    location="brain_tumor_boxes",
    image_size=128,
    channels=1,
    licence="CC BY 4.0",
    source="Cheng, figshare 2017, doi:10.6084/m9.figshare.1512427; boxes from the tumour masks "
    "by the RCS-YOLO authors",
    notes="Every image has a tumour box; consecutive numbers are often one patient (splits keep "
    "runs together); many slices are also in brain-mri, so use it for where heatmaps point, "
    "not for accuracy.",
    group_consecutive=True,
)


def has_lesion_masks(spec: DatasetSpec) -> bool:
    """Whether a registered dataset loads with lesion masks (generated or annotated)."""
    return spec.kind == "generated" or isinstance(spec, AnnotatedFolderSpec)


def get_spec(name: str) -> DatasetSpec:
    """Return the registry entry called ``name``.

    Raises:
        DataError: ``name`` is not registered.
    """
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset {name!r}; registered: {sorted(DATASETS)}") from None
