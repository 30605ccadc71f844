"""TCAV: a concept that defines the class is significant; random concepts are not."""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import make_specks

from medviz.errors import MedvizError
from medviz.explore import TCAV_LIMITS, default_tcav_layers, learn_cav, run_tcav
from medviz.explore.plots import tcav_figure
from medviz.explore.tcav import prediction_p_value

RUNS = int(os.environ.get("MEDVIZ_TEST_TCAV_RUNS", "6"))
LAYERS = ["conv1", "conv2"]


@pytest.fixture(scope="module")
def explainer(speck_bundle):
    from medviz.explain import Explainer

    return Explainer(speck_bundle.model)


@pytest.fixture(scope="module")
def pools(speck_data):
    """Random images without the concept, and the speck class's test images."""
    random_pool, _ = make_specks(48, seed=3, positive=0)
    test = speck_data.split("test")
    return random_pool, test.images[test.labels == 1]


def test_the_concept_that_defines_the_class_is_significant(explainer, pools):
    random_pool, class_images = pools
    concept, _ = make_specks(16, seed=2, positive=1)
    result = run_tcav(
        explainer,
        concept,
        random_pool,
        class_images,
        class_index=1,
        class_name="speck",
        concept="bright square",
        layers=LAYERS,
        runs=RUNS,
    )
    deep = result.layers[-1]
    assert deep.layer == "conv2" and deep.scores.shape == (RUNS,)
    assert deep.score_mean > 0.8 > deep.random_mean + 0.1, (deep.score_mean, deep.random_mean)
    assert deep.significant and deep.p_value < 0.05 / len(LAYERS)
    assert deep.cav_accuracy > 0.75, "the layer tells bright squares from plain noise"
    payload = result.to_dict()
    assert payload["class"] == "speck" and payload["layers"][1]["significant"] is True
    assert payload["limits"] == TCAV_LIMITS
    figure = tcav_figure(result)
    assert [t.name for t in figure.data][1] == "random concepts"
    assert any("★" in a.text for a in figure.layout.annotations)


def test_a_random_concept_is_not_significant(explainer, pools):
    random_pool, class_images = pools
    noise, _ = make_specks(16, seed=4, positive=0)  # more images like the random pool
    result = run_tcav(
        explainer, noise, random_pool, class_images, class_index=1, layers=LAYERS, runs=RUNS
    )
    for layer in result.layers:
        assert not layer.significant, (layer.layer, layer.p_value)
        assert layer.p_value > 0.05 / len(LAYERS)


def test_cav_points_towards_the_concept():
    rng = np.random.default_rng(0)
    direction = np.zeros(500)
    direction[7] = 1.0
    concept = rng.normal(0, 1, (12, 500)) + 6 * direction
    random = rng.normal(0, 1, (12, 500))
    cav, accuracy = learn_cav(concept, random)
    assert np.isclose(np.linalg.norm(cav), 1.0)
    assert cav[7] > 0.3 and np.argmax(cav) == 7
    assert accuracy >= 0.75
    with pytest.raises(ValueError, match="at least 4"):
        learn_cav(concept[:2], random)


def test_p_value_of_a_draw_from_the_null():
    null = np.array([0.4, 0.5, 0.6, 0.45, 0.55])
    assert prediction_p_value(0.5, null) > 0.9
    assert prediction_p_value(0.95, null) < 0.01
    assert np.isnan(prediction_p_value(0.5, np.full(4, 0.5)))


def test_bad_requests_say_what_is_needed(explainer, speck_bundle, pools):
    random_pool, class_images = pools
    concept, _ = make_specks(8, seed=2, positive=1)
    with pytest.raises(MedvizError, match="at least 4"):
        run_tcav(explainer, concept[:2], random_pool, class_images, class_index=1, layers=LAYERS)
    with pytest.raises(MedvizError, match="no layer"):
        run_tcav(explainer, concept, random_pool, class_images, class_index=1, layers=["nope"])
    with pytest.raises(ValueError, match="runs"):
        run_tcav(
            explainer, concept, random_pool, class_images, class_index=1, layers=LAYERS, runs=1
        )
    stopped = pytest.raises(MedvizError, match="stopped")
    with stopped:
        run_tcav(
            explainer,
            concept,
            random_pool,
            class_images,
            class_index=1,
            layers=LAYERS,
            should_stop=lambda: True,
        )
    # The last layer at each of the deepest resolutions: conv1 (16×16), conv2 (8×8; after pool1).
    assert default_tcav_layers(speck_bundle.model) == ["conv1", "conv2"]
