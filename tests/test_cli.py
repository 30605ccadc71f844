import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medviz.cli import main, parse_augment
from medviz.errors import MedvizError

REPO = Path(__file__).resolve().parents[1]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_datasets_lists_the_registry(capsys):
    code, out, _ = run(capsys, "datasets", "--json")
    payload = json.loads(out)
    names = {d["name"] for d in payload["datasets"]}
    assert code == 0 and {"synthetic-microcalc", "brain-mri", "pneumoniamnist"} <= names
    synthetic = next(d for d in payload["datasets"] if d["name"] == "synthetic-microcalc")
    assert synthetic["available"] is True


def test_inspect_reports_counts(capsys, tmp_path):
    folder = tmp_path / "data"
    rng = np.random.default_rng(0)
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for i in range(12):
            Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(
                folder / cls / f"{i}.png"
            )
    code, out, _ = run(capsys, "inspect", "--data", str(folder), "--json", "--image-size", "16")
    report = json.loads(out)
    assert code == 0
    assert sum(sum(c.values()) for c in report["counts"].values()) == 24


def test_train_evaluate_predict_round_trip(capsys, tmp_path, tiny_model_dir):
    out_dir = tmp_path / "m"
    code, out, _ = run(
        capsys,
        "train",
        "--data",
        "synthetic-microcalc",
        "--epochs",
        "1",
        "--image-size",
        "32",
        "--limit-per-class",
        "60",
        "--augment",
        "none",
        "--out",
        str(out_dir),
        "--json",
    )
    payload = json.loads(out)
    assert code == 0 and payload["epochs_run"] == 1
    assert (out_dir / "model.keras").exists() and (out_dir / "card.json").exists()
    card = json.loads((out_dir / "card.json").read_text())
    assert "python -m medviz train" in card["training"]["command"]
    run_folder = Path(payload["run"])
    assert json.loads((run_folder / "run.json").read_text())["status"] == "finished"
    assert len(json.loads((run_folder / "history.json").read_text())["loss"]) == 1

    code, out, _ = run(
        capsys,
        "evaluate",
        "--model",
        str(tiny_model_dir),
        "--data",
        "synthetic-microcalc",
        "--split",
        "test",
        "--bootstrap",
        "50",
        "--json",
    )
    metrics = json.loads(out)
    assert code == 0
    for key in (
        "n",
        "classes",
        "accuracy",
        "auc",
        "auc_ci",
        "confusion_matrix",
        "per_class",
        "ece",
    ):
        assert key in metrics
    assert metrics["classes"] == ["normal", "microcalcification"]

    good = tmp_path / "good.png"
    Image.fromarray(np.full((40, 40), 120, np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    code, out, _ = run(
        capsys, "predict", "--model", str(tiny_model_dir), str(good), str(bad), "--json"
    )
    rows = json_lines(out)
    assert code == 3
    assert rows[0]["file"] == str(good) and set(rows[0]["probabilities"]) == set(metrics["classes"])
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-4
    assert rows[1]["file"] == str(bad) and "error" in rows[1]
    code, out, _ = run(capsys, "predict", "--model", str(tiny_model_dir), str(good), "--json")
    assert code == 0


def test_cross_dataset_class_mismatch_lists_both_sets(capsys, tiny_model_dir, tmp_path):
    folder = tmp_path / "other"
    for cls in ("cat", "dog"):
        (folder / cls).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((8, 8), i * 20, np.uint8)).save(folder / cls / f"{i}.png")
    code, _, err = run(capsys, "evaluate", "--model", str(tiny_model_dir), "--data", str(folder))
    assert code == 2 and err.startswith("error:") and "cat" in err and "normal" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "--data", "no-such-dataset", "--out", "x"],
        ["train", "--arch", "vgg99", "--out", "x", "--limit-per-class", "5"],
        ["evaluate", "--model", "/nonexistent", "--data", "synthetic-microcalc"],
        ["inspect", "--data", "/nonexistent/folder"],
        ["train", "--augment", "twirl=3", "--out", "x"],
        ["train"],  # missing --out: argparse usage error
        ["train", "--threshold-policy", "median", "--out", "x"],
        ["evaluate", "--model", "m", "--data", "d", "--threshold-policy", "youden:3"],
        ["stress", "--model", "m", "--data", "d", "--severities", "0,9"],
        ["stress", "--model", "m", "--data", "d", "--shifts", "warp"],
        ["stress", "--model", "m", "--data", "d", "--max-images", "0"],
        ["stress", "--model", "m", "--data", "d", "--write-card", "--threshold-policy", "youden"],
        ["stress", "--model", "/nonexistent", "--data", "synthetic-microcalc"],
        ["frobnicate"],
    ],
)
def test_bad_input_exits_2_with_one_error_line(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(argv))
    _, err = capsys.readouterr()
    assert exc.value.code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), err
    assert "Traceback" not in err


def test_parse_augment():
    assert parse_augment("none").is_identity
    config = parse_augment("rotation=5,noise=20,hflip")
    assert config.rotation_deg == 5 and config.noise_sigma == 20 and config.horizontal_flip
    assert config.zoom_max == 1.0
    with pytest.raises(MedvizError, match="needs a number"):
        parse_augment("rotation=lots")


def test_module_entry_point_help_and_errors():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "medviz", "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0 and "train" in done.stdout
    done = subprocess.run(
        [sys.executable, "-m", "medviz", "inspect", "--data", "nope"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith("error:")
    assert "Traceback" not in done.stderr


def test_stress_json_on_the_shipped_model(capsys):
    model = REPO / "models" / "microcalc-synthetic"
    code, out, _ = run(
        capsys,
        "stress",
        "--model",
        str(model),
        "--data",
        "synthetic-microcalc",
        "--max-images",
        "24",
        "--json",
    )
    payload = json.loads(out)
    assert code == 0 and len(out.strip().splitlines()) == 1
    assert payload["data"] == "synthetic-microcalc" and payload["split"] == "val"
    assert payload["n"] == 24 and payload["n_available"] == 360
    assert payload["severities"] == [1, 2, 3, 4, 5]
    assert list(payload["shifts"]) == [
        "contrast",
        "gamma",
        "blur",
        "noise",
        "jpeg",
        "resolution",
        "rotation",
        "crop",
    ]
    card = json.loads((model / "card.json").read_text())
    assert payload["threshold"] == pytest.approx(card["threshold"])
    assert payload["threshold_method"] == card["threshold_method"]
    for row in payload["shifts"].values():
        assert len(row["accuracy"]) == len(row["auc"]) == 5
        assert all(0.0 <= a <= 1.0 for a in row["accuracy"])
    assert 0.5 <= payload["clean"]["accuracy"] <= 1.0
    assert payload["worst"]["shift"] in payload["shifts"]
    assert payload["summary"]["worst_shift"] == payload["worst"]["shift"]
    assert payload["card_written"] is None


def test_stress_write_card_and_evaluate_threshold_policy(capsys, tiny_model_dir, tmp_path):
    import shutil

    folder = tmp_path / "tiny"
    shutil.copytree(tiny_model_dir, folder)
    before = json.loads((folder / "card.json").read_text())
    common = ["--data", "synthetic-microcalc", "--limit-per-class", "40", "--json"]
    code, out, _ = run(
        capsys,
        "stress",
        "--model",
        str(folder),
        *common,
        "--shifts",
        "blur,noise",
        "--severities",
        "1,5",
        "--write-card",
    )
    payload = json.loads(out)
    assert code == 0 and payload["card_written"] == str(folder)
    card = json.loads((folder / "card.json").read_text())
    assert card["stress"]["shifts"]["blur"]["accuracy"] == payload["shifts"]["blur"]["accuracy"]
    assert card["stress"]["severities"] == [1, 5]
    assert {k: v for k, v in card.items() if k != "stress"} == {
        k: v for k, v in before.items() if k != "stress"
    }
    readme = (folder / "README.md").read_text()
    assert readme.count("## Robustness (stress test)") == 1
    assert "| shift (parameter) | severity 1 | severity 5 |" in readme

    code, out, _ = run(capsys, "evaluate", "--model", str(folder), *common, "--bootstrap", "0")
    default = json.loads(out)
    assert code == 0 and default["threshold"] == pytest.approx(card["threshold"])
    assert default["threshold_method"] == card["threshold_method"]
    code, out, _ = run(
        capsys,
        "evaluate",
        "--model",
        str(folder),
        *common,
        "--bootstrap",
        "0",
        "--threshold-policy",
        "fixed:0.3",
    )
    fixed = json.loads(out)
    assert code == 0 and fixed["threshold"] == 0.3 and fixed["threshold_method"] == "fixed:0.3"
    code, out, _ = run(
        capsys,
        "evaluate",
        "--model",
        str(folder),
        *common,
        "--bootstrap",
        "0",
        "--threshold-policy",
        "youden",
    )
    youden = json.loads(out)
    assert code == 0 and youden["threshold_method"] == "youden"
    assert "on the val split" in youden["threshold_reason"]
    assert 0.0 <= youden["threshold"] <= 1.0


def test_baseline_json_matches_the_library_call(capsys):
    from medviz.baseline import evaluate_baseline
    from medviz.data import load_dataset

    code, out, _ = run(capsys, "baseline", "--data", "synthetic-microcalc", "--split", "test",
                       "--threshold", "100", "--json")  # fmt: skip
    assert code == 0
    payload = json.loads(out)
    expected = evaluate_baseline(load_dataset("synthetic-microcalc"), split="test", threshold=100)
    assert payload["threshold"] == 100 and payload["n"] == expected.n
    assert payload["accuracy"] == pytest.approx(expected.accuracy)
    assert set(payload["averages"]) == {"macro", "weighted"}


def test_train_config_file_with_flag_overrides(tmp_path):
    from medviz.cli import config_from_file

    card = {"training": {"config": {"arch": "vgg-small", "epochs": 7, "learning_rate": 0.01,
                                    "augment": {"horizontal_flip": True}}}}  # fmt: skip
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card))
    config = config_from_file(path, overrides={"epochs": 2})
    assert (config.arch, config.epochs, config.learning_rate) == ("vgg-small", 2, 0.01)
    assert config.augment.horizontal_flip is True
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("arch: fast-cnn\nepochs: 3\nlr_schedule: cosine\nreduce_lr_patience: null\n")
    assert config_from_file(recipe).lr_schedule == "cosine"
    recipe.write_text("arch: fast-cnn\nepochz: 3\n")
    with pytest.raises(MedvizError, match="epochz"):
        config_from_file(recipe)


def test_train_with_config_file_records_the_file_recipe(capsys, tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"arch": "fast-cnn", "epochs": 3, "batch_size": 16,
                                  "augment": {}, "jit_compile": False}))  # fmt: skip
    out_dir = tmp_path / "m"
    code, _, _ = run(capsys, "train", "--config", str(recipe), "--epochs", "1",
                       "--limit-per-class", "30", "--out", str(out_dir), "--precise-bn",
                       "--runs", str(tmp_path / "runs"), "--json")  # fmt: skip
    assert code == 0
    card = json.loads((out_dir / "card.json").read_text())
    config = card["training"]["config"]
    assert (config["epochs"], config["batch_size"], config["arch"]) == (1, 16, "fast-cnn")
    assert config["precise_bn"] is True  # the flag overrides the file (which leaves it off)
