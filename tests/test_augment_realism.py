"""Realism notes per imaging modality (medviz.augment.realism_note)."""

from __future__ import annotations

import pytest

from medviz.augment import AUGMENTATIONS, MODALITY_REALISM, realism_note
from medviz.data import DATASETS
from medviz.errors import MedvizError


def test_every_registry_modality_has_its_own_notes():
    for spec in DATASETS.values():
        assert spec.modality.casefold() in MODALITY_REALISM, spec.name


def test_notes_depend_on_the_modality_with_a_general_fallback():
    general = {a.field: a.realism for a in AUGMENTATIONS}
    assert "situs inversus" in realism_note("horizontal_flip", "chest X-ray")
    assert "symmetric" in realism_note("horizontal_flip", "MRI")
    assert realism_note("horizontal_flip", "ultrasound") == general["horizontal_flip"]
    assert realism_note("shear", None) == general["shear"]
    assert realism_note("shear", "mri") == general["shear"], "no MRI note: the general one"
    for notes in MODALITY_REALISM.values():
        assert set(notes) <= set(general), "notes only for known augmentations"


def test_general_notes_name_no_single_modality():
    for info in AUGMENTATIONS:
        for word in ("chest X-ray", "mammogram", "microcalcification", "breast"):
            assert word not in info.realism, (info.field, word)


def test_unknown_augmentation_is_an_error():
    with pytest.raises(MedvizError, match="unknown augmentation 'blur'"):
        realism_note("blur", "MRI")
