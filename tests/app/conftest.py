"""AppTest fixtures: a fresh app session per test, tiny settings, test images."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
from app_helpers import (
    PATIENT_ID,
    PATIENT_NAME,
    assert_clean,
    configure_environment,
    goto,
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
def default_model(app):
    """The app with the shipped default model active (through the one-click button)."""
    goto(app, "classify")
    app.button(key="use_default").click()
    app.run()
    assert_clean(app)
    return app


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
