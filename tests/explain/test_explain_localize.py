"""``medviz localize`` on a folder with boxes, a model with more classes, and the baselines."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medviz.cli import main
from medviz.cli_support import EXIT_BAD_INPUT, EXIT_OK
from medviz.errors import DataError
from medviz.explain.trust import map_class_names

store = pytest.importorskip("medviz.store")

MODEL_CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


@pytest.fixture(scope="module")
def brain_like_model(tmp_path_factory):
    """A 4-class tiny CNN saved as a model folder with brain-mri's class names."""
    import keras

    keras.utils.set_random_seed(4)
    inp = keras.Input((32, 32, 1), name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(4, activation="softmax", name="predictions")(x)
    folder = tmp_path_factory.mktemp("models") / "brainish"
    card = store.ModelCard(name="brainish", class_names=MODEL_CLASSES, image_size=32, channels=1)
    store.save_bundle(keras.Model(inp, out), card, folder)
    return folder


def _box_folder(root, classes, *, box="0.5 0.5 0.25 0.25"):
    rng = np.random.default_rng(0)
    for k, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for n in range(4):
            stem = f"{100 * k + n:04d}"
            pixels = rng.integers(0, 255, (48, 48), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"{stem}.png")
            (folder / f"{stem}.txt").write_text(box + "\n")
    return root


def test_map_class_names_allows_fewer_data_classes():
    mapping = map_class_names(MODEL_CLASSES, ("Pituitary", "glioma", "meningioma"))
    np.testing.assert_array_equal(mapping, [3, 0, 1])
    with pytest.raises(DataError, match=r"\['astrocytoma'\].*model classes .*notumor.*data"):
        map_class_names(MODEL_CLASSES, ("astrocytoma", "glioma"))


def test_localize_box_folder_with_baselines(brain_like_model, tmp_path, capsys):
    folder = _box_folder(tmp_path / "boxes", ("glioma", "meningioma", "pituitary"))
    args = ["localize", "--model", str(brain_like_model), "--data", str(folder), "--split", "all"]
    assert main([*args, "--method", "occlusion", "--json", "--bootstrap", "100"]) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["n"] == 12 and payload["method"] == "occlusion" and payload["layer"] is None
    assert payload["tolerance"] == 0.02 and payload["tolerance_px"] == 1.5  # 2 % of 32 px < 1.5
    assert payload["metric"] == "chessboard" and 0 <= payload["accuracy"] <= 1
    lo, hi = payload["hit_rate_ci"]
    assert lo <= payload["hit_rate"] <= hi
    centre, random = payload["baselines"]["centre"], payload["baselines"]["random"]
    # Every box sits on the centre; a random point hits the 8 px box grown by 1 px: 10x10 of 32x32.
    assert centre["hit_rate"] == 1.0 and centre["hit_rate_ci"] == [1.0, 1.0]
    assert random["hit_rate"] == pytest.approx(100 / 1024)
    assert 0 < random["mean_iou"] < centre["mean_iou"] <= 1
    assert payload["better_than_baselines"] is False  # nothing beats a perfect centre pointer

    assert main([*args, "--max-images", "5", "--iou-top", "mask"]) == EXIT_OK
    text = capsys.readouterr().out
    assert "gradcam on 5 lesion images" in text
    assert "centre point" in text and "random point" in text and "mask-size IoU" in text


def test_localize_refuses_unknown_classes_and_bad_options(brain_like_model, tmp_path, capsys):
    folder = _box_folder(tmp_path / "boxes", ("astrocytoma", "glioma"))
    base = ["localize", "--model", str(brain_like_model), "--split", "all"]
    assert main([*base, "--data", str(folder)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "astrocytoma" in err and "notumor" in err  # both lists are named
    good = _box_folder(tmp_path / "good", ("glioma", "pituitary"))
    assert main([*base, "--data", str(good), "--tolerance", "2"]) == EXIT_BAD_INPUT
    assert "share of the image side" in capsys.readouterr().err
    assert main([*base, "--data", str(good), "--iou-top", "big"]) == EXIT_BAD_INPUT
    assert "--iou-top" in capsys.readouterr().err


def test_benchmark_real_tumour_section(brain_like_model, tmp_path, capsys):
    from bench import explanations_readme as benchmark

    folder = _box_folder(tmp_path / "boxes", ("glioma", "meningioma", "pituitary"))
    code = benchmark.main(
        ["--tumour-model", str(brain_like_model), "--tumour-data", str(folder), "--tumour-only",
         "--tumour-slow-images", "3"]
    )  # fmt: skip
    assert code == 0
    real = json.loads(capsys.readouterr().out)
    assert real["n_images"] == 12 and list(real["localization"]) == list(benchmark.REAL_METHODS)
    assert real["localization"]["occlusion"]["n"] == 3
    assert real["localization"]["gradcam"]["n"] == 12
    assert real["localization"]["gradcam"]["baselines"]["centre"]["hit_rate"] == 1.0
    assert real["localization"]["gradcam"]["fraction"] is None  # IoU of box-sized top sets
    assert real["agreement"]["methods"] == ["gradcam", "occlusion", "integrated-gradients"]
    assert set(real["agreement"]["pairs"]) == {
        "gradcam / occlusion", "gradcam / integrated-gradients",
        "occlusion / integrated-gradients",
    }  # fmt: skip
    # Noise images have no dark background: the mass check does not judge them.
    assert real["mass_on_body"] == {}

    saved = json.loads(benchmark.RESULTS_FILE.read_text(encoding="utf-8"))
    before = benchmark.readme_section({k: v for k, v in saved.items() if k != "real_tumour"})
    saved["real_tumour"] = {**real, "mass_on_body": {"gradcam": {"median": 0.2, "failing": 0.9}}}
    section = benchmark.readme_section(saved)
    assert section.startswith(before)  # the synthetic rows are unchanged
    assert "| gradcam | 12 |" in section and "| occlusion | 3 |" in section
    assert "image centre" in section and "random point" in section
    assert "gradcam 0.20 (90% of maps below 0.5)" in section


def test_benchmark_needs_a_model():
    from bench import explanations_readme as benchmark

    with pytest.raises(SystemExit):
        benchmark.main(["--tumour-only"])
    with pytest.raises(SystemExit):
        benchmark.main([])


def test_explain_command_reports_the_checks(brain_like_model, tmp_path, capsys):
    pixels = np.zeros((32, 32), np.uint8)
    pixels[6:26, 6:26] = 120  # a body on a dark background
    pixels[12:15, 16:19] = 240
    Image.fromarray(pixels).save(tmp_path / "scan.png")
    args = ["explain", str(tmp_path / "scan.png"), "--model", str(brain_like_model)]
    assert main([*args, "--out", str(tmp_path / "cam.png"), "--json"]) == EXIT_OK
    trust = json.loads(capsys.readouterr().out)["trust"]
    assert trust["verdict"] in ("do not trust", "no check failed", "not checked")
    names = [c["name"] for c in trust["checks"]]
    assert names in (
        ["mass on the body", "agreement across method families"],
        ["map shows something"],
    )
    assert trust["summary"].startswith(("Do not trust this map", "No check failed", "Not checked"))
