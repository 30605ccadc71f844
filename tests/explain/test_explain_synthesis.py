"""Activation maximisation and deep dream (step counts from $MEDVIZ_TEST_STEPS)."""

from __future__ import annotations

import numpy as np
import pytest

from medviz.errors import ModelError
from medviz.explain import Regularizers, activation_maximization, deep_dream


def test_activation_max_keeps_one_channel_and_separates_classes(trained_cnn):
    calls = []
    result = activation_maximization(
        trained_cnn, class_index=[0, 1], steps=40, on_step=lambda *a: calls.append(a)
    )
    assert result.images.shape == (2, 64, 64, 1) and result.images.dtype == np.uint8
    assert result.targets == ("class 0", "class 1")
    assert [c[0] for c in calls] == list(range(1, 41)) and all(c[1] == 40 for c in calls)
    assert result.losses.shape == (40,) and result.losses[-1] < result.losses[0]
    a, b = result.images.astype(float)
    assert np.abs(a - b).mean() > 5.0  # visibly different
    assert a.std() > 2.0 and b.std() > 2.0  # not flat grey
    # Each image is classified as the class it was made for.
    assert result.probabilities[0, 0] > 0.5 and result.probabilities[1, 1] > 0.5


def test_activation_max_of_a_filter_on_every_model(models):
    for kind, model in models.items():
        layer = "conv1" if kind != "transfer" else "Conv1_relu"
        result = activation_maximization(model, layer=layer, filter_index=[0, 3])
        c = model.inputs[0].shape[-1]
        assert result.images.shape == (2, *model.inputs[0].shape[1:3], c)
        assert result.targets == (f"{layer}/0", f"{layer}/3")
        assert len(result.losses) == 12  # MEDVIZ_TEST_STEPS


def test_activation_max_sigmoid_classes(sigmoid_cnn):
    result = activation_maximization(sigmoid_cnn, class_index=[0, 1], steps=20)
    assert result.images.shape == (2, 32, 32, 1)
    # Class 0 maximises -z, class 1 maximises +z.
    assert result.probabilities[0, 0] > result.probabilities[1, 0]


def test_activation_max_errors(tiny_cnn):
    with pytest.raises(ModelError, match="either class_index"):
        activation_maximization(tiny_cnn)
    with pytest.raises(ModelError, match=r"filter_index 99 out of range.*0..7"):
        activation_maximization(tiny_cnn, layer="conv1", filter_index=99)
    with pytest.raises(ModelError, match="filter_index needs a layer"):
        activation_maximization(tiny_cnn, filter_index=0)
    with pytest.raises(ModelError, match="bad regularisers"):
        Regularizers(jitter=0.9)


def test_deep_dream_returns_frames(trained_cnn, microcalc):
    image = microcalc.split("test").images[0]
    steps = []
    dream = deep_dream(
        trained_cnn, image, steps_per_octave=8, frame_every=4, on_step=lambda *a: steps.append(a)
    )
    assert dream.image.shape == (64, 64, 1) and dream.image.dtype == np.uint8
    assert dream.frames.shape == (1 + 3 * 8 // 4, 64, 64, 1) and dream.frames.dtype == np.uint8
    np.testing.assert_array_equal(dream.frames[0], image)
    np.testing.assert_array_equal(dream.frames[-1], dream.image)
    assert dream.layer == "conv3" and len(steps) == 24
    assert np.abs(dream.image.astype(float) - image).mean() > 1.0
    assert dream.losses[-1] > dream.losses[0]  # the layer's activations were amplified
    assert dream.probabilities.shape == (2, 2)


def test_deep_dream_variants(models, images):
    dream = deep_dream(models["transfer"], images["transfer"], layer="Conv1_relu", filter_index=2)
    assert dream.image.shape == (32, 32, 3) and dream.filter_index == 2
    by_class = deep_dream(models["sigmoid"], images["sigmoid"], class_index=0, octaves=1)
    assert by_class.layer == "class 0" and len(by_class.frames) == 1 + 12 // 4
    with pytest.raises(ModelError, match="not both"):
        deep_dream(models["tiny"], images["tiny"], class_index=0, layer="conv1")
    with pytest.raises(ModelError, match="octave_scale"):
        deep_dream(models["tiny"], images["tiny"], octave_scale=1.0)
