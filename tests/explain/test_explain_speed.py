"""Prediction + Grad-CAM must be interactive: compiled once, reused."""

from __future__ import annotations

import time

import numpy as np

from bench.reference_cam import reference_cam
from medviz.explain import Explainer


def _times(fn, repeats: int) -> np.ndarray:
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return np.array(out)


def test_explainer_is_fast_and_beats_the_naive_way(trained_cnn, microcalc):
    image = microcalc.split("test").images[0]
    explainer = Explainer(trained_cnn)
    explainer.explain(image, method="gradcam")  # build + trace once
    warm = _times(lambda: explainer.explain(image, method="gradcam"), 30)
    naive = _times(lambda: reference_cam(trained_cnn, image, method="gradcam"), 3)
    assert np.percentile(warm, 95) < 0.15, warm
    assert np.median(naive) > 3 * np.median(warm), (np.median(naive), np.median(warm))


def test_no_retracing_across_calls(tiny_cnn, images):
    explainer = Explainer(tiny_cnn)
    for c in (0, 1, 2, None):
        explainer.explain(images["tiny"], method="gradcam", class_index=c)
    explainer.heatmaps(np.repeat(images["tiny"][None], 5, axis=0), method="gradcam")
    fn = explainer._layer_grads_fn("conv2")
    assert fn.experimental_get_tracing_count() == 1
