"""Classify: a multi-frame DICOM upload gets a frame slider, and the frame picked is classified."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from app_helpers import assert_clean, goto

from medviz.ui.dicom_frames import frame_count


def _pydicom_file(name: str) -> bytes:
    import pydicom.data

    path = Path(os.path.dirname(pydicom.data.__file__)) / "test_files" / name
    if not path.is_file():
        pytest.skip(f"pydicom test file {name} not shipped with this pydicom")
    return path.read_bytes()


def _meta(app) -> dict[str, str]:
    table = next(d.value for d in app.dataframe if list(d.value.columns) == ["field", "value"])
    return dict(zip(table["field"], table["value"], strict=True))


def test_frame_slider_picks_the_classified_frame(default_model):
    data = _pydicom_file("rtdose.dcm")
    app = goto(default_model, "classify")
    app.segmented_control(key="classify_source").set_value("upload")
    app.run()
    app.file_uploader(key="classify_files").set_value(("dose.dcm", data, "application/dicom"))
    app.run()
    assert_clean(app)
    slider = next(s for s in app.slider if (s.key or "").startswith("classify_frame_"))
    assert slider.label.startswith("Frame of dose.dcm (15 frames)") and slider.value == 8
    assert _meta(app)["frame_used"] == "7" and _meta(app)["frames"] == "15"
    slider.set_value(1)
    app.run()
    assert_clean(app)
    assert _meta(app)["frame_used"] == "0"


def test_single_frame_and_other_files_get_no_slider(png_bytes, dicom_ct_bytes):
    assert frame_count("a.png", png_bytes) == 1
    assert frame_count("ct.dcm", dicom_ct_bytes) == 1
    assert frame_count("broken.dcm", b"not dicom at all") == 1
