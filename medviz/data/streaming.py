"""Datasets larger than memory: decode once into a disk cache, then stream batches from it.

:func:`~medviz.data.folders.load_folder` keeps every image in memory at the
model's size, which is fine for thousands of images and not for a hospital
archive. :func:`stream_folder` and :func:`stream_zip` read the same layouts in
**one pass** over the files: each file is read, hashed, decoded and resized
once; its pixels go straight to a cache file on disk (``(N, S, S, C)`` uint8,
row-major, one image after another) and only a 64-px grey thumbnail stays in
memory for the near-duplicate grouping. The pass also yields everything the
health report needs (sizes, modes, digests, groups), so
:func:`medviz.data.health.health_report` works on a :class:`StreamedDataset`
without a second read.

The cache is keyed by the source's file list (paths, sizes, modification
times), the image size and the channel count, and is reused by later loads:
"decode once". Training reads batches from it with ``os.pread`` inside a
``tf.data`` pipeline (:func:`stream_pipeline`), so memory stays flat as the
dataset grows: the operating system's page cache holds what it can, and none
of it counts against the process. Mapping the file with ``np.memmap`` would
have been shorter, but every mapped page that is read stays in the process's
resident set.

Why one module: the cache file's format (its key, index and row layout), the
pass that writes it and the readers that stream it change together; split,
a change to one would silently break the others.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np

from medviz.data.dataset import (
    Dataset,
    Provenance,
    present_splits,
    split_counts,
    split_mask,
)
from medviz.data.folders import (
    MAX_RATIO,
    MAX_UNCOMPRESSED,
    DecodedFile,
    Member,
    check_archive,
    check_options,
    complete_splits,
    decode_workers,
    folder_members,
    limit_candidates,
    load_one,
    plan_layout,
)
from medviz.data.groups import Groups, compile_pattern, find_groups
from medviz.errors import DataError
from medviz.locations import cache_dir

THUMBNAIL_SIDE = 64
"""Side of the grey thumbnails kept in memory for near-duplicate grouping."""

_CHUNK = 256  # files decoded per thread-pool round: bounds the memory of one round


@dataclass(frozen=True)
class StreamedDataset:
    """A dataset whose pixels live in a cache file on disk; labels and provenance in memory.

    It offers what training, packaging and the health report read from a
    :class:`~medviz.data.dataset.Dataset` (``labels``, ``splits``,
    ``class_names``, ``provenance``, :meth:`split`, :meth:`counts` …) except
    ``images``: read pixels with :meth:`read` or stream them with
    :func:`stream_pipeline`; :meth:`materialize` makes an in-memory
    ``Dataset`` of a (small) part.

    Attributes:
        name: Dataset name.
        cache_path: The pixel file, ``(n_cached, S, S, C)`` uint8.
        image_shape: ``(S, S, C)`` of every cached image.
        rows: ``(N,)`` row of every image in the cache file (a split is a
            view: the same file, fewer rows).
        labels: ``(N,)`` int64 class indices.
        class_names: Names of the classes.
        splits: ``(N,)`` split names.
        provenance: Per-file sizes, modes, digests and groups.
        licence: Licence of the data.
        description: One line about the data.
        extras: As :attr:`Dataset.extras` (``skipped``, ``errors``,
            ``split_source``, ``origin``, ``groups``) plus ``"cache"``:
            ``"built"`` or ``"reused"``.
    """

    name: str
    cache_path: Path
    image_shape: tuple[int, int, int]
    rows: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    splits: np.ndarray
    provenance: Provenance | None = None
    licence: str = "unknown"
    description: str = ""
    extras: dict[str, object] = field(default_factory=dict, compare=False)

    masks = None  # streamed folders carry no lesion masks

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def available_splits(self) -> tuple[str, ...]:
        """The splits that hold at least one image, in canonical order."""
        return present_splits(self.splits)

    @property
    def image_bytes(self) -> int:
        """Bytes of one cached image (``S * S * C``)."""
        return int(np.prod(self.image_shape))

    def take(self, index: np.ndarray) -> StreamedDataset:
        """A view of the images at ``index`` (int or bool array); nothing is read."""
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        return replace(
            self,
            rows=self.rows[index],
            labels=self.labels[index],
            splits=self.splits[index],
            provenance=None if self.provenance is None else self.provenance.take(index),
        )

    def split(self, name: str) -> StreamedDataset:
        """A view of one split (``"train"``, ``"val"``, ``"test"``) or ``"all"``.

        Raises:
            DataError: ``name`` is unknown or that split is empty.
        """
        mask = split_mask(self.splits, name, dataset_name=self.name)
        return self if mask is None else self.take(mask)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per split and class: ``{split: {class_name: count}}``."""
        return split_counts(self.labels, self.splits, self.class_names)

    def read(self, positions: np.ndarray | None = None) -> np.ndarray:
        """Read images from the cache file.

        Args:
            positions: Indices into this dataset (default: all of it).

        Returns:
            ``(len(positions), S, S, C)`` uint8 array.
        """
        rows = self.rows if positions is None else self.rows[np.asarray(positions)]
        return read_rows(self.cache_path, rows, self.image_shape)

    def materialize(self, *, max_images: int | None = None, seed: int = 0) -> Dataset:
        """An in-memory :class:`Dataset` of this view (or of a seeded sample of it).

        Args:
            max_images: Keep at most this many images, a seeded sample
                stratified by nothing but chance (``None``: all).
            seed: Seed of the sample.

        Returns:
            The ``Dataset`` with ``(n, S, S, C)`` images and the provenance of those images.
        """
        view = self
        if max_images is not None and len(self) > max_images:
            keep = np.sort(np.random.default_rng(seed).choice(len(self), max_images, replace=False))
            view = self.take(keep)
        return Dataset(
            name=view.name,
            images=view.read(),
            labels=view.labels,
            class_names=view.class_names,
            splits=view.splits,
            provenance=view.provenance,
            licence=view.licence,
            description=view.description,
            extras=view.extras,
        )


def packaging_sample(data: StreamedDataset, *, max_train: int = 2000, seed: int = 0) -> Dataset:
    """The in-memory part of a streamed dataset that packaging a trained model needs.

    Calibration, the threshold, the evaluation and the stress test read the
    validation and test splits whole; the out-of-distribution reference needs
    training features, for which a seeded sample of ``max_train`` training
    images is plenty (its statistics are means and covariances).

    Args:
        data: The whole streamed dataset.
        max_train: Training images kept (a seeded random sample).
        seed: Seed of the sample.

    Returns:
        A :class:`Dataset` of every val and test image plus the training sample.
    """
    rng = np.random.default_rng(seed)
    train = np.flatnonzero(data.splits == "train")
    if len(train) > max_train:
        train = np.sort(rng.choice(train, max_train, replace=False))
    keep = np.sort(np.concatenate([train, np.flatnonzero(data.splits != "train")]))
    return data.take(keep).materialize()


def read_rows(path: Path, rows: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """Read whole images ``rows`` of a cache file with ``os.pread`` (no mapping, no RSS growth).

    Args:
        path: The cache file.
        rows: ``(n,)`` row numbers.
        image_shape: ``(S, S, C)``.

    Returns:
        ``(n, S, S, C)`` uint8 array, in the order of ``rows``.
    """
    rows = np.asarray(rows, dtype=np.int64)
    size = int(np.prod(image_shape))
    out = np.empty((len(rows), *image_shape), dtype=np.uint8)
    flat = out.reshape(len(rows), size)
    fd = os.open(path, os.O_RDONLY)
    try:
        for i, row in enumerate(rows):
            chunk = os.pread(fd, size, int(row) * size)
            if len(chunk) != size:
                raise DataError(f"{path}: cache file ends before row {int(row)}; delete it")
            flat[i] = np.frombuffer(chunk, dtype=np.uint8)
    finally:
        os.close(fd)
    return out


def stream_pipeline(
    data: StreamedDataset,
    n_classes: int,
    *,
    batch_size: int,
    image_size: int | None = None,
    augment=None,
    shuffle: bool = False,
    seed: int = 0,
    epochs: tuple[int, int] | None = None,
):
    """A ``tf.data.Dataset`` of ``(float32 images in [0, 255], one-hot labels)`` read from disk.

    The same batches as :func:`medviz.training.make_pipeline` on the
    in-memory images (the same seeded shuffle of positions, the same
    augmentation), but only row numbers live in memory: each batch is read
    from the cache file on a parallel ``tf.data`` thread.

    Args:
        data: A view (usually one split).
        n_classes: Width of the one-hot labels.
        batch_size: Images per batch.
        image_size: Resize to this side when it differs from the cache's.
        augment: An :class:`~medviz.augment.AugmentConfig`, or ``None``.
        shuffle: Reshuffle the order every epoch (seeded).
        seed: Seed of the shuffle and augmentation.
        epochs: ``(first, end)``: with ``shuffle``, one finite dataset of the
            batches of those epochs, each epoch's order a stateless shuffle of
            ``(seed, epoch)`` (resumable runs; as :func:`medviz.training.make_pipeline`).

    Returns:
        The batched, prefetched dataset.
    """
    import tensorflow as tf

    from medviz.augment import augment_batch, build_augmenter

    shape = data.image_shape
    positions = np.arange(len(data), dtype=np.int64)
    if shuffle and epochs is not None:
        labels = tf.constant(data.labels)

        def epoch_batches(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.constant(positions), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
            )
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

        ds = tf.data.Dataset.range(*epochs).flat_map(epoch_batches)
        ds = ds.map(lambda index: (index, tf.gather(labels, index)))
    else:
        ds = tf.data.Dataset.from_tensor_slices((positions, data.labels))
        if shuffle:
            ds = ds.shuffle(len(positions), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
    augmenter = build_augmenter(augment, seed=seed) if augment is not None else None
    rows, path = data.rows, data.cache_path

    def read_batch(index: np.ndarray) -> np.ndarray:
        return read_rows(path, rows[index], shape)

    def prepare(index, y):
        x = tf.numpy_function(read_batch, [index], tf.uint8, stateful=False)
        x = tf.ensure_shape(x, (None, *shape))
        x = tf.cast(x, tf.float32)
        if image_size is not None and image_size != shape[0]:
            x = tf.clip_by_value(
                tf.round(tf.image.resize(x, (image_size, image_size), antialias=True)), 0, 255
            )
        return augment_batch(augmenter, x), tf.one_hot(y, n_classes)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def stream_folder(
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
    cache_dir: str | Path | None = None,
) -> StreamedDataset:
    """Index ``root/<class>/*`` or ``root/<split>/<class>/*`` folders into a disk cache.

    Arguments as :func:`medviz.data.folders.load_folder`, plus ``cache_dir``
    (default: ``<cache>/streams``, see :func:`medviz.locations.cache_dir`).

    Returns:
        A :class:`StreamedDataset` (the same layout rules, splits, groups and
        ``extras`` as ``load_folder``).

    Raises:
        DataError: As ``load_folder``.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError(
            f"{root}: not a folder; expected root/<class>/<image> or root/<split>/<class>/<image>"
        )
    members, outside = folder_members(root)
    stamps = []
    for member in members:  # the cache key: a changed, added or removed file rebuilds it
        stat = (root / member.path).stat()
        stamps.append((member.path, stat.st_size, stat.st_mtime_ns))
    return _stream(
        members,
        stamps=stamps,
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
        cache_dir=cache_dir,
    )


def stream_zip(
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
    cache_dir: str | Path | None = None,
    max_uncompressed: int = MAX_UNCOMPRESSED,
    max_ratio: float = MAX_RATIO,
) -> StreamedDataset:
    """Index a zip of an image folder into a disk cache, one member at a time.

    The archive is checked as :func:`medviz.data.folders.load_zip` does
    (zip-slip, zip bombs) before anything is inflated; members are inflated
    one by one, never all together.

    Returns:
        A :class:`StreamedDataset`.

    Raises:
        DataError: Not a readable zip, an unsafe archive, or as ``load_folder``.
    """
    archive_path = Path(path).expanduser()
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{archive_path}: not a readable zip archive ({exc})") from exc
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        check_archive(
            infos, str(archive_path), max_uncompressed=max_uncompressed, max_ratio=max_ratio
        )
        members = [
            Member(info.filename.replace("\\", "/"), partial(archive.read, info)) for info in infos
        ]
        stamps = [(info.filename, info.file_size, info.CRC) for info in infos]
        return _stream(
            members,
            stamps=stamps,
            origin=str(archive_path),
            name=name or archive_path.stem,
            image_size=image_size,
            channels=channels,
            seed=seed,
            licence=licence,
            limit_per_class=limit_per_class,
            fractions=fractions,
            group_pattern=group_pattern,
            cache_dir=cache_dir,
        )


def _stream(
    members: list[Member],
    *,
    stamps: list[tuple[str, int, int]],
    pre_skipped: list[tuple[str, str]] | None = None,
    origin: str,
    name: str,
    image_size: int,
    channels: int,
    seed: int,
    licence: str,
    limit_per_class: int | None,
    fractions: tuple[float, float, float],
    group_pattern: str | None,
    cache_dir: str | Path | None,
) -> StreamedDataset:
    """Plan the layout, then build (or reuse) the cache and index of ``members``."""
    check_options(image_size, channels, limit_per_class, fractions)
    if group_pattern:
        compile_pattern(group_pattern)
    candidates, skipped = plan_layout(members, origin)
    skipped = [*(pre_skipped or []), *skipped]
    candidates = limit_candidates(candidates, limit_per_class)
    key = hashlib.sha1(
        json.dumps([sorted(stamps), image_size, channels, limit_per_class, THUMBNAIL_SIDE]).encode()
    ).hexdigest()[:16]
    folder = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    pixels_path, index_path = folder / f"{key}.u8", folder / f"{key}.json"

    index = _read_index(index_path, pixels_path)
    if index is None:
        index = _build_cache(
            candidates, pixels_path, index_path, image_size=image_size, channels=channels
        )
        how = "built"
    else:
        how = "reused"
    kept = index["kept"]
    used = [candidates[i] for i in kept]
    errors = [tuple(e) for e in index["errors"]]
    skipped = [*skipped, *(tuple(s) for s in index["skipped"])]
    if not used:
        detail = f"; {len(errors)} files failed, e.g. {errors[0][1]}" if errors else ""
        raise DataError(
            f"{origin}: no image could be read ({len(candidates)} candidate files{detail})"
        )
    class_names = tuple(sorted({c.label_name for c in used}))
    if len(class_names) < 2:
        raise DataError(
            f"{origin}: found {len(class_names)} class {list(class_names)}; need at least 2 "
            "class folders (root/<class>/<image> or root/<split>/<class>/<image>)"
        )
    label_of = {c: i for i, c in enumerate(class_names)}
    labels = np.array([label_of[c.label_name] for c in used], dtype=np.int64)
    sources = tuple(c.member.path for c in used)
    groups = _cached_groups(
        folder
        / f"{key}.groups-{hashlib.sha1((group_pattern or '').encode()).hexdigest()[:8]}.json",
        index_path,
        sources,
        pattern=group_pattern,
        digests=index["digests"],
    )
    splits, split_source = complete_splits(
        labels, [c.split for c in used], groups=groups.keys, fractions=fractions, seed=seed
    )
    provenance = Provenance(
        sources=sources,
        original_sizes=np.array(index["sizes"], dtype=np.int64).reshape(-1, 2),
        original_modes=tuple(index["modes"]),
        digests=tuple(index["digests"]),
        groups=groups.keys,
        group_methods=groups.how,
        near_pairs=groups.near_pairs,
    )
    return StreamedDataset(
        name=name,
        cache_path=pixels_path,
        image_shape=(image_size, image_size, channels),
        rows=np.arange(len(used), dtype=np.int64),
        labels=labels,
        class_names=class_names,
        splits=splits,
        provenance=provenance,
        licence=licence,
        description=f"{len(labels)} images in {len(class_names)} classes from {origin} "
        f"(streamed from a {image_size} px disk cache)",
        extras={
            "skipped": skipped,
            "errors": errors,
            "split_source": split_source,
            "origin": origin,
            "groups": groups.to_dict(),
            "cache": how,
            "cache_path": str(pixels_path),
        },
    )


def _cached_groups(
    path: Path,
    index_path: Path,
    sources: tuple[str, ...],
    *,
    pattern: str | None,
    digests: list[str],
) -> Groups:
    """The groups of a cache's images: computed from its thumbnails once, then read back.

    Grouping holds float copies of every thumbnail (the near-duplicate search
    compares them), the largest memory of the whole indexing pass; keeping
    its result beside the cache means later loads (every training run) never
    repeat it, so their memory does not grow with the dataset.
    """
    try:
        saved = json.loads(path.read_text())
        if saved["sources"] == list(sources):
            return Groups(
                keys=tuple(saved["keys"]),
                how=tuple(saved["how"]),
                pattern=saved["pattern"],
                n_pattern_matches=int(saved["n_pattern_matches"]),
                near_pairs=np.asarray(saved["near_pairs"], dtype=np.int64).reshape(-1, 2),
            )
    except (OSError, ValueError, KeyError):
        pass
    thumbnails = np.load(index_path.with_suffix(".thumbs.npy"))
    groups = find_groups(thumbnails, sources, pattern=pattern, digests=digests)
    del thumbnails
    payload = {
        "sources": list(sources),
        "keys": list(groups.keys),
        "how": list(groups.how),
        "pattern": groups.pattern,
        "n_pattern_matches": groups.n_pattern_matches,
        "near_pairs": np.asarray(groups.near_pairs).tolist(),
    }
    tmp = path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, path)
    return groups


def _default_cache_dir() -> Path:
    return cache_dir() / "streams"


def _read_index(index_path: Path, pixels_path: Path) -> dict | None:
    """The index of a complete cache, or ``None`` (absent, unreadable or truncated)."""
    try:
        index = json.loads(index_path.read_text())
    except (OSError, ValueError):
        return None
    thumbs = index_path.with_suffix(".thumbs.npy")
    if not thumbs.exists() or not pixels_path.exists():
        return None
    if pixels_path.stat().st_size != index.get("bytes"):
        return None
    return index


def _build_cache(
    candidates: list,
    pixels_path: Path,
    index_path: Path,
    *,
    image_size: int,
    channels: int,
) -> dict:
    """One pass over the files: pixels appended to the cache, thumbnails and facts kept.

    The index is written last (atomically), so an interrupted build is
    rebuilt from scratch next time instead of being half-used.
    """
    from medviz.data.images import to_model_input

    kept: list[int] = []
    sizes: list[tuple[int, int]] = []
    modes: list[str] = []
    digests: list[str] = []
    errors: list[tuple[str, str]] = []
    skipped: list[tuple[str, str]] = []
    thumbnails: list[np.ndarray] = []
    work = partial(load_one, image_size=image_size, channels=channels)
    partial_path = pixels_path.with_suffix(".u8.partial")
    with open(partial_path, "wb") as out, ThreadPoolExecutor(max_workers=decode_workers()) as pool:
        for start, results in _chunks(pool, work, candidates):
            for offset, result in enumerate(results):
                i = start + offset
                path = candidates[i].member.path
                if isinstance(result, DecodedFile):
                    out.write(np.ascontiguousarray(result.pixels, dtype=np.uint8).tobytes())
                    grey = result.pixels if channels == 1 else result.pixels.mean(-1, keepdims=True)
                    thumbnails.append(
                        to_model_input(
                            grey.astype(np.uint8)[..., 0], image_size=THUMBNAIL_SIDE, channels=1
                        )
                    )
                    kept.append(i)
                    sizes.append(tuple(int(v) for v in result.size))
                    modes.append(result.mode)
                    digests.append(result.digest)
                elif result[0] == "skipped":
                    skipped.append((path, result[1]))
                else:
                    errors.append((path, result[1]))
    os.replace(partial_path, pixels_path)
    thumbs = (
        np.stack(thumbnails)
        if thumbnails
        else np.zeros((0, THUMBNAIL_SIDE, THUMBNAIL_SIDE, 1), np.uint8)
    )
    np.save(index_path.with_suffix(".thumbs.npy"), thumbs)
    index = {
        "kept": kept,
        "sizes": sizes,
        "modes": modes,
        "digests": digests,
        "errors": errors,
        "skipped": skipped,
        "bytes": len(kept) * image_size * image_size * channels,
    }
    tmp = index_path.with_suffix(".json.partial")
    tmp.write_text(json.dumps(index))
    os.replace(tmp, index_path)
    return index


def _chunks(pool: ThreadPoolExecutor, work, candidates: list) -> Iterator[tuple[int, list]]:
    """Decode ``candidates`` in rounds of :data:`_CHUNK` files, in order."""
    for start in range(0, len(candidates), _CHUNK):
        yield start, list(pool.map(work, candidates[start : start + _CHUNK]))
