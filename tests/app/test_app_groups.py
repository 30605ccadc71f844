"""AppTest: patient-id pattern on the Data page, and naming numbered classes on Evaluate."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from app_helpers import app_state, assert_clean, goto, texts
from PIL import Image


def _zip(files: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, pixels in files.items():
            png = io.BytesIO()
            Image.fromarray(pixels).save(png, "PNG")
            archive.writestr(name, png.getvalue())
    return buffer.getvalue()


def _scene(seed: int) -> np.ndarray:
    coarse = np.random.default_rng(seed).integers(0, 256, (6, 6)).astype(np.uint8)
    return np.asarray(Image.fromarray(coarse).resize((32, 32), Image.BICUBIC))


def test_data_page_groups_patients_by_pattern(app):
    files = {
        f"{'ab'[p % 2]}/person{p}_x_{shot}.png": _scene(10 * p + shot)
        for p in range(12)
        for shot in range(3)
    }
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("zip")
    app.run()
    app.file_uploader(key="data_zip").set_value(("patients.zip", _zip(files), "x"))
    app.number_input(key="data_size_zip_None").set_value(16)
    app.text_input(key="data_group_pattern_zip").set_value(r"(person\d+)_")
    app.button(key="data_load").click()
    app.run()
    assert_clean(app)
    assert app_state(app).dataset.group_pattern == r"(person\d+)_"
    app.segmented_control(key="data_view").set_value("Patients and near-copies")
    app.run()
    assert_clean(app)
    shown = texts(app)
    assert "Patients from file names" in shown and "Groups crossing splits" in shown
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Patients from file names"] == "12"
    assert metrics["Groups of several images"] == "12"
    assert metrics["Groups crossing splits"] == "0"


def test_data_page_bad_pattern_is_an_error(app):
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("zip")
    app.run()
    app.file_uploader(key="data_zip").set_value(("x.zip", _zip({"a/1.png": _scene(1)}), "x"))
    app.text_input(key="data_group_pattern_zip").set_value("person(")
    app.button(key="data_load").click()
    app.run()
    assert_clean(app, errors_allowed=True)
    assert "regular expression" in app.error[0].value


def test_evaluate_names_numbered_classes(default_model):
    from medviz.data.synthetic import generate_microcalc

    app = default_model
    data = generate_microcalc(24, image_size=64, seed=5)
    files = {
        f"{label}/{i}.png": image[..., 0]
        for i, (image, label) in enumerate(zip(data.images, data.labels, strict=True))
    }
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("zip")
    app.run()
    app.file_uploader(key="data_zip").set_value(("numbered.zip", _zip(files), "x"))
    app.number_input(key="data_size_zip_None").set_value(64)
    app.button(key="data_load").click()
    app.run()
    assert_clean(app)
    goto(app, "evaluate")
    picked = app_state(app).dataset.key
    app.selectbox(key="eval_dataset").set_value(picked)
    app.run()
    assert_clean(app, errors_allowed=True)
    assert "class names do not match" in app.error[0].value.lower()
    app.text_input(key=f"eval_classes_{picked}").set_value("normal,microcalcification")
    app.run()
    assert_clean(app)
    assert "AUC" in texts(app)
