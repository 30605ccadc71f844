"""The shortcut lab: planting, test variants, scores, and the trained-model claim of issue 17."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medviz.data.synthetic import generate_microcalc
from medviz.errors import DataError
from medviz.explore.markers import Marker
from medviz.explore.shortcut import (
    balanced_accuracy,
    class_index,
    example_indices,
    expected_seconds,
    marker_mass,
    marker_variants,
    plant_marker,
    reliance_score,
)


@pytest.fixture(scope="module")
def small():
    return generate_microcalc(120, image_size=32, seed=1)


def test_plant_marker_stamps_the_chosen_share_of_one_class_in_train_and_val(small):
    marked, chosen = plant_marker(small, Marker("tag"), marked_class=1, fraction=0.5, seed=2)
    for split in ("train", "val"):
        members = (small.splits == split) & (small.labels == 1)
        assert chosen[members].sum() == round(0.5 * members.sum())
    assert not chosen[small.labels == 0].any() and not chosen[small.splits == "test"].any()
    changed = (marked.images != small.images).any(axis=(1, 2, 3))
    assert (changed == chosen).all(), "exactly the chosen images change"
    again, _ = plant_marker(small, Marker("tag"), marked_class=1, fraction=0.5, seed=2)
    assert (again.images == marked.images).all(), "seeded"
    _, none = plant_marker(small, Marker("tag"), marked_class=1, fraction=0.0)
    assert not none.any()


def test_marker_variants_put_the_marker_on_one_class_or_the_other(small):
    test = small.split("test")
    variants = marker_variants(test, Marker("border"), marked_class=0)
    on_class0 = test.labels == 0
    differs = {
        name: (variants.images(name) != test.images).any(axis=(1, 2, 3))
        for name in ("clean", "aligned", "swapped")
    }
    assert not differs["clean"].any()
    assert (differs["aligned"] == on_class0).all()
    assert (differs["swapped"] == ~on_class0).all()
    assert variants.masks.shape == test.images.shape[:3]


def test_scores_and_helpers():
    labels = np.array([0, 0, 0, 1])
    assert balanced_accuracy(labels, np.array([0, 0, 0, 0])) == 0.5
    assert balanced_accuracy(labels, labels) == 1.0
    assert reliance_score(1.0, 0.0) == 1.0 and reliance_score(0.7, 0.7) == 0.0
    maps = np.zeros((2, 4, 4))
    maps[0, 0, 0] = maps[0, 3, 3] = 1.0
    masks = np.zeros((2, 4, 4), bool)
    masks[:, :2, :2] = True  # a top-left marker region
    mass = marker_mass(maps, masks)
    assert mass[0] == 0.5 and math.isnan(mass[1])
    assert class_index(("normal", "tumour"), "tumour") == 1 and class_index(("a", "b"), 0) == 0
    with pytest.raises(ValueError, match="not one of"):
        class_index(("a", "b"), "c")
    picks = example_indices(np.array([0, 1, 0, 1, 0, 1]), per_class=2)
    assert sorted(np.array([0, 1, 0, 1, 0, 1])[picks]) == [0, 0, 1, 1]
    assert expected_seconds(1000, image_size=64, epochs=4) > expected_seconds(
        1000, image_size=32, epochs=4
    )


def test_plant_marker_needs_a_binary_dataset_and_a_valid_share(small):
    from dataclasses import replace

    three = replace(small, class_names=("a", "b", "c"))
    with pytest.raises(DataError, match="binary"):
        plant_marker(three, Marker(), marked_class=1, fraction=1.0)
    with pytest.raises(ValueError, match="fraction"):
        plant_marker(small, Marker(), marked_class=1, fraction=1.5)
