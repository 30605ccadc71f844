"""read_dicom on pydicom's shipped test files and on generated files."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.pixels import apply_voi_lut, get_decoder
from pydicom.uid import JPEGLSLossless

from medviz.data.dicom import read_dicom
from medviz.data.images import decode_image
from medviz.errors import DataError

IDENTIFIERS = {
    "PatientName": "Doe^Jane",
    "PatientID": "ID-998877",
    "PatientBirthDate": "19700101",
    "AccessionNumber": "ACC-4242",
    "InstitutionName": "Saint Nowhere Hospital",
    "ReferringPhysicianName": "House^Gregory",
}


def test_ct_rescale_and_min_max_window(pydicom_file):
    decoded = read_dicom(pydicom_file("CT_small.dcm"))
    assert decoded.mode == "DICOM:MONOCHROME2"
    assert decoded.size == (128, 128) and decoded.pixels.shape == (128, 128)
    meta = decoded.meta
    assert meta["modality"] == "CT"
    assert meta["rescale"] == {"slope": 1.0, "intercept": -1024.0}
    assert meta["window"]["source"] == "min-max of the frame"
    assert meta["transfer_syntax"] == "Explicit VR Little Endian"
    assert meta["frames"] == 1
    assert decoded.pixels.min() == 0 and decoded.pixels.max() == 255
    # The file's patient name ("CompressedSamples^CT1") must not leak into meta.
    assert "CompressedSamples" not in repr(meta)
    assert not any("patient" in key.lower() for key in meta)


def test_mr_window_matches_pydicom_voi(pydicom_file):
    path = pydicom_file("MR_small.dcm")
    decoded = read_dicom(path)
    assert decoded.meta["window"] == {
        "centre": 600.0,
        "width": 1600.0,
        "function": "LINEAR",
        "source": "file",
    }
    ds = pydicom.dcmread(path)
    # pydicom windows into the stored range of a signed 16-bit image.
    windowed = apply_voi_lut(ds.pixel_array.astype(np.float64), ds)
    expected = np.rint((windowed + 32768) / 65535 * 255)
    assert np.abs(decoded.pixels.astype(int) - expected).max() <= 1


def test_big_endian_equals_little_endian(pydicom_file):
    little = read_dicom(pydicom_file("MR_small.dcm"))
    big = read_dicom(pydicom_file("MR_small_bigendian.dcm"))
    np.testing.assert_array_equal(little.pixels, big.pixels)
    assert big.meta["transfer_syntax"] == "Explicit VR Big Endian"


def test_rle_compressed_decodes_like_uncompressed(pydicom_file):
    np.testing.assert_array_equal(
        read_dicom(pydicom_file("MR_small_RLE.dcm")).pixels,
        read_dicom(pydicom_file("MR_small.dcm")).pixels,
    )


def test_truncated_file(pydicom_file):
    with pytest.raises(DataError, match=r"MR_truncated\.dcm: DICOM pixel data is truncated"):
        read_dicom(pydicom_file("MR_truncated.dcm"))


def test_missing_decoder_names_syntax_and_packages(pydicom_file):
    if get_decoder(JPEGLSLossless).is_available:
        pytest.skip("a JPEG-LS decoder is installed here")
    with pytest.raises(DataError) as info:
        read_dicom(pydicom_file("MR_small_jpeg_ls_lossless.dcm"))
    message = str(info.value)
    assert "MR_small_jpeg_ls_lossless.dcm" in message
    assert "JPEG-LS Lossless Image Compression" in message
    assert "pylibjpeg" in message and "gdcm" in message


def test_multiframe_takes_middle_frame(pydicom_file):
    path = pydicom_file("rtdose.dcm")
    decoded = read_dicom(path)
    assert decoded.meta["frames"] == 15 and decoded.meta["frame_used"] == 7
    frames = pydicom.dcmread(path).pixel_array.astype(np.float64)
    low = frames.min(axis=(1, 2), keepdims=True)
    high = frames.max(axis=(1, 2), keepdims=True)
    expected = np.rint((frames - low) / (high - low) * 255)
    matches = [k for k in range(15) if np.array_equal(decoded.pixels, expected[k])]
    assert matches == [7]


def test_rgb_multiframe_stays_rgb(pydicom_file):
    path = pydicom_file("SC_rgb_rle_2frame.dcm")
    decoded = read_dicom(path)
    assert decoded.mode == "DICOM:RGB"
    assert decoded.pixels.shape == (100, 100, 3)
    assert decoded.meta["frame_used"] == 1 and decoded.meta["window"] is None
    np.testing.assert_array_equal(decoded.pixels, pydicom.dcmread(path).pixel_array[1])


def test_palette_colour_uses_lookup_table(pydicom_file):
    decoded = read_dicom(pydicom_file("examples_palette.dcm"))
    assert decoded.mode == "DICOM:PALETTE COLOR"
    assert decoded.pixels.shape == (350, 800, 3)
    assert not np.array_equal(decoded.pixels[..., 0], decoded.pixels[..., 2])


def test_object_without_pixels(pydicom_file):
    with pytest.raises(DataError, match=r"rtplan\.dcm: DICOM file has no Pixel Data \(a RT Plan"):
        read_dicom(pydicom_file("rtplan.dcm"))


def test_monochrome1_is_inverted(make_dicom):
    data = make_dicom(np.array([[0, 100], [200, 300]], dtype=np.uint16), photometric="MONOCHROME1")
    decoded = read_dicom(data, name="mono1.dcm")
    assert decoded.mode == "DICOM:MONOCHROME1"
    # min-max window maps 0..300 to 0..255, then white-is-low is flipped.
    np.testing.assert_array_equal(decoded.pixels, [[255, 170], [85, 0]])


def test_rescale_then_linear_exact_window(make_dicom):
    data = make_dicom(
        np.array([[0, 50, 75, 100]], dtype=np.uint16),
        RescaleSlope=2,
        RescaleIntercept=-100,
        WindowCenter=50,
        WindowWidth=100,
        VOILUTFunction="LINEAR_EXACT",
    )
    decoded = read_dicom(data)
    # stored → -100, 0, 50, 100 after rescale; window [0, 100] → 0, 0, 128, 255.
    np.testing.assert_array_equal(decoded.pixels, [[0, 0, 128, 255]])
    assert decoded.meta["window"]["function"] == "LINEAR_EXACT"


def test_identifiers_never_reach_meta(make_dicom):
    data = make_dicom(np.arange(16, dtype=np.uint16).reshape(4, 4), **IDENTIFIERS)
    assert b"Doe^Jane" in data  # the file really carries them
    decoded = decode_image(data, name="anything.bin")  # routed by the DICM magic
    text = repr(decoded.meta)
    for value in IDENTIFIERS.values():
        assert value not in text
    assert decoded.meta["modality"] == "OT"


def test_dcm_name_without_preamble_is_read(make_dicom):
    ds = pydicom.dcmread(io.BytesIO(make_dicom(np.eye(3, dtype=np.uint16) * 1000)))
    buffer = io.BytesIO()
    ds.preamble = None
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.save_as(buffer, implicit_vr=True, little_endian=True)
    data = buffer.getvalue()
    assert data[128:132] != b"DICM"
    decoded = decode_image(data, name="bare.dcm")
    np.testing.assert_array_equal(decoded.pixels, np.eye(3, dtype=np.uint8) * 255)


def test_sigmoid_window(make_dicom):
    data = make_dicom(
        np.array([[0, 100, 200]], dtype=np.uint16),
        RescaleIntercept=-100,
        RescaleSlope=1,
        WindowCenter=0,
        WindowWidth=4,
        VOILUTFunction="SIGMOID",
    )
    np.testing.assert_array_equal(read_dicom(data).pixels, [[0, 128, 255]])


def test_voi_lut_sequence_is_applied(make_dicom):
    from pydicom.dataset import Dataset as DicomDataset
    from pydicom.sequence import Sequence

    lut = DicomDataset()
    lut.add_new("LUTDescriptor", "US", [4, 0, 8])  # 4 entries from input 0, 8-bit output
    lut.add_new("LUTData", "US", [0, 50, 100, 255])
    data = make_dicom(np.array([[0, 1, 2, 3, 9]], dtype=np.uint16), VOILUTSequence=Sequence([lut]))
    decoded = read_dicom(data)
    assert decoded.meta["window"] == {"source": "VOI LUT"}
    np.testing.assert_array_equal(decoded.pixels, [[0, 50, 100, 255, 255]])
