"""The embedding map: features of a split, projections, subsampling, neighbours, figures."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from conftest import make_specks

from medviz.errors import MedvizError
from medviz.explore import (
    MAP_LIMITS,
    available_projections,
    embedding_map,
    image_features,
    nearest_neighbours,
    project,
)
from medviz.explore.plots import (
    embedding_figure,
    embedding_html,
    neighbour_strip_figure,
    thumbnail_uri,
)


def test_map_of_a_split_holds_the_models_answers(speck_bundle, speck_data):
    emap = embedding_map(speck_bundle, speck_data, split="test", method="pca")
    test = speck_data.split("test")
    assert emap.coords.shape == (80, 2) and emap.coords.dtype == np.float32
    assert emap.features.shape == (80, 16) and emap.layer == "features"
    np.testing.assert_allclose(np.linalg.norm(emap.features, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(emap.labels, test.labels)
    probs = speck_bundle.predict_proba(test.images)
    np.testing.assert_array_equal(emap.predictions, speck_bundle.decide(probs))
    np.testing.assert_allclose(emap.confidence, probs.max(axis=1), atol=1e-5)
    assert emap.accuracy > 0.9 and emap.note == ""
    # The classes the model separates are apart on the first principal axis.
    means = [emap.coords[emap.labels == k, 0].mean() for k in (0, 1)]
    spread = emap.coords[:, 0].std()
    assert abs(means[1] - means[0]) > spread, "PCA should separate what the model separates"


def test_big_splits_are_subsampled_per_class_with_a_note(speck_bundle, speck_data):
    emap = embedding_map(speck_bundle, speck_data, split="train", limit=60, seed=1)
    train = speck_data.split("train")
    assert len(emap) == 60 and emap.n_total == 240
    assert "60 of 240" in emap.note
    assert np.all(np.diff(emap.indices) > 0)
    np.testing.assert_array_equal(emap.labels, train.labels[emap.indices])
    share = train.labels.mean()
    assert abs(emap.labels.mean() - share) < 0.05, "stratified: the class shares are kept"
    again = embedding_map(speck_bundle, speck_data, split="train", limit=60, seed=1)
    np.testing.assert_array_equal(again.indices, emap.indices)


@pytest.mark.parametrize("method", ["umap", "tsne"])
def test_non_linear_projections(method):
    if method not in available_projections():
        pytest.skip(f"{method} is not installed here")
    if method == "umap" and os.environ.get("MEDVIZ_TEST_UMAP") != "1":
        # UMAP's first call compiles its numba kernels: ~45 s on the shared 2-core machine.
        pytest.skip("UMAP compiles for a minute on first use; MEDVIZ_TEST_UMAP=1 runs it")
    rng = np.random.default_rng(0)
    features = np.concatenate([rng.normal(0, 1, (30, 8)), rng.normal(6, 1, (30, 8))])
    coords = project(features, method=method, seed=0)
    assert coords.shape == (60, 2) and np.isfinite(coords).all()
    a, b = coords[:30].mean(axis=0), coords[30:].mean(axis=0)
    assert np.linalg.norm(a - b) > coords[:30].std(axis=0).sum(), "two blobs stay apart"


def test_bad_requests_name_what_is_allowed(speck_bundle, speck_data):
    with pytest.raises(ValueError, match="pca"):
        project(np.zeros((5, 3)), method="lda")
    with pytest.raises(ValueError, match="at least 2"):
        embedding_map(speck_bundle, speck_data, limit=1)
    with pytest.raises(MedvizError, match=r"no .val. split"):
        embedding_map(speck_bundle, speck_data.split("train"), split="val")


def test_neighbours_of_an_uploaded_image_share_its_class(speck_bundle, speck_data):
    emap = embedding_map(speck_bundle, speck_data, split="val")
    upload, _ = make_specks(1, seed=99, positive=1)
    query = image_features(speck_bundle, upload[0])
    assert query.shape == (1, emap.features.shape[1])
    found = nearest_neighbours(emap, query, k=5)
    assert len(found.rows) == 5 and np.all(np.diff(found.similarity) <= 1e-6)
    assert (emap.labels[found.rows] == 1).mean() >= 0.8, "a speck image's neighbours are specks"
    np.testing.assert_array_equal(found.indices, emap.indices[found.rows])
    own = nearest_neighbours(emap, emap.features[3], k=3, exclude_row=3)
    assert 3 not in own.rows
    with pytest.raises(ValueError, match="features"):
        nearest_neighbours(emap, np.ones(5), k=3)


def test_figures_carry_rows_and_thumbnails(speck_bundle, speck_data):
    emap = embedding_map(speck_bundle, speck_data, split="val")
    for colour_by in ("true", "predicted", "correct", "confidence"):
        fig = embedding_figure(emap, colour_by=colour_by, selected_row=0, neighbour_rows=[1, 2])
        rows = sorted(c[0] for t in fig.data if t.customdata is not None for c in t.customdata)
        assert rows == list(range(len(emap))), f"every point once ({colour_by})"
    with pytest.raises(ValueError, match="colour_by"):
        embedding_figure(emap, colour_by="size")
    val = speck_data.split("val")
    page = embedding_html(emap, val.images[emap.indices])
    assert page.count("base64,") >= len(emap)  # JSON writes "image\/png"
    assert "plotly_hover" in page and MAP_LIMITS in page
    assert thumbnail_uri(val.images[0], size=8).startswith("data:image/png;base64,")
    strip = neighbour_strip_figure(list(val.images[:3]), ["a", "b", "c"])
    assert len(strip.data) == 3
    meta = json.loads(page.split("id='medviz-map-meta'>")[1].split("</script>")[0])
    assert meta == {"method": "pca", "layer": "features", "split": "val"}
