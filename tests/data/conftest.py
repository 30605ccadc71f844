"""Fixtures for the data-layer tests: tiny images, folders, zips and DICOM files.

Everything is generated in memory or under ``tmp_path``; nothing is
downloaded. Fixtures return factory functions because this folder has no
``__init__.py`` to import helpers from.
"""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medviz.data.registry import data_root

Encode = Callable[..., bytes]


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _gradient(width: int, height: int) -> np.ndarray:
    """``(height, width)`` uint8 horizontal ramp, different in every column."""
    return np.tile(np.linspace(0, 255, width).round().astype(np.uint8), (height, 1))


@pytest.fixture
def encode() -> Encode:
    """``encode(image, "PNG", **save_options) -> bytes``."""
    return _encode


@pytest.fixture
def gradient() -> Callable[[int, int], np.ndarray]:
    """``gradient(width, height) -> (height, width) uint8`` ramp."""
    return _gradient


@pytest.fixture
def write_tree(tmp_path: Path) -> Callable[[dict[str, bytes]], Path]:
    """``write_tree({"a/b.png": data, …}) -> root`` under ``tmp_path``."""

    def write(files: dict[str, bytes], root_name: str = "root") -> Path:
        root = tmp_path / root_name
        for rel, data in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        root.mkdir(exist_ok=True)
        return root

    return write


@pytest.fixture
def zip_bytes() -> Callable[[dict[str, bytes]], bytes]:
    """``zip_bytes({"member": data, …}) -> bytes`` (deflated)."""

    def build(files: dict[str, bytes]) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in files.items():
                archive.writestr(name, data)
        return buffer.getvalue()

    return build


@pytest.fixture
def class_images() -> Callable[..., dict[str, bytes]]:
    """``class_images(prefix, {"cat": n, …}, size=(w, h))`` → PNG files, distinct per file.

    Every image differs (its brightness encodes class and index), so no two
    files are duplicates unless a test makes them so.
    """

    def build(
        prefix: str, classes: dict[str, int], size: tuple[int, int] = (12, 10)
    ) -> dict[str, bytes]:
        files = {}
        for k, (name, n) in enumerate(sorted(classes.items())):
            for i in range(n):
                pixels = np.full((size[1], size[0]), 10 + 40 * k + i, dtype=np.uint8)
                pixels[0, 0] = (7 * len(prefix) + i) % 256  # keeps splits from sharing bytes
                files[f"{prefix}{name}/img{i:03d}.png"] = _encode(Image.fromarray(pixels), "PNG")
        return files

    return build


@pytest.fixture
def make_dicom() -> Callable[..., bytes]:
    """``make_dicom(pixels, photometric=..., **elements) -> bytes`` of a valid DICOM file.

    ``pixels`` is ``(rows, columns)`` uint16/int16 (or ``(frames, rows,
    columns)``); extra keyword arguments become DICOM elements (e.g.
    ``WindowCenter=``, ``PatientName=``).
    """
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    def build(pixels: np.ndarray, *, photometric: str = "MONOCHROME2", **elements: object) -> bytes:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset("test.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID = SecondaryCaptureImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.Modality = "OT"
        frames = pixels.shape[0] if pixels.ndim == 3 else 1
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.Rows, ds.Columns = pixels.shape[-2:]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = photometric
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
        ds.PixelData = np.ascontiguousarray(pixels.astype(pixels.dtype.newbyteorder("<"))).tobytes()
        for key, value in elements.items():
            setattr(ds, key, value)
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        return buffer.getvalue()

    return build


@pytest.fixture
def pydicom_file() -> Callable[[str], Path]:
    """``pydicom_file(name) -> Path`` of a test file shipped inside pydicom.

    The path is built directly: ``pydicom.data.get_testdata_file`` would try
    to download files that are not shipped.
    """
    import pydicom.data

    folder = Path(os.path.dirname(pydicom.data.__file__)) / "test_files"

    def find(name: str) -> Path:
        path = folder / name
        if not path.is_file():
            pytest.skip(f"pydicom test file {name} not shipped with this pydicom")
        return path

    return find


@pytest.fixture
def shared_root() -> Path:
    """The shared real datasets, or skip when they are not present."""
    root = data_root()
    if not root.is_dir():
        pytest.skip("../shared/datasets not present")
    return root
