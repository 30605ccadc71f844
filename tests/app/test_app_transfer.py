"""AppTest: the Train page says which weights a transfer backbone gets, before and after training,
and compares scratch / frozen / fine-tuned in the background."""

from __future__ import annotations

import pytest
from app_helpers import app_state, assert_clean, goto, load_small_dataset, texts, wait_for_job

from medviz.backbone import backbone_weights_path

needs_backbone = pytest.mark.skipif(
    not backbone_weights_path().is_file(), reason="models/medviz-backbone-v1 not in this checkout"
)


def test_missing_imagenet_weights_are_shown_before_training(app, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIZ_WEIGHTS_DIR", str(tmp_path))  # no cached ImageNet files
    monkeypatch.setenv("MEDVIZ_OFFLINE", "1")
    load_small_dataset(app)
    goto(app, "train")
    app.selectbox(key="train_arch").set_value("mobilenetv2")
    app.run()
    errors = " ".join(e.value for e in app.error)
    assert "Weights:" in errors and "not cached" in errors
    app.selectbox(key="train_pretrained_mobilenetv2").set_value("none")
    app.run()
    assert_clean(app)
    assert any("random initialisation" in w.value for w in app.warning)


@needs_backbone
def test_backbone_status_before_and_after_training_and_in_the_card(app):
    load_small_dataset(app)
    goto(app, "train")
    app.selectbox(key="train_arch").set_value("medviz-backbone")
    app.run()
    assert_clean(app)
    assert any("MedViz medical backbone" in s.value for s in app.success)
    app.selectbox(key="train_transfer_mode").set_value("feature-extractor")
    app.number_input(key="train_epochs").set_value(1)
    app.button(key="train_start").click()
    app.run()
    wait_for_job(app)
    assert_clean(app)
    assert "Backbone weights used: MedViz medical backbone" in texts(app)
    job = app_state(app).jobs[0]
    card = app_state(app).models[f"trained:{job.id}"].card
    assert card.training["pretrained"]["source"] == "medviz-backbone"
    assert len(card.training["pretrained"]["sha256"]) == 64


@needs_backbone
def test_compare_transfer_modes_runs_in_the_background(app):
    load_small_dataset(app, per_class=10)
    goto(app, "train")
    app.selectbox(key="train_arch").set_value("medviz-backbone")
    app.number_input(key="train_epochs").set_value(1)
    app.run()
    app.button(key="transfer_compare_start").click()
    app.run()
    job = app.session_state["_medviz_transfer_job"]
    assert job.join(timeout=600), "comparison did not finish"  # 3 trainings, busy CPUs
    app.run()
    assert_clean(app)
    snap = job.snapshot()
    assert snap.status == "finished", snap.error
    assert [r.arm for r in snap.results] == ["scratch", "feature-extractor", "fine-tune"]
    shown = texts(app)
    assert "test AUC" in shown and "fine-tune" in shown
