"""The per-model engine every explanation method runs on.

An :class:`Explainer` analyses a model once (input shape, output head,
explainable layers), builds the intermediate-output models it needs and
compiles the TensorFlow functions (fixed input signatures, so no retracing)
that the methods call: prediction, gradients of the class score with respect
to a layer's feature maps or to the input, and feature maps. Building these
takes a fraction of a second; reusing them makes a prediction plus a Grad-CAM
a single compiled forward/backward pass of a few milliseconds.

Class scores are *pre-activation* values, which is what Grad-CAM and
saliency are defined on (a saturated softmax or sigmoid has vanishing
gradients):

* softmax head: the logit ``z_c`` of the explained class;
* single-sigmoid head (binary; class 1 = positive): ``+z`` for class 1 and
  ``-z`` for class 0, since ``1 - sigmoid(z) = sigmoid(-z)``.

The logits are computed from the *user's own weights* rather than from a
clone whose last activation was swapped to linear (the tf-keras-vis way):
when the head is a ``Dense`` layer, its kernel and bias are applied to the
head's input inside the compiled function. The explainer therefore stays
correct if the model is trained further after the explainer was built. Only
unusual heads (softmax/sigmoid on a non-Dense layer) fall back to a cached
clone with a linear last layer; call :meth:`Explainer.refresh` after
changing such a model's weights.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from medviz.errors import DataError, ModelError
from medviz.explain import layers as _layers

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import tensorflow as tf

HeadKind = Literal["softmax", "sigmoid", "logits"]

#: Images per forward pass when a method scores many perturbed inputs.
DEFAULT_BATCH = 64


def _activation_name(layer: keras.layers.Layer) -> str:
    if isinstance(layer, keras.layers.Softmax):
        return "softmax"
    activation = getattr(layer, "activation", None)
    if activation is None:
        return "linear"
    return getattr(activation, "__name__", str(activation))


def output_layer(model: keras.Model) -> keras.layers.Layer:
    """The layer that produces the model's (single) output."""
    history = getattr(model.outputs[0], "_keras_history", None)
    layer = getattr(history, "operation", None) if history is not None else None
    return layer if isinstance(layer, keras.layers.Layer) else model.layers[-1]


class Explainer:
    """Compiled explanation primitives for one model, built once and reused.

    Args:
        model: A flat functional ``keras.Model`` with one input
            ``(None, H, W, C)`` of raw pixel values in ``[0, 255]`` and one
            output ``(None, K)``: softmax over ``K`` classes, or a single
            sigmoid unit (binary, ``K = 1``; explained as two classes).

    Attributes:
        model: The model (never modified).
        input_shape: ``(H, W, C)``; ``H``/``W`` may be ``None`` for fully
            convolutional models.
        head: ``"softmax"``, ``"sigmoid"`` or ``"logits"`` (no final activation).
        binary: Whether the model has a single sigmoid/logit unit.
        n_classes: Explainable classes: ``K``, or 2 for a single-unit model.

    Raises:
        ModelError: The model is nested, has several inputs or outputs, or
            its input/output shapes are not those of an image classifier.
    """

    def __init__(self, model: keras.Model) -> None:
        if not isinstance(model, keras.Model):
            raise ModelError(f"expected a keras.Model, got {type(model).__name__}")
        _layers.check_flat(model)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            raise ModelError(
                f"model {model.name!r} has {len(model.inputs)} inputs and "
                f"{len(model.outputs)} outputs; explanations need exactly one of each"
            )
        in_shape = tuple(model.inputs[0].shape)
        if len(in_shape) != 4 or in_shape[-1] not in (1, 3):
            raise ModelError(
                f"model input must be (None, H, W, 1|3) images, got {in_shape} for {model.name!r}"
            )
        out_shape = tuple(model.outputs[0].shape)
        if len(out_shape) != 2 or not out_shape[-1]:
            raise ModelError(
                f"model output must be (None, K) class scores, got {out_shape} for {model.name!r}"
            )
        self.model = model
        self.input_shape: tuple[int | None, int | None, int] = in_shape[1:]  # type: ignore[assignment]
        self.n_outputs = int(out_shape[-1])
        self.binary = self.n_outputs == 1
        self.n_classes = 2 if self.binary else self.n_outputs
        self._fns: dict[Any, Callable] = {}
        self._submodels: dict[str, keras.Model] = {}
        self._analyse_head()

    # ------------------------------------------------------------------ setup
    def _analyse_head(self) -> None:
        """Find the tensor holding the logits and how to finish the computation."""
        model = self.model
        last = output_layer(model)
        name = _activation_name(last)
        self._clone: keras.Model | None = None
        self._head_fn: Callable[[tf.Tensor], tf.Tensor] = lambda t: t
        if isinstance(last, (keras.layers.Activation, keras.layers.Softmax)) and name in (
            "softmax",
            "sigmoid",
        ):
            # The logits are the input of the activation layer itself.
            self.head: HeadKind = name  # type: ignore[assignment]
            self._graph_model = model
            self._logit_tensor = last.input
        elif name in ("softmax", "sigmoid") and isinstance(last, keras.layers.Dense):
            self.head = name  # type: ignore[assignment]
            self._graph_model = model
            self._logit_tensor = last.input
            dense = last

            def head_fn(t: tf.Tensor) -> tf.Tensor:
                out = tf.matmul(tf.cast(t, tf.float32), tf.cast(dense.kernel, tf.float32))
                if dense.use_bias:
                    out = out + tf.cast(dense.bias, tf.float32)
                return out

            self._head_fn = head_fn
        elif name in ("softmax", "sigmoid"):
            # Any other layer type: the tf-keras-vis way, on a cached clone.
            self.head = name  # type: ignore[assignment]
            self._clone = self._linear_clone()
            self._graph_model = self._clone
            self._logit_tensor = self._clone.outputs[0]
        elif name == "linear":
            self.head = "logits"
            self._graph_model = model
            self._logit_tensor = model.outputs[0]
        else:
            raise ModelError(
                f"the output layer {last.name!r} of {model.name!r} uses activation {name!r}; "
                "explanations need a softmax, sigmoid or linear output"
            )

    def _linear_clone(self) -> keras.Model:
        clone = keras.models.clone_model(self.model)
        clone.set_weights(self.model.get_weights())
        output_layer(clone).activation = keras.activations.linear
        return clone

    def refresh(self) -> None:
        """Re-copy the weights into the linear clone (only needed for clone-based heads)."""
        if self._clone is not None:
            self._clone.set_weights(self.model.get_weights())

    @property
    def uses_clone(self) -> bool:
        """Whether logits come from a linear-activation clone (unusual heads only)."""
        return self._clone is not None

    def _submodel(self, layer: str | None) -> keras.Model:
        """Model from the input to ``[feature map of layer, logit input]`` (cached)."""
        key = layer or ""
        if key not in self._submodels:
            graph = self._graph_model
            outputs = [self._logit_tensor]
            if layer is not None:
                outputs = [graph.get_layer(layer).output, self._logit_tensor]
            self._submodels[key] = keras.Model(graph.inputs, outputs)
        return self._submodels[key]

    def _signature(self) -> list[tf.TensorSpec]:
        return [
            tf.TensorSpec((None, *self.input_shape), tf.float32),
            tf.TensorSpec((None,), tf.int32),
        ]

    def _resolve(self, logits: tf.Tensor, requested: tf.Tensor):
        """Class, score and probabilities from ``(B, K)`` logits and requested classes.

        ``requested < 0`` means the predicted class.
        """
        logits = tf.cast(logits, tf.float32)
        if self.binary:
            z = logits[:, 0]
            p = tf.sigmoid(z)
            probs = tf.stack([1.0 - p, p], axis=1)
            predicted = tf.cast(z > 0.0, tf.int32)
            cls = tf.where(requested < 0, predicted, requested)
            score = tf.where(cls == 1, z, -z)
        else:
            probs = tf.sigmoid(logits) if self.head == "sigmoid" else tf.nn.softmax(logits)
            predicted = tf.cast(tf.argmax(logits, axis=1), tf.int32)
            cls = tf.where(requested < 0, predicted, requested)
            score = tf.gather(logits, cls, axis=1, batch_dims=1)
        return cls, score, probs

    # -------------------------------------------------------------- compiled
    def _compiled(self, key: Any, build: Callable[[], Callable]) -> Callable:
        if key not in self._fns:
            self._fns[key] = build()
        return self._fns[key]

    def _predict_fn(self) -> Callable:
        def build() -> Callable:
            sub = self._submodel(None)

            @tf.function(input_signature=self._signature()[:1], reduce_retracing=True)
            def predict(x):
                logits = self._head_fn(sub(x, training=False))
                _, _, probs = self._resolve(logits, tf.fill(tf.shape(x)[:1], -1))
                return tf.cast(logits, tf.float32), probs

            return predict

        return self._compiled("predict", build)

    def _layer_grads_fn(self, layer: str) -> Callable:
        def build() -> Callable:
            sub = self._submodel(layer)

            @tf.function(input_signature=self._signature(), reduce_retracing=True)
            def grads(x, requested):
                with tf.GradientTape() as tape:
                    feats, pre = sub(x, training=False)
                    tape.watch(feats)
                    cls, score, probs = self._resolve(self._head_fn(pre), requested)
                g = tape.gradient(score, feats)
                return cls, probs, tf.cast(feats, tf.float32), tf.cast(g, tf.float32), score

            return grads

        return self._compiled(("layer_grads", layer), build)

    def _input_grads_fn(self) -> Callable:
        def build() -> Callable:
            sub = self._submodel(None)

            @tf.function(input_signature=self._signature(), reduce_retracing=True)
            def grads(x, requested):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    cls, score, probs = self._resolve(
                        self._head_fn(sub(x, training=False)), requested
                    )
                return cls, probs, tf.cast(tape.gradient(score, x), tf.float32)

            return grads

        return self._compiled("input_grads", build)

    def _features_fn(self, layer: str) -> Callable:
        def build() -> Callable:
            sub = keras.Model(self.model.inputs, self.model.get_layer(layer).output)

            @tf.function(input_signature=self._signature()[:1], reduce_retracing=True)
            def features(x):
                return tf.cast(sub(x, training=False), tf.float32)

            return features

        return self._compiled(("features", layer), build)

    # ----------------------------------------------------------------- public
    def prepare(self, image: np.ndarray) -> np.ndarray:
        """Check and convert one image to a model batch.

        Args:
            image: ``(H, W, C)`` or ``(1, H, W, C)`` (or ``(H, W)`` for a
                grayscale model), ``uint8`` or float, raw pixel values in
                ``[0, 255]``.

        Returns:
            ``(1, H, W, C)`` float32 array.

        Raises:
            DataError: Wrong shape, channel count, size or value range.
        """
        return self.prepare_batch(image, single=True)

    def prepare_batch(self, images: np.ndarray, *, single: bool = False) -> np.ndarray:
        """Check and convert a stack of images ``(N, H, W, C)`` to float32.

        Args:
            images: ``(N, H, W, C)`` array in ``[0, 255]``; with ``single``, one
                image as accepted by :meth:`prepare`.
            single: Expect exactly one image.

        Returns:
            ``(N, H, W, C)`` float32 array.

        Raises:
            DataError: Wrong shape, channel count, size or value range.
        """
        h, w, c = self.input_shape
        array = np.asarray(images)
        expected = f"(H, W, {c}) or (1, H, W, {c})" if single else f"(N, H, W, {c})"
        if single:
            if array.ndim == 2 and c == 1:
                array = array[None, :, :, None]
            elif array.ndim == 3:
                array = array[None]
            if array.ndim != 4 or array.shape[0] != 1:
                raise DataError(
                    f"expected one image {expected}, got an array of shape {array.shape}"
                )
        if array.ndim != 4 or array.shape[-1] != c:
            raise DataError(
                f"expected images {expected} with {c} channel(s) for this model, "
                f"got shape {array.shape}"
            )
        if (h is not None and array.shape[1] != h) or (w is not None and array.shape[2] != w):
            raise DataError(
                f"image size {array.shape[1]}×{array.shape[2]} does not match the model input "
                f"{h}×{w}; resize it first (the model store's prepare() does)"
            )
        if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
            raise DataError(f"image dtype must be uint8 or float, got {array.dtype}")
        array = array.astype(np.float32, copy=False)
        if array.size and (
            not np.isfinite(array).all() or array.min() < -0.5 or array.max() > 255.5
        ):
            raise DataError(
                f"pixel values must be raw intensities in [0, 255], got range "
                f"[{float(np.nanmin(array)):.3g}, {float(np.nanmax(array)):.3g}]"
            )
        return array

    def check_class(self, class_index: int | None) -> int:
        """Validate a class index; ``None`` becomes ``-1`` (= the predicted class).

        Raises:
            ModelError: The index is outside ``[0, n_classes)``.
        """
        if class_index is None:
            return -1
        if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
            raise ModelError(f"class_index must be an int or None, got {class_index!r}")
        if not 0 <= int(class_index) < self.n_classes:
            raise ModelError(
                f"class_index {class_index} is out of range; this model explains classes "
                f"0..{self.n_classes - 1}"
                + (" (single sigmoid unit: 0 = negative, 1 = positive)" if self.binary else "")
            )
        return int(class_index)

    def predict(self, images: np.ndarray, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Class probabilities of prepared images.

        Args:
            images: ``(N, H, W, C)`` float32 in ``[0, 255]``.
            batch_size: Images per forward pass.

        Returns:
            ``(N, n_classes)`` float32 probabilities (``[1 - p, p]`` for a
            single-sigmoid model).
        """
        fn = self._predict_fn()
        images = np.asarray(images, dtype=np.float32)
        out = [
            fn(tf.constant(images[i : i + batch_size]))[1].numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.n_classes), np.float32)

    def predict_logits(self, images: np.ndarray, *, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Pre-activation outputs ``(N, K)`` float32 of prepared images ``(N, H, W, C)``."""
        fn = self._predict_fn()
        images = np.asarray(images, dtype=np.float32)
        out = [
            fn(tf.constant(images[i : i + batch_size]))[0].numpy()
            for i in range(0, len(images), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.n_outputs), np.float32)

    def class_scores(
        self, images: np.ndarray, class_index: int, *, batch_size: int = DEFAULT_BATCH
    ) -> np.ndarray:
        """The explained score (logit, or ``±z`` for one sigmoid unit) of one class.

        Args:
            images: ``(N, H, W, C)`` float32 prepared images.
            class_index: A valid class index.
            batch_size: Images per forward pass.

        Returns:
            ``(N,)`` float32 scores.
        """
        logits = self.predict_logits(images, batch_size=batch_size)
        if self.binary:
            return logits[:, 0] if class_index == 1 else -logits[:, 0]
        return logits[:, class_index]

    def layer_gradients(
        self, x: np.ndarray, classes: np.ndarray, *, layer: str
    ) -> tuple[np.ndarray, np.ndarray, tf.Tensor, tf.Tensor, tf.Tensor]:
        """Feature maps of ``layer`` and the gradient of the class score with respect to them.

        Args:
            x: ``(B, H, W, C)`` float32 prepared images.
            classes: ``(B,)`` int class indices, ``-1`` for the predicted class.
            layer: A 4-D layer name (already validated).

        Returns:
            ``(classes (B,), probabilities (B, n_classes), feature maps
            (B, h, w, k), gradients (B, h, w, k), scores (B,))``; the last three
            stay TensorFlow tensors for the compiled CAM maths.
        """
        cls, probs, feats, grads, score = self._layer_grads_fn(layer)(
            tf.constant(x, tf.float32), tf.constant(classes, tf.int32)
        )
        return cls.numpy(), probs.numpy(), feats, grads, score

    def input_gradients(
        self, x: np.ndarray, classes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Gradient of the class score with respect to the input pixels.

        Args:
            x: ``(B, H, W, C)`` float32 prepared images.
            classes: ``(B,)`` int class indices, ``-1`` for the predicted class.

        Returns:
            ``(classes (B,), probabilities (B, n_classes), gradients (B, H, W, C))``.
        """
        cls, probs, grads = self._input_grads_fn()(
            tf.constant(x, tf.float32), tf.constant(classes, tf.int32)
        )
        return cls.numpy(), probs.numpy(), grads.numpy()

    def features(self, x: np.ndarray, *, layer: str, batch_size: int = DEFAULT_BATCH) -> np.ndarray:
        """Output of ``layer`` for prepared images ``(B, H, W, C)`` → ``(B, ...)`` float32."""
        fn = self._features_fn(layer)
        return np.concatenate(
            [fn(tf.constant(x[i : i + batch_size])).numpy() for i in range(0, len(x), batch_size)]
        )

    def explain(
        self,
        image: np.ndarray,
        *,
        method: str,
        class_index: int | None = None,
        layer: str | None = None,
        **options: Any,
    ):
        """Explain one image; see :func:`medviz.explain.explain`."""
        # The one call up the layers (engine → methods → cams/saliency → engine): a
        # convenience for callers holding an Explainer; imported here, never at the top.
        from medviz.explain.methods import run_method

        return run_method(
            self, image, method=method, class_index=class_index, layer=layer, **options
        )

    def heatmaps(
        self,
        images: np.ndarray,
        *,
        method: str,
        class_indices: np.ndarray | None = None,
        layer: str | None = None,
        batch_size: int = 32,
        **options: Any,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Heatmaps for a stack of images (batched for the gradient-CAM methods).

        Args:
            images: ``(N, H, W, C)`` raw pixels in ``[0, 255]``.
            method: A name from :data:`medviz.explain.METHODS`.
            class_indices: ``(N,)`` classes to explain (``None``: predicted).
            layer: CAM layer (default: :func:`default_cam_layer`).
            batch_size: Images per compiled call for batched methods.
            **options: Method options.

        Returns:
            ``(heatmaps (N, H, W) float32 in [0, 1], classes (N,), probabilities
            (N, n_classes))``.
        """
        # See explain(): the convenience call up into the method registry.
        from medviz.explain.methods import run_batch

        return run_batch(
            self,
            images,
            method=method,
            class_indices=class_indices,
            layer=layer,
            batch_size=batch_size,
            **options,
        )


_CACHE: OrderedDict[int, tuple[keras.Model, Explainer]] = OrderedDict()
_CACHE_SIZE = 4


def get_explainer(model: keras.Model | Explainer) -> Explainer:
    """Return the cached :class:`Explainer` of ``model`` (building it on first use).

    The cache holds the most recently used few models, so repeated calls of
    :func:`medviz.explain.explain` on one model reuse its compiled functions.
    An :class:`Explainer` passed in is returned as is.
    """
    if isinstance(model, Explainer):
        return model
    key = id(model)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is model:
        _CACHE.move_to_end(key)
        return hit[1]
    explainer = Explainer(model)
    _CACHE[key] = (model, explainer)
    _CACHE.move_to_end(key)
    while len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return explainer


def clear_cache() -> None:
    """Forget every cached :class:`Explainer` (frees their models and compiled functions)."""
    _CACHE.clear()
