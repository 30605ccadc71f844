"""The in-memory dataset every loader returns.

A :class:`Dataset` holds images already decoded to a common size and channel
count (``uint8``), integer labels, the class names, the split of every image
and, when known, lesion masks. Per-file provenance (original size, mode,
content digest) is kept beside it so the health report can find duplicates,
leakage and shortcuts without going back to disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from medviz.errors import DataError

SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Provenance:
    """Where each image came from, before it was resized.

    Attributes:
        sources: ``(N,)`` file paths (relative to the dataset root) or ids.
        original_sizes: ``(N, 2)`` int array of ``(width, height)`` as stored.
        original_modes: ``(N,)`` PIL-style modes as stored (``"L"``, ``"RGB"``,
            ``"I;16"``, ``"DICOM:MONOCHROME2"`` …).
        digests: ``(N,)`` hex digests of the file bytes (or of the pixels for
            generated images); equal digests are exact duplicates.
        groups: Optional ``(N,)`` group keys (patient id from the file name,
            or a near-duplicate cluster; see :mod:`medviz.data.groups`); the
            splits keep every group whole.
        group_methods: Optional ``(N,)`` how each image's group was found:
            ``"pattern"``, ``"near-duplicate"`` or ``"single"``.
        near_pairs: Optional ``(P, 2)`` int64 index pairs of images found to be
            copies of each other (near-duplicates by perceptual hash and
            correlation, and byte-identical files), as grouping found them.
    """

    sources: tuple[str, ...]
    original_sizes: np.ndarray
    original_modes: tuple[str, ...]
    digests: tuple[str, ...]
    groups: tuple[str, ...] | None = None
    group_methods: tuple[str, ...] | None = None
    near_pairs: np.ndarray | None = None

    def take(self, index: np.ndarray) -> Provenance:
        """Return the provenance of the images at ``index`` (an int array)."""
        index = np.asarray(index)
        return Provenance(
            sources=tuple(self.sources[i] for i in index),
            original_sizes=self.original_sizes[index],
            original_modes=tuple(self.original_modes[i] for i in index),
            digests=tuple(self.digests[i] for i in index),
            groups=None if self.groups is None else tuple(self.groups[i] for i in index),
            group_methods=None
            if self.group_methods is None
            else tuple(self.group_methods[i] for i in index),
            near_pairs=None if self.near_pairs is None else _remap_pairs(self.near_pairs, index),
        )


def _remap_pairs(pairs: np.ndarray, index: np.ndarray) -> np.ndarray:
    """The ``(P, 2)`` pairs whose both images are in ``index``, in positions of ``index``."""
    index = np.asarray(index)
    if index.dtype == bool:
        index = np.flatnonzero(index)
    position = np.full(int(max(pairs.max(initial=-1), index.max(initial=-1))) + 1, -1, np.int64)
    position[index[::-1]] = np.arange(len(index))[::-1]  # the first occurrence wins
    mapped = position[pairs.reshape(-1, 2)]
    return mapped[(mapped >= 0).all(axis=1)]


@dataclass(frozen=True)
class Dataset:
    """Images, labels, class names, splits and optional masks.

    Attributes:
        name: Registry name or a short description of the source.
        images: ``(N, H, W, C)`` ``uint8`` array, ``C`` is 1 or 3.
        labels: ``(N,)`` ``int64`` array of class indices.
        class_names: Names of the classes, index ``i`` names label ``i``.
        splits: ``(N,)`` array of ``"train"``, ``"val"`` or ``"test"``.
        masks: Optional ``(N, H, W)`` ``bool`` ground-truth lesion masks
            (all ``False`` for images without a lesion).
        provenance: Optional per-image file information.
        licence: Licence of the data, as stated by its source.
        description: One line about the data for people.
    """

    name: str
    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    splits: np.ndarray
    masks: np.ndarray | None = None
    provenance: Provenance | None = None
    licence: str = "unknown"
    description: str = ""
    extras: dict[str, object] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        images, labels, splits = self.images, self.labels, self.splits
        if images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(
                f"images must have shape (N, H, W, 1|3), got {images.shape} for {self.name!r}"
            )
        if images.dtype != np.uint8:
            raise DataError(f"images must be uint8, got {images.dtype} for {self.name!r}")
        n = len(images)
        if labels.shape != (n,) or splits.shape != (n,):
            raise DataError(
                f"{self.name!r}: {n} images but labels {labels.shape} and splits {splits.shape}"
            )
        if n and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise DataError(
                f"{self.name!r}: labels must lie in [0, {len(self.class_names) - 1}], "
                f"got [{labels.min()}, {labels.max()}]"
            )
        unknown = set(np.unique(splits).tolist()) - set(SPLITS)
        if unknown:
            raise DataError(f"{self.name!r}: unknown split names {sorted(unknown)}; use {SPLITS}")
        if self.masks is not None and self.masks.shape != images.shape[:3]:
            raise DataError(
                f"{self.name!r}: masks shape {self.masks.shape} != images {images.shape[:3]}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    @property
    def available_splits(self) -> tuple[str, ...]:
        """The splits that hold at least one image, in canonical order."""
        return present_splits(self.splits)

    def take(self, index: np.ndarray) -> Dataset:
        """Return a dataset of the images at ``index`` (int or bool array)."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            splits=self.splits[index],
            masks=None if self.masks is None else self.masks[index],
            provenance=None if self.provenance is None else self.provenance.take(index),
        )

    def split(self, name: str) -> Dataset:
        """Return one split (``"train"``, ``"val"``, ``"test"``) or ``"all"``.

        Raises:
            DataError: ``name`` is unknown or that split is empty.
        """
        mask = split_mask(self.splits, name, dataset_name=self.name)
        return self if mask is None else self.take(mask)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and class: ``{split: {class_name: count}}``."""
        return split_counts(self.labels, self.splits, self.class_names)


def present_splits(splits: np.ndarray) -> tuple[str, ...]:
    """The split names that occur in ``splits`` (``(N,)``), in canonical order."""
    present = set(np.unique(splits).tolist())
    return tuple(s for s in SPLITS if s in present)


def split_mask(splits: np.ndarray, name: str, *, dataset_name: str) -> np.ndarray | None:
    """``(N,)`` bool mask of split ``name`` in ``splits``, or ``None`` for ``"all"``.

    Shared by :class:`Dataset` and :class:`~medviz.data.streaming.StreamedDataset`.

    Raises:
        DataError: ``name`` is unknown or that split is empty.
    """
    if name == "all":
        return None
    if name not in SPLITS:
        raise DataError(f"unknown split {name!r}; choose one of {(*SPLITS, 'all')}")
    mask = splits == name
    if not mask.any():
        raise DataError(
            f"dataset {dataset_name!r} has no {name!r} split; it has {present_splits(splits)}"
        )
    return mask


def split_counts(
    labels: np.ndarray, splits: np.ndarray, class_names: Sequence[str]
) -> dict[str, dict[str, int]]:
    """Images per split and class, ``{split: {class_name: count}}``, of ``(N,)`` labels/splits."""
    table: dict[str, dict[str, int]] = {}
    for split in present_splits(splits):
        binc = np.bincount(labels[splits == split], minlength=len(class_names))
        table[split] = {c: int(k) for c, k in zip(class_names, binc, strict=True)}
    return table


def assign_splits(
    labels: np.ndarray,
    *,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    groups: Sequence[str] | None = None,
) -> np.ndarray:
    """Seeded, stratified train/val/test assignment that never splits a group.

    Images that share a group (the same patient, or near-copies of one
    image) always land in the same split, so neither a patient nor a
    duplicate can leak from train into test. A group whose images carry
    different labels is stratified by its majority label (ties: the lower
    label). Within each label the groups are shuffled and cut where the
    running image count crosses the fractions, so big groups (a patient with
    30 X-rays) do not skew the proportions.

    Args:
        labels: ``(N,)`` class indices.
        fractions: Train, val and test fractions; they must sum to 1.
        seed: Seed of the shuffle.
        groups: Optional ``(N,)`` group keys.

    Returns:
        ``(N,)`` array of split names.
    """
    labels = np.asarray(labels)
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise DataError(
            f"fractions must be three non-negative numbers summing to 1, got {fractions}"
        )
    n = len(labels)
    keys = np.asarray(groups) if groups is not None else np.arange(n).astype(str)
    if len(keys) != n:
        raise DataError(f"groups has {len(keys)} entries for {n} labels")
    splits = np.empty(n, dtype="<U5")
    if n == 0:
        return splits
    _, group_of = np.unique(keys, return_inverse=True)
    group_of = group_of.reshape(-1)
    n_groups = int(group_of.max()) + 1
    _, label_of = np.unique(labels, return_inverse=True)
    votes = np.zeros((n_groups, int(label_of.max()) + 1), dtype=np.int64)
    np.add.at(votes, (group_of, label_of.reshape(-1)), 1)
    majority = np.argmax(votes, axis=1)  # argmax takes the first (lower) label on ties
    size = votes.sum(axis=1)
    rng = np.random.default_rng(seed)
    bounds = np.cumsum(fractions)[:2]
    group_split = np.empty(n_groups, dtype="<U5")
    for label in range(votes.shape[1]):
        members = np.flatnonzero(majority == label)
        order = members[rng.permutation(len(members))]
        # the midpoint of each group's run of images decides its split; with
        # single-image groups this is (k + 0.5) / n, as before
        ends = np.cumsum(size[order])
        position = (ends - size[order] / 2) / max(ends[-1] if len(ends) else 1, 1)
        group_split[order] = np.where(
            position < bounds[0], "train", np.where(position < bounds[1], "val", "test")
        )
    splits[:] = group_split[group_of]
    return splits


def rename_classes(dataset: Dataset, names: str | Sequence[str]) -> Dataset:
    """Give a dataset's classes other names, e.g. ``0``/``1`` folders → ``normal``/``pneumonia``.

    Labels are unchanged; only :attr:`Dataset.class_names` is replaced, so a
    model's classes can be matched by name afterwards.

    Args:
        dataset: The dataset.
        names: ``"normal,pneumonia"`` (or a sequence), one name per class:
            when the current names are all numbers (MedMNIST labels, ``0/``,
            ``1/`` folders) the ``k``-th name is for the ``k``-th smallest
            number, else for ``class_names[k]``. Or explicit pairs
            ``"0=normal,1=pneumonia"``; classes not named keep their names.

    Returns:
        The dataset with new class names.

    Raises:
        DataError: Wrong number of names, an unknown class in a pair, an
            empty or repeated name.
    """
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    current = list(dataset.class_names)
    received = f"received {','.join(items)!r}; the data's classes are {current}"
    if any("=" in item for item in items):
        mapping = {}
        for item in items:
            old, sep, new = (part.strip() for part in item.partition("="))
            if not sep or old not in current:
                raise DataError(
                    f"class renaming {item!r} must be OLD=NEW with OLD a class; {received}"
                )
            mapping[old] = new
        renamed = [mapping.get(c, c) for c in current]
    else:
        if len(items) != len(current):
            raise DataError(
                f"--classes needs {len(current)} names, one per class, got {len(items)}; {received}"
            )
        # numbered classes go by number: folders 0 … 10 sort as "0", "1", "10", "2"
        order = sorted(current, key=int) if _all_numbers(current) else current
        by_class = dict(zip(order, items, strict=True))
        renamed = [by_class[c] for c in current]
    if any(not n for n in renamed) or len(set(renamed)) != len(renamed):
        raise DataError(f"class names must be non-empty and distinct, got {renamed}; {received}")
    return replace(dataset, class_names=tuple(renamed))


def _all_numbers(names: Sequence[str]) -> bool:
    return all(n.isdigit() for n in names)
