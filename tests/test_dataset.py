import numpy as np
import pytest

from medviz.data.dataset import Dataset, assign_splits
from medviz.errors import DataError


def _dataset(n=12, **kw):
    labels = np.arange(n) % 2
    values = {
        "name": "t",
        "images": np.zeros((n, 4, 4, 1), np.uint8),
        "labels": labels,
        "class_names": ("a", "b"),
        "splits": np.array(["train", "val", "test"] * (n // 3)),
    }
    values.update(kw)
    return Dataset(**values)


def test_assign_splits_is_stratified_seeded_and_sized():
    labels = np.repeat([0, 1], [700, 300])
    splits = assign_splits(labels, seed=1)
    assert np.array_equal(splits, assign_splits(labels, seed=1))
    for label, count in ((0, 700), (1, 300)):
        share = np.mean(splits[labels == label] == "train")
        assert abs(share - 0.7) < 0.01, (label, count)
    assert abs(np.mean(splits == "test") - 0.15) < 0.01


def test_assign_splits_keeps_groups_together():
    labels = np.zeros(300, int)
    groups = np.array([f"g{i // 3}" for i in range(300)])  # triplets of duplicates
    splits = assign_splits(labels, groups=groups, seed=0)
    for g in np.unique(groups):
        assert len(set(splits[groups == g])) == 1


def test_assign_splits_rejects_bad_fractions():
    with pytest.raises(DataError, match="fractions"):
        assign_splits(np.zeros(10, int), fractions=(0.5, 0.5, 0.5))


def test_split_take_and_counts():
    data = _dataset()
    train = data.split("train")
    assert len(train) == 4 and set(train.splits) == {"train"}
    assert data.counts()["val"] == {"a": 2, "b": 2}
    assert data.split("all") is data
    with pytest.raises(DataError, match="unknown split"):
        data.split("holdout")
    only_train = data.take(data.splits == "train")
    with pytest.raises(DataError, match="no 'val' split"):
        only_train.split("val")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"images": np.zeros((12, 4, 4, 2), np.uint8)}, "shape"),
        ({"images": np.zeros((12, 4, 4, 1), np.float32)}, "uint8"),
        ({"labels": np.full(12, 5)}, "labels must lie"),
        ({"splits": np.array(["train"] * 11 + ["dev"])}, "unknown split"),
        ({"masks": np.zeros((12, 3, 3), bool)}, "masks"),
    ],
)
def test_dataset_validation(override, message):
    with pytest.raises(DataError, match=message):
        _dataset(**override)
