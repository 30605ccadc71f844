"""Data loading: registry, decoders, folder/zip/npz loaders, health checks.

Importing this package is cheap: it needs Pillow and NumPy only. pydicom is
imported when the first DICOM file is read, scikit-learn when a health report
runs its shortcut check, and TensorFlow never.
"""

from __future__ import annotations

from pathlib import Path

from medviz.data.balance import class_weights, undersample
from medviz.data.boxes import has_annotations, load_annotated_folder
from medviz.data.dataset import SPLITS, Dataset, Provenance, assign_splits
from medviz.data.download import MEDMNIST, download_medmnist, load_medmnist
from medviz.data.folders import load_folder, load_zip
from medviz.data.groups import Groups, find_groups, near_duplicate_groups, pattern_groups
from medviz.data.health import (
    CrossDatasetReport,
    HealthReport,
    cross_dataset_report,
    health_report,
)
from medviz.data.images import DecodedImage, decode_image, to_model_input
from medviz.data.npz import load_npz
from medviz.data.registry import DATASETS, DEFAULT_DATASET, DatasetSpec, data_root, get_spec
from medviz.data.streaming import StreamedDataset, stream_folder, stream_zip
from medviz.errors import DataError

DEFAULT_IMAGE_SIZE = 128
"""Side length used by :func:`load_dataset` for folders and zips when none is given."""

MEDMNIST_PREFIX = "medmnist:"


def load_dataset(
    source: str | Path,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    seed: int = 0,
    limit_per_class: int | None = None,
    group_pattern: str | None = None,
    stream: bool = False,
) -> Dataset | StreamedDataset:
    """Load a dataset by registry name, ``medmnist:<name>``, or path.

    Args:
        source: A name in :data:`DATASETS`, ``"medmnist:<name>"`` (from the
            download cache, fetched if missing), or the path of a folder, a
            ``.zip`` or an ``.npz`` file. A folder with box ``.txt`` files or
            ``*_mask`` images beside its images loads with ``masks`` (see
            :mod:`medviz.data.boxes`).
        image_size: Side length to resize to (default: the registry's, 128
            for folders and zips, native for ``.npz``).
        channels: 1 or 3 (default: the registry's, else 1 for folders, zips
            and ``.npz``, the file's own for MedMNIST).
        seed: Seed of generated data and of splits the source lacks.
        limit_per_class: Keep at most this many images per split and class.
        group_pattern: Regular expression reading a patient id out of each
            file's relative path (first capture group), so a patient's images
            share a split (default: the registry's, else none: groups are
            near-duplicate clusters). See :mod:`medviz.data.groups`.
        stream: Decode once into a disk cache and return a
            :class:`~medviz.data.streaming.StreamedDataset` whose pixels are
            read batch by batch (folders, zips and registry folder datasets;
            see :mod:`medviz.data.streaming`).

    Returns:
        The :class:`Dataset` (a ``StreamedDataset`` with ``stream``).

    Raises:
        DataError: ``source`` is none of the above, or the loader failed.
        OfflineError: A MedMNIST file is not cached and cannot be downloaded.
    """
    text = str(source)
    if stream:
        return _load_streamed(
            source,
            image_size=image_size,
            channels=channels,
            seed=seed,
            limit_per_class=limit_per_class,
            group_pattern=group_pattern,
        )
    if isinstance(source, str) and source in DATASETS:
        return get_spec(source).load(
            image_size=image_size,
            channels=channels,
            seed=seed,
            limit_per_class=limit_per_class,
            group_pattern=group_pattern,
        )
    if isinstance(source, str) and source.startswith(MEDMNIST_PREFIX):
        return load_medmnist(
            source[len(MEDMNIST_PREFIX) :],
            image_size=image_size,
            channels=channels,
            seed=seed,
            limit_per_class=limit_per_class,
        )
    path = Path(source).expanduser()
    common = {
        "channels": channels or 1,
        "seed": seed,
        "limit_per_class": limit_per_class,
        "group_pattern": group_pattern,
    }
    if path.is_dir():
        if has_annotations(path):  # boxes/masks beside the images: keep them as masks
            return load_annotated_folder(
                path, image_size=image_size or DEFAULT_IMAGE_SIZE, **common
            )
        return load_folder(path, image_size=image_size or DEFAULT_IMAGE_SIZE, **common)
    if path.is_file() and path.suffix.lower() == ".zip":
        return load_zip(path, image_size=image_size or DEFAULT_IMAGE_SIZE, **common)
    if path.is_file() and path.suffix.lower() == ".npz":
        return load_npz(path, image_size=image_size, **common)
    raise DataError(
        f"unknown dataset {text!r}: not a registered name {sorted(DATASETS)}, not "
        f"'{MEDMNIST_PREFIX}<name>' with a name in {sorted(MEDMNIST)}, and not an existing "
        "folder, .zip or .npz file"
    )


def _load_streamed(
    source: str | Path,
    *,
    image_size: int | None,
    channels: int | None,
    seed: int,
    limit_per_class: int | None,
    group_pattern: str | None,
) -> StreamedDataset:
    """:func:`load_dataset` with ``stream=True``: folders and zips, named or by path."""
    options = {"seed": seed, "limit_per_class": limit_per_class}
    path = Path(source).expanduser()
    if isinstance(source, str) and source in DATASETS:
        spec = get_spec(source)
        if spec.kind != "folder" or has_annotations(spec.path()):
            raise DataError(
                f"dataset {source!r} is {spec.kind} data"
                + (" with lesion annotations" if spec.kind == "folder" else "")
                + "; streaming reads plain image folders and zips: load it without --stream"
            )
        return stream_folder(
            spec.path(),
            image_size=image_size or spec.image_size,
            channels=channels or spec.channels,
            name=spec.name,
            licence=spec.licence,
            group_pattern=group_pattern or spec.group_pattern,
            **options,
        )
    common = {
        "image_size": image_size or DEFAULT_IMAGE_SIZE,
        "channels": channels or 1,
        "group_pattern": group_pattern,
        **options,
    }
    if path.is_dir():
        return stream_folder(path, **common)
    if path.is_file() and path.suffix.lower() == ".zip":
        return stream_zip(path, **common)
    raise DataError(
        f"cannot stream {str(source)!r}: streaming reads image folders and .zip files "
        f"(and registry folder datasets); load .npz, MedMNIST and generated data in memory"
    )


__all__ = [
    "DATASETS",
    "DEFAULT_DATASET",
    "MEDMNIST",
    "SPLITS",
    "CrossDatasetReport",
    "Dataset",
    "DatasetSpec",
    "DecodedImage",
    "Groups",
    "HealthReport",
    "Provenance",
    "StreamedDataset",
    "assign_splits",
    "class_weights",
    "cross_dataset_report",
    "data_root",
    "decode_image",
    "download_medmnist",
    "find_groups",
    "get_spec",
    "has_annotations",
    "health_report",
    "load_annotated_folder",
    "load_dataset",
    "load_folder",
    "load_medmnist",
    "load_npz",
    "load_zip",
    "near_duplicate_groups",
    "pattern_groups",
    "stream_folder",
    "stream_zip",
    "to_model_input",
    "undersample",
]
