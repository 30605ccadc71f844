"""Decode one image file into ``uint8`` pixels, and shape pixels for a model.

:func:`decode_image` reads by content, not by file name (a ``.jpg`` that is
really a PNG decodes as a PNG), and normalises the zoo of stored modes to
``uint8`` grayscale ``(H, W)`` or RGB ``(H, W, 3)`` at native resolution:

* EXIF orientation is applied, so the pixels are the way a viewer shows them.
* Transparency (RGBA, LA, palette with transparency) is **composited on
  black**: radiographs have a black background, and transparent pixels can
  hide any colour a tool left under them. Fully opaque images are unchanged.
* Palette (``P``), CMYK, YCbCr and other colour modes become RGB.
* 16-bit and 32-bit grayscale (``I;16``, ``I``, ``F``) are **min–max
  stretched per image** to 0–255, so a 12-bit scan stored in 16 bits still
  uses the full 8-bit range. Absolute intensities are therefore not
  comparable between such images.
* RGB images whose three channels are identical are returned as ``(H, W)``.
* Multi-page TIFF and animated GIF: the first frame.
* DICOM (``DICM`` at offset 128, or a ``.dcm`` name) goes to
  :func:`medviz.data.dicom.read_dicom`.

Only the formats MedViz supports are tried (PNG, JPEG, BMP, PGM/PPM, TIFF,
GIF), which also keeps Pillow from handing files such as EPS to external
programs. Images above :data:`MAX_PIXELS` are refused before their pixels are
decoded (decompression bombs).
"""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import (  # the plugins are imported to register the formats _PIL_FORMATS names
    BmpImagePlugin,  # noqa: F401
    ExifTags,
    GifImagePlugin,  # noqa: F401
    Image,
    ImageOps,
    JpegImagePlugin,  # noqa: F401
    PngImagePlugin,  # noqa: F401
    PpmImagePlugin,  # noqa: F401
    TiffImagePlugin,  # noqa: F401
    UnidentifiedImageError,
)

from medviz.data.pixels import (
    MAX_PIXELS,
    DecodedImage,
    is_dicom_bytes,
    one_line,
    read_source,
    stretch_to_uint8,
)
from medviz.errors import DataError

IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm", ".tif", ".tiff", ".gif", ".dcm"}
)
"""File name endings the folder and zip loaders treat as images (lower case)."""

# Pillow plugin names tried by Image.open. PPM covers PGM/PBM/PNM; the JPEG
# plugin also opens camera JPEGs with a second picture (MPO).
_PIL_FORMATS = ("PNG", "JPEG", "BMP", "PPM", "TIFF", "GIF")
_ALLOWED = "PNG, JPEG, BMP, PGM/PPM, TIFF, GIF or DICOM"
_HIGH_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})

# Pillow reports decompression bombs through the warnings machinery, which is
# process-global; the lock keeps concurrent decoders (folder loading uses
# threads) from interleaving their catch_warnings blocks. Only the header is
# parsed under the lock, the pixel decoding runs in parallel.
_OPEN_LOCK = threading.Lock()


def decode_image(
    source: bytes | str | Path,
    *,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    frame: int | None = None,
) -> DecodedImage:
    """Decode an image file by its content.

    Args:
        source: File bytes or a path.
        name: Name used in error messages (default: the path, or
            ``"<image bytes>"``). A name ending in ``.dcm`` selects the DICOM
            reader even without the ``DICM`` magic.
        max_pixels: Largest accepted width × height.
        frame: Zero-based frame of a multi-frame DICOM file (``None``: the
            middle one); other formats have one frame and ignore it.

    Returns:
        The :class:`DecodedImage` with ``(H, W)`` or ``(H, W, 3)`` ``uint8``
        pixels.

    Raises:
        DataError: The file is empty, truncated, not a supported image, or
            larger than ``max_pixels``; the message names the file.
    """
    data, label = read_source(source, name)
    if not data:
        raise DataError(f"{label}: the file is empty (0 bytes); expected a {_ALLOWED} image")
    if is_dicom_bytes(data) or label.lower().endswith(".dcm"):
        from medviz.data.dicom import read_dicom

        return read_dicom(data, name=label, max_pixels=max_pixels, frame=frame)
    return _decode_with_pillow(data, label, max_pixels)


_MAGIC = (
    (b"\x89PNG", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"BM", "BMP"),
)


def _describe_non_image(data: bytes) -> str:
    """Say what a file Pillow could not identify probably is."""
    for magic, fmt in _MAGIC:
        if data.startswith(magic):
            return f"a {fmt} file whose header is truncated or corrupt ({len(data)} bytes)"
    head = data[:64].lstrip().lower()
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the image itself (run `git lfs pull`)"
    if head.startswith((b"<!doctype html", b"<html")):
        return "an HTML page (a failed download?)"
    if data.startswith(b"PK\x03\x04"):
        return "a zip archive"
    return f"{len(data)} bytes that are not a {_ALLOWED} image"


def _bomb_message(label: str, width: int | None, height: int | None, max_pixels: int) -> str:
    size = (
        f"{width}x{height} = {width * height:,} pixels" if width and height else "too many pixels"
    )
    return (
        f"{label}: image is too large ({size}); at most {max_pixels:,} pixels are allowed "
        "(decompression-bomb guard)"
    )


def _decode_with_pillow(data: bytes, label: str, max_pixels: int) -> DecodedImage:
    """Decode non-DICOM bytes with Pillow; see the module docstring for the rules."""
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=_PIL_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DataError(_bomb_message(label, None, None, max_pixels)) from exc
    except UnidentifiedImageError as exc:
        raise DataError(f"{label}: cannot decode: the file is {_describe_non_image(data)}") from exc
    except Exception as exc:  # corrupt headers raise SyntaxError, struct.error, IndexError …
        raise DataError(
            f"{label}: the image header is truncated or corrupt ({one_line(exc)})"
        ) from exc

    width, height = image.size
    if width * height > max_pixels:
        raise DataError(_bomb_message(label, width, height, max_pixels))
    mode, fmt = image.mode, image.format
    frames = int(getattr(image, "n_frames", 1))
    meta: dict[str, object] = {"format": fmt, "frames": frames}
    try:
        image.load()
        orientation = int(image.getexif().get(ExifTags.Base.Orientation, 1))
        if orientation != 1:
            image = ImageOps.exif_transpose(image)
            meta["exif_orientation"] = orientation
        pixels = _to_uint8(image, meta)
    except Exception as exc:  # truncated data raises OSError, broken streams other types
        raise DataError(
            f"{label}: the {fmt} data is truncated or corrupt ({one_line(exc)})"
        ) from exc
    pixels = np.ascontiguousarray(pixels)
    pixels.setflags(write=False)
    return DecodedImage(
        pixels=pixels, mode=mode, size=(pixels.shape[1], pixels.shape[0]), meta=meta
    )


def _to_uint8(image: Image.Image, meta: dict[str, object]) -> np.ndarray:
    """Pixels of a loaded Pillow image as ``(H, W)`` or ``(H, W, 3)`` ``uint8``."""
    mode = image.mode
    if mode in _HIGH_BIT_MODES:
        values = np.asarray(image).astype(np.float64)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        meta["intensity_range"] = (low, high)
        return stretch_to_uint8(values, low, high)
    if mode in ("1", "L"):
        return np.asarray(image.convert("L"))
    if mode == "P" and "transparency" in image.info:
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = np.asarray(image.convert("RGBA")).astype(np.uint16)
        alpha = rgba[..., 3:]
        rgb = ((rgba[..., :3] * alpha + 127) // 255).astype(np.uint8)
        meta["alpha"] = "composited on black"
    else:
        rgb = np.asarray(image.convert("RGB"))
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2]):
        return rgb[..., 0]
    return rgb


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma of ``(..., 3)`` ``uint8`` pixels, bit-identical to Pillow's ``"L"``.

    Returns:
        ``uint8`` array of shape ``rgb.shape[:-1]``.
    """
    rgb = np.asarray(rgb, dtype=np.uint32)
    # Pillow's fixed-point weights (0.299, 0.587, 0.114) · 2**16, rounded half up.
    luma = rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000
    return (luma >> 16).astype(np.uint8)


def to_model_input(pixels: np.ndarray, *, image_size: int, channels: int) -> np.ndarray:
    """Convert decoded pixels to the square, fixed-channel input of a model.

    The image is always resized to a square, whatever its aspect ratio: if
    images kept their shape (padding or cropping), the shape itself could
    become a class cue. Colour becomes grayscale with ITU-R 601-2 luma;
    grayscale is copied into three channels. Resizing is bilinear and
    antialiased (Pillow widens the filter when shrinking, so it averages
    like an area filter).

    Args:
        pixels: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` ``uint8`` array.
        image_size: Side length ``S`` of the output.
        channels: 1 (grayscale) or 3 (RGB).

    Returns:
        ``(S, S, channels)`` ``uint8`` array.

    Raises:
        DataError: Bad ``image_size``/``channels``, or pixels of another
            shape or dtype.
    """
    if channels not in (1, 3):
        raise DataError(f"channels must be 1 or 3, got {channels}")
    if not isinstance(image_size, int | np.integer) or image_size < 1:
        raise DataError(f"image_size must be a positive integer, got {image_size!r}")
    arr = np.asarray(pixels)
    if arr.dtype != np.uint8:
        raise DataError(f"pixels must be uint8, got {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 3)):
        raise DataError(f"pixels must have shape (H, W), (H, W, 1) or (H, W, 3), got {arr.shape}")
    if channels == 1 and arr.ndim == 3:
        arr = rgb_to_gray(arr)
    if arr.shape[:2] != (image_size, image_size):
        resized = Image.fromarray(np.ascontiguousarray(arr)).resize(
            (int(image_size), int(image_size)), Image.Resampling.BILINEAR
        )
        arr = np.asarray(resized)
    if arr.ndim == 2:
        arr = arr[..., None]
    if channels == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.array(arr, dtype=np.uint8)
