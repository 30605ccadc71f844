"""Finding the layers of a model that can be explained.

Everything here is our own code on purpose: tf-keras-vis 0.8.7 looks for
``Conv`` subclasses through a private Keras import and fails on Keras 3, and
"the last conv layer" is the wrong choice anyway for transfer models whose
last convolution has a 1×1 output at small input sizes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medviz.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover - typing only
    import keras


def check_flat(model: keras.Model) -> None:
    """Raise if any layer of ``model`` is itself a model.

    Gradients and intermediate outputs are taken from the layers of the top
    model, so a nested ``keras.Model`` (e.g. an application added as one
    layer) would hide its convolutions.

    Raises:
        ModelError: A layer is a nested model.
    """
    import keras

    nested = [layer.name for layer in model.layers if isinstance(layer, keras.Model)]
    if nested:
        raise ModelError(
            f"model {model.name!r} contains nested model layer(s) {nested}; MedViz explains "
            "flat models only: build transfer models with input_tensor= so that every layer "
            "of the backbone is a layer of the top model"
        )


def layer_names(model: keras.Model) -> list[str]:
    """Names of every layer of ``model`` in graph order (input layers included)."""
    return [layer.name for layer in model.layers]


def _output_shape(layer: keras.layers.Layer) -> tuple | None:
    try:
        output = layer.output
    except (AttributeError, ValueError):
        # A layer that was never called (or was called several times) has no
        # single symbolic output; it cannot be explained either way.
        return None
    if isinstance(output, (list, tuple)):
        return None
    return tuple(output.shape)


def conv_layers(model: keras.Model) -> list[str]:
    """Names of the layers whose output is a 4-D ``(None, h, w, c)`` feature map.

    Input layers are left out. The list is in graph order, so the last entry
    is the deepest spatial layer.

    Raises:
        ModelError: The model contains a nested model.
    """
    import keras

    check_flat(model)
    names = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = _output_shape(layer)
        if shape is not None and len(shape) == 4:
            names.append(layer.name)
    return names


def spatial_size(model: keras.Model, name: str) -> tuple[int | None, int | None]:
    """``(h, w)`` of the output of layer ``name`` (``None`` for a dynamic size)."""
    shape = _output_shape(get_layer(model, name))
    if shape is None or len(shape) != 4:
        raise ModelError(f"layer {name!r} has no 4-D output (shape {shape})")
    return shape[1], shape[2]


def default_cam_layer(model: keras.Model) -> str:
    """The last layer whose output has a spatial extent larger than 1×1.

    A 1×1 map (e.g. MobileNetV2's ``out_relu`` at 32×32 input) carries no
    location, so its CAM would be a constant; the layer just before the
    spatial size collapses is the useful one.

    Raises:
        ModelError: The model has no 4-D layer with more than one position.
    """
    import keras

    candidates = conv_layers(model)
    # Padding/cropping layers shift the grid against the image (MobileNetV2's
    # block_13_pad is a padded copy of a 2×2 map); the map they wrap is used.
    skip = (keras.layers.ZeroPadding2D, keras.layers.Cropping2D)
    for name in reversed(candidates):
        if isinstance(get_layer(model, name), skip):
            continue
        h, w = spatial_size(model, name)
        # A dynamic (None) size comes from a fully convolutional model; at any
        # real input it is larger than 1×1 before the global pooling.
        if h is None or w is None or h * w > 1:
            return name
    raise ModelError(
        f"model {model.name!r} has no layer with a spatial output larger than 1×1 "
        f"(4-D layers: {candidates or 'none'}); CAM methods need a convolutional layer"
    )


# Feature maps smaller than this show blocks rather than shapes.
MIN_FEATURE_MAP = 8


def default_feature_layer(model: keras.Model, *, min_size: int = MIN_FEATURE_MAP) -> str:
    """The deepest layer whose feature maps are at least ``min_size`` × ``min_size``.

    The CAM layer is often the last one before global pooling, 4×4 at 128 px
    for the residual nets: sixteen pixels per map show nothing a person can
    read. The deepest map of at least 8×8 still shows shapes and is as close
    to the decision as possible. Padding and cropping layers are skipped.

    Args:
        model: A flat model.
        min_size: Smallest acceptable height and width of a map.

    Returns:
        A name from :func:`conv_layers`; when no map is that large, the one with
        the largest maps (the deepest of those).

    Raises:
        ModelError: The model has no 4-D layer.
    """
    import keras

    candidates = [
        name
        for name in conv_layers(model)
        if not isinstance(
            get_layer(model, name), (keras.layers.ZeroPadding2D, keras.layers.Cropping2D)
        )
    ]
    if not candidates:
        raise ModelError(f"model {model.name!r} has no layer with a (None, h, w, c) output")

    def side(name: str) -> float:
        h, w = spatial_size(model, name)
        # A dynamic size comes from a fully convolutional model: large at any real input.
        return float("inf") if h is None or w is None else float(min(h, w))

    for name in reversed(candidates):
        if side(name) >= min_size:
            return name
    largest = max(side(name) for name in candidates)
    return next(name for name in reversed(candidates) if side(name) == largest)


def get_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    """Return layer ``name`` of ``model``.

    Raises:
        ModelError: No such layer; the message lists the available ones.
    """
    for layer in model.layers:
        if layer.name == name:
            return layer
    raise ModelError(
        f"model {model.name!r} has no layer {name!r}; available layers: "
        f"{', '.join(layer_names(model))}"
    )


def resolve_cam_layer(model: keras.Model, layer: str | None) -> str:
    """Return ``layer`` checked to be a 4-D layer, or the default CAM layer when ``None``.

    Raises:
        ModelError: ``layer`` does not exist or has no spatial output; the
            message names the layers that can be used.
    """
    if layer is None:
        return default_cam_layer(model)
    usable = conv_layers(model)
    if layer in usable:
        return layer
    get_layer(model, layer)  # raises the "no such layer" error first
    raise ModelError(
        f"layer {layer!r} of model {model.name!r} has output shape "
        f"{_output_shape(get_layer(model, layer))}, not a (None, h, w, c) feature map; "
        f"layers with spatial output: {', '.join(usable)}"
    )


def first_kernel_layer(model: keras.Model) -> str:
    """Name of the first layer with a 4-D ``kernel`` (a convolution).

    Raises:
        ModelError: The model has no convolution.
    """
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is not None and len(kernel.shape) == 4:
            return layer.name
    raise ModelError(f"model {model.name!r} has no convolution layer with a 4-D kernel")
