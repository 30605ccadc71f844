import dataclasses
import json
import shutil

import numpy as np
import pytest

from medviz.errors import ModelError, OfflineError
from medviz.store import (
    ModelCard,
    load_bundle,
    render_card_markdown,
    save_bundle,
    validate_repo_id,
)


def test_round_trip_folder_and_file(tiny_model_dir, tiny_packaged, tiny_microcalc):
    from dataclasses import replace

    bundle = load_bundle(tiny_model_dir)
    assert bundle.card.created and bundle.card.medviz_version  # stamped by save_bundle
    assert replace(bundle.card, created="", medviz_version="") == tiny_packaged.bundle.card
    images = tiny_microcalc.images[:5]
    np.testing.assert_allclose(
        bundle.predict_proba(images), tiny_packaged.bundle.predict_proba(images), atol=1e-5
    )
    from_file = load_bundle(tiny_model_dir / "model.keras")
    assert from_file.card.name == "tiny"
    readme = (tiny_model_dir / "README.md").read_text()
    assert readme.startswith("---\nlibrary_name: keras") and "not for clinical use" in readme


def test_model_without_card_gets_an_inferred_one(tiny_model_dir, tmp_path):
    shutil.copy(tiny_model_dir / "model.keras", tmp_path / "bare.keras")
    bundle = load_bundle(tmp_path / "bare.keras")
    assert bundle.card.class_names == ("class 0", "class 1")
    assert bundle.card.image_size == 32 and bundle.card.limitations


def test_failed_save_keeps_the_previous_model(tiny_model_dir, tiny_packaged, tmp_path, monkeypatch):
    target = tmp_path / "m"
    shutil.copytree(tiny_model_dir, target)
    before = (target / "model.keras").read_bytes()
    model = tiny_packaged.bundle.model

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(type(model), "save", disk_full)
    with pytest.raises(ModelError, match=r"No space left on device.*unchanged"):
        save_bundle(model, tiny_packaged.bundle.card, target)
    assert (target / "model.keras").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"], "staging folder left behind"


def test_lambda_layers_are_refused(tmp_path):
    import keras

    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Lambda(lambda t: t * 2)(inputs)
    keras.Model(inputs, outputs).save(tmp_path / "evil.keras")
    with pytest.raises(ModelError, match="Lambda"):
        load_bundle(tmp_path / "evil.keras")


def test_legacy_formats_say_convert(tmp_path):
    (tmp_path / "old.h5").write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ModelError, match=r"legacy HDF5.*convert"):
        load_bundle(tmp_path / "old.h5")
    saved = tmp_path / "savedmodel"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ModelError, match=r"SavedModel.*Convert"):
        load_bundle(saved)
    with pytest.raises(ModelError, match="does not exist"):
        load_bundle(tmp_path / "missing")


def test_card_that_disagrees_with_the_model_is_refused(tiny_model_dir, tmp_path):
    target = tmp_path / "m"
    shutil.copytree(tiny_model_dir, target)
    card = json.loads((target / "card.json").read_text())
    card["class_names"] = ["a", "b", "c"]
    (target / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="disagree"):
        load_bundle(target)


def test_hub_loading_from_a_local_cache(tiny_model_dir, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    snapshot = cache / "models--medviz--tiny" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    for name in ("model.keras", "card.json", "README.md"):
        shutil.copy(tiny_model_dir / name, snapshot / name)
    (cache / "models--medviz--tiny" / "refs").mkdir()
    (cache / "models--medviz--tiny" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    bundle = load_bundle("hf://medviz/tiny")
    assert bundle.card.name == "tiny"
    with pytest.raises(OfflineError, match="not in the local cache"):
        load_bundle("hf://medviz/absent")


@pytest.mark.parametrize("repo", ["../etc", "user", "user/re po", "a/b/c", "/abs/path"])
def test_invalid_repo_ids(repo):
    with pytest.raises(ModelError, match="invalid Hugging Face repo id"):
        validate_repo_id(repo)


def test_card_validation_and_markdown():
    with pytest.raises(ModelError, match="2 class names"):
        ModelCard(name="x", class_names=("a",), image_size=8, channels=1)
    with pytest.raises(ModelError, match="channels"):
        ModelCard(name="x", class_names=("a", "b"), image_size=8, channels=2)
    card = ModelCard(
        name="x", class_names=("a", "b"), image_size=8, channels=1, licence="CC BY 4.0"
    )
    text = render_card_markdown(card)
    assert "license: cc-by-4.0" in text and "`a`, `b`" in text
    assert ModelCard.from_dict({**card.to_dict(), "future_field": 1}) == card


def test_card_front_matter_is_valid_hub_metadata():
    from huggingface_hub import ModelCard as HubCard

    card = ModelCard(
        name="x",
        class_names=("a", "b"),
        image_size=8,
        channels=1,
        licence="none stated (Open-i images)",
        training={"dataset": "chest"},
        metrics={
            "val": {"accuracy": 0.9, "auc": float("nan")},
            "test": {"accuracy": 0.8, "auc": 0.85},
        },
    )
    data = HubCard(render_card_markdown(card)).data
    assert data.license == "other" and data.license_name == "none-stated-open-i-images"
    assert data.library_name == "keras" and "medical-imaging" in data.tags
    assert data.model_name == "x" and data.datasets == ["chest"]
    got = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    assert got == {("val", "accuracy"): 0.9, ("test", "accuracy"): 0.8, ("test", "roc_auc"): 0.85}
    plain = render_card_markdown(dataclasses.replace(card, metrics={}, licence="CC BY 4.0"))
    assert plain.startswith(
        "---\nlibrary_name: keras\nlicense: cc-by-4.0\ndatasets:\n- chest\ntags:\n- medviz\n"
        "- image-classification\n"
        "- medical-imaging\n- unknown\npipeline_tag: image-classification\n---\n\n# x\n"
    )


def test_run_store_records_history_and_model(tiny_packaged, tmp_path):
    from medviz.store import RunStore

    store = RunStore(tmp_path / "runs")
    record = store.create({"arch": "fast-cnn"}, label="tiny run")
    assert store.list()[0].status == "running" and store.history(record) == {}
    store.log_history(record, {"loss": [0.7, 0.5]})
    done = store.finish(
        record,
        model=tiny_packaged.bundle.model,
        card=tiny_packaged.bundle.card,
        metrics={"test": {"auc": 0.9}},
    )
    assert done.status == "finished" and done.finished
    listed = store.list()
    assert [r.run_id for r in listed] == [record.run_id] and "tiny-run" in record.run_id
    assert store.history(listed[0]) == {"loss": [0.7, 0.5]}
    assert load_bundle(listed[0].model_folder).card.name == "tiny"
    (tmp_path / "runs" / "half-written").mkdir()  # no run.json: skipped, not a crash
    (tmp_path / "runs" / "broken").mkdir()
    (tmp_path / "runs" / "broken" / "run.json").write_text("{")
    assert len(store.list()) == 1


def _stress_dict() -> dict:
    from medviz.stress import StressReport

    return StressReport(
        class_names=("normal", "microcalcification"),
        shifts=("blur", "jpeg"),
        severities=(1, 3, 5),
        accuracy=np.array([[0.91, 0.8, 0.55], [0.9, 0.88, 0.7]]),
        auc=np.array([[0.97, 0.9, 0.6], [0.96, 0.95, np.nan]]),
        clean_accuracy=0.93,
        clean_auc=0.98,
        n=40,
        n_available=360,
        seed=0,
        temperature=1.1,
        threshold=0.5,
        seconds=2.0,
        split="val",
        dataset="synthetic-microcalc",
    ).to_dict()


def test_card_readme_renders_the_stress_table_and_threshold_reason():
    card = ModelCard(
        name="m",
        class_names=("normal", "microcalcification"),
        image_size=32,
        channels=1,
        threshold=0.5,
        threshold_method="fixed:0.5",
        threshold_reason="fixed 0.5 on calibrated probabilities",
        stress=_stress_dict(),
    )
    text = render_card_markdown(card)
    assert "- Operating threshold: 0.500 (fixed:0.5)" in text
    assert "- Why this threshold: fixed 0.5 on calibrated probabilities" in text
    assert "## Robustness (stress test)" in text
    assert "the val split of synthetic-microcalc (n=40 of 360, seed 0, threshold 0.500)" in text
    assert "| shift (parameter) | severity 1 | severity 3 | severity 5 |" in text
    assert "| Gaussian blur (sigma, pixels: 0.5, 1, 2) | 0.910 / 0.970 | 0.800 / 0.900 | " in text
    assert "| 0.700 / – |" in text  # an undefined AUC
    assert "Worst shift: blur." in text
    assert text.index("## Robustness") < text.index("## Intended use")
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    # Cards without the new fields render exactly as before (no empty sections).
    plain = render_card_markdown(
        ModelCard(name="m", class_names=("a", "b"), image_size=8, channels=1)
    )
    assert "Robustness" not in plain and "Why this threshold" not in plain


def test_write_card_stress_updates_card_and_readme_in_place(tiny_model_dir, tmp_path):
    from medviz.store import STRESS_BEGIN, write_card_stress

    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    values = json.loads((folder / "card.json").read_text())
    values["future_field"] = {"kept": True}  # keys this version does not know survive
    (folder / "card.json").write_text(json.dumps(values))
    # A README of a card without a stress table, with a hand-written section after it.
    without = ModelCard.from_dict({**values, "stress": None})
    readme = render_card_markdown(without) + "\n## Extra\nhand-written notes\n"
    assert STRESS_BEGIN not in readme
    (folder / "README.md").write_text(readme)
    weights = (folder / "model.keras").read_bytes()

    stress = _stress_dict()
    card = write_card_stress(folder, stress)
    assert card.stress == stress
    saved = json.loads((folder / "card.json").read_text())
    assert saved["stress"] == stress and saved["future_field"] == {"kept": True}
    assert saved["metrics"] == values["metrics"]
    text = (folder / "README.md").read_text()
    assert text.count("## Robustness (stress test)") == 1
    assert text.index("## Robustness") < text.index("## Intended use")
    assert "hand-written notes" in text
    assert (folder / "model.keras").read_bytes() == weights
    assert load_bundle(folder).card.stress == stress

    stress["shifts"]["blur"]["accuracy"] = [0.1, 0.1, 0.1]
    write_card_stress(folder, stress)  # a second run replaces the section
    text = (folder / "README.md").read_text()
    assert text.count("## Robustness (stress test)") == 1 and "0.100 / 0.970" in text

    with pytest.raises(ModelError, match=r"card\.json"):
        write_card_stress(tmp_path / "nowhere", stress)


def test_write_card_stress_without_readme_or_intended_use(tmp_path):
    from medviz.store import write_card_stress

    card = ModelCard(
        name="m", class_names=("normal", "microcalcification"), image_size=8, channels=1
    )
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "card.json").write_text(json.dumps(card.to_dict()))
    write_card_stress(bare, _stress_dict())  # no README yet: the whole card is rendered
    text = (bare / "README.md").read_text()
    assert text.startswith("---\nlibrary_name: keras") and "## Robustness" in text
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "card.json").write_text(json.dumps(card.to_dict()))
    (custom / "README.md").write_text("# My model\n\nnotes\n")
    write_card_stress(custom, _stress_dict())  # no "## Intended use": appended
    text = (custom / "README.md").read_text()
    assert text.startswith("# My model\n\nnotes\n\n<!-- medviz:stress -->")
    assert text.rstrip().endswith("<!-- /medviz:stress -->")


def test_training_facts_type_the_card_record():
    from medviz.data.boxes import HELDOUT_LESIONS_KEY
    from medviz.store import ModelCard
    from medviz.store.facts import TrainingFacts

    record = {
        "dataset": "brain-mri",
        "epochs_run": 12,
        "seconds": 31.5,
        "config": {"augment": {"horizontal_flip": True}, "arch_options": {"mode": "frozen"}},
        HELDOUT_LESIONS_KEY: ["brain-tumor-boxes/a.png"],
        "something_new": 1,
    }
    card = ModelCard(name="m", class_names=("a", "b"), image_size=8, channels=1, training=record)
    facts = card.facts
    assert facts.dataset == "brain-mri" and facts.epochs_run == 12 and facts.seconds == 31.5
    assert facts.horizontal_flip and facts.arch_options == {"mode": "frozen"}
    assert facts.heldout_lesion_sources == ("brain-tumor-boxes/a.png",)
    assert facts.record["something_new"] == 1  # unnamed fields stay readable
    # Old or foreign cards: missing and mistyped fields fall back to defaults.
    odd = TrainingFacts.from_record({"epochs_run": "twelve", "config": [], "dataset": None})
    assert odd.epochs_run is None and odd.config == {} and odd.dataset == ""
    assert not odd.horizontal_flip and TrainingFacts.from_record(None).licence == "unknown"
