"""`medviz shortcut`: tiny runs in JSON and text, figures written, bad input is one error line."""

from __future__ import annotations

import json

import pytest

from medviz.cli import main

TINY = ["--limit-per-class", "20", "--image-size", "32", "--epochs", "1"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_shortcut_json_and_figures(capsys, tmp_path):
    code, out, _ = run(
        capsys,
        "shortcut",
        "--marker",
        "border",
        "--fraction",
        "0.5",
        "--class",
        "normal",
        "--json",
        "--out",
        str(tmp_path),
        *TINY,
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["marked_class"] == "normal" and payload["marker"]["kind"] == "border"
    assert payload["fraction"] == 0.5 and payload["n_marked_train_val"] == 9  # half of 14 + 3
    for model in ("shortcut_model", "clean_model"):
        scores = payload[model]
        assert set(scores["balanced_accuracy"]) == {"clean", "aligned", "swapped"}
        aligned, swapped = (scores["balanced_accuracy"][k] for k in ("aligned", "swapped"))
        assert scores["reliance_score"] == pytest.approx(aligned - swapped)
        assert 0.0 <= scores["marker_mass"] <= 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accuracy.html", "gradcam.html"]


def test_shortcut_text_summary(capsys):
    code, out, _ = run(capsys, "shortcut", "--marker", "brightness", *TINY)
    assert code == 0
    assert "model with the marker" in out and "control (marker at random)" in out
    assert "reliance" in out and "brightness offset +15%" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--class", "tumour"], "not one of the dataset's classes"),
        (["--fraction", "1.5"], "--fraction must lie in [0, 1]"),
        (["--intensity", "3"], "intensity must lie in"),
    ],
)
def test_shortcut_bad_input_is_one_error_line(capsys, argv, message):
    code, out, err = run(capsys, "shortcut", *TINY, *argv)
    assert code == 2 and out == ""
    assert err.startswith("error:") and message in err and len(err.strip().splitlines()) == 1


def test_shortcut_needs_a_binary_dataset(capsys, tmp_path):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for name in ("a", "b", "c"):
        (tmp_path / name).mkdir()
        for i in range(4):
            pixels = (rng.random((16, 16)) * 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / name / f"{i}.png")
    code, _, err = run(capsys, "shortcut", "--data", str(tmp_path), *TINY)
    assert code == 2 and "needs a binary dataset" in err and "['a', 'b', 'c']" in err
