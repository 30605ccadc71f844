"""The frame picker for multi-frame DICOM uploads (Classify)."""

from __future__ import annotations

import hashlib

import streamlit as st

from medviz.data.pixels import is_dicom_bytes
from medviz.errors import DataError


def frame_count(name: str, data: bytes) -> int:
    """Frames of an uploaded DICOM file from its header; 1 for other files and unreadable ones.

    An unreadable file is reported by the decode that follows, with its own message.
    """
    if not (is_dicom_bytes(data) or name.lower().endswith((".dcm", ".dicom"))):
        return 1
    from medviz.data.dicom import dicom_frame_count

    try:
        return dicom_frame_count(data, name=name)
    except DataError:
        return 1


def pick_frame(name: str, data: bytes, *, key_prefix: str) -> int | None:
    """A slider over the frames of a multi-frame DICOM file.

    Args:
        name: File name (shown in the label).
        data: File bytes; the widget key derives from their digest, so each file keeps
            its own choice across reruns.
        key_prefix: Page-specific widget key prefix.

    Returns:
        The zero-based frame chosen, or ``None`` for single-frame and non-DICOM files
        (the decoder's default).
    """
    frames = frame_count(name, data)
    if frames < 2:
        return None
    digest = hashlib.sha1(data).hexdigest()[:12]
    shown = st.slider(
        f"Frame of {name} ({frames} frames)",
        min_value=1,
        max_value=frames,
        value=frames // 2 + 1,
        key=f"{key_prefix}_{digest}",
        help="Multi-frame DICOM (cine, volume or dose grid): the model classifies one frame.",
    )
    return int(shown) - 1
