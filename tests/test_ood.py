"""Out-of-distribution detector: fitting on generated sets, card round trip, old cards, CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest


def _blobs(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Smooth in-domain images: a few soft bright blobs on a mid-grey background."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    out = np.empty((n, size, size, 1), np.uint8)
    for i in range(n):
        img = np.full((size, size), rng.uniform(70, 110))
        for _ in range(rng.integers(1, 4)):
            cx, cy, r = rng.uniform(0.25, 0.75), rng.uniform(0.25, 0.75), rng.uniform(0.08, 0.2)
            img += rng.uniform(60, 120) * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r**2))
        out[i, ..., 0] = np.clip(img, 0, 255)
    return out


def _noise(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(0, 256, (n, size, size, 1)).astype(np.uint8)


def _checkerboards(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    out = np.empty((n, size, size, 1), np.uint8)
    for i in range(n):
        cell = int(rng.integers(2, 8))
        yy, xx = np.mgrid[0:size, 0:size] // cell
        lo, hi = sorted(rng.uniform(0, 255, 2))
        out[i, ..., 0] = np.where((yy + xx) % 2, hi, lo)
    return out


@pytest.fixture(scope="module")
def tiny_net():
    """An untrained two-stage conv net; its head is called ``head``, not ``predictions``."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(x)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def fitted(tiny_net):
    """Detector fitted on blobs (in-domain) vs noise and checkerboards, plus held-out sets."""
    from medviz.ood.features import feature_layers
    from medviz.ood.fit import fit_from_measurements, measure

    rng = np.random.default_rng(0)
    layers = feature_layers(tiny_net)
    sets = {
        "train": ("blobs", _blobs(120, 32, rng)),
        "val": ("blobs", _blobs(120, 32, rng)),
        "test": ("blobs", _blobs(100, 32, rng)),
        "noise": ("noise", _noise(80, 32, rng)),
        "checkerboards": ("pattern", _checkerboards(80, 32, rng)),
    }
    measured = {k: measure(tiny_net, k, mod, imgs, layers) for k, (mod, imgs) in sets.items()}
    detector = fit_from_measurements(measured, layers, 2, "blobs", target_rate=0.02, seed=0)
    held_out = {
        "blobs": _blobs(100, 32, rng),
        "noise": _noise(60, 32, rng),
        "checkerboards": _checkerboards(60, 32, rng),
    }
    return detector, layers, held_out


def _flag_rate(detector, model, images) -> float:
    from medviz.ood.features import layer_features

    features = layer_features(model, images, detector.layer_names)
    return float(np.mean(detector.score(images, features) > detector.limit))


def test_feature_layers_are_chosen_by_shape(tiny_net):
    from medviz.ood.features import PENULTIMATE, feature_layers, resolve_layer

    layers = feature_layers(tiny_net)
    assert layers[-1] == PENULTIMATE
    assert resolve_layer(tiny_net, PENULTIMATE) == tiny_net.layers[-2].name
    shapes = [tuple(tiny_net.get_layer(name).output.shape[1:3]) for name in layers[:-1]]
    assert shapes == [(16, 16), (8, 8)], "the last layer of each of the two deepest resolutions"


def test_input_statistics_separate_noise_from_smooth_images(rng):
    from medviz.ood.features import STAT_NAMES, input_statistics

    smooth, noise = input_statistics(_blobs(10, 32, rng)), input_statistics(_noise(10, 32, rng))
    assert smooth.shape == (10, len(STAT_NAMES)) and np.isfinite(smooth).all()
    lap = STAT_NAMES.index("laplacian_mean")
    assert noise[:, lap].min() > 5 * smooth[:, lap].max()


def test_detector_flags_foreign_and_spares_in_domain(fitted, tiny_net):
    detector, _, held_out = fitted
    assert _flag_rate(detector, tiny_net, held_out["blobs"]) <= 0.10
    assert _flag_rate(detector, tiny_net, held_out["noise"]) >= 0.90
    assert _flag_rate(detector, tiny_net, held_out["checkerboards"]) >= 0.90
    rates = detector.rates
    assert rates["in_domain_test"] <= 0.10
    assert set(rates["foreign"]) == {"noise", "checkerboards"}
    for row in rates["foreign"].values():
        assert row["flagged"] >= 0.9 and row["leave_one_out"] is not None


def test_detector_round_trips_through_json_and_the_card(fitted, tiny_net, tmp_path):
    from medviz.ood.detector import OodDetector
    from medviz.store import ModelCard, render_card_markdown

    detector, _, held_out = fitted
    stored = json.loads(json.dumps(detector.to_dict()))
    again = OodDetector.from_dict(stored)
    images = held_out["noise"][:5]
    from medviz.ood.features import layer_features

    features = layer_features(tiny_net, images, detector.layer_names)
    np.testing.assert_allclose(
        again.score(images, features), detector.score(images, features), atol=1e-3
    )
    card = ModelCard(name="t", class_names=("a", "b"), image_size=32, channels=1, ood=stored)
    assert ModelCard.from_dict(json.loads(json.dumps(card.to_dict()))).ood == stored
    assert "## Out-of-distribution check" in render_card_markdown(card)
    assert len(json.dumps(stored)) < 100_000


def test_malformed_detector_is_a_model_error(fitted):
    from medviz.errors import ModelError
    from medviz.ood.detector import OodDetector

    stored = fitted[0].to_dict()
    with pytest.raises(ModelError, match="malformed OOD detector"):
        OodDetector.from_dict({**stored, "coef": stored["coef"][:-1]})
    with pytest.raises(ModelError, match="format 99"):
        OodDetector.from_dict({**stored, "version": 99})


def _decoded(pixels: np.ndarray):
    from medviz.data.images import DecodedImage

    return DecodedImage(pixels=pixels, mode="L", size=pixels.shape[::-1])


def test_old_card_with_reference_only_still_checks(tiny_packaged):
    from medviz.explain import Explainer
    from medviz.services.predict import classify

    bundle = tiny_packaged.bundle
    assert bundle.card.reference and not bundle.card.ood
    result = classify(
        bundle, Explainer(bundle.model), _decoded(np.zeros((32, 32), np.uint8)), name="x"
    )
    assert result.ood.method == "reference" and result.ood.score is not None
    bare = replace(bundle, card=replace(bundle.card, reference=None))
    result = classify(
        bare, Explainer(bundle.model), _decoded(np.zeros((32, 32), np.uint8)), name="x"
    )
    assert result.ood.method == "none" and result.ood.score is None and not result.is_ood


def test_card_detector_is_used_and_a_mismatch_is_reported(fitted, tiny_packaged):
    """A detector whose layers the model lacks (retrained, fit-ood not re-run) is not fatal."""
    from medviz.explain import Explainer
    from medviz.services.predict import classify

    bundle = tiny_packaged.bundle
    stored = fitted[0].to_dict()
    stored["layers"][0]["layer"] = "no_such_layer"
    card = replace(bundle.card, ood=stored, reference=None)
    result = classify(
        replace(bundle, card=card),
        Explainer(bundle.model),
        _decoded(np.zeros((32, 32), np.uint8)),
        name="x",
    )
    assert result.ood.method == "none" and "fit-ood" in result.ood.message


def test_predict_json_reports_the_classify_warning_fields(capsys, fitted, tiny_net, tmp_path):
    from PIL import Image

    from medviz.cli import main
    from medviz.store import ModelCard, save_bundle

    detector, _, held_out = fitted
    card = ModelCard(
        name="blobs", class_names=("a", "b"), image_size=32, channels=1, ood=detector.to_dict()
    )
    folder = save_bundle(tiny_net, card, tmp_path / "blobs")
    noise = tmp_path / "noise.png"
    Image.fromarray(held_out["noise"][0, ..., 0]).save(noise)
    blob = tmp_path / "blob.png"
    Image.fromarray(held_out["blobs"][0, ..., 0]).save(blob)
    assert main(["predict", "--model", str(folder), "--json", str(noise), str(blob)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for row in rows:
        assert {"ood", "ood_score", "ood_limit", "ood_message", "warnings"} <= set(row)
        assert row["ood_method"] == "detector"
    assert rows[0]["ood"] is True and "unlike the model's training data" in rows[0]["ood_message"]
    assert rows[0]["warnings"] == [rows[0]["ood_message"]]
    assert rows[1]["ood"] is False and rows[1]["ood_message"] is None


def test_generated_sources_make_model_inputs():
    from medviz.ood.sources import SOURCES, load_source

    for name, source in SOURCES.items():
        if source.generator is None:
            continue
        images = load_source(source, image_size=28, channels=1, n=3, seed=1)
        assert images.shape == (3, 28, 28, 1) and images.dtype == np.uint8, name


@pytest.mark.shared
def test_shipped_pneumonia_card_flags_ct_and_mri():
    """The shipped chest X-ray detector flags CT and MRI slices (QA's original complaint)."""
    from medviz.data.registry import data_root
    from medviz.explain import Explainer
    from medviz.locations import models_dir
    from medviz.ood.sources import SOURCES, is_available, load_source
    from medviz.services.predict import classify
    from medviz.store import load_bundle

    root = data_root()
    wanted = [SOURCES["ct"], SOURCES["brain-mri"]]
    if not all(is_available(s, root) for s in wanted):
        pytest.skip(f"CT/MRI data not under {root}")
    bundle = load_bundle(models_dir() / "pneumonia-xray")
    assert bundle.card.ood, "the shipped card carries a fitted detector"
    explainer = Explainer(bundle.model)
    for source in wanted:
        images = load_source(source, image_size=128, channels=1, n=6, seed=7, root=root)
        flagged = [
            classify(bundle, explainer, _decoded(img[..., 0]), name="x", heatmap=False).is_ood
            for img in images
        ]
        assert sum(flagged) >= 5, f"{source.name}: {flagged}"
