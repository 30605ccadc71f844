"""What image decoding and DICOM reading share: the decoded-image type and pixel helpers.

:mod:`medviz.data.images` (Pillow formats) and :mod:`medviz.data.dicom` (pydicom)
both build on this module; neither imports the other at import time, so pydicom is
only loaded when the first DICOM file is decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medviz.errors import DataError

MAX_PIXELS = 50_000_000
"""Largest accepted width × height (50 megapixels, about 7000 × 7000)."""


@dataclass(frozen=True)
class DecodedImage:
    """One decoded image at native resolution.

    Attributes:
        pixels: ``(H, W)`` grayscale or ``(H, W, 3)`` RGB ``uint8`` array
            (read-only), already oriented for display.
        mode: The mode as stored, e.g. ``"L"``, ``"RGB"``, ``"RGBA"``, ``"P"``,
            ``"I;16"``, ``"CMYK"`` or ``"DICOM:MONOCHROME1"``.
        size: ``(width, height)`` of ``pixels``.
        meta: Display information only (format, frames, orientation applied;
            for DICOM modality, window, photometric interpretation, transfer
            syntax). Never patient identifiers.
    """

    pixels: np.ndarray
    mode: str
    size: tuple[int, int]
    meta: dict[str, object] = field(default_factory=dict)


def one_line(exc: BaseException, limit: int = 300) -> str:
    """An exception's text on one line (whitespace collapsed), at most ``limit`` characters.

    Decoder libraries raise multi-line messages; a user-facing message stays one line.
    """
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_dicom_bytes(data: bytes) -> bool:
    """Whether ``data`` carries the DICOM ``DICM`` magic at offset 128."""
    return len(data) >= 132 and data[128:132] == b"DICM"


def read_source(source: bytes | bytearray | str | Path, name: str | None) -> tuple[bytes, str]:
    """Return the bytes of ``source`` and a label naming it in messages.

    Raises:
        DataError: The file cannot be read.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source), name or "<image bytes>"
    path = Path(source)
    label = name or str(path)
    try:
        return path.read_bytes(), label
    except OSError as exc:
        raise DataError(f"{label}: cannot read the file ({exc.strerror or exc})") from exc


def stretch_to_uint8(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Map ``[low, high]`` linearly onto 0–255, clipping outside; NaN becomes 0.

    Args:
        values: Array of any shape and numeric dtype.
        low: Value that becomes 0.
        high: Value that becomes 255; when ``high <= low`` the result is all 0.

    Returns:
        ``uint8`` array of the same shape.
    """
    if not high > low:
        return np.zeros(values.shape, dtype=np.uint8)
    scaled = (np.asarray(values, dtype=np.float64) - low) / (high - low) * 255.0
    return np.nan_to_num(np.clip(np.rint(scaled), 0, 255), nan=0.0).astype(np.uint8)
