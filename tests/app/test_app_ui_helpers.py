"""The Streamlit-free helpers of medviz.ui: upload checks, DICOM warnings, jobs, errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from medviz.errors import DataError, ModelError


def test_decode_upload_refuses_files_over_the_limit():
    from medviz.services.uploads import decode_upload

    with pytest.raises(DataError, match="at most 1 MB"):
        decode_upload(b"\0" * (1024 * 1024 + 1), name="big.png", max_mb=1)
    with pytest.raises(DataError, match="empty"):
        decode_upload(b"", name="empty.png", max_mb=1)


@pytest.mark.parametrize(
    ("code", "modality", "warns"),
    [
        ("MG", "mammography", False),
        ("CT", "mammography", True),
        ("DX", "chest X-ray", False),
        ("CR", "chest X-ray", False),
        ("MR", "MRI", False),
        ("MR", "chest X-ray", True),
        ("XYZ", "MRI", True),
        ("CT", "unknown", False),
    ],
)
def test_modality_warning(code, modality, warns):
    from medviz.services.predict import modality_warning
    from medviz.store import ModelCard

    card = ModelCard(name="m", class_names=("a", "b"), image_size=8, channels=1, modality=modality)
    warning = modality_warning({"format": "DICOM", "modality": code}, card)
    assert (warning is not None) == warns
    assert modality_warning({"format": "PNG"}, card) is None


def test_display_meta_never_holds_identifiers():
    from medviz.data import DecodedImage
    from medviz.services.predict import display_meta

    decoded = DecodedImage(
        pixels=np.zeros((4, 4), np.uint8),
        mode="DICOM:MONOCHROME2",
        size=(4, 4),
        meta={"format": "DICOM", "modality": "CT", "window": (40, 400), "PatientName": "x"},
    )
    shown = display_meta(decoded)
    assert shown["modality"] == "CT" and "PatientName" not in shown


def test_error_message_keeps_file_names_and_capitalises_sentences():
    from medviz.ui.components import error_message

    assert error_message(DataError("bad.png: cannot decode")) == "bad.png: cannot decode"
    assert error_message(ModelError("unknown layer")) == "Unknown layer"
    assert "no such file" in error_message(FileNotFoundError(2, "no such file", "/x/y"))


def test_job_snapshot_is_consistent_before_start():
    from medviz.data.synthetic import generate_microcalc
    from medviz.services.jobs import TrainingJob, format_seconds, slug
    from medviz.training import TrainConfig

    data = generate_microcalc(20, image_size=16, seed=1)
    job = TrainingJob(
        name="x", title="X", config=TrainConfig(epochs=3), data=data, dataset_label="d"
    )
    snap = job.snapshot()
    assert snap.status == "starting" and snap.fraction == 0.0 and snap.history == {}
    job.stop()
    assert job.stop_requested and "Stopping" in job.snapshot().message
    assert slug("Fast CNN on x/y!") == "fast-cnn-on-x-y"
    assert format_seconds(65) == "1 min 05 s" and format_seconds(float("nan")) == "–"
    assert isinstance(job._lock, type(threading.Lock()))


def test_penultimate_layer_of_the_shipped_model():
    from medviz.ood.features import penultimate_layer
    from medviz.store import load_bundle
    from medviz.ui import settings

    bundle = load_bundle(settings.models_dir() / settings.DEFAULT_MODEL)
    assert penultimate_layer(bundle.model) == "dropout"
