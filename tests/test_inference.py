import numpy as np
import pytest

from medviz.baseline import ThresholdCountClassifier
from medviz.errors import DataError, ModelError
from medviz.inference import match_channels, penultimate_features, predict_proba
from medviz.ood import ReferenceStats, distances, fit_reference


def test_predict_proba_resizes_and_converts_channels(tiny_packaged):
    model = tiny_packaged.bundle.model
    rgb = np.random.default_rng(0).integers(0, 255, (3, 50, 70, 3), dtype=np.uint8)
    probs = predict_proba(model, rgb)
    assert probs.shape == (3, 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_sigmoid_models_give_two_columns():
    import keras

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))
    probs = predict_proba(model, np.zeros((2, 8, 8, 1), np.uint8))
    assert probs.shape == (2, 2) and np.allclose(probs, 0.5, atol=1e-6)


def test_match_channels():
    rgb = np.zeros((1, 2, 2, 3), np.uint8)
    rgb[..., 0] = 255
    assert match_channels(rgb, 1)[0, 0, 0, 0] == 76  # 0.299 * 255
    assert match_channels(np.ones((1, 2, 2, 1), np.uint8), 3).shape[-1] == 3
    with pytest.raises(ModelError):
        match_channels(np.zeros((1, 2, 2, 2), np.uint8), 3)


def test_ood_flags_images_unlike_the_training_data(tiny_packaged, tiny_microcalc):
    bundle = tiny_packaged.bundle
    stats = ReferenceStats.from_dict(bundle.card.reference)
    test = tiny_microcalc.split("test")
    inside = distances(penultimate_features(bundle.model, test.images), stats)
    stripes = np.zeros((8, 32, 32, 1), np.uint8)
    stripes[:, :, ::2] = 255
    outside = distances(penultimate_features(bundle.model, stripes), stats)
    assert np.mean(inside > stats.threshold) < 0.2
    assert np.all(outside > stats.threshold)


def test_fit_reference_threshold_is_the_percentile():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(500, 4))
    labels = rng.integers(0, 2, 500)
    stats = fit_reference(features, labels, 2, percentile=90)
    assert abs(np.mean(distances(features, stats) > stats.threshold) - 0.10) < 0.02
    with pytest.raises(ModelError, match="dimensions"):
        distances(np.zeros((1, 3)), stats)


def test_pixel_threshold_baseline():
    dark = np.full((20, 8, 8, 1), 50, np.uint8)
    bright = np.full((20, 8, 8, 1), 200, np.uint8)
    images = np.concatenate([dark, bright])
    labels = np.repeat([0, 1], 20)
    clf = ThresholdCountClassifier(threshold=120).fit(images, labels)
    assert np.array_equal(clf.predict(images), labels)
    with pytest.raises(DataError, match="fit"):
        ThresholdCountClassifier().predict_proba(images)
