"""Activation maximisation: the input a class or a filter likes most.

Our own compiled optimisation loop rather than tf-keras-vis'
``ActivationMaximization``, whose defaults are tuned for VGG16 on RGB
ImageNet and give grey noise on small grayscale CNNs. What makes the images
readable on our small models:

* **Fourier parametrisation** (Olah et al., *Feature Visualization*, 2017):
  the image is the inverse FFT of a spectrum scaled by ``1/f**decay``, so
  gradient steps favour smooth structure over pixel noise; a ``tanh`` keeps
  pixels inside ``[0, 255]``.
* **Transformation robustness**: every step sees the image randomly
  translated (jitter), rotated and scaled, so the result must work
  everywhere rather than exploit one pixel grid.
* **Total variation** and a weak pull towards mid-grey, and an optional
  periodic **Gaussian blur** (applied exactly, as a Gaussian transfer
  function on the spectrum).
* A class objective that cannot saturate: the class logit minus the mean of
  the other logits (``±z`` for a single sigmoid unit), so the image shows what
  separates the class from the others rather than what raises every logit.

Grayscale models stay grayscale: the image has the model's channel count.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import tensorflow as tf

from medviz.errors import ModelError
from medviz.explain import layers as _layers
from medviz.explain.engine import Explainer, get_explainer

#: Progress callback: ``on_step(step, total, loss)`` with 1-based ``step``.
StepCallback = Callable[[int, int, float], None]

DEFAULT_STEPS = 160


def default_steps(fallback: int = DEFAULT_STEPS) -> int:
    """Default step count: ``$MEDVIZ_TEST_STEPS`` when set (tests), else ``fallback``."""
    value = os.environ.get("MEDVIZ_TEST_STEPS")
    return int(value) if value else fallback


@dataclass(frozen=True)
class Regularizers:
    """Regularisers of activation maximisation (and their strengths).

    Attributes:
        jitter: Maximum random translation per step, as a fraction of the
            image side.
        rotation: Maximum random rotation per step, in degrees.
        scale: Range of the random zoom factor per step.
        total_variation: Weight of the total-variation penalty (pixels in
            ``[0, 1]``, averaged over the image).
        l2: Weight of the pull towards mid-grey.
        blur_every: Blur the image every this many steps (0: never).
        blur_sigma: σ of that blur, in pixels.
        decay: Spectral decay of the Fourier parametrisation (0 = pixels).
    """

    jitter: float = 0.06
    rotation: float = 8.0
    scale: tuple[float, float] = (0.92, 1.08)
    total_variation: float = 0.1
    l2: float = 0.05
    blur_every: int = 10
    blur_sigma: float = 0.35
    decay: float = 0.5

    def __post_init__(self) -> None:
        lo, hi = self.scale
        if not (0 <= self.jitter < 0.5 and 0 < lo <= hi and self.blur_every >= 0):
            raise ModelError(
                f"bad regularisers: jitter must lie in [0, 0.5), 0 < scale[0] <= scale[1], "
                f"blur_every >= 0; got {self}"
            )


@dataclass(frozen=True, eq=False)
class ActivationMaximization:
    """Result of :func:`activation_maximization`.

    Attributes:
        images: ``(N, H, W, C)`` uint8, one per target, ``C`` as the model input.
        targets: What each image maximises, e.g. ``"class 1"`` or ``"conv2d/7"``.
        objectives: ``(N,)`` final objective values (larger = stronger).
        losses: ``(steps,)`` mean loss per step.
        probabilities: ``(N, n_classes)`` probabilities the model gives the images.
        seconds: Wall time.
    """

    images: np.ndarray
    targets: tuple[str, ...]
    objectives: np.ndarray
    losses: np.ndarray
    probabilities: np.ndarray
    seconds: float
    info: dict[str, object] = field(default_factory=dict)

    @property
    def image(self) -> np.ndarray:
        """The first image, ``(H, W, C)`` uint8."""
        return self.images[0]


def _affine(batch: int, size: tuple[int, int], reg: Regularizers, rng: tf.random.Generator):
    """Random (jitter, rotation, scale) transforms for ImageProjectiveTransformV3, ``(B, 8)``."""
    h, w = float(size[0]), float(size[1])
    theta = rng.uniform((batch,), -1.0, 1.0) * (reg.rotation * math.pi / 180.0)
    zoom = rng.uniform((batch,), reg.scale[0], reg.scale[1])
    shift = rng.uniform((batch, 2), -1.0, 1.0) * reg.jitter * tf.constant([w, h])
    # Output pixel p is read from input M (p - c) + c + t (rotation, then zoom).
    cos, sin = tf.cos(theta) / zoom, tf.sin(theta) / zoom
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    a2 = cx - cos * cx + sin * cy + shift[:, 0]
    b2 = cy - sin * cx - cos * cy + shift[:, 1]
    zeros = tf.zeros_like(cos)
    return tf.stack([cos, -sin, a2, sin, cos, b2, zeros, zeros], axis=1)


class _FourierImage:
    """``(B, H, W, C)`` images in [0, 255] parametrised by a scaled spectrum."""

    def __init__(self, batch: int, h: int, w: int, c: int, decay: float, seed: int) -> None:
        fy = np.fft.fftfreq(h)[:, None]
        fx = np.fft.rfftfreq(w)[None, :]
        freq = np.sqrt(fx**2 + fy**2)
        scale = 1.0 / np.maximum(freq, 1.0 / max(h, w)) ** decay
        scale = scale / scale.max()
        self.freq2 = tf.constant((freq**2)[None, None], tf.float32)
        self.scale = tf.constant(scale[None, None], tf.float32)  # (1, 1, h, w//2+1)
        self.shape = (h, w)
        rng = np.random.default_rng(seed)
        spec_shape = (batch, c, h, w // 2 + 1)
        self.real = tf.Variable(rng.normal(0, 0.01, spec_shape).astype(np.float32))
        self.imag = tf.Variable(rng.normal(0, 0.01, spec_shape).astype(np.float32))
        # Keeps a unit-std spectrum near unit-std pixels whatever the size.
        self.norm = float(math.sqrt(h * w))

    @property
    def variables(self) -> list[tf.Variable]:
        return [self.real, self.imag]

    def pixels(self) -> tf.Tensor:
        spectrum = tf.complex(self.real * self.scale, self.imag * self.scale)
        field = tf.signal.irfft2d(spectrum, fft_length=self.shape) * self.norm  # (B, C, H, W)
        return 127.5 + 127.5 * tf.tanh(tf.transpose(field, (0, 2, 3, 1)))

    def blur(self, sigma: float) -> None:
        # A Gaussian blur of σ pixels is the transfer function exp(-2 π² σ² f²).
        gain = tf.exp(-2.0 * math.pi**2 * sigma**2 * self.freq2)
        self.real.assign(self.real * gain)
        self.imag.assign(self.imag * gain)


def objective_model(explainer: Explainer, layer: str | None):
    """Callable ``x -> (B, K) logits`` (``layer`` None) or ``x -> (B, h, w, k)`` feature maps."""
    if layer is None:
        sub = explainer._submodel(None)
        return lambda x: tf.cast(explainer._head_fn(sub(x, training=False)), tf.float32)
    import keras

    feats = keras.Model(explainer.model.inputs, explainer.model.get_layer(layer).output)
    return lambda x: tf.cast(feats(x, training=False), tf.float32)


def class_objective(explainer: Explainer, logits: tf.Tensor, classes: tf.Tensor) -> tf.Tensor:
    """The score to maximise for ``classes`` ``(B,)`` from ``(B, K)`` logits, shape ``(B,)``.

    A single sigmoid unit gives ``±z``; a softmax head the chosen logit minus the
    mean of the others (raising one class, not all of them).
    """
    if explainer.binary:
        z = logits[:, 0]
        return tf.where(classes == 1, z, -z)
    chosen = tf.gather(logits, classes, axis=1, batch_dims=1)
    if explainer.n_outputs == 1 or explainer.head == "sigmoid":
        return chosen
    others = (tf.reduce_sum(logits, axis=1) - chosen) / float(explainer.n_outputs - 1)
    return chosen - others


def _total_variation(x: tf.Tensor) -> tf.Tensor:
    x = x / 255.0
    dy = tf.reduce_mean(tf.abs(x[:, 1:] - x[:, :-1]), axis=(1, 2, 3))
    dx = tf.reduce_mean(tf.abs(x[:, :, 1:] - x[:, :, :-1]), axis=(1, 2, 3))
    return dx + dy


def activation_maximization(
    model,
    *,
    class_index: int | Sequence[int] | None = None,
    layer: str | None = None,
    filter_index: int | Sequence[int] | None = None,
    steps: int | None = None,
    learning_rate: float = 0.1,
    regularizers: Regularizers | None = None,
    seed: int = 0,
    on_step: StepCallback | None = None,
) -> ActivationMaximization:
    """Synthesise the input that maximises a class score or one filter of a layer.

    Give either ``class_index`` (one or several classes; several are
    optimised together in one batch) or ``layer`` and ``filter_index``.

    Args:
        model: A ``keras.Model`` or its :class:`~medviz.explain.Explainer`.
        class_index: Class(es) to visualise; for a single-sigmoid model 0 is
            the negative and 1 the positive class.
        layer: Layer with 4-D output whose filter to visualise.
        filter_index: Filter(s) (channel) of ``layer``.
        steps: Optimisation steps (default 160, or ``$MEDVIZ_TEST_STEPS``).
        learning_rate: Adam step size on the spectrum.
        regularizers: Jitter, rotation, scale, total variation, blur.
        seed: Seed of the start image and the random transforms.
        on_step: ``on_step(step, total, loss)`` after every step.

    Returns:
        An :class:`ActivationMaximization` with ``(N, H, W, C)`` uint8 images.

    Raises:
        ModelError: Neither or both targets given, bad layer/filter/class, or
            a model without a fixed input size.
    """
    started = time.perf_counter()
    explainer = get_explainer(model)
    reg = regularizers or Regularizers()
    steps = default_steps() if steps is None else int(steps)
    if steps < 1:
        raise ModelError(f"steps must be >= 1, got {steps}")
    h, w, c = explainer.input_shape
    if h is None or w is None:
        raise ModelError("activation maximisation needs a model with a fixed input size")
    if (class_index is None) == (filter_index is None):
        raise ModelError(
            "give either class_index, or layer and filter_index (not both, not neither)"
        )
    if class_index is not None:
        if layer is not None:
            raise ModelError("layer is only used with filter_index; leave it unset for a class")
        classes = [explainer.check_class(int(k)) for k in np.atleast_1d(class_index)]
        targets = tuple(f"class {k}" for k in classes)
        index = np.array(classes, np.int32)
        name = None
    else:
        if layer is None:
            raise ModelError("filter_index needs a layer; choose one of the 4-D layers")
        name = _layers.resolve_cam_layer(explainer.model, layer)
        n_filters = int(explainer.model.get_layer(name).output.shape[-1])
        index = np.array([int(f) for f in np.atleast_1d(filter_index)], np.int32)
        if index.min() < 0 or index.max() >= n_filters:
            raise ModelError(
                f"filter_index {filter_index} out of range: layer {name!r} has filters "
                f"0..{n_filters - 1}"
            )
        targets = tuple(f"{name}/{k}" for k in index)

    batch = len(index)
    image = _FourierImage(batch, h, w, c, reg.decay, seed)
    forward = objective_model(explainer, name)
    rng = tf.random.Generator.from_seed(seed)
    optimizer_state = [tf.Variable(tf.zeros_like(v)) for v in image.variables for _ in (0, 1)]
    step_var = tf.Variable(0.0)
    target = tf.constant(index)
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    def objective(x: tf.Tensor) -> tf.Tensor:
        out = forward(x)
        if name is None:
            return class_objective(explainer, out, target)
        # Mean activation of the chosen channel of each image.
        return tf.gather(tf.reduce_mean(out, axis=(1, 2)), target, axis=1, batch_dims=1)

    @tf.function(reduce_retracing=True)
    def step():
        with tf.GradientTape() as tape:
            x = image.pixels()
            moved = tf.raw_ops.ImageProjectiveTransformV3(
                images=x,
                transforms=_affine(batch, (h, w), reg, rng),
                output_shape=tf.constant([h, w]),
                fill_value=0.0,
                interpolation="BILINEAR",
                fill_mode="REFLECT",
            )
            gain = objective(moved)
            penalty = reg.total_variation * _total_variation(x) + reg.l2 * tf.reduce_mean(
                (x / 255.0 - 0.5) ** 2, axis=(1, 2, 3)
            )
            loss = tf.reduce_sum(penalty - gain)
        grads = tape.gradient(loss, image.variables)
        # Adam, written out so the whole step is one compiled function.
        step_var.assign_add(1.0)
        lr = learning_rate * tf.sqrt(1.0 - beta2**step_var) / (1.0 - beta1**step_var)
        for i, (var, g) in enumerate(zip(image.variables, grads, strict=True)):
            m, v = optimizer_state[2 * i], optimizer_state[2 * i + 1]
            m.assign(beta1 * m + (1.0 - beta1) * g)
            v.assign(beta2 * v + (1.0 - beta2) * g * g)
            var.assign_sub(lr * m / (tf.sqrt(v) + eps))
        return loss / float(batch), gain

    losses = np.empty(steps, np.float32)
    for i in range(steps):
        loss, _ = step()
        if (
            reg.blur_every
            and reg.blur_sigma > 0
            and (i + 1) % reg.blur_every == 0
            and i + 1 < steps
        ):
            image.blur(reg.blur_sigma)
        losses[i] = float(loss)
        if on_step is not None:
            on_step(i + 1, steps, float(losses[i]))

    pixels = image.pixels().numpy()
    final = objective(tf.constant(pixels)).numpy()
    images = np.clip(np.round(pixels), 0, 255).astype(np.uint8)
    probs = explainer.predict(images.astype(np.float32))
    return ActivationMaximization(
        images=images,
        targets=targets,
        objectives=final.astype(np.float32),
        losses=losses,
        probabilities=probs,
        seconds=time.perf_counter() - started,
        info={"steps": steps, "regularizers": reg, "learning_rate": learning_rate, "seed": seed},
    )
