"""Markers: where they land, what they change, determinism, dtypes, errors."""

from __future__ import annotations

import numpy as np
import pytest

from medviz.explore.markers import CORNERS, Marker, marker_masks, stamp


@pytest.fixture
def grey() -> np.ndarray:
    return np.full((3, 40, 40, 1), 100, np.uint8)


@pytest.mark.parametrize("kind", ["tag", "border", "brightness"])
def test_stamp_changes_exactly_the_masked_pixels(grey, kind):
    marker = Marker(kind, jitter=3 if kind == "tag" else 0)
    out = stamp(grey, marker, seed=5)
    masks = marker_masks(marker, grey.shape[:3], seed=5)
    changed = (out != grey).any(axis=-1)
    assert out.dtype == np.uint8 and out.shape == grey.shape
    assert changed.any()
    assert not (changed & ~masks).any(), "nothing outside the marker region changes"
    assert (grey == 100).all(), "the input is not modified"


@pytest.mark.parametrize("corner", CORNERS)
def test_tag_sits_in_its_corner_with_a_dark_letter(grey, corner):
    marker = Marker("tag", position=corner, size=0.25)
    mask = marker_masks(marker, (1, 40, 40))[0]
    rows, cols = np.nonzero(mask)
    top, left = corner.startswith("top"), corner.endswith("left")
    assert (rows.max() < 20) if top else (rows.min() >= 20)
    assert (cols.max() < 20) if left else (cols.min() >= 20)
    assert mask.sum() == 10 * 10  # 25 % of 40 px
    tag = stamp(grey[:1], marker)[0, ..., 0][mask]
    assert (tag == 255).sum() > (tag == 0).sum() > 5, "white label, black letter"


def test_border_and_brightness(grey):
    framed = stamp(grey, Marker("border", size=0.1, intensity=0.0))[0, ..., 0]
    assert (framed[:4] == 0).all() and (framed[:, -4:] == 0).all() and framed[20, 20] == 100
    brighter = stamp(grey, Marker("brightness", intensity=0.2))
    assert (brighter == 151).all()
    assert (stamp(np.full((1, 8, 8, 1), 250, np.uint8), Marker("brightness")) == 255).all()


def test_float_images_rgb_and_value_range():
    images = np.full((2, 16, 16, 3), 0.5, np.float32)
    out = stamp(images, Marker("tag"), value_range=(0.0, 1.0))
    assert out.dtype == np.float32 and out.max() == 1.0 and out.min() == 0.0
    assert (out[..., 0] == out[..., 2]).all(), "every channel carries the same marker"


def test_jittered_tags_are_seeded():
    images = np.zeros((20, 32, 32, 1), np.uint8)
    marker = Marker("tag", jitter=4)
    a, b = stamp(images, marker, seed=1), stamp(images, marker, seed=1)
    assert (a == b).all()
    assert not (a == stamp(images, marker, seed=2)).all()
    assert len({m.tobytes() for m in marker_masks(marker, (20, 32, 32), seed=1)}) > 1


@pytest.mark.parametrize(
    "options",
    [
        {"kind": "sticker"},
        {"size": 0.0},
        {"size": 0.8},
        {"intensity": 1.5},
        {"kind": "brightness", "intensity": -2},
        {"position": "middle"},
        {"letter": "Q"},
        {"jitter": -1},
    ],
)
def test_bad_markers_name_what_was_received(options):
    with pytest.raises(ValueError, match=r"marker|intensity"):
        Marker(**options)


def test_stamp_rejects_bad_shapes():
    with pytest.raises(ValueError, match="shape"):
        stamp(np.zeros((8, 8, 1), np.uint8), Marker())
    with pytest.raises(ValueError, match="value_range"):
        stamp(np.zeros((1, 8, 8, 1), np.uint8), Marker(), value_range=(1, 1))
