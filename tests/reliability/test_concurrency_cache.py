"""The shared model cache under concurrent users: one model object, equal answers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

THREADS = 8
IMAGES = 24
REPEATS = 4  # each image classified this often at once, across all threads (8 threads busy)


@pytest.fixture(scope="module")
def images() -> list[np.ndarray]:
    from medviz.data.synthetic import generate_microcalc

    data = generate_microcalc(IMAGES, image_size=80, seed=21)
    return [data.images[i][..., 0] for i in range(IMAGES)]


def test_concurrent_first_loads_share_one_model(shipped_model):
    from medviz.ui import cache

    path = str(shipped_model)
    version = cache._version(path) + 0.5  # a key no earlier test has filled
    with ThreadPoolExecutor(THREADS) as pool:
        bundles = list(pool.map(lambda _: cache._load_bundle(path, version), range(THREADS)))
    assert all(b is bundles[0] for b in bundles), "every thread got the one shared model"


def test_concurrent_predictions_equal_sequential_ones(shipped_model, images):
    from medviz.data.images import DecodedImage
    from medviz.services.predict import classify
    from medviz.ui import cache

    path = str(shipped_model)
    bundle = cache._load_bundle(path, cache._version(path))
    explainer = cache._shared_explainer(path, cache._version(path))
    decoded = [DecodedImage(pixels=p, mode="L", size=p.shape[::-1]) for p in images]

    def one(i: int):
        return classify(bundle, explainer, decoded[i], name=f"img{i}")

    sequential = [one(i) for i in range(IMAGES)]
    order = [i % IMAGES for i in range(REPEATS * IMAGES)]
    with ThreadPoolExecutor(THREADS) as pool:
        parallel = list(pool.map(one, order))
    for i, result in zip(order, parallel, strict=True):
        reference = sequential[i]
        np.testing.assert_allclose(result.probabilities, reference.probabilities, atol=1e-5)
        np.testing.assert_allclose(result.heatmap, reference.heatmap, atol=1e-4)
        assert result.predicted == reference.predicted
        assert result.ood_distance == pytest.approx(reference.ood_distance, abs=1e-3)
    with ThreadPoolExecutor(THREADS) as pool:
        batched = list(
            pool.map(
                lambda i: bundle.predict_proba(bundle.prepare(images[i])[None].astype(np.uint8))[0],
                order,
            )
        )
    for i, probs in zip(order, batched, strict=True):
        np.testing.assert_allclose(probs, sequential[i].probabilities, atol=1e-4)
