"""AppTest fixtures: a fresh app session per test, tiny settings, test images."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from app_helpers import (
    APP,
    PATIENT_ID,
    PATIENT_NAME,
    TIMEOUT,
    assert_clean,
    configure_environment,
    make_app,
)

configure_environment()


@pytest.fixture
def app():
    return make_app()


@pytest.fixture
def new_app() -> Callable:
    """Factory of further independent sessions (two browsers)."""
    return make_app


@pytest.fixture
def default_model():
    """A fresh session with the shipped default model active, first run on the Home page.

    The model is put in the session's state as the one-click "Use the shipped default model"
    button does (``components.activate_shipped``: ``state.add_model``), without the two
    Classify runs of the click; the button itself is tested by
    ``test_classify_offers_the_shipped_default_model_in_one_click``.
    """
    from streamlit.testing.v1 import AppTest

    from medviz.ui import cache, settings
    from medviz.ui.state import AppState

    shipped = cache.shipped_entry(cache.shipped_model(settings.DEFAULT_MODEL))
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.session_state["_medviz_state"] = AppState(
        models={shipped.key: shipped}, active_model=shipped.key
    )
    at.run()
    assert_clean(at)
    return at


@pytest.fixture(scope="session")
def png_bytes() -> bytes:
    """A 96×80 grey PNG of mammogram-like texture with a microcalcification cluster."""
    from PIL import Image

    from medviz.data.synthetic import generate_microcalc

    data = generate_microcalc(4, image_size=64, seed=11)
    pixels = data.images[int(np.argmax(data.labels))][..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((96, 80)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="session")
def dicom_ct_bytes() -> bytes:
    """A small CT DICOM carrying patient identifiers that must never be shown."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("ct.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = PATIENT_NAME
    ds.PatientID = PATIENT_ID
    ds.PatientBirthDate = "19700101"
    ds.InstitutionName = "Secret General Hospital"
    ds.Modality = "CT"
    ds.Rows, ds.Columns = 48, 48
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    pixels = (np.random.default_rng(0).random((48, 48)) * 2000).astype(np.uint16)
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def mismatched_zip() -> bytes:
    """A zip of two class folders (cat, dog) that match no shipped model."""
    import zipfile

    from PIL import Image

    rng = np.random.default_rng(1)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label in ("cat", "dog"):
            for i in range(8):
                image = io.BytesIO()
                Image.fromarray((rng.random((40, 40)) * 255).astype(np.uint8)).save(image, "PNG")
                archive.writestr(f"pets/{label}/{i}.png", image.getvalue())
    return buffer.getvalue()
