"""Spurious markers stamped into images: the raw material of the shortcut lab.

Real models have learnt hospital tags, laterality letters, scanner borders and
exposure differences instead of disease (Zech et al., PLoS Med 2018;
DeGrave et al., Nat Mach Intell 2021). :func:`stamp` puts such a cue into a
batch of images under control of size, intensity and position, and
:func:`marker_masks` returns exactly the pixels it changed, so a heatmap's mass
on the marker can be measured. Pure NumPy, vectorised over the batch, and
deterministic: the same marker, shape and seed always give the same pixels.

Three kinds:

* ``"tag"``: an opaque square label in a corner carrying a dark letter, like a
  radiograph's hospital or laterality marker.
* ``"border"``: a frame of constant level around the image, like a scanner's
  or a digitiser's edge.
* ``"brightness"``: a global offset of every pixel (a different exposure or
  window setting). It has no region: its mask is the whole image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

MarkerKind = Literal["tag", "border", "brightness"]
Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]

MARKER_KINDS: tuple[MarkerKind, ...] = ("tag", "border", "brightness")
CORNERS: tuple[Corner, ...] = ("top-left", "top-right", "bottom-left", "bottom-right")

#: Default size and intensity of each kind (see :class:`Marker`).
DEFAULTS: dict[str, tuple[float, float]] = {
    "tag": (0.22, 1.0),
    "border": (0.06, 1.0),
    "brightness": (0.0, 0.15),
}

# 5×7 bitmap glyphs ("#" = ink) of the letters hospital and laterality tags carry.
_GLYPHS: dict[str, tuple[str, ...]] = {
    "R": ("####.", "#...#", "#...#", "####.", "#.#..", "#..#.", "#...#"),
    "L": ("#....", "#....", "#....", "#....", "#....", "#....", "#####"),
    "H": ("#...#", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "A": (".###.", "#...#", "#...#", "#####", "#...#", "#...#", "#...#"),
    "P": ("####.", "#...#", "#...#", "####.", "#....", "#....", "#...."),
    "X": ("#...#", "#...#", ".#.#.", "..#..", ".#.#.", "#...#", "#...#"),
}
LETTERS: tuple[str, ...] = tuple(_GLYPHS)


@dataclass(frozen=True)
class Marker:
    """One spurious marker.

    Attributes:
        kind: ``"tag"``, ``"border"`` or ``"brightness"``.
        size: Tag side or border width as a fraction of the image side, in
            ``(0, 0.5]`` (``None``: the kind's default, :data:`DEFAULTS`).
            Ignored for ``"brightness"``.
        intensity: For ``"tag"`` and ``"border"`` the level of the tag or frame
            as a fraction of the value range, in ``[0, 1]`` (1 = white); for
            ``"brightness"`` the offset added to every pixel as a fraction of
            the range, in ``[-1, 1]`` (``None``: the kind's default).
        position: Corner of the tag.
        letter: Letter printed on the tag (dark on a light tag, light on a dark
            one), one of :data:`LETTERS`, or ``""`` for a plain square.
        jitter: Largest random shift of the tag, in pixels, away from its
            corner (seeded per image; 0 = always the same place).
    """

    kind: MarkerKind = "tag"
    size: float | None = None
    intensity: float | None = None
    position: Corner = "top-left"
    letter: str = "R"
    jitter: int = 0
    _resolved: tuple[float, float] = field(default=(0.0, 0.0), init=False, repr=False)

    def __post_init__(self) -> None:
        if self.kind not in MARKER_KINDS:
            raise ValueError(f"marker kind must be one of {MARKER_KINDS}, got {self.kind!r}")
        size = DEFAULTS[self.kind][0] if self.size is None else float(self.size)
        level = DEFAULTS[self.kind][1] if self.intensity is None else float(self.intensity)
        if self.kind != "brightness" and not 0.0 < size <= 0.5:
            raise ValueError(f"marker size must lie in (0, 0.5] of the side, got {self.size!r}")
        low = -1.0 if self.kind == "brightness" else 0.0
        if not low <= level <= 1.0:
            raise ValueError(
                f"{self.kind} intensity must lie in [{low:g}, 1], got {self.intensity!r}"
            )
        if self.position not in CORNERS:
            raise ValueError(f"marker position must be one of {CORNERS}, got {self.position!r}")
        if self.letter and self.letter not in _GLYPHS:
            raise ValueError(
                f"marker letter must be one of {LETTERS} or '' (plain), got {self.letter!r}"
            )
        if self.jitter < 0:
            raise ValueError(f"marker jitter must be >= 0 pixels, got {self.jitter!r}")
        object.__setattr__(self, "_resolved", (size, level))

    @property
    def relative_size(self) -> float:
        """Tag side or border width as a fraction of the image side (default resolved)."""
        return self._resolved[0]

    @property
    def level(self) -> float:
        """Intensity as a fraction of the value range (default resolved)."""
        return self._resolved[1]

    @property
    def has_region(self) -> bool:
        """Whether the marker occupies a part of the image (not a global brightness offset)."""
        return self.kind != "brightness"

    def describe(self) -> str:
        """One line for people, e.g. ``"tag 'R' top-left, 22 % of the side, level 100 %"``."""
        if self.kind == "tag":
            label = f"'{self.letter}'" if self.letter else "(plain)"
            return (
                f"tag {label} {self.position}, {self.relative_size:.0%} of the side, "
                f"level {self.level:.0%}"
            )
        if self.kind == "border":
            return f"border {self.relative_size:.0%} of the side wide, level {self.level:.0%}"
        return f"brightness offset {self.level:+.0%} of the range"

    def to_dict(self) -> dict[str, object]:
        """JSON-ready description (defaults resolved)."""
        return {
            "kind": self.kind,
            "size": self.relative_size if self.has_region else None,
            "intensity": self.level,
            "position": self.position if self.kind == "tag" else None,
            "letter": self.letter if self.kind == "tag" else None,
            "jitter": self.jitter if self.kind == "tag" else None,
        }


def _side(marker: Marker, height: int, width: int) -> int:
    """Tag side or border width in pixels (at least 1; a tag at least 7 px for its glyph)."""
    side = max(1, round(marker.relative_size * min(height, width)))
    if marker.kind == "tag":
        side = min(max(side, 7), min(height, width))
    return side


def _tag_origins(marker: Marker, n: int, height: int, width: int, seed: int) -> np.ndarray:
    """``(n, 2)`` top-left ``(row, col)`` of each image's tag."""
    side = _side(marker, height, width)
    margin = max(1, round(0.03 * min(height, width)))
    shift = np.zeros((n, 2), dtype=np.int64)
    if marker.jitter:
        shift = np.random.default_rng(seed).integers(0, marker.jitter + 1, size=(n, 2))
    top = marker.position.startswith("top")
    left = marker.position.endswith("left")
    rows = margin + shift[:, 0] if top else height - side - margin - shift[:, 0]
    cols = margin + shift[:, 1] if left else width - side - margin - shift[:, 1]
    return np.stack(
        [np.clip(rows, 0, height - side), np.clip(cols, 0, width - side)], axis=1
    ).astype(np.int64)


def _tag_patch(marker: Marker, side: int) -> np.ndarray:
    """``(side, side)`` bool: where the letter's ink lies on the tag (nearest-neighbour scaled)."""
    glyph = np.array([[c == "#" for c in row] for row in _GLYPHS[marker.letter]], dtype=bool)
    inner = max(5, round(side * 0.7))  # the letter fills ~70 % of the tag, centred
    rows = np.minimum((np.arange(inner) * glyph.shape[0]) // inner, glyph.shape[0] - 1)
    cols = np.minimum((np.arange(inner) * glyph.shape[1]) // inner, glyph.shape[1] - 1)
    scaled = glyph[rows[:, None], cols[None, :]]
    ink = np.zeros((side, side), dtype=bool)
    start = (side - inner) // 2
    ink[start : start + inner, start : start + inner] = scaled[: side - start, : side - start]
    return ink


def marker_masks(marker: Marker, shape: tuple[int, int, int], *, seed: int = 0) -> np.ndarray:
    """The pixels :func:`stamp` changes, per image.

    Args:
        marker: The marker.
        shape: ``(n, H, W)`` of the batch.
        seed: The seed given to :func:`stamp` (places jittered tags).

    Returns:
        ``(n, H, W)`` bool array: the tag square, the frame, or (brightness)
        every pixel.
    """
    n, height, width = (int(v) for v in shape)
    masks = np.zeros((n, height, width), dtype=bool)
    if marker.kind == "brightness":
        masks[:] = True
    elif marker.kind == "border":
        w = _side(marker, height, width)
        masks[:, :w, :] = masks[:, -w:, :] = True
        masks[:, :, :w] = masks[:, :, -w:] = True
    else:
        side = _side(marker, height, width)
        origins = _tag_origins(marker, n, height, width, seed)
        rows = origins[:, 0, None] + np.arange(side)
        cols = origins[:, 1, None] + np.arange(side)
        masks[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = True
    return masks


def stamp(
    images: np.ndarray,
    marker: Marker,
    *,
    seed: int = 0,
    value_range: tuple[float, float] = (0.0, 255.0),
) -> np.ndarray:
    """Stamp ``marker`` into every image of a batch (a new array; the input is unchanged).

    Args:
        images: ``(n, H, W, C)`` ``uint8`` or float pixels (C = 1 or 3; every
            channel gets the same marker).
        marker: The marker.
        seed: Places jittered tags (same seed, same places).
        value_range: ``(low, high)`` of the pixel scale the marker's intensity
            is a fraction of; ``(0, 255)`` for uint8, ``(0, 1)`` for images
            scaled to one.

    Returns:
        ``(n, H, W, C)`` array of the input's dtype, clipped to ``value_range``.

    Raises:
        ValueError: ``images`` is not 4-D, or ``value_range`` is empty.
    """
    array = np.asarray(images)
    if array.ndim != 4:
        raise ValueError(f"images must be (n, H, W, C), got shape {array.shape}")
    low, high = (float(v) for v in value_range)
    if not high > low:
        raise ValueError(f"value_range must be (low, high) with high > low, got {value_range}")
    n, height, width, _ = array.shape
    out = array.astype(np.float32)
    span = high - low
    if marker.kind == "brightness":
        out += marker.level * span
    else:
        masks = marker_masks(marker, (n, height, width), seed=seed)
        out[masks] = low + marker.level * span
        if marker.kind == "tag" and marker.letter:
            side = _side(marker, height, width)
            ink = _tag_patch(marker, side)
            origins = _tag_origins(marker, n, height, width, seed)
            where = np.argwhere(ink)
            rows = origins[:, 0, None] + where[:, 0]
            cols = origins[:, 1, None] + where[:, 1]
            # The letter is printed in black on the tag, or in white on a dark tag.
            ink_level = low if marker.level >= 0.5 else high
            out[np.arange(n)[:, None], rows, cols] = ink_level
    out = np.clip(out, low, high)
    if np.issubdtype(array.dtype, np.integer):
        return np.round(out).astype(array.dtype)
    return out.astype(array.dtype)
