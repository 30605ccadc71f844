"""AppTest, Augment: the realism notes are those of the active dataset's modality."""

from __future__ import annotations

from dataclasses import replace

import pytest
from app_helpers import app_state, assert_clean, goto, texts


@pytest.fixture
def modality_datasets(monkeypatch):
    """Small generated datasets registered under other modalities (only the modality matters)."""
    from medviz.data import DATASETS

    base = DATASETS["synthetic-microcalc"]
    for name, modality in (
        ("tiny-mri", "MRI"),
        ("tiny-cxr", "chest X-ray"),
        ("tiny-us", "ultrasound"),
    ):
        monkeypatch.setitem(DATASETS, name, replace(base, name=name, modality=modality))


def _notes_for(app, name: str) -> str:
    from medviz.ui.state import DatasetChoice

    app_state(app).dataset = DatasetChoice("registry", name, name, 32, 1, limit_per_class=2)
    goto(app, "augment")
    assert_clean(app)
    return texts(app)


def test_notes_follow_the_modality_of_the_dataset(app, modality_datasets):
    mri = _notes_for(app, "tiny-mri")
    assert "realism notes for MRI images" in mri
    assert "the brain is nearly symmetric" in mri
    assert "chest" not in mri.lower() and "breast" not in mri.lower()

    chest = _notes_for(app, "tiny-cxr")
    assert "realism notes for chest X-ray images" in chest
    assert "situs inversus" in chest

    other = _notes_for(app, "tiny-us")
    assert "general realism notes (none specific to ultrasound yet)" in other
    assert "Realistic only where left and right look alike" in other
