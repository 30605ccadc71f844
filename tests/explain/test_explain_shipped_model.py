"""The explanation targets, measured on the model MedViz ships for its embedded data."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "microcalc-synthetic"


def _timing_is_meaningful() -> bool:
    """Wall-clock targets are judged on a machine not oversubscribed by other work."""
    return os.getloadavg()[0] <= 2 * (os.cpu_count() or 1)


@pytest.fixture(scope="module")
def shipped():
    from medviz.data.registry import get_spec
    from medviz.explain import get_explainer
    from medviz.store import load_bundle

    bundle = load_bundle(SHIPPED)
    data = get_spec("synthetic-microcalc").load()
    return get_explainer(bundle.model), data


def test_gradcam_points_at_the_cluster_on_nine_in_ten_positive_test_patches(shipped):
    from medviz.explain.trust import localization_score

    explainer, data = shipped
    # The target was set at 2 px on 64 px patches (3 % of the side; the default is 2 %).
    report = localization_score(
        explainer, data, method="gradcam", n_bootstrap=200, tolerance=2 / 64
    )
    assert report.tolerance_px == 2.0
    assert report.n >= 150  # every positive test patch with a mask
    assert report.hit_rate >= 0.9, report.summary()


def test_activation_maximisation_and_deep_dream_take_under_ten_seconds(shipped):
    from medviz.explain.activation_max import DEFAULT_STEPS, activation_maximization
    from medviz.explain.deep_dream import DEFAULT_STEPS_PER_OCTAVE, deep_dream

    explainer, data = shipped
    am = activation_maximization(explainer, class_index=[0, 1], steps=DEFAULT_STEPS)
    assert am.seconds < 10 or not _timing_is_meaningful(), am.seconds
    normal, calc = am.images.astype(np.float32)
    assert np.abs(normal - calc).mean() > 10  # the two classes synthesise visibly different images
    assert am.probabilities[1][1] > am.probabilities[0][1]  # each image drives its own class

    test = data.split("test")
    image = test.images[np.flatnonzero(test.labels == 1)[0]]
    dream = deep_dream(explainer, image, steps_per_octave=DEFAULT_STEPS_PER_OCTAVE)
    assert dream.seconds < 10 or not _timing_is_meaningful(), dream.seconds
    assert len(dream.frames) > 3 and not np.array_equal(dream.frames[0], dream.frames[-1])
