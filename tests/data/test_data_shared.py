"""Loaders and health report on the real datasets under ../shared/datasets (quick subsets)."""

from __future__ import annotations

import pytest

from medviz.data import get_spec, health_report, load_dataset, load_folder
from medviz.data.images import decode_image

pytestmark = pytest.mark.shared


def test_chest_vs_abdomen_health(shared_root):
    ds = load_folder(shared_root / "chest_vs_abd_xray", image_size=32)
    assert ds.class_names == ("openI_CXR", "openI_abd_xray")
    assert len(ds) == 75  # 65 TRAIN + 10 VAL; the unlabelled TEST folder is skipped
    assert [where for where, _ in ds.extras["skipped"]] == ["TEST"]
    assert ds.counts()["val"] == {"openI_CXR": 5, "openI_abd_xray": 5}
    assert ds.extras["split_source"]["test"] == "carved from train"

    report = health_report(ds)
    assert report.shortcut is not None and report.shortcut.warning is not None
    assert report.shortcut.score > 0.85
    pair = (
        "VAL/openI_abd_xray/PMC2584007_1752-1947-2-335-2 (1).png",
        "VAL/openI_abd_xray/PMC2584007_1752-1947-2-335-2.png",
    )
    assert pair in report.duplicate_groups
    assert report.leakage_groups == []
    assert report.mode_distribution == {"RGB": 75}


def test_brain_mri_subset_and_png_named_jpg(shared_root):
    ds = load_dataset("brain-mri", image_size=32, limit_per_class=3)
    assert ds.class_names == ("glioma", "meningioma", "notumor", "pituitary")
    assert len(ds) == 12 and ds.extras["errors"] == []
    assert ds.extras["split_source"] == {
        "train": "given",
        "val": "carved from train",
        "test": "carved from train",
    }
    folder = shared_root / "brain_mri" / "Training" / "notumor"
    modes = {}
    for name in ("Tr-no_1005.jpg", "Tr-no_1011.jpg", "Tr-no_1012.jpg", "Tr-no_1020.jpg"):
        decoded = decode_image(folder / name)
        assert decoded.meta["format"] == "PNG"
        modes[name] = decoded.mode
    assert modes["Tr-no_1012.jpg"] == "P" and modes["Tr-no_1020.jpg"] == "RGBA"


def test_pneumoniamnist_npz(shared_root):
    ds = get_spec("pneumoniamnist").load(limit_per_class=10)
    assert ds.class_names == ("normal", "pneumonia")
    assert ds.images.shape == (40, 28, 28, 1)
    assert ds.counts()["val"] == {"normal": 10, "pneumonia": 10}
    assert ds.extras["split_source"]["test"] == "carved from train"


@pytest.mark.parametrize(
    ("name", "mode"),
    [("mammo-microcalc", "L"), ("covid-ct", "L"), ("chest-xray-pneumonia", "RGB")],
)
def test_other_folders_load(shared_root, name, mode):
    spec = get_spec(name)
    ds = load_dataset(name, limit_per_class=4)
    assert ds.class_names == spec.class_names
    assert ds.images.shape[1:] == (spec.image_size, spec.image_size, 1)
    assert set(ds.provenance.original_modes) == {mode}
    assert ds.extras["errors"] == []
