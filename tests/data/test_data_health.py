"""health_report on hand-built datasets with known problems."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medviz.data.dataset import Dataset, Provenance
from medviz.data.folders import load_folder
from medviz.data.health import ConflictGroup, LeakageGroup, health_report
from medviz.data.synthetic import generate_microcalc


def _dataset(
    labels,
    splits,
    *,
    sizes=None,
    modes=None,
    digests=None,
    extras=None,
    provenance=True,
) -> Dataset:
    labels = np.asarray(labels, dtype=np.int64)
    n = len(labels)
    prov = None
    if provenance:
        prov = Provenance(
            sources=tuple(f"img{i:02d}.png" for i in range(n)),
            original_sizes=np.asarray(sizes if sizes is not None else [(64, 64)] * n),
            original_modes=tuple(modes or ["L"] * n),
            digests=tuple(digests or [f"d{i}" for i in range(n)]),
        )
    return Dataset(
        name="toy",
        images=np.zeros((n, 4, 4, 1), dtype=np.uint8),
        labels=labels,
        class_names=("neg", "pos"),
        splits=np.asarray(splits),
        provenance=prov,
        extras=extras or {},
    )


def test_size_shortcut_is_detected():
    labels = np.repeat([0, 1], 20)
    sizes = [(512, 512)] * 20 + [(300 + 7 * i, 250 + 3 * i) for i in range(20)]
    report = health_report(_dataset(labels, ["train"] * 40, sizes=sizes))
    assert report.shortcut is not None
    assert report.shortcut.chance == 0.5
    assert report.shortcut.score > 0.9
    assert report.shortcut.warning is not None
    assert "size and mode alone predict the class" in report.shortcut.warning
    assert report.shortcut.warning in report.warnings
    assert report.size_distribution[0] == ((512, 512), 20)


def test_mode_shortcut_is_detected():
    labels = np.repeat([0, 1], 20)
    modes = ["L"] * 20 + ["RGB"] * 20
    report = health_report(_dataset(labels, ["train"] * 40, modes=modes))
    assert report.shortcut.score == pytest.approx(1.0)
    assert report.mode_distribution == {"L": 20, "RGB": 20}


def test_no_shortcut_when_sizes_are_uninformative():
    labels = np.tile([0, 1], 20)
    sizes = [(100 + i // 2, 100 + i // 2) for i in range(40)]  # both classes share every size
    report = health_report(_dataset(labels, ["train"] * 40, sizes=sizes))
    assert report.shortcut.score < 0.65
    assert report.shortcut.warning is None
    assert report.warnings == ()


def test_duplicates_leakage_and_label_conflicts():
    labels = [0, 0, 0, 1, 1, 1, 0, 1]
    splits = ["train", "train", "test", "train", "val", "train", "train", "train"]
    digests = ["same", "same", "same", "pair", "pair", "x", "cross", "cross"]
    report = health_report(_dataset(labels, splits, digests=digests))
    assert report.duplicate_groups == [
        ("img00.png", "img01.png", "img02.png"),
        ("img03.png", "img04.png"),
        ("img06.png", "img07.png"),
    ]
    assert report.leakage_groups == [
        LeakageGroup(("img00.png", "img01.png", "img02.png"), ("train", "test")),
        LeakageGroup(("img03.png", "img04.png"), ("train", "val")),
    ]
    assert report.cross_class_duplicates == [
        ConflictGroup(("img06.png", "img07.png"), ("neg", "pos"))
    ]
    text = " ".join(report.warnings)
    assert "3 groups of byte-identical files (4 redundant copies)" in text
    assert "2 duplicate groups cross splits" in text
    assert "1 byte-identical images carry different labels" in text


def test_imbalance_warning_only_above_one_to_three():
    mild = health_report(_dataset([0] * 6 + [1] * 18, ["train"] * 24, provenance=False))
    assert not any("imbalanced" in w for w in mild.warnings)
    strong = health_report(_dataset([0] * 5 + [1] * 16, ["train"] * 21, provenance=False))
    (warning,) = [w for w in strong.warnings if "imbalanced" in w]
    assert "3.2:1 (pos 16 vs neg 5)" in warning


def test_without_provenance_only_counts():
    report = health_report(
        _dataset([0, 1, 0, 1], ["train", "train", "test", "test"], provenance=False)
    )
    assert report.counts == {"train": {"neg": 1, "pos": 1}, "test": {"neg": 1, "pos": 1}}
    assert report.shortcut is None
    assert report.duplicate_groups == [] and report.size_distribution == []


def test_missing_class_in_a_split_and_extras():
    extras = {
        "errors": [("a/bad.png", "a/bad.png: the PNG data is truncated")],
        "skipped": [("TEST", "split folder holds 2 loose files")],
    }
    report = health_report(
        _dataset([0, 0, 1, 1, 0], ["train", "train", "train", "train", "test"], extras=extras)
    )
    text = "\n".join(report.warnings)
    assert "the test split has no images of ['pos']" in text
    assert "1 files could not be read" in text and "a/bad.png" in text
    assert "1 items were skipped, e.g. TEST" in text


def test_to_dict_is_json_ready():
    labels = np.repeat([0, 1], 10)
    sizes = [(512, 512)] * 10 + [(200, 300)] * 10
    digests = ["a", "a"] + [f"u{i}" for i in range(18)]
    splits = ["train", "test"] + ["train"] * 18
    data = health_report(_dataset(labels, splits, sizes=sizes, digests=digests)).to_dict()
    again = json.loads(json.dumps(data))
    assert again["size_distribution"] == [
        {"size": [512, 512], "count": 10},
        {"size": [200, 300], "count": 10},
    ]
    assert again["leakage_groups"] == [
        {"sources": ["img00.png", "img01.png"], "splits": ["train", "test"]}
    ]
    assert again["shortcut"]["score"] > 0.9
    assert again["counts"]["test"] == {"neg": 1, "pos": 0}


def test_synthetic_dataset_is_healthy():
    report = health_report(generate_microcalc(60, image_size=16))
    assert report.shortcut.warning is None
    assert report.shortcut.score == pytest.approx(0.5)
    assert report.duplicate_groups == []
    assert report.warnings == ()


def test_report_on_a_loaded_folder(write_tree, class_images):
    files = class_images("train/", {"a": 6, "b": 6}) | class_images("test/", {"a": 2, "b": 2})
    files["test/a/leak.png"] = files["train/a/img000.png"]
    report = health_report(load_folder(write_tree(files), image_size=4))
    assert report.leakage_groups == [
        LeakageGroup(("test/a/leak.png", "train/a/img000.png"), ("train", "test"))
    ]
    assert report.mode_distribution == {"L": 17}
