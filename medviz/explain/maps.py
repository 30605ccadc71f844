"""The last two steps every explanation method shares: upsample, then normalise.

A method computes a raw map (a CAM at the feature-map resolution, a gradient,
an occlusion drop), :func:`upsample` brings it to the input resolution, and
:func:`normalize_maps` / :func:`tf_normalize` scale each map to ``[0, 1]``
(as MONAI's ``CAMBase`` does: compute → upsample → post-process). Constant maps
become 0; there is no absolute threshold, since an untrained backbone can give
maps of 1e-20 that are still informative relative to themselves.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# Spans at or below this are "constant": float32's smallest normal number.
TINY = float(np.finfo(np.float32).tiny)


def normalize_maps(maps: np.ndarray) -> np.ndarray:
    """Scale each map of a ``(N, H, W)`` stack to ``[0, 1]`` (constant maps become 0).

    Args:
        maps: ``(N, H, W)`` or ``(H, W)`` array.

    Returns:
        float32 array of the same shape.
    """
    maps = np.asarray(maps, dtype=np.float32)
    single = maps.ndim == 2
    if single:
        maps = maps[None]
    low = maps.min(axis=(1, 2), keepdims=True)
    span = maps.max(axis=(1, 2), keepdims=True) - low
    ok = span > TINY
    out = np.where(ok, (maps - low) / np.where(ok, span, 1.0), 0.0).astype(np.float32)
    return out[0] if single else out


def tf_normalize(maps: tf.Tensor) -> tf.Tensor:
    """Per-map min-max normalisation of ``(B, H, W)`` inside a compiled function.

    Args:
        maps: ``(B, H, W)`` float tensor.

    Returns:
        ``(B, H, W)`` tensor in ``[0, 1]``; constant maps become 0.
    """
    low = tf.reduce_min(maps, axis=(1, 2), keepdims=True)
    span = tf.reduce_max(maps, axis=(1, 2), keepdims=True) - low
    ok = span > TINY
    return tf.where(ok, (maps - low) / tf.where(ok, span, tf.ones_like(span)), tf.zeros_like(maps))


def upsample(cam: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Bring ``(B, h, w)`` maps to the input resolution, then normalise them.

    Args:
        cam: ``(B, h, w)`` float tensor.
        size: ``(2,)`` int32 tensor ``(H, W)``.

    Returns:
        ``(B, H, W)`` tensor in ``[0, 1]`` (bilinear resize, then :func:`tf_normalize`).
    """
    big = tf.image.resize(cam[..., None], size, method="bilinear")[..., 0]
    return tf_normalize(big)
