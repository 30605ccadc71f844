"""Colour maps, overlays and legends: pure functions."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medviz.errors import DataError
from medviz.explain import COLORMAPS, colorbar, colormap, colormap_stops, overlay, save_png, to_rgb


@pytest.mark.parametrize("name", COLORMAPS)
def test_colormap_shape_dtype_and_ends(name):
    ramp = np.linspace(0, 1, 50, dtype=np.float32)[None].repeat(4, axis=0)
    rgb = colormap(ramp, name)
    assert rgb.shape == (4, 50, 3) and rgb.dtype == np.uint8
    assert not np.array_equal(rgb[0, 0], rgb[0, -1])


def test_known_colours():
    ends = np.array([[0.0, 1.0]])
    np.testing.assert_array_equal(
        colormap(ends, "viridis")[0], [[0x44, 0x01, 0x54], [0xFD, 0xE7, 0x25]]
    )
    np.testing.assert_array_equal(colormap(ends, "inferno")[0], [[0, 0, 4], [0xFC, 0xFF, 0xA4]])
    jet = colormap(np.array([[0.0, 0.5, 1.0]]), "jet")[0]
    np.testing.assert_array_equal(jet, [[0, 0, 128], [128, 255, 128], [128, 0, 0]])
    # Out-of-range and NaN values are clipped, not wrapped.
    np.testing.assert_array_equal(
        colormap(np.array([[-1.0, np.nan, 2.0]]), "gray")[0, :, 0], [0, 0, 255]
    )


def test_viridis_is_monotonic_in_lightness():
    rgb = colormap(np.linspace(0, 1, 64)[None], "viridis")[0].astype(float)
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    assert (np.diff(luma) > -1.0).all()


def test_overlay_blends_and_keeps_the_image_where_cold():
    image = np.full((8, 8), 100, np.uint8)
    heat = np.zeros((8, 8), np.float32)
    heat[2, 3] = 1.0
    out = overlay(image, heat, alpha=0.5, colormap="jet", threshold=0.5)
    assert out.shape == (8, 8, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [100, 100, 100])
    np.testing.assert_array_equal(out[2, 3], [114, 50, 50])  # 0.5 * grey + 0.5 * dark red
    full = overlay(image[..., None], heat, alpha=1.0)
    np.testing.assert_array_equal(full, colormap(heat, "jet"))
    plain = overlay(np.zeros((8, 8, 3), np.uint8), heat, alpha=0.0)
    assert not plain.any()


def test_overlay_resizes_a_small_heatmap():
    out = overlay(np.zeros((64, 48, 3), np.uint8), np.random.default_rng(0).random((16, 12)))
    assert out.shape == (64, 48, 3)


def test_overlay_is_pure():
    image = np.full((4, 4, 1), 7, np.uint8)
    heat = np.eye(4, dtype=np.float32)
    overlay(image, heat)
    assert (image == 7).all() and heat[0, 0] == 1.0


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match="unknown colour map 'rainbow'"):
        colormap(np.zeros((2, 2)), "rainbow")
    with pytest.raises(DataError, match="alpha"):
        overlay(np.zeros((2, 2)), np.zeros((2, 2)), alpha=2.0)
    with pytest.raises(DataError, match="heatmap must be 2-D"):
        overlay(np.zeros((2, 2)), np.zeros((2, 2, 1)))
    with pytest.raises(DataError, match=r"\(H, W, 3\)"):
        to_rgb(np.zeros((2, 2, 2)))


def test_colorbar_and_stops():
    legend = colorbar("inferno", height=100, width=10, ticks=3)
    assert legend.image.shape == (100, 10, 3)
    assert legend.ticks == (0.0, 0.5, 1.0) and legend.labels == ("low", "0.5", "high")
    # High values on top.
    np.testing.assert_array_equal(legend.image[0, 0], colormap(np.array([[1.0]]), "inferno")[0, 0])
    stops = colormap_stops("viridis", n=3)
    assert stops[0] == (0.0, "#440154") and stops[-1] == (1.0, "#fde725") and len(stops) == 3


def test_save_png_writes_only_when_asked(tmp_path):
    heat = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    path = save_png(tmp_path / "sub" / "heat.png", heat)
    back = np.asarray(Image.open(path))
    assert back.shape == (4, 4) and back.max() == 255 and back.min() == 0
    rgb = save_png(tmp_path / "rgb.png", colormap(heat))
    assert np.asarray(Image.open(rgb)).shape == (4, 4, 3)
    with pytest.raises(DataError, match="cannot save"):
        save_png(tmp_path / "x.png", np.zeros((2, 2, 2)))
