"""Read one DICOM image into display-ready ``uint8`` pixels with pydicom.

The pipeline follows the DICOM grayscale display chain (PS3.3 C.11):

1. decode the pixel data of one frame (``frame=``; by default the middle one
   of a multi-frame file). Compressed transfer syntaxes are decoded by
   pydicom's plugins: pylibjpeg-openjpeg (JPEG 2000), pylibjpeg-libjpeg (JPEG
   lossless, 12-bit JPEG Extended), pyjpegls (JPEG-LS), Pillow (8-bit JPEG);
2. Modality LUT: rescale slope/intercept or a Modality LUT Sequence
   (``pydicom.pixels.apply_modality_lut``), giving e.g. Hounsfield units;
3. VOI: a VOI LUT Sequence (``pydicom.pixels.apply_voi_lut``), else the first
   Window Centre/Width with its VOI LUT Function (LINEAR, LINEAR_EXACT or
   SIGMOID) through ``pydicom.pixels.apply_windowing``, whose output range is
   then mapped onto 0–255; else the min–max of the frame;
4. MONOCHROME1 (white = low values) and Presentation LUT Shape ``INVERSE``
   are inverted so that bright means dense, as for MONOCHROME2. (For
   MONOCHROME1 the standard requires the shape ``INVERSE``: both name the same
   inversion, which is applied once.)

Colour images (RGB, YBR_* converted to RGB by pydicom, PALETTE COLOR through
its lookup table) stay RGB. The metadata returned is built from an allow-list
of display fields, so patient identifiers (PatientName, PatientID,
PatientBirthDate, AccessionNumber, InstitutionName …) can never leak into it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.pixels import (
    apply_color_lut,
    apply_modality_lut,
    apply_voi_lut,
    apply_windowing,
    get_decoder,
)
from pydicom.pixels import pixel_array as decode_pixel_array
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from medviz.data.pixels import (
    MAX_PIXELS,
    DecodedImage,
    one_line,
    read_source,
    stretch_to_uint8,
)
from medviz.errors import DataError


def read_dicom(
    source: bytes | str | Path,
    *,
    name: str | None = None,
    max_pixels: int = MAX_PIXELS,
    frame: int | None = None,
) -> DecodedImage:
    """Decode one frame of a DICOM file to ``uint8`` display pixels.

    Args:
        source: File bytes or a path.
        name: Name used in error messages (default: the path).
        max_pixels: Largest accepted rows × columns of one frame.
        frame: Zero-based frame of a multi-frame file; ``None`` takes the
            middle one (``frames // 2``). A single-frame file accepts 0.

    Returns:
        A :class:`DecodedImage` with ``(H, W)`` (monochrome) or ``(H, W, 3)``
        (colour) ``uint8`` pixels and mode ``"DICOM:<photometric>"``. Its
        ``meta`` holds ``format``, ``modality``, ``photometric_interpretation``,
        ``window`` (``None`` for colour), ``frames`` (the file's frame
        count), ``frame_used`` (zero-based), ``inverted`` (why the grey scale
        was flipped, or ``None``), ``transfer_syntax``, ``bits_stored`` and,
        when present, ``rescale``.

    Raises:
        DataError: Not DICOM, no pixel data, truncated, too large, a frame
            outside the file, or a compressed transfer syntax no installed
            package can decode (the message names the syntax and the packages
            that would).
    """
    data, label = read_source(source, name)
    ds = _read_header(data, label, stop_before_pixels=False)
    has_pixels = "PixelData" in ds
    if not has_pixels:
        sop = ds.get("SOPClassUID")
        kind = f"a {UID(sop).name} object" if sop else "not a DICOM image"
        raise DataError(f"{label}: DICOM file has no Pixel Data ({kind}); expected an image")

    syntax = _transfer_syntax(ds)
    try:
        rows, columns = int(ds.Rows), int(ds.Columns)
    except (AttributeError, TypeError, ValueError) as exc:
        raise DataError(
            f"{label}: DICOM image without valid Rows/Columns ({one_line(exc)})"
        ) from exc
    if rows * columns > max_pixels:
        raise DataError(
            f"{label}: DICOM frame is too large ({columns}x{rows}); at most "
            f"{max_pixels:,} pixels are allowed"
        )
    frames = max(_int(ds.get("NumberOfFrames"), 1), 1)
    index = frames // 2 if frame is None else int(frame)
    if not 0 <= index < frames:
        raise DataError(
            f"{label}: frame {frame} does not exist; the file has {frames} frame(s), "
            f"numbered 0 to {frames - 1}"
        )
    raw = _decode_frame(ds, syntax, index if frames > 1 else None, label)

    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    meta: dict[str, object] = {
        "format": "DICOM",
        "modality": str(ds.get("Modality", "")) or None,
        "photometric_interpretation": photometric,
        "window": None,
        "frames": frames,
        "frame_used": index,
        "inverted": None,
        "transfer_syntax": syntax.name,
        "bits_stored": _int(ds.get("BitsStored"), 0) or None,
    }
    if "RescaleSlope" in ds or "RescaleIntercept" in ds:
        meta["rescale"] = {
            "slope": float(ds.get("RescaleSlope", 1) or 1),
            "intercept": float(ds.get("RescaleIntercept", 0) or 0),
        }
    try:
        if photometric == "PALETTE COLOR":
            pixels = _palette(raw, ds)
        elif photometric.startswith("MONOCHROME") or raw.ndim == 2:
            pixels, window = _monochrome(raw, ds)
            shape = str(ds.get("PresentationLUTShape", "") or "").strip().upper()
            if photometric == "MONOCHROME1" or shape == "INVERSE":
                pixels = 255 - pixels
                meta["inverted"] = (
                    "MONOCHROME1" if photometric == "MONOCHROME1" else "Presentation LUT INVERSE"
                )
            meta["window"] = window
        else:
            pixels = _colour(raw, ds)
    except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise DataError(
            f"{label}: inconsistent DICOM display attributes ({one_line(exc)})"
        ) from exc
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    pixels.setflags(write=False)
    return DecodedImage(
        pixels=pixels,
        mode=f"DICOM:{photometric}",
        size=(pixels.shape[1], pixels.shape[0]),
        meta=meta,
    )


def dicom_frame_count(source: bytes | str | Path, *, name: str | None = None) -> int:
    """Number of frames of a DICOM image, read from its header only (no pixel decoding).

    Args:
        source: File bytes or a path.
        name: Name used in error messages (default: the path).

    Returns:
        ``NumberOfFrames`` (1 when absent or empty).

    Raises:
        DataError: Not a readable DICOM image.
    """
    data, label = read_source(source, name)
    ds = _read_header(data, label, stop_before_pixels=True)
    if "Rows" not in ds:
        raise DataError(f"{label}: not a readable DICOM file (no image Rows in its header)")
    return max(_int(ds.get("NumberOfFrames"), 1), 1)


def _read_header(data: bytes, label: str, *, stop_before_pixels: bool) -> DicomDataset:
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True, stop_before_pixels=stop_before_pixels)
        ds.get("NumberOfFrames")  # force=True parses lazily: touch it to surface errors here
    except Exception as exc:  # pydicom raises many types on corrupt headers
        raise DataError(f"{label}: not a readable DICOM file ({one_line(exc)})") from exc
    return ds


def _int(value: object, default: int) -> int:
    """``int(value)``, or ``default`` for a missing or empty element."""
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return default


def _transfer_syntax(ds: DicomDataset) -> UID:
    """The file's transfer syntax, recorded in ``ds.file_meta`` when the file lacked it.

    Files without meta information (no preamble, as old scanners wrote them)
    are uncompressed; pydicom found their encoding while reading, and its
    pixel decoder needs it spelled out as a transfer syntax.
    """
    meta = getattr(ds, "file_meta", None)
    uid = meta.get("TransferSyntaxUID") if meta is not None else None
    if uid:
        return UID(uid)
    implicit, little = ds.original_encoding
    if implicit or implicit is None:
        syntax = ImplicitVRLittleEndian
    else:
        syntax = ExplicitVRLittleEndian if little or little is None else ExplicitVRBigEndian
    if meta is None:
        ds.file_meta = meta = FileMetaDataset()
    meta.TransferSyntaxUID = syntax
    return syntax


def _decoder_hint(syntax: UID) -> str:
    """Which packages would decode ``syntax``, as pip requirements."""
    try:
        missing = get_decoder(syntax).missing_dependencies
    except (NotImplementedError, ValueError):
        return "no known Python decoder"
    options = []
    for line in missing:  # e.g. "pylibjpeg - requires pylibjpeg>=2.0 and pylibjpeg-libjpeg>=2.1"
        requirement = line.split("requires", 1)[-1].strip().replace("numpy and ", "")
        options.append(requirement.replace("gdcm>=", "python-gdcm>=", 1))
    return " or ".join(options) if options else "a DICOM decoder plugin"


def _decode_frame(ds: DicomDataset, syntax: UID, index: int | None, label: str) -> np.ndarray:
    """Decode one frame (``index``) or the only frame (``None``) of ``ds``."""
    if syntax.is_compressed:
        try:
            available = get_decoder(syntax).is_available
        except (NotImplementedError, ValueError):
            available = False
        if not available:
            raise DataError(
                f"{label}: DICOM transfer syntax '{syntax.name}' ({syntax}) is compressed and "
                f"no installed package decodes it; install {_decoder_hint(syntax)}"
            )
    try:
        return decode_pixel_array(ds, index=index)
    except RuntimeError as exc:  # every available plugin failed, e.g. 12-bit JPEG in Pillow
        reason = one_line(exc).replace(
            "Unable to decode as exceptions were raised by all available plugins: ", ""
        )
        raise DataError(
            f"{label}: could not decode DICOM transfer syntax '{syntax.name}' ({reason}); "
            f"install {_decoder_hint(syntax)}"
        ) from exc
    except Exception as exc:  # short pixel data raises ValueError, broken streams others
        raise DataError(
            f"{label}: DICOM pixel data is truncated or corrupt ({one_line(exc)})"
        ) from exc


def _first(value: object) -> float:
    """First value of a possibly multi-valued DICOM number."""
    if isinstance(value, MultiValue | list | tuple):
        value = value[0]
    return float(value)  # type: ignore[arg-type]


def _monochrome(raw: np.ndarray, ds: DicomDataset) -> tuple[np.ndarray, dict[str, object]]:
    """Modality LUT then VOI of a grayscale frame; returns ``(H, W)`` uint8 and the window."""
    values = np.asarray(apply_modality_lut(raw, ds), dtype=np.float64)
    if "VOILUTSequence" in ds:
        lut = ds.VOILUTSequence[0]
        bits = int(lut.LUTDescriptor[2])
        # A lookup table is indexed by whole numbers; pydicom warns on floats.
        out = apply_voi_lut(np.rint(values).astype(np.int64), ds, index=0, prefer_lut=True)
        return stretch_to_uint8(out, 0, 2**bits - 1), {"source": "VOI LUT"}
    centre, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").strip().upper()
    # pydicom refuses LINEAR windows narrower than 1 and others of width <= 0.
    if (
        centre is not None
        and width is not None
        and (_first(width) >= 1 if function == "LINEAR" else _first(width) > 0)
    ):
        c, w = _first(centre), _first(width)
        windowed = apply_windowing(values, ds, index=0)
        # pydicom maps the window onto the stored (or rescaled) value range; windowing the
        # extremes gives that range, which becomes 0-255.
        with np.errstate(over="ignore"):
            low, high = apply_windowing(np.array([-1e300, 1e300]), ds, index=0)
        pixels = stretch_to_uint8(windowed, float(low), float(high))
        return pixels, {"centre": c, "width": w, "function": function, "source": "file"}
    finite = values[np.isfinite(values)]
    low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    window = {"centre": (low + high) / 2, "width": high - low, "function": "LINEAR"}
    return stretch_to_uint8(values, low, high), {**window, "source": "min-max of the frame"}


def _palette(raw: np.ndarray, ds: DicomDataset) -> np.ndarray:
    """PALETTE COLOR frame through its lookup table, ``(H, W, 3)`` uint8."""
    rgb = apply_color_lut(raw, ds)
    bits = int(ds.RedPaletteColorLookupTableDescriptor[2])
    return stretch_to_uint8(rgb, 0, 2**bits - 1) if bits > 8 else rgb.astype(np.uint8)


def _colour(raw: np.ndarray, ds: DicomDataset) -> np.ndarray:
    """RGB frame (pydicom already converted YBR to RGB), ``(H, W, 3)`` uint8."""
    if raw.dtype == np.uint8:
        return raw
    bits = _int(ds.get("BitsStored"), 8 * raw.dtype.itemsize)
    return stretch_to_uint8(raw, 0, 2**bits - 1)
