"""The medviz.data package surface and load_dataset dispatch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import medviz.data
from medviz.data import DATASETS, load_dataset
from medviz.errors import DataError


def test_import_is_cheap():
    heavy = ("tensorflow", "keras", "sklearn", "pydicom")
    code = f"import sys, medviz.data; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_public_names_exist():
    for name in medviz.data.__all__:
        assert hasattr(medviz.data, name), name
    for name in ("load_folder", "load_zip", "load_npz", "health_report", "decode_image"):
        assert name in medviz.data.__all__


def test_registry_name():
    ds = load_dataset("synthetic-microcalc", image_size=16, limit_per_class=10)
    assert ds.name == "synthetic-microcalc" and ds.images.shape == (20, 16, 16, 1)


def test_paths_to_folder_zip_and_npz(tmp_path, write_tree, class_images, zip_bytes):
    files = class_images("", {"a": 3, "b": 3})
    folder = load_dataset(write_tree(files), image_size=8)
    assert folder.images.shape == (6, 8, 8, 1)

    archive = tmp_path / "set.zip"
    archive.write_bytes(zip_bytes(files))
    zipped = load_dataset(str(archive), channels=3)
    assert zipped.images.shape == (6, 128, 128, 3)  # the default folder size

    npz = tmp_path / "set.npz"
    np.savez(npz, train_images=np.zeros((4, 5, 5), np.uint8), train_labels=np.array([0, 1, 0, 1]))
    assert load_dataset(npz).images.shape == (4, 5, 5, 1)  # native size kept


def test_unknown_source_lists_registered_names(tmp_path):
    with pytest.raises(DataError) as info:
        load_dataset("no-such-dataset")
    message = str(info.value)
    assert "'no-such-dataset'" in message
    for name in DATASETS:
        assert name in message
    assert "medmnist:<name>" in message
    text = tmp_path / "notes.txt"
    text.write_text("x")
    with pytest.raises(DataError, match="not a registered name"):
        load_dataset(text)
