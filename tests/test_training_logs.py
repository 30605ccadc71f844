"""TensorBoard and CSV logs of a training run (`medviz train --logdir`, the Train page toggle)."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medviz.augment import AugmentConfig
from medviz.training import TrainConfig, train
from medviz.training_logs import CSV_FILE, IMAGES_DIR, cam_sample, tensorboard_command


def _tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"images": 0, "tensors": 0})
    events.Reload()
    return events


def test_logs_hold_scalars_gradcam_images_and_one_csv_row_per_epoch(tiny_microcalc, tmp_path):
    config = TrainConfig(epochs=2, augment=AugmentConfig.none(), jit_compile=False)
    result = train(config, tiny_microcalc, log_dir=tmp_path)

    rows = list(csv.DictReader((tmp_path / CSV_FILE).open()))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    np.testing.assert_allclose([float(r["val_auc"]) for r in rows], result.history["val_auc"])

    validation = _tags(tmp_path / "validation")
    # Keras 3 writes scalars as tensor summaries ("epoch_loss", "epoch_auc", …)
    tags = validation.Tags()["tensors"]
    assert {"epoch_loss", "epoch_auc"} <= set(tags), tags
    assert [e.step for e in validation.Tensors("epoch_auc")] == [0, 1]

    cams = _tags(tmp_path / IMAGES_DIR)
    images = cams.Tensors("gradcam/true_class")
    assert [e.step for e in images] == [0, 1]
    # an image summary tensor is [width, height, png, png, …]: one PNG per followed image
    encoded = images[-1].tensor_proto.string_val
    assert len(encoded) == 2 + 4 and encoded[2].startswith(b"\x89PNG")


def test_cam_sample_is_fixed_and_spread_over_classes():
    labels = np.array([0, 0, 0, 1, 1, 0])
    assert cam_sample(labels, 3).tolist() == [0, 3, 1]
    assert cam_sample(labels, 10).tolist() == [0, 3, 1, 4, 2, 5]


def test_missing_tensorboard_is_one_clear_error(monkeypatch):
    import importlib.util

    from medviz.errors import MedvizError
    from medviz.training_logs import require_tensorboard

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name)
    )
    with pytest.raises(MedvizError, match=r"pip install 'medviz\[tensorboard\]'"):
        require_tensorboard()
    assert tensorboard_command("runs/a b") == "tensorboard --logdir 'runs/a b'"
