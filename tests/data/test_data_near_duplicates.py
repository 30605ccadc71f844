"""Near-duplicates by perceptual hashing (imagehash): found, listed by the report, kept together."""

from __future__ import annotations

import io
import json

import numpy as np
from PIL import Image

from medviz.data.folders import load_folder
from medviz.data.groups import difference_hashes, perceptual_hashes
from medviz.data.health import health_report


def _scene(seed: int, size: int = 120) -> Image.Image:
    """A smooth random grey picture, different for every seed, with some fine detail."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (7, 7)).astype(np.uint8)).resize(
        (size, size), Image.BICUBIC
    )
    detail = rng.normal(0, 12, (size, size))
    return Image.fromarray(np.clip(np.asarray(coarse) + detail, 0, 255).astype(np.uint8))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _jpeg(image: Image.Image, quality: int = 50) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def _copies_folder(write_tree):
    original = _scene(0)
    side = original.size[0]
    cut = round(side * 0.05)
    files = {
        "a/original.png": _png(original),
        "a/reencoded.jpg": _jpeg(original, 40),
        "a/resized.png": _png(original.resize((77, 77), Image.BILINEAR)),
        "a/cropped.png": _png(original.crop((cut, cut, side - cut, side - cut))),
    }
    for k in range(1, 9):  # unrelated pictures, both classes
        files[f"{'ab'[k % 2]}/other{k}.png"] = _png(_scene(k))
    return write_tree(files)


def test_library_hashes_agree_for_copies_and_differ_for_others():
    pictures = [
        np.asarray(_scene(0)),
        np.asarray(_scene(0).resize((64, 64))),
        np.asarray(_scene(1)),
    ]
    stack = np.stack([np.asarray(Image.fromarray(p).resize((96, 96))) for p in pictures])
    for hashes in (perceptual_hashes(stack), difference_hashes(stack)):
        assert np.bitwise_count(hashes[0] ^ hashes[1]) <= 6
        assert np.bitwise_count(hashes[0] ^ hashes[2]) > 12


def test_copies_are_paired_listed_and_kept_in_one_split(write_tree, capsys):
    root = _copies_folder(write_tree)
    data = load_folder(root, image_size=64)
    report = health_report(data)
    names = {"a/original.png", "a/reencoded.jpg", "a/resized.png", "a/cropped.png"}
    pairs = report.near_duplicates
    assert pairs is not None
    linked = {frozenset((p.source_a, p.source_b)) for p in pairs}
    for copy in names - {"a/original.png"}:
        assert frozenset(("a/original.png", copy)) in linked or any(
            copy in pair and pair <= names for pair in linked
        ), f"{copy} not paired: {linked}"
    assert all(pair <= names for pair in linked), f"an unrelated image was paired: {linked}"
    # grouping keeps every copy in the split of its original
    index = {s: i for i, s in enumerate(data.provenance.sources)}
    assert len({str(data.splits[index[n]]) for n in names}) == 1
    assert len({data.provenance.groups[index[n]] for n in names}) == 1
    row = report.to_dict()["near_duplicates"][0]
    assert {"source_a", "source_b", "split_a", "exact"} <= set(row)

    from medviz.cli import main

    assert main(["inspect", "--data", str(root)]) == 0
    out = capsys.readouterr().out
    assert "near-duplicates: " in out and "a/original.png" in out and "(near)" in out
    assert main(["inspect", "--data", str(root), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["near_duplicates"]
    assert len(listed) == len(pairs)
