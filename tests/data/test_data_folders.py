"""load_folder: layouts, split handling, bad files, provenance."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from PIL import Image

from medviz.data.folders import complete_splits, load_folder
from medviz.errors import DataError


def _split_of(dataset, source: str) -> str:
    return str(dataset.splits[dataset.provenance.sources.index(source)])


def test_class_layout_assigns_all_splits(write_tree, class_images):
    files = class_images("", {"benign": 20, "malignant": 20})
    root = write_tree(files)
    ds = load_folder(root, image_size=8, seed=3)
    assert ds.name == "root"
    assert ds.class_names == ("benign", "malignant")
    assert ds.images.shape == (40, 8, 8, 1) and ds.images.dtype == np.uint8
    assert ds.counts() == {
        "train": {"benign": 14, "malignant": 14},
        "val": {"benign": 3, "malignant": 3},
        "test": {"benign": 3, "malignant": 3},
    }
    assert ds.extras["split_source"] == dict.fromkeys(("train", "val", "test"), "assigned")
    assert ds.extras["errors"] == [] and ds.extras["skipped"] == []
    # Provenance: relative path, original size and mode, SHA-1 of the bytes.
    source = "malignant/img004.png"
    i = ds.provenance.sources.index(source)
    assert ds.labels[i] == 1
    assert tuple(ds.provenance.original_sizes[i]) == (12, 10)
    assert ds.provenance.original_modes[i] == "L"
    assert ds.provenance.digests[i] == hashlib.sha1(files[source]).hexdigest()
    # Same seed, same splits; the loader is deterministic.
    again = load_folder(root, image_size=8, seed=3)
    np.testing.assert_array_equal(again.splits, ds.splits)
    np.testing.assert_array_equal(again.images, ds.images)


def test_class_names_sorted_by_code_point(write_tree, class_images):
    root = write_tree(class_images("", {"b": 2, "A": 2, "a": 2}))
    assert load_folder(root, image_size=4).class_names == ("A", "a", "b")


def test_training_testing_folders_get_val_from_train_only(write_tree, class_images):
    files = class_images("Training/", {"glioma": 20, "notumor": 20})
    files |= class_images("Testing/", {"glioma": 5, "notumor": 5})
    ds = load_folder(write_tree(files), image_size=8)
    assert ds.extras["split_source"] == {
        "train": "given",
        "val": "carved from train",
        "test": "given",
    }
    for source, split in zip(ds.provenance.sources, ds.splits, strict=True):
        if source.startswith("Testing/"):
            assert split == "test"
        else:
            assert split in ("train", "val")
    assert ds.counts()["test"] == {"glioma": 5, "notumor": 5}
    assert ds.counts()["val"]["glioma"] > 0


def test_upper_case_and_validation_names(write_tree, class_images):
    files = class_images("TRAIN/", {"x": 4, "y": 4})
    files |= class_images("validation/", {"x": 2, "y": 2})
    files |= class_images("TEST/", {"x": 3, "y": 3})
    ds = load_folder(write_tree(files), image_size=4)
    assert ds.counts() == {
        "train": {"x": 4, "y": 4},
        "val": {"x": 2, "y": 2},
        "test": {"x": 3, "y": 3},
    }
    assert set(ds.extras["split_source"].values()) == {"given"}
    assert _split_of(ds, "validation/x/img001.png") == "val"


def test_train_only_carves_val_and_test(write_tree, class_images):
    ds = load_folder(write_tree(class_images("train/", {"a": 20, "b": 20})), image_size=4)
    assert ds.extras["split_source"] == {
        "train": "given",
        "val": "carved from train",
        "test": "carved from train",
    }
    assert ds.available_splits == ("train", "val", "test")


def test_class_names_are_the_union_over_splits(write_tree, class_images):
    files = class_images("train/", {"a": 3, "b": 3, "c": 3})
    files |= class_images("test/", {"a": 2, "b": 2})
    ds = load_folder(write_tree(files), image_size=4)
    assert ds.class_names == ("a", "b", "c")
    assert ds.counts()["test"] == {"a": 2, "b": 2, "c": 0}


def test_split_folder_of_loose_files_is_skipped(write_tree, class_images, encode):
    files = class_images("TRAIN/", {"cxr": 6, "abd": 6})
    files |= class_images("VAL/", {"cxr": 2, "abd": 2})
    loose = encode(Image.new("L", (5, 5), 99), "PNG")
    files |= {"TEST/chest2.png": loose, "TEST/abd2.png": loose, "SOURCE.md": b"# notes"}
    ds = load_folder(write_tree(files), image_size=4)
    assert len(ds) == 16
    assert not any(s.startswith("TEST/") for s in ds.provenance.sources)
    ((where, why),) = ds.extras["skipped"]
    assert where == "TEST" and "no class folders" in why
    assert ds.extras["split_source"]["test"] == "carved from train"


def test_hidden_and_junk_files_are_ignored(write_tree, class_images):
    files = class_images("", {"a": 3, "b": 3})
    files |= {
        ".DS_Store": b"\0\0\0\1Bud1",
        "a/.DS_Store": b"\0\0\0\1Bud1",
        "a/._img000.png": b"\0\5\26\7AppleDouble",
        ".git/config": b"[core]",
        "__MACOSX/a/._img001.png": b"junk",
        "b/Thumbs.db": b"junk",
    }
    ds = load_folder(write_tree(files), image_size=4)
    assert len(ds) == 6
    assert ds.extras["errors"] == [] and ds.extras["skipped"] == []


def test_bad_files_are_listed_not_fatal(write_tree, class_images, encode):
    files = class_images("", {"a": 3, "b": 3})
    noise = np.random.default_rng(0).integers(0, 256, size=(32, 32), dtype=np.uint8)
    png = encode(Image.fromarray(noise), "PNG")
    files |= {
        "a/cut.png": png[: len(png) // 2],
        "a/empty.png": b"",
        "b/notes.png": b"plain text, not an image",
        "b/table.csv": b"a,b\n1,2\n",
        "b/nested.zip": b"PK\x05\x06" + b"\0" * 18,
        "loose.png": png,
    }
    ds = load_folder(write_tree(files), image_size=4)
    assert len(ds) == 6
    errors = dict(ds.extras["errors"])
    assert set(errors) == {"a/cut.png", "a/empty.png", "b/notes.png"}
    assert "truncated" in errors["a/cut.png"] and "empty" in errors["a/empty.png"]
    skipped = dict(ds.extras["skipped"])
    assert set(skipped) == {"b/table.csv", "b/nested.zip", "loose.png"}
    assert "nested zip" in skipped["b/nested.zip"]


def test_extensionless_files_only_if_dicom(write_tree, class_images, make_dicom):
    files = class_images("", {"a": 2, "b": 2})
    files |= {"a/IM0001": make_dicom(np.eye(4, dtype=np.uint16)), "b/README": b"text"}
    ds = load_folder(write_tree(files), image_size=4)
    i = ds.provenance.sources.index("a/IM0001")
    assert ds.provenance.original_modes[i] == "DICOM:MONOCHROME2"
    assert dict(ds.extras["skipped"]) == {"b/README": "no file extension and not DICOM"}


def test_mixed_formats_and_channels(write_tree, encode, gradient, make_dicom):
    gray = Image.fromarray(gradient(20, 10))
    rgb = Image.fromarray(np.dstack([gradient(6, 6), gradient(6, 6)[::-1], gradient(6, 6).T]))
    files = {
        "x/renamed.jpg": encode(gray, "PNG"),
        "x/patch.pgm": encode(gray, "PPM"),
        "x/scan.bmp": encode(rgb, "BMP"),
        "y/page.tif": encode(gray, "TIFF"),
        "y/photo.JPG": encode(rgb, "JPEG"),
        "y/slice.dcm": make_dicom(np.arange(12, dtype=np.uint16).reshape(3, 4)),
    }
    root = write_tree(files)
    ds = load_folder(root, image_size=6, channels=3)
    assert ds.images.shape == (6, 6, 6, 3)
    assert ds.extras["errors"] == []
    modes = dict(zip(ds.provenance.sources, ds.provenance.original_modes, strict=True))
    assert modes == {
        "x/patch.pgm": "L",
        "x/renamed.jpg": "L",
        "x/scan.bmp": "RGB",
        "y/page.tif": "L",
        "y/photo.JPG": "RGB",
        "y/slice.dcm": "DICOM:MONOCHROME2",
    }
    sizes = dict(zip(ds.provenance.sources, map(tuple, ds.provenance.original_sizes), strict=True))
    assert sizes["x/renamed.jpg"] == (20, 10) and sizes["y/slice.dcm"] == (4, 3)
    # A grayscale source gives three equal channels.
    i = ds.provenance.sources.index("y/page.tif")
    np.testing.assert_array_equal(ds.images[i, ..., 0], ds.images[i, ..., 1])


def test_duplicates_land_in_one_split(write_tree, class_images):
    files = class_images("", {"a": 20, "b": 20})
    for k in range(6):
        files[f"a/copy{k}.png"] = files["a/img000.png"]
    ds = load_folder(write_tree(files), image_size=4)
    copies = [i for i, s in enumerate(ds.provenance.sources) if "copy" in s or s == "a/img000.png"]
    assert len(copies) == 7
    assert len({str(ds.splits[i]) for i in copies}) == 1


def test_limit_per_class_keeps_first_sorted_files(write_tree, class_images):
    files = class_images("train/", {"a": 5, "b": 5}) | class_images("test/", {"a": 4, "b": 4})
    ds = load_folder(write_tree(files), image_size=4, limit_per_class=2)
    assert sorted(ds.provenance.sources) == [
        "test/a/img000.png",
        "test/a/img001.png",
        "test/b/img000.png",
        "test/b/img001.png",
        "train/a/img000.png",
        "train/a/img001.png",
        "train/b/img000.png",
        "train/b/img001.png",
    ]


def test_wrapper_folder_and_nested_class_subfolders(write_tree, class_images):
    files = class_images("dataset/", {"a": 2, "b": 2})
    files["dataset/b/more/deep.png"] = files["dataset/b/img000.png"]
    ds = load_folder(write_tree(files), image_size=4)
    assert ds.class_names == ("a", "b")
    assert "dataset/b/more/deep.png" in ds.provenance.sources


def test_not_a_folder(tmp_path):
    with pytest.raises(DataError, match="not a folder"):
        load_folder(tmp_path / "missing", image_size=8)


def test_no_readable_image(write_tree):
    root = write_tree({"a/x.png": b"nope", "b/y.png": b""})
    with pytest.raises(DataError, match=r"no image could be read \(2 candidate files; 2 files"):
        load_folder(root, image_size=8)


def test_single_class_is_refused(write_tree, class_images):
    root = write_tree(class_images("", {"only": 3}))
    with pytest.raises(DataError, match=r"found 1 class \['only'\]; need at least 2"):
        load_folder(root, image_size=8)


def test_mixed_split_and_class_folders_are_refused(write_tree, class_images):
    files = class_images("train/", {"a": 2, "b": 2}) | class_images("", {"c": 2})
    with pytest.raises(
        DataError, match=r"mixes split folders \['train'\] with other folders \['c'\]"
    ):
        load_folder(write_tree(files), image_size=8)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"image_size": 0}, "image_size must be a positive integer"),
        ({"image_size": 8, "channels": 4}, "channels must be 1 or 3"),
        ({"image_size": 8, "limit_per_class": 0}, "limit_per_class must be"),
        ({"image_size": 8, "fractions": (0.5, 0.5, 0.5)}, "fractions must be"),
    ],
)
def test_bad_options(write_tree, class_images, options, message):
    root = write_tree(class_images("", {"a": 2, "b": 2}))
    with pytest.raises(DataError, match=message):
        load_folder(root, **options)


def test_complete_splits_rules():
    labels = np.repeat([0, 1], 50)
    groups = [str(i) for i in range(100)]
    given = ["train"] * 80 + ["val"] * 20
    splits, source = complete_splits(labels, given, groups=groups, seed=0)
    assert source == {"train": "given", "val": "given", "test": "carved from train"}
    assert (splits[80:] == "val").all()  # given val is never touched
    # Test is carved with its share of train+test: 0.15 / 0.85 of the 80 train images.
    assert 10 <= (splits == "test").sum() <= 18

    splits, source = complete_splits(labels, [None] * 100, groups=groups, seed=0)
    assert set(source.values()) == {"assigned"}
    assert {str(s) for s in splits} == {"train", "val", "test"}
