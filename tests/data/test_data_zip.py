"""load_zip: wrapper folders, junk, zip-slip and zip-bomb refusal."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest

from medviz.data.folders import load_zip
from medviz.errors import DataError


def test_wrapper_folder_and_macos_junk(zip_bytes, class_images, tmp_path):
    files = class_images("chest_xray/train/", {"NORMAL": 4, "PNEUMONIA": 4})
    files |= class_images("chest_xray/test/", {"NORMAL": 2, "PNEUMONIA": 2})
    files |= {
        "__MACOSX/chest_xray/train/NORMAL/._img000.png": b"\0\5\26\7junk",
        "chest_xray/.DS_Store": b"\0\0\0\1Bud1",
        "chest_xray/train/NORMAL/.DS_Store": b"\0\0\0\1Bud1",
    }
    data = zip_bytes(files)
    ds = load_zip(data, image_size=8, name="upload")
    assert ds.name == "upload"
    assert ds.class_names == ("NORMAL", "PNEUMONIA")
    assert len(ds) == 12
    assert ds.counts()["test"] == {"NORMAL": 2, "PNEUMONIA": 2}
    assert ds.extras["split_source"]["val"] == "carved from train"
    assert all(s.startswith("chest_xray/") for s in ds.provenance.sources)
    assert ds.extras["errors"] == [] and ds.extras["skipped"] == []

    path = tmp_path / "chest.zip"
    path.write_bytes(data)
    from_path = load_zip(path, image_size=8)
    assert from_path.name == "chest"
    np.testing.assert_array_equal(from_path.images, ds.images)
    np.testing.assert_array_equal(from_path.splits, ds.splits)


def test_nested_zip_is_skipped(zip_bytes, class_images):
    files = class_images("", {"a": 2, "b": 2})
    files["a/more.zip"] = zip_bytes(class_images("", {"c": 1}))
    ds = load_zip(zip_bytes(files), image_size=4)
    assert ds.class_names == ("a", "b")
    assert ds.extras["skipped"] == [("a/more.zip", "nested zip archive ignored")]


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("../evil.png", "points outside the archive"),
        ("a/../../evil.png", "points outside the archive"),
        ("a\\..\\..\\evil.png", "points outside the archive"),
        ("/etc/evil.png", "absolute path"),
        ("C:/evil.png", "absolute path"),
    ],
)
def test_zip_slip_is_refused(zip_bytes, class_images, member, message):
    files = class_images("", {"a": 2, "b": 2}) | {member: b"x"}
    with pytest.raises(DataError, match=rf"member {re.escape(repr(member))} .*{message}"):
        load_zip(zip_bytes(files), image_size=4)


def test_zip_bomb_ratio_is_refused(zip_bytes, class_images):
    files = class_images("", {"a": 2, "b": 2}) | {"a/blank.bmp": bytes(4 * 1024**2)}
    with pytest.raises(DataError, match=r"member 'a/blank\.bmp' expands .*zip bomb"):
        load_zip(zip_bytes(files), image_size=4)


def test_small_blank_member_is_not_a_bomb(zip_bytes, class_images, encode):
    from PIL import Image

    blank = encode(Image.new("L", (400, 400), 0), "BMP")  # ~160 kB of zeros, ratio ≫ 200
    files = class_images("", {"a": 2, "b": 2}) | {"a/blank.bmp": blank}
    ds = load_zip(zip_bytes(files), image_size=4)
    assert "a/blank.bmp" in ds.provenance.sources


def test_total_size_limit(zip_bytes, class_images):
    data = zip_bytes(class_images("", {"a": 2, "b": 2}))
    with pytest.raises(DataError, match=r"expands to [\d,]+ bytes, above the 100 allowed"):
        load_zip(data, image_size=4, max_uncompressed=100)


def test_sizes_are_checked_before_inflating(zip_bytes, class_images):
    data = bytearray(zip_bytes(class_images("", {"a": 2, "b": 2})))
    # Make the central directory claim a 4 GiB member: only the declared size
    # is read, so the refusal comes before any data would be inflated.
    entry = data.index(b"PK\x01\x02")
    data[entry + 24 : entry + 28] = struct.pack("<I", 0xFFFFFFF0)
    with pytest.raises(DataError, match="refused"):
        load_zip(bytes(data), image_size=4)


def test_not_a_zip():
    with pytest.raises(DataError, match=r"upload\.zip: not a readable zip archive"):
        load_zip(b"this is not a zip", image_size=4, name="upload.zip")
