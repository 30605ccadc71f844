"""default_feature_layer: the deepest feature map that is still readable (≥ 8×8)."""

from __future__ import annotations

import pytest

from medviz.errors import ModelError


def _model(size: int):
    import keras

    inputs = keras.Input((size, size, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", name="c16")(inputs)
    x = keras.layers.MaxPooling2D(name="p8")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c8")(x)
    x = keras.layers.ZeroPadding2D(name="pad")(x)
    x = keras.layers.MaxPooling2D(name="p5")(x)
    x = keras.layers.Conv2D(4, 3, padding="same", name="c5")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def test_the_deepest_map_of_at_least_8x8_and_never_padding():
    from medviz.explain.layers import default_cam_layer, default_feature_layer

    model = _model(16)  # c16 16×16, p8/c8 8×8, pad 10×10 (skipped), p5/c5 5×5
    assert default_cam_layer(model) == "c5"
    assert default_feature_layer(model) == "c8"
    assert default_feature_layer(model, min_size=5) == "c5"


def test_without_a_large_enough_map_the_largest_one():
    from medviz.explain.layers import default_feature_layer

    assert default_feature_layer(_model(8)) == "c16", "8×8 at the first layer only"
    assert default_feature_layer(_model(8), min_size=64) == "c16"


def test_a_model_without_feature_maps_is_an_error():
    import keras

    from medviz.explain.layers import default_feature_layer

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ModelError, match="no layer"):
        default_feature_layer(model)
