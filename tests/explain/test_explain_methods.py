"""Every heatmap method on a tiny CNN, a flat transfer model and a single-sigmoid model."""

from __future__ import annotations

import numpy as np
import pytest

from bench.reference_cam import reference_cam
from medviz.errors import DataError, ModelError
from medviz.explain import (
    METHODS,
    Explainer,
    Explanation,
    explain,
    get_explainer,
    gradient_cams,
    method_options,
    spearman,
)

KINDS = ("tiny", "transfer", "sigmoid")
# Keep the expensive methods cheap on the 157-layer transfer model.
FAST = {
    "smoothgrad": {"samples": 4},
    "integrated-gradients": {"steps": 8},
    "occlusion": {"patch": 8, "stride": 8},
    "scorecam": {"max_n": None},
}


def _options(method: str, kind: str) -> dict:
    options = dict(FAST.get(method, {}))
    if method == "scorecam" and kind == "transfer":
        options["max_n"] = 24
    return {k: v for k, v in options.items() if v is not None}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_gives_a_unit_heatmap(models, images, kind, method):
    model, image = models[kind], images[kind]
    result = explain(model, image, method=method, **_options(method, kind))
    assert isinstance(result, Explanation)
    assert result.heatmap.shape == image.shape[:2]
    assert result.heatmap.dtype == np.float32
    assert result.heatmap.min() >= 0.0 and result.heatmap.max() <= 1.0
    assert np.isfinite(result.heatmap).all()
    assert result.heatmap.max() == pytest.approx(1.0)  # not a constant map, even untrained
    # Default class: the predicted one (ties of an untrained model aside).
    assert result.probabilities[result.class_index] >= result.probabilities.max() - 1e-6
    n_classes = 2 if kind == "sigmoid" else model.outputs[0].shape[-1]
    assert result.probabilities.shape == (n_classes,)
    assert result.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert (result.layer is not None) == METHODS[method].needs_layer
    assert result.seconds > 0


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "scorecam-fast", "saliency"])
def test_every_class_can_be_explained(models, images, kind, method):
    model, image = models[kind], images[kind]
    n_classes = get_explainer(model).n_classes
    maps = [explain(model, image, method=method, class_index=c) for c in range(n_classes)]
    assert [m.class_index for m in maps] == list(range(n_classes))
    for m in maps:
        assert m.heatmap.shape == image.shape[:2]


@pytest.mark.parametrize("layer", ["conv1", "pool1", "conv2"])
def test_any_spatial_layer(tiny_cnn, images, layer):
    result = explain(tiny_cnn, images["tiny"], method="gradcam++", layer=layer)
    assert result.layer == layer
    assert result.heatmap.shape == (32, 32)


def test_probabilities_match_the_model(models, images):
    for kind in KINDS:
        model, image = models[kind], images[kind]
        expected = np.asarray(model(image[None].astype(np.float32)))[0]
        probs = explain(model, image, method="gradcam").probabilities
        if kind == "sigmoid":
            expected = np.array([1.0 - expected[0], expected[0]])
        np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_sigmoid_negative_class_uses_the_negated_score(sigmoid_cnn, images):
    explainer = get_explainer(sigmoid_cnn)
    assert explainer.binary and explainer.n_classes == 2 and explainer.head == "sigmoid"
    x = explainer.prepare(images["sigmoid"])
    logit = explainer.predict_logits(x)[0, 0]
    _, _, _, grads1, score1 = explainer.layer_gradients(x, np.array([1]), layer="conv2")
    _, _, _, grads0, score0 = explainer.layer_gradients(x, np.array([0]), layer="conv2")
    assert float(score1[0]) == pytest.approx(float(logit), rel=1e-5)
    assert float(score0[0]) == pytest.approx(-float(logit), rel=1e-5)
    np.testing.assert_allclose(grads0.numpy(), -grads1.numpy(), atol=1e-6)
    # Input-gradient methods see the sign too.
    _, _, g1 = explainer.input_gradients(x, np.array([1]))
    _, _, g0 = explainer.input_gradients(x, np.array([0]))
    np.testing.assert_allclose(g0, -g1, atol=1e-6)


def test_user_model_is_untouched_and_weights_are_shared(tiny_cnn, images):
    # The logits come from the user's own Dense weights: no clone, no swap.
    explainer = get_explainer(tiny_cnn)
    assert not explainer.uses_clone
    assert tiny_cnn.get_layer("predictions").activation.__name__ == "softmax"
    before = explain(tiny_cnn, images["tiny"], method="gradcam", class_index=1).heatmap
    dense = tiny_cnn.get_layer("predictions")
    kernel = dense.kernel.numpy()
    try:
        dense.kernel.assign(-kernel)  # "further training" changes the weights in place
        after = explain(tiny_cnn, images["tiny"], method="gradcam", class_index=1).heatmap
        assert not np.allclose(before, after)
    finally:
        dense.kernel.assign(kernel)


@pytest.mark.parametrize("kind", ["tiny", "sigmoid"])
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_matches_tf_keras_vis(models, images, kind, method):
    model, image = models[kind], images[kind]
    # Raw CAMs are proportional, not equal: the sigmoid reference explains the
    # two-logit view [-z/2, z/2], and our Grad-CAM++ drops the exp(score)
    # factor (it overflows for large logits and cancels in the normalisation).
    for cls in (0, 1):
        ours, _, _ = gradient_cams(
            model,
            image[None],
            method=method,
            class_indices=[cls],
            low_resolution=True,
            normalize=False,
        )
        theirs = reference_cam(
            model, image, method=method, class_index=cls, expand=False, normalize=False
        )
        a, b = ours[0].ravel().astype(np.float64), theirs.ravel().astype(np.float64)
        if not b.any():
            assert not a.any()
            continue
        k = float(a @ b / (a @ a))
        assert k > 0
        np.testing.assert_allclose(a * k, b, atol=1e-4 * np.abs(b).max())


@pytest.mark.filterwarnings("ignore:The structure of `inputs`:UserWarning")
@pytest.mark.parametrize("kind", ["tiny", "sigmoid"])
def test_scorecam_matches_tf_keras_vis(models, images, kind):
    model, image = models[kind], images[kind]
    ours = explain(model, image, method="scorecam", class_index=1).heatmap
    theirs = reference_cam(model, image, method="scorecam", class_index=1)
    # Upsampling differs (tf.image.resize vs scipy zoom), so compare ranks.
    assert spearman(ours, theirs) > 0.9


def test_explainer_accepts_shapes_and_dtypes(tiny_cnn, images):
    image = images["tiny"]
    a = explain(tiny_cnn, image, method="gradcam").heatmap
    b = explain(tiny_cnn, image[None].astype(np.float32), method="gradcam").heatmap
    c = explain(tiny_cnn, image[..., 0], method="gradcam").heatmap
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(a, c, atol=1e-6)


def test_batched_heatmaps_equal_single_ones(tiny_cnn, images):
    explainer = Explainer(tiny_cnn)
    stack = np.stack([images["tiny"], images["tiny"][::-1], images["tiny"][:, ::-1]])
    maps, classes, probs = explainer.heatmaps(stack, method="gradcam", class_indices=[0, 1, 2])
    assert maps.shape == (3, 32, 32) and list(classes) == [0, 1, 2] and probs.shape == (3, 3)
    for i in range(3):
        single = explainer.explain(stack[i], method="gradcam", class_index=i).heatmap
        np.testing.assert_allclose(maps[i], single, atol=1e-5)
    occl, cls, _ = explainer.heatmaps(stack[:2], method="occlusion", class_indices=[-1, 2], patch=8)
    assert occl.shape == (2, 32, 32) and cls[1] == 2


def test_errors_name_what_was_received_and_allowed(tiny_cnn, images):
    image = images["tiny"]
    with pytest.raises(ModelError, match=r"unknown explanation method 'gradcam3'.*gradcam"):
        explain(tiny_cnn, image, method="gradcam3")
    with pytest.raises(ModelError, match=r"class_index 5 is out of range.*0..2"):
        explain(tiny_cnn, image, method="gradcam", class_index=5)
    with pytest.raises(ModelError, match=r"no option.*samples.*none"):
        explain(tiny_cnn, image, method="gradcam", samples=3)
    with pytest.raises(ModelError, match="leave layer unset"):
        explain(tiny_cnn, image, method="saliency", layer="conv1")
    with pytest.raises(DataError, match="1 channel"):
        explain(tiny_cnn, np.zeros((32, 32, 3), np.uint8), method="gradcam")
    with pytest.raises(DataError, match="does not match the model input 32×32"):
        explain(tiny_cnn, np.zeros((40, 40, 1), np.uint8), method="gradcam")
    with pytest.raises(DataError, match=r"\[0, 255\]"):
        explain(tiny_cnn, np.full((32, 32, 1), 300.0), method="gradcam")
    with pytest.raises(ModelError, match="max_n must lie in"):
        explain(tiny_cnn, image, method="scorecam", max_n=999)


def test_aliases_and_options(tiny_cnn, images):
    assert explain(tiny_cnn, images["tiny"], method="Grad-CAM").method == "gradcam"
    assert explain(tiny_cnn, images["tiny"], method="grad_cam++").method == "gradcam++"
    assert "samples" in method_options("smoothgrad")
    assert "max_n" in method_options("scorecam-fast")
    assert method_options("gradcam") == []


def test_registry_entries_are_frozen_dataclasses():
    info = METHODS["gradcam"]
    assert info.title == "Grad-CAM" and info.needs_layer and info.description
    with pytest.raises(AttributeError):
        info.title = "x"  # type: ignore[misc]
    assert {m for m, i in METHODS.items() if i.needs_layer} == {
        "gradcam",
        "gradcam++",
        "layercam",
        "scorecam",
        "scorecam-fast",
    }


def _head_variant(kind: str):
    import keras

    keras.utils.set_random_seed(5)
    if kind == "sequential":
        return keras.Sequential(
            [
                keras.Input((16, 16, 1)),
                keras.layers.Conv2D(4, 3, activation="relu", name="c"),
                keras.layers.GlobalAveragePooling2D(),
                keras.layers.Dense(2, activation="softmax"),
            ]
        )
    inp = keras.Input((16, 16, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="c")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    if kind == "activation-layer":
        out = keras.layers.Activation("softmax")(keras.layers.Dense(2)(x))
    elif kind == "softmax-layer":
        out = keras.layers.Softmax()(keras.layers.Dense(2)(x))
    elif kind == "einsum":  # softmax on a non-Dense layer: the linear-clone fallback
        out = keras.layers.EinsumDense("ab,bc->ac", output_shape=2, activation="softmax")(x)
    else:  # plain logits
        out = keras.layers.Dense(2)(x)
    return keras.Model(inp, out)


@pytest.mark.parametrize(
    "kind", ["sequential", "activation-layer", "softmax-layer", "einsum", "logits"]
)
def test_other_heads(kind):
    model = _head_variant(kind)
    explainer = Explainer(model)
    assert explainer.uses_clone == (kind == "einsum")
    image = np.random.default_rng(0).integers(0, 255, (16, 16, 1)).astype(np.uint8)
    out = np.asarray(model(image[None].astype(np.float32)))[0]
    expected = out if kind != "logits" else np.exp(out - out.max()) / np.exp(out - out.max()).sum()
    result = explainer.explain(image, method="gradcam", class_index=1)
    np.testing.assert_allclose(result.probabilities, expected, atol=1e-5)
    assert result.layer == "c" and result.heatmap.shape == (16, 16)
    theirs = reference_cam(model, image, method="gradcam", class_index=1, expand=False)
    ours, _, _ = gradient_cams(explainer, image[None], class_indices=[1], low_resolution=True)
    np.testing.assert_allclose(ours[0], theirs, atol=1e-3)


def test_per_method_functions_match_explain(tiny_cnn, images):
    from medviz.explain import (
        gradcam,
        gradcam_plus_plus,
        integrated_gradients,
        layercam,
        occlusion_sensitivity,
        scorecam,
        smoothgrad,
        vanilla_saliency,
    )

    pairs = {
        "gradcam": gradcam,
        "gradcam++": gradcam_plus_plus,
        "layercam": layercam,
        "scorecam": scorecam,
        "saliency": vanilla_saliency,
        "smoothgrad": smoothgrad,
        "integrated-gradients": integrated_gradients,
        "occlusion": occlusion_sensitivity,
    }
    for method, fn in pairs.items():
        heat, cls, probs = fn(tiny_cnn, images["tiny"], class_index=2)
        reference = explain(tiny_cnn, images["tiny"], method=method, class_index=2)
        assert cls == 2 and probs.shape == (3,)
        np.testing.assert_allclose(heat, reference.heatmap, atol=1e-6)
