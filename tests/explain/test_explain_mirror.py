"""Mirror averaging of heatmaps (medviz.explain.mirror) for models trained with left-right flips."""

from __future__ import annotations

import numpy as np
import pytest

from medviz.explain import explain, get_explainer
from medviz.explain.mirror import average_with_mirror, flip, mirror_default, resolve_mirror


def training(horizontal_flip: bool | None) -> dict:
    augment = {} if horizontal_flip is None else {"horizontal_flip": horizontal_flip}
    return {"config": {"augment": augment}}


def test_default_follows_the_training_augmentation():
    assert mirror_default(training(True)) is True
    assert mirror_default(training(False)) is False
    assert mirror_default(training(None)) is False
    assert mirror_default(None) is False and mirror_default({}) is False


def test_resolve_accepts_bools_words_and_auto():
    assert resolve_mirror(True, None) is True and resolve_mirror(False, training(True)) is False
    assert resolve_mirror("auto", training(True)) is True
    assert resolve_mirror("on", None) is True and resolve_mirror("off", training(True)) is False
    with pytest.raises(ValueError, match="'sometimes'"):
        resolve_mirror("sometimes", None)


def test_average_flips_back_and_rescales_to_one():
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, 1, 0] = 1.0  # evidence at the left of the image
    mirrored = np.zeros((2, 4, 4), np.float32)
    mirrored[0, 1, 3] = 1.0  # the same evidence seen at the right of the mirror image
    mirrored[0, 3, 3] = 0.5  # grid noise that the original map does not share
    out = average_with_mirror(maps, mirrored)
    assert out.shape == (2, 4, 4) and out.dtype == np.float32
    assert out[0, 1, 0] == pytest.approx(1.0)  # shared evidence survives at full height
    assert out[0, 3, 0] == pytest.approx(0.25)  # unshared noise is halved
    assert not out[1].any()  # an empty map stays empty
    assert np.array_equal(flip(flip(maps)), maps)


def test_explain_with_mirror_averages_both_passes(tiny_cnn, images):
    image = images["tiny"]
    plain = explain(tiny_cnn, image, method="gradcam", class_index=1)
    mirrored = explain(tiny_cnn, image[:, ::-1].copy(), method="gradcam", class_index=1)
    both = explain(tiny_cnn, image, method="gradcam", class_index=1, mirror=True)
    expected = average_with_mirror(plain.heatmap[None], mirrored.heatmap[None])[0]
    np.testing.assert_allclose(both.heatmap, expected, atol=1e-5)
    assert both.class_index == plain.class_index and both.method == "gradcam"
    assert not np.allclose(both.heatmap, plain.heatmap)  # the tiny net is not symmetric


def test_batched_mirror_matches_one_by_one(tiny_cnn, images):
    stack = np.stack([images["tiny"], images["tiny"][::-1].copy()])
    explainer = get_explainer(tiny_cnn)
    maps, classes, _ = explainer.heatmaps(stack, method="gradcam++", mirror=True)
    for i in range(len(stack)):
        single = explain(
            tiny_cnn, stack[i], method="gradcam++", class_index=int(classes[i]), mirror=True
        )
        np.testing.assert_allclose(maps[i], single.heatmap, atol=1e-4)
