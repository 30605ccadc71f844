"""Colour maps, heatmap overlays and colour legends: pure numpy functions.

No matplotlib: the colour maps are interpolated from small tables (jet is
the classic piecewise-linear definition; viridis and inferno use eleven
stops sampled from the matplotlib definitions, accurate to a few 1/255).
Nothing here writes files except :func:`save_png`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medviz.errors import DataError

_TABLES: dict[str, tuple[str, ...]] = {
    "viridis": (
        "#440154",
        "#482475",
        "#414487",
        "#355f8d",
        "#2a788e",
        "#21918c",
        "#22a884",
        "#44bf70",
        "#7ad151",
        "#bddf26",
        "#fde725",
    ),
    "inferno": (
        "#000004",
        "#160b39",
        "#420a68",
        "#6a176e",
        "#932667",
        "#bc3754",
        "#dd513a",
        "#f37819",
        "#fca50a",
        "#f6d746",
        "#fcffa4",
    ),
    "gray": ("#000000", "#ffffff"),
}
COLORMAPS: tuple[str, ...] = ("jet", "viridis", "inferno", "gray")


def _hex_to_rgb(code: str) -> tuple[int, int, int]:
    return int(code[1:3], 16), int(code[3:5], 16), int(code[5:7], 16)


def _rgb_to_hex(rgb: np.ndarray) -> str:
    r, g, b = (int(v) for v in rgb)
    return f"#{r:02x}{g:02x}{b:02x}"


def _check_name(name: str) -> str:
    key = str(name).lower()
    if key not in COLORMAPS:
        raise DataError(f"unknown colour map {name!r}; choose one of {COLORMAPS}")
    return key


def _lookup(values: np.ndarray, name: str) -> np.ndarray:
    """Float RGB in [0, 1] for values in [0, 1]; shape ``values.shape + (3,)``."""
    v = np.clip(np.nan_to_num(np.asarray(values, np.float64), nan=0.0), 0.0, 1.0)
    if name == "jet":
        r = np.clip(1.5 - np.abs(4.0 * v - 3.0), 0.0, 1.0)
        g = np.clip(1.5 - np.abs(4.0 * v - 2.0), 0.0, 1.0)
        b = np.clip(1.5 - np.abs(4.0 * v - 1.0), 0.0, 1.0)
        return np.stack([r, g, b], axis=-1)
    table = np.array([_hex_to_rgb(c) for c in _TABLES[name]], np.float64) / 255.0
    stops = np.linspace(0.0, 1.0, len(table))
    return np.stack([np.interp(v, stops, table[:, k]) for k in range(3)], axis=-1)


def colormap(heatmap: np.ndarray, name: str = "jet") -> np.ndarray:
    """Colour a heatmap.

    Args:
        heatmap: ``(H, W)`` values in ``[0, 1]`` (clipped; NaN counts as 0).
        name: ``"jet"``, ``"viridis"``, ``"inferno"`` or ``"gray"``.

    Returns:
        ``(H, W, 3)`` uint8 RGB image.

    Raises:
        DataError: Unknown colour map or a heatmap that is not 2-D.
    """
    key = _check_name(name)
    heat = np.asarray(heatmap)
    if heat.ndim != 2:
        raise DataError(f"heatmap must be 2-D (H, W), got shape {heat.shape}")
    return np.round(_lookup(heat, key) * 255.0).astype(np.uint8)


def _resize_map(heatmap: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    if heatmap.shape == shape:
        return heatmap
    img = Image.fromarray(np.asarray(heatmap, np.float32))
    return np.asarray(img.resize((shape[1], shape[0]), Image.Resampling.BILINEAR), np.float32)


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Convert ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` pixels in [0, 255] to ``(H, W, 3)``.

    Returns:
        ``(H, W, 3)`` uint8 array (grayscale copied into the three channels).
    """
    arr = np.asarray(image)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3):
        raise DataError(f"image must be (H, W), (H, W, 1) or (H, W, 3), got shape {arr.shape}")
    arr = np.clip(np.nan_to_num(arr.astype(np.float32)), 0.0, 255.0)
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return np.round(arr).astype(np.uint8)


def overlay(
    image: np.ndarray,
    heatmap: np.ndarray,
    *,
    alpha: float = 0.4,
    colormap: str = "jet",
    threshold: float = 0.0,
) -> np.ndarray:
    """Blend a coloured heatmap over an image.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` pixels in ``[0, 255]``.
        heatmap: ``(h, w)`` values in ``[0, 1]``; resized bilinearly to the
            image when the sizes differ (e.g. an original-resolution image).
        alpha: Opacity of the heatmap in ``[0, 1]``.
        colormap: Colour map name, see :data:`COLORMAPS`.
        threshold: Heat values below this are not drawn (the image shows through).

    Returns:
        ``(H, W, 3)`` uint8 RGB image.

    Raises:
        DataError: Bad shapes, ``alpha`` or colour map.
    """
    if not 0.0 <= alpha <= 1.0:
        raise DataError(f"alpha must lie in [0, 1], got {alpha}")
    rgb = to_rgb(image).astype(np.float32)
    heat = np.asarray(heatmap, np.float32)
    if heat.ndim != 2:
        raise DataError(f"heatmap must be 2-D (H, W), got shape {heat.shape}")
    heat = _resize_map(heat, rgb.shape[:2])
    colours = _lookup(heat, _check_name(colormap)).astype(np.float32) * 255.0
    weight = np.where(heat >= threshold, alpha, 0.0).astype(np.float32)[..., None]
    return np.round(rgb * (1.0 - weight) + colours * weight).clip(0, 255).astype(np.uint8)


@dataclass(frozen=True)
class ColorLegend:
    """What an app needs to draw the legend of a colour map.

    Attributes:
        name: Colour map name.
        stops: ``((value, "#rrggbb"), ...)`` from 0 to 1, usable as a Plotly
            colour scale.
        ticks: Tick values in ``[0, 1]``.
        labels: Tick labels.
        image: ``(height, width, 3)`` uint8 vertical bar, high values on top.
    """

    name: str
    stops: tuple[tuple[float, str], ...]
    ticks: tuple[float, ...]
    labels: tuple[str, ...]
    image: np.ndarray


def colormap_stops(name: str = "jet", n: int = 11) -> tuple[tuple[float, str], ...]:
    """``n`` evenly spaced ``(value, "#rrggbb")`` stops of a colour map (a Plotly colour scale)."""
    if n < 2:
        raise DataError(f"n must be >= 2, got {n}")
    key = _check_name(name)
    values = np.linspace(0.0, 1.0, n)
    rgb = np.round(_lookup(values, key) * 255.0)
    return tuple((float(v), _rgb_to_hex(c)) for v, c in zip(values, rgb, strict=True))


def colorbar(
    name: str = "jet",
    *,
    height: int = 256,
    width: int = 16,
    ticks: int = 5,
    low_label: str = "low",
    high_label: str = "high",
) -> ColorLegend:
    """The legend of a colour map: a bar image, stops and tick labels.

    Args:
        name: Colour map name.
        height: Bar height in pixels.
        width: Bar width in pixels.
        ticks: Number of ticks (>= 2).
        low_label: Label of the lowest tick (``""`` for the number).
        high_label: Label of the highest tick.

    Returns:
        A :class:`ColorLegend`.
    """
    if height < 2 or width < 1 or ticks < 2:
        raise DataError(f"need height >= 2, width >= 1, ticks >= 2; got {height}, {width}, {ticks}")
    key = _check_name(name)
    column = np.linspace(1.0, 0.0, height)[:, None].repeat(width, axis=1)
    tick_values = tuple(float(v) for v in np.linspace(0.0, 1.0, ticks))
    labels = [f"{v:.2g}" for v in tick_values]
    labels[0] = low_label or labels[0]
    labels[-1] = high_label or labels[-1]
    return ColorLegend(
        name=key,
        stops=colormap_stops(key),
        ticks=tick_values,
        labels=tuple(labels),
        image=colormap(column, key),
    )


def save_png(path: str | Path, array: np.ndarray) -> Path:
    """Write an image array as PNG (the only function here that touches files).

    Args:
        path: Destination file.
        array: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` uint8 (or float in
            [0, 255]), or a float ``(H, W)`` heatmap in ``[0, 1]`` (saved
            as 8-bit gray when its maximum is at most 1).

    Returns:
        The path written.
    """
    from PIL import Image

    arr = np.asarray(array)
    if arr.ndim == 2 and np.issubdtype(arr.dtype, np.floating) and np.nanmax(arr, initial=0) <= 1.0:
        arr = arr * 255.0
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] != 3):
        raise DataError(f"cannot save an array of shape {arr.shape} as PNG")
    arr = np.clip(np.nan_to_num(arr.astype(np.float32)), 0, 255).round().astype(np.uint8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(out, format="PNG")
    return out
