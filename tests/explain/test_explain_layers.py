"""Layer discovery: our own code, no tf-keras-vis conv search."""

from __future__ import annotations

import keras
import pytest

from medviz.errors import ModelError
from medviz.explain import conv_layers, default_cam_layer, explain, layer_names
from medviz.explain.layers import resolve_cam_layer


def test_conv_layers_are_the_4d_layers_in_order(tiny_cnn):
    assert conv_layers(tiny_cnn) == ["rescale", "conv1", "pool1", "conv2"]
    assert layer_names(tiny_cnn)[0] == "image"


def test_default_cam_layer_is_last_spatial_layer(tiny_cnn, sigmoid_cnn):
    assert default_cam_layer(tiny_cnn) == "conv2"
    assert default_cam_layer(sigmoid_cnn) == "conv2"


def test_default_cam_layer_skips_1x1_maps_of_transfer_models(transfer_model):
    # At 32×32 MobileNetV2's last blocks are 1×1: a CAM there would be constant.
    assert transfer_model.get_layer("out_relu").output.shape[1:3] == (1, 1)
    name = default_cam_layer(transfer_model)
    h, w = transfer_model.get_layer(name).output.shape[1:3]
    assert h * w > 1
    later = conv_layers(transfer_model)[conv_layers(transfer_model).index(name) + 1 :]

    def collapsed(n: str) -> bool:
        layer = transfer_model.get_layer(n)
        h, w = layer.output.shape[1:3]
        return h * w == 1 or isinstance(layer, keras.layers.ZeroPadding2D)

    assert later and all(collapsed(n) for n in later)


def test_unknown_layer_error_lists_available_layers(tiny_cnn, images):
    with pytest.raises(ModelError, match=r"no layer 'nope'.*conv1"):
        explain(tiny_cnn, images["tiny"], method="gradcam", layer="nope")


def test_non_spatial_layer_is_rejected_with_the_usable_ones(tiny_cnn):
    with pytest.raises(ModelError, match=r"gap.*layers with spatial output: rescale, conv1"):
        resolve_cam_layer(tiny_cnn, "gap")


def test_nested_model_is_rejected():
    inner_in = keras.Input((16, 16, 1))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 3)(inner_in), name="backbone")
    inp = keras.Input((16, 16, 1))
    x = keras.layers.GlobalAveragePooling2D()(inner(inp))
    outer = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    with pytest.raises(ModelError, match=r"nested.*backbone.*input_tensor"):
        conv_layers(outer)


def test_model_without_spatial_layer_has_no_cam_layer():
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inp)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax")(x))
    with pytest.raises(ModelError, match="no layer with a spatial output"):
        default_cam_layer(model)
