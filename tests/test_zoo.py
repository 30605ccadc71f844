import numpy as np
import pytest

from medviz.errors import ModelError
from medviz.zoo import ARCHITECTURES, build_model, get_arch, layer_table, parameter_counts


def _size(spec):
    return max(spec.min_size, 32)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_is_flat_and_trains_one_step(name):
    import keras

    spec = ARCHITECTURES[name]
    size = _size(spec)
    options = {"pretrained": False} if spec.transfer else {}
    model = build_model(name, (size, size, 1), 3, seed=0, **options)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers), "nested model"
    assert model.layers[-1].name == "predictions"
    x = np.random.default_rng(0).uniform(0, 255, (4, size, size, 1)).astype("float32")
    y = keras.utils.to_categorical([0, 1, 2, 0], 3)
    # One eager step: tracing a graph for a single step of EfficientNet/ResNet50/Inception
    # costs far more than the step itself; the gradients and the update are the same.
    model.compile(
        optimizer="adam", loss="categorical_crossentropy", jit_compile=False, run_eagerly=True
    )
    before = [w.copy() for w in model.get_weights()]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    changed = any(not np.allclose(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert changed
    probs = np.asarray(model(x))
    assert probs.shape == (4, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_transfer_feature_extractor_freezes_the_backbone():
    model = build_model("mobilenetv2", (32, 32, 3), 2, pretrained=False, mode="feature-extractor")
    trainable = [layer.name for layer in model.layers if layer.trainable and layer.weights]
    assert trainable == ["predictions"]
    partly = build_model("mobilenetv2", (32, 32, 3), 2, pretrained=False, fine_tune_from=100)
    rows = layer_table(partly)
    assert not rows[50].trainable or not rows[50].params
    assert any(r.trainable and r.params for r in rows[100:])


def test_missing_pretrained_weights_are_refused_not_replaced_by_random(monkeypatch, tmp_path):
    from medviz.weights import WeightsMissingError

    # An empty weights folder and downloads off: nothing to load.
    monkeypatch.setenv("MEDVIZ_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("MEDVIZ_OFFLINE", "1")
    with pytest.raises(WeightsMissingError, match="--pretrained none"):
        build_model("mobilenetv2", (32, 32, 1), 2)
    with pytest.raises(WeightsMissingError, match="--pretrained none"):
        build_model("mobilenetv2", (32, 32, 1), 2, pretrained="imagenet")
    model = build_model("mobilenetv2", (32, 32, 1), 2, pretrained="none")
    assert model.output_shape == (None, 2)


def test_failed_download_is_refused_with_the_reason(monkeypatch, tmp_path):
    import keras

    from medviz.weights import WeightsMissingError

    monkeypatch.setenv("MEDVIZ_WEIGHTS_DIR", str(tmp_path))
    monkeypatch.setenv("MEDVIZ_OFFLINE", "0")

    def refuse(*args, **kwargs):
        raise Exception("URL fetch failure: offline")  # what keras.utils.get_file raises

    monkeypatch.setattr(keras.utils, "get_file", refuse)
    with pytest.raises(WeightsMissingError, match=r"could not be downloaded.*URL fetch failure"):
        build_model("efficientnetb0", (32, 32, 1), 2, pretrained=True)


def test_errors_name_what_was_received():
    with pytest.raises(ModelError, match="unknown architecture 'vgg99'"):
        get_arch("vgg99")
    with pytest.raises(ModelError, match="at least 64"):
        build_model("alexnet", (32, 32, 1), 2)
    with pytest.raises(ModelError, match="channels"):
        build_model("fast-cnn", (32, 32, 2), 2)
    with pytest.raises(ModelError, match="n_classes"):
        build_model("fast-cnn", (32, 32, 1), 1)
    with pytest.raises(ModelError, match="takes no options"):
        build_model("fast-cnn", (32, 32, 1), 2, pretrained=True)


def test_layer_table_and_parameter_counts_agree():
    model = build_model("fast-cnn", (32, 32, 1), 2)
    rows = layer_table(model)
    trainable, total = parameter_counts(model)
    assert sum(r.params for r in rows) == total == model.count_params()
    assert trainable < total  # BatchNorm moving statistics are not trainable
    assert rows[0].name == "image"


def test_res_cnn_fast_is_res_cnn_with_a_strided_stem():
    fast = build_model("res-cnn-fast", (64, 64, 1), 4, seed=0)
    full = build_model("res-cnn", (64, 64, 1), 4, seed=0)
    assert fast.count_params() == full.count_params() < 2_000_000
    assert fast.get_layer("stem_relu").output.shape[1:3] == (32, 32)
    assert full.get_layer("stem_relu").output.shape[1:3] == (64, 64)
    out = fast(np.zeros((2, 64, 64, 1), np.float32), training=False)
    np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1.0, rtol=1e-5)
    assert fast.get_layer("predictions") is fast.layers[-1]
