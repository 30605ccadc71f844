"""Every compressed transfer syntax pydicom ships a test file for, frames, Presentation LUT.

Reference values are those of pydicom's own pixel tests
(``pydicom/tests/pixels/pixels_reference.py``): lossless files must equal
their uncompressed twin, lossy ones the sample pixels pydicom asserts. Only
files bundled in the pydicom wheel are used (``pydicom_file`` skips others;
nothing is downloaded).
"""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.pixels import get_decoder
from pydicom.uid import (
    JPEG2000,
    JPEG2000Lossless,
    JPEGExtended12Bit,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
)

from medviz.data.dicom import dicom_frame_count, read_dicom
from medviz.errors import DataError
from medviz.services.uploads import decode_upload


def _needs(syntax) -> None:
    if not get_decoder(syntax).is_available:
        pytest.skip(f"no decoder plugin for {syntax.name} installed")


def _min_max_display(decoded, values: list[float]) -> list[int]:
    """Display values MedViz gives raw ``values`` under the frame's min-max window."""
    window = decoded.meta["window"]
    assert window["source"] == "min-max of the frame"
    low = window["centre"] - window["width"] / 2
    scaled = (np.asarray(values, dtype=np.float64) - low) / window["width"] * 255
    return np.clip(np.rint(scaled), 0, 255).astype(int).tolist()


@pytest.mark.parametrize(
    ("name", "syntax"),
    [
        ("MR_small_jp2klossless.dcm", JPEG2000Lossless),
        ("MR_small_jpeg_ls_lossless.dcm", JPEGLSLossless),
    ],
)
def test_lossless_codecs_equal_the_uncompressed_file(pydicom_file, name, syntax):
    _needs(syntax)
    decoded = read_dicom(pydicom_file(name))
    assert decoded.meta["transfer_syntax"] == syntax.name
    np.testing.assert_array_equal(decoded.pixels, read_dicom(pydicom_file("MR_small.dcm")).pixels)


def test_jpeg_lossless_rgb_equals_rle_twin_and_reference(pydicom_file):
    _needs(JPEGLosslessSV1)
    decoded = read_dicom(pydicom_file("SC_rgb_jpeg_gdcm.dcm"))
    assert decoded.meta["transfer_syntax"] == JPEGLosslessSV1.name
    np.testing.assert_array_equal(decoded.pixels, read_dicom(pydicom_file("SC_rgb_rle.dcm")).pixels)
    # pydicom's reference JPGS_08_08_3_1F_RGB
    assert tuple(decoded.pixels[5, 50]) == (255, 0, 0)
    assert tuple(decoded.pixels[75, 50]) == (64, 64, 64)


def test_jpeg_extended_12_bit(pydicom_file):
    _needs(JPEGExtended12Bit)
    decoded = read_dicom(pydicom_file("JPGExtended.dcm"))
    assert decoded.meta["bits_stored"] == 12 and decoded.pixels.shape == (1024, 256)
    # pydicom's reference JPGE_16_12_1_0_1F_M2: arr[420, 140] == 244, arr[230, 120] == 95
    got = [int(decoded.pixels[420, 140]), int(decoded.pixels[230, 120])]
    assert got == _min_max_display(decoded, [244, 95])


def test_broken_jpeg_extended_is_refused_in_one_line(pydicom_file):
    # JPEG-lossy.dcm has an invalid scan stop value; pydicom's own tests skip it for
    # pylibjpeg, and only GDCM (not installed here) tolerates it.
    _needs(JPEGExtended12Bit)
    with pytest.raises(DataError) as info:
        read_dicom(pydicom_file("JPEG-lossy.dcm"))
    message = str(info.value)
    assert "JPEG-lossy.dcm" in message and "JPEG Extended" in message and "\n" not in message


def test_jpeg_ls_near_lossless_16_bit(pydicom_file):
    _needs(JPEGLSNearLossless)
    decoded = read_dicom(pydicom_file("JPEGLSNearLossless_16.dcm"))
    # pydicom's reference JLSN_16_16_1_0_1F (column 0, every 5th row)
    reference = [65535, 32765, 16385, 4095, 1025, 255, 65, 15, 5]
    assert decoded.pixels[0:45:5, 0].tolist() == _min_max_display(decoded, reference)


def test_jpeg_ls_near_lossless_rgb(pydicom_file):
    _needs(JPEGLSNearLossless)
    decoded = read_dicom(pydicom_file("SC_rgb_jls_lossy_sample.dcm"))
    # pydicom's reference JLSN_08_08_1_0_3F_SAMPLE
    assert decoded.pixels[10, 0].tolist() == [255, 130, 130]
    assert decoded.pixels[70, 0].tolist() == [65, 65, 65]


def test_jpeg_2000_lossless_rgb_reference(pydicom_file):
    _needs(JPEG2000Lossless)
    decoded = read_dicom(pydicom_file("GDCMJ2K_TextGBR.dcm"))
    # pydicom's reference J2KR_08_08_3_0_1F_YBR_RCT
    assert tuple(decoded.pixels[45, 140]) == (223, 32, 32)
    assert tuple(decoded.pixels[350, 195]) == (128, 128, 128)


def test_jpeg_2000_lossy_decodes_the_same_scene_as_jpeg_extended(pydicom_file):
    _needs(JPEG2000)
    lossy = read_dicom(pydicom_file("JPEG2000.dcm"))
    assert lossy.meta["transfer_syntax"] == JPEG2000.name and lossy.pixels.shape == (1024, 256)
    # No uncompressed twin is bundled; JPGExtended.dcm is the same NEMA image in another
    # codec (raw correlation 0.95). A wrong decode correlates near 0.
    other = read_dicom(pydicom_file("JPGExtended.dcm")).pixels
    assert np.corrcoef(lossy.pixels.ravel(), other.ravel())[0, 1] > 0.9


def test_each_frame_can_be_picked(pydicom_file):
    path = pydicom_file("rtdose.dcm")
    assert dicom_frame_count(path) == 15
    frames = pydicom.dcmread(path).pixel_array.astype(np.float64)
    for index in (0, 14):
        decoded = read_dicom(path, frame=index)
        assert decoded.meta["frame_used"] == index and decoded.meta["frames"] == 15
        expected = _min_max_display(decoded, frames[index].ravel().tolist())
        assert decoded.pixels.ravel().tolist() == expected
    assert not np.array_equal(read_dicom(path, frame=0).pixels, read_dicom(path, frame=14).pixels)
    with pytest.raises(DataError, match=r"frame 15 does not exist; the file has 15 frame"):
        read_dicom(path, frame=15)
    with pytest.raises(DataError, match="frame -1 does not exist"):
        read_dicom(path, frame=-1)


def test_compressed_multiframe_frame_through_the_upload_service(pydicom_file):
    path = pydicom_file("examples_ybr_color.dcm")
    assert dicom_frame_count(path.read_bytes()) == 30
    decoded = decode_upload(path.read_bytes(), name="cine.dcm", max_mb=5, frame=3)
    assert decoded.meta["frame_used"] == 3 and decoded.pixels.shape == (240, 320, 3)
    np.testing.assert_array_equal(decoded.pixels, pydicom.dcmread(path).pixel_array[3])


def test_single_frame_file_counts_one(pydicom_file, make_dicom):
    assert dicom_frame_count(pydicom_file("CT_small.dcm")) == 1
    assert read_dicom(pydicom_file("CT_small.dcm"), frame=0).meta["frame_used"] == 0
    with pytest.raises(DataError, match="not a readable DICOM file"):
        dicom_frame_count(b"\0" * 10, name="x.dcm")


def test_presentation_lut_inverse(make_dicom):
    ramp = np.array([[0, 100], [200, 300]], dtype=np.uint16)
    plain = read_dicom(make_dicom(ramp))
    assert plain.meta["inverted"] is None
    inverse = read_dicom(make_dicom(ramp, PresentationLUTShape="INVERSE"))
    np.testing.assert_array_equal(inverse.pixels, 255 - plain.pixels)
    assert inverse.meta["inverted"] == "Presentation LUT INVERSE"
    # MONOCHROME1 must carry INVERSE: both name the same flip, applied once.
    mono1 = read_dicom(make_dicom(ramp, photometric="MONOCHROME1", PresentationLUTShape="INVERSE"))
    np.testing.assert_array_equal(mono1.pixels, 255 - plain.pixels)
    assert mono1.meta["inverted"] == "MONOCHROME1"


def test_window_through_pydicom_apply_windowing(make_dicom):
    from pydicom.pixels import apply_windowing

    stored = np.array([[0, 1000, 2000, 3000, 4095]], dtype=np.uint16)
    data = make_dicom(stored, WindowCenter=2000, WindowWidth=1000)
    decoded = read_dicom(data)
    ds = pydicom.dcmread(io.BytesIO(data))
    expected = apply_windowing(stored.astype(np.float64), ds) / 65535 * 255
    np.testing.assert_array_equal(decoded.pixels, np.rint(expected).astype(np.uint8))
    assert decoded.pixels.tolist() == [[0, 0, 128, 255, 255]]
