"""Which images belong together: patient groups and near-duplicate clusters.

Splits are only honest when every image of one patient, and every copy of
one image, lands in the same split. Two sources of groups are combined:

* **File names** that carry a patient or subject id, read with a regular
  expression (:func:`pattern_groups`), e.g. Kermany's chest X-rays
  ``person23_bacteria_87.jpeg`` → ``person23``.
* **Pixels** (:func:`near_duplicate_pairs`): candidates are pairs whose 64-bit
  perceptual hashes, computed by the ``imagehash`` library on 32×32 grey
  thumbnails, lie close: pHash (the low 8×8 DCT coefficients against their
  median; of the whole image and of centre crops, :data:`CROPS`) within
  :data:`HASH_THRESHOLD` bits, or dHash (brighter than the right neighbour, on
  9×8) within :data:`DHASH_THRESHOLD` bits, found with vectorised
  XOR/popcount in blocks; a candidate is a near-duplicate when the
  thumbnails correlate (:data:`MIN_CORRELATION`) *and* so does their fine
  detail (:data:`MIN_DETAIL_CORRELATION`). Union-find (connected components)
  joins pairs into clusters. Resized, re-encoded and lightly cropped copies
  land in one cluster; byte-identical files always do.

:func:`find_groups` joins both (a patient's images and any near-copy of them
form one group) and returns a frozen :class:`Groups`. Nothing here imports
TensorFlow, and SciPy only when called. Grouping took 45–60 s for the
5,200–5,700 images of chest X-ray or brain MRI at 128 px on two cores that
were shared with a training run (load average 15), the time of decoding them.
Hashing with ``imagehash`` (one call per image and crop) made the grouping of
the 5,216 chest X-rays 408 s instead of 166 s at load average ~30 (1.6 ms per
``imagehash.phash`` against 0.08 ms vectorised), for the same 28 pairs;
:func:`cross_matches`, with 25 crop variants per image, keeps a vectorised DCT.

Why one module (over 600 lines): file-name groups, hash candidates,
correlation confirmation and union-find are one algorithm whose thresholds
were tuned together (see the constants below).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from medviz.errors import DataError

HASH_THRESHOLD = 10
"""Largest pHash Hamming distance (of 64 bits) of a near-duplicate *candidate*."""

DHASH_THRESHOLD = 6
"""Largest dHash Hamming distance (of 64 bits) of a near-duplicate *candidate*; dHash adds
the re-encoded and resized copies whose pHash bits near the median flipped (the
correlation checks below still decide)."""

MIN_CORRELATION = 0.95
"""Smallest correlation of 32×32 grey thumbnails (best over :data:`CROPS`) of a near-duplicate."""

MIN_DETAIL_CORRELATION = 0.8
"""Smallest correlation of the fine detail (48×48 thumbnail minus its Gaussian blur,
σ 1.5 px; best over :data:`CROPS`) of a near-duplicate.

The detail check is needed because paediatric chest X-rays share their coarse anatomy:
with the 32 px check alone, 832 pairs of *different* patients in chest_xray_pneumonia_224
correlated ≥ 0.95 and chained 1,060 images into one group. Their detail correlates at
most 0.77, while re-encoded and resized copies keep ≥ 0.99.

Measured with both checks (200 images and altered copies each, 128 px): JPEG q50
re-encoding and 5/8 down-and-up resizing are always found; centred crops of 1, 2.5, 4
and 5.5 % per side are found 96, 96, 93 and 88 % of the time on brain_mri and always
on the chest X-rays. Whole sets: chest train 28 near pairs, all of one patient (the
byte-identical files); brain_mri Training 5,369 pairs (mostly adjacent slices of one
study, which a split should keep together), 1 of them across classes, largest
cluster 32 images.
"""

MIN_CONTRAST = 8.0
"""Images whose 32×32 grey thumbnail has a standard deviation below this (of 255) are
featureless: their hash and correlation are noise, so any two would match. They join
groups only through equal digests. The least contrasty real image measured had 17.8
(brain_mri) and 18.2 (chest X-ray)."""

CROPS: tuple[float, ...] = (0.0, 0.015, 0.03, 0.045, 0.06)
"""Centre crops (fraction cut from each side) compared, so lightly cropped copies match."""

KERMANY_PATTERN = r"(?:^|/)((?:NORMAL2-)?IM-\d+|person\d+)[-_][^/]*$"
"""Patient id in Kermany chest X-ray names (``personN_bacteria_M.jpeg`` → ``personN``,
``IM-0115-0001.jpeg`` → ``IM-0115``, ``NORMAL2-IM-0173-0001.jpeg`` → ``NORMAL2-IM-0173``)."""

_HASH_SIDE = 32
_BLOCK = 1024


@dataclass(frozen=True)
class Groups:
    """The group of every image and how it was found.

    Attributes:
        keys: ``(N,)`` group keys; images with equal keys belong together. A
            key is the patient id read from the file name when any member
            has one, else the source name of the group's first image.
        how: ``(N,)`` why each image is in its group: ``"pattern"`` (its
            name matched the pattern), ``"near-duplicate"`` (no name match,
            but a near-copy of another image), or ``"single"``.
        pattern: The regular expression used, or ``None``.
        n_pattern_matches: How many file names matched the pattern.
        near_pairs: ``(P, 2)`` index pairs found to be near-duplicates
            (before joining into groups; exact duplicates included).
    """

    keys: tuple[str, ...]
    how: tuple[str, ...]
    pattern: str | None
    n_pattern_matches: int
    near_pairs: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    def __len__(self) -> int:
        return len(self.keys)

    def sizes(self) -> dict[str, int]:
        """Images per group key."""
        unique, counts = np.unique(np.asarray(self.keys), return_counts=True)
        return {str(k): int(n) for k, n in zip(unique, counts, strict=True)}

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary: pattern, matches, near-duplicate pairs and :meth:`summary`."""
        return {
            "pattern": self.pattern,
            "n_pattern_matches": self.n_pattern_matches,
            "n_near_pairs": len(self.near_pairs),
            **self.summary(),
        }

    def summary(self) -> dict[str, int]:
        """``n_groups``, ``n_multi`` (groups of ≥ 2 images), ``n_in_multi`` and ``largest``."""
        sizes = np.array(list(self.sizes().values()) or [0])
        return {
            "n_groups": int((sizes > 0).sum()),
            "n_multi": int((sizes > 1).sum()),
            "n_in_multi": int(sizes[sizes > 1].sum()),
            "largest": int(sizes.max()),
        }


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """Compile a group pattern, raising :class:`DataError` for a bad one."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise DataError(
            f"group pattern {pattern!r} is not a valid regular expression ({exc})"
        ) from exc


def pattern_groups(sources: Sequence[str], pattern: str) -> tuple[str | None, ...]:
    """Read a group key out of every file's relative path with a regular expression.

    The pattern is searched (``re.search``) in each path with ``/``
    separators; the key is its first capture group, or the whole match when
    the pattern has no group.

    Args:
        sources: ``(N,)`` relative file paths or names.
        pattern: A regular expression, e.g. :data:`KERMANY_PATTERN`.

    Returns:
        ``(N,)`` keys, ``None`` where the path does not match (or the group
        matched nothing).

    Raises:
        DataError: ``pattern`` is not a valid regular expression.
    """
    compiled = compile_pattern(pattern)
    keys: list[str | None] = []
    for source in sources:
        match = compiled.search(str(source).replace("\\", "/"))
        if match is None:
            keys.append(None)
            continue
        key = match.group(1) if compiled.groups else match.group(0)
        keys.append(key or None)
    return tuple(keys)


def perceptual_hashes(images: np.ndarray) -> np.ndarray:
    """64-bit pHash of every image (``imagehash.phash``).

    Each image is turned grey and area-resized to 32×32 here (a matrix product
    for the whole batch), then ``imagehash.phash`` takes its 2-D DCT; bit ``k``
    says whether the ``k``-th of the 8×8 lowest frequencies lies above their
    median.

    Args:
        images: ``(N, H, W)`` or ``(N, H, W, C)`` images, any numeric dtype.

    Returns:
        ``(N,)`` ``uint64`` hashes.
    """
    return _phash(_thumbnails(_grey(images), _HASH_SIDE))


def difference_hashes(images: np.ndarray) -> np.ndarray:
    """64-bit dHash (``imagehash.dhash``): is each pixel of a 9×8 thumbnail brighter than
    its right neighbour?

    Args:
        images: ``(N, H, W)`` or ``(N, H, W, C)`` images.

    Returns:
        ``(N,)`` ``uint64`` hashes.
    """
    return _dhash(_thumbnails(_grey(images), _HASH_SIDE))


def hamming_pairs(
    hashes: np.ndarray, *, threshold: int, other: np.ndarray | None = None
) -> np.ndarray:
    """All pairs of hashes at most ``threshold`` bits apart.

    Compares in blocks of rows with vectorised XOR and popcount, so 6,000
    hashes (18 M pairs) take well under a second.

    Args:
        hashes: ``(N,)`` ``uint64`` hashes.
        threshold: Largest Hamming distance kept.
        other: Optional ``(M,)`` hashes to compare against instead of
            ``hashes`` itself.

    Returns:
        ``(P, 3)`` int64 rows ``(i, j, distance)``; within one set only
        ``i < j``, against ``other`` ``i`` indexes ``hashes`` and ``j`` ``other``.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    against = hashes if other is None else np.asarray(other, dtype=np.uint64)
    found = []
    for start in range(0, len(hashes), _BLOCK):
        block = hashes[start : start + _BLOCK]
        distance = np.bitwise_count(block[:, None] ^ against[None, :])
        i, j = np.nonzero(distance <= threshold)
        i = i + start
        if other is None:
            keep = i < j
            i, j = i[keep], j[keep]
        found.append(np.column_stack([i, j, distance[i - start, j]]).astype(np.int64))
    return np.concatenate(found) if found else np.zeros((0, 3), dtype=np.int64)


def near_duplicate_pairs(
    images: np.ndarray,
    other: np.ndarray | None = None,
    *,
    hash_threshold: int = HASH_THRESHOLD,
    min_correlation: float = MIN_CORRELATION,
    min_detail: float = MIN_DETAIL_CORRELATION,
) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of images that are copies of each other up to resizing, re-encoding or light crops.

    Two stages keep it fast and precise: candidates are pairs whose pHash
    (of the whole image against the whole image or a centre crop of the
    other, :data:`CROPS`) differ in at most ``hash_threshold`` of 64 bits, or
    whose dHash differ in at most :data:`DHASH_THRESHOLD`;
    a candidate is kept when the normalised correlation of 32×32 grey
    thumbnails, maximised over the same crops, reaches ``min_correlation``.

    Args:
        images: ``(N, H, W[, C])`` images.
        other: Optional ``(M, H', W'[, C'])`` images to compare against
            instead of ``images`` itself.
        hash_threshold: Largest pHash Hamming distance of candidates.
        min_correlation: Smallest thumbnail correlation of a near-duplicate.

    Returns:
        ``(P, 2)`` int64 index pairs ``(i, j)`` (``i < j`` within one set;
        ``j`` indexes ``other`` when given) and ``(P,)`` float32 correlations,
        as a tuple.
    """
    a_grey = _prepared(images)
    b_grey = a_grey if other is None else _prepared(other)
    a_hash, a_flat = _hashes(a_grey)
    b_hash, b_flat = (a_hash, a_flat) if other is None else _hashes(b_grey)
    candidates = [
        hamming_pairs(a_hash[:, 0], threshold=hash_threshold, other=b_hash[:, z])
        for z in range(len(CROPS))
    ]
    candidates += [
        hamming_pairs(a_hash[:, z], threshold=hash_threshold, other=b_hash[:, 0])
        for z in range(1, len(CROPS))
    ]
    a_dhash = _dhash(_thumbnails(a_grey, _HASH_SIDE))
    b_dhash = a_dhash if other is None else _dhash(_thumbnails(b_grey, _HASH_SIDE))
    candidates.append(
        hamming_pairs(a_dhash, threshold=DHASH_THRESHOLD, other=None if other is None else b_dhash)
    )
    pairs = np.unique(np.concatenate(candidates)[:, :2], axis=0).reshape(-1, 2)
    if other is None:
        pairs = pairs[pairs[:, 0] < pairs[:, 1]]
    pairs = pairs[~a_flat[pairs[:, 0]] & ~b_flat[pairs[:, 1]]]
    score = np.zeros(len(pairs), dtype=np.float32)
    # Two checks, the cheap one first: the whole picture (32 px) must correlate, and so
    # must its fine detail (48 px minus a blur), which tells apart two children's chest
    # X-rays that share the same coarse anatomy.
    for side, sigma, floor in ((_HASH_SIDE, 0.0, min_correlation), (48, 1.5, min_detail)):
        if not len(pairs):
            break
        score = _best_correlation(a_grey, b_grey, pairs, side=side, sigma=sigma)
        keep = score >= floor
        pairs, score = pairs[keep], score[keep]
    return pairs.astype(np.int64), score.astype(np.float32)


def near_duplicate_groups(
    images: np.ndarray,
    *,
    hash_threshold: int = HASH_THRESHOLD,
    min_correlation: float = MIN_CORRELATION,
    min_detail: float = MIN_DETAIL_CORRELATION,
    digests: Sequence[str] | None = None,
) -> np.ndarray:
    """Cluster images that are near-copies of each other (see :func:`near_duplicate_pairs`).

    Clusters are the connected components (union-find) of the "near"
    relation, so copies of copies join too.

    Args:
        images: ``(N, H, W[, C])`` images.
        hash_threshold: Largest pHash Hamming distance of candidates.
        min_correlation: Smallest thumbnail correlation of a near-duplicate.
        min_detail: Smallest fine-detail correlation of a near-duplicate.
        digests: Optional ``(N,)`` file digests; equal digests always join,
            whatever the pixels say.

    Returns:
        ``(N,)`` int64 cluster ids, numbered by first appearance.
    """
    pairs, _ = near_duplicate_pairs(
        images,
        hash_threshold=hash_threshold,
        min_correlation=min_correlation,
        min_detail=min_detail,
    )
    return _components(len(images), [pairs, _equal_pairs(digests)])


def find_groups(
    images: np.ndarray,
    sources: Sequence[str],
    *,
    pattern: str | None = None,
    digests: Sequence[str] | None = None,
    hash_threshold: int = HASH_THRESHOLD,
    min_correlation: float = MIN_CORRELATION,
    min_detail: float = MIN_DETAIL_CORRELATION,
) -> Groups:
    """Groups from file-name patient ids joined with near-duplicate clusters.

    Args:
        images: ``(N, H, W[, C])`` images.
        sources: ``(N,)`` relative file paths or ids (unique).
        pattern: Regular expression whose first capture group is the patient
            id (see :func:`pattern_groups`), or ``None``.
        digests: Optional ``(N,)`` file digests (exact duplicates always join).
        hash_threshold: Largest pHash Hamming distance of candidates.
        min_correlation: Smallest thumbnail correlation of a near-duplicate.
        min_detail: Smallest fine-detail correlation of a near-duplicate.

    Returns:
        The :class:`Groups`.

    Raises:
        DataError: Bad pattern, or ``sources`` and ``images`` differ in length.
    """
    n = len(images)
    if len(sources) != n:
        raise DataError(f"{len(sources)} sources for {n} images")
    if not 0 <= hash_threshold <= 64:
        raise DataError(f"hash_threshold must lie in [0, 64] bits, got {hash_threshold}")
    named = pattern_groups(sources, pattern) if pattern else (None,) * n
    near = (
        near_duplicate_pairs(
            images,
            hash_threshold=hash_threshold,
            min_correlation=min_correlation,
            min_detail=min_detail,
        )[0]
        if n
        else np.zeros((0, 2), dtype=np.int64)
    )
    near = np.concatenate([near, _equal_pairs(digests)])
    patients = _equal_pairs([k if k is not None else f"\0{i}" for i, k in enumerate(named)])
    component = _components(n, [near, patients])
    in_near = np.zeros(n, dtype=bool)
    in_near[near.ravel()] = True
    keys: dict[int, str] = {}
    for i in range(n):  # a patient id names the whole group; else its first image does
        c = int(component[i])
        if named[i] is not None and (c not in keys or keys[c].startswith("\0")):
            keys[c] = str(named[i])
        keys.setdefault(c, "\0" + str(sources[i]))
    how = tuple(
        "pattern" if named[i] is not None else ("near-duplicate" if in_near[i] else "single")
        for i in range(n)
    )
    return Groups(
        keys=tuple(keys[int(c)].lstrip("\0") for c in component),
        how=how,
        pattern=pattern,
        n_pattern_matches=sum(k is not None for k in named),
        near_pairs=near,
    )


CROSS_FRACTIONS: tuple[float, ...] = tuple(round(1.0 - 0.05 * k, 2) for k in range(13))
"""Share of the width (or height) kept by the centre crops tried in :func:`cross_matches`:
1.0 down to 0.4. A copy made by centre-cropping the original to a square (MedMNIST)
and one made by squashing it to a square differ by such a crop of the squashed one."""

CROSS_MIN_CORRELATION = 0.96
"""Smallest correlation of ``side``-px grey images (best over the crops) of a cross-dataset match.

Measured for PneumoniaMNIST (28 px, centre-cropped) against chest_xray_pneumonia_224
(squashed) on 200 X-rays: the best crop of the true original correlates 0.984
(median; 5th percentile 0.970), the best *other* image 0.895 (median; 99th
percentile 0.947). Squashed without a crop, the true original reaches only 0.85."""


@dataclass(frozen=True)
class CrossMatches:
    """Images of one set that are (cropped, resized) copies of images of another.

    Attributes:
        pairs: ``(P, 2)`` int64 index pairs ``(i in a, j in b)``.
        scores: ``(P,)`` float32 correlations of the pairs.
        n_a: Images in ``a``.
        n_b: Images in ``b``.
        side: Side length (px) at which the images were compared.
        method: One line saying how matches were found.
    """

    pairs: np.ndarray
    scores: np.ndarray
    n_a: int
    n_b: int
    side: int
    method: str

    @property
    def a_matched(self) -> int:
        """Images of ``a`` with at least one match in ``b``."""
        return len(np.unique(self.pairs[:, 0]))

    @property
    def b_matched(self) -> int:
        """Images of ``b`` with at least one match in ``a``."""
        return len(np.unique(self.pairs[:, 1]))


def cross_matches(
    a: np.ndarray,
    b: np.ndarray,
    *,
    fractions: Sequence[float] = CROSS_FRACTIONS,
    hash_threshold: int = HASH_THRESHOLD,
    min_correlation: float = CROSS_MIN_CORRELATION,
) -> CrossMatches:
    """Find images of ``a`` that are copies of images of ``b`` made another way.

    Both sets are compared at the smaller one's side (at most 32 px). The
    larger-resolution set (``b`` on a tie) is also centre-cropped to each of
    ``fractions`` of its width and, separately, of its height, so a
    centre-cropped copy meets the crop of a squashed copy that shows the same
    field of view. Candidates come from pHash distances, and a candidate is a
    match when its best correlation reaches ``min_correlation``.

    Args:
        a: ``(N, H, W[, C])`` images.
        b: ``(M, H', W'[, C'])`` images.
        fractions: Shares of width/height kept by the centre crops tried.
        hash_threshold: Largest pHash Hamming distance of candidates.
        min_correlation: Smallest correlation of a match.

    Returns:
        The :class:`CrossMatches`.
    """
    _grey(np.asarray(a)[:0]), _grey(np.asarray(b)[:0])  # validate the shapes cheaply
    side = int(min(np.asarray(a).shape[1], np.asarray(b).shape[1], _HASH_SIDE))
    crop_a = np.asarray(a).shape[1] > np.asarray(b).shape[1]
    a_var = _crop_variants(a, side, fractions if crop_a else (1.0,))
    b_var = _crop_variants(b, side, (1.0,) if crop_a else fractions)
    # 25 crop variants of every image: the vectorised DCT pHash, not imagehash's per-image call
    # (1.6 ms against 0.08 ms per hash measured under load), keeps this in seconds
    a_hash = np.stack([_dct_phash(_thumbnails(v.astype(np.float32), _HASH_SIDE)) for v in a_var], 1)
    b_hash = np.stack([_dct_phash(_thumbnails(v.astype(np.float32), _HASH_SIDE)) for v in b_var], 1)
    found = [
        hamming_pairs(a_hash[:, u], threshold=hash_threshold, other=b_hash[:, v])[:, :2]
        for u in range(a_hash.shape[1])
        for v in range(b_hash.shape[1])
    ]
    pairs = np.unique(np.concatenate(found), axis=0).reshape(-1, 2) if found else np.zeros((0, 2))
    pairs = pairs.astype(np.int64)
    score = np.full(len(pairs), -1.0, dtype=np.float32)
    for start in range(0, len(pairs), _BLOCK):  # vectors per block: the variants stay uint8
        i, j = pairs[start : start + _BLOCK, 0], pairs[start : start + _BLOCK, 1]
        best = score[start : start + _BLOCK]
        b_units = [_unit(v[j]) for v in b_var]
        for u in a_var:
            u_unit = _unit(u[i])
            for v_unit in b_units:
                best = np.maximum(best, np.einsum("pk,pk->p", u_unit, v_unit))
        score[start : start + _BLOCK] = best
    keep = score >= min_correlation
    cropped = "first" if crop_a else "second"
    return CrossMatches(
        pairs=pairs[keep],
        scores=score[keep],
        n_a=len(a),
        n_b=len(b),
        side=side,
        method=(
            f"grey images at {side} px; the {cropped} set also centre-cropped to "
            f"{min(fractions):g}–{max(fractions):g} of its width or height; pHash candidates "
            f"(≤ {hash_threshold} bits), kept at correlation ≥ {min_correlation:g}"
        ),
    )


def _crop_variants(images: np.ndarray, side: int, fractions: Sequence[float]) -> list[np.ndarray]:
    """``side``-px uint8 grey images of centre crops keeping ``fractions`` of width, then height.

    Each axis is area-averaged from running sums read at fractional crop
    edges, so a crop costs O(N·side·W), not a resize of the full image.
    """
    images = np.asarray(images)
    variants: list[list[np.ndarray]] = [[] for _ in range(2 * len(fractions))]
    for start in range(0, len(images), 512):
        grey = _grey(images[start : start + 512]).astype(np.float64)
        rows = _area_axis(grey, side, axis=1, keep=1.0)  # (n, side, W): crops of the width
        cols = _area_axis(grey, side, axis=2, keep=1.0)  # (n, H, side): crops of the height
        for k, keep in enumerate(fractions):
            variants[k].append(_area_axis(rows, side, axis=2, keep=keep))
            variants[len(fractions) + k].append(_area_axis(cols, side, axis=1, keep=keep))
    out = [np.concatenate(v) if v else np.zeros((0, side, side)) for v in variants]
    # the uncropped image appears twice when 1.0 is among the fractions
    unique = out[: len(fractions)] + [
        v for f, v in zip(fractions, out[len(fractions) :], strict=True) if f < 1.0
    ]
    return [np.clip(np.rint(v), 0, 255).astype(np.uint8) for v in unique]


def _area_axis(array: np.ndarray, size: int, *, axis: int, keep: float) -> np.ndarray:
    """Area-average the centre ``keep`` share of one axis into ``size`` cells."""
    n = array.shape[axis]
    moved = np.moveaxis(array, axis, -1)
    sums = np.concatenate([np.zeros((*moved.shape[:-1], 1)), np.cumsum(moved, axis=-1)], axis=-1)
    first = n * (1.0 - keep) / 2
    edges = first + np.arange(size + 1) * (n * keep / size)
    low = np.clip(np.floor(edges).astype(np.int64), 0, n - 1)
    frac = edges - low
    at_edges = sums[..., low] + frac * (sums[..., low + 1] - sums[..., low])
    return np.moveaxis(np.diff(at_edges, axis=-1) * (size / (n * keep)), -1, axis)


def _unit(images: np.ndarray) -> np.ndarray:
    """``(N, side²)`` float32 zero-mean unit-norm vectors."""
    vectors = images.reshape(len(images), -1).astype(np.float32)
    vectors = vectors - vectors.mean(axis=1, keepdims=True)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)


def _prepared(images: np.ndarray) -> np.ndarray:
    """``(N, s, s)`` float32 grey images, shrunk to at most 64 px (crop steps of ~1 px).

    Works in chunks of 512 so a float copy of all full-size images never exists.
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4):
        raise DataError(f"images must be (N, H, W) or (N, H, W, C), got shape {images.shape}")
    side = 2 * _HASH_SIDE
    chunks = [_shrink(_grey(images[i : i + 512]), side) for i in range(0, len(images), 512)]
    if not chunks:
        return np.zeros((0, min(side, images.shape[1]), min(side, images.shape[2])), np.float32)
    return np.concatenate(chunks)


def _shrink(grey: np.ndarray, side: int) -> np.ndarray:
    n, height, width = grey.shape
    if height == width == 2 * side:  # the common 128 px: an exact 2×2 block mean
        return grey.reshape(n, side, 2, side, 2).mean(axis=(2, 4))
    if height > side or width > side:
        return _thumbnails(grey, side)
    return grey


def _crop(grey: np.ndarray, fraction: float) -> np.ndarray:
    cut = round(grey.shape[1] * fraction)
    return grey[:, cut : grey.shape[1] - cut, cut : grey.shape[2] - cut] if cut else grey


def _hashes(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(N, len(CROPS))`` pHashes and ``(N,)`` featureless flags (:data:`MIN_CONTRAST`)."""
    hashes = [_phash(_thumbnails(_crop(grey, crop), _HASH_SIDE)) for crop in CROPS]
    flat = _thumbnails(grey, _HASH_SIDE).reshape(len(grey), -1).std(axis=1) < MIN_CONTRAST
    return np.stack(hashes, axis=1), flat


def _unit_vectors(grey: np.ndarray, *, side: int, sigma: float) -> np.ndarray:
    """``(N, len(CROPS), side²)`` float32 zero-mean unit-norm thumbnails (high-passed if sigma)."""
    out = []
    for crop in CROPS:
        thumb = _thumbnails(_crop(grey, crop), side)
        if sigma:
            from scipy.ndimage import gaussian_filter

            thumb = thumb - gaussian_filter(thumb, (0, sigma, sigma))
        vectors = thumb.reshape(len(thumb), -1)
        vectors = vectors - vectors.mean(axis=1, keepdims=True)
        vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-6)
        out.append(vectors)
    return np.stack(out, axis=1)


def _best_correlation(
    a_grey: np.ndarray, b_grey: np.ndarray, pairs: np.ndarray, *, side: int, sigma: float
) -> np.ndarray:
    """``(P,)`` correlation of each pair, the best of image vs image and image vs crop."""
    a_index, a_of = np.unique(pairs[:, 0], return_inverse=True)
    b_index, b_of = np.unique(pairs[:, 1], return_inverse=True)
    # only the images that take part are thumbnailed, which bounds memory
    a = _unit_vectors(a_grey[a_index], side=side, sigma=sigma)
    b = _unit_vectors(b_grey[b_index], side=side, sigma=sigma)
    a_of, b_of = a_of.reshape(-1), b_of.reshape(-1)
    score = np.full(len(pairs), -1.0, dtype=np.float32)
    for start in range(0, len(pairs), _BLOCK):  # blocks keep the gathered copies small
        ia, ib = a_of[start : start + _BLOCK], b_of[start : start + _BLOCK]
        best = np.einsum("pk,pk->p", a[ia, 0], b[ib, 0])
        for z in range(1, len(CROPS)):
            best = np.maximum(best, np.einsum("pk,pk->p", a[ia, z], b[ib, 0]))
            best = np.maximum(best, np.einsum("pk,pk->p", a[ia, 0], b[ib, z]))
        score[start : start + _BLOCK] = best
    return score


def _grey(images: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` float32 grey images from ``(N, H, W[, C])``."""
    images = np.asarray(images)
    if images.ndim == 4:
        images = images.mean(axis=3) if images.shape[3] > 1 else images[..., 0]
    if images.ndim != 3:
        raise DataError(f"images must be (N, H, W) or (N, H, W, C), got shape {images.shape}")
    return images.astype(np.float32, copy=False)


def _thumbnails(images: np.ndarray, shape: int | tuple[int, int]) -> np.ndarray:
    """``(N, h, w)`` float32 thumbnails of ``(N, H, W)`` grey images by area averaging."""
    rows, cols = (shape, shape) if isinstance(shape, int) else shape
    n, height, width = images.shape
    # two plain 2-D matrix products (BLAS) on images of at most 64 px: faster than a
    # Pillow call per image, and numpy's broadcast matmul is far slower still
    narrow = np.ascontiguousarray(images, dtype=np.float32).reshape(n * height, width)
    narrow = (narrow @ _area_weights(width, cols).T).reshape(n, height, cols)
    narrow = narrow.transpose(0, 2, 1).reshape(n * cols, height)
    short = (narrow @ _area_weights(height, rows).T).reshape(n, cols, rows)
    return np.ascontiguousarray(short.transpose(0, 2, 1))


def _area_weights(n: int, size: int) -> np.ndarray:
    """``(size, n)`` float32 matrix averaging ``n`` cells into ``size`` by their overlap."""
    edges_in = np.arange(n + 1) / n
    edges_out = np.arange(size + 1) / size
    low = np.maximum(edges_out[:-1, None], edges_in[None, :-1])
    high = np.minimum(edges_out[1:, None], edges_in[None, 1:])
    return (np.clip(high - low, 0, None) * size).astype(np.float32)


def _phash(thumbs: np.ndarray) -> np.ndarray:
    """``(N,)`` uint64 ``imagehash.phash`` of ``(N, h, w)`` grey thumbnails (0–255)."""
    return _imagehash(thumbs, "phash")


def _dct_phash(thumbs: np.ndarray) -> np.ndarray:
    """``(N,)`` uint64 pHash of ``(N, 32, 32)`` thumbnails in one vectorised DCT (the
    algorithm of ``imagehash.phash``, the DC term left out of the median)."""
    from scipy.fft import dctn  # SciPy only when hashing: `import medviz.data` stays light

    low = dctn(thumbs, type=2, axes=(1, 2), norm="ortho")[:, :8, :8].reshape(len(thumbs), 64)
    return _pack(low > np.median(low[:, 1:], axis=1, keepdims=True))


def _dhash(thumbs: np.ndarray) -> np.ndarray:
    """``(N,)`` uint64 ``imagehash.dhash`` of ``(N, h, w)`` grey thumbnails (0–255)."""
    return _imagehash(thumbs, "dhash")


def _imagehash(thumbs: np.ndarray, kind: str) -> np.ndarray:
    import imagehash  # the library's hash; imported when hashing, `import medviz.data` stays light
    from PIL import Image

    function = getattr(imagehash, kind)
    pixels = np.clip(np.rint(thumbs), 0, 255).astype(np.uint8)
    bits = np.zeros((len(pixels), 64), dtype=bool)
    for i, thumb in enumerate(pixels):
        bits[i] = function(Image.fromarray(thumb)).hash.reshape(64)
    return _pack(bits)


def _pack(bits: np.ndarray) -> np.ndarray:
    """``(N, 64)`` bools to ``(N,)`` uint64."""
    packed = np.packbits(bits.astype(np.uint8), axis=1)
    return packed.view(">u8")[:, 0].astype(np.uint64)


def _equal_pairs(keys: Sequence[str] | None) -> np.ndarray:
    """``(P, 2)`` index pairs chaining every run of equal keys."""
    if keys is None or len(keys) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    values = np.asarray(keys, dtype=object).astype(str)
    order = np.argsort(values, kind="stable")
    same = values[order[1:]] == values[order[:-1]]
    return np.column_stack([order[:-1][same], order[1:][same]]).astype(np.int64)


def _components(n: int, edges: Sequence[np.ndarray]) -> np.ndarray:
    """Connected components of ``n`` nodes, ids numbered by first appearance."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    pairs = np.concatenate([e.reshape(-1, 2) for e in edges]) if edges else np.zeros((0, 2))
    pairs = pairs.astype(np.int64)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))
    return rank[inverse].astype(np.int64)


def join_groups(*keyings: Sequence[object]) -> tuple[str, ...]:
    """Join several groupings of the same images: two images share a group when any keying
    gives them the same key (patient ids, near-duplicate clusters, runs of slice numbers …).

    Args:
        *keyings: ``(N,)`` group keys each (any hashable values, compared as strings).

    Returns:
        ``(N,)`` group keys (``"g0"``, ``"g1"`` …, numbered by first appearance).

    Raises:
        DataError: The keyings differ in length.
    """
    sizes = {len(k) for k in keyings}
    if len(sizes) > 1:
        raise DataError(f"every keying must have one key per image, got lengths {sorted(sizes)}")
    n = sizes.pop() if sizes else 0
    component = _components(n, [_equal_pairs([str(v) for v in k]) for k in keyings])
    return tuple(f"g{c}" for c in component)
