"""medviz.export: each format is written, re-loaded by its runtime and checked against Keras.

SavedModel (tf.saved_model.load), LiteRT (the LiteRT/TFLite interpreter) and
ONNX (onnxruntime) all convert here, so none is skipped; ONNX is skipped only
where tf2onnx/onnxruntime are not installed (they are the ``export`` extra).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from medviz import export
from medviz.cli import main
from medviz.errors import ModelError
from medviz.export import FORMATS, check_images, export_model


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A tiny conv model with MedViz's contract (raw 0–255 in, softmax out) and its card."""
    import keras

    from medviz.store import ModelCard, save_bundle

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 1), name="image")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalMaxPooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    card = ModelCard(name="tiny-export", class_names=("a", "b", "c"), image_size=16, channels=1)
    folder = tmp_path_factory.mktemp("export") / "tiny-export"
    return save_bundle(keras.Model(inputs, outputs), card, folder)


def _available(fmt: str) -> None:
    if fmt == "onnx":
        pytest.importorskip("tf2onnx", reason="ONNX export needs the export extra")
        pytest.importorskip("onnxruntime", reason="the ONNX check needs onnxruntime")


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_answers_like_the_keras_model(tiny_folder, tmp_path, fmt):
    _available(fmt)
    result = export_model(tiny_folder, format=fmt, out=tmp_path / "out")
    assert result.ok and result.max_abs_diff < 1e-5, result
    assert result.n_images == 8 and result.path.exists() and result.size_bytes > 0
    assert result.path.parent == tmp_path / "out"
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["class_names"] == ["a", "b", "c"]
    assert (tmp_path / "out" / "README.md").read_text().startswith("---")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.exporting")]


def test_a_differing_export_is_reported(tiny_folder, tmp_path, monkeypatch):
    """The comparison is real: an export whose runtime answers 0.01 off is not ok."""
    real = export._LOADERS["savedmodel"]

    def shifted(path):
        predict, runtime = real(path)
        return (lambda x: predict(x) + 0.01), runtime

    monkeypatch.setitem(export._LOADERS, "savedmodel", shifted)
    result = export_model(tiny_folder, format="savedmodel", out=tmp_path / "out")
    assert not result.ok and result.max_abs_diff == pytest.approx(0.01, abs=1e-6)


def test_check_images_cover_flat_smooth_and_noisy_inputs(tiny_folder):
    from medviz.store import load_bundle

    images = check_images(load_bundle(tiny_folder).model, n=6)
    assert images.shape == (6, 16, 16, 1) and images.dtype == np.float32
    assert images.min() >= 0 and images.max() <= 255
    assert np.array_equal(images, np.rint(images)), "whole grey levels, like decoded pixels"
    assert len({round(float(im.std()), 3) for im in images}) == 6


def test_unknown_format_and_bad_model(tiny_folder, tmp_path):
    with pytest.raises(ValueError, match="format must be one of savedmodel, litert, onnx"):
        export_model(tiny_folder, format="tfjs", out=tmp_path)
    with pytest.raises(ModelError, match="does not exist"):
        export_model(tmp_path / "missing", format="litert", out=tmp_path / "o")
    with pytest.raises(ModelError, match="expected a model folder"):
        export_model(42, format="litert", out=tmp_path / "o")


def test_cli_export_json(tiny_folder, tmp_path, capsys):
    code = main(
        [
            "export",
            "--model",
            str(tiny_folder),
            "--format",
            "litert",
            "--format",
            "litert",
            "--out",
            str(tmp_path / "cli"),
            "--json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    payload = json.loads(captured.out)
    assert [e["format"] for e in payload["exports"]] == ["litert"], "each format once"
    assert payload["exports"][0]["ok"] and payload["exports"][0]["max_abs_diff"] < 1e-5
    assert (tmp_path / "cli" / "model.tflite").is_file()
    assert "export" in captured.err and "format" in captured.err  # the tqdm bar, on stderr


def test_cli_export_bad_input_exit_codes(tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path / "none"), "--format", "onnx"]) == 2
    assert capsys.readouterr().err.startswith("error: model path")
    with pytest.raises(SystemExit) as info:
        main(["export", "--model", "x", "--format", "tfjs"])
    assert info.value.code == 2
