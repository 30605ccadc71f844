"""AppTest: the Data page shows near-duplicate pairs side by side."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from app_helpers import assert_clean, goto, texts
from PIL import Image


def _scene(seed: int, size: int = 64) -> Image.Image:
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (6, 6)).astype(np.uint8))
    smooth = np.asarray(coarse.resize((size, size), Image.BICUBIC), np.float32)
    return Image.fromarray(
        np.clip(smooth + rng.normal(0, 10, smooth.shape), 0, 255).astype(np.uint8)
    )


def _zip(files: dict[str, Image.Image]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, image in files.items():
            encoded = io.BytesIO()
            image.save(encoded, "JPEG" if name.endswith(".jpg") else "PNG")
            archive.writestr(name, encoded.getvalue())
    return buffer.getvalue()


def test_data_page_shows_copies_side_by_side(app):
    original = _scene(0)
    files = {"a/original.png": original, "a/copy.jpg": original.resize((48, 48))}
    files.update({f"{'ab'[k % 2]}/other{k}.png": _scene(k) for k in range(1, 9)})
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("zip")
    app.run()
    app.file_uploader(key="data_zip").set_value(("copies.zip", _zip(files), "x"))
    app.number_input(key="data_size_zip_None").set_value(32)
    app.button(key="data_load").click()
    app.run()
    assert_clean(app)
    app.segmented_control(key="data_view").set_value("Patients and near-copies")
    app.run()
    assert_clean(app)
    assert "1 pair of copies" in texts(app)
    captions = [c for image in app.get("image") for c in image.captions]
    pair = [c for c in captions if c.startswith(("a/original.png", "a/copy.jpg"))]
    assert len(pair) == 2, captions  # the two copies, side by side, named with split and class
