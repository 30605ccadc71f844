"""Fixtures for the medviz.explain tests: tiny models and one quickly trained CNN.

Models are tiny (32×32 inputs, a few filters) so the whole folder runs in a
couple of minutes on two CPU cores. Optimisation loops read their default
step counts from ``$MEDVIZ_TEST_STEPS``, set low here.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np
import pytest

TEST_STEPS = "12"


@pytest.fixture(autouse=True, scope="session")
def _few_steps():
    old = os.environ.get("MEDVIZ_TEST_STEPS")
    os.environ["MEDVIZ_TEST_STEPS"] = TEST_STEPS
    yield
    if old is None:
        os.environ.pop("MEDVIZ_TEST_STEPS", None)
    else:
        os.environ["MEDVIZ_TEST_STEPS"] = old


def _tiny_cnn(
    *,
    size: int = 32,
    channels: int = 1,
    outputs: int = 3,
    activation: str = "softmax",
    seed: int = 1,
) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((size, size, channels), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(outputs, activation=activation, name="predictions")(x)
    return keras.Model(inp, out, name=f"tiny_{activation}")


@pytest.fixture(scope="session")
def tiny_cnn() -> keras.Model:
    """Softmax over 3 classes, input (32, 32, 1), last conv "conv2" at 16×16."""
    return _tiny_cnn()


@pytest.fixture(scope="session")
def sigmoid_cnn() -> keras.Model:
    """Single sigmoid unit (binary), input (32, 32, 1)."""
    return _tiny_cnn(outputs=1, activation="sigmoid", seed=2)


@pytest.fixture(scope="session")
def transfer_model() -> keras.Model:
    """Flat MobileNetV2 (alpha 0.35, random weights) at 32×32×3 with a 2-class head."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((32, 32, 3), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="imagenet_scale")(inp)
    base = keras.applications.MobileNetV2(
        alpha=0.35, weights=None, include_top=False, input_tensor=x
    )
    y = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
    out = keras.layers.Dense(2, activation="softmax", name="predictions")(y)
    return keras.Model(inp, out, name="mobilenet_flat")


@pytest.fixture(scope="session")
def models(tiny_cnn, sigmoid_cnn, transfer_model) -> dict[str, keras.Model]:
    return {"tiny": tiny_cnn, "sigmoid": sigmoid_cnn, "transfer": transfer_model}


@pytest.fixture(scope="session")
def images() -> dict[str, np.ndarray]:
    """One uint8 test image per model kind: a bright blob on noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    blob = 120.0 * np.exp(-((yy - 10) ** 2 + (xx - 20) ** 2) / 18.0)
    gray = np.clip(60 + rng.normal(0, 20, (32, 32)) + blob, 0, 255).astype(np.uint8)[..., None]
    return {"tiny": gray, "sigmoid": gray, "transfer": np.repeat(gray, 3, axis=-1)}


@pytest.fixture(scope="session")
def microcalc():
    """Easy synthetic microcalcification data (64×64×1, with masks)."""
    from medviz.data.synthetic import generate_microcalc

    return generate_microcalc(1000, seed=0, difficulty="easy")


@pytest.fixture(scope="session")
def trained_cnn(microcalc) -> keras.Model:
    """A small CNN trained for a few epochs on the synthetic data (about 10 s).

    Global max pooling, as in the zoo's fast-cnn: a lesion a few pixels wide
    must not be diluted by the background.
    """
    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 64, 1), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    out = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out, name="trained_tiny")
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    train = microcalc.split("train")
    model.fit(train.images, train.labels, epochs=6, batch_size=32, verbose=0)
    test = microcalc.split("test")
    accuracy = model.evaluate(test.images, test.labels, verbose=0)[1]
    assert accuracy > 0.8, f"the fixture CNN did not learn the easy task (accuracy {accuracy:.2f})"
    return model
