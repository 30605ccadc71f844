"""The bad-inputs catalogue: awkward-but-valid and invalid files, generated on the fly.

:func:`image_cases` returns single image files (fed to ``decode_image``, ``medviz
predict`` and the Classify page); :func:`dataset_cases` returns archives and
folders (fed to ``load_zip`` / ``load_npz`` / ``load_folder`` and the Data page).
Each :class:`Case` says what must happen: ``"valid"`` with a pixel check that
proves the decoded pixels are right, or ``"invalid"`` with a fragment the one
error message must contain (besides the file name).

Real oddities come from the test files pydicom ships (read offline from the
installed package); a case whose file is not bundled is reported as missing and
skipped by the tests.
"""

from __future__ import annotations

import io
import os
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

Check = Callable[[np.ndarray, dict], None]


@dataclass(frozen=True)
class Case:
    """One input file and its expected outcome.

    Attributes:
        name: File name (messages must name it).
        kind: ``"image"``, ``"zip"``, ``"npz"`` or ``"folder"``.
        data: The file's bytes (``None`` for a folder or a missing pydicom file).
        path: Folder of a ``"folder"`` case, or the pydicom test file.
        expect: ``"valid"`` or ``"invalid"``.
        message: For invalid cases, a fragment of the expected message.
        check: For valid cases, ``check(pixels, meta)`` raising AssertionError if wrong.
        missing: Why the case cannot run here (a pydicom file that is not bundled).
    """

    name: str
    kind: Literal["image", "zip", "npz", "folder"]
    data: bytes | None
    expect: Literal["valid", "invalid"]
    message: str = ""
    check: Check | None = None
    path: Path | None = None
    missing: str | None = None

    def __repr__(self) -> str:  # short ids in pytest output
        return f"Case({self.name})"


# --- helpers -------------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def ramp(width: int, height: int) -> np.ndarray:
    """``(height, width)`` uint8 horizontal ramp 0…255."""
    return np.tile(np.linspace(0, 255, width).round().astype(np.uint8), (height, 1))


def _equal(expected: np.ndarray, *, tol: int = 0) -> Check:
    def check(pixels: np.ndarray, meta: dict) -> None:
        assert pixels.shape == expected.shape, (pixels.shape, expected.shape)
        diff = np.abs(pixels.astype(int) - expected.astype(int)).max()
        assert diff <= tol, f"max pixel difference {diff} > {tol}"

    return check


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))


def png_bomb(width: int = 30000, height: int = 30000) -> bytes:
    """A valid PNG header claiming ``width × height`` pixels, with a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def dicom(
    pixels: np.ndarray,
    *,
    photometric: str = "MONOCHROME2",
    bits: int = 16,
    **elements: object,
) -> bytes:
    """A valid Explicit VR Little Endian DICOM of ``pixels`` (grey, RGB or multi-frame)."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    rgb = photometric == "RGB"
    frames = pixels.shape[0] if (pixels.ndim == 4 or (pixels.ndim == 3 and not rgb)) else 1
    if frames > 1:
        ds.NumberOfFrames = frames
    shape = pixels.shape[-3:-1] if rgb else pixels.shape[-2:]
    ds.Rows, ds.Columns = shape
    ds.SamplesPerPixel = 3 if rgb else 1
    if rgb:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    dtype = np.uint8 if bits == 8 else np.dtype("<u2")
    ds.PixelData = np.ascontiguousarray(pixels.astype(dtype)).tobytes()
    for key, value in elements.items():
        setattr(ds, key, value)
    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()


def pydicom_folder() -> Path:
    import pydicom.data

    return Path(os.path.dirname(pydicom.data.__file__)) / "test_files"


def _pydicom_pixels(name: str, *, frame: int | None = None) -> np.ndarray | None:
    """Raw pixel array of a shipped pydicom file (``None`` when absent or undecodable)."""
    import pydicom

    path = pydicom_folder() / name
    if not path.is_file():
        return None
    try:
        ds = pydicom.dcmread(path)
        return ds.pixel_array if frame is None else ds.pixel_array[frame]
    except Exception:
        return None


def _decoder_available(name: str) -> bool:
    import pydicom
    from pydicom.pixels import get_decoder

    path = pydicom_folder() / name
    if not path.is_file():
        return False
    syntax = pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID
    try:
        return bool(get_decoder(syntax).is_available)
    except (NotImplementedError, ValueError):
        return False


def _minmax(values: np.ndarray) -> np.ndarray:
    values = values.astype(np.float64)
    low, high = values.min(), values.max()
    return np.clip(np.rint((values - low) / (high - low) * 255), 0, 255).astype(np.uint8)


def _lossy_check(name: str) -> Check | None:
    """Pixels of a lossy pydicom file: min-max of pydicom's decode (no window in these files)."""
    if name == "JPEG2000.dcm":
        return _shape_check((1024, 256))
    reference = _pydicom_pixels(name)
    return None if reference is None else _equal(_minmax(reference))


def _same_as_reference(reference: str) -> Check:
    """Decoded pixels equal MedViz's own decoding of an uncompressed reference file."""

    def check(pixels: np.ndarray, meta: dict) -> None:
        from medviz.data import decode_image

        expected = decode_image(pydicom_folder() / reference).pixels
        _equal(expected)(pixels, meta)

    return check


def _pydicom_case(
    name: str,
    expect: Literal["valid", "invalid"],
    *,
    message: str = "",
    check: Check | None = None,
) -> Case:
    path = pydicom_folder() / name
    if not path.is_file():
        return Case(name, "image", None, expect, message, check, path, missing="not bundled")
    return Case(name, "image", path.read_bytes(), expect, message, check, path)


# --- image cases ---------------------------------------------------------------------------------


def image_cases() -> list[Case]:
    """Single image files: at least 40 (generated + pydicom's own test files)."""
    rng = np.random.default_rng(7)
    grey = ramp(48, 40)
    cases: list[Case] = []
    add = cases.append

    # Invalid: one clear message each.
    add(Case("empty.png", "image", b"", "invalid", "empty"))
    add(
        Case(
            "notes-renamed.png",
            "image",
            b"patient list\nnot an image\n" * 20,
            "invalid",
            "cannot decode",
        )
    )
    png = encode(Image.fromarray(grey), "PNG")
    add(Case("truncated.png", "image", png[: len(png) // 2], "invalid", "truncated"))
    add(Case("header-only.png", "image", png[:40], "invalid", "truncated"))
    jpeg = encode(Image.fromarray((rng.random((64, 64)) * 255).astype(np.uint8)), "JPEG")
    add(Case("truncated.jpg", "image", jpeg[: len(jpeg) // 2], "invalid", "truncated"))
    add(Case("bomb-30000x30000.png", "image", png_bomb(), "invalid", "too large"))
    add(
        Case(
            "page.png",
            "image",
            b"<!DOCTYPE html><html><body>404</body></html>",
            "invalid",
            "HTML page",
        )
    )
    add(
        Case(
            "lfs-pointer.png",
            "image",
            b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 12345\n",
            "invalid",
            "Git LFS",
        )
    )
    add(Case("archive-renamed.png", "image", b"PK\x03\x04" + b"\0" * 60, "invalid", "zip"))
    corrupt = bytearray(png)
    corrupt[60:90] = b"\xff" * 30  # inside the compressed IDAT stream
    add(Case("corrupt-idat.png", "image", bytes(corrupt), "invalid", "corrupt"))
    add(
        Case(
            "eps-renamed.png",
            "image",
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n",
            "invalid",
            "cannot decode",
        )
    )

    # Valid, awkward: pixels must be right.
    one = np.array([[173]], np.uint8)
    add(Case("1x1.png", "image", encode(Image.fromarray(one), "PNG"), "valid", check=_equal(one)))
    tall = ramp(1, 300)
    add(
        Case(
            "1x300.png", "image", encode(Image.fromarray(tall), "PNG"), "valid", check=_equal(tall)
        )
    )
    sixteen = np.tile(np.linspace(1000, 4095, 40).astype(np.uint16), (12, 1))
    add(
        Case(
            "16bit.png",
            "image",
            encode(Image.fromarray(sixteen), "PNG"),
            "valid",
            check=_equal(_minmax(sixteen)),
        )
    )
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    rgba[:5, :, 3] = 0  # transparent upper half, red underneath
    expected_rgba = np.zeros((10, 10, 3), np.uint8)
    expected_rgba[5:, :, 0] = 200
    add(
        Case(
            "rgba.png",
            "image",
            encode(Image.fromarray(rgba, "RGBA"), "PNG"),
            "valid",
            check=_equal(expected_rgba),
        )
    )
    la = np.stack([np.full((6, 6), 120, np.uint8), np.full((6, 6), 255, np.uint8)], -1)
    add(
        Case(
            "grey-alpha.png",
            "image",
            encode(Image.fromarray(la, "LA"), "PNG"),
            "valid",
            check=_equal(np.full((6, 6), 120, np.uint8)),
        )
    )
    palette = Image.new("P", (8, 4))
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.putdata([0] * 16 + [1] * 16)
    expected_p = np.zeros((4, 8, 3), np.uint8)
    expected_p[:2, :, 0] = 255
    expected_p[2:, :, 2] = 255
    add(Case("palette.png", "image", encode(palette, "PNG"), "valid", check=_equal(expected_p)))
    bilevel = Image.fromarray((np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)).convert("1")
    add(
        Case(
            "bilevel.png",
            "image",
            encode(bilevel, "PNG"),
            "valid",
            check=_equal((np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)),
        )
    )
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red in CMYK

    def red(pixels: np.ndarray, meta: dict) -> None:
        assert pixels.shape == (16, 16, 3)
        mean = pixels.reshape(-1, 3).mean(0)
        assert mean[0] > 200 and mean[1] < 60 and mean[2] < 60, mean

    add(Case("cmyk.jpg", "image", encode(cmyk, "JPEG", quality=95), "valid", check=red))
    marked = np.zeros((20, 40), np.uint8)
    marked[:10, :20] = 255  # bright top-left quadrant, 40 wide × 20 tall as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"

    def rotated(pixels: np.ndarray, meta: dict) -> None:
        assert pixels.shape == (40, 20), pixels.shape  # displayed 20 wide × 40 tall
        assert pixels[:20, 10:].mean() > 200 and pixels[:20, :10].mean() < 50
        assert pixels[20:].mean() < 50
        assert meta.get("exif_orientation") == 6

    add(
        Case(
            "exif-rotated.jpg",
            "image",
            encode(Image.fromarray(marked), "JPEG", quality=95, exif=exif),
            "valid",
            check=rotated,
        )
    )
    frames = [Image.fromarray(np.full((6, 6), v, np.uint8)) for v in (30, 90, 150)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)

    def first_frame(pixels: np.ndarray, meta: dict) -> None:
        assert pixels.shape == (6, 6) and np.all(pixels == 30), np.unique(pixels)
        assert meta.get("frames") == 3

    add(Case("animated.gif", "image", gif.getvalue(), "valid", check=first_frame))
    tif = io.BytesIO()
    frames[1].save(tif, "TIFF", save_all=True, append_images=[frames[2]])
    add(
        Case(
            "multipage.tif",
            "image",
            tif.getvalue(),
            "valid",
            check=_equal(np.full((6, 6), 90, np.uint8)),
        )
    )
    floats = np.linspace(-1.0, 3.0, 20, dtype=np.float32).reshape(4, 5)
    add(
        Case(
            "float32.tif",
            "image",
            encode(Image.fromarray(floats, "F"), "TIFF"),
            "valid",
            check=_equal(_minmax(floats)),
        )
    )
    add(
        Case("grey.bmp", "image", encode(Image.fromarray(grey), "BMP"), "valid", check=_equal(grey))
    )
    add(
        Case("grey.pgm", "image", encode(Image.fromarray(grey), "PPM"), "valid", check=_equal(grey))
    )
    add(Case("png-named.jpg", "image", png, "valid", check=_equal(grey)))
    colour = (rng.random((12, 14, 3)) * 255).astype(np.uint8)
    add(
        Case(
            "colour.png",
            "image",
            encode(Image.fromarray(colour), "PNG"),
            "valid",
            check=_equal(colour),
        )
    )
    add(
        Case(
            "grey-as-rgb.png",
            "image",
            encode(Image.fromarray(grey).convert("RGB"), "PNG"),
            "valid",
            check=_equal(grey),
        )
    )

    # Generated DICOM.
    mono = np.tile(np.arange(0, 1000, 50, dtype=np.uint16), (8, 1))  # 20 columns

    def inverted(pixels: np.ndarray, meta: dict) -> None:
        _equal(255 - _minmax(mono))(pixels, meta)
        assert pixels[0, 0] == 255 and pixels[0, -1] == 0, "MONOCHROME1: low values are white"

    add(
        Case(
            "monochrome1.dcm",
            "image",
            dicom(mono, photometric="MONOCHROME1"),
            "valid",
            check=inverted,
        )
    )
    add(Case("monochrome2.dcm", "image", dicom(mono), "valid", check=_equal(_minmax(mono))))
    stack = np.stack([np.full((5, 7), v, np.uint16) for v in (100, 200, 300)])
    stack[:, 0, 0] = 0  # a contrast point, so min–max is defined in every frame

    def middle(pixels: np.ndarray, meta: dict) -> None:
        assert meta["frames"] == 3 and meta["frame_used"] == 1
        assert pixels.shape == (5, 7) and pixels[0, 0] == 0 and pixels[2, 3] == 255

    add(Case("multiframe.dcm", "image", dicom(stack), "valid", check=middle))
    rgb = (rng.random((6, 9, 3)) * 255).astype(np.uint8)
    add(Case("rgb.dcm", "image", dicom(rgb, photometric="RGB", bits=8), "valid", check=_equal(rgb)))
    windowed = dicom(mono, WindowCenter=500, WindowWidth=1, VOILUTFunction="LINEAR_EXACT")

    # LINEAR_EXACT, width 1 around 500: below is black, above white, the centre mid-grey.
    step = np.where(mono < 500, 0, np.where(mono > 500, 255, 128)).astype(np.uint8)
    add(Case("window-width-1.dcm", "image", windowed, "valid", check=_equal(step)))
    whole = dicom(mono)
    add(Case("truncated-generated.dcm", "image", whole[: len(whole) - 200], "invalid", "truncated"))
    no_pixels = dicom(mono)
    no_pixels = no_pixels[: no_pixels.rfind(b"\xe0\x7f\x10\x00")]  # cut at (7FE0,0010)
    add(Case("no-pixel-data.dcm", "image", no_pixels, "invalid", "no Pixel Data"))
    add(Case("garbage.dcm", "image", b"\0" * 128 + b"DICM" + os.urandom(64), "invalid", "DICOM"))

    # pydicom's own odd files (offline, from the installed package).
    mr = "MR_small.dcm"
    add(_pydicom_case("MR_truncated.dcm", "invalid", message="truncated"))
    for variant in (
        "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm",
        "MR_small_RLE.dcm",
        "MR_small_expb.dcm",
        "MR_small_padded.dcm",
    ):
        add(_pydicom_case(variant, "valid", check=_same_as_reference(mr)))
    for compressed in ("MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"):
        if _decoder_available(compressed):
            add(_pydicom_case(compressed, "valid", check=_same_as_reference(mr)))
        else:
            add(_pydicom_case(compressed, "invalid", message="install"))
    for lossy in ("JPEGLSNearLossless_16.dcm", "JPGExtended.dcm", "JPEG2000.dcm"):
        expect = "valid" if _decoder_available(lossy) else "invalid"
        if lossy == "JPGExtended.dcm" and _pydicom_pixels(lossy) is None:
            expect = "invalid"  # 12-bit JPEG: Pillow's plugin is available but cannot do it
        add(
            _pydicom_case(
                lossy,
                expect,
                message="install",
                check=_lossy_check(lossy),
            )
        )
    reference_frames = _pydicom_pixels("rtdose.dcm")
    if reference_frames is not None:
        import pydicom

        ds = pydicom.dcmread(pydicom_folder() / "rtdose.dcm")
        from pydicom.pixels import apply_modality_lut

        middle_frame = apply_modality_lut(reference_frames[len(reference_frames) // 2], ds)
        add(_pydicom_case("rtdose.dcm", "valid", check=_equal(_minmax(middle_frame))))
    else:
        add(_pydicom_case("rtdose.dcm", "valid"))
    for colour_file in (
        "SC_rgb_small_odd.dcm",
        "SC_rgb_small_odd_big_endian.dcm",
        "examples_rgb_color.dcm",
        "SC_rgb_rle.dcm",
        "ExplVR_BigEnd.dcm",
    ):
        reference = _pydicom_pixels(colour_file)
        add(
            _pydicom_case(
                colour_file,
                "valid",
                check=_equal(reference.astype(np.uint8))
                if reference is not None and reference.dtype == np.uint8
                else _shape_check(None, channels=3),
            )
        )
    add(
        _pydicom_case(
            "SC_ybr_full_422_uncompressed.dcm", "valid", check=_shape_check((100, 100), channels=3)
        )
    )
    add(_pydicom_case("examples_palette.dcm", "valid", check=_shape_check(None, channels=3)))
    add(_pydicom_case("image_dfl.dcm", "valid", check=_shape_check((512, 512))))
    add(_pydicom_case("badVR.dcm", "invalid", message="DICOM"))
    add(_pydicom_case("rtplan.dcm", "invalid", message="no Pixel Data"))
    add(_pydicom_case("waveform_ecg.dcm", "invalid", message="no Pixel Data"))
    add(_pydicom_case("UN_sequence.dcm", "invalid", message="no Pixel Data"))
    return cases


def _shape_check(shape: tuple[int, int] | None, *, channels: int = 1) -> Check:
    def check(pixels: np.ndarray, meta: dict) -> None:
        if shape is not None:
            assert pixels.shape[:2] == shape, pixels.shape
        assert pixels.ndim == (3 if channels == 3 else 2), pixels.shape
        assert pixels.dtype == np.uint8 and pixels.max() > pixels.min(), "not a blank image"

    return check


# --- dataset cases -------------------------------------------------------------------------------


def _class_pngs(prefix: str, classes: dict[str, int], size: int = 12) -> dict[str, bytes]:
    files = {}
    for k, (name, n) in enumerate(sorted(classes.items())):
        for i in range(n):
            pixels = np.full((size, size), 20 + 60 * k + i, np.uint8)
            pixels[0, 0] = (31 * k + 7 * i) % 256
            files[f"{prefix}{name}/{i:03d}.png"] = encode(Image.fromarray(pixels), "PNG")
    return files


def zip_of(files: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def npz_of(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _dataset_count(n: int, classes: tuple[str, ...]) -> Check:
    """For dataset cases ``check`` receives the images and ``{"class_names": …}``."""

    def check(images: np.ndarray, meta: dict) -> None:
        assert len(images) == n, len(images)
        assert tuple(meta["class_names"]) == classes, meta["class_names"]

    return check


def dataset_cases(tmp: Path) -> list[Case]:
    """Archives and folders (folders are written under ``tmp``)."""
    two = _class_pngs("data/", {"normal": 6, "microcalcification": 6})
    cases: list[Case] = []
    add = cases.append
    add(
        Case(
            "valid.zip",
            "zip",
            zip_of(two),
            "valid",
            check=_dataset_count(12, ("microcalcification", "normal")),
        )
    )
    add(
        Case(
            "loose-files.zip",
            "zip",
            zip_of({f"img{i}.png": v for i, v in enumerate(list(two.values())[:4])}),
            "invalid",
            "no image could be read",
        )
    )
    inner = zip_of(two)
    add(
        Case(
            "nested.zip",
            "zip",
            zip_of({"inner.zip": inner, "more/inner2.zip": inner}),
            "invalid",
            "no image could be read",
        )
    )
    add(
        Case(
            "zip-slip.zip",
            "zip",
            zip_of({**two, "../evil.png": b"x"}),
            "invalid",
            "outside the archive",
        )
    )
    add(
        Case(
            "absolute.zip",
            "zip",
            zip_of({**two, "/etc/evil.png": b"x"}),
            "invalid",
            "absolute path",
        )
    )
    add(
        Case(
            "bomb.zip",
            "zip",
            zip_of({**two, "data/normal/zeros.bmp": b"\0" * (24 * 1024**2)}),
            "invalid",
            "zip bomb",
        )
    )
    add(
        Case(
            "one-class.zip",
            "zip",
            zip_of(_class_pngs("", {"normal": 8})),
            "invalid",
            "need at least 2",
        )
    )
    add(Case("not-a-zip.zip", "zip", b"this is not a zip archive", "invalid", "not a readable zip"))
    add(Case("empty.zip", "zip", zip_of({}), "invalid", "no image could be read"))
    pets = _class_pngs("pets/", {"cat": 5, "dog": 5})
    add(
        Case(
            "cats-dogs.zip", "zip", zip_of(pets), "valid", check=_dataset_count(10, ("cat", "dog"))
        )
    )

    images = np.random.default_rng(3).integers(0, 255, (10, 8, 8), dtype=np.uint8)
    labels = np.array([0, 1] * 5)

    def npz_pixels(found: np.ndarray, meta: dict) -> None:
        assert tuple(meta["class_names"]) == ("0", "1")
        assert found.shape == (10, 8, 8, 1)
        assert sorted(map(bytes, found[..., 0])) == sorted(map(bytes, images)), "pixels kept"

    add(
        Case(
            "valid.npz",
            "npz",
            npz_of(train_images=images, train_labels=labels),
            "valid",
            check=npz_pixels,
        )
    )
    nan = images.astype(np.float32) / 255
    nan[0, 0, 0] = np.nan
    add(Case("nan.npz", "npz", npz_of(train_images=nan, train_labels=labels), "invalid", "NaN"))
    inf = images.astype(np.float32)
    inf[3, 2, 1] = np.inf
    add(
        Case("inf.npz", "npz", npz_of(train_images=inf, train_labels=labels), "invalid", "infinite")
    )
    add(
        Case(
            "mismatch.npz",
            "npz",
            npz_of(train_images=images, train_labels=labels[:7]),
            "invalid",
            "holds 10 images but",
        )
    )
    add(Case("no-labels.npz", "npz", npz_of(train_images=images), "invalid", "but no"))
    add(
        Case(
            "no-keys.npz", "npz", npz_of(x=images, y=labels), "invalid", "no MedMNIST-style arrays"
        )
    )
    add(
        Case(
            "pickled.npz",
            "npz",
            npz_of(train_images=np.array([object(), 1], dtype=object), train_labels=labels[:2]),
            "invalid",
            "cannot read array",
        )
    )
    add(Case("not-an-npz.npz", "npz", b"\x93NUMPY garbage", "invalid", "not a readable .npz"))

    one = tmp / "one-class"
    for rel, data in _class_pngs("", {"normal": 5}).items():
        (one / rel).parent.mkdir(parents=True, exist_ok=True)
        (one / rel).write_bytes(data)
    add(Case("one-class", "folder", None, "invalid", "need at least 2", path=one))
    good = tmp / "two-classes"
    for rel, data in _class_pngs("", {"normal": 5, "microcalcification": 5}).items():
        (good / rel).parent.mkdir(parents=True, exist_ok=True)
        (good / rel).write_bytes(data)
    secret = tmp / "outside-secret.png"
    secret.write_bytes(encode(Image.fromarray(np.full((12, 12), 99, np.uint8)), "PNG"))
    (good / "normal" / "link-out.png").symlink_to(secret)

    def symlink_skipped(found: np.ndarray, meta: dict) -> None:
        _dataset_count(10, ("microcalcification", "normal"))(found, meta)
        assert any("link-out.png" in path for path, _ in meta["skipped"]), meta["skipped"]

    add(
        Case(
            "two-classes-with-symlink-out",
            "folder",
            None,
            "valid",
            check=symlink_skipped,
            path=good,
        )
    )
    return cases
