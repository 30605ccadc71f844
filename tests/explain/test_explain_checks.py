"""Checks that can fail: mass on the body, agreement across families, localisation.

Two tiny CNNs are trained for a few seconds on generated "scans" (a bright
body on a dark background, sometimes a bright lesion inside): one whose class
is the lesion, and one whose class is a patch in the background corner (the
lesion is in every image of its data, so only the corner tells the classes
apart). The checks must fail for the second and pass for the first.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from medviz.data.dataset import Dataset
from medviz.errors import ModelError
from medviz.explain import explain, localization_score
from medviz.explain.checks import (
    FamilyAgreement,
    check_heatmap,
    coarse_agreement,
    family_agreement,
    foreground_mask,
    foreground_mass,
    trust_summary,
)

SIZE = 32


def scans(n: int, *, seed: int, corner_cue: bool) -> Dataset:
    """``n`` 32×32 scans; label 1 = lesion (or, with ``corner_cue``, = a corner patch)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    labels = np.arange(n) % 2
    images = np.zeros((n, SIZE, SIZE, 1), np.uint8)
    masks = np.zeros((n, SIZE, SIZE), bool)
    for i in range(n):
        cy, cx = 16 + rng.integers(-1, 2, size=2)
        radius = rng.uniform(10.5, 12.0)
        body = (yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2
        img = rng.uniform(0, 8, (SIZE, SIZE))
        img[body] = 110 + rng.normal(0, 8, body.sum())
        angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(0, radius - 5)
        ly, lx = cy + dist * np.sin(angle), cx + dist * np.cos(angle)
        lesion = (yy - ly) ** 2 + (xx - lx) ** 2 <= 2.2**2
        if corner_cue or labels[i] == 1:
            img[lesion] = 230
            masks[i] = lesion
        if corner_cue and labels[i] == 1:
            img[1:6, 1:6] = 200  # outside the body: background
        images[i, ..., 0] = np.clip(img, 0, 255).astype(np.uint8)
    splits = np.where(np.arange(n) < int(0.8 * n), "train", "test")
    return Dataset("scans", images, labels.astype(np.int64), ("clear", "finding"), splits, masks)


def _train(data: Dataset, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inp = keras.Input((SIZE, SIZE, 1), name="image")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalMaxPooling2D(name="gmp")(x)
    out = keras.layers.Dense(2, activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out)
    model.compile(
        optimizer=keras.optimizers.Adam(5e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    train, test = data.split("train"), data.split("test")
    model.fit(train.images, train.labels, epochs=8, batch_size=32, verbose=0)
    accuracy = model.evaluate(test.images, test.labels, verbose=0)[1]
    assert accuracy > 0.9, f"the fixture model did not learn its cue ({accuracy:.2f})"
    return model


@pytest.fixture(scope="module")
def lesion_data() -> Dataset:
    return scans(400, seed=0, corner_cue=False)


@pytest.fixture(scope="module")
def corner_data() -> Dataset:
    return scans(400, seed=1, corner_cue=True)


@pytest.fixture(scope="module")
def lesion_model(lesion_data) -> keras.Model:
    """Looks at the lesion: its class is whether there is one."""
    return _train(lesion_data, seed=0)


@pytest.fixture(scope="module")
def corner_model(corner_data) -> keras.Model:
    """Looks at the background: its class is the patch in the top-left corner."""
    return _train(corner_data, seed=0)


def _findings(data: Dataset, n: int = 8) -> Dataset:
    test = data.split("test")
    return test.take(np.flatnonzero(test.labels == 1)[:n])


# ------------------------------------------------------------ pure checks
def test_foreground_mask_finds_the_body_and_skips_patches(lesion_data, microcalc):
    image = lesion_data.images[0, ..., 0]
    body = foreground_mask(image)
    assert body is not None and 0.3 < body.mean() < 0.7
    assert body[16, 16] and not body[0, 0]
    holed = image.copy()
    holed[14:18, 14:18] = 0  # a dark hole inside the body (a ventricle) is still body
    assert foreground_mask(holed)[15, 15]
    # Tissue patches fill the frame: nothing is background, nothing to judge.
    assert all(foreground_mask(img) is None for img in microcalc.images[:20])
    assert not foreground_mass(microcalc.images[0], np.ones((64, 64))).judged


def test_foreground_mass_share():
    image = np.zeros((20, 20), np.uint8)
    image[5:15, 5:15] = 120  # body: a quarter of the image
    found = foreground_mask(image)
    assert found[5:15, 5:15].all() and 0.25 <= found.mean() <= 0.3  # edges blur by a pixel
    body = image > 0
    heat = np.zeros((20, 20))
    heat[8:12, 8:12] = 1.0
    on = foreground_mass(image, heat, body=body)
    assert on.judged and on.share == pytest.approx(1.0) and on.body_fraction == 0.25
    heat[0:2, 0:8] = 1.0  # 16 on the body, 16 on the background
    assert foreground_mass(image, heat, body=body).share == pytest.approx(0.5)
    heat[0:4, 0:8] = 1.0  # 16 on the body, 32 on the background
    off = foreground_mass(image, heat, body=body)
    assert off.share == pytest.approx(1 / 3) and not off.passed
    assert foreground_mass(image, heat).share < 0.5  # the same with the found body


def test_coarse_agreement_ignores_resolution_but_not_place():
    yy, xx = np.mgrid[0:32, 0:32]
    smooth = np.exp(-((yy - 8) ** 2 + (xx - 24) ** 2) / 40.0)
    speckled = smooth * np.random.default_rng(0).uniform(0.5, 1.0, smooth.shape)
    elsewhere = np.exp(-((yy - 24) ** 2 + (xx - 8) ** 2) / 40.0)
    assert coarse_agreement(smooth, speckled) > 0.8
    assert coarse_agreement(smooth, elsewhere) < 0.0


def test_summary_line_and_verdict(lesion_data):
    image = lesion_data.images[1, ..., 0]
    corner = np.zeros((SIZE, SIZE), np.float32)
    corner[:6, :6] = 1.0
    summary = trust_summary(
        image,
        corner,
        method="gradcam",
        references={"occlusion": corner, "integrated-gradients": corner},
        mask=lesion_data.masks[1],
    )
    assert summary.verdict == "do not trust" and not summary.trusted
    assert summary.line().startswith("Do not trust this map")
    assert {c.name for c in summary.failed} == {"mass on the body", "points at the lesion"}
    assert [c.status for c in summary.checks][1] == "pass"  # the families agree on the corner
    assert summary.to_dict()["verdict"] == "do not trust"
    # No background, no references, no mask: nothing applies.
    flat = trust_summary(np.full((SIZE, SIZE), 100, np.uint8), corner, method="saliency")
    assert flat.verdict == "not checked" and flat.line().startswith("Not checked")


# ------------------------------------------------------------ on models
def test_checks_fail_for_the_model_that_looks_at_the_background(corner_model, corner_data):
    findings = _findings(corner_data)
    verdicts: dict[str, list[str]] = {"gradcam": [], "occlusion": []}
    masses: dict[str, list[float]] = {"occlusion": [], "integrated-gradients": []}
    for image, mask in zip(findings.images, findings.masks, strict=True):
        for method in verdicts:
            _, summary = check_heatmap(corner_model, image, method=method, mask=mask)
            verdicts[method].append(summary.verdict)
        for method in masses:
            heat = explain(corner_model, image, method=method, class_index=1).heatmap
            masses[method].append(foreground_mass(image, heat).share)
    # Its Grad-CAM is blank (the class is the absence of evidence against it) or off the body,
    # and its occlusion map sits on the corner patch: most of the mass is on the background.
    for method, values in masses.items():
        assert np.median(values) < 0.5, (method, values)
    for method, values in verdicts.items():
        assert values.count("do not trust") >= 7, (method, values)
    report = localization_score(
        corner_model, findings, method="occlusion", split="all", n_bootstrap=200
    )
    assert not report.passed, report.summary()
    assert report.hit_rate <= report.baselines["centre"].hit_rate
    heat = explain(corner_model, findings.images[0], method="occlusion").heatmap
    summary = trust_summary(findings.images[0], heat, method="occlusion", localization=report)
    assert "localisation over the dataset" in {c.name for c in summary.failed}
    assert summary.line().startswith("Do not trust this map")


def test_checks_pass_for_the_model_that_looks_at_the_lesion(lesion_model, lesion_data):
    findings = _findings(lesion_data)
    verdicts, agreements = [], []
    for image, mask in zip(findings.images, findings.masks, strict=True):
        _, summary = check_heatmap(lesion_model, image, method="gradcam", mask=mask)
        verdicts.append(summary.verdict)
        agreements.append(summary.checks[1].value)
    assert verdicts.count("no check failed") >= 6, verdicts
    assert np.median(agreements) >= 0.3, agreements
    report = localization_score(lesion_model, findings, split="all", n_bootstrap=200)
    assert report.hit_rate > report.baselines["centre"].hit_rate, report.summary()


def test_family_agreement_matrix_and_errors(lesion_model, lesion_data):
    image = _findings(lesion_data, 1).images[0]
    agreement = family_agreement(lesion_model, image, class_index=1)
    assert isinstance(agreement, FamilyAgreement)
    assert agreement.methods == ("gradcam", "occlusion", "integrated-gradients")
    assert agreement.matrix.shape == (3, 3) and np.allclose(agreement.matrix, agreement.matrix.T)
    assert agreement.heatmaps.shape == (3, SIZE, SIZE) and agreement.class_index == 1
    # Given maps are used as they are: identical maps agree perfectly.
    same = family_agreement(
        lesion_model, image, class_index=1, methods=("gradcam", "occlusion"),
        heatmaps={"gradcam": agreement.heatmaps[0], "occlusion": agreement.heatmaps[0]},
    )  # fmt: skip
    assert same.mean == pytest.approx(1.0)
    with pytest.raises(ModelError, match="different families"):
        family_agreement(lesion_model, image, methods=("gradcam", "gradcam++"))
