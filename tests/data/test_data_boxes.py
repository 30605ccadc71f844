"""Folders with lesion boxes (.txt) or masks (*_mask.png) beside the images."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medviz.data import load_dataset
from medviz.data.boxes import (
    boxes_of,
    has_annotations,
    load_annotated_folder,
    parse_boxes,
    rasterize_boxes,
)
from medviz.data.registry import DATASETS, has_lesion_masks
from medviz.errors import DataError


def _write(folder, name, *, box=None, mask=None, size=40, value=90):
    folder.mkdir(parents=True, exist_ok=True)
    pixels = np.full((size, size), value, np.uint8)
    Image.fromarray(pixels).save(folder / f"{name}.jpg")
    if box is not None:
        (folder / f"{name}.txt").write_text(box)
    if mask is not None:
        Image.fromarray(mask).save(folder / f"{name}_mask.png")


@pytest.fixture
def box_folder(tmp_path):
    root = tmp_path / "boxes"
    # glioma 1-6 and 10-12: two runs of consecutive numbers; pituitary 20-25.
    for n in (*range(1, 7), 10, 11, 12):
        _write(root / "glioma", f"{n:04d}", box="0.25 0.25 0.5 0.5\n")
    for n in range(20, 26):
        _write(root / "pituitary", f"{n:04d}", box="0 0.75 0.5 0.1 0.2\n0.2 0.2 0.1 0.1\n")
    mask = np.zeros((40, 40), np.uint8)
    mask[30:40, 0:10] = 1  # a 0/1 mask, bottom-left quarter of the side
    _write(root / "meningioma", "0100", mask=mask)
    _write(root / "meningioma", "0101", box="")  # empty file: no lesion
    (root / "README.txt").write_text("documentation, not a box")
    return root


def test_parse_and_rasterize_boxes():
    assert parse_boxes("0.5 0.5 0.2 0.4\n\n1 0.1 0.1 0.1 0.1\n") == (
        (0.5, 0.5, 0.2, 0.4),
        (0.1, 0.1, 0.1, 0.1),
    )
    for bad, why in (("0.5 0.5 0.2", "4"), ("a b c d", "not numbers"), ("0.5 0.5 1.5 1", "0, 1")):
        with pytest.raises(DataError, match=why):
            parse_boxes(bad, name="x.txt")
    mask = rasterize_boxes([(0.5, 0.5, 0.5, 0.25)], 8)
    assert mask.sum() == 4 * 2 and mask[3:5, 2:6].all()
    tiny = rasterize_boxes([(0.51, 0.51, 0.001, 0.001)], 8)
    assert tiny.sum() == 1 and tiny[4, 4]  # a box never vanishes


def test_box_folder_loads_masks_boxes_and_classes(box_folder):
    assert has_annotations(box_folder)
    data = load_annotated_folder(box_folder, image_size=20, seed=1)
    assert data.class_names == ("glioma", "meningioma", "pituitary")
    assert data.masks is not None and data.masks.shape == (len(data), 20, 20) == (17, 20, 20)
    sources = data.provenance.sources
    glioma = sources.index("glioma/0001.jpg")
    np.testing.assert_array_equal(np.argwhere(data.masks[glioma]).min(0), [0, 0])
    np.testing.assert_array_equal(np.argwhere(data.masks[glioma]).max(0), [9, 9])
    pit = sources.index("pituitary/0020.jpg")
    assert len(data.extras["boxes"]["pituitary/0020.jpg"]) == 2  # YOLO class id dropped
    assert data.masks[pit, 8:12, 14:16].all() and data.masks[pit, 3:5, 3:5].all()
    assert data.masks[pit].sum() == 8 + 4
    men = sources.index("meningioma/0100.jpg")
    assert data.masks[men, 15:, :5].all() and data.masks[men].sum() == 25
    assert not data.masks[sources.index("meningioma/0101.jpg")].any()
    assert data.extras["annotation"] == "boxes+masks"
    assert all("mask" not in s for s in sources)  # mask images are not images of the class
    # Boxes follow the images through take/split.
    part = data.take(np.array([pit, glioma]))
    assert [len(b) for b in boxes_of(part)] == [2, 1]


def test_consecutive_numbers_stay_in_one_split(box_folder):
    for seed in range(5):
        data = load_annotated_folder(box_folder, image_size=16, seed=seed, group_consecutive=True)
        split = dict(zip(data.provenance.sources, data.splits, strict=True))
        assert len({split[f"glioma/{n:04d}.jpg"] for n in range(1, 7)}) == 1
        assert len({split[f"glioma/{n:04d}.jpg"] for n in (10, 11, 12)}) == 1
        assert len({split[f"pituitary/{n:04d}.jpg"] for n in range(20, 26)}) == 1


def test_load_dataset_detects_annotations_and_bad_files(box_folder, tmp_path):
    (box_folder / "glioma" / "0002.txt").write_text("not a box\n")
    data = load_dataset(box_folder, image_size=16)
    assert data.masks is not None
    assert [p for p, _ in data.extras["annotation_errors"]] == ["glioma/0002.txt"]
    assert not data.masks[data.provenance.sources.index("glioma/0002.jpg")].any()
    plain = tmp_path / "plain"
    _write(plain / "a", "1")
    _write(plain / "b", "2")
    assert not has_annotations(plain)
    assert load_dataset(plain, image_size=16).masks is None
    with pytest.raises(DataError, match="no annotation"):
        load_annotated_folder(plain, image_size=16)


def test_registry_entry():
    spec = DATASETS["brain-tumor-boxes"]
    assert spec.modality == "MRI" and spec.licence == "CC BY 4.0"
    assert has_lesion_masks(spec) and has_lesion_masks(DATASETS["synthetic-microcalc"])
    assert not has_lesion_masks(DATASETS["brain-mri"])


@pytest.mark.shared
def test_brain_tumor_boxes_from_the_shared_folder():
    spec = DATASETS["brain-tumor-boxes"]
    if not spec.is_available():
        pytest.skip("brain_tumor_boxes is not in the shared data folder")
    data = spec.load(image_size=64, limit_per_class=30)
    assert data.class_names == ("glioma", "meningioma", "pituitary")
    assert data.masks.any(axis=(1, 2)).all() and data.extras["annotation"] == "boxes"


def test_localisation_is_restricted_to_the_images_a_guided_model_never_trained_on():
    from medviz.data.boxes import HELDOUT_LESIONS_KEY, heldout_lesion_sources, restrict_to_heldout
    from medviz.data.dataset import Dataset, Provenance

    n = 6
    images = np.zeros((n, 8, 8, 1), np.uint8)
    masks = np.zeros((n, 8, 8), bool)
    masks[[0, 1, 2, 3], 2, 2] = True
    sources = tuple(f"glioma/{i:04d}.jpg" for i in range(n))
    data = Dataset(
        name="boxes",
        images=images,
        labels=np.zeros(n, np.int64),
        class_names=("glioma",),
        splits=np.array(["train", "val", "test", "train", "val", "train"]),
        masks=masks,
        provenance=Provenance(
            sources=tuple(f"boxes/{s}" for s in sources),
            original_sizes=np.full((n, 2), 8),
            original_modes=("L",) * n,
            digests=tuple(str(i) for i in range(n)),
        ),
    )
    listed = heldout_lesion_sources(data)
    assert listed == ["boxes/glioma/0001.jpg", "boxes/glioma/0002.jpg"]  # 4: val, no lesion
    loaded = Dataset(
        name="boxes",
        images=images,
        labels=np.zeros(n, np.int64),
        class_names=("glioma",),
        splits=np.array(["train"] * n),
        masks=masks,
        provenance=Provenance(
            sources=sources,
            original_sizes=np.full((n, 2), 8),
            original_modes=("L",) * n,
            digests=tuple(str(i) for i in range(n)),
        ),
    )
    kept, restricted = restrict_to_heldout(loaded, {HELDOUT_LESIONS_KEY: listed})
    assert restricted and kept.provenance.sources == ("glioma/0001.jpg", "glioma/0002.jpg")
    same, restricted = restrict_to_heldout(loaded, {})
    assert not restricted and same is loaded
    with pytest.raises(DataError, match="none of them"):
        restrict_to_heldout(loaded.take(np.array([0])), {HELDOUT_LESIONS_KEY: listed})
