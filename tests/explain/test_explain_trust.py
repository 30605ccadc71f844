"""Trust checks: randomisation, faithfulness, agreement, localisation."""

from __future__ import annotations

import numpy as np
import pytest

from medviz.errors import DataError, ModelError
from medviz.explain import (
    bootstrap_ci,
    cam_agreement,
    deletion_insertion,
    explain,
    localization_score,
    pointing_game,
    randomized_copy,
    sanity_check,
    spearman,
    topk_iou,
)


def _positives(dataset, n):
    test = dataset.split("test")
    index = np.flatnonzero(test.labels == 1)[:n]
    return test.images[index], test.masks[index]


# ------------------------------------------------------------ pure metrics
def test_pointing_game_with_tolerance():
    mask = np.zeros((16, 16), bool)
    mask[5:7, 5:7] = True
    heat = np.zeros((16, 16), np.float32)
    heat[6, 6] = 1.0
    assert pointing_game(heat, mask)
    heat2 = np.zeros((16, 16), np.float32)
    heat2[6, 9] = 1.0  # 3 px right of the mask
    assert not pointing_game(heat2, mask, tolerance_px=2)
    assert pointing_game(heat2, mask, tolerance_px=3)
    assert not pointing_game(np.zeros((16, 16)), mask)  # a constant map points nowhere
    assert not pointing_game(heat, np.zeros((16, 16), bool))
    with pytest.raises(DataError, match="must be equal"):
        pointing_game(heat, mask[:8])


def test_topk_iou():
    mask = np.zeros((10, 10), bool)
    mask[:2, :5] = True  # 10 pixels
    heat = np.zeros((10, 10), np.float32)
    heat[:2, :5] = 1.0
    assert topk_iou(heat, mask, fraction=0.1) == pytest.approx(1.0)
    assert topk_iou(heat, mask, fraction=0.2) == pytest.approx(0.5)
    assert topk_iou(heat, mask, fraction=None) == pytest.approx(1.0)
    assert topk_iou(1.0 - heat, mask, fraction=0.1) == 0.0
    assert topk_iou(heat, np.zeros_like(mask)) == 0.0
    with pytest.raises(DataError, match="fraction"):
        topk_iou(heat, mask, fraction=1.5)


def test_spearman_and_bootstrap():
    a = np.arange(16.0).reshape(4, 4)
    assert spearman(a, a**3) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.zeros_like(a)) == 0.0
    lo, hi = bootstrap_ci(np.r_[np.ones(80), np.zeros(20)], n_bootstrap=500)
    assert lo < 0.8 < hi and lo > 0.65 and hi < 0.92


# ------------------------------------------------------------ on models
def test_randomized_copy_leaves_the_model_alone(tiny_cnn, images):
    before = [w.copy() for w in tiny_cnn.get_weights()]
    clone, names = randomized_copy(tiny_cnn, top_n=2, seed=1)
    assert names == ("predictions", "conv2")
    for a, b in zip(before, tiny_cnn.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(
        clone.get_layer("conv2").kernel.numpy(), tiny_cnn.get_layer("conv2").kernel.numpy()
    )
    np.testing.assert_array_equal(
        clone.get_layer("conv1").kernel.numpy(), tiny_cnn.get_layer("conv1").kernel.numpy()
    )
    with pytest.raises(ModelError, match="top_n"):
        randomized_copy(tiny_cnn, top_n=0)


def test_sanity_check_drops_after_randomisation(trained_cnn, microcalc):
    images, _ = _positives(microcalc, 6)
    checks = [sanity_check(trained_cnn, img, method="gradcam") for img in images]
    correlations = np.array([c.correlation for c in checks])
    assert checks[0].randomized_layers == ("predictions", "conv3")
    assert checks[0].original.shape == (64, 64) and checks[0].randomized.shape == (64, 64)
    # A trustworthy method changes clearly when the learned weights go.
    assert np.median(correlations) < 0.5, correlations
    assert np.mean([c.passed for c in checks]) >= 0.5


def test_sanity_check_runs_for_input_space_methods(sigmoid_cnn, images):
    check = sanity_check(sigmoid_cnn, images["sigmoid"], method="saliency", class_index=0, top_n=1)
    assert check.layer is None and check.class_index == 0 and -1 <= check.correlation <= 1


def test_deletion_auc_below_insertion_auc_on_the_trained_model(trained_cnn, microcalc):
    images, _ = _positives(microcalc, 30)
    # Faithfulness is about what the model does: use positives it gets right.
    confident = images[trained_cnn.predict(images, verbose=0)[:, 1] > 0.5][:10]
    diffs = []
    for img in confident:
        heat = explain(trained_cnn, img, method="gradcam", class_index=1).heatmap
        curves = deletion_insertion(trained_cnn, img, heat, class_index=1, steps=16)
        assert curves.deletion.shape == curves.insertion.shape == (17,)
        assert curves.fractions[0] == 0 and curves.fractions[-1] == 1
        # Both curves end where they start from the other side.
        assert curves.deletion[-1] == pytest.approx(curves.insertion[0], abs=1e-6)
        diffs.append(curves.difference)
    assert len(diffs) == 10
    assert np.mean(diffs) > 0.2, diffs
    assert np.mean(np.array(diffs) > 0) >= 0.7, diffs


def test_deletion_insertion_errors(tiny_cnn, images):
    with pytest.raises(DataError, match="heatmap shape"):
        deletion_insertion(tiny_cnn, images["tiny"], np.zeros((8, 8)))
    with pytest.raises(ModelError, match="steps"):
        deletion_insertion(tiny_cnn, images["tiny"], np.zeros((32, 32)), steps=0)


def test_cam_agreement(tiny_cnn, images):
    agreement = cam_agreement(tiny_cnn, images["tiny"], class_index=1)
    m = len(agreement.methods)
    assert agreement.matrix.shape == (m, m) and np.allclose(np.diag(agreement.matrix), 1)
    assert np.allclose(agreement.matrix, agreement.matrix.T)
    assert agreement.heatmaps.shape == (m, 32, 32) and -1 <= agreement.mean <= 1
    with pytest.raises(ModelError, match="at least two"):
        cam_agreement(tiny_cnn, images["tiny"], methods=["gradcam"])


def test_gradcam_localises_lesions_on_the_trained_model(trained_cnn, microcalc):
    report = localization_score(trained_cnn, microcalc, method="gradcam++", n_bootstrap=200)
    test = microcalc.split("test")
    assert report.n == int(((test.labels == 1) & test.masks.any(axis=(1, 2))).sum())
    assert report.layer == "conv3" and report.split == "test"
    assert report.hit_rate >= 0.7, report.summary()
    lo, hi = report.hit_rate_ci
    assert lo <= report.hit_rate <= hi
    assert 0 < report.mean_iou <= 1
    gradcam = localization_score(trained_cnn, microcalc, method="gradcam", n_bootstrap=200)
    assert gradcam.hit_rate >= 0.7, gradcam.summary()
    summary = gradcam.summary()
    assert set(summary) >= {"hit_rate", "hit_rate_ci", "mean_iou", "mean_iou_ci", "n"}


def test_localisation_of_input_space_methods_and_limits(trained_cnn, microcalc):
    report = localization_score(
        trained_cnn, microcalc, method="saliency", max_images=10, n_bootstrap=100
    )
    assert report.n == 10 and report.layer is None and len(report.hits) == 10


def test_localisation_needs_masks(trained_cnn, microcalc):
    from dataclasses import replace

    with pytest.raises(DataError, match="no lesion masks"):
        localization_score(trained_cnn, replace(microcalc, masks=None), method="gradcam")
    empty = replace(microcalc, masks=np.zeros_like(microcalc.masks))
    with pytest.raises(DataError, match="no images with a lesion mask"):
        localization_score(trained_cnn, empty, method="gradcam")
