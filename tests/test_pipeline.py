import numpy as np

from medviz.augment import AugmentConfig
from medviz.pipeline import evaluate_split, train_repeats
from medviz.training import TrainConfig


def test_packaged_run_has_a_complete_card(tiny_packaged, tiny_microcalc):
    card = tiny_packaged.bundle.card
    assert card.class_names == tiny_microcalc.class_names
    assert (card.image_size, card.channels) == (32, 1)
    assert 0.0 <= card.threshold <= 1.0 and "Youden" in card.threshold_method
    assert card.temperature > 0
    assert set(card.metrics) == {"val", "test"}
    assert {"auc", "auc_ci", "confusion_matrix", "ece"} <= set(card.metrics["test"])
    assert card.reference["threshold"] > 0
    assert card.training["command"] == "pytest" and card.training["seconds"] > 0
    assert {"val_ece_before", "val_ece_after"} <= set(card.calibration)
    assert card.params > 0 and "not for clinical use" in card.notice


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
        on_run_end=lambda i, run: seen.append(run.result.config.seed),
    )
    assert seen == [0, 1]
    mean, std = runs.summary["auc"]
    aucs = [r.evaluations["test"].auc for r in runs.runs]
    assert np.isclose(mean, np.mean(aucs)) and np.isclose(std, np.std(aucs, ddof=1))
    assert runs.best in runs.runs
