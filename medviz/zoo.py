"""The one registry of network architectures.

Every builder returns a **flat** functional ``keras.Model``: input
``(None, S, S, C)`` float32 raw pixel values in [0, 255], output a softmax over
the classes, layer ``"predictions"``. Preprocessing (rescaling, ImageNet
normalisation, grey→RGB) lives inside the model, so a saved model carries it
and every caller feeds the same raw pixels. Transfer models are built with
``input_tensor=`` so their conv layers are layers of the top model (nested
base models break Grad-CAM).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import keras
from keras import layers

from medviz import backbone
from medviz.errors import ModelError
from medviz.weights import WeightsStatus, resolve_weights

log = logging.getLogger(__name__)

DEFAULT_ARCH = "fast-cnn"
TransferMode = Literal["feature-extractor", "fine-tune"]


@dataclass(frozen=True)
class ArchSpec:
    """One architecture.

    Attributes:
        name: Registry key.
        title: Human title.
        description: What it is and where it comes from.
        min_size: Smallest input side the network accepts.
        default_size: Side it is usually trained at.
        transfer: Whether it is an ImageNet backbone.
        builder: ``builder(inputs, n_classes, **options) -> outputs`` on a
            Keras tensor of raw pixels.
    """

    name: str
    title: str
    description: str
    min_size: int
    default_size: int
    transfer: bool
    builder: Callable[..., keras.KerasTensor]


def _conv_bn(x: keras.KerasTensor, filters: int, kernel: int, name: str, **kw) -> keras.KerasTensor:
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv", **kw)(x)
    # momentum 0.9, not Keras' 0.99: small medical datasets give a few hundred steps, too few
    # for 0.99's moving statistics to converge, and inference then disagrees with training.
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _classifier(x: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    return layers.Dense(n_classes, activation="softmax", dtype="float32", name="predictions")(x)


def _scale(inputs: keras.KerasTensor) -> keras.KerasTensor:
    return layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)


def build_fast_cnn(inputs: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    """The CPU default: 4 conv-BN-ReLU layers (16-32-64-64), global max pooling.

    The last conv stays at ``S/4`` (16×16 at 64 px) so Grad-CAM has enough
    resolution to point at lesions a few pixels wide, and global *max* pooling
    keeps a small lesion from being averaged away by the background.
    """
    x = _scale(inputs)
    x = _conv_bn(x, 16, 3, "block1")
    x = layers.MaxPooling2D(name="block1_pool")(x)
    x = _conv_bn(x, 32, 3, "block2")
    x = layers.MaxPooling2D(name="block2_pool")(x)
    x = _conv_bn(x, 64, 3, "block3")
    x = _conv_bn(x, 64, 3, "block4")
    x = layers.GlobalMaxPooling2D(name="gmp")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    return _classifier(x, n_classes)


def build_simple_cnn(inputs: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    """The source work's 5-block CNN: (conv 3×3 + max-pool) ×5, dense 128-64-out."""
    x = _scale(inputs)
    for i, filters in enumerate((32, 32, 64, 64, 128), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{i}_conv")(x)
        x = layers.MaxPooling2D(padding="same", name=f"block{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(128, activation="relu", name="fc1")(x)
    x = layers.Dense(64, activation="relu", name="fc2")(x)
    return _classifier(x, n_classes)


def build_alexnet(inputs: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    """AlexNet-style: 11×11/4 → 5×5 → 3×3 ×3 convs with overlapping pooling.

    Dense layers are 512 wide instead of 4096 so the net trains on a CPU; the
    conv trunk keeps AlexNet's shape (96-256-384-384-256, BN for LRN).
    """
    x = _scale(inputs)
    x = _conv_bn(x, 96, 11, "conv1", strides=4)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(x)
    x = _conv_bn(x, 256, 5, "conv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2")(x)
    x = _conv_bn(x, 384, 3, "conv3")
    x = _conv_bn(x, 384, 3, "conv4")
    x = _conv_bn(x, 256, 3, "conv5")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool5")(x)
    x = layers.Flatten(name="flatten")(x)
    for i in (6, 7):
        x = layers.Dense(512, activation="relu", name=f"fc{i}")(x)
        x = layers.Dropout(0.5, name=f"dropout{i}")(x)
    return _classifier(x, n_classes)


def build_brain_cnn(inputs: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    """The source work's brain-MRI CNN: 3× (conv 7×7-BN-max-pool), 64/128/256, dropout 0.5."""
    x = _scale(inputs)
    for i, filters in enumerate((64, 128, 256), start=1):
        x = _conv_bn(x, filters, 7, f"block{i}")
        x = layers.MaxPooling2D(name=f"block{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.5, name="dropout")(x)
    return _classifier(x, n_classes)


def build_covid_cnn(inputs: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    """The source work's COVID-CT CNN: conv 16…256 with pooling, dense 500, dropout 0.3."""
    x = _scale(inputs)
    for i, filters in enumerate((16, 32, 64, 128, 256), start=1):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"block{i}_conv")(x)
        x = layers.MaxPooling2D(padding="same", name=f"block{i}_pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(500, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    return _classifier(x, n_classes)


def build_vgg_small(inputs: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    """Small VGG-style net: 3 blocks of 2× conv 3×3 (32/64/128) + pool, GAP head."""
    x = _scale(inputs)
    for i, filters in enumerate((32, 64, 128), start=1):
        x = _conv_bn(x, filters, 3, f"block{i}a")
        x = _conv_bn(x, filters, 3, f"block{i}b")
        if i < 3:
            x = layers.MaxPooling2D(name=f"block{i}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    return _classifier(x, n_classes)


def _residual_trunk(inputs: keras.KerasTensor, n_classes: int, *, stem_stride: int):
    x = _scale(inputs)
    x = _conv_bn(x, 32, 3, "stem", strides=stem_stride)
    for i, filters in enumerate((32, 64, 128, 256), start=1):
        shortcut = layers.Conv2D(filters, 1, strides=2, use_bias=False, name=f"stage{i}_proj")(x)
        shortcut = layers.BatchNormalization(momentum=0.9, name=f"stage{i}_proj_bn")(shortcut)
        y = _conv_bn(x, filters, 3, f"stage{i}a", strides=2)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"stage{i}b_conv")(y)
        y = layers.BatchNormalization(momentum=0.9, name=f"stage{i}b_bn")(y)
        x = layers.Add(name=f"stage{i}_add")([shortcut, y])
        x = layers.Activation("relu", name=f"stage{i}_out")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    return _classifier(x, n_classes)


def build_res_cnn(inputs: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    """A compact residual CNN (4 stages, 32-64-128-256) for higher-resolution images."""
    return _residual_trunk(inputs, n_classes, stem_stride=1)


def build_res_cnn_fast(inputs: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    """``res-cnn`` with a stride-2 stem: the same residual trunk at about a quarter of the cost.

    Measured on the 2-core CPU: ``res-cnn`` spends most of its time in the
    stem's full-resolution 32-channel feature map (memory-bound BN/ReLU), so
    striding the stem makes a 128 px input train several times faster than
    ``res-cnn`` at 96 px, with the same 1.2 M parameters. Layer names are
    ``res-cnn``'s, so saved models of either load and explain alike.
    """
    return _residual_trunk(inputs, n_classes, stem_stride=2)


def _down_conv_bn(x: keras.KerasTensor, filters: int, name: str) -> keras.KerasTensor:
    # Symmetric one-pixel padding + a valid stride-2 conv. Keras' "same" pads only the bottom and
    # right for stride 2, so every down-sampling shifts the grid against the image; five of them
    # in a row left res-cnn-fast's Grad-CAM pinned to the left border of brain MRIs.
    x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    x = layers.Conv2D(filters, 3, strides=2, use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def build_res_cnn_loc(inputs: keras.KerasTensor, n_classes: int) -> keras.KerasTensor:
    """A residual CNN whose last feature map keeps 1/16 of the input side, for Grad-CAM.

    Differences from ``res-cnn-fast``, each measured on real tumour boxes
    (``brain-tumor-boxes``, see ``docs/architecture.md``): symmetric padding
    in every stride-2 convolution, average-pool + 1×1 shortcuts (ResNet-D)
    instead of 1×1 stride-2 convolutions that read one pixel in four, and a
    last stage at stride 1 (8×8 at 128 px instead of 4×4).
    """
    x = _scale(inputs)
    x = _down_conv_bn(x, 32, "stem")
    for i, (filters, stride) in enumerate(((32, 2), (64, 2), (128, 2), (192, 1)), start=1):
        shortcut = x
        if stride == 2:
            shortcut = layers.AveragePooling2D(2, name=f"stage{i}_pool")(shortcut)
            y = _down_conv_bn(x, filters, f"stage{i}a")
        else:
            y = _conv_bn(x, filters, 3, f"stage{i}a")
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"stage{i}_proj")(shortcut)
        shortcut = layers.BatchNormalization(momentum=0.9, name=f"stage{i}_proj_bn")(shortcut)
        y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"stage{i}b_conv")(y)
        y = layers.BatchNormalization(momentum=0.9, name=f"stage{i}b_bn")(y)
        x = layers.Add(name=f"stage{i}_add")([shortcut, y])
        x = layers.Activation("relu", name=f"stage{i}_out")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(0.3, name="dropout")(x)
    return _classifier(x, n_classes)


# --- transfer learning -------------------------------------------------------------------------

_IMAGENET_MEAN_BGR = (103.939, 116.779, 123.68)


def _to_rgb(x: keras.KerasTensor) -> keras.KerasTensor:
    # Concatenate, not Lambda: a Lambda layer could not be loaded with safe_mode=True.
    if x.shape[-1] == 1:
        return layers.Concatenate(name="gray_to_rgb")([x, x, x])
    return x


def _status(arch: str, pretrained: bool | str | WeightsStatus | None) -> WeightsStatus:
    # Decided before any layer is built: missing weights raise instead of training from
    # random initialisation under a "pretrained" label (see medviz.weights).
    if isinstance(pretrained, WeightsStatus):
        return pretrained
    return resolve_weights(arch, pretrained)


def _freeze(backbone: keras.Model, mode: TransferMode, fine_tune_from: int) -> None:
    if mode not in ("feature-extractor", "fine-tune"):
        raise ModelError(f"transfer mode must be 'feature-extractor' or 'fine-tune', got {mode!r}")
    if fine_tune_from < 0:
        raise ModelError(f"fine_tune_from must be >= 0, got {fine_tune_from}")
    if mode == "feature-extractor":
        fine_tune_from = len(backbone.layers)
    for i, layer in enumerate(backbone.layers):
        if i < fine_tune_from and not isinstance(layer, layers.InputLayer):
            layer.trainable = False


def _transfer_builder(
    arch: str,
    factory_name: str,
    preprocess: Literal["keep255", "tf", "caffe"],
) -> Callable[..., keras.KerasTensor]:
    def build(
        inputs: keras.KerasTensor,
        n_classes: int,
        *,
        pretrained: bool | str | WeightsStatus | None = True,
        mode: TransferMode = "fine-tune",
        fine_tune_from: int = 0,
        dropout: float = 0.3,
    ) -> keras.KerasTensor:
        status = _status(arch, pretrained)
        factory = getattr(keras.applications, factory_name)
        x = _to_rgb(inputs)
        if preprocess == "tf":  # MobileNetV2, InceptionV3: [-1, 1]
            x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="imagenet_scale")(x)
        elif preprocess == "caffe":  # ResNet50: BGR mean subtraction
            x = layers.Normalization(
                mean=list(_IMAGENET_MEAN_BGR[::-1]), variance=[1.0, 1.0, 1.0], name="imagenet_norm"
            )(_to_rgb(inputs))
        # EfficientNet rescales internally and expects [0, 255]. A file path, not
        # weights="imagenet": Keras would re-download a cached file whose hash it cannot match.
        backbone = factory(include_top=False, weights=status.path, input_tensor=x)
        _freeze(backbone, mode, fine_tune_from)
        y = layers.GlobalAveragePooling2D(name="gap")(backbone.output)
        y = layers.Dropout(dropout, name="dropout")(y)
        return _classifier(y, n_classes)

    return build


def build_medviz_backbone(
    inputs: keras.KerasTensor,
    n_classes: int,
    *,
    pretrained: bool | str | WeightsStatus | None = True,
    mode: TransferMode = "fine-tune",
    fine_tune_from: int = 0,
    dropout: float = 0.3,
) -> keras.KerasTensor:
    """The MedViz medical backbone (:mod:`medviz.backbone`) with a GAP + dense head.

    Options as the ImageNet backbones: ``pretrained`` (``True``/``"medviz"``: the
    shipped weights; ``"none"``: random; a path: another backbone file), ``mode``
    and ``fine_tune_from`` (index in the trunk's layers below which layers stay frozen).
    """
    status = _status("medviz-backbone", pretrained)
    trunk = keras.Model(inputs, backbone.build_trunk(inputs), name="medviz_trunk")
    if status.path is not None:
        backbone.load_backbone_weights(trunk, status.path)
    _freeze(trunk, mode, fine_tune_from)
    y = layers.GlobalAveragePooling2D(name="gap")(trunk.output)
    y = layers.Dropout(dropout, name="dropout")(y)
    return _classifier(y, n_classes)


ARCHITECTURES: dict[str, ArchSpec] = {
    spec.name: spec
    for spec in (
        ArchSpec(
            "fast-cnn",
            "Fast CNN (CPU default)",
            "4 conv-BN-ReLU layers (16-32-64-64), 2 poolings, global average pooling; "
            "trains in seconds on a laptop CPU.",
            16,
            64,
            False,
            build_fast_cnn,
        ),
        ArchSpec(
            "simple-cnn",
            "Simple 5-block CNN",
            "The source work's CNN: (conv 3×3 + max-pool) ×5, dense 128-64-out.",
            16,
            128,
            False,
            build_simple_cnn,
        ),
        ArchSpec(
            "alexnet",
            "AlexNet-style",
            "AlexNet's conv trunk (11×11/4, 5×5, 3×3×3) with BN and 512-wide dense layers.",
            64,
            224,
            False,
            build_alexnet,
        ),
        ArchSpec(
            "brain-cnn",
            "Brain-MRI CNN",
            "3× (conv 7×7-BN-max-pool) with 64/128/256 filters, dropout 0.5.",
            32,
            128,
            False,
            build_brain_cnn,
        ),
        ArchSpec(
            "covid-cnn",
            "COVID-CT CNN",
            "Conv 16-32-64-128-256 with pooling, dense 500, dropout 0.3.",
            32,
            128,
            False,
            build_covid_cnn,
        ),
        ArchSpec(
            "vgg-small",
            "Small VGG-style",
            "3 blocks of 2× conv 3×3 (32/64/128) with BN, global average pooling.",
            16,
            64,
            False,
            build_vgg_small,
        ),
        ArchSpec(
            "res-cnn",
            "Compact residual CNN",
            "Stem + 4 residual stages (32-64-128-256, stride 2), global average pooling.",
            32,
            128,
            False,
            build_res_cnn,
        ),
        ArchSpec(
            "res-cnn-fast",
            "Fast residual CNN (stride-2 stem)",
            "res-cnn with a stride-2 stem: 4 residual stages (32-64-128-256), global average "
            "pooling; 128 px inputs at the cost of res-cnn at 64 px. The shipped X-ray/MRI nets.",
            32,
            128,
            False,
            build_res_cnn_fast,
        ),
        ArchSpec(
            "res-cnn-loc",
            "Residual CNN for localisation",
            "Stride-2 stem + 4 residual stages (32-64-128-192), the last at stride 1, symmetric "
            "padding and average-pool shortcuts: an 8×8 Grad-CAM at 128 px. The shipped MRI net.",
            32,
            128,
            False,
            build_res_cnn_loc,
        ),
        ArchSpec(
            "mobilenetv2",
            "MobileNetV2 (transfer)",
            "ImageNet MobileNetV2 backbone, flat, with a GAP + dense head; the CPU-friendly one.",
            32,
            128,
            True,
            _transfer_builder("mobilenetv2", "MobileNetV2", "tf"),
        ),
        ArchSpec(
            "efficientnetb0",
            "EfficientNetB0 (transfer)",
            "ImageNet EfficientNetB0 backbone (rescales internally), flat, GAP + dense head.",
            32,
            224,
            True,
            _transfer_builder("efficientnetb0", "EfficientNetB0", "keep255"),
        ),
        ArchSpec(
            "resnet50",
            "ResNet50 (transfer)",
            "ImageNet ResNet50 backbone (caffe normalisation inside), flat, GAP + dense head.",
            32,
            224,
            True,
            _transfer_builder("resnet50", "ResNet50", "caffe"),
        ),
        ArchSpec(
            "inceptionv3",
            "InceptionV3 (transfer)",
            "ImageNet InceptionV3 backbone, flat, GAP + dense head (chest-vs-abdomen tutorial).",
            75,
            299,
            True,
            _transfer_builder("inceptionv3", "InceptionV3", "tf"),
        ),
        ArchSpec(
            "medviz-backbone",
            "MedViz medical backbone (transfer, offline)",
            "Compact grey-input residual CNN (0.9 M parameters) pretrained by MedViz on "
            "paediatric chest X-rays, PneumoniaMNIST, brain MRI and synthetic mammograms; "
            "ships in models/medviz-backbone-v1, no download. GAP + dense head.",
            32,
            64,
            True,
            build_medviz_backbone,
        ),
    )
}


def get_arch(name: str) -> ArchSpec:
    """Return the registry entry called ``name``.

    Raises:
        ModelError: ``name`` is not registered.
    """
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ModelError(
            f"unknown architecture {name!r}; choose one of {sorted(ARCHITECTURES)}"
        ) from None


def build_model(
    name: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    *,
    seed: int | None = None,
    **options: object,
) -> keras.Model:
    """Build a flat model of architecture ``name``.

    Args:
        name: A key of :data:`ARCHITECTURES`.
        input_shape: ``(S, S, C)`` with ``C`` 1 or 3.
        n_classes: Number of classes (≥ 2).
        seed: Seeds Keras' initialisers, for repeatable runs.
        **options: Builder options (transfer models: ``pretrained``, ``mode``,
            ``fine_tune_from``, ``dropout``).

    Returns:
        An uncompiled ``keras.Model`` named after the architecture.

    Raises:
        ModelError: Unknown name, too small an input, bad channels or classes.
    """
    spec = get_arch(name)
    height, width, channels = input_shape
    if channels not in (1, 3):
        raise ModelError(f"input channels must be 1 or 3, got {channels}")
    if min(height, width) < spec.min_size:
        raise ModelError(
            f"{name} needs inputs of at least {spec.min_size}×{spec.min_size}, got {height}×{width}"
        )
    if n_classes < 2:
        raise ModelError(f"n_classes must be at least 2, got {n_classes}")
    if options and not spec.transfer:
        raise ModelError(f"{name} takes no options, got {sorted(options)}")
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inputs = keras.Input(shape=input_shape, name="image")
    outputs = spec.builder(inputs, n_classes, **options)
    return keras.Model(inputs, outputs, name=name)


@dataclass(frozen=True)
class LayerRow:
    """One row of a model summary."""

    name: str
    kind: str
    output_shape: tuple[int | None, ...]
    params: int
    trainable: bool


def layer_table(model: keras.Model) -> list[LayerRow]:
    """Per-layer summary: name, class, output shape, parameter count, trainability."""
    rows = []
    for layer in model.layers:
        shape = getattr(layer, "output", None)
        rows.append(
            LayerRow(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape=tuple(shape.shape) if shape is not None else (),
                params=int(layer.count_params()) if layer.built else 0,
                trainable=bool(layer.trainable),
            )
        )
    return rows


def parameter_counts(model: keras.Model) -> tuple[int, int]:
    """``(trainable, total)`` parameter counts."""
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    total = sum(int(keras.ops.size(w)) for w in model.weights)
    return trainable, total
