"""medviz.stress: every shift grows with severity, is seeded, and the report measures right."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from medviz.errors import DataError, MedvizError
from medviz.stress import (
    SEVERITIES,
    SHIFTS,
    StressReport,
    apply_shift,
    sample_indices,
    stress_split,
    stress_test,
)


@pytest.fixture(scope="module")
def patches():
    """Twelve 32×32 grey mammogram-like patches (texture, specks) as uint8 (N, H, W, 1)."""
    from medviz.data.synthetic import generate_microcalc

    return generate_microcalc(12, image_size=32, seed=5).images


def _change(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).mean())


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_severity_zero_is_identity_and_change_grows_with_severity(patches, shift):
    clean = apply_shift(patches, shift, 0)
    np.testing.assert_array_equal(clean, patches)
    assert clean is not patches  # a copy: callers may write into it
    changes = [_change(apply_shift(patches, shift, s), patches) for s in SEVERITIES]
    assert changes[0] > 0.2, f"{shift} severity 1 changes almost nothing: {changes}"
    assert all(b > a for a, b in itertools.pairwise(changes)), (shift, changes)


@pytest.mark.parametrize("shift", list(SHIFTS))
def test_shifts_keep_shape_dtype_and_work_on_rgb(patches, shift):
    rgb = np.repeat(patches[:3], 3, axis=-1)
    out = apply_shift(rgb, shift, 3)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    grey = apply_shift(patches[:3], shift, 3)
    assert grey.shape == patches[:3].shape and grey.dtype == np.uint8


@pytest.mark.parametrize("shift", ["noise", "rotation"])
def test_random_shifts_are_seeded(patches, shift):
    a = apply_shift(patches, shift, 4, seed=1)
    np.testing.assert_array_equal(a, apply_shift(patches, shift, 4, seed=1))
    assert not np.array_equal(a, apply_shift(patches, shift, 4, seed=2))


def test_every_shift_is_deterministic(patches):
    for shift in SHIFTS:
        np.testing.assert_array_equal(
            apply_shift(patches, shift, 5, seed=3), apply_shift(patches, shift, 5, seed=3)
        )


@pytest.mark.parametrize(
    ("images", "shift", "severity", "error", "fragment"),
    [
        (np.zeros((2, 8, 8, 1), np.float32), "blur", 1, DataError, "uint8"),
        (np.zeros((8, 8), np.uint8), "blur", 1, DataError, "(N, H, W, C)"),
        (np.zeros((2, 8, 8, 4), np.uint8), "blur", 1, DataError, "C = 1 or 3"),
        (np.zeros((2, 8, 8, 1), np.uint8), "twirl", 1, MedvizError, "unknown shift"),
        (np.zeros((2, 8, 8, 1), np.uint8), "blur", 6, MedvizError, "0–5"),
        (np.zeros((2, 8, 8, 1), np.uint8), "blur", 1.5, MedvizError, "integer"),
    ],
)
def test_bad_shift_input_is_named(images, shift, severity, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        apply_shift(images, shift, severity)


def test_sample_is_stratified_seeded_and_keeps_every_class():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    index = sample_indices(labels, 20, seed=0)
    assert len(index) == 20 and len(set(index)) == 20
    assert np.all(np.diff(index) > 0)
    assert np.bincount(labels[index], minlength=3).tolist() == [18, 1, 1]
    np.testing.assert_array_equal(index, sample_indices(labels, 20, seed=0))
    assert not np.array_equal(index, sample_indices(labels, 20, seed=1))
    np.testing.assert_array_equal(sample_indices(labels, None), np.arange(100))
    np.testing.assert_array_equal(sample_indices(labels, 500), np.arange(100))


def test_stress_test_shapes_and_clean_level_equal_a_plain_evaluation(tiny_packaged, tiny_microcalc):
    from medviz.pipeline import evaluate_split

    bundle = tiny_packaged.bundle
    val = tiny_microcalc.split("val")
    ticks = []
    report = stress_split(
        bundle,
        tiny_microcalc,
        "val",
        max_images=None,
        shifts=("blur", "noise", "jpeg"),
        severities=(1, 5),
        on_progress=lambda done, total: ticks.append((done, total)),
    )
    assert report.shifts == ("blur", "noise", "jpeg") and report.severities == (1, 5)
    assert report.accuracy.shape == report.auc.shape == (3, 2)
    assert np.isfinite(report.accuracy).all() and np.isfinite(report.auc).all()
    assert report.n == report.n_available == len(val)
    assert ticks == [(1, 3), (2, 3), (3, 3)]
    plain = evaluate_split(bundle, tiny_microcalc, "val", n_bootstrap=0)
    assert report.clean_accuracy == pytest.approx(plain.accuracy)
    assert report.clean_auc == pytest.approx(plain.auc)
    assert report.threshold == pytest.approx(bundle.card.threshold)
    assert report.temperature == pytest.approx(bundle.card.temperature)
    assert (report.split, report.dataset) == ("val", tiny_microcalc.name)
    assert report.worst_shift in report.shifts and report.seconds > 0


def test_stress_test_uses_temperature_and_threshold(tiny_packaged, tiny_microcalc):
    val = tiny_microcalc.split("val")
    model = tiny_packaged.bundle.model
    common = {"class_names": val.class_names, "shifts": ("contrast",), "severities": (1,)}
    everything_positive = stress_test(model, val.images, val.labels, threshold=0.0, **common)
    assert everything_positive.clean_accuracy == pytest.approx(np.mean(val.labels == 1))
    assert everything_positive.accuracy[0, 0] == pytest.approx(np.mean(val.labels == 1))
    # T = 50 squashes every probability towards 0.5: nothing reaches 0.6 any more,
    # while the ranking (the AUC) stays what it was.
    plain = stress_test(model, val.images, val.labels, threshold=0.6, **common)
    hot = stress_test(model, val.images, val.labels, threshold=0.6, temperature=50.0, **common)
    assert hot.clean_accuracy == pytest.approx(np.mean(val.labels == 0))
    assert hot.clean_auc == pytest.approx(plain.clean_auc)
    assert hot.temperature == 50.0


def test_stress_test_samples_and_is_seeded(tiny_packaged, tiny_microcalc):
    test = tiny_microcalc.split("test")
    model = tiny_packaged.bundle.model
    args = (model, test.images, test.labels)
    common = {"class_names": test.class_names, "shifts": ("noise",), "severities": (5,)}
    a = stress_test(*args, max_images=16, seed=4, **common)
    b = stress_test(*args, max_images=16, seed=4, **common)
    assert a.n == 16 and a.n_available == len(test)
    np.testing.assert_array_equal(a.accuracy, b.accuracy)
    assert a.to_dict()["shifts"] == b.to_dict()["shifts"]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"shifts": ()}, "at least one shift"),
        ({"shifts": ("blur", "blur")}, "repeat"),
        ({"shifts": ("warp",)}, "unknown shift"),
        ({"severities": (0,)}, "subset"),
        ({"severities": (7,)}, "0–5"),
        ({"max_images": 0}, "max_images"),
        ({"temperature": 0.0}, "temperature"),
    ],
)
def test_stress_test_rejects_bad_options(tiny_packaged, tiny_microcalc, options, fragment):
    val = tiny_microcalc.split("val")
    with pytest.raises(MedvizError, match=fragment):
        stress_test(
            tiny_packaged.bundle.model,
            val.images,
            val.labels,
            class_names=val.class_names,
            **options,
        )


def test_stress_test_rejects_mismatched_labels(tiny_packaged, tiny_microcalc):
    val = tiny_microcalc.split("val")
    with pytest.raises(DataError, match="labels"):
        stress_test(
            tiny_packaged.bundle.model, val.images, val.labels[:-1], class_names=val.class_names
        )


def _report(**overrides) -> StressReport:
    values = {
        "class_names": ("a", "b"),
        "shifts": ("blur", "noise"),
        "severities": (1, 2),
        "accuracy": np.array([[0.9, 0.7], [0.8, 0.4]]),
        "auc": np.array([[0.95, np.nan], [0.9, 0.6]]),
        "clean_accuracy": 0.92,
        "clean_auc": 0.97,
        "n": 50,
        "n_available": 200,
        "seed": 0,
        "temperature": 1.2,
        "threshold": 0.5,
        "seconds": 1.234,
        "split": "val",
        "dataset": "toy",
    }
    values.update(overrides)
    return StressReport(**values)


def test_report_dict_is_json_ready_and_round_trips():
    report = _report()
    values = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert values["shifts"]["blur"]["auc"] == [0.95, None]
    assert values["shifts"]["noise"]["levels"] == [
        SHIFTS["noise"].levels[0],
        SHIFTS["noise"].levels[1],
    ]
    assert values["clean"] == {"accuracy": 0.92, "auc": 0.97}
    assert values["worst"] == {"shift": "noise", "mean_accuracy": pytest.approx(0.6)}
    back = StressReport.from_dict(values)
    np.testing.assert_array_equal(back.accuracy, report.accuracy)
    assert np.isnan(back.auc[0, 1]) and back.worst_shift == "noise"
    assert (back.n, back.n_available, back.split) == (50, 200, "val")
    summary = json.loads(json.dumps(report.summary(), allow_nan=False))
    assert summary["worst_shift"] == "noise"
    assert summary["at_max_severity"]["noise"] == {"accuracy": 0.4, "auc": 0.6}
    rows = report.rows()
    assert len(rows) == 4 and rows[1]["accuracy_drop"] == pytest.approx(0.22)
    with pytest.raises(MedvizError, match="malformed"):
        StressReport.from_dict({"shifts": {}})


def test_worst_shift_ties_go_to_the_lower_auc():
    report = _report(
        accuracy=np.array([[0.6, 0.6], [0.6, 0.6]]), auc=np.array([[0.9, 0.9], [0.7, 0.7]])
    )
    assert report.worst_shift == "noise"
