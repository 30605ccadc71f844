"""The shortcut lab: planting, test variants, scores, and the trained-model claim of issue 17."""

from __future__ import annotations

import math
import os

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
    _, both = plant_marker(small, Marker("tag"), marked_class=None, fraction=0.5)
    for label in (0, 1):  # the control's marker: the same share of each class, says nothing
        members = (small.splits == "train") & (small.labels == label)
        assert both[members].sum() == round(0.5 * members.sum())


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


def blob_data(n: int = 300, *, size: int = 32, seed: int = 0):
    """Noise (mean 110, sd 25, random offset); class 1 adds a bright blob near the centre.

    The blob (+80 grey levels, sigma 2.5 px) is easy: a control model learns it in a few
    dozen steps, so its score near 0 means "ignores the marker", not "has learnt nothing".
    """
    from medviz.data.dataset import Dataset, assign_splits

    rng = np.random.default_rng(seed)
    labels = (np.arange(n) % 2).astype(np.int64)
    yy, xx = np.mgrid[0:size, 0:size]
    images = rng.normal(110, 25, (n, size, size)) + rng.uniform(-20, 20, (n, 1, 1))
    centres = rng.uniform(size * 0.3, size * 0.7, (n, 2))
    distance2 = (yy - centres[:, 0, None, None]) ** 2 + (xx - centres[:, 1, None, None]) ** 2
    images += 80.0 * labels[:, None, None] * np.exp(-distance2 / (2 * 2.5**2))
    pixels = np.clip(images, 0, 255).round().astype(np.uint8)[..., None]
    return Dataset("blobs", pixels, labels, ("plain", "blob"), assign_splits(labels, seed=seed))


@pytest.fixture(scope="module")
def lab_result():
    from medviz.explore.shortcut import lab_config, run_shortcut_lab

    epochs = int(os.environ.get("MEDVIZ_TEST_SHORTCUT_EPOCHS", "4"))
    config = lab_config(image_size=32, epochs=epochs, batch_size=16, jit_compile=False)
    phases = []
    result = run_shortcut_lab(
        blob_data(),
        marker=Marker("tag"),
        marked_class=1,
        fraction=1.0,
        config=config,
        on_phase=lambda index, _label: phases.append(index),
    )
    assert phases == [0, 1, 2]
    return result


def test_a_model_trained_with_the_marker_relies_on_it_and_the_control_does_not(lab_result):
    short, clean = lab_result.shortcut, lab_result.clean
    # The marker decides for the shortcut model: right where it goes with its class, wrong
    # once it moves, and it never learnt the (easy) blob.
    assert short.reliance > 0.6, short.balanced_accuracy
    assert short.balanced_accuracy["aligned"] > 0.9 > 0.3 > short.balanced_accuracy["swapped"]
    # The control saw the marker on a random half of both classes and learnt the blob.
    assert clean.balanced_accuracy["clean"] > 0.85, clean.balanced_accuracy
    assert abs(clean.reliance) < 0.2, clean.balanced_accuracy
    # Its Grad-CAM sits on the marker several times more than the area would give.
    assert short.marker_mass > max(3 * lab_result.marker_area, clean.marker_mass + 0.1)


def test_the_result_carries_what_the_page_and_the_cli_show(lab_result):
    result = lab_result
    assert result.control == "random" and result.marked_class_name == "blob"
    assert result.n_marked == sum(
        count for split, count in blob_counts(result).items() if split != "test"
    )
    k = len(result.examples)
    assert k == 6 and result.heatmaps_clean.shape == result.heatmaps_shortcut.shape == (k, 32, 32)
    assert result.example_masks.any(axis=(1, 2)).all(), "every explained image carries the marker"
    payload = result.to_dict()
    assert payload["shortcut_model"]["reliance_score"] == pytest.approx(result.shortcut.reliance)
    from medviz.explore.shortcut_plots import accuracy_figure, heatmap_grid_figure

    bars = accuracy_figure(result)
    assert len(bars.data) == 3 and all(len(trace.y) == 2 for trace in bars.data)
    grid = heatmap_grid_figure(result)
    assert len(grid.data) == 3 * k


def blob_counts(result) -> dict[str, int]:
    data = blob_data()
    return {
        split: int(((data.splits == split) & (data.labels == result.marked_class)).sum())
        for split in ("train", "val", "test")
    }
