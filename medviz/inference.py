"""Prediction helpers shared by the CLI, the app and the benchmarks.

A model's own preprocessing (input size, channels) is applied here, so any
dataset or uploaded image can be fed to any model: images are resized
square and converted between grey and RGB (ITU-R 601 luma) as the model
requires. Rescaling to [0, 1] or ImageNet statistics happens inside the model.
"""

from __future__ import annotations

import numpy as np

from medviz.errors import ModelError
from medviz.metrics import apply_temperature, as_class_probabilities, logits_from_probabilities

_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def match_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Convert a ``(N, H, W, C)`` uint8 batch to ``channels`` (1 or 3) channels."""
    have = images.shape[-1]
    if have == channels:
        return images
    if have == 3 and channels == 1:
        grey = images.astype(np.float32) @ _LUMA
        return np.clip(np.round(grey), 0, 255).astype(np.uint8)[..., None]
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    raise ModelError(f"cannot convert images with {have} channels to {channels}")


def model_input_spec(model) -> tuple[int, int, int]:
    """``(H, W, C)`` a model takes; raises ``ModelError`` for anything but one image input."""
    inputs = model.inputs
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        shapes = [tuple(i.shape) for i in inputs]
        raise ModelError(f"expected one image input of shape (None, H, W, C), got {shapes}")
    _, height, width, channels = inputs[0].shape
    if height is None or width is None or channels not in (1, 3):
        raise ModelError(
            f"model input must have a fixed size and 1 or 3 channels, got {inputs[0].shape}"
        )
    return int(height), int(width), int(channels)


def prepare_batch(images: np.ndarray, model) -> np.ndarray:
    """Resize and channel-convert a uint8 batch to what ``model`` takes, as float32."""
    from medviz.training import resize_images

    height, width, channels = model_input_spec(model)
    if height != width:
        raise ModelError(f"only square model inputs are supported, got {height}×{width}")
    images = match_channels(resize_images(images, height), channels)
    return images.astype(np.float32)


def predict_proba(model, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Class probabilities for a batch.

    Args:
        model: A Keras model with a softmax ``(None, K)`` or sigmoid
            ``(None, 1)`` output.
        images: ``(N, H, W, C)`` uint8 images of any size and 1 or 3 channels.
        batch_size: Images per forward pass.

    Returns:
        ``(N, K)`` float32 probabilities (``K = 2`` for a sigmoid model).
    """
    x = prepare_batch(images, model)
    out = []
    for start in range(0, len(x), batch_size):
        out.append(np.asarray(model(x[start : start + batch_size], training=False)))
    raw = np.concatenate(out) if out else np.zeros((0, model.outputs[0].shape[-1]), np.float32)
    return as_class_probabilities(raw).astype(np.float32)


def calibrated_probabilities(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """Apply a model card's calibration temperature to the model's own probabilities.

    The one place where "calibrated" is computed: the model store, the Classify
    and the Explain pages all call it, so one image shows one probability.

    Args:
        probabilities: ``(N, K)`` softmax output (or a ``(N,)``/``(N, 1)``
            sigmoid output) of the model.
        temperature: The card's temperature ``T > 0`` (1 changes nothing).

    Returns:
        ``(N, K)`` float probabilities ``softmax(log(p) / T)``; ``probabilities``
        itself as ``(N, K)`` when ``T == 1``.

    Raises:
        MedvizError: Not probabilities, or ``temperature`` is not positive.
    """
    if temperature == 1.0:
        return as_class_probabilities(probabilities)
    return apply_temperature(logits_from_probabilities(probabilities), temperature)


def penultimate_features(model, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Activations feeding the classification layer, ``(N, D)``, for OOD statistics."""
    import keras

    head = model.layers[-1]
    feature_model = keras.Model(model.input, head.input)
    x = prepare_batch(images, model)
    out = [
        np.asarray(feature_model(x[s : s + batch_size], training=False))
        for s in range(0, len(x), batch_size)
    ]
    return np.concatenate(out).reshape(len(x), -1)
