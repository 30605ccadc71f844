"""medviz.inference.calibrated_probabilities: the one calibrated probability of the app."""

from __future__ import annotations

import numpy as np
import pytest

from medviz.errors import MedvizError
from medviz.inference import calibrated_probabilities
from medviz.metrics import apply_temperature, logits_from_probabilities


def test_temperature_one_changes_nothing_and_sigmoids_become_two_columns():
    p = np.array([[0.2, 0.8], [0.9, 0.1]])
    np.testing.assert_allclose(calibrated_probabilities(p, 1.0), p)
    np.testing.assert_allclose(calibrated_probabilities(np.array([0.8]), 1.0), [[0.2, 0.8]])


def test_temperature_softens_and_sharpens_like_apply_temperature():
    p = np.array([[0.1, 0.7, 0.2], [0.955, 0.04, 0.005]])
    for t in (0.5, 1.4):
        out = calibrated_probabilities(p, t)
        np.testing.assert_allclose(out, apply_temperature(logits_from_probabilities(p), t))
        np.testing.assert_allclose(out.sum(axis=1), 1.0)
        np.testing.assert_array_equal(out.argmax(axis=1), p.argmax(axis=1))
    assert calibrated_probabilities(p, 2.0)[1, 0] < 0.955 < calibrated_probabilities(p, 0.5)[1, 0]
    with pytest.raises(MedvizError, match="temperature"):
        calibrated_probabilities(p, 0.0)


def test_the_model_store_uses_the_same_calibration():
    from medviz.store import load_bundle
    from medviz.ui import settings

    bundle = load_bundle(settings.models_dir() / settings.DEFAULT_MODEL)
    images = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 1), dtype=np.uint8)
    raw = bundle.predict_proba(images, calibrated=False)
    np.testing.assert_allclose(
        bundle.predict_proba(images), calibrated_probabilities(raw, bundle.card.temperature)
    )
