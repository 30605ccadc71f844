"""Patient groups from file names, near-duplicate clusters, group-keeping splits."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from PIL import Image

from medviz.data import load_dataset
from medviz.data.dataset import assign_splits
from medviz.data.folders import complete_splits, load_folder
from medviz.data.groups import (
    KERMANY_PATTERN,
    find_groups,
    hamming_pairs,
    near_duplicate_groups,
    pattern_groups,
    perceptual_hashes,
)
from medviz.data.registry import get_spec
from medviz.errors import DataError


def _scene(seed: int, size: int = 96) -> np.ndarray:
    """``(size, size)`` uint8 smooth random scene, different for every seed."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (6, 6)).astype(np.uint8)
    image = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
    return np.asarray(image)


def _jpeg(pixels: np.ndarray, quality: int = 40) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer).convert("L"))


def _resize(pixels: np.ndarray, side: int) -> np.ndarray:
    return np.asarray(Image.fromarray(pixels).resize((side, side), Image.BILINEAR))


def _crop(pixels: np.ndarray, fraction: float) -> np.ndarray:
    side = pixels.shape[0]
    cut = round(side * fraction)
    return _resize(pixels[cut : side - cut, cut : side - cut], side)


def test_kermany_names_give_patient_ids():
    names = [
        "train/PNEUMONIA/person23_bacteria_87.jpeg",
        "train/PNEUMONIA/person23_virus_90.jpeg",
        "train/PNEUMONIA/person447_virus_921_1.jpeg",
        "train/NORMAL/IM-0115-0001.jpeg",
        "train/NORMAL/IM-0429-0001-0002.jpeg",
        "train/NORMAL/NORMAL2-IM-0173-0001-0001.jpeg",
        "NORMAL2-IM-1427-0001.jpeg",
        "train/NORMAL/scan.jpeg",
    ]
    assert pattern_groups(names, KERMANY_PATTERN) == (
        "person23",
        "person23",
        "person447",
        "IM-0115",
        "IM-0429",
        "NORMAL2-IM-0173",
        "NORMAL2-IM-1427",
        None,
    )
    assert get_spec("chest-xray-pneumonia").group_pattern == KERMANY_PATTERN


def test_pattern_without_group_uses_whole_match_and_bad_pattern_fails():
    assert pattern_groups(["a/p01_x.png", "b/q.png"], r"p\d+") == ("p01", None)
    with pytest.raises(DataError, match="not a valid regular expression"):
        pattern_groups(["a.png"], "person(")


def test_near_duplicates_found_for_resized_reencoded_cropped_copies():
    originals = [_scene(seed) for seed in range(12)]
    copies = [
        _jpeg(originals[0], quality=30),
        _resize(_resize(originals[1], 57), 96),
        _crop(originals[2], 0.02),
        _crop(originals[3], 0.05),
        _jpeg(_crop(originals[4], 0.03), quality=60),
    ]
    images = np.stack(originals + copies)[..., None]
    clusters = near_duplicate_groups(images)
    for k in range(5):
        assert clusters[12 + k] == clusters[k], f"copy {k} not joined to its original"
    # the other originals are distinct pictures: no false merges
    assert len(set(clusters[5:12].tolist())) == 7
    assert len(set(clusters[:5].tolist())) == 5


def test_featureless_images_join_only_by_digest():
    flat = np.stack([np.full((16, 16), v, np.uint8) for v in (10, 11, 12)])[..., None]
    assert len(set(near_duplicate_groups(flat).tolist())) == 3
    clusters = near_duplicate_groups(flat, digests=["a", "b", "a"])
    assert clusters[0] == clusters[2] != clusters[1]


def test_hamming_pairs_blocks_agree_with_brute_force():
    rng = np.random.default_rng(0)
    hashes = rng.integers(0, 2**63, 2500, dtype=np.uint64)
    hashes[7] = hashes[2100] ^ np.uint64(0b101)  # two bits apart, in different blocks
    pairs = hamming_pairs(hashes, threshold=3)
    assert [7, 2100, 2] in pairs.tolist()
    brute = {
        (i, j)
        for i in range(0, 2500, 50)
        for j in range(i + 1, 2500)
        if bin(int(hashes[i]) ^ int(hashes[j])).count("1") <= 20
    }
    found = {(i, j) for i, j, _ in hamming_pairs(hashes, threshold=20).tolist() if i % 50 == 0}
    assert found == brute


def test_phash_is_stable_under_reencoding():
    scene = _scene(3)
    h = perceptual_hashes(np.stack([scene, _jpeg(scene, 30)]))
    assert np.bitwise_count(h[0] ^ h[1]) <= 4


def test_find_groups_joins_patients_and_their_copies():
    a, b, c = _scene(1), _scene(2), _scene(3)
    images = np.stack([a, _jpeg(a), b, c, _scene(4)])[..., None]
    sources = ["person1_x_1.jpeg", "other.jpeg", "person1_x_2.jpeg", "person2_y_1.jpeg", "z.png"]
    groups = find_groups(images, sources, pattern=r"(person\d+)_")
    # 0 and 2 share a patient; 1 is a copy of 0 without a patient id; all three join
    assert groups.keys[0] == groups.keys[1] == groups.keys[2] == "person1"
    assert groups.keys[3] == "person2" and groups.keys[4] == "z.png"
    assert groups.how == ("pattern", "near-duplicate", "pattern", "pattern", "single")
    assert groups.n_pattern_matches == 3
    assert groups.summary() == {"n_groups": 3, "n_multi": 1, "n_in_multi": 3, "largest": 3}


def test_assign_splits_never_splits_a_group_even_across_labels():
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 12, 150)
    groups = np.repeat([f"p{i}" for i in range(150)], sizes)
    labels = (rng.random(len(groups)) < 0.3).astype(int)  # groups mix labels
    splits = assign_splits(labels, groups=groups, seed=4)
    for key in np.unique(groups):
        assert len(set(splits[groups == key])) == 1
    share = {s: float(np.mean(splits == s)) for s in ("train", "val", "test")}
    assert abs(share["train"] - 0.7) < 0.08 and share["val"] > 0.07 and share["test"] > 0.07


def test_assign_splits_stratifies_groups_by_majority_label():
    groups = np.repeat([f"g{i}" for i in range(40)], 3)
    labels = np.array([[0, 0, 1], [1, 1, 0]] * 20).ravel()
    splits = assign_splits(labels, groups=groups, seed=0)
    majority = np.array([0, 1] * 20)
    group_split = splits[::3]
    for label in (0, 1):
        assert sorted(set(group_split[majority == label].tolist())) == ["test", "train", "val"]


def test_assign_splits_without_groups_is_unchanged():
    labels = np.array([0] * 20 + [1] * 20)
    splits = assign_splits(labels, seed=3)
    assert {s: int((splits == s).sum()) for s in ("train", "val", "test")} == {
        "train": 28,
        "val": 6,
        "test": 6,
    }


def test_complete_splits_carves_val_by_group():
    labels = np.zeros(60, dtype=int)
    groups = [f"p{i // 4}" for i in range(60)]
    given = ["train"] * 48 + ["test"] * 12
    splits, source = complete_splits(labels, given, groups=groups, seed=1)
    assert source["val"] == "carved from train" and (splits[48:] == "test").all()
    keys = np.asarray(groups)
    for key in np.unique(keys[:48]):
        assert len(set(splits[keys == key])) == 1


def test_load_folder_keeps_patients_in_one_split(write_tree):
    files = {}
    for patient in range(30):
        label = "PNEUMONIA" if patient % 2 else "NORMAL"
        for shot in range(3):
            pixels = _scene(100 * patient + shot, 32)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, "PNG")
            files[f"{label}/person{patient}_virus_{shot}.png"] = buffer.getvalue()
    root = write_tree(files)
    ds = load_folder(root, image_size=16, group_pattern=KERMANY_PATTERN, seed=2)
    assert ds.provenance is not None and ds.provenance.groups is not None
    assert ds.extras["groups"]["n_multi"] == 30
    assert set(ds.provenance.group_methods) == {"pattern"}
    keys = np.asarray(ds.provenance.groups)
    for key in np.unique(keys):
        assert len(set(ds.splits[keys == key])) == 1
    assert set(ds.splits.tolist()) == {"train", "val", "test"}
    # the groups follow take()/split()
    train = ds.split("train")
    assert train.provenance.groups == tuple(keys[ds.splits == "train"])
    with pytest.raises(DataError, match="regular expression"):
        load_folder(root, image_size=16, group_pattern="(")
    same = load_dataset(root, image_size=16, group_pattern=KERMANY_PATTERN, seed=2)
    assert np.array_equal(same.splits, ds.splits)


@pytest.mark.shared
def test_kermany_pattern_on_real_names(shared_root):
    folder = shared_root / "chest_xray_pneumonia_224" / "train"
    if not folder.exists():
        pytest.skip("chest_xray_pneumonia_224 not present")
    names = [p.relative_to(folder).as_posix() for p in folder.rglob("*.jpeg")]
    keys = pattern_groups(names, KERMANY_PATTERN)
    assert None not in keys
    counts = np.unique(np.asarray(keys), return_counts=True)[1]
    # measured: 2,846 patients, 1,075 with several X-rays
    assert len(counts) == 2846 and int((counts > 1).sum()) == 1075
    assert all(re.fullmatch(r"(NORMAL2-)?IM-\d+|person\d+", k) for k in keys)
