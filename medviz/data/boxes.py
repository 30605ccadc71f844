"""Image folders whose images carry lesion boxes or masks: localisation data.

Layout: the class folders of :mod:`medviz.data.folders` (``root/<class>/<image>``
or ``root/<split>/<class>/<image>``), and beside an image ``NNNN.jpg`` any of

* ``NNNN.txt``: one box per line, ``x_center y_center width height``, all
  relative to the image side (0–1, YOLO style). A fifth leading number (the
  YOLO class id, ``c x y w h``) is accepted and ignored: the class comes from
  the folder. Several lines are several boxes; an empty file means "no lesion".
* ``NNNN_mask.<ext>`` (any image type, e.g. ``NNNN_mask.png``): a lesion mask,
  non-zero (more than half of its maximum after resizing) inside the lesion.

Images are resized square (aspect not kept, as every folder image), so relative
boxes map to the resized image unchanged. Boxes are rasterised (a pixel is
inside when its centre is, and a box always covers the pixel holding its
centre), united with the mask when both exist, into ``Dataset.masks``; images
without a ``.txt`` or mask get an all-``False`` mask. ``extras`` keeps

* ``"boxes"``: ``{source path: ((x_center, y_center, width, height), ...)}``,
  keyed by the path in ``Provenance.sources`` (so it survives
  :meth:`~medviz.data.dataset.Dataset.take`);
* ``"annotation"``: ``"boxes"``, ``"masks"`` or ``"boxes+masks"``: what the
  masks were made of (the pointing game grows boxes square, masks round);
* ``"annotation_errors"``: ``(path, reason)`` of unreadable ``.txt``/mask files
  (their image keeps an empty mask), besides the loader's ``"errors"``.

With ``group_consecutive=True`` (for sources numbered in acquisition order,
such as the figshare brain-tumour slices), assigned splits keep every run of
consecutive numbers of one class folder together, so slices of one patient
never straddle train and test.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath

import numpy as np

from medviz.data.dataset import Dataset, Provenance, assign_splits
from medviz.data.folders import Member, build_dataset, is_junk
from medviz.data.groups import find_groups, join_groups
from medviz.data.images import IMAGE_SUFFIXES, decode_image, to_model_input
from medviz.errors import DataError

BOX_SUFFIX = ".txt"
"""Suffix of a box file beside its image (``NNNN.jpg`` → ``NNNN.txt``)."""

MASK_TAG = "_mask"
"""Stem tag of a mask image beside its image (``NNNN.jpg`` → ``NNNN_mask.png``)."""

Box = tuple[float, float, float, float]


def is_annotation(rel_path: str) -> bool:
    """Whether a file is a box (``.txt``) or mask (``*_mask.<image ext>``) annotation."""
    path = PurePosixPath(rel_path)
    suffix = path.suffix.lower()
    return suffix == BOX_SUFFIX or (suffix in IMAGE_SUFFIXES and path.stem.endswith(MASK_TAG))


def has_annotations(path: str | Path) -> bool:
    """Whether a folder holds at least one image with a box ``.txt`` or mask beside it.

    Stops at the first one found, so calling it on a large plain folder costs
    one directory walk.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        return False
    for _folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not is_junk(d)]
        stems = {PurePosixPath(f).stem for f in files if _is_image_name(f)}
        for file in files:
            p = PurePosixPath(file)
            if p.suffix.lower() == BOX_SUFFIX and p.stem in stems:
                return True
            tagged = _is_image_name(file) and p.stem.endswith(MASK_TAG)
            if tagged and p.stem[: -len(MASK_TAG)] in stems:
                return True
    return False


def _is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower() in IMAGE_SUFFIXES


def parse_boxes(text: str, *, name: str = "<boxes>") -> tuple[Box, ...]:
    """Parse the lines of a box file into ``(x_center, y_center, width, height)`` tuples.

    Args:
        text: File content; blank lines are ignored.
        name: How messages name the file.

    Returns:
        The boxes, relative to the image side (may be empty).

    Raises:
        DataError: A line without 4 (or 5, class id first) numbers, a value
            outside ``[0, 1]`` or a box without area.
    """
    boxes: list[Box] = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise DataError(
                f"{name} line {number}: {line.strip()!r} is not numbers; expected "
                "'x_center y_center width height' relative to the image (0-1)"
            ) from None
        if len(values) == 5:
            values = values[1:]  # YOLO class id: the folder names the class
        if len(values) != 4:
            raise DataError(
                f"{name} line {number}: {len(fields)} numbers; expected 4 "
                "'x_center y_center width height' (or 5 with a leading class id)"
            )
        xc, yc, w, h = values
        if not all(0.0 <= v <= 1.0 for v in values) or w <= 0 or h <= 0:
            raise DataError(
                f"{name} line {number}: {values} must lie in [0, 1] with width and height "
                "above 0 (relative YOLO coordinates)"
            )
        boxes.append((xc, yc, w, h))
    return tuple(boxes)


def rasterize_boxes(boxes: Sequence[Box], size: int | tuple[int, int]) -> np.ndarray:
    """Boxes as a bool mask.

    Args:
        boxes: ``(x_center, y_center, width, height)`` relative to the image side.
        size: ``S`` or ``(H, W)`` of the mask.

    Returns:
        ``(H, W)`` bool: ``True`` where a pixel centre lies in a box; each box
        covers at least the pixel holding its centre, so a tiny box never
        vanishes.
    """
    h, w = (size, size) if isinstance(size, int | np.integer) else size
    mask = np.zeros((h, w), bool)
    cy = (np.arange(h) + 0.5) / h
    cx = (np.arange(w) + 0.5) / w
    for xc, yc, bw, bh in boxes:
        rows = (cy >= yc - bh / 2) & (cy <= yc + bh / 2)
        cols = (cx >= xc - bw / 2) & (cx <= xc + bw / 2)
        rows[min(h - 1, int(yc * h))] = True
        cols[min(w - 1, int(xc * w))] = True
        mask |= rows[:, None] & cols[None, :]
    return mask


def _mask_pixels(data: bytes, name: str, image_size: int) -> np.ndarray:
    """A mask file decoded and resized to ``(S, S)`` bool (above half its maximum)."""
    decoded = decode_image(data, name=name)
    gray = to_model_input(decoded.pixels, image_size=image_size, channels=1)[..., 0]
    original_max = int(np.asarray(decoded.pixels).max())
    if original_max == 0:
        return np.zeros(gray.shape, bool)
    # Masks stored as 0/1 and as 0/255 both work: compare with half of their own maximum.
    return gray.astype(np.float32) > original_max / 2.0


def consecutive_run_groups(sources: Sequence[str], labels: np.ndarray) -> np.ndarray:
    """Group keys: runs of consecutive numbered stems within one folder and class.

    Args:
        sources: ``(N,)`` relative paths such as ``glioma/0412.jpg``.
        labels: ``(N,)`` class indices.

    Returns:
        ``(N,)`` keys; a file without a numbered stem is its own group.
    """
    keys = np.empty(len(sources), dtype=object)
    numbered: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for i, source in enumerate(sources):
        path = PurePosixPath(source)
        match = re.fullmatch(r"\d+", path.stem)
        if match is None:
            keys[i] = source  # no number: its own group
            continue
        numbered.setdefault((str(path.parent), int(labels[i])), []).append((int(path.stem), i))
    for (folder, label), items in numbered.items():
        items.sort()
        start = previous = None
        for number, i in items:
            if previous is None or number != previous + 1:
                start = number
            keys[i] = f"{folder}#{label}#{start}"
            previous = number
    return keys.astype(str)


def load_annotated_folder(
    path: str | Path,
    *,
    image_size: int,
    channels: int = 1,
    seed: int = 0,
    name: str | None = None,
    licence: str = "unknown",
    limit_per_class: int | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    group_consecutive: bool = False,
    group_pattern: str | None = None,
) -> Dataset:
    """Load a class-folder dataset with box ``.txt`` files and/or ``*_mask`` images.

    Args:
        path: The dataset folder (see the module docstring for the layout).
        image_size: Side length ``S`` every image and mask is resized to.
        channels: 1 (grayscale) or 3 (RGB).
        seed: Seed of the splits the source lacks.
        name: Dataset name (default: the folder name).
        licence: Licence of the data.
        limit_per_class: Keep the first ``K`` images of every split and class.
        fractions: Train/val/test fractions of assigned splits.
        group_consecutive: Keep runs of consecutive file numbers (per class
            folder) in one split when splits are assigned (joined with the
            patient/near-duplicate groups).
        group_pattern: Patient-id pattern of the file names (see
            :func:`medviz.data.groups.pattern_groups`).

    Returns:
        A :class:`Dataset` with ``(N, S, S, C)`` images and ``(N, S, S)``
        ``masks``, plus ``extras`` ``"boxes"``, ``"annotation"`` and
        ``"annotation_errors"`` besides those of
        :func:`~medviz.data.folders.load_folder`.

    Raises:
        DataError: Not a folder, no annotation at all, or any reason
            :func:`~medviz.data.folders.load_folder` raises.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(
            f"{root}: not a folder; expected root/<class>/<image> with <image stem>.txt boxes "
            f"or <image stem>{MASK_TAG}.png masks beside the images"
        )
    real_root = root.resolve()
    images: list[Member] = []
    annotations: dict[str, Path] = {}
    for folder, dirs, files in os.walk(root):  # symlinked folders are not followed
        dirs[:] = sorted(d for d in dirs if not is_junk(d))
        for file in files:
            if is_junk(file):
                continue
            full = Path(folder, file)
            if full.is_symlink() and not full.resolve().is_relative_to(real_root):
                continue  # never read files outside the dataset folder
            rel = full.relative_to(root).as_posix()
            if is_annotation(rel):
                annotations[rel] = full
            else:
                images.append(Member(rel, full.read_bytes))
    if not annotations:
        raise DataError(
            f"{root}: no annotation found; put <image stem>.txt (boxes: 'x_center y_center "
            f"width height' relative) or <image stem>{MASK_TAG}.png beside the images"
        )
    data = build_dataset(
        images,
        origin=str(root),
        name=name or root.name,
        image_size=image_size,
        channels=channels,
        seed=seed,
        licence=licence,
        limit_per_class=limit_per_class,
        fractions=fractions,
        group_pattern=group_pattern,
    )
    assert data.provenance is not None
    sources = data.provenance.sources
    masks = np.zeros((len(data), image_size, image_size), bool)
    boxes: dict[str, tuple[Box, ...]] = {}
    errors: list[tuple[str, str]] = []
    kinds: set[str] = set()
    lookup = {rel.lower(): rel for rel in annotations}
    for i, source in enumerate(sources):
        stem = str(PurePosixPath(source).with_suffix(""))
        box_rel = lookup.get(f"{stem}{BOX_SUFFIX}".lower())
        if box_rel is not None:
            try:
                text = annotations[box_rel].read_text(encoding="utf-8", errors="strict")
                found = parse_boxes(text, name=box_rel)
            except (OSError, UnicodeDecodeError, DataError) as exc:
                errors.append((box_rel, str(exc)))
            else:
                boxes[source] = found
                masks[i] |= rasterize_boxes(found, image_size)
                kinds.add("boxes")
        mask_rel = next(
            (
                lookup[key]
                for key in (f"{stem}{MASK_TAG}{s}".lower() for s in sorted(IMAGE_SUFFIXES))
                if key in lookup
            ),
            None,
        )
        if mask_rel is not None:
            try:
                masks[i] |= _mask_pixels(annotations[mask_rel].read_bytes(), mask_rel, image_size)
            except (OSError, DataError) as exc:
                errors.append((mask_rel, str(exc)))
            else:
                kinds.add("masks")
    splits = data.splits
    split_source = dict(data.extras.get("split_source", {}))
    if group_consecutive and all(v == "assigned" for v in split_source.values()):
        splits = assign_splits(
            data.labels,
            fractions=fractions,
            seed=seed,
            groups=join_groups(
                data.provenance.groups or sources, consecutive_run_groups(sources, data.labels)
            ),
        )
        split_source = dict.fromkeys(split_source, "assigned (runs of consecutive numbers)")
    extras = {
        **data.extras,
        "split_source": split_source,
        "boxes": boxes,
        "annotation": "+".join(sorted(kinds)) or "none",
        "annotation_errors": errors,
    }
    return replace(
        data,
        splits=splits,
        masks=masks,
        extras=extras,
        description=f"{data.description}; {int(masks.any(axis=(1, 2)).sum())} with lesion "
        f"{extras['annotation']}",
    )


def boxes_of(dataset: Dataset) -> list[tuple[Box, ...]] | None:
    """The boxes of every image of ``dataset`` (``None`` when it has no boxes)."""
    table = dataset.extras.get("boxes") if dataset.extras else None
    if not table or dataset.provenance is None:
        return None
    return [tuple(table.get(source, ())) for source in dataset.provenance.sources]  # type: ignore[union-attr]


def merge_lesion_data(
    data: Dataset,
    lesions: Dataset,
    *,
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> Dataset:
    """Add a localisation dataset's images (with their masks) to a classification dataset.

    The lesion images' classes are mapped onto ``data``'s by name, and the
    splits of the union are assigned afresh, grouped by near-duplicates
    *across both sources* (the figshare tumour slices with boxes are also in
    the Kaggle brain MRI set, at another size), by ``data``'s own groups and by
    runs of consecutive slice numbers, so no slice, copy or patient block
    straddles two splits.

    Args:
        data: ``(N, S, S, C)`` classification dataset (its masks, if any, are kept).
        lesions: ``(M, S, S, C)`` dataset with ``masks`` and class names that are
            all in ``data``'s.
        seed: Seed of the split.
        fractions: Train/val/test fractions.

    Returns:
        ``(N + M)`` images with ``masks`` (all ``False`` where there is no lesion).

    Raises:
        DataError: Shapes differ, ``lesions`` has no masks, or a class is unknown.
    """
    if lesions.masks is None:
        raise DataError(f"dataset {lesions.name!r} has no lesion masks to merge")
    if data.image_shape != lesions.image_shape:
        raise DataError(
            f"image shapes differ: {data.name!r} {data.image_shape}, "
            f"{lesions.name!r} {lesions.image_shape}; load both at one size and channel count"
        )
    unknown = [c for c in lesions.class_names if c not in data.class_names]
    if unknown:
        raise DataError(
            f"classes {unknown} of {lesions.name!r} are not among {list(data.class_names)}"
        )
    mapping = np.array([data.class_names.index(c) for c in lesions.class_names])
    labels = np.concatenate([data.labels, mapping[lesions.labels]])
    images = np.concatenate([data.images, lesions.images])

    def sources(part: Dataset) -> list[str]:
        if part.provenance is None:
            return [f"{part.name}/{i}" for i in range(len(part))]
        return [f"{part.name}/{s}" for s in part.provenance.sources]

    names = sources(data) + sources(lesions)
    digests = None
    if data.provenance is not None and lesions.provenance is not None:
        digests = list(data.provenance.digests) + list(lesions.provenance.digests)
    near = find_groups(images, names, digests=digests).keys
    own = [
        f"a:{g}"
        for g in (
            data.provenance.groups
            if data.provenance and data.provenance.groups
            else names[: len(data)]
        )
    ]
    lesion_sources = lesions.provenance.sources if lesions.provenance else names[len(data) :]
    runs = [f"b:{k}" for k in consecutive_run_groups(lesion_sources, lesions.labels)]
    groups = join_groups(near, own + runs)
    splits = assign_splits(labels, fractions=fractions, seed=seed, groups=groups)
    masks = np.concatenate(
        [
            data.masks if data.masks is not None else np.zeros(data.images.shape[:3], bool),
            lesions.masks,
        ]
    )
    provenance = None
    if data.provenance is not None and lesions.provenance is not None:
        provenance = Provenance(
            sources=tuple(names),
            original_sizes=np.concatenate(
                [data.provenance.original_sizes, lesions.provenance.original_sizes]
            ),
            original_modes=data.provenance.original_modes + lesions.provenance.original_modes,
            digests=tuple(digests or ()),
            groups=groups,
        )
    return Dataset(
        name=f"{data.name}+{lesions.name}",
        images=images,
        labels=labels,
        class_names=data.class_names,
        splits=splits,
        masks=masks,
        provenance=provenance,
        licence=f"{data.licence}; {lesions.licence}",
        description=f"{data.description}; plus {len(lesions)} images with lesion "
        f"{lesions.extras.get('annotation', 'masks')} from {lesions.name}",
        extras={
            "split_source": dict.fromkeys(("train", "val", "test"), "assigned (merged, grouped)"),
        },
    )


#: Card entry (in ``card.training``) listing the lesion images a box-guided model never
#: trained on, as ``"<dataset name>/<source path>"``.
HELDOUT_LESIONS_KEY = "heldout_lesion_sources"


def heldout_lesion_sources(merged: Dataset) -> list[str]:
    """Sources of the lesion images of a :func:`merge_lesion_data` result outside its train split.

    Args:
        merged: ``(N, …)`` dataset with masks and provenance.

    Returns:
        Sorted ``"<dataset name>/<source path>"`` names (what a model card keeps).
    """
    if merged.masks is None or merged.provenance is None:
        return []
    keep = (merged.splits != "train") & merged.masks.any(axis=(1, 2))
    return sorted(merged.provenance.sources[i] for i in np.flatnonzero(keep))


def restrict_to_heldout(dataset: Dataset, training: dict) -> tuple[Dataset, bool]:
    """Keep only the images of ``dataset`` a box-guided model never trained on.

    A model trained with the boxes of ``dataset`` (see ``cam_guidance``) would
    point at the boxes it was taught; its localisation is only measured on the
    images its card lists as held out.

    Args:
        dataset: Lesion dataset as loaded (sources relative to its folder).
        training: The model card's ``training`` entry.

    Returns:
        ``(dataset, restricted)``; ``dataset`` unchanged and ``False`` when the
        card lists no held-out images of this dataset.

    Raises:
        DataError: The card lists held-out images of this dataset but none is present.
    """
    listed = training.get(HELDOUT_LESIONS_KEY) if isinstance(training, dict) else None
    if not listed or dataset.provenance is None:
        return dataset, False
    prefix = f"{dataset.name}/"
    names = {s[len(prefix) :] for s in listed if s.startswith(prefix)}
    if not names:
        return dataset, False
    keep = np.array([s in names for s in dataset.provenance.sources])
    if not keep.any():
        raise DataError(
            f"the model card lists {len(names)} held-out images of {dataset.name!r}, "
            "but none of them is in the loaded data"
        )
    return dataset.take(keep), True
