"""``tools.make_models``: recipes are well-formed; every shipped model loads with a full card.

Only two tests train, one epoch on 40 synthetic 32 px images each (the build
path through the public API, and a CLI recipe run in its output root). The check
that needs ``../shared/datasets`` is marked ``shared`` and skipped when the data
is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medviz.training import recompute_batchnorm_statistics
from tools.make_models import build, docs, recipes
from tools.make_models.report import render_report

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
SHIPPED_DIRS = sorted(p.name for p in MODELS.iterdir() if (p / "model.keras").exists())


def _recipe_names(**kw) -> list[str]:
    return [r.name for r in recipes.recipes(**kw)]


def test_recipe_names_are_unique_and_cover_the_models_folder():
    names = _recipe_names(shipped=True, bench=True)
    assert len(names) == len(set(names))
    shipped = set(_recipe_names(shipped=True))
    # every folder in models/ is reproducible by `make models`, and every recipe has its folder
    assert set(SHIPPED_DIRS) == shipped


def test_train_recipes_are_well_formed():
    from medviz.data.registry import get_spec
    from medviz.zoo import get_arch

    for recipe in recipes.recipes(shipped=True, bench=True):
        if isinstance(recipe, recipes.CliRecipe):
            continue
        spec = get_spec(recipe.data)
        config = recipe.config
        assert config.image_size is not None, recipe.name
        assert config.image_size >= get_arch(config.arch).min_size, recipe.name
        assert recipe.channels in (1, 3)
        assert config.seed == 0, "seed 0 keeps the splits equal to those of `medviz baseline`"
        assert not config.jit_compile, "XLA was measured slower on the CPU for these nets"
        assert recipe.limitations, recipe.name
        assert recipe.title
        if recipe.class_names is not None:
            assert len(recipe.class_names) == len(spec.class_names), recipe.name
        if recipe.shipped:
            assert spec.shippable, f"{recipe.name}: {recipe.data} may not be shipped"
            assert recipe.intended_use and "clinical" in recipe.intended_use
            assert recipe.command() == f"{recipes.THIS_COMMAND} --only {recipe.name}"
        else:
            assert "--bench" in recipe.command()
        # round-trips through the card's JSON form
        from medviz.training import TrainConfig

        assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_cli_recipes_parse_and_write_their_own_folder():
    from medviz.cli import build_parser

    parser = build_parser()
    for recipe in recipes.recipes(shipped=True):
        if not isinstance(recipe, recipes.CliRecipe):
            continue
        args = parser.parse_args(list(recipe.argv))
        assert args.command == "train"
        assert Path(args.out) == Path("models") / recipe.name
        assert recipe.command().startswith("python -m medviz train ")


def test_cross_cells_and_baselines_name_known_things():
    from medviz.data.registry import DATASETS

    names = set(_recipe_names(shipped=True, bench=True))
    for cell in recipes.CROSS:
        assert cell.model in names
        assert cell.data in DATASETS
        assert cell.split in ("train", "val", "test", "all")
        assert cell.note
    assert set(recipes.BASELINES) <= set(DATASETS)


def test_accuracy_ci_brackets_the_accuracy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 400)
    pred = np.where(rng.random(400) < 0.9, y, 1 - y)
    lo, hi = build.accuracy_ci(y, pred, n_bootstrap=300)
    acc = (y == pred).mean()
    assert lo < acc < hi
    assert hi - lo < 0.1
    assert build.accuracy_ci(y, y, n_bootstrap=50) == [1.0, 1.0]


def test_report_markdown_is_rendered_from_json():
    report = {
        "generated_by": "python -m tools.make_models --bench",
        "date": "2026-01-01",
        "machine": "test",
        "models": [
            {
                "name": "m",
                "shipped": False,
                "data": "covid-ct",
                "input": "128x128x1",
                "arch": "fast-cnn",
                "params": 1234,
                "seconds": 12.0,
                "size_bytes": 2_000_000,
                "metrics": {
                    "test": {
                        "n": 10,
                        "accuracy": 0.9,
                        "accuracy_ci": [0.8, 1.0],
                        "auc": 0.95,
                        "auc_ci": [0.9, 0.99],
                        "ece": 0.05,
                    }
                },
                "published": {"source": "paper", "CNN": {"accuracy": 0.93}},
            }
        ],
        "baselines": [
            {
                "data": "covid-ct",
                "split": "test",
                "command": "python -m medviz baseline --data covid-ct --json",
                "result": {"n": 10, "accuracy": 0.6, "auc": 0.65, "auc_ci": [0.5, 0.8]},
            }
        ],
        "cross_dataset": [],
    }
    text = render_report(report)
    assert "0.900 [0.800–1.000]" in text
    assert "CNN: accuracy 0.93" in text
    assert "| covid-ct | test | 10 | 0.600 |" in text


def test_bench_markdown_matches_its_json():
    path = REPO / "bench" / "results" / "models.json"
    if not path.exists():
        pytest.skip("bench/results/models.json not generated yet (make_models --bench)")
    report = json.loads(path.read_text(encoding="utf-8"))
    assert (path.parent / "models.md").read_text(encoding="utf-8") == render_report(report)
    shipped = {m["name"] for m in report["models"] if m["shipped"]}
    assert shipped <= set(SHIPPED_DIRS)


@pytest.mark.parametrize("name", SHIPPED_DIRS)
def test_shipped_model_loads_with_a_complete_card(name):
    from medviz.store import NOTICE, load_bundle

    folder = MODELS / name
    assert (folder / "model.keras").stat().st_size <= recipes.MAX_MODEL_BYTES
    bundle = load_bundle(folder)
    card = bundle.card
    assert card.name == name
    assert card.title and card.modality != "unknown" and card.arch != "unknown"
    assert card.params > 0 and card.licence != "unknown"
    assert set(card.preprocessing) >= {"colour", "resize", "input_range"}
    training = card.training
    for key in ("dataset", "licence", "counts", "command", "seconds", "machine", "date", "config"):
        assert training.get(key), f"{name}: card.training lacks {key}"
    assert {"train", "val"} <= set(training["counts"])
    assert "val" in card.metrics
    for split, m in card.metrics.items():
        assert m["n"] > 0, split
        assert m["accuracy"] is not None and m["auc"] is not None
        assert m["auc_ci"][0] <= m["auc"] <= m["auc_ci"][1]
    assert set(card.calibration) == {"val_ece_before", "val_ece_after"}
    assert card.temperature > 0
    assert (card.threshold is not None) == (card.n_classes == 2)
    assert card.reference
    assert card.notice == NOTICE
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert readme.startswith("---\nlibrary_name: keras\n")
    assert "not for clinical use" in readme
    recipe = recipes.get_recipe(name)
    if isinstance(recipe, recipes.Recipe):
        # made by make_models: honest limitations, accuracy intervals, the exact command
        assert list(card.limitations) == list(recipe.limitations)
        assert training["command"].startswith(recipe.command())
        for m in card.metrics.values():
            assert m["accuracy_ci"][0] <= m["accuracy"] <= m["accuracy_ci"][1]
        assert "test" in card.metrics
    else:
        assert training["command"] == recipe.command()
    x = np.full((3, card.image_size, card.image_size, card.channels), 100, np.uint8)
    probs = bundle.predict_proba(x)
    assert probs.shape == (3, card.n_classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)


@pytest.mark.shared
@pytest.mark.parametrize("name", ["pneumonia-xray"])
def test_card_val_metrics_reproduce_from_the_data(name):
    from medviz.cli import load_for_model
    from medviz.data.registry import get_spec
    from medviz.pipeline import evaluate_split
    from medviz.store import load_bundle

    if name not in SHIPPED_DIRS:
        pytest.skip(f"models/{name} not built")
    recipe = recipes.get_recipe(name)
    if not get_spec(recipe.data).is_available():
        pytest.skip(f"{recipe.data} is not under the data root")
    bundle = load_bundle(MODELS / name)
    data = load_for_model(recipe.data, bundle.card)
    ev = evaluate_split(bundle, data, "val", n_bootstrap=0)
    assert ev.n == bundle.card.metrics["val"]["n"]
    assert ev.auc == pytest.approx(bundle.card.metrics["val"]["auc"], abs=1e-3)


def test_every_recipe_config_is_a_medviz_train_config_file(tmp_path):
    """Each recipe's config round-trips through the file `medviz train --config` reads."""
    import json

    from medviz.cli import config_from_file

    for recipe in recipes.recipes(shipped=True, bench=True):
        if isinstance(recipe, recipes.CliRecipe):
            continue
        assert recipe.config.precise_bn  # precise BN is the config's, not a patch of train()
        path = tmp_path / f"{recipe.name}.json"
        path.write_text(json.dumps(recipe.config.to_dict()))
        assert config_from_file(path) == recipe.config


def test_inference_model_drops_the_optimizer_but_keeps_the_graph():
    from medviz.zoo import build_model

    model = build_model("fast-cnn", (32, 32, 1), 2, seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    export = build.inference_model(model)
    assert not export.compiled
    assert [layer.name for layer in export.layers] == [layer.name for layer in model.layers]
    x = np.zeros((1, 32, 32, 1), np.float32)
    np.testing.assert_allclose(np.asarray(export(x)), np.asarray(model(x)), rtol=1e-6)


def test_readme_table_of_shipped_models_is_in_step_with_the_cards(tmp_path):
    readme = (recipes.REPO_ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split(docs.README_BEGIN, 1)[1].split(docs.README_END, 1)[0]
    table = docs.render_shipped_table()
    assert block.strip() == table, "run: python -m tools.make_models --readme"
    for name in SHIPPED_DIRS:
        card = json.loads((MODELS / name / "card.json").read_text())
        assert f"`{name}`" in table and f"{card['metrics']['test']['accuracy']:.3f}" in table

    copy = tmp_path / "README.md"
    copy.write_text(f"intro\n{docs.README_BEGIN}\nstale\n{docs.README_END}\noutro\n")
    assert docs.update_readme(copy) is True and docs.update_readme(copy) is False
    assert copy.read_text() == f"intro\n{docs.README_BEGIN}\n{table}\n{docs.README_END}\noutro\n"
    copy.write_text("no markers\n")
    with pytest.raises(SystemExit, match="no"):
        docs.update_readme(copy)


def test_model_readme_keeps_the_sections_of_built_cards():
    """``medviz.ood.fit.write_detector`` renders READMEs through the library, not the tool."""
    from dataclasses import replace

    from medviz.model_readme import is_built_card, render_model_readme
    from medviz.store import ModelCard, render_card_markdown

    built = 0
    for name in SHIPPED_DIRS:
        card = ModelCard.from_dict(json.loads((MODELS / name / "card.json").read_text()))
        if not isinstance(recipes.get_recipe(name), recipes.Recipe):
            assert not is_built_card(card)
            assert render_model_readme(card) == render_card_markdown(card)
            continue
        built += 1
        assert is_built_card(card)
        text = render_model_readme(card)
        assert text == docs.render_readme(card)
        assert "(computed by tools.make_models)" in text
        assert f"- `{recipes.THIS_COMMAND} --only {name}`" in text
        training = {k: v for k, v in card.training.items() if k != "reproduce"}
        plain = replace(card, training=training)
        assert render_model_readme(plain) == render_card_markdown(plain)
    assert built


def _tiny_recipe():
    from medviz.augment import AugmentConfig
    from medviz.training import TrainConfig

    config = TrainConfig(
        arch="fast-cnn",
        image_size=32,
        epochs=1,
        batch_size=16,
        augment=AugmentConfig.none(),
        jit_compile=False,
        precise_bn=True,
    )
    return recipes.Recipe(
        name="tiny",
        title="Tiny",
        data="synthetic-microcalc",
        config=config,
        limitations=("toy",),
        intended_use="tests; not for clinical use",
    )


def test_build_recipe_recomputes_batchnorm_before_packaging_without_patching(tmp_path):
    """Precise BN runs between ``train`` and ``package_result``; ``pipeline.train`` stays."""
    import medviz.pipeline
    import medviz.training
    from medviz.store import load_bundle

    recipe = _tiny_recipe()
    folder = tmp_path / "models" / "tiny"
    summary = build.build_recipe(
        recipe, out=folder, root=tmp_path, n_bootstrap=20, limit_per_class=20, log=lambda _: None
    )
    assert medviz.pipeline.train is medviz.training.train
    assert summary["folder"] == "models/tiny" and summary["command"] == recipe.command()
    bundle = load_bundle(folder)
    training = bundle.card.training
    assert training["batchnorm_statistics"].startswith("recomputed")
    assert training["config"]["precise_bn"] is True
    assert training["reproduce"] == build.reproduce_line(recipe)
    assert recipes.THIS_COMMAND in training["reproduce"]
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert readme == docs.render_readme(bundle.card)
    # The saved statistics are the population ones: recomputing them changes nothing.
    import keras

    bn = keras.layers.BatchNormalization
    layers = [layer for layer in bundle.model.layers if isinstance(layer, bn)]
    assert layers
    saved = [np.asarray(layer.moving_mean).copy() for layer in layers]
    data = build.load_recipe_data(recipe, limit_per_class=20)
    recompute_batchnorm_statistics(bundle.model, data.split("train").images, seed=0)
    for layer, before in zip(layers, saved, strict=True):
        np.testing.assert_allclose(np.asarray(layer.moving_mean), before, rtol=1e-4, atol=1e-5)


def test_cli_recipe_runs_in_the_output_root_and_keeps_the_working_folder(tmp_path, monkeypatch):
    argv = ("train", "--data", "synthetic-microcalc", "--epochs", "1", "--image-size", "32",
            "--limit-per-class", "20", "--out", "models/microcalc-synthetic",
            "--name", "microcalc-synthetic", "--json")  # fmt: skip
    recipe = recipes.CliRecipe(name="microcalc-synthetic", argv=argv)
    elsewhere, root = tmp_path / "elsewhere", tmp_path / "root"
    elsewhere.mkdir()
    root.mkdir()
    monkeypatch.chdir(elsewhere)
    summary = build.build_cli_recipe(recipe, root=root, log=lambda _: None)
    assert Path.cwd() == elsewhere and not any(elsewhere.iterdir())
    assert summary["folder"] == "models/microcalc-synthetic"
    card = json.loads((root / "models" / "microcalc-synthetic" / "card.json").read_text())
    assert card["training"]["command"] == recipe.command()  # relative paths, as run
    assert (root / "runs").is_dir()

    broken = recipes.CliRecipe(name="microcalc-synthetic", argv=("train", "--data", "nothing"))
    with pytest.raises(SystemExit, match="exited with 2"):
        build.build_cli_recipe(broken, root=root, log=lambda _: None)


def test_report_only_carries_rows_of_models_not_on_disk(tmp_path):
    """A --report-only run keeps the previous rows of bench models whose folders are gone."""
    import json

    from tools.make_models.report import _previous_report, render_report

    metrics = {"n": 10, "accuracy": 0.9, "accuracy_ci": [0.8, 1.0], "auc": 0.95, "ece": 0.01}
    entry = {
        "name": "covid-ct", "shipped": False, "data": "covid-ct", "input": "128x128x1",
        "arch": "res-cnn-fast", "params": 1000, "seconds": 10.0, "size_bytes": 2e6,
        "metrics": {"val": metrics},
    }  # fmt: skip
    cell = {
        "model": "covid-ct", "data": "covid-ct", "split": "test", "note": "n",
        "command": "c", "result": {"n": 10, "accuracy": 0.9, "auc": 0.9, "ece": 0.1},
    }  # fmt: skip
    (tmp_path / "models.json").write_text(
        json.dumps({"date": "2026-12-01", "models": [entry], "cross_dataset": [cell]})
    )
    previous = _previous_report(tmp_path)
    assert previous["models"]["covid-ct"]["carried_from"] == "2026-12-01"
    assert previous["cross"][("covid-ct", "covid-ct", "test")]["carried_from"] == "2026-12-01"
    report = {
        "generated_by": "x", "date": "2026-12-03", "machine": "m", "baselines": [],
        "models": [previous["models"]["covid-ct"]],
        "cross_dataset": [previous["cross"][("covid-ct", "covid-ct", "test")]],
    }  # fmt: skip
    md = render_report(report)
    assert "| covid-ct † |" in md and "Carried over from the run of 2026-12-01" in md
    assert _previous_report(tmp_path / "nowhere") == {}
