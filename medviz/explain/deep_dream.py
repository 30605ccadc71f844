"""Deep dream: amplify what a layer sees in a given image, over several octaves.

Gradient ascent on the image itself (Mordvintsev et al., *Inceptionism*,
2015): the objective is the mean squared activation of a layer (or the mean
activation of one filter); gradients are normalised by their mean absolute
value, and the image is randomly rolled before every step so the pattern
does not lock onto the pixel grid.

Octaves work with fixed-size models: octave ``k`` optimises a smaller copy of
the image (side ``S / octave_scale**k``) that is upsampled bilinearly to the
model's input size inside the gradient computation, so coarse octaves paint
large structures and fine ones add detail; between octaves the detail lost
by downsampling is added back, as in the classic algorithm.

TensorFlow is imported when :func:`deep_dream` first runs, not with this
module: the package re-exports ``deep_dream`` eagerly (the function shares
the module's name) without making ``import medviz.explain`` heavy.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medviz.errors import ModelError
from medviz.explain import layers as _layers

if TYPE_CHECKING:  # pragma: no cover - typing only
    import tensorflow as tf

    from medviz.explain.activation_max import StepCallback

DEFAULT_STEPS_PER_OCTAVE = 20


@dataclass(frozen=True, eq=False)
class DeepDream:
    """Result of :func:`deep_dream`.

    Attributes:
        image: ``(H, W, C)`` uint8 final dream, ``C`` as the model input.
        frames: ``(n_frames, H, W, C)`` uint8: the input first, then a frame
            every ``frame_every`` steps, the final image last.
        layer: The amplified layer (or ``"class k"`` for a class dream).
        filter_index: The amplified filter, or ``None`` for the whole layer.
        losses: ``(steps,)`` objective per step.
        probabilities: ``(n_classes,)`` of the input and ``(n_classes,)`` of
            the dream, stacked to ``(2, n_classes)``.
        seconds: Wall time.
    """

    image: np.ndarray
    frames: np.ndarray
    layer: str
    filter_index: int | None
    losses: np.ndarray
    probabilities: np.ndarray
    seconds: float


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def deep_dream(
    model,
    image: np.ndarray,
    *,
    layer: str | None = None,
    filter_index: int | None = None,
    class_index: int | None = None,
    octaves: int = 3,
    octave_scale: float = 1.4,
    steps_per_octave: int | None = None,
    step_size: float = 1.5,
    jitter: int = 4,
    frame_every: int = 4,
    seed: int = 0,
    on_step: StepCallback | None = None,
) -> DeepDream:
    """Run deep dream on one image.

    Args:
        model: A ``keras.Model`` or its :class:`~medviz.explain.Explainer`.
        image: ``(H, W, C)`` or ``(1, H, W, C)`` raw pixels in ``[0, 255]``.
        layer: Layer to amplify (default: the default CAM layer, the deepest
            spatial one; earlier layers give finer textures).
        filter_index: Amplify one filter only (default: the whole layer).
        class_index: Instead of a layer, amplify the evidence for this class
            (its logit minus the mean of the others; ``±z`` for one sigmoid
            unit), i.e. "show me more of what makes this class".
        octaves: Number of scales (1 = full resolution only).
        octave_scale: Size ratio between successive octaves.
        steps_per_octave: Gradient steps per octave (default 20, or
            ``$MEDVIZ_TEST_STEPS``).
        step_size: Mean pixel change per step, in grey levels.
        jitter: Maximum random roll in pixels before each step.
        frame_every: Keep a frame every this many steps.
        seed: Seed of the jitter.
        on_step: ``on_step(step, total, loss)`` after every step.

    Returns:
        A :class:`DeepDream` with the final image and the animation frames.

    Raises:
        ModelError: Bad layer/filter or settings, or a model without a fixed
            input size.
    """
    import tensorflow as tf

    from medviz.explain.activation_max import class_objective, default_steps, objective_model
    from medviz.explain.engine import get_explainer

    started = time.perf_counter()
    explainer = get_explainer(model)
    h, w, c = explainer.input_shape
    if h is None or w is None:
        raise ModelError("deep dream needs a model with a fixed input size")
    if octaves < 1 or octave_scale <= 1.0 or frame_every < 1 or step_size <= 0:
        raise ModelError(
            f"need octaves >= 1, octave_scale > 1, frame_every >= 1, step_size > 0; got "
            f"{octaves}, {octave_scale}, {frame_every}, {step_size}"
        )
    steps = (
        default_steps(DEFAULT_STEPS_PER_OCTAVE) if steps_per_octave is None else steps_per_octave
    )
    if steps < 1:
        raise ModelError(f"steps_per_octave must be >= 1, got {steps}")
    x0 = explainer.prepare(image)  # (1, H, W, C)
    if class_index is not None:
        if layer is not None or filter_index is not None:
            raise ModelError("give class_index or layer/filter_index, not both")
        cls = tf.constant([explainer.check_class(class_index)], tf.int32)
        forward = objective_model(explainer, None)
        name = f"class {int(class_index)}"

        def objective(full: tf.Tensor) -> tf.Tensor:
            return class_objective(explainer, forward(full), cls)[0]

    else:
        name = _layers.resolve_cam_layer(explainer.model, layer)
        n_filters = int(explainer.model.get_layer(name).output.shape[-1])
        if filter_index is not None and not 0 <= filter_index < n_filters:
            raise ModelError(
                f"filter_index {filter_index} out of range: layer {name!r} has filters "
                f"0..{n_filters - 1}"
            )
        feats = objective_model(explainer, name)
        pick = -1 if filter_index is None else int(filter_index)

        def objective(full: tf.Tensor) -> tf.Tensor:
            act = feats(full)
            if pick >= 0:
                return tf.reduce_mean(act[..., pick])
            # Mean squared activation: amplify whatever the layer already sees.
            return tf.reduce_mean(tf.square(act))

    size = tf.constant([h, w], tf.int32)
    rng = tf.random.Generator.from_seed(seed)

    @tf.function(
        input_signature=[tf.TensorSpec((1, None, None, c), tf.float32)], reduce_retracing=True
    )
    def ascend(small):
        shift = (
            rng.uniform((2,), -jitter, jitter + 1, dtype=tf.int32)
            if jitter
            else tf.zeros(2, tf.int32)
        )
        rolled = tf.roll(small, shift, axis=(1, 2))
        with tf.GradientTape() as tape:
            tape.watch(rolled)
            loss = objective(tf.image.resize(rolled, size, method="bilinear"))
        g = tape.gradient(loss, rolled)
        g = g / (tf.reduce_mean(tf.abs(g)) + 1e-8)
        out = tf.clip_by_value(rolled + step_size * g, 0.0, 255.0)
        return tf.roll(out, -shift, axis=(1, 2)), loss

    def resize(x: np.ndarray | tf.Tensor, shape: Sequence[int]) -> tf.Tensor:
        return tf.image.resize(x, shape, method="bilinear")

    shapes = [
        (max(8, round(h / octave_scale**k)), max(8, round(w / octave_scale**k)))
        for k in range(octaves - 1, -1, -1)
    ]
    original = tf.constant(x0)
    shrunk = resize(original, shapes[0])
    current = shrunk
    total = steps * len(shapes)
    frames = [_to_uint8(x0[0])]
    losses = np.empty(total, np.float32)
    done = 0
    for k, shape in enumerate(shapes):
        if k:
            # Upscale the dream, then add back the detail lost by downsampling.
            current = resize(current, shape)
            detail = resize(original, shape) - resize(shrunk, shape)
            current = tf.clip_by_value(current + detail, 0.0, 255.0)
            shrunk = resize(original, shape)
        for _ in range(steps):
            current, loss = ascend(current)
            losses[done] = float(loss)
            done += 1
            if done % frame_every == 0 or done == total:
                frames.append(_to_uint8(resize(current, (h, w)).numpy()[0]))
            if on_step is not None:
                on_step(done, total, float(losses[done - 1]))
    final = _to_uint8(resize(current, (h, w)).numpy()[0])
    probs = explainer.predict(np.stack([x0[0], final.astype(np.float32)]))
    return DeepDream(
        image=final,
        frames=np.stack(frames),
        layer=name,
        filter_index=filter_index,
        losses=losses,
        probabilities=probs,
        seconds=time.perf_counter() - started,
    )
