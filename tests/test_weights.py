"""Weights status, local ImageNet files (`medviz weights add/list`) and refusal of missing weights.

Fake weight files are written by Keras' own legacy-HDF5 writer (the format of the
files Keras Applications downloads), from models built with ``weights=None``: no
download, ever (``MEDVIZ_OFFLINE=1``).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from medviz.errors import ModelError
from medviz.weights import (
    WeightsMissingError,
    WeightsStatus,
    add_weights,
    list_weights,
    resolve_weights,
)

MOBILENET_035 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
MOBILENET_100 = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"


@pytest.fixture
def weights_home(tmp_path, monkeypatch):
    folder = tmp_path / "keras-models"
    monkeypatch.setenv("MEDVIZ_WEIGHTS_DIR", str(folder))
    monkeypatch.setenv("MEDVIZ_OFFLINE", "1")
    monkeypatch.setenv("MEDVIZ_MODELS_DIR", str(tmp_path / "no-models"))
    return folder


def _keras_h5(model, path, *, drop_last: int = 0):
    """Write ``model``'s weights as a Keras Applications (legacy HDF5) file."""
    from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group

    with h5py.File(path, "w") as handle:
        save_weights_to_hdf5_group(handle, model)
        if drop_last:
            names = list(handle.attrs["layer_names"])
            handle.attrs["layer_names"] = names[:-drop_last]
    return path


def _mobilenet(alpha: float):
    import keras

    return keras.applications.MobileNetV2(
        include_top=False, weights=None, alpha=alpha, input_shape=(96, 96, 3)
    )


def test_add_a_right_file_puts_it_under_keras_name_and_lists_it(weights_home, tmp_path):
    source = _keras_h5(_mobilenet(0.35), tmp_path / "downloaded.h5")
    added = add_weights(source)
    assert added.arch == "mobilenetv2-0.35"
    assert (weights_home / MOBILENET_035).is_file()
    assert added.hash_check == "no published hash"  # Keras publishes none for MobileNetV2
    listed = {w.arch: w for w in list_weights()}
    assert listed["mobilenetv2-0.35"].sha256 == added.sha256


def test_add_refuses_wrong_structure_and_non_keras_files(weights_home, tmp_path):
    model = _mobilenet(0.35)
    short = _keras_h5(model, tmp_path / "short.h5", drop_last=3)
    with pytest.raises(ModelError, match="not a Keras Applications include_top=False"):
        add_weights(short)
    with pytest.raises(ModelError, match="weighted layers"):
        add_weights(_keras_h5(model, tmp_path / "again.h5"), arch="resnet50")
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(ModelError, match="not an HDF5 weights file"):
        add_weights(text)
    assert not weights_home.exists() or not any(weights_home.iterdir())


def test_cached_imagenet_file_is_used_and_reported(weights_home, tmp_path):
    import keras

    from medviz.zoo import build_model

    reference = _mobilenet(1.0)
    add_weights(_keras_h5(reference, tmp_path / "w.h5"), arch="mobilenetv2")
    status = resolve_weights("mobilenetv2", "imagenet")
    assert status.source == "imagenet-cache" and status.path.endswith(MOBILENET_100)
    assert len(status.sha256) == 64
    model = build_model("mobilenetv2", (32, 32, 1), 2, pretrained=status)
    np.testing.assert_allclose(
        model.get_layer("Conv1").get_weights()[0], reference.get_layer("Conv1").get_weights()[0]
    )
    assert status.to_card() == {
        "source": "imagenet-cache",
        "file": MOBILENET_100,
        "sha256": status.sha256,
    }
    keras.backend.clear_session()


def test_missing_weights_are_refused_unless_none_is_chosen(weights_home):
    with pytest.raises(WeightsMissingError, match="MEDVIZ_OFFLINE"):
        resolve_weights("resnet50", "imagenet")
    with pytest.raises(WeightsMissingError, match="MedViz backbone weights are not at"):
        resolve_weights("medviz-backbone", "medviz")
    with pytest.raises(WeightsMissingError, match="neither none"):
        resolve_weights("medviz-backbone", "/no/such/file.weights.h5")
    with pytest.raises(ModelError, match="--arch medviz-backbone"):
        resolve_weights("resnet50", "medviz")
    assert resolve_weights("resnet50", "none") == WeightsStatus("random")
    assert resolve_weights("fast-cnn", None) == WeightsStatus("random")
    assert "random initialisation" in WeightsStatus("random").describe()


def test_cli_weights_add_list_and_train_refusal(weights_home, tmp_path, capsys):
    from medviz.cli import main

    source = _keras_h5(_mobilenet(0.35), tmp_path / "w.h5")
    assert main(["weights", "add", str(source)]) == 0
    assert "mobilenetv2-0.35" in capsys.readouterr().out
    assert main(["weights", "list"]) == 0
    assert MOBILENET_035 in capsys.readouterr().out
    bad = tmp_path / "bad.h5"
    bad.write_text("x")
    assert main(["weights", "add", str(bad)]) == 2
    assert "not an HDF5 weights file" in capsys.readouterr().err
    code = main(["train", "--arch", "efficientnetb0", "--out", str(tmp_path / "m")])
    assert code == 2
    err = capsys.readouterr().err
    assert (
        "ImageNet weights for efficientnetb0 are not cached" in err and "--pretrained none" in err
    )
    assert not (tmp_path / "m").exists()
