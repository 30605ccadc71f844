"""Official MedMNIST .npz files get their class names; --classes renames numbered classes."""

from __future__ import annotations

import numpy as np
import pytest

from medviz.data import load_dataset
from medviz.data.dataset import Dataset, rename_classes
from medviz.data.download import MEDMNIST
from medviz.data.npz import load_npz, recognise_medmnist
from medviz.errors import DataError


def _fake_medmnist(path, *, n_classes=2, splits=("train", "val", "test"), multi_label=False):
    rng = np.random.default_rng(0)
    arrays = {}
    for split in splits:
        arrays[f"{split}_images"] = rng.integers(0, 256, (6 * n_classes, 28, 28), dtype=np.uint8)
        labels = np.repeat(np.arange(n_classes), 6).astype(np.uint8)[:, None]
        arrays[f"{split}_labels"] = (
            rng.integers(0, 2, (6 * n_classes, 14)).astype(np.uint8) if multi_label else labels
        )
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    ("file_name", "flag"),
    [
        ("pneumoniamnist.npz", "pneumoniamnist"),
        ("pneumoniamnist_train_val.npz", "pneumoniamnist"),
        ("breastmnist_224.npz", "breastmnist"),
        ("OrganAMNIST.npz", "organamnist"),
        ("dermamnist-copy.npz", "dermamnist"),
    ],
)
def test_recognise_by_name_and_keys(file_name, flag):
    keys = ["train_images", "train_labels", "val_images", "val_labels"]
    assert recognise_medmnist(file_name, keys) is MEDMNIST[flag]


def test_not_recognised_with_other_names_or_keys():
    keys = ["train_images", "train_labels"]
    assert recognise_medmnist("mydata.npz", keys) is None
    assert recognise_medmnist("fashionmnist.npz", keys) is None  # not a MedMNIST flag
    assert recognise_medmnist("pneumoniamnist.npz", [*keys, "patient_ids"]) is None


def test_info_table_covers_the_single_label_2d_sets():
    expected = {
        "pneumoniamnist": ("normal", "pneumonia"),
        "breastmnist": ("malignant", "normal, benign"),
        "octmnist": ("choroidal neovascularization", "diabetic macular edema", "drusen", "normal"),
        "retinamnist": ("0", "1", "2", "3", "4"),
    }
    for flag, names in expected.items():
        assert MEDMNIST[flag].class_names == names
    for flag in (
        "pathmnist",
        "dermamnist",
        "bloodmnist",
        "tissuemnist",
        "organamnist",
        "organcmnist",
        "organsmnist",
    ):
        assert flag in MEDMNIST
    assert len(MEDMNIST["organamnist"].class_names) == 11
    assert "chestmnist" not in MEDMNIST


def test_fake_official_npz_loads_with_class_names(tmp_path):
    path = _fake_medmnist(tmp_path / "pneumoniamnist.npz")
    ds = load_dataset(path)
    assert ds.class_names == ("normal", "pneumonia")
    assert ds.licence == "CC BY 4.0"
    assert set(ds.available_splits) == {"train", "val", "test"}
    # the same bytes uploaded under the official name are recognised too
    uploaded = load_npz(path.read_bytes(), origin="pneumoniamnist.npz")
    assert uploaded.class_names == ("normal", "pneumonia")
    # an unknown name keeps numbers
    plain = _fake_medmnist(tmp_path / "mine.npz")
    assert load_dataset(plain).class_names == ("0", "1")


def test_chestmnist_is_refused_clearly(tmp_path):
    path = _fake_medmnist(tmp_path / "chestmnist.npz", multi_label=True)
    with pytest.raises(DataError, match="multi-label"):
        load_dataset(path)


def _numbered(names):
    labels = np.arange(len(names)).repeat(2)
    return Dataset(
        name="x",
        images=np.zeros((len(labels), 4, 4, 1), np.uint8),
        labels=labels,
        class_names=tuple(names),
        splits=np.array(["train"] * len(labels)),
    )


def test_rename_classes_positional_and_pairs():
    ds = _numbered(["0", "1"])
    assert rename_classes(ds, "normal,pneumonia").class_names == ("normal", "pneumonia")
    assert rename_classes(ds, "1=pneumonia").class_names == ("0", "pneumonia")
    # numbered folders sort as text ("0", "1", "10", "2" …) but are named by number
    many = _numbered([str(i) for i in sorted(range(11), key=str)])
    names = [f"c{i}" for i in range(11)]
    renamed = rename_classes(many, ",".join(names))
    assert dict(zip(many.class_names, renamed.class_names, strict=True))["10"] == "c10"
    assert dict(zip(many.class_names, renamed.class_names, strict=True))["2"] == "c2"
    # named classes go by their order
    assert rename_classes(_numbered(["b", "a"]), "x,y").class_names == ("x", "y")


def test_rename_classes_errors_name_what_was_received():
    ds = _numbered(["0", "1"])
    with pytest.raises(DataError, match="needs 2 names"):
        rename_classes(ds, "normal")
    with pytest.raises(DataError, match="OLD=NEW"):
        rename_classes(ds, "7=normal")
    with pytest.raises(DataError, match="distinct"):
        rename_classes(ds, "a,a")


@pytest.mark.shared
def test_real_pneumoniamnist_npz_gets_class_names(shared_root):
    path = shared_root / "pneumoniamnist" / "pneumoniamnist_train_val.npz"
    if not path.exists():
        pytest.skip("pneumoniamnist not present")
    ds = load_dataset(path, limit_per_class=5)
    assert ds.class_names == ("normal", "pneumonia")
