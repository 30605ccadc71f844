"""Health report: split groups, groups crossing splits, images shared by two datasets."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from medviz.data import load_dataset
from medviz.data.dataset import Dataset, Provenance
from medviz.data.folders import load_folder
from medviz.data.groups import cross_matches
from medviz.data.health import cross_dataset_report, health_report


def _scene(seed: int, size: int = 96, width: int | None = None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (7, 9)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((width or size, size), Image.BICUBIC))


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def test_given_splits_that_cut_a_patient_are_listed(write_tree):
    files = {}
    for patient in range(6):
        for shot, split in enumerate(("train", "test")):
            label = "b" if patient % 2 else "a"
            name = f"{split}/{label}/person{patient}_x_{shot}.png"
            files[name] = _png(_scene(10 * patient + shot, 32))
    root = write_tree(files)
    ds = load_folder(root, image_size=16, group_pattern=r"(person\d+)_")
    report = health_report(ds)
    assert report.groups == {
        "n_groups": 6,
        "n_multi": 6,
        "n_in_multi": 12,
        "largest": 2,
        "n_patient": 6,
    }
    # the source's own train/test split cuts every patient in two
    assert len(report.group_crossings) == 6
    first = report.group_crossings[0]
    assert first.key == "person0" and first.how == "patient"
    assert first.splits == ("train", "test")
    assert any("cross splits" in w and "person0" in w for w in report.warnings)
    payload = json.loads(json.dumps(report.to_dict()))
    assert payload["group_crossings"][0]["key"] == "person0"


def test_near_duplicate_cluster_crossing_splits_is_listed():
    images = np.stack([_scene(1), _scene(1), _scene(2), _scene(3)])[..., None]
    sources = ("a.png", "copy_of_a.png", "b.png", "c.png")
    ds = Dataset(
        name="toy",
        images=images,
        labels=np.array([0, 0, 1, 1]),
        class_names=("x", "y"),
        splits=np.array(["train", "val", "train", "test"]),
        provenance=Provenance(
            sources=sources,
            original_sizes=np.full((4, 2), 96),
            original_modes=("L",) * 4,
            digests=("d0", "d1", "d2", "d3"),
            groups=("a.png", "a.png", "b.png", "c.png"),
            group_methods=("near-duplicate", "near-duplicate", "single", "single"),
        ),
    )
    report = health_report(ds)
    assert [(g.key, g.splits, g.how) for g in report.group_crossings] == [
        ("a.png", ("train", "val"), "near-duplicate")
    ]


def test_assigned_splits_have_no_crossings(write_tree):
    files = {}
    for patient in range(20):
        for shot in range(3):
            files[f"c{patient % 2}/p{patient}_{shot}.png"] = _png(_scene(100 * patient + shot, 24))
    ds = load_folder(write_tree(files), image_size=16, group_pattern=r"(p\d+)_")
    report = health_report(ds)
    assert report.groups["n_multi"] == 20 and report.group_crossings == []


def _cropped_and_squashed(seeds, *, wide=150, tall=100):
    """The same originals made two ways: centre-cropped to 28 px and squashed to 64 px."""
    small, big = [], []
    for seed in seeds:
        original = _scene(seed, tall, width=wide)
        cut = (wide - tall) // 2
        square = Image.fromarray(original[:, cut : cut + tall])
        small.append(np.asarray(square.resize((28, 28), Image.BILINEAR)))
        big.append(np.asarray(Image.fromarray(original).resize((64, 64), Image.BILINEAR)))
    return np.stack(small)[..., None], np.stack(big)[..., None]


def test_cross_matches_find_cropped_vs_squashed_copies():
    small, big = _cropped_and_squashed(range(12))
    # the 28 px set holds copies of 0-7 and unrelated images 50-53
    others, _ = _cropped_and_squashed(range(50, 54))
    a = np.concatenate([small[:8], others])
    matches = cross_matches(a, big)
    assert sorted(map(tuple, matches.pairs.tolist())) == [(i, i) for i in range(8)]
    assert matches.a_matched == 8 and matches.n_a == 12 and matches.side == 28
    # squashing without a crop would not have matched them: the crops are needed
    plain = cross_matches(a, big, fractions=(1.0,))
    assert plain.a_matched < 8


def test_cross_dataset_report_names_sources_and_splits():
    small, big = _cropped_and_squashed(range(6))

    def dataset(name, images, splits):
        n = len(images)
        return Dataset(
            name=name,
            images=images,
            labels=np.arange(n) % 2,
            class_names=("x", "y"),
            splits=np.array(splits),
            provenance=Provenance(
                sources=tuple(f"{name}/{i}.png" for i in range(n)),
                original_sizes=np.full((n, 2), images.shape[1]),
                original_modes=("L",) * n,
                digests=tuple(f"{name}{i}" for i in range(n)),
            ),
        )

    a = dataset("small", small, ["test"] * 6)
    b = dataset("big", big, ["train"] * 6)
    report = cross_dataset_report(a, b)
    assert report.a_matched == 6 and report.b_matched == 6
    assert report.split_pairs == {"test→train": 6}
    assert report.examples[0][0].startswith("small/") and report.examples[0][2].startswith("big/")
    assert report.warning is not None and "6 of 6" in report.warning
    json.dumps(report.to_dict())


@pytest.mark.shared
def test_pneumoniamnist_shares_images_with_kermany(shared_root):
    if not (shared_root / "chest_xray_pneumonia_224").exists():
        pytest.skip("chest_xray_pneumonia_224 not present")
    a = load_dataset("pneumoniamnist", limit_per_class=40)
    b = load_dataset("chest-xray-pneumonia", image_size=64, limit_per_class=400)
    report = cross_dataset_report(a, b)
    # measured on the full sets: 5,149 of 5,232 (98 %); in these subsets only part of the
    # originals are present, but some must match
    assert report.a_matched > 0


def test_cli_inspect_against(tmp_path, capsys):
    from medviz.cli import main

    small, big = _cropped_and_squashed(range(8))
    labels = (np.arange(8) % 2).astype(np.uint8)[:, None]
    np.savez(tmp_path / "small.npz", train_images=small[..., 0], train_labels=labels)
    np.savez(tmp_path / "big.npz", train_images=big[..., 0], train_labels=labels)
    argv = [
        "inspect",
        "--data",
        str(tmp_path / "small.npz"),
        "--against",
        str(tmp_path / "big.npz"),
    ]
    assert main([*argv, "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["cross_dataset"]["a_matched"] == 8
    assert payload["groups"]["n_groups"] == 8
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "8 of 8 images of small have a copy there" in out and "groups: 8" in out
