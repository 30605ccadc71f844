"""Bad-inputs catalogue through the front ends: ``medviz predict`` and the app pages.

Awkward-but-valid files get an answer; every invalid file gives one clear message
naming it; nothing shows a traceback; what the session already holds survives.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from app_helpers import (
    app_state,
    assert_clean,
    classify_upload_page,
    goto,
    load_small_dataset,
    make_app,
    texts,
)
from corpus import dataset_cases, encode, zip_of

from medviz.cli import main

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KEY = "shipped:microcalc-synthetic"


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_cli_predict_every_image_case(capsys, shipped_model, image_corpus, corpus_files):
    files = [str(corpus_files[c.name]) for c in image_corpus]
    code = main(["predict", "--model", str(shipped_model), "--json", *files])
    out, err = capsys.readouterr()
    assert code == 3, "some files failed: exit 3"
    rows = _json_lines(out)
    assert [r["file"] for r in rows] == files, "one JSON line per file, in order"
    for case, row in zip(image_corpus, rows, strict=True):
        if case.expect == "valid":
            assert "error" not in row, row
            assert row["prediction"] in ("normal", "microcalcification")
            assert abs(sum(row["probabilities"].values()) - 1) < 1e-3
        else:
            assert set(row) == {"file", "error"}, row
            assert case.name in row["error"] and case.message.lower() in row["error"].lower()
    assert "Traceback" not in out + err


def test_cli_predict_valid_files_exit_0(capsys, shipped_model, image_corpus, corpus_files):
    valid = [str(corpus_files[c.name]) for c in image_corpus if c.expect == "valid"]
    assert main(["predict", "--model", str(shipped_model), *valid]) == 0
    out, _ = capsys.readouterr()
    # One result line per file; warnings (out-of-distribution, modality) follow it, indented.
    results = [line for line in out.splitlines() if not line.startswith(" ")]
    assert len(results) == len(valid)
    assert all(line.startswith("  warning: ") for line in out.splitlines() if line.startswith(" "))


def test_cli_predict_subprocess_exit_codes_and_one_error_line(shipped_model, corpus_files):
    good, bad = corpus_files["1x1.png"], corpus_files["truncated.jpg"]
    # Both processes run at once (each spends seconds importing TensorFlow), checked one by one.
    files = subprocess.Popen(
        [sys.executable, "-m", "medviz", "predict", "--model", str(shipped_model), "--json",
         str(good), str(bad), str(Path(bad).with_name("does-not-exist.png"))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    bad_model = subprocess.Popen(
        [sys.executable, "-m", "medviz", "predict", "--model", str(bad), str(good)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        files_out, files_err = files.communicate(timeout=240)
        _, bad_model_err = bad_model.communicate(timeout=240)
    finally:
        for process in (files, bad_model):
            if process.poll() is None:
                process.kill()
                process.wait()
    assert files.returncode == 3, files_err
    rows = _json_lines(files_out)
    assert "prediction" in rows[0]
    assert "truncated.jpg" in rows[1]["error"] and "truncated" in rows[1]["error"]
    assert "does-not-exist.png" in rows[2]["error"]
    assert "Traceback" not in files_err
    assert bad_model.returncode == 2
    errors = [line for line in bad_model_err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "truncated.jpg" in errors[0], bad_model_err
    assert "Traceback" not in bad_model_err


@pytest.fixture(scope="module")
def classify_app():
    app = classify_upload_page(make_app())
    assert_clean(app)
    return app


def _no_traceback(app) -> None:
    assert not app.exception, [e.value for e in app.exception]
    assert "Traceback" not in texts(app)


def test_classify_page_every_image_case_at_once(classify_app, image_corpus):
    app = classify_app
    app.file_uploader(key="classify_files").set_value(
        [(c.name, c.data, "application/octet-stream") for c in image_corpus]
    )
    app.run()
    _no_traceback(app)
    invalid = [c for c in image_corpus if c.expect == "invalid"]
    messages = [e.value for e in app.error]
    assert len(messages) == len(invalid), messages
    for case, message in zip(invalid, messages, strict=True):
        assert message.count(case.name) >= 1 and case.message.lower() in message.lower()
    table = app.dataframe[0].value
    assert list(table["file"]) == [c.name for c in image_corpus if c.expect == "valid"] + [
        c.name for c in invalid
    ]
    assert app_state(app).active_model == DEFAULT_KEY, "the model survives bad uploads"


def test_classify_page_one_bad_file_then_a_good_one(classify_app, image_corpus):
    app = classify_app
    by_name = {c.name: c for c in image_corpus}
    app.file_uploader(key="classify_files").set_value(
        ("bomb-30000x30000.png", by_name["bomb-30000x30000.png"].data, "image/png")
    )
    app.run()
    _no_traceback(app)
    assert len(app.error) == 1 and "bomb-30000x30000.png" in app.error[0].value
    assert "too large" in app.error[0].value
    assert not app.subheader, "no prediction for a refused file"
    app.file_uploader(key="classify_files").set_value(
        ("monochrome1.dcm", by_name["monochrome1.dcm"].data, "application/dicom")
    )
    app.run()
    assert_clean(app)
    assert app.subheader[0].value.startswith("Prediction: ")
    assert app_state(app).active_model == DEFAULT_KEY


def test_explain_page_bad_upload_is_one_error(classify_app, image_corpus):
    app = classify_app
    goto(app, "explain")
    app.segmented_control(key="explain_source").set_value("upload")
    app.run()
    bad = next(c for c in image_corpus if c.name == "truncated.png")
    app.file_uploader(key="explain_upload").set_value((bad.name, bad.data, "image/png"))
    app.run()
    _no_traceback(app)
    assert len(app.error) == 1 and "truncated.png" in app.error[0].value
    good = next(c for c in image_corpus if c.name == "exif-rotated.jpg")
    app.file_uploader(key="explain_upload").set_value((good.name, good.data, "image/jpeg"))
    app.run()
    assert_clean(app)
    assert app_state(app).active_model == DEFAULT_KEY


def test_data_page_every_archive_case(tmp_path):
    app = make_app()
    load_small_dataset(app, per_class=6, size=16)
    before = app_state(app).dataset
    assert before is not None
    cases = [c for c in dataset_cases(tmp_path) if c.kind in ("zip", "npz")]
    shown = None  # the source the page shows: switched (one extra run) only when it changes

    def choose(kind: str) -> None:
        nonlocal shown
        if kind != shown:
            app.segmented_control(key="data_source").set_value(kind)
            app.run()
            shown = kind

    for case in [c for c in cases if c.expect == "invalid"]:
        choose(case.kind)
        app.file_uploader(key=f"data_{case.kind}").set_value((case.name, case.data, "x"))
        app.button(key="data_load").click()
        app.run()
        _no_traceback(app)
        messages = [e.value for e in app.error]
        assert len(messages) == 1, (case.name, messages)
        assert case.name in messages[0] and case.message.lower() in messages[0].lower(), (
            case.name,
            messages[0],
        )
        assert app_state(app).dataset == before, f"{case.name} replaced the loaded dataset"
        assert any("Health report" in s.value for s in app.subheader), "page still works"
    for case in [c for c in cases if c.expect == "valid"]:
        choose(case.kind)
        app.file_uploader(key=f"data_{case.kind}").set_value((case.name, case.data, "x"))
        app.button(key="data_load").click()
        app.run()
        assert_clean(app)
        assert app_state(app).dataset.label == case.name


def test_upload_size_limits(monkeypatch):
    import tomllib

    from medviz.ui import settings

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] == settings.max_upload_mb() == 200
    monkeypatch.setenv("MEDVIZ_MAX_UPLOAD_MB", "1")
    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 255, (1100, 1100), dtype=np.uint8)
    big_png = encode(Image.fromarray(noise), "PNG", compress_level=0)
    assert len(big_png) > 1024 * 1024
    app = classify_upload_page(make_app())
    app.file_uploader(key="classify_files").set_value(("huge.png", big_png, "image/png"))
    app.run()
    _no_traceback(app)
    assert len(app.error) == 1 and "huge.png" in app.error[0].value
    assert "at most 1 MB" in app.error[0].value
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("zip")
    app.run()
    app.file_uploader(key="data_zip").set_value(("huge.zip", zip_of({"a/x.png": big_png}), "x"))
    app.button(key="data_load").click()
    app.run()
    _no_traceback(app)
    assert len(app.error) == 1 and "huge.zip" in app.error[0].value and "1 MB" in app.error[0].value
    assert app_state(app).dataset is None
    assert app_state(app).active_model == DEFAULT_KEY
