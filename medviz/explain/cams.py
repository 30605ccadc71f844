"""Class activation maps: Grad-CAM, Grad-CAM++, LayerCAM and Score-CAM.

The maths follows tf-keras-vis 0.8.7 (``Gradcam``, ``GradcamPlusPlus``,
``Layercam``, ``Scorecam`` with ``max_N`` for Faster Score-CAM) and is checked
against it in the tests, but runs on the compiled primitives of an
:class:`~medviz.explain.engine.Explainer`: tf-keras-vis rebuilds an
intermediate-output model on every call, which costs far more than the
explanation itself on a small CNN. ``bench.reference_cam`` (outside the
library) keeps the tf-keras-vis route, with the Keras 3 traps handled, for the
cross-checks of the tests and the speed comparison of the benchmarks.

Every function returns heatmaps in ``[0, 1]`` at the input resolution.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import tensorflow as tf

from medviz.errors import ModelError
from medviz.explain import layers as _layers
from medviz.explain.engine import (
    DEFAULT_BATCH,
    Explainer,
    get_explainer,
)
from medviz.explain.maps import tf_normalize, upsample

GradCamMethod = Literal["gradcam", "gradcam++", "layercam"]
_SIG = [
    tf.TensorSpec((None, None, None, None), tf.float32),
    tf.TensorSpec((None, None, None, None), tf.float32),
    tf.TensorSpec((2,), tf.int32),
]


@tf.function(input_signature=_SIG, reduce_retracing=True)
def _gradcam_math(feats, grads, size):
    # Channel weights: spatially averaged gradients (Selvaraju et al. 2017).
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(feats * weights, axis=-1))
    return cam, upsample(cam, size)


@tf.function(input_signature=_SIG, reduce_retracing=True)
def _gradcam_pp_math(feats, grads, size):
    # Chattopadhyay et al. 2018, as in tf-keras-vis. Their exp(score) factor
    # cancels in alpha and only rescales the map, which the normalisation
    # removes, so it is left out: it overflows float32 for logits above ~88.
    second = grads**2
    third = grads**3
    global_sum = tf.reduce_sum(feats, axis=(1, 2), keepdims=True)
    denom = 2.0 * second + third * global_sum
    denom = denom + tf.cast(second == 0.0, denom.dtype)
    alphas = second / denom
    norm = tf.reduce_sum(alphas, axis=(1, 2), keepdims=True)
    alphas = alphas / (norm + tf.cast(norm == 0.0, norm.dtype))
    weights = tf.reduce_sum(tf.nn.relu(grads) * alphas, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * feats, axis=-1))
    return cam, upsample(cam, size)


@tf.function(input_signature=_SIG, reduce_retracing=True)
def _layercam_math(feats, grads, size):
    # Jiang et al. 2021: element-wise positive gradients as weights.
    cam = tf.nn.relu(tf.reduce_sum(tf.nn.relu(grads) * feats, axis=-1))
    return cam, upsample(cam, size)


_MATH = {"gradcam": _gradcam_math, "gradcam++": _gradcam_pp_math, "layercam": _layercam_math}


def gradient_cams(
    model: Explainer | object,
    images: np.ndarray,
    *,
    method: GradCamMethod = "gradcam",
    class_indices: np.ndarray | None = None,
    layer: str | None = None,
    low_resolution: bool = False,
    normalize: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Batched Grad-CAM / Grad-CAM++ / LayerCAM in one forward/backward pass.

    Args:
        model: A ``keras.Model`` or its :class:`Explainer`.
        images: ``(N, H, W, C)`` raw pixels in ``[0, 255]``.
        method: ``"gradcam"``, ``"gradcam++"`` or ``"layercam"``.
        class_indices: ``(N,)`` classes; ``None`` (or ``-1`` entries) = predicted.
        layer: A layer with 4-D output (default: :func:`default_cam_layer`).
        low_resolution: Return the maps at the layer's resolution ``(N, h, w)``.
        normalize: With ``low_resolution``, ``False`` returns the raw
            (ReLU-ed, unscaled) CAM values.

    Returns:
        ``(heatmaps (N, H, W) float32 in [0, 1], classes (N,) int,
        probabilities (N, n_classes) float32)``.

    Raises:
        ModelError: Unknown method or unusable layer / class.
    """
    explainer = get_explainer(model)
    if method not in _MATH:
        raise ModelError(f"unknown gradient CAM {method!r}; choose one of {sorted(_MATH)}")
    name = _layers.resolve_cam_layer(explainer.model, layer)
    x = explainer.prepare_batch(images)
    classes = _class_array(explainer, class_indices, len(x))
    cls, probs, feats, grads, _ = explainer.layer_gradients(x, classes, layer=name)
    low, high = _MATH[method](feats, grads, tf.constant(x.shape[1:3], tf.int32))
    if low_resolution:
        maps = tf_normalize(low).numpy() if normalize else low.numpy()
    else:
        maps = high.numpy()
    return maps.astype(np.float32, copy=False), cls, probs


def _class_array(explainer: Explainer, class_indices, n: int) -> np.ndarray:
    if class_indices is None:
        return np.full(n, -1, np.int32)
    if np.isscalar(class_indices):
        return np.full(n, explainer.check_class(class_indices), np.int32)
    arr = np.asarray(class_indices).reshape(-1)
    if len(arr) != n:
        raise ModelError(f"got {len(arr)} class indices for {n} images")
    return np.array([-1 if c < 0 else explainer.check_class(int(c)) for c in arr], np.int32)


def _one_image(
    model, image: np.ndarray, method: str, *, class_index: int | None, layer: str | None
) -> tuple[np.ndarray, int, np.ndarray]:
    explainer = get_explainer(model)
    maps, cls, probs = gradient_cams(
        explainer,
        explainer.prepare(image),
        method=method,
        class_indices=None if class_index is None else [class_index],
        layer=layer,
    )
    return maps[0], int(cls[0]), probs[0]


def gradcam(
    model, image: np.ndarray, *, class_index: int | None = None, layer: str | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """Grad-CAM of one image.

    Args:
        model: A ``keras.Model`` or its :class:`Explainer`.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` raw pixels in ``[0, 255]``.
        class_index: Class to explain (default: the predicted class).
        layer: 4-D layer (default: the last one larger than 1×1).

    Returns:
        ``(heatmap (H, W) float32 in [0, 1], explained class, probabilities
        (n_classes,))``, like every per-method function; :func:`explain`
        wraps the same in an :class:`~medviz.explain.Explanation`.
    """
    return _one_image(model, image, "gradcam", class_index=class_index, layer=layer)


def gradcam_plus_plus(
    model, image: np.ndarray, *, class_index: int | None = None, layer: str | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """Grad-CAM++ of one image; arguments and result as :func:`gradcam`."""
    return _one_image(model, image, "gradcam++", class_index=class_index, layer=layer)


def layercam(
    model, image: np.ndarray, *, class_index: int | None = None, layer: str | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """LayerCAM of one image; arguments and result as :func:`gradcam`."""
    return _one_image(model, image, "layercam", class_index=class_index, layer=layer)


def scorecam(
    model,
    image: np.ndarray,
    *,
    class_index: int | None = None,
    layer: str | None = None,
    max_n: int | None = None,
    batch_size: int = DEFAULT_BATCH,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Score-CAM (Wang et al. 2020), gradient-free; Faster Score-CAM with ``max_n``.

    Each channel of the layer's feature maps, upsampled and scaled to
    ``[0, 1]``, masks the input; the class probability of the masked input
    weighs that channel. ``max_n`` keeps only the channels with the largest
    spatial standard deviation (the tf-keras-vis ``max_N`` speed-up), which
    costs ``max_n`` instead of ``k`` forward passes.

    Args:
        model: A ``keras.Model`` or its :class:`Explainer`.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` raw pixels in ``[0, 255]``.
        class_index: Class to explain (default: the predicted class).
        layer: 4-D layer (default: the last one larger than 1×1).
        max_n: Channels to use (``None``: all of them).
        batch_size: Masked images per forward pass.

    Returns:
        ``(heatmap (H, W) float32 in [0, 1], explained class, probabilities
        (n_classes,))``.

    Raises:
        ModelError: Bad layer, class or ``max_n``.
    """
    explainer = get_explainer(model)
    name = _layers.resolve_cam_layer(explainer.model, layer)
    x = explainer.prepare(image)
    requested = explainer.check_class(class_index)
    probs = explainer.predict(x)[0]
    cls = int(np.argmax(probs)) if requested < 0 else requested
    feats = explainer.features(x, layer=name)[0]  # (h, w, k)
    k = feats.shape[-1]
    if max_n is not None:
        if not 1 <= max_n <= k:
            raise ModelError(f"max_n must lie in [1, {k}] for layer {name!r}, got {max_n}")
        order = np.argsort(-feats.std(axis=(0, 1)), kind="stable")[:max_n]
        feats = feats[..., order]
    size = x.shape[1:3]
    masks = tf.image.resize(np.moveaxis(feats, -1, 0)[..., None], size, method="bilinear")
    masks = tf_normalize(masks[..., 0]).numpy()  # (k, H, W) in [0, 1]
    weights = np.empty(len(masks), np.float32)
    for start in range(0, len(masks), batch_size):
        chunk = masks[start : start + batch_size, :, :, None] * x  # (b, H, W, C)
        weights[start : start + len(chunk)] = explainer.predict(chunk, batch_size=batch_size)[
            :, cls
        ]
    cam = np.maximum(np.tensordot(feats, weights, axes=([-1], [0])), 0.0)  # (h, w)
    heat = upsample(tf.constant(cam[None], tf.float32), tf.constant(size, tf.int32))
    return heat.numpy()[0], cls, probs
