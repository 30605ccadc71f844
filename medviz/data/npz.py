"""Load MedMNIST-style ``.npz`` files.

The archive holds ``{split}_images`` and ``{split}_labels`` for any of the
splits train/val/test. Images are ``(N, H, W)`` or ``(N, H, W, C)`` with
``C`` 1 or 3, ``uint8`` (other integer types within 0–255 are accepted, and
floats in [0, 1] or [0, 255] are scaled and rounded). Labels are ``(N,)`` or
``(N, 1)`` integers; multi-label ``(N, K)`` files such as ChestMNIST are
refused. Missing splits are completed like folder datasets do
(:func:`medviz.data.folders.complete_splits`): carved out of train, or
assigned afresh when there is no train split. Files are read with
``allow_pickle=False``, so an ``.npz`` can never run code.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from medviz.data.dataset import SPLITS, Dataset, Provenance
from medviz.data.folders import complete_splits
from medviz.data.groups import compile_pattern, find_groups
from medviz.data.images import rgb_to_gray, to_model_input
from medviz.data.medmnist import MEDMNIST, MedmnistSource
from medviz.errors import DataError


def load_npz(
    source: bytes | str | Path,
    *,
    class_names: Sequence[str] | None = None,
    image_size: int | None = None,
    channels: int = 1,
    seed: int = 0,
    name: str | None = None,
    licence: str = "unknown",
    limit_per_class: int | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    origin: str | None = None,
    group_pattern: str | None = None,
) -> Dataset:
    """Load a MedMNIST-style ``.npz`` archive.

    Args:
        source: Path of the ``.npz`` file, or its bytes.
        class_names: Names of the classes in label order (default: MedMNIST's
            names when the file is recognised as one, see
            :func:`recognise_medmnist`, else ``"0"`` … ``"K-1"`` with ``K`` the
            largest label + 1).
        image_size: Side length ``S`` to resize to (square); ``None`` keeps
            the native ``H × W``.
        channels: 1 (grayscale, ITU-R 601 luma of colour images) or 3.
        seed: Seed of the splits the file lacks.
        name: Dataset name (default: the file name without ``.npz``).
        licence: Licence of the data.
        limit_per_class: Keep the first ``K`` images (file order) of every
            split and class.
        fractions: Train/val/test fractions for completed splits.
        origin: How messages name the file (default: its path, or ``name``
            for bytes), e.g. the file name of an upload.
        group_pattern: Regular expression searched in each image's source
            (``"{split}_images[i]"``) whose first capture group is its group;
            without it groups are near-duplicate clusters
            (:func:`medviz.data.groups.find_groups`), which completed splits
            keep whole.

    Returns:
        A :class:`Dataset` with ``(N, S, S, channels)`` images (or native
        size); provenance sources are ``"{split}_images[i]"`` and digests the
        SHA-1 of each stored image; ``extras["split_source"]`` tells which
        splits were given.

    Raises:
        DataError: Unreadable file, missing or mismatched keys, non-finite or
            out-of-range values, labels outside ``class_names``.
    """
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    if image_size is not None and (not isinstance(image_size, int) or image_size < 1):
        raise DataError(f"image_size must be None or a positive integer, got {image_size!r}")
    if limit_per_class is not None and limit_per_class < 1:
        raise DataError(f"limit_per_class must be None or at least 1, got {limit_per_class!r}")
    if group_pattern:
        compile_pattern(group_pattern)
    if isinstance(source, bytes | bytearray | memoryview):
        label, default_name, opened = name or "<npz bytes>", "uploaded npz", io.BytesIO(source)
    else:
        path = Path(source).expanduser()
        label, default_name, opened = str(path), path.stem, path
    origin = origin or label
    # what the file is called decides whether it is MedMNIST: the name given, the path's
    # stem, or (for uploaded bytes) the file name the upload came with
    ident = name or (origin if isinstance(source, bytes | bytearray | memoryview) else default_name)
    try:
        archive = np.load(opened, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{origin}: not a readable .npz file ({exc})") from exc
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{origin}: holds a single array, expected an .npz with {{split}}_images")
    with archive:
        keys = tuple(archive.files)
        _refuse_chestmnist(ident, origin)
        parts = _read_splits(archive, origin)

    medmnist = recognise_medmnist(ident, keys)
    if class_names is None and medmnist is not None:
        class_names = medmnist.class_names
        licence = medmnist.licence if licence == "unknown" else licence
    if class_names is None:
        top = max((int(labels.max()) for _, _, labels in parts if labels.size), default=0)
        class_names = tuple(str(i) for i in range(top + 1))
    class_names = tuple(class_names)
    for split, _, labels in parts:
        if labels.size and labels.max() >= len(class_names):
            raise DataError(
                f"{origin}: {split}_labels holds label {int(labels.max())} but only "
                f"{len(class_names)} class names were given: {list(class_names)}"
            )

    images, labels, given, sources, digests, sizes, modes = [], [], [], [], [], [], []
    for split, split_images, split_labels in parts:
        keep = _first_per_class(split_labels, limit_per_class)
        for i in keep:
            stored = split_images[i]
            digests.append(hashlib.sha1(np.ascontiguousarray(stored).tobytes()).hexdigest())
            sources.append(f"{split}_images[{i}]")
            sizes.append((stored.shape[1], stored.shape[0]))
            modes.append("RGB" if stored.ndim == 3 and stored.shape[2] == 3 else "L")
        images.append(_convert(split_images[keep], image_size=image_size, channels=channels))
        labels.append(split_labels[keep])
        given += [split] * len(keep)
    all_labels = np.concatenate(labels).astype(np.int64)
    if not len(all_labels):
        raise DataError(f"{origin}: holds no images")
    all_images = np.concatenate(images)
    groups = find_groups(all_images, sources, pattern=group_pattern, digests=digests)
    splits, split_source = complete_splits(
        all_labels, given, groups=groups.keys, fractions=fractions, seed=seed
    )
    return Dataset(
        name=name or default_name,
        images=all_images,
        labels=all_labels,
        class_names=class_names,
        splits=splits,
        provenance=Provenance(
            sources=tuple(sources),
            original_sizes=np.array(sizes, dtype=np.int64).reshape(-1, 2),
            original_modes=tuple(modes),
            digests=tuple(digests),
            groups=groups.keys,
            group_methods=groups.how,
            near_pairs=groups.near_pairs,
        ),
        licence=licence,
        description=f"{len(all_labels)} images in {len(class_names)} classes from {origin}",
        extras={
            "split_source": split_source,
            "origin": origin,
            "skipped": [],
            "errors": [],
            "groups": groups.to_dict(),
        },
    )


MEDMNIST_KEYS = frozenset(f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels"))
"""The arrays an official MedMNIST ``.npz`` holds (a copy may lack a split)."""

_MEDMNIST_NAME = re.compile(r"^([a-z]+mnist)(?:[_\-.].*)?$")


def recognise_medmnist(file_name: str, keys: Sequence[str]) -> MedmnistSource | None:
    """The MedMNIST dataset an ``.npz`` file is, from its name and keys, else ``None``.

    A file counts as MedMNIST when its name (without ``.npz``) starts with a
    known flag such as ``pneumoniamnist`` (``pneumoniamnist_224``,
    ``pneumoniamnist_train_val`` …) and it holds only MedMNIST keys
    (``{train,val,test}_{images,labels}``). Its class names then come from
    the MedMNIST info table (:data:`medviz.data.medmnist.MEDMNIST`, taken from
    ``medmnist/info.py``) instead of ``"0"``, ``"1"`` ….

    Args:
        file_name: File name or stem, e.g. ``"pneumoniamnist_train_val.npz"``.
        keys: The array names in the file.

    Returns:
        The :class:`~medviz.data.medmnist.MedmnistSource`, or ``None``.
    """
    match = _MEDMNIST_NAME.match(Path(str(file_name)).name.lower().removesuffix(".npz"))
    if match is None or match.group(1) not in MEDMNIST:
        return None
    if not keys or not set(keys) <= MEDMNIST_KEYS:
        return None
    return MEDMNIST[match.group(1)]


def _refuse_chestmnist(file_name: str, origin: str) -> None:
    stem = Path(str(file_name)).name.lower()
    if stem.startswith("chestmnist"):
        raise DataError(
            f"{origin}: ChestMNIST is multi-label (14 findings per image), which MedViz does "
            "not support; use a single-label MedMNIST set such as pneumoniamnist"
        )


def _read_splits(
    archive: np.lib.npyio.NpzFile, origin: str
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``(split, images (N, H, W[, C]) uint8, labels (N,) int64)`` for every split present."""
    keys = set(archive.files)
    present = [s for s in SPLITS if f"{s}_images" in keys or f"{s}_labels" in keys]
    if not present:
        raise DataError(
            f"{origin}: no MedMNIST-style arrays; found keys {sorted(keys)}, expected "
            "{split}_images and {split}_labels with split in train/val/test"
        )
    parts = []
    for split in present:
        image_key, label_key = f"{split}_images", f"{split}_labels"
        if image_key not in keys or label_key not in keys:
            have, lack = (image_key, label_key) if image_key in keys else (label_key, image_key)
            raise DataError(f"{origin}: has {have!r} but no {lack!r}; found keys {sorted(keys)}")
        images = _images(_array(archive, image_key, origin), image_key, origin)
        labels = _labels(_array(archive, label_key, origin), label_key, origin)
        if len(images) != len(labels):
            raise DataError(
                f"{origin}: {image_key!r} holds {len(images)} images but {label_key!r} "
                f"holds {len(labels)} labels"
            )
        parts.append((split, images, labels))
    return parts


def _array(archive: np.lib.npyio.NpzFile, key: str, origin: str) -> np.ndarray:
    try:
        return archive[key]
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        # Object arrays need pickle, which stays disabled.
        raise DataError(f"{origin}: cannot read array {key!r} ({exc})") from exc


def _images(array: np.ndarray, key: str, origin: str) -> np.ndarray:
    """Validate ``(N, H, W[, C])`` images and bring them to ``uint8``."""
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if not (array.ndim == 3 or (array.ndim == 4 and array.shape[3] == 3)):
        raise DataError(
            f"{origin}: {key!r} has shape {array.shape}; expected (N, H, W) or (N, H, W, 1|3)"
        )
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f":
        if not np.isfinite(array).all():
            raise DataError(f"{origin}: {key!r} contains NaN or infinite values")
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        if low < 0 or high > 255:
            raise DataError(
                f"{origin}: {key!r} has float values in [{low:g}, {high:g}]; "
                "expected [0, 1] or [0, 255]"
            )
        scale = 255.0 if high <= 1.0 else 1.0
        return np.rint(array * scale).astype(np.uint8)
    if array.dtype.kind in "iub":
        if array.size and (array.min() < 0 or array.max() > 255):
            raise DataError(
                f"{origin}: {key!r} has {array.dtype} values in [{array.min()}, {array.max()}]; "
                "expected 0–255"
            )
        return array.astype(np.uint8)
    raise DataError(f"{origin}: {key!r} has dtype {array.dtype}; expected uint8 or float")


def _labels(array: np.ndarray, key: str, origin: str) -> np.ndarray:
    """Validate ``(N,)`` or ``(N, 1)`` integer labels; returns ``(N,)`` int64."""
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise DataError(
            f"{origin}: {key!r} has shape {array.shape}; expected (N,) or (N, 1) "
            "(multi-label files are not supported)"
        )
    if array.dtype.kind not in "iubf" or (
        array.dtype.kind == "f"
        and not (np.isfinite(array).all() and (array == np.rint(array)).all())
    ):
        raise DataError(f"{origin}: {key!r} must hold whole-number labels, got {array.dtype}")
    if array.size and array.min() < 0:
        raise DataError(f"{origin}: {key!r} holds a negative label ({array.min()})")
    return array.astype(np.int64)


def _first_per_class(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """Indices of the first ``limit`` images of every class, in file order."""
    if limit is None:
        return np.arange(len(labels))
    kept = [np.flatnonzero(labels == c)[:limit] for c in np.unique(labels)]
    return np.sort(np.concatenate(kept)) if kept else np.arange(0)


def _convert(images: np.ndarray, *, image_size: int | None, channels: int) -> np.ndarray:
    """``(N, H, W[, 3])`` uint8 to ``(N, S, S, channels)`` (or native size)."""
    if image_size is not None and images.shape[1:3] != (image_size, image_size):
        out = np.empty((len(images), image_size, image_size, channels), dtype=np.uint8)
        for i, image in enumerate(images):
            out[i] = to_model_input(image, image_size=image_size, channels=channels)
        return out
    if images.ndim == 4 and channels == 1:
        images = rgb_to_gray(images)
    if images.ndim == 3:
        images = images[..., None]
    if channels == 3 and images.shape[3] == 1:
        images = np.repeat(images, 3, axis=3)
    return np.ascontiguousarray(images)
