"""The registry of heatmap methods and the single entry point :func:`explain`."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from medviz.errors import ModelError
from medviz.explain import cams, saliency
from medviz.explain import layers as _layers
from medviz.explain.engine import Explainer, get_explainer
from medviz.explain.mirror import average_with_mirror, flip


@dataclass(frozen=True)
class MethodInfo:
    """One heatmap method.

    Attributes:
        name: Registry key, e.g. ``"gradcam"``.
        title: Human title, e.g. ``"Grad-CAM"``.
        needs_layer: Whether the method explains a convolutional layer.
        description: One sentence for people.
        gradient_free: Whether the method only needs forward passes.
        cost: Rough cost in forward/backward passes, for people.
    """

    name: str
    title: str
    needs_layer: bool
    description: str
    gradient_free: bool = False
    cost: str = "1 pass"


@dataclass(frozen=True, eq=False)
class Explanation:
    """A heatmap for one image and what it explains.

    Attributes:
        heatmap: ``(H, W)`` float32 in ``[0, 1]`` at the input resolution.
        method: Registry name of the method.
        class_index: The explained class.
        layer: The explained layer (``None`` for input-space methods).
        probabilities: ``(n_classes,)`` float32 class probabilities of the
            image (``[1 - p, p]`` for a single-sigmoid model).
        seconds: Wall time of the computation.
    """

    heatmap: np.ndarray
    method: str
    class_index: int
    layer: str | None
    probabilities: np.ndarray
    seconds: float

    @property
    def predicted_class(self) -> int:
        """Index of the most probable class."""
        return int(np.argmax(self.probabilities))


METHODS: dict[str, MethodInfo] = {
    info.name: info
    for info in (
        MethodInfo(
            "gradcam",
            "Grad-CAM",
            True,
            "Feature maps of a layer weighted by the spatially averaged gradient of the class "
            "score.",
        ),
        MethodInfo(
            "gradcam++",
            "Grad-CAM++",
            True,
            "Grad-CAM with pixel-wise weights of positive gradients; better with several objects.",
        ),
        MethodInfo(
            "layercam",
            "LayerCAM",
            True,
            "Feature maps weighted element-wise by positive gradients; finer on early layers.",
        ),
        MethodInfo(
            "scorecam",
            "Score-CAM",
            True,
            "Each feature map masks the image; the class probability of the masked image is its "
            "weight. Gradient-free.",
            gradient_free=True,
            cost="1 pass per channel",
        ),
        MethodInfo(
            "scorecam-fast",
            "Faster Score-CAM",
            True,
            "Score-CAM on the 16 channels with the largest spatial variance (max_n).",
            gradient_free=True,
            cost="max_n passes",
        ),
        MethodInfo(
            "saliency",
            "Vanilla saliency",
            False,
            "Magnitude of the gradient of the class score with respect to each pixel.",
        ),
        MethodInfo(
            "smoothgrad",
            "SmoothGrad",
            False,
            "Saliency averaged over noisy copies of the image; less speckled.",
            cost="samples passes",
        ),
        MethodInfo(
            "integrated-gradients",
            "Integrated gradients",
            False,
            "Gradients integrated along the path from a black image to the image, times the "
            "pixel difference.",
            cost="steps passes",
        ),
        MethodInfo(
            "occlusion",
            "Occlusion sensitivity",
            False,
            "Drop of the class score when a patch of the image is hidden. Gradient-free.",
            gradient_free=True,
            cost="1 pass per patch",
        ),
    )
}

_ALIASES = {
    "grad-cam": "gradcam",
    "gradcampp": "gradcam++",
    "gradcam-plus-plus": "gradcam++",
    "grad-cam++": "gradcam++",
    "layer-cam": "layercam",
    "score-cam": "scorecam",
    "faster-scorecam": "scorecam-fast",
    "score-cam-fast": "scorecam-fast",
    "vanilla": "saliency",
    "vanilla-saliency": "saliency",
    "smooth-grad": "smoothgrad",
    "ig": "integrated-gradients",
    "integratedgradients": "integrated-gradients",
    "occlusion-sensitivity": "occlusion",
}

#: Methods the batched Grad-CAM path computes in one compiled call per batch.
GRADIENT_CAMS = ("gradcam", "gradcam++", "layercam")
#: Every CAM method (they explain a layer).
CAM_METHODS = ("gradcam", "gradcam++", "layercam", "scorecam", "scorecam-fast")


def canonical_method(name: str) -> str:
    """Return the registry name for ``name`` (case, ``_`` and aliases tolerated).

    Raises:
        ModelError: Unknown method; the message lists the known ones.
    """
    key = str(name).strip().lower().replace("_", "-")
    key = _ALIASES.get(key, key)
    if key not in METHODS:
        raise ModelError(f"unknown explanation method {name!r}; choose one of {sorted(METHODS)}")
    return key


def _scorecam_fast(model, image, *, class_index=None, layer=None, max_n: int = 16, **kw):
    explainer = get_explainer(model)
    name = _layers.resolve_cam_layer(explainer.model, layer)
    channels = int(explainer.model.get_layer(name).output.shape[-1])
    return cams.scorecam(
        explainer, image, class_index=class_index, layer=name, max_n=min(max_n, channels), **kw
    )


_RUNNERS: dict[str, Callable[..., tuple[np.ndarray, int, np.ndarray]]] = {
    "scorecam": cams.scorecam,
    "scorecam-fast": _scorecam_fast,
    "saliency": saliency.vanilla_saliency,
    "smoothgrad": saliency.smoothgrad,
    "integrated-gradients": saliency.integrated_gradients,
    "occlusion": saliency.occlusion_sensitivity,
}


def method_options(method: str) -> list[str]:
    """Names of the extra keyword options ``method`` accepts."""
    key = canonical_method(method)
    if key in GRADIENT_CAMS:
        return []
    params = inspect.signature(_RUNNERS[key]).parameters
    if key == "scorecam-fast":
        params = {**inspect.signature(cams.scorecam).parameters, **params}
    skip = {"model", "image", "class_index", "layer", "kw"}
    return [p for p in params if p not in skip]


def _check_options(key: str, options: dict[str, Any]) -> None:
    allowed = method_options(key)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ModelError(
            f"method {key!r} has no option(s) {unknown}; its options: {allowed or 'none'}"
        )


def run_method(
    explainer: Explainer,
    image: np.ndarray,
    *,
    method: str,
    class_index: int | None = None,
    layer: str | None = None,
    mirror: bool = False,
    **options: Any,
) -> Explanation:
    """Run one registered method on one image (see :func:`explain`).

    With ``mirror=True`` the map is averaged with the flipped-back map of the
    mirror image, for the same class (:mod:`medviz.explain.mirror`).
    """
    key = canonical_method(method)
    _check_options(key, options)
    if mirror:
        plain = run_method(
            explainer, image, method=key, class_index=class_index, layer=layer, **options
        )
        pixels = explainer.prepare(image)[0]
        mirrored = run_method(
            explainer,
            flip(pixels[None])[0],
            method=key,
            class_index=plain.class_index,
            layer=layer,
            **options,
        )
        return replace(
            plain,
            heatmap=average_with_mirror(plain.heatmap[None], mirrored.heatmap[None])[0],
            seconds=plain.seconds + mirrored.seconds,
        )
    info = METHODS[key]
    started = time.perf_counter()
    name = _layers.resolve_cam_layer(explainer.model, layer) if info.needs_layer else None
    if layer is not None and not info.needs_layer:
        raise ModelError(f"method {key!r} explains the input, not a layer; leave layer unset")
    if key in GRADIENT_CAMS:
        x = explainer.prepare(image)
        classes = None if class_index is None else [class_index]
        maps, cls, probs = cams.gradient_cams(
            explainer, x, method=key, class_indices=classes, layer=name
        )
        heat, cls_i, probs_i = maps[0], int(cls[0]), probs[0]
    else:
        kwargs = {"class_index": class_index, **options}
        if info.needs_layer:
            kwargs["layer"] = name
        heat, cls_i, probs_i = _RUNNERS[key](explainer, image, **kwargs)
    return Explanation(
        heatmap=np.asarray(heat, np.float32),
        method=key,
        class_index=int(cls_i),
        layer=name,
        probabilities=np.asarray(probs_i, np.float32),
        seconds=time.perf_counter() - started,
    )


def run_batch(
    explainer: Explainer,
    images: np.ndarray,
    *,
    method: str,
    class_indices: np.ndarray | None = None,
    layer: str | None = None,
    batch_size: int = 32,
    mirror: bool = False,
    **options: Any,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmaps of many images; see :meth:`Explainer.heatmaps` and, for ``mirror``, run_method."""
    key = canonical_method(method)
    if mirror:
        common = {"method": key, "layer": layer, "batch_size": batch_size, **options}
        maps, classes, probabilities = run_batch(
            explainer, images, class_indices=class_indices, **common
        )
        mirrored, _, _ = run_batch(
            explainer, flip(explainer.prepare_batch(images)), class_indices=classes, **common
        )
        return average_with_mirror(maps, mirrored), classes, probabilities
    _check_options(key, options)
    x = explainer.prepare_batch(images)
    if class_indices is not None and len(np.asarray(class_indices).reshape(-1)) != len(x):
        raise ModelError(
            f"got {len(np.asarray(class_indices).reshape(-1))} classes for {len(x)} images"
        )
    if key in GRADIENT_CAMS:
        name = _layers.resolve_cam_layer(explainer.model, layer)
        parts = [
            cams.gradient_cams(
                explainer,
                x[i : i + batch_size],
                method=key,
                class_indices=None
                if class_indices is None
                else np.asarray(class_indices)[i : i + batch_size],
                layer=name,
            )
            for i in range(0, len(x), batch_size)
        ]
        if not parts:
            empty = np.zeros((0, *x.shape[1:3]), np.float32)
            return empty, np.zeros(0, np.int64), np.zeros((0, explainer.n_classes), np.float32)
        return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))  # type: ignore[return-value]
    wanted = [None] * len(x) if class_indices is None else np.asarray(class_indices).reshape(-1)
    results = [
        run_method(
            explainer,
            x[i],
            method=key,
            # -1 means "the predicted class", as in the batched CAM path.
            class_index=None if wanted[i] is None or wanted[i] < 0 else int(wanted[i]),
            layer=layer,
            **options,
        )
        for i in range(len(x))
    ]
    return (
        np.stack([r.heatmap for r in results])
        if results
        else np.zeros((0, *x.shape[1:3]), np.float32),
        np.array([r.class_index for r in results], np.int64),
        np.stack([r.probabilities for r in results])
        if results
        else np.zeros((0, explainer.n_classes), np.float32),
    )


def explain(
    model,
    image: np.ndarray,
    *,
    method: str,
    class_index: int | None = None,
    layer: str | None = None,
    **options: Any,
) -> Explanation:
    """Explain one image with one method: the single entry point.

    The model's :class:`Explainer` (compiled functions) is cached, so repeated
    calls on the same model are fast; pass an :class:`Explainer` to manage
    that yourself.

    Args:
        model: A ``keras.Model`` (flat, softmax or single-sigmoid head) or an
            :class:`Explainer`.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` (``(H, W)`` for grayscale),
            ``uint8`` or float raw pixels in ``[0, 255]``.
        method: A key of :data:`METHODS` (aliases such as ``"grad-cam"`` work).
        class_index: Class to explain (default: the predicted class). For a
            single-sigmoid model, 0 is the negative and 1 the positive class.
        layer: Layer to explain for CAM methods (default: the last layer with
            a spatial output larger than 1×1); must be unset for input-space
            methods.
        **options: Method options (see :func:`method_options`), e.g.
            ``max_n`` (Score-CAM), ``samples``/``noise`` (SmoothGrad),
            ``steps``/``baseline`` (integrated gradients), ``patch``/``stride``
            (occlusion).

    Returns:
        An :class:`Explanation` with the ``(H, W)`` heatmap in ``[0, 1]``.

    Raises:
        ModelError: Unknown method, option, layer or class; unusable model.
        DataError: The image does not fit the model.
    """
    return run_method(
        get_explainer(model), image, method=method, class_index=class_index, layer=layer, **options
    )
