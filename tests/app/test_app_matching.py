"""medviz.ui.matching: whether a dataset fits the model, decided without loading it."""

from __future__ import annotations

import pytest

from medviz.store import ModelCard
from medviz.ui.matching import DatasetOutline, dataset_mismatch

CARD = ModelCard(
    name="m", class_names=("glioma", "No Tumor"), image_size=64, channels=1, modality="MRI"
)


def test_classes_match_by_name_in_any_order_case_and_spelling():
    outline = DatasetOutline("mri", ("notumor", "Glioma"), 64, 1)
    assert dataset_mismatch(CARD, outline, feature="Lesion localisation") is None


def test_other_classes_name_both_sides():
    outline = DatasetOutline("pets.zip", ("cat", "dog"), 64, 1)
    message = dataset_mismatch(CARD, outline, feature="Evaluate", check_input=False)
    assert message.startswith("Evaluate needs a dataset that matches the model")
    assert "class names do not match: pets.zip has cat, dog, the model has glioma, No Tumor" in (
        message
    )


@pytest.mark.parametrize(
    ("size", "channels", "shown"),
    [(32, 1, "32×32 grey"), (64, 3, "64×64 RGB"), (None, 3, "its own size RGB")],
)
def test_image_size_and_channels_unless_the_feature_resizes(size, channels, shown):
    outline = DatasetOutline("mri", ("glioma", "notumor"), size, channels)
    message = dataset_mismatch(CARD, outline, feature="Lesion localisation")
    assert f"mri is loaded at {shown}, the model takes 64×64 grey" in message
    assert dataset_mismatch(CARD, outline, feature="Evaluate", check_input=False) is None


def test_registry_outline_needs_no_file(monkeypatch, tmp_path):
    from medviz.ui.matching import outline_of
    from medviz.ui.state import DatasetChoice

    monkeypatch.setenv("MEDVIZ_DATA_ROOT", str(tmp_path))  # brain-mri is not there
    outline = outline_of(DatasetChoice("registry", "brain-mri", "brain-mri", None, None))
    assert outline.class_names == ("glioma", "meningioma", "notumor", "pituitary")
    assert (outline.image_size, outline.channels) == (128, 1)
