"""medviz.data.recipe: a config file's dataset block, and ``medviz train --config`` using it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medviz.data.recipe import DataRecipe, data_recipe_from_file, load_recipe_data
from medviz.errors import DataError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tools" / "make_models" / "configs"


def _write(tmp_path: Path, dataset: object, **config: object) -> Path:
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"dataset": dataset, "config": {"arch": "fast-cnn", **config}}))
    return path


def test_dataset_block_is_read_and_checked(tmp_path):
    block = {"name": "synthetic-microcalc", "channels": 1, "class_names": ["calm", "specks"]}
    assert data_recipe_from_file(_write(tmp_path, block)) == DataRecipe(
        "synthetic-microcalc", 1, ("calm", "specks")
    )
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({"arch": "fast-cnn"}))
    assert data_recipe_from_file(plain) is None  # plain TrainConfig fields name no data
    with pytest.raises(DataError, match="unknown dataset key"):
        data_recipe_from_file(_write(tmp_path, {"name": "synthetic-microcalc", "classes": "a,b"}))
    with pytest.raises(DataError, match="registered dataset"):
        data_recipe_from_file(_write(tmp_path, {"name": "no-such-data"}))
    with pytest.raises(DataError, match="registered dataset"):
        data_recipe_from_file(_write(tmp_path, {"name": "covid-ct", "lesion_data": "nope"}))
    with pytest.raises(DataError, match="class_names must be a list"):
        data_recipe_from_file(_write(tmp_path, {"name": "covid-ct", "class_names": "a,b"}))
    with pytest.raises(DataError, match="mapping with a 'name'"):
        data_recipe_from_file(_write(tmp_path, ["covid-ct"]))


def test_every_make_models_config_names_its_data():
    files = sorted(CONFIGS.glob("*.yaml"))
    assert files
    for file in files:
        recipe = data_recipe_from_file(file)
        assert recipe is not None, file.name
    brain = data_recipe_from_file(CONFIGS / "brain-mri.yaml")
    assert brain.lesion_data == "brain-tumor-boxes"  # its box-guided training needs the masks


def test_class_names_replace_the_data_names_and_must_fit():
    recipe = DataRecipe("synthetic-microcalc", 1, ("calm", "specks"))
    data = load_recipe_data(recipe, image_size=32, limit_per_class=6)
    assert data.class_names == ("calm", "specks") and data.images.shape[1:] == (32, 32, 1)
    with pytest.raises(DataError, match="2 names"):
        load_recipe_data(DataRecipe("synthetic-microcalc", 1, ("a", "b", "c")), image_size=32)
    with pytest.raises(DataError, match="without --stream"):
        load_recipe_data(
            DataRecipe("covid-ct", lesion_data="brain-tumor-boxes"), image_size=32, stream=True
        )


def test_train_config_file_alone_sets_data_and_class_names(tmp_path, capsys):
    from medviz.cli import main
    from medviz.store import load_bundle

    block = {"name": "synthetic-microcalc", "channels": 1, "class_names": ["calm", "specks"]}
    config = _write(tmp_path, block, image_size=32, epochs=1, batch_size=16)
    out = tmp_path / "model"
    argv = ["train", "--config", str(config), "--limit-per-class", "24", "--out", str(out)]
    assert main([*argv, "--json", "--quiet"]) == 0
    card = load_bundle(out).card
    assert card.class_names == ("calm", "specks")
    assert "synthetic" in card.facts.dataset.lower()


def test_shipped_brain_recipe_trains_through_the_public_command(tmp_path, shared_root):
    """The file alone joins the lesion images: box-guided training refuses data without masks."""
    from medviz.cli import main
    from medviz.store import load_bundle

    out = tmp_path / "brain"
    argv = ["train", "--config", str(CONFIGS / "brain-mri.yaml"), "--out", str(out), "--quiet"]
    small = ["--epochs", "1", "--image-size", "32", "--limit-per-class", "4", "--json"]
    assert main([*argv, *small]) == 0
    card = load_bundle(out).card
    assert card.class_names == ("glioma", "meningioma", "notumor", "pituitary")
    assert card.facts.config["cam_guidance"] == 1.0
    assert card.facts.dataset == "brain-mri+brain-tumor-boxes"  # the lesion images joined
