"""load_npz on generated MedMNIST-style archives."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medviz.data.npz import load_npz
from medviz.errors import DataError


@pytest.fixture
def npz_file(tmp_path):
    """``npz_file(name, **arrays) -> Path`` written with ``np.savez``."""

    def write(name: str = "mnist.npz", **arrays: np.ndarray):
        path = tmp_path / name
        np.savez(path, **arrays)
        return path

    return write


def _split(n: int, seed: int, shape=(6, 6)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, *shape), dtype=np.uint8)
    labels = (np.arange(n) % 2).astype(np.uint8).reshape(n, 1)
    return images, labels


def test_three_splits_are_kept(npz_file):
    arrays = {}
    for split, n, seed in (("train", 10, 0), ("val", 4, 1), ("test", 6, 2)):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = _split(n, seed)
    ds = load_npz(npz_file(**arrays))
    assert ds.name == "mnist"
    assert ds.class_names == ("0", "1")
    assert ds.images.shape == (20, 6, 6, 1)
    assert ds.counts() == {
        "train": {"0": 5, "1": 5},
        "val": {"0": 2, "1": 2},
        "test": {"0": 3, "1": 3},
    }
    np.testing.assert_array_equal(ds.images[:10, ..., 0], arrays["train_images"])
    assert ds.provenance.sources[10] == "val_images[0]"
    assert ds.extras["split_source"] == dict.fromkeys(("train", "val", "test"), "given")


def test_single_split_is_completed(npz_file):
    images, labels = _split(40, 0)
    ds = load_npz(npz_file(train_images=images, train_labels=labels), seed=1)
    assert ds.available_splits == ("train", "val", "test")
    assert ds.extras["split_source"]["test"] == "carved from train"


def test_train_and_val_get_test_from_train(npz_file):
    train, train_labels = _split(40, 0)
    val, val_labels = _split(6, 1)
    path = npz_file(
        train_images=train, train_labels=train_labels, val_images=val, val_labels=val_labels
    )
    ds = load_npz(path)
    assert ds.counts()["val"] == {"0": 3, "1": 3}
    assert ds.counts()["test"]["0"] > 0
    assert all(str(ds.splits[i]) in ("train", "test") for i in range(40))


def test_class_names_resize_and_channels(npz_file):
    images, labels = _split(4, 0, shape=(5, 7))
    path = npz_file(train_images=images, train_labels=labels)
    ds = load_npz(path, class_names=["normal", "pneumonia"], image_size=8, channels=3)
    assert ds.class_names == ("normal", "pneumonia")
    assert ds.images.shape == (4, 8, 8, 3)
    np.testing.assert_array_equal(ds.images[..., 0], ds.images[..., 2])
    assert tuple(ds.provenance.original_sizes[0]) == (7, 5)


def test_rgb_to_gray_matches_pillow(npz_file):
    rgb = np.random.default_rng(3).integers(0, 256, size=(2, 4, 4, 3), dtype=np.uint8)
    ds = load_npz(npz_file(test_images=rgb, test_labels=np.array([0, 1])))
    assert ds.provenance.original_modes == ("RGB", "RGB")
    expected = np.asarray(Image.fromarray(rgb[1]).convert("L"))
    np.testing.assert_array_equal(ds.images[1, ..., 0], expected)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([[0.0, 0.5], [1.0, 0.25]], [[0, 128], [255, 64]]),  # [0, 1] is scaled by 255
        ([[0.0, 2.4], [200.0, 0.5]], [[0, 2], [200, 0]]),  # [0, 255] is only rounded
    ],
)
def test_float_images_are_converted(npz_file, values, expected):
    images = np.array([values, values])
    ds = load_npz(npz_file(train_images=images, train_labels=np.array([0, 1])))
    np.testing.assert_array_equal(ds.images[0, ..., 0], expected)


def test_float_images_out_of_range(npz_file):
    images = np.full((2, 2, 2), 300.0)
    with pytest.raises(DataError, match=r"'train_images' has float values in \[300, 300\]"):
        load_npz(npz_file(train_images=images, train_labels=np.array([0, 1])))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_images_name_the_key(npz_file, bad):
    images = np.zeros((2, 3, 3))
    images[1, 1, 1] = bad
    path = npz_file(val_images=images, val_labels=np.array([0, 1]))
    with pytest.raises(DataError, match=r"'val_images' contains NaN or infinite"):
        load_npz(path)


def test_mismatched_counts_name_both_keys(npz_file):
    images, labels = _split(5, 0)
    path = npz_file(train_images=images, train_labels=labels[:4])
    with pytest.raises(
        DataError, match=r"'train_images' holds 5 images but 'train_labels' holds 4 labels"
    ):
        load_npz(path)


def test_missing_label_key(npz_file):
    images, _ = _split(3, 0)
    path = npz_file(train_images=images)
    with pytest.raises(DataError, match=r"has 'train_images' but no 'train_labels'"):
        load_npz(path)


def test_no_medmnist_keys(npz_file):
    with pytest.raises(DataError, match=r"no MedMNIST-style arrays; found keys \['x', 'y'\]"):
        load_npz(npz_file(x=np.zeros(3), y=np.zeros(3)))


def test_label_outside_class_names(npz_file):
    images, _ = _split(3, 0)
    path = npz_file(train_images=images, train_labels=np.array([0, 1, 2]))
    with pytest.raises(DataError, match=r"holds label 2 but only 2 class names"):
        load_npz(path, class_names=("a", "b"))


def test_multi_label_is_refused(npz_file):
    images, _ = _split(3, 0)
    path = npz_file(train_images=images, train_labels=np.zeros((3, 14), dtype=np.uint8))
    with pytest.raises(DataError, match=r"shape \(3, 14\).*multi-label"):
        load_npz(path)


def test_object_arrays_need_pickle_and_are_refused(npz_file):
    labels = np.array([0, 1])
    path = npz_file(train_images=np.array([object(), object()], dtype=object), train_labels=labels)
    with pytest.raises(DataError, match=r"cannot read array 'train_images'"):
        load_npz(path)


def test_bytes_and_limit_per_class(npz_file):
    images, labels = _split(10, 0)
    buffer = io.BytesIO()
    np.savez(buffer, train_images=images, train_labels=labels)
    ds = load_npz(buffer.getvalue(), limit_per_class=2, name="upload")
    assert ds.name == "upload"
    assert sorted(ds.provenance.sources) == [f"train_images[{i}]" for i in (0, 1, 2, 3)]


def test_not_an_npz(tmp_path):
    path = tmp_path / "fake.npz"
    path.write_text("hello")
    with pytest.raises(DataError, match=r"fake\.npz: not a readable \.npz file"):
        load_npz(path)
