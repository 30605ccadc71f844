"""Tiny data where a concept drives the label, and a tiny model trained on it.

Class ``speck`` images carry a bright 3×3 square at a random place on noise;
``normal`` images are noise only. A two-conv network learns this in a few
epochs, so the square is, by construction, the concept that defines the class.
"""

from __future__ import annotations

import numpy as np
import pytest

SIZE = 16
CLASSES = ("normal", "speck")


def make_specks(n: int, seed: int, *, positive: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(n, 16, 16, 1)`` uint8 images and their labels (1 = a bright square somewhere).

    Args:
        n: Number of images.
        seed: Seed of noise, labels and square positions.
        positive: Force every label to this value (``None``: random labels).
    """
    rng = np.random.default_rng(seed)
    images = rng.normal(60, 20, (n, SIZE, SIZE, 1)).clip(0, 255)
    labels = rng.integers(0, 2, n) if positive is None else np.full(n, positive)
    for i in np.flatnonzero(labels == 1):
        row, col = rng.integers(1, SIZE - 4, 2)
        images[i, row : row + 3, col : col + 3, 0] = 230
    return images.astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="session")
def speck_data():
    """A :class:`~medviz.data.Dataset` of 240 train, 80 val and 80 test speck images."""
    from medviz.data import Dataset

    images, labels = make_specks(400, seed=0)
    splits = np.array(["train"] * 240 + ["val"] * 80 + ["test"] * 80)
    return Dataset(name="specks", images=images, labels=labels, class_names=CLASSES, splits=splits)


@pytest.fixture(scope="session")
def speck_bundle(speck_data):
    """A two-conv softmax model trained on :func:`speck_data` (test accuracy checked > 0.9)."""
    import keras

    from medviz.store import ModelBundle, ModelCard

    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", padding="same", name="conv2")(x)
    x = keras.layers.GlobalMaxPooling2D(name="features")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="specks")
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    train = speck_data.split("train")
    model.fit(train.images.astype("float32"), train.labels, epochs=8, batch_size=32, verbose=0)
    test = speck_data.split("test")
    accuracy = model.evaluate(test.images.astype("float32"), test.labels, verbose=0)[1]
    assert accuracy > 0.9, f"the tiny model did not learn the specks (accuracy {accuracy:.2f})"
    card = ModelCard(
        name="specks", class_names=CLASSES, image_size=SIZE, channels=1, arch="tiny-test"
    )
    return ModelBundle(model=model, card=card)


@pytest.fixture(scope="session")
def speck_model_dir(speck_bundle, tmp_path_factory):
    """:func:`speck_bundle` saved as a model folder (for the CLI)."""
    from medviz.store import save_bundle

    folder = tmp_path_factory.mktemp("explore-models") / "specks"
    return save_bundle(speck_bundle.model, speck_bundle.card, folder)
