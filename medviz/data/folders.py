"""Load image classification datasets laid out in folders, or zipped folders.

Accepted layouts (below the folder, or below one wrapper folder in a zip):

* ``root/<class>/<image>`` — no splits; train/val/test are assigned.
* ``root/<split>/<class>/<image>`` — split folders named train/val/test,
  Training/Testing, TRAIN/VAL/TEST, validation … in any case.

Class names are the class folder names sorted with Python's ``sorted`` (by
code point, so ``"B"`` sorts before ``"a"``), the union over all splits;
label ``i`` is ``class_names[i]``. Files may sit in sub-folders of a class
folder. Splits the source lacks are carved out with
:func:`~medviz.data.dataset.assign_splits`, seeded, stratified and grouped
(patient ids read from file names with ``group_pattern``, joined with
near-duplicate clusters, :mod:`medviz.data.groups`) so neither a patient nor
a copy of an image straddles splits: a source with train only
gets val and test from train; train + test gets val from train only; train +
val gets test from train. A source without a train folder is re-split whole.

Loading never dies on one bad file: undecodable files are listed in
``Dataset.extras["errors"]`` and things not used (loose files outside class
folders, split folders without class folders, nested zips, unknown file
types) in ``extras["skipped"]``, both as ``(relative path, reason)`` pairs.
Hidden files and folders (``.DS_Store``, ``._*``, ``__MACOSX``) are ignored;
symbolic links to files outside the folder are skipped (and symlinked folders
are not followed), so a dataset folder cannot read other files of the server.
Files are decoded on a thread pool and resized as they arrive, so memory
stays near the size of the final ``uint8`` array.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath

import numpy as np

from medviz.data.dataset import SPLITS, Dataset, Provenance, assign_splits
from medviz.data.groups import compile_pattern, find_groups
from medviz.data.images import IMAGE_SUFFIXES, decode_image, is_dicom_bytes, to_model_input
from medviz.errors import DataError

SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
"""Lower-cased split folder names and the split they mean."""

MAX_UNCOMPRESSED = 2 * 1024**3
"""Default limit on the total uncompressed size of a zip archive (2 GiB)."""

MAX_RATIO = 200.0
"""Default limit on a zip member's compression ratio."""

# Members smaller than this cannot expand into a bomb, and blank BMP/PGM files
# legitimately compress far beyond 200:1, so the ratio test ignores them.
_RATIO_FLOOR = 1024**2
_JUNK_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
_READ_ERRORS = (
    OSError,
    EOFError,
    RuntimeError,
    NotImplementedError,
    zipfile.BadZipFile,
    zlib.error,
)


@dataclass(frozen=True)
class Member:
    """A file of the source: its relative POSIX path and how to read its bytes."""

    path: str
    read: Callable[[], bytes]


@dataclass(frozen=True)
class Candidate:
    """A file that should hold an image of ``label_name`` in ``split`` (or no split)."""

    member: Member
    split: str | None
    label_name: str


@dataclass(frozen=True)
class DecodedFile:
    """One successfully decoded and resized image."""

    pixels: np.ndarray
    size: tuple[int, int]
    mode: str
    digest: str


def load_folder(
    path: str | Path,
    *,
    image_size: int,
    channels: int = 1,
    seed: int = 0,
    name: str | None = None,
    licence: str = "unknown",
    limit_per_class: int | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    group_pattern: str | None = None,
) -> Dataset:
    """Load ``root/<class>/*`` or ``root/<split>/<class>/*`` image folders.

    Args:
        path: The dataset folder.
        image_size: Side length ``S`` every image is resized to (square).
        channels: 1 (grayscale) or 3 (RGB).
        seed: Seed of the splits the source lacks.
        name: Dataset name (default: the folder name).
        licence: Licence of the data.
        limit_per_class: Keep the first ``K`` files (sorted by path) of every
            split and class, for quick looks and tests.
        fractions: Train/val/test fractions for splits that are assigned or
            carved out of train (see the module docstring).
        group_pattern: Regular expression whose first capture group, searched
            in each file's relative path, is the patient id (see
            :func:`medviz.data.groups.pattern_groups`); images of one patient
            stay in one split. Without it (and for names it does not match)
            groups are near-duplicate clusters.

    Returns:
        A :class:`Dataset` with ``(N, S, S, channels)`` images, provenance
        (with ``groups``), and ``extras`` ``"skipped"``, ``"errors"``,
        ``"split_source"`` (split → ``"given"``, ``"carved from train"`` or
        ``"assigned"``), ``"origin"`` and ``"groups"`` (a summary).

    Raises:
        DataError: Not a folder, bad options, mixed split and class folders,
            no readable image, or fewer than two classes.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(
            f"{root}: not a folder; expected root/<class>/<image> or root/<split>/<class>/<image>"
        )
    members, outside = folder_members(root)
    return build_dataset(
        members,
        pre_skipped=outside,
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


def folder_members(root: Path) -> tuple[list[Member], list[tuple[str, str]]]:
    """Every file below ``root`` as a :class:`Member`, and the ``(path, reason)`` pairs skipped.

    Hidden and bookkeeping folders are not entered, symlinked folders are not
    followed, and symbolic links to files outside ``root`` are skipped, so a
    dataset folder cannot read other files of the server.
    """
    members: list[Member] = []
    outside: list[tuple[str, str]] = []
    real_root = root.resolve()
    for folder, dirs, files in os.walk(root):  # symlinked folders are not followed
        dirs[:] = sorted(d for d in dirs if not is_junk(d))
        for file in files:
            full = Path(folder, file)
            rel = full.relative_to(root).as_posix()
            if full.is_symlink() and not full.resolve().is_relative_to(real_root):
                outside.append((rel, "symbolic link to a file outside the dataset folder; skipped"))
                continue
            members.append(Member(rel, full.read_bytes))
    return members, outside


def load_zip(
    source: bytes | str | Path,
    *,
    image_size: int,
    channels: int = 1,
    seed: int = 0,
    name: str | None = None,
    licence: str = "unknown",
    limit_per_class: int | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    max_uncompressed: int = MAX_UNCOMPRESSED,
    max_ratio: float = MAX_RATIO,
    origin: str | None = None,
    group_pattern: str | None = None,
) -> Dataset:
    """Load a zip of an image folder (see :func:`load_folder`), in memory.

    A single top-level wrapper folder is looked through, ``__MACOSX`` and
    hidden members are ignored, nested zips are listed in
    ``extras["skipped"]``. Nothing is extracted to disk. Before any member
    is decompressed, the archive is refused if a member has an absolute
    path or ``..`` (zip-slip), if the total uncompressed size exceeds
    ``max_uncompressed``, or if a member over 1 MiB expands more than
    ``max_ratio`` times (zip bomb).

    Args:
        source: The archive bytes or its path.
        image_size: Side length ``S`` every image is resized to (square).
        channels: 1 (grayscale) or 3 (RGB).
        seed: Seed of the splits the source lacks.
        name: Dataset name (default: the archive name without ``.zip``).
        licence: Licence of the data.
        limit_per_class: Keep the first ``K`` files per split and class.
        fractions: Train/val/test fractions for assigned splits.
        max_uncompressed: Largest total uncompressed size in bytes.
        max_ratio: Largest uncompressed/compressed size ratio of a member.
        origin: How messages name the archive (default: its path, or ``name``
            for bytes), e.g. the file name of an upload.
        group_pattern: Patient-id pattern, as for :func:`load_folder`.

    Returns:
        A :class:`Dataset` as from :func:`load_folder`; sources are member paths.

    Raises:
        DataError: Not a zip, unsafe or oversized archive, or any reason
            :func:`load_folder` raises.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        label, default_name, opened = name or "<zip bytes>", "uploaded zip", io.BytesIO(source)
    else:
        path = Path(source).expanduser()
        label, default_name, opened = str(path), path.stem, path
    origin = origin or label
    try:
        archive = zipfile.ZipFile(opened)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{origin}: not a readable zip archive ({exc})") from exc
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        check_archive(infos, origin, max_uncompressed=max_uncompressed, max_ratio=max_ratio)
        members = [
            Member(info.filename.replace("\\", "/"), partial(archive.read, info)) for info in infos
        ]
        return build_dataset(
            members,
            origin=origin,
            name=name or default_name,
            image_size=image_size,
            channels=channels,
            seed=seed,
            licence=licence,
            limit_per_class=limit_per_class,
            fractions=fractions,
            group_pattern=group_pattern,
        )


def complete_splits(
    labels: np.ndarray,
    given: Sequence[str | None],
    *,
    groups: Sequence[str],
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, str]]:
    """Keep the splits a source gives and carve the missing ones out of train.

    With no train split given (``given`` all ``None``, or only val/test),
    everything is split afresh with :func:`assign_splits`. Otherwise missing
    val and/or test images are drawn from train with the matching share of
    ``fractions``; given val and test are never touched.

    Args:
        labels: ``(N,)`` class indices.
        given: ``(N,)`` split of every image as the source states it, or ``None``.
        groups: ``(N,)`` group keys (patients, near-duplicate clusters) kept
            within one split.
        fractions: Train/val/test fractions.
        seed: Seed of the assignment.

    Returns:
        ``(N,)`` split names and, for every split, ``"given"``,
        ``"carved from train"`` or ``"assigned"``.
    """
    labels = np.asarray(labels)
    keys = np.asarray(groups)
    present = {s for s in given if s}
    if "train" not in present:
        splits = assign_splits(labels, fractions=fractions, seed=seed, groups=keys)
        return splits, dict.fromkeys(SPLITS, "assigned")
    splits = np.array([s or "train" for s in given], dtype="<U5")
    missing = [s for s in SPLITS[1:] if s not in present]
    f_train, f_val, f_test = fractions
    share = (f_train, f_val if "val" in missing else 0.0, f_test if "test" in missing else 0.0)
    if missing and sum(share[1:]) > 0:
        train = splits == "train"
        total = sum(share)
        splits[train] = assign_splits(
            labels[train],
            fractions=(share[0] / total, share[1] / total, share[2] / total),
            seed=seed,
            groups=keys[train],
        )
    source = {s: "given" if s in present else "carved from train" for s in SPLITS}
    return splits, source


def is_junk(part: str) -> bool:
    """Hidden and OS bookkeeping entries (``.DS_Store``, ``._x``, ``__MACOSX``)."""
    return part.startswith(".") or part in _JUNK_NAMES


def check_archive(
    infos: list[zipfile.ZipInfo], origin: str, *, max_uncompressed: int, max_ratio: float
) -> None:
    """Refuse unsafe archives using only the central directory (nothing is inflated)."""
    for info in infos:
        parts = re.split(r"[/\\]", info.filename)
        if info.filename.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", info.filename):
            raise DataError(f"{origin}: member {info.filename!r} has an absolute path; refused")
        if ".." in parts:
            raise DataError(
                f"{origin}: member {info.filename!r} points outside the archive; refused"
            )
        if info.file_size > _RATIO_FLOOR and info.file_size > max_ratio * max(
            info.compress_size, 1
        ):
            ratio = info.file_size / max(info.compress_size, 1)
            raise DataError(
                f"{origin}: member {info.filename!r} expands {ratio:,.0f}-fold "
                f"({info.compress_size:,} → {info.file_size:,} bytes), above the {max_ratio:g} "
                "allowed (zip bomb?); refused"
            )
    total = sum(info.file_size for info in infos)
    if total > max_uncompressed:
        raise DataError(
            f"{origin}: archive expands to {total:,} bytes, above the {max_uncompressed:,} "
            "allowed (max_uncompressed); refused"
        )


def check_options(
    image_size: int, channels: int, limit_per_class: int | None, fractions: Sequence[float]
) -> None:
    if not isinstance(image_size, int | np.integer) or image_size < 1:
        raise DataError(f"image_size must be a positive integer, got {image_size!r}")
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels!r}")
    if limit_per_class is not None and limit_per_class < 1:
        raise DataError(f"limit_per_class must be None or at least 1, got {limit_per_class!r}")
    if len(fractions) != 3 or abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise DataError(
            f"fractions must be three non-negative numbers summing to 1, got {fractions}"
        )


def plan_layout(
    members: list[Member], origin: str
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """Find the layout: which files are images of which class and split, and what is skipped."""
    skipped: list[tuple[str, str]] = []
    entries: list[tuple[tuple[str, ...], Member]] = []
    for member in sorted(members, key=lambda m: m.path):
        parts = tuple(p for p in member.path.split("/") if p not in ("", "."))
        if not parts or any(is_junk(p) for p in parts):
            continue
        if parts[-1].lower().endswith(".zip"):
            skipped.append((member.path, "nested zip archive ignored"))
            continue
        entries.append((parts, member))

    # Look through wrapper folders: a lone folder with deeper folders below it.
    while True:
        tops = {parts[0] for parts, _ in entries if len(parts) > 1}
        loose = [parts for parts, _ in entries if len(parts) == 1 and _looks_like_image(parts[0])]
        if len(tops) != 1 or loose or not any(len(parts) > 2 for parts, _ in entries):
            break
        (top,) = tops
        if top.lower() in SPLIT_ALIASES:
            break
        entries = [(parts[1:], m) for parts, m in entries if len(parts) > 1]

    tops = sorted({parts[0] for parts, _ in entries if len(parts) > 1})
    split_dirs = [t for t in tops if t.lower() in SPLIT_ALIASES]
    if split_dirs and len(split_dirs) != len(tops):
        others = [t for t in tops if t not in split_dirs]
        raise DataError(
            f"{origin}: mixes split folders {split_dirs} with other folders {others}; use "
            "root/<class>/<image> or root/<split>/<class>/<image> with splits "
            f"{sorted(set(SPLIT_ALIASES))}"
        )

    candidates: list[Candidate] = []
    if split_dirs:
        for split_dir in split_dirs:
            inside = [(parts[1:], m) for parts, m in entries if parts[0] == split_dir]
            if not any(len(parts) > 1 for parts, _ in inside):
                files = [m.path for parts, m in inside]
                skipped.append(
                    (
                        str(PurePosixPath(files[0]).parent),
                        f"split folder holds {len(files)} loose files and no class folders "
                        "(labels unknown); skipped",
                    )
                )
                continue
            split = SPLIT_ALIASES[split_dir.lower()]
            candidates += _classify(inside, split, skipped)
    else:
        candidates = _classify(entries, None, skipped)
    return candidates, skipped


def _looks_like_image(file_name: str) -> bool:
    return PurePosixPath(file_name).suffix.lower() in IMAGE_SUFFIXES


def _classify(
    entries: list[tuple[tuple[str, ...], Member]],
    split: str | None,
    skipped: list[tuple[str, str]],
) -> list[Candidate]:
    """Candidates of ``<class>/.../<file>`` entries; loose and unknown files go to ``skipped``."""
    candidates = []
    for parts, member in entries:
        suffix = PurePosixPath(parts[-1]).suffix.lower()
        if len(parts) == 1:
            if suffix in IMAGE_SUFFIXES:
                skipped.append((member.path, "image outside a class folder (label unknown)"))
            continue  # loose README/SOURCE files are documentation, not data
        if suffix and suffix not in IMAGE_SUFFIXES:
            skipped.append(
                (member.path, f"file type {suffix!r} is not an image ({sorted(IMAGE_SUFFIXES)})")
            )
            continue
        candidates.append(Candidate(member, split, parts[0]))
    return candidates


def limit_candidates(candidates: list[Candidate], limit: int | None) -> list[Candidate]:
    """First ``limit`` candidates (in path order) of every split and class."""
    if limit is None:
        return candidates
    seen: dict[tuple[str | None, str], int] = {}
    kept = []
    for candidate in candidates:
        key = (candidate.split, candidate.label_name)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= limit:
            kept.append(candidate)
    return kept


def load_one(
    candidate: Candidate, *, image_size: int, channels: int
) -> DecodedFile | tuple[str, str]:
    """Read, hash, decode and resize one file; a ``(kind, message)`` pair on failure."""
    path = candidate.member.path
    try:
        data = candidate.member.read()
    except _READ_ERRORS as exc:
        return "error", f"{path}: cannot read the file ({exc})"
    if not PurePosixPath(path).suffix and not is_dicom_bytes(data):
        return "skipped", "no file extension and not DICOM"
    try:
        decoded = decode_image(data, name=path)
        pixels = to_model_input(decoded.pixels, image_size=image_size, channels=channels)
    except DataError as exc:
        return "error", str(exc)
    return DecodedFile(pixels, decoded.size, decoded.mode, hashlib.sha1(data).hexdigest())


def decode_workers() -> int:
    # Pillow and zlib release the GIL while decoding; a couple of extra
    # threads hide file-system latency.
    return min(8, (os.cpu_count() or 1) + 2)


def build_dataset(
    members: list[Member],
    *,
    origin: str,
    name: str,
    image_size: int,
    channels: int,
    seed: int,
    licence: str,
    limit_per_class: int | None,
    fractions: tuple[float, float, float],
    group_pattern: str | None = None,
    pre_skipped: list[tuple[str, str]] | None = None,
) -> Dataset:
    """Plan, decode in parallel and assemble the :class:`Dataset` (folders, zips, box sets).

    Args:
        members: The source's files.
        origin: The source as named in messages.
        name: Dataset name.
        image_size: Side length ``S`` every image is resized to (square).
        channels: 1 (grayscale) or 3 (RGB).
        seed: Seed of the splits the source lacks.
        licence: Licence of the data.
        limit_per_class: Keep the first ``K`` files of every split and class.
        fractions: Train/val/test fractions for splits that are assigned or
            carved out of train.
        group_pattern: Patient-id regular expression (see :func:`load_folder`).
        pre_skipped: ``(path, reason)`` of files the caller already skipped.

    Returns:
        The :class:`Dataset` with ``(N, S, S, channels)`` images, as :func:`load_folder`.
    """
    check_options(image_size, channels, limit_per_class, fractions)
    if group_pattern:
        compile_pattern(group_pattern)  # a bad pattern fails before any file is read
    candidates, skipped = plan_layout(members, origin)
    skipped = [*(pre_skipped or []), *skipped]
    candidates = limit_candidates(candidates, limit_per_class)
    errors: list[tuple[str, str]] = []
    images = np.empty((len(candidates), image_size, image_size, channels), dtype=np.uint8)
    kept: list[int] = []
    decoded: list[DecodedFile] = []
    work = partial(load_one, image_size=image_size, channels=channels)
    with ThreadPoolExecutor(max_workers=decode_workers()) as pool:
        for i, (candidate, result) in enumerate(
            zip(candidates, pool.map(work, candidates), strict=True)
        ):
            if isinstance(result, DecodedFile):
                images[i] = result.pixels
                kept.append(i)
                decoded.append(result)
            elif result[0] == "skipped":
                skipped.append((candidate.member.path, result[1]))
            else:
                errors.append((candidate.member.path, result[1]))

    if not kept:
        detail = f"; {len(errors)} files failed, e.g. {errors[0][1]}" if errors else ""
        raise DataError(
            f"{origin}: no image could be read ({len(candidates)} candidate files{detail}); "
            "expected root/<class>/<image> or root/<split>/<class>/<image> with "
            f"{sorted(IMAGE_SUFFIXES)} files"
        )
    used = [candidates[i] for i in kept]
    class_names = tuple(sorted({c.label_name for c in used}))
    if len(class_names) < 2:
        raise DataError(
            f"{origin}: found {len(class_names)} class {list(class_names)}; need at least 2 "
            "class folders (root/<class>/<image> or root/<split>/<class>/<image>)"
        )
    index = {c: i for i, c in enumerate(class_names)}
    labels = np.array([index[c.label_name] for c in used], dtype=np.int64)
    digests = tuple(d.digest for d in decoded)
    if len(kept) < len(candidates):
        images = images[kept]
    sources = tuple(c.member.path for c in used)
    groups = find_groups(images, sources, pattern=group_pattern, digests=digests)
    splits, split_source = complete_splits(
        labels, [c.split for c in used], groups=groups.keys, fractions=fractions, seed=seed
    )
    provenance = Provenance(
        sources=sources,
        original_sizes=np.array([d.size for d in decoded], dtype=np.int64).reshape(-1, 2),
        original_modes=tuple(d.mode for d in decoded),
        digests=digests,
        groups=groups.keys,
        group_methods=groups.how,
        near_pairs=groups.near_pairs,
    )
    return Dataset(
        name=name,
        images=images,
        labels=labels,
        class_names=class_names,
        splits=splits,
        provenance=provenance,
        licence=licence,
        description=f"{len(labels)} images in {len(class_names)} classes from {origin}",
        extras={
            "skipped": skipped,
            "errors": errors,
            "split_source": split_source,
            "origin": origin,
            "groups": groups.to_dict(),
        },
    )
