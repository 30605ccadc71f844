"""AppTest of the Shortcut lab page: its controls, a tiny run to the results, and Stop."""

from __future__ import annotations

import time

import pytest
from app_helpers import app_state, assert_clean, goto, texts


@pytest.fixture
def lab(app, monkeypatch):
    monkeypatch.setenv("MEDVIZ_SHORTCUT_LIMIT", "20")  # 40 embedded images: seconds per model
    goto(app, "shortcuts")
    assert_clean(app)
    return app


def job_of(at):
    kept = app_state(at).selections.get("shortcut_job")
    return None if kept is None else kept.value


def wait_until_done(at, job, *, timeout: float = 150.0) -> None:
    assert job.join(timeout=timeout), "the lab did not finish in time"
    at.run()


def test_controls_preview_and_expected_time(lab):
    data = lab.selectbox(key="shortcut_data")
    assert data.value.startswith("registry:synthetic-microcalc"), "the embedded data comes first"
    assert lab.selectbox(key="shortcut_class_" + data.value).value == "microcalcification"
    assert lab.selectbox(key="shortcut_marker").options == [
        "corner tag (letter)",
        "border",
        "brightness offset",
    ]
    assert lab.slider(key="shortcut_fraction").value == 100
    assert lab.selectbox(key="shortcut_control").value == "random"
    shown = texts(lab)
    assert "Expected time" in shown and "28 training images" in shown
    assert "cannot show" in shown, "the two sentences on what the lab shows and cannot show"
    assert len(lab.get("imgs")) >= 1 or len(lab.get("image")) >= 1, "marker preview"
    lab.selectbox(key="shortcut_marker").set_value("border")
    lab.run()
    assert_clean(lab)
    assert "border" in texts(lab)


def test_a_tiny_run_shows_both_models_side_by_side(lab):
    lab.number_input(key="shortcut_epochs").set_value(1)
    lab.slider(key="shortcut_fraction").set_value(50)
    lab.selectbox(key="shortcut_control").set_value("none")
    lab.button(key="shortcut_start").click()
    lab.run()
    assert_clean(lab)
    job = job_of(lab)
    assert job is not None and job.fraction == 0.5 and job.config.epochs == 1
    assert job.control == "none"
    wait_until_done(lab, job)
    assert_clean(lab)
    assert job.status == "finished", job.error
    result = job.result
    assert result is not None and result.n_marked > 0
    metrics = {m.label: m.value for m in lab.metric}
    assert metrics["Reliance score · with marker"] == f"{result.shortcut.reliance:+.2f}"
    assert metrics["Reliance score · control"] == f"{result.clean.reliance:+.2f}"
    assert len(lab.get("plotly_chart")) >= 2, "accuracy bars and the Grad-CAM grid"
    assert "Grad-CAM mass on the marker" in texts(lab)


def test_stop_ends_the_run(lab, monkeypatch):
    monkeypatch.setenv("MEDVIZ_MAX_EPOCHS", "30")
    lab.run()
    lab.number_input(key="shortcut_epochs").set_value(30)
    lab.button(key="shortcut_start").click()
    lab.run()
    job = job_of(lab)
    deadline = time.monotonic() + 90
    while job.running and not job.snapshot().history and time.monotonic() < deadline:
        time.sleep(0.1)
    lab.run()
    assert job.running, "30 epochs must not be over after one"
    lab.button(key=f"shortcut_stop_{job.id}").click()
    lab.run()
    wait_until_done(lab, job)
    assert_clean(lab, errors_allowed=False)
    assert job.status == "stopped"
    assert job.result is None and "nothing to compare" in (job.error or "")
    assert any("nothing to compare" in w.value for w in lab.warning)
