"""Input-space attributions: vanilla saliency, SmoothGrad, integrated gradients, occlusion.

All run on the compiled primitives of an
:class:`~medviz.explain.engine.Explainer`; the noisy or interpolated copies
of the image go through the network as one batch. Every function returns
``(heatmap (H, W) float32 in [0, 1], explained class, probabilities
(n_classes,))`` for one image.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage

from medviz.errors import ModelError
from medviz.explain.engine import DEFAULT_BATCH, Explainer, get_explainer
from medviz.explain.maps import normalize_maps

Baseline = Literal["black", "mean", "blur"]


def _resolve_class(explainer: Explainer, x: np.ndarray, class_index: int | None):
    requested = explainer.check_class(class_index)
    probs = explainer.predict(x)[0]
    return (int(np.argmax(probs)) if requested < 0 else requested), probs


def baseline_image(
    image: np.ndarray, kind: Baseline | float = "blur", *, sigma: float | None = None
) -> np.ndarray:
    """A reference image with the information removed.

    Args:
        image: ``(H, W, C)`` float image.
        kind: ``"black"`` (zeros), ``"mean"`` (per-channel mean), ``"blur"``
            (Gaussian blur, σ = ``sigma`` or ``max(H, W) / 10``), or a constant.
        sigma: Blur width in pixels.

    Returns:
        ``(H, W, C)`` float32 array.
    """
    image = np.asarray(image, np.float32)
    if isinstance(kind, (int, float)) and not isinstance(kind, bool):
        return np.full_like(image, float(kind))
    if kind == "black":
        return np.zeros_like(image)
    if kind == "mean":
        return np.broadcast_to(image.mean(axis=(0, 1), keepdims=True), image.shape).copy()
    if kind == "blur":
        s = sigma if sigma is not None else max(image.shape[:2]) / 10.0
        return ndimage.gaussian_filter(image, sigma=(s, s, 0), mode="reflect").astype(np.float32)
    raise ModelError(f"unknown baseline {kind!r}; use 'black', 'mean', 'blur' or a number")


def vanilla_saliency(
    model, image: np.ndarray, *, class_index: int | None = None
) -> tuple[np.ndarray, int, np.ndarray]:
    """Gradient magnitude of the class score (Simonyan et al. 2014).

    Args:
        model: A ``keras.Model`` or its :class:`Explainer`.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` raw pixels in ``[0, 255]``.
        class_index: Class to explain (default: the predicted class).

    Returns:
        ``(heatmap (H, W), class, probabilities (n_classes,))``; the map is the
        channel-wise maximum of ``|d score / d pixel|``.
    """
    explainer = get_explainer(model)
    x = explainer.prepare(image)
    cls, probs, grads = explainer.input_gradients(x, np.array([explainer.check_class(class_index)]))
    return normalize_maps(np.abs(grads[0]).max(axis=-1)), int(cls[0]), probs[0]


def smoothgrad(
    model,
    image: np.ndarray,
    *,
    class_index: int | None = None,
    samples: int = 24,
    noise: float = 0.15,
    seed: int = 0,
) -> tuple[np.ndarray, int, np.ndarray]:
    """SmoothGrad (Smilkov et al. 2017): saliency averaged over noisy copies.

    Args:
        model: A ``keras.Model`` or its :class:`Explainer`.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` raw pixels in ``[0, 255]``.
        class_index: Class to explain (default: the predicted class of the
            clean image, kept for every noisy copy).
        samples: Noisy copies (one batch).
        noise: Noise σ as a fraction of the image's value range.
        seed: Seed of the noise.

    Returns:
        ``(heatmap (H, W), class, probabilities (n_classes,))``.
    """
    if samples < 1:
        raise ModelError(f"samples must be >= 1, got {samples}")
    explainer = get_explainer(model)
    x = explainer.prepare(image)
    cls, probs = _resolve_class(explainer, x, class_index)
    sigma = noise * max(float(x.max() - x.min()), 1.0)
    rng = np.random.default_rng(seed)
    noisy = x + rng.normal(0.0, sigma, size=(samples, *x.shape[1:])).astype(np.float32)
    total = np.zeros(x.shape[1:], np.float32)
    for start in range(0, samples, DEFAULT_BATCH):
        chunk = noisy[start : start + DEFAULT_BATCH]
        _, _, grads = explainer.input_gradients(chunk, np.full(len(chunk), cls, np.int32))
        total += np.abs(grads).sum(axis=0)
    return normalize_maps((total / samples).max(axis=-1)), cls, probs


def integrated_gradients(
    model,
    image: np.ndarray,
    *,
    class_index: int | None = None,
    steps: int = 32,
    baseline: Baseline | float = "black",
) -> tuple[np.ndarray, int, np.ndarray]:
    """Integrated gradients (Sundararajan et al. 2017), midpoint Riemann sum.

    Args:
        model: A ``keras.Model`` or its :class:`Explainer`.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` raw pixels in ``[0, 255]``.
        class_index: Class to explain (default: the predicted class).
        steps: Points on the straight path from the baseline to the image.
        baseline: Reference image, see :func:`baseline_image`.

    Returns:
        ``(heatmap (H, W), class, probabilities (n_classes,))``; the map is
        ``|sum over channels of (x - x0) * mean gradient|``.
    """
    if steps < 1:
        raise ModelError(f"steps must be >= 1, got {steps}")
    explainer = get_explainer(model)
    x = explainer.prepare(image)
    cls, probs = _resolve_class(explainer, x, class_index)
    x0 = baseline_image(x[0], baseline)
    alphas = ((np.arange(steps) + 0.5) / steps).astype(np.float32)[:, None, None, None]
    path = x0[None] + alphas * (x[0] - x0)[None]
    total = np.zeros(x.shape[1:], np.float32)
    for start in range(0, steps, DEFAULT_BATCH):
        chunk = path[start : start + DEFAULT_BATCH]
        _, _, grads = explainer.input_gradients(chunk, np.full(len(chunk), cls, np.int32))
        total += grads.sum(axis=0)
    attribution = (x[0] - x0) * total / steps
    return normalize_maps(np.abs(attribution.sum(axis=-1))), cls, probs


def occlusion_sensitivity(
    model,
    image: np.ndarray,
    *,
    class_index: int | None = None,
    patch: int | None = None,
    stride: int | None = None,
    baseline: Baseline | float = "mean",
    target: Literal["score", "probability"] = "score",
    batch_size: int = DEFAULT_BATCH,
) -> tuple[np.ndarray, int, np.ndarray]:
    """Occlusion sensitivity (Zeiler & Fergus 2014): how much hiding a patch lowers the class.

    Args:
        model: A ``keras.Model`` or its :class:`Explainer`.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` raw pixels in ``[0, 255]``.
        class_index: Class to explain (default: the predicted class).
        patch: Side of the square patch (default ``max(2, min(H, W) // 8)``).
        stride: Step between patches (default ``max(1, patch // 2)``).
        baseline: What replaces the patch, see :func:`baseline_image`.
        target: Measure the drop of the class ``"score"`` (logit; the
            default, because a confident model's probability hardly moves
            when one patch is hidden) or of its ``"probability"``.
        batch_size: Occluded images per forward pass.

    Returns:
        ``(heatmap (H, W), class, probabilities (n_classes,))``; each pixel
        holds the mean drop of the patches covering it (negative drops
        clipped to 0).
    """
    explainer = get_explainer(model)
    x = explainer.prepare(image)
    cls, probs = _resolve_class(explainer, x, class_index)
    h, w = x.shape[1:3]
    patch = patch if patch is not None else max(2, min(h, w) // 8)
    stride = stride if stride is not None else max(1, patch // 2)
    if target not in ("score", "probability"):
        raise ModelError(f"target must be 'score' or 'probability', got {target!r}")
    if not 1 <= patch <= min(h, w) or stride < 1:
        raise ModelError(
            f"patch must lie in [1, {min(h, w)}] and stride >= 1, got {patch}, {stride}"
        )
    fill = baseline_image(x[0], baseline)
    ys = list(range(0, h - patch + 1, stride))
    xs = list(range(0, w - patch + 1, stride))
    # Make sure the last row/column of patches reaches the border.
    if ys[-1] != h - patch:
        ys.append(h - patch)
    if xs[-1] != w - patch:
        xs.append(w - patch)
    boxes = [(r, c) for r in ys for c in xs]

    def measure(images: np.ndarray) -> np.ndarray:
        if target == "score":
            return explainer.class_scores(images, cls, batch_size=batch_size)
        return explainer.predict(images, batch_size=batch_size)[:, cls]

    reference = float(measure(x)[0])
    drop = np.zeros((h, w), np.float32)
    count = np.zeros((h, w), np.float32)
    for start in range(0, len(boxes), batch_size):
        part = boxes[start : start + batch_size]
        batch = np.repeat(x, len(part), axis=0)
        for i, (r, c) in enumerate(part):
            batch[i, r : r + patch, c : c + patch] = fill[r : r + patch, c : c + patch]
        for (r, c), value in zip(part, measure(batch), strict=True):
            drop[r : r + patch, c : c + patch] += reference - value
            count[r : r + patch, c : c + patch] += 1.0
    return normalize_maps(np.maximum(drop / np.maximum(count, 1.0), 0.0)), cls, probs
