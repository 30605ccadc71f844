import numpy as np
import pytest

from medviz import pipeline
from medviz.augment import AugmentConfig
from medviz.errors import MedvizError
from medviz.metrics import (
    apply_temperature,
    logits_from_probabilities,
    sensitivity_specificity,
    youden_threshold,
)
from medviz.pipeline import evaluate_split, operating_threshold, train_repeats
from medviz.training import TrainConfig


def test_packaged_run_has_a_complete_card(tiny_packaged, tiny_microcalc):
    card = tiny_packaged.bundle.card
    assert card.class_names == tiny_microcalc.class_names
    assert (card.image_size, card.channels) == (32, 1)
    # The default operating point: 0.5 on calibrated probabilities, with its reason.
    assert card.threshold == 0.5 and card.threshold_method == "fixed:0.5"
    assert "calibrated" in card.threshold_reason and "validation" in card.threshold_reason
    assert card.temperature > 0
    assert set(card.metrics) == {"val", "test"}
    assert {"auc", "auc_ci", "confusion_matrix", "ece"} <= set(card.metrics["test"])
    assert card.reference["threshold"] > 0
    assert card.training["command"] == "pytest" and card.training["seconds"] > 0
    assert {"val_ece_before", "val_ece_after"} <= set(card.calibration)
    assert card.params > 0 and "not for clinical use" in card.notice
    stress = card.stress
    n_val = int((tiny_microcalc.splits == "val").sum())
    assert stress["split"] == "val" and stress["n"] == min(n_val, pipeline.DEFAULT_STRESS_IMAGES)
    assert stress["threshold"] == 0.5 and len(stress["shifts"]) == 8
    assert all(len(row["accuracy"]) == 5 for row in stress["shifts"].values())
    assert stress["clean"]["accuracy"] == pytest.approx(card.metrics["val"]["accuracy"])


def test_evaluate_split_uses_the_card_threshold(tiny_packaged, tiny_microcalc):
    ev = evaluate_split(tiny_packaged.bundle, tiny_microcalc, "test", n_bootstrap=10)
    probs = tiny_packaged.bundle.predict_proba(tiny_microcalc.split("test").images)
    expected = (probs[:, 1] >= tiny_packaged.bundle.card.threshold).astype(int)
    np.testing.assert_array_equal(ev.y_pred, expected)


def test_repeats_report_mean_and_std(tiny_microcalc):
    config = TrainConfig(epochs=1, augment=AugmentConfig.none(), jit_compile=False)
    seen = []
    runs = train_repeats(
        config,
        tiny_microcalc,
        repeats=2,
        name="r",
        n_bootstrap=10,
        stress_images=0,  # not what this test is about: keep it quick
        on_run_end=lambda i, run: seen.append(run.result.config.seed),
    )
    assert seen == [0, 1]
    mean, std = runs.summary["auc"]
    aucs = [r.evaluations["test"].auc for r in runs.runs]
    assert np.isclose(mean, np.mean(aucs)) and np.isclose(std, np.std(aucs, ddof=1))
    assert runs.best in runs.runs
    fprs = [r.evaluations["test"].per_class[1].fpr for r in runs.runs]
    fnrs = [r.evaluations["test"].per_class[1].fnr for r in runs.runs]
    assert np.isclose(runs.summary["false_positive_rate"][0], np.mean(fprs))
    assert np.isclose(runs.summary["false_negative_rate"][0], np.mean(fnrs))


def _repackage(tiny_packaged, tiny_microcalc, monkeypatch, **options):
    """train_and_package on the already trained tiny model (no second training)."""
    monkeypatch.setattr(pipeline, "train", lambda *args, **kwargs: tiny_packaged.result)
    config = TrainConfig(epochs=2, batch_size=32, augment=AugmentConfig.none(), jit_compile=False)
    return pipeline.train_and_package(
        config, tiny_microcalc, name="tiny", n_bootstrap=0, stress_images=0, **options
    )


def test_threshold_policy_youden_and_sensitivity(tiny_packaged, tiny_microcalc, monkeypatch):
    card = tiny_packaged.bundle.card
    val = tiny_microcalc.split("val")
    raw = tiny_packaged.bundle.predict_proba(val.images, calibrated=False)
    calibrated = apply_temperature(logits_from_probabilities(raw), card.temperature)[:, 1]

    youden = _repackage(tiny_packaged, tiny_microcalc, monkeypatch, threshold_policy="youden")
    assert youden.bundle.card.threshold_method == "youden"
    assert youden.bundle.card.threshold == pytest.approx(youden_threshold(val.labels, calibrated))
    assert "false alarms under shift" in youden.bundle.card.threshold_reason
    assert youden.bundle.card.stress is None  # stress_images=0

    target = _repackage(
        tiny_packaged, tiny_microcalc, monkeypatch, threshold_policy="sensitivity:0.9"
    )
    sens, _ = sensitivity_specificity(val.labels, calibrated, target.bundle.card.threshold)
    assert target.bundle.card.threshold_method == "sensitivity:0.9" and sens >= 0.9
    # The evaluations use the chosen threshold.
    assert target.evaluations["val"].threshold == target.bundle.card.threshold

    with pytest.raises(MedvizError, match="unknown threshold policy"):
        _repackage(tiny_packaged, tiny_microcalc, monkeypatch, threshold_policy="median")


def test_operating_threshold_for_evaluation(tiny_packaged, tiny_microcalc):
    bundle = tiny_packaged.bundle
    card_choice = operating_threshold(bundle, tiny_microcalc, "card")
    assert card_choice.threshold == bundle.card.threshold
    assert card_choice.method == bundle.card.threshold_method
    fixed = operating_threshold(bundle, tiny_microcalc, "fixed:0.3")
    assert fixed.threshold == 0.3 and fixed.n == 0
    youden = operating_threshold(bundle, tiny_microcalc, "youden")
    val = tiny_microcalc.split("val")
    expected = youden_threshold(val.labels, bundle.predict_proba(val.images)[:, 1])
    assert youden.threshold == pytest.approx(expected) and youden.n == len(val)
