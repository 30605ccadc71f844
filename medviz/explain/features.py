"""Feature maps of any layer and the kernels of the first convolution."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np

from medviz.errors import DataError, ModelError
from medviz.explain import layers as _layers
from medviz.explain.engine import get_explainer


def _scale(values: np.ndarray, low: np.ndarray, span: np.ndarray, *, fill: float) -> np.ndarray:
    # Relative scaling only: untrained networks have legitimately tiny values.
    ok = span > np.finfo(np.float32).tiny
    return np.where(ok, (values - low) / np.where(ok, span, 1.0), fill).astype(np.float32)


def feature_maps(model, image: np.ndarray, *, layer: str | None = None) -> np.ndarray:
    """Raw output of a layer for one image.

    Args:
        model: A ``keras.Model`` or its :class:`~medviz.explain.Explainer`.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` raw pixels in ``[0, 255]``.
        layer: A layer with 4-D output (default: the default CAM layer).

    Returns:
        ``(h, w, n_filters)`` float32 activations.

    Raises:
        ModelError: The layer does not exist or has no spatial output.
    """
    explainer = get_explainer(model)
    name = _layers.resolve_cam_layer(explainer.model, layer)
    return explainer.features(explainer.prepare(image), layer=name)[0]


def normalize_feature_maps(
    maps: np.ndarray, *, mode: Literal["per_map", "global"] = "per_map"
) -> np.ndarray:
    """Scale feature maps to ``[0, 1]`` for display.

    Args:
        maps: ``(h, w, n)`` activations.
        mode: ``"per_map"`` stretches every map to its own range (shows the
            pattern of weak maps too); ``"global"`` uses one range for all
            (shows which maps are strong). Constant maps become 0.

    Returns:
        ``(h, w, n)`` float32 in ``[0, 1]``.
    """
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 3:
        raise DataError(f"feature maps must be (h, w, n), got shape {maps.shape}")
    if mode == "per_map":
        low = maps.min(axis=(0, 1), keepdims=True)
        span = maps.max(axis=(0, 1), keepdims=True) - low
    elif mode == "global":
        low = maps.min(keepdims=True)
        span = maps.max(keepdims=True) - low
    else:
        raise DataError(f"mode must be 'per_map' or 'global', got {mode!r}")
    return _scale(maps, low, span, fill=0.0)


def strongest_maps(maps: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` maps with the highest mean activation, strongest first."""
    means = np.asarray(maps, np.float32).mean(axis=(0, 1))
    return np.argsort(-means, kind="stable")[: max(0, k)]


def tile(
    images: np.ndarray, *, n_cols: int | None = None, pad: int = 1, pad_value: float = 1.0
) -> np.ndarray:
    """Arrange a stack of small images in a grid.

    Args:
        images: ``(n, h, w)`` or ``(n, h, w, 3)`` values (e.g. normalised maps
            moved to the front with ``np.moveaxis(maps, -1, 0)``).
        n_cols: Columns (default: ``ceil(sqrt(n))``).
        pad: Pixels between tiles.
        pad_value: Value of the padding and of empty cells.

    Returns:
        ``(rows * (h + pad) - pad, n_cols * (w + pad) - pad[, 3])`` float32.
    """
    arr = np.asarray(images, np.float32)
    if arr.ndim not in (3, 4) or len(arr) == 0:
        raise DataError(f"expected a non-empty (n, h, w[, 3]) stack, got shape {arr.shape}")
    n, h, w = arr.shape[:3]
    cols = n_cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    shape = (rows * (h + pad) - pad, cols * (w + pad) - pad, *arr.shape[3:])
    grid = np.full(shape, pad_value, np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = arr[i]
    return grid


def feature_grid(
    model,
    image: np.ndarray,
    *,
    layer: str | None = None,
    max_maps: int = 64,
    order: Literal["index", "strongest"] = "strongest",
    mode: Literal["per_map", "global"] = "per_map",
    pad: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Feature maps of one layer as one grid image, ready to display.

    Args:
        model: A ``keras.Model`` or its Explainer.
        image: One image, see :func:`feature_maps`.
        layer: 4-D layer (default: the default CAM layer).
        max_maps: Show at most this many maps.
        order: ``"strongest"`` (highest mean activation first) or ``"index"``.
        mode: Normalisation, see :func:`normalize_feature_maps`.
        pad: Pixels between tiles.

    Returns:
        ``(grid (GH, GW) float32 in [0, 1], indices (m,) of the maps shown)``.
    """
    maps = feature_maps(model, image, layer=layer)
    if order == "strongest":
        index = strongest_maps(maps, max_maps)
    elif order == "index":
        index = np.arange(min(max_maps, maps.shape[-1]))
    else:
        raise DataError(f"order must be 'strongest' or 'index', got {order!r}")
    shown = normalize_feature_maps(maps, mode=mode)[..., index]
    return tile(np.moveaxis(shown, -1, 0), pad=pad), index


def filter_kernels(model, *, layer: str | None = None) -> np.ndarray:
    """Kernels of a convolution (default: the first one), normalised for display.

    Args:
        model: A ``keras.Model`` or its Explainer.
        layer: A layer with a 4-D kernel (default: the first such layer).

    Returns:
        ``(kh, kw, in_channels, n_filters)`` float32; each filter is scaled to
        ``[0, 1]`` over its ``(kh, kw, in_channels)`` values, so 0.5 is not
        necessarily zero weight.

    Raises:
        ModelError: The layer has no 4-D kernel.
    """
    explainer = get_explainer(model)
    name = layer or _layers.first_kernel_layer(explainer.model)
    obj = _layers.get_layer(explainer.model, name)
    kernel = getattr(obj, "kernel", None)
    if kernel is None or len(kernel.shape) != 4:
        raise ModelError(
            f"layer {name!r} has no 4-D convolution kernel; first convolution: "
            f"{_layers.first_kernel_layer(explainer.model)!r}"
        )
    k = np.asarray(kernel.numpy() if hasattr(kernel, "numpy") else kernel, np.float32)
    low = k.min(axis=(0, 1, 2), keepdims=True)
    span = k.max(axis=(0, 1, 2), keepdims=True) - low
    return _scale(k, low, span, fill=0.5)


def kernel_grid(model, *, layer: str | None = None, pad: int = 1) -> np.ndarray:
    """First-layer kernels as one grid: ``(GH, GW)`` for 1 input channel, ``(GH, GW, 3)`` for RGB.

    Kernels with another number of input channels are shown channel by
    channel (one row of tiles per filter).
    """
    k = filter_kernels(model, layer=layer)
    kh, kw, cin, n = k.shape
    if cin == 1:
        return tile(np.moveaxis(k[:, :, 0, :], -1, 0), pad=pad)
    if cin == 3:
        return tile(np.moveaxis(k, -1, 0), pad=pad)
    stack = np.moveaxis(k, (3, 2), (0, 1)).reshape(n * cin, kh, kw)
    return tile(stack, n_cols=cin, pad=pad)
