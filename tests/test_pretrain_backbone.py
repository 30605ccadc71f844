"""tools.pretrain_backbone: the contrastive method trains the trunk and writes a loadable file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tools import pretrain_backbone as pb


def _task(name: str, seed: int) -> pb.Task:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (16, 64, 64, 1)).astype(np.uint8)
    labels = np.arange(16) % 2
    return pb.Task(name, ("a", "b"), images, labels, images[:8], labels[:8])


def test_contrastive_pretraining_changes_the_trunk_and_writes_its_card(tmp_path):
    from medviz.backbone import WEIGHTS_FILE
    from medviz.weights import resolve_weights

    tasks = [_task("one", 0), _task("two", 1)]
    options = {"size": 64, "batch": 8, "minutes": 1.0, "max_epochs": 1, "learning_rate": 1e-3}
    trunk, accuracy, epochs, _ = pb.pretrain(
        tasks, **options, seed=0, fixed_epochs=1, method="contrastive"
    )
    assert epochs == 1 and set(accuracy) == {"one", "two"}  # a linear probe per task
    import keras

    from medviz.backbone import build_trunk

    keras.utils.set_random_seed(0)  # the initial weights pretrain() started from
    inputs = keras.Input((64, 64, 1))
    initial = keras.Model(inputs, build_trunk(inputs)).get_weights()
    assert any(not np.allclose(a, b) for a, b in zip(initial, trunk.get_weights(), strict=True))
    assert all(0.0 <= a <= 1.0 for a in accuracy.values())
    recipe = {"method": "contrastive", "image_size": 64, "batch": 8, "learning_rate": 1e-3}
    recipe |= {"epochs_run": 1, "seed": 0, "machine": "test"}
    pb.SOURCES += (("one", "test"), ("two", "test"))  # licences looked up by task name
    try:
        weights = pb.write_bundle(
            trunk, tmp_path, accuracy=accuracy, tasks=tasks, recipe=recipe, seconds=1.0, name="bb"
        )
    finally:
        pb.SOURCES = pb.SOURCES[:-2]
    card = json.loads((tmp_path / "backbone.json").read_text())
    assert card["name"] == "bb" and "contrastive" in card["pretraining"]
    assert weights.name == WEIGHTS_FILE and "linear probe" in (tmp_path / "README.md").read_text()
    status = resolve_weights("medviz-backbone", str(weights))  # usable as --pretrained PATH
    assert status.path == str(weights)
    with pytest.raises(ValueError, match="method must be one of"):
        pb.pretrain(tasks, **options, seed=0, fixed_epochs=1, method="rotation")
