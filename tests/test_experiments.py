"""The experiment files and their loader: every shipped file is valid, bad files fail clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from medviz.errors import DataError
from medviz.experiments import (
    Experiment,
    experiments_dir,
    list_experiments,
    load_experiment,
    parse_experiment,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "experiments"


def _valid() -> dict:
    return yaml.safe_load((SHIPPED / "synthetic-microcalc-demo.yaml").read_text())


def test_every_shipped_experiment_loads():
    experiments = list_experiments(SHIPPED)
    names = {e.name for e in experiments}
    # The list: each source work has at least one file.
    for expected in (
        "pneumonia-simple-cnn",
        "brain-mri-cnn",
        "brain-mri-alexnet",
        "brain-mri-efficientnetb0",
        "mammo-microcalc-cnn",
        "covid-ct-cnn",
        "pneumonia-alexnet-undersample",
        "chest-abdomen-inceptionv3-frozen",
        "chest-abdomen-inceptionv3-finetuned",
    ):
        assert expected in names
    for e in experiments:
        assert isinstance(e, Experiment)
        assert e.config.image_size is not None and e.expected_minutes > 0
        assert e.path is not None and e.path.stem == e.name
    covid = load_experiment("covid-ct-cnn", folder=SHIPPED)
    assert covid.baseline_threshold == 120 and covid.figure("accuracy").value == 0.956
    assert covid.cross_datasets == () and "no second CT source" in covid.cross_dataset_note
    alexnet = load_experiment("pneumonia-alexnet-undersample", folder=SHIPPED)
    assert alexnet.config.imbalance == "undersample" and alexnet.repeats == 10
    assert alexnet.deep_dream
    brain = load_experiment("brain-mri-cnn", folder=SHIPPED)
    assert brain.config.augment.noise_sigma == 20.0 and brain.repeats == 5
    frozen = load_experiment("chest-abdomen-inceptionv3-frozen", folder=SHIPPED)
    assert frozen.config.arch_options == {"pretrained": False, "mode": "feature-extractor"}
    assert "pretrained: false" in frozen.weights and frozen.predict_files


def test_default_folder_is_the_checkout_or_the_env(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDVIZ_EXPERIMENTS_DIR", str(tmp_path))
    assert experiments_dir() == tmp_path
    assert list_experiments() == []
    monkeypatch.delenv("MEDVIZ_EXPERIMENTS_DIR")
    monkeypatch.setenv("MEDVIZ_HOME", str(ROOT))
    assert experiments_dir() == SHIPPED


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda v: v.pop("repeats"), "missing field(s) ['repeats']"),
        (lambda v: v.update(colour="red"), "unknown field(s) ['colour']"),
        (lambda v: v.update(repeats=0), "repeats must be a whole number >= 1, got 0"),
        (lambda v: v["dataset"].update(name="nope"), "unknown dataset 'nope'"),
        (lambda v: v["config"].update(epoch=3), "unknown TrainConfig field(s) ['epoch']"),
        (lambda v: v["config"].update(arch="resnet9"), "unknown architecture 'resnet9'"),
        (lambda v: v["config"].update(imbalance="smote"), "imbalance must be"),
        (lambda v: v["config"].pop("image_size"), "config.image_size must be set"),
        (lambda v: v.update(metrics=["f2"]), "metrics ['f2'] not reportable"),
        (
            lambda v: v.update(published=[{"metric": "accuracy", "value": 93.75}]),
            "needs exactly",
        ),
        (
            lambda v: v.update(
                published=[{"metric": "accuracy", "value": 93.75, "model": "m", "measured_on": "t"}]
            ),
            "must be a fraction in [0, 1], got 93.75",
        ),
        (lambda v: v.update(links=["home"]), "unknown links ['home']"),
        (lambda v: v.update(baseline_threshold=300), "grey level 0–255, got 300"),
        (lambda v: v.update(expected_minutes=-1), "expected_minutes must be a positive number"),
        (lambda v: v.update(source="a repo"), "source must be a mapping"),
    ],
)
def test_invalid_experiment_fails_naming_the_field(change, message, tmp_path):
    values = _valid()
    change(values)
    path = tmp_path / "synthetic-microcalc-demo.yaml"
    path.write_text(yaml.safe_dump(values))
    with pytest.raises(DataError) as caught:
        load_experiment(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_name_must_match_file_and_unknown_names_list_the_known(tmp_path):
    values = _valid()
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(values))
    with pytest.raises(DataError, match="must equal the file's stem 'other'"):
        load_experiment(tmp_path / "other.yaml")
    with pytest.raises(DataError, match=r"unknown experiment 'nope'.*covid-ct-cnn"):
        load_experiment("nope", folder=SHIPPED)
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    with pytest.raises(DataError, match="cannot read"):
        load_experiment(tmp_path / "broken.yaml")
    assert parse_experiment(values).name == "synthetic-microcalc-demo"


def test_train_config_file_reads_an_experiment(tmp_path):
    from medviz.cli import config_from_file

    config = config_from_file(SHIPPED / "pneumonia-simple-cnn.yaml", overrides={"epochs": 2})
    assert config.arch == "simple-cnn" and config.imbalance == "class-weights"
    assert config.augment.rotation_deg == 5.0 and config.augment.zoom_max == 1.2
    assert config.epochs == 2


def test_train_without_data_uses_the_experiment_dataset(tmp_path):
    import json

    from medviz.data.recipe import DataRecipe, data_recipe_from_file

    assert data_recipe_from_file(SHIPPED / "covid-ct-cnn.yaml") == DataRecipe("covid-ct", 1)
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"arch": "fast-cnn", "epochs": 1}))
    assert data_recipe_from_file(plain) is None  # medviz train then uses --data's default
