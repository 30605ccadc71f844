"""Uploaded bytes into arrays: one image to classify, or a whole dataset file.

The app's upload widgets hand over ``(name, bytes)``; these functions turn them
into a :class:`~medviz.data.DecodedImage` (PNG, JPEG, BMP, TIFF, PGM, GIF,
DICOM) or a :class:`~medviz.data.Dataset` (a zip of class folders, or an
``.npz``), naming the uploaded file in every error.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from medviz.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import Dataset, DecodedImage


def decode_upload(data: bytes, *, name: str, max_mb: int, frame: int | None = None) -> DecodedImage:
    """Decode an uploaded image, refusing files over ``max_mb`` megabytes.

    Args:
        data: The file's bytes.
        name: The file name (messages name it; DICOM is also recognised by content).
        max_mb: Largest accepted size in megabytes.
        frame: Zero-based frame of a multi-frame DICOM file (``None``: the middle one).

    Returns:
        The decoded image: ``pixels`` ``(H, W)`` or ``(H, W, 3)``, mode and display-safe meta.

    Raises:
        DataError: Too large, empty, or not a supported image.
    """
    from medviz.data import decode_image

    if len(data) > max_mb * 1024 * 1024:
        raise DataError(
            f"{name}: the file is {len(data) / 1e6:.1f} MB; at most {max_mb} MB are accepted"
        )
    return decode_image(data, name=name, frame=frame)


def load_uploaded_dataset(
    data: bytes,
    *,
    name: str,
    image_size: int | None = None,
    channels: int | None = None,
    limit_per_class: int | None = None,
    seed: int = 0,
    group_pattern: str | None = None,
) -> Dataset:
    """An uploaded dataset file: ``.npz`` arrays, else a zip of class folders.

    Args:
        data: The file's bytes.
        name: The uploaded file's name (its stem names the dataset; messages name the file).
        image_size: Side length to resize to (``None``: the npz's own size, a zip's default).
        channels: 1 or 3 (``None``: 1).
        limit_per_class: Cap of images per class and split.
        seed: Seed of the splits the file lacks.
        group_pattern: Regular expression reading patient ids from file names.

    Returns:
        The dataset, images ``(N, S, S, C)`` uint8.

    Raises:
        DataError: Unreadable archive or arrays, or unusable contents.
    """
    from medviz.data import DEFAULT_IMAGE_SIZE, load_npz, load_zip

    common = {
        "channels": channels or 1,
        "seed": seed,
        "limit_per_class": limit_per_class,
        "name": Path(name).stem,
        "origin": name,  # messages name the uploaded file
        "group_pattern": group_pattern,
    }
    if name.lower().endswith(".npz"):
        return load_npz(data, image_size=image_size, **common)
    return load_zip(data, image_size=image_size or DEFAULT_IMAGE_SIZE, **common)
