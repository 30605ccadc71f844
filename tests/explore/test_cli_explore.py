"""``medviz embed`` and ``medviz tcav`` on the tiny speck model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import make_specks
from PIL import Image

from medviz.cli import main


@pytest.fixture(scope="module")
def speck_npz(speck_data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("explore-data")
    arrays = {}
    for split in ("train", "val", "test"):
        part = speck_data.split(split)
        arrays[f"{split}_images"] = part.images[..., 0]
        arrays[f"{split}_labels"] = part.labels
    path = folder / "specks.npz"
    np.savez(path, **arrays)
    return path


@pytest.fixture(scope="module")
def concept_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("concept") / "bright-square"
    folder.mkdir()
    images, _ = make_specks(12, seed=21, positive=1)
    for i, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(folder / f"{i}.png")
    return folder


def _run(capsys, argv: list[str]) -> tuple[int, dict]:
    code = main(argv)
    out = capsys.readouterr().out.strip()
    return code, json.loads(out) if out.startswith("{") else {}


def test_embed_writes_json_and_html(capsys, speck_model_dir, speck_npz, tmp_path):
    common = ["embed", "--model", str(speck_model_dir), "--data", str(speck_npz)]
    common += ["--classes", "normal,speck", "--json"]
    code, summary = _run(capsys, [*common, "--out", str(tmp_path / "map.json")])
    assert code == 0
    assert summary["n_points"] == 80 and summary["method"] == "pca"
    assert summary["accuracy"] > 0.9 and summary["timings"]["total_s"] > 0
    points = json.loads((tmp_path / "map.json").read_text())["points"]
    assert len(points) == 80 and {"x", "y", "true", "predicted", "correct"} <= set(points[0])

    code, summary = _run(capsys, [*common, "--split", "train", "--limit", "50", "--out",
                                  str(tmp_path / "map.html")])  # fmt: skip
    assert code == 0 and summary["n_points"] == 50 and "50 of 240" in summary["note"]
    assert "plotly_hover" in (tmp_path / "map.html").read_text()

    assert main([*common, "--out", str(tmp_path / "map.png")]) == 2
    assert "must end in .html or .json" in capsys.readouterr().err


def test_tcav_reports_each_layer(capsys, speck_model_dir, speck_npz, concept_folder, tmp_path):
    argv = ["tcav", "--model", str(speck_model_dir), "--concept", str(concept_folder)]
    argv += ["--random", str(speck_npz), "--classes", "normal,speck", "--class", "speck"]
    argv += ["--layers", "conv2", "--runs", "3", "--out", str(tmp_path / "tcav.html"), "--json"]
    code, result = _run(capsys, argv)
    assert code == 0
    assert result["class"] == "speck" and result["concept"] == "bright-square"
    assert result["n_concept"] == 12 and result["split"] == "val"
    (layer,) = result["layers"]
    assert layer["layer"] == "conv2" and len(layer["random_scores"]) == 3
    assert layer["score_mean"] > layer["random_mean"]
    assert (tmp_path / "tcav.html").exists()

    bad = [*argv[:-5], "--class", "cat"]
    assert main(bad) == 2
    assert "not a class of the model" in capsys.readouterr().err
