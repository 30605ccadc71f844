"""The MedViz medical backbone: a compact grey-input CNN pretrained on MedViz's own data.

ImageNet weights are ~10-100 MB downloads that an offline laptop does not have.
This backbone ships in the repository (``models/medviz-backbone-v1/``, under
4 MB) and was pretrained by ``python -m tools.pretrain_backbone`` on the
permissively licensed data of ``../shared/datasets`` (paediatric chest X-ray,
PneumoniaMNIST, brain MRI) plus the embedded synthetic mammogram generator,
one classification head per dataset (see the folder's README for the recipe).

The trunk is ``res-cnn-loc``-shaped (symmetric-padded stride-2 convolutions,
average-pool shortcuts, last stage at stride 1) so its last feature map keeps
1/16 of the input side for Grad-CAM, and it ends in a feature map, not a
pooled vector: global pooling in the head makes it work at any side from 32 to
224 px. Its layer names all start with ``mv_`` so that pretrained weights are
copied into a classifier by name, whatever the classifier adds around the trunk.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
from keras import layers

from medviz import locations
from medviz.errors import ModelError

BACKBONE_NAME = "medviz-backbone-v1"
WEIGHTS_FILE = "backbone.weights.h5"
#: Layer of the trunk's last feature map (the one Grad-CAM uses).
FEATURE_LAYER = "mv_stage4_out"
_STAGES = ((32, 2), (64, 2), (128, 2), (192, 1))


def backbone_dir() -> Path:
    """Folder of the shipped backbone: ``<models_dir>/medviz-backbone-v1``."""
    return locations.models_dir() / BACKBONE_NAME


def backbone_weights_path() -> Path:
    """Where the shipped backbone's weights file is (it may not exist)."""
    return backbone_dir() / WEIGHTS_FILE


def sha256_of(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _conv_bn(x: keras.KerasTensor, filters: int, name: str, *, strides: int = 1):
    if strides == 2:
        # Symmetric padding + valid stride-2 conv: Keras' "same" pads bottom/right only and
        # shifts the grid at every down-sampling (measured as border-pinned Grad-CAMs in zoo).
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
        x = layers.Conv2D(filters, 3, strides=2, use_bias=False, name=f"{name}_conv")(x)
    else:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def to_gray(inputs: keras.KerasTensor) -> keras.KerasTensor:
    """Grey view of raw pixels ``(None, S, S, C)``: as is for C=1, the channel mean for C=3.

    The mean is a fixed, non-trainable 1×1 convolution (a ``Lambda`` layer
    would not load with ``safe_mode=True``).
    """
    channels = inputs.shape[-1]
    if channels == 1:
        return inputs
    if channels != 3:
        raise ModelError(f"the MedViz backbone takes 1 or 3 channels, got {channels}")
    mean = layers.Conv2D(
        1,
        1,
        use_bias=False,
        kernel_initializer=keras.initializers.Constant(1.0 / 3.0),
        trainable=False,
        name="rgb_to_gray",
    )
    return mean(inputs)


def build_trunk(inputs: keras.KerasTensor) -> keras.KerasTensor:
    """The backbone's layers on raw pixels; returns its last feature map.

    Args:
        inputs: ``(None, S, S, C)`` raw pixel values in [0, 255], C 1 or 3, S ≥ 32.

    Returns:
        The ``(None, S/16, S/16, 192)`` feature map (layer :data:`FEATURE_LAYER`).
    """
    x = layers.Rescaling(1.0 / 255.0, name="mv_rescale")(to_gray(inputs))
    x = _conv_bn(x, 32, "mv_stem", strides=2)
    for i, (filters, stride) in enumerate(_STAGES, start=1):
        shortcut = x
        if stride == 2:
            shortcut = layers.AveragePooling2D(2, name=f"mv_stage{i}_pool")(shortcut)
        y = _conv_bn(x, filters, f"mv_stage{i}a", strides=stride)
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"mv_stage{i}_proj")(shortcut)
        shortcut = layers.BatchNormalization(momentum=0.9, name=f"mv_stage{i}_proj_bn")(shortcut)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"mv_stage{i}b_conv")(y)
        y = layers.BatchNormalization(momentum=0.9, name=f"mv_stage{i}b_bn")(y)
        x = layers.Add(name=f"mv_stage{i}_add")([shortcut, y])
        x = layers.Activation("relu", name=f"mv_stage{i}_out")(x)
    return x


def build_backbone_model(image_size: int = 64) -> keras.Model:
    """The trunk alone as a model, ``(None, S, S, 1) -> (None, S/16, S/16, 192)``.

    This is the model whose weights the backbone file holds.
    """
    inputs = keras.Input(shape=(image_size, image_size, 1), name="image")
    return keras.Model(inputs, build_trunk(inputs), name=BACKBONE_NAME)


def trunk_layer_names(model: keras.Model) -> list[str]:
    """Names of ``model``'s backbone layers (``mv_*``), in build order."""
    return [layer.name for layer in model.layers if layer.name.startswith("mv_")]


def load_backbone_weights(model: keras.Model, path: str | Path) -> int:
    """Copy backbone weights from the file at ``path`` into ``model``'s ``mv_*`` layers.

    Args:
        model: Any model built on :func:`build_trunk` (a classifier, any input side).
        path: A ``*.weights.h5`` file of :func:`build_backbone_model`.

    Returns:
        The number of layers whose weights were set.

    Raises:
        ModelError: The file is not a MedViz backbone (missing or mismatching layers).
    """
    reference = build_backbone_model(64)
    try:
        reference.load_weights(str(path))
    except (ValueError, OSError, KeyError) as err:
        raise ModelError(
            f"{path} is not a {BACKBONE_NAME} weights file ({type(err).__name__}: {err})"
        ) from None
    copied = 0
    for layer in reference.layers:
        weights = layer.get_weights()
        if not weights:
            continue
        try:
            target = model.get_layer(layer.name)
        except ValueError:
            raise ModelError(
                f"model {model.name!r} has no backbone layer {layer.name!r}; "
                f"build it with medviz.backbone.build_trunk"
            ) from None
        target.set_weights(weights)
        copied += 1
    return copied
