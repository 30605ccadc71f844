"""AppTest: every page renders empty and in its working state, and user errors stay errors."""

from __future__ import annotations

import time
import zipfile
from io import BytesIO

import pytest
from app_helpers import (
    APP,
    PATIENT_ID,
    PATIENT_NAME,
    TIMEOUT,
    app_state,
    assert_clean,
    goto,
    load_small_dataset,
    texts,
    wait_for_job,
)

from medviz.ui.pages import PAGES


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.key)
def test_page_renders_empty(app, page):
    goto(app, page.key)
    assert_clean(app)
    # A page missing from app.py's navigation would show the Home page instead.
    assert app.title and app.title[0].value == page.heading


def test_sidebar_shows_disclaimer_active_model_and_dataset(app):
    # AppTest keeps sidebar elements only on runs without switch_page(); the e2e tests
    # check the sidebar of every page in the browser.
    sidebar = " ".join(str(e.value) for e in [*app.sidebar.markdown, *app.sidebar.caption])
    assert "not for clinical use" in sidebar
    assert "None yet" in sidebar


def test_sidebar_shows_the_active_model_and_dataset():
    from streamlit.testing.v1 import AppTest

    from medviz.ui import cache
    from medviz.ui.state import AppState, default_dataset_choice

    shipped = cache.shipped_entry(cache.shipped_model("microcalc-synthetic"))
    state = AppState(models={shipped.key: shipped}, active_model=shipped.key)
    state.dataset = default_dataset_choice(limit_per_class=10)
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    app.session_state["_medviz_state"] = state
    app.run()
    assert_clean(app)
    sidebar = " ".join(str(e.value) for e in [*app.sidebar.markdown, *app.sidebar.caption])
    assert "microcalc-synthetic" in sidebar and "fast-cnn · 64×64 grey" in sidebar
    assert "synthetic-microcalc" in sidebar and "≤10/class" in sidebar


def test_home_demo_lands_on_classify_with_a_result(app):
    assert "none active" in texts(app)
    app.button(key="run_demo").click()
    app.run()
    assert_clean(app)
    assert app.title[0].value == "Classify"
    assert app.subheader[0].value.startswith("Prediction: ")
    assert any(img for img in app.get("image")), "the model input and Grad-CAM are shown"
    state = app_state(app)
    assert state.active_model == "shipped:microcalc-synthetic"
    assert state.dataset is not None and state.dataset.source == "synthetic-microcalc"


def test_data_embedded_dataset_health_report(app):
    load_small_dataset(app, per_class=10, size=32)
    shown = texts(app)
    assert "Loaded **synthetic-microcalc**" in shown
    assert "Health report" in shown
    assert len(app.get("image")) >= 2 * 8 - 4, "sample grid per class"
    assert app_state(app).dataset.limit_per_class == 10


def test_data_bad_zip_upload_is_an_error_not_an_exception(app):
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("zip")
    app.run()
    app.file_uploader(key="data_zip").set_value(("broken.zip", b"PK\x03\x04 nonsense", "x"))
    app.button(key="data_load").click()
    app.run()
    assert_clean(app, errors_allowed=True)
    assert app.error and "zip" in app.error[0].value.lower()
    assert app_state(app).dataset is None


def test_data_missing_server_folder_is_an_error(app, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIZ_DATA_ROOTS", str(tmp_path))
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("folder")
    app.run()
    app.text_input(key="data_path").set_value(str(tmp_path / "nonexistent" / "medviz-data"))
    app.button(key="data_load").click()
    app.run()
    assert_clean(app, errors_allowed=True)
    assert "no such folder or file" in app.error[0].value


def test_augment_preview_and_settings_reach_training(app):
    load_small_dataset(app)
    goto(app, "augment")
    assert_clean(app)
    assert len(app.get("image")) == 24, "2 images × 2 classes × (original + 5 augmented)"
    app.slider(key="aug_rotation_deg").set_value(10.0)
    app.button(key="aug_reshuffle").click()
    app.run()
    assert_clean(app)
    assert app_state(app).augment.rotation_deg == 10.0
    notes = texts(app)
    assert "mirror images" in notes, "each augmentation shows its realism note (mammography)"


def test_two_sessions_train_at_once_and_never_see_each_other(app, new_app):
    alice, bob = app, new_app()
    for session, name in ((alice, "Alice's run"), (bob, "Bob's run")):
        load_small_dataset(session)
        goto(session, "train")
        assert_clean(session)
        assert "parameters" in texts(session)
        session.number_input(key="train_epochs").set_value(2)
        session.text_input(key="train_title_fast-cnn").set_value(name)
        session.button(key="train_start").click()
        session.run()
        assert_clean(session)
    alice_job, bob_job = app_state(alice).jobs[0], app_state(bob).jobs[0]
    assert alice_job.running or bob_job.running, "both were started"
    assert app_state(alice).jobs == [alice_job] and app_state(bob).jobs == [bob_job]
    assert "Bob" not in texts(alice) and "Alice" not in texts(bob)

    wait_for_job(alice)
    wait_for_job(bob)
    for session, job, other in ((alice, alice_job, "Bob"), (bob, bob_job, "Alice")):
        assert_clean(session)
        assert job.status == "finished", job.error
        state = app_state(session)
        assert state.active_model == f"trained:{job.id}"
        assert list(state.models) == [f"trained:{job.id}"], "only its own model"
        assert state.models[f"trained:{job.id}"].card.training["epochs_run"] == 2
        assert any("is ready" in s.value for s in session.success)
        goto(session, "models")
        assert other not in texts(session)


def test_train_stop_keeps_the_best_model(app, monkeypatch):
    monkeypatch.setenv("MEDVIZ_MAX_EPOCHS", "60")
    load_small_dataset(app, per_class=12, size=32)
    goto(app, "train")
    app.number_input(key="train_epochs").set_value(60)
    app.number_input(key="train_early").set_value(0)
    app.button(key="train_start").click()
    app.run()
    job = app_state(app).jobs[0]
    # Wait for the first epoch (without hammering the GIL with reruns), then press Stop.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and job.running and not job.snapshot().history:
        time.sleep(0.1)
    app.run()
    assert job.running, "60 epochs must not be over after one"
    app.button(key=f"train_stop_{job.id}").click()
    app.run()
    wait_for_job(app)
    assert_clean(app)
    assert job.status == "stopped"
    assert job.best is not None and job.best.result.stopped_by_user
    assert job.best.result.epochs_run < 60
    assert app_state(app).active_model == f"trained:{job.id}"


def test_classify_offers_the_shipped_default_model_in_one_click(app):
    goto(app, "classify")
    assert_clean(app)
    assert app_state(app).active_model is None
    assert any("No model is active" in i.value for i in app.info)
    app.button(key="use_default").click()
    app.run()
    assert_clean(app)
    assert app.title[0].value == "Classify"
    state = app_state(app)
    assert state.active_model == "shipped:microcalc-synthetic"
    assert list(state.models) == ["shipped:microcalc-synthetic"]
    assert not any("No model is active" in i.value for i in app.info)


def test_evaluate_shipped_model(default_model):
    app = default_model
    goto(app, "evaluate")
    assert_clean(app)
    shown = texts(app)
    assert "AUC" in shown and "Sensitivity" in shown
    app.slider(key="eval_threshold").set_value(0.3)
    app.run()
    assert_clean(app)
    app.selectbox(key="eval_cell").set_value((0, 0))  # true normal → predicted normal
    app.run()
    assert_clean(app)
    assert "True normal, predicted normal" in texts(app)
    assert len(app.get("image")) > 0, "the images of the chosen cell"


def test_evaluate_stress_section_runs_on_a_click(default_model, monkeypatch):
    monkeypatch.setenv("MEDVIZ_STRESS_IMAGES", "16")  # a small sample: the test stays quick
    app = default_model
    goto(app, "evaluate")
    assert_clean(app)
    assert "How robust is it?" in texts(app)
    assert "Worst shift" not in texts(app)  # nothing runs before the click
    charts = len(app.get("plotly_chart"))
    app.button(key="eval_stress_run").click()
    app.run()
    assert_clean(app)
    shown = texts(app)
    assert "Clean accuracy" in shown and "Worst shift" in shown
    assert "Gaussian blur" in shown  # the table names every shift
    assert len(app.get("plotly_chart")) == charts + 1
    stored = app_state(app).selections["evaluate_stress"].value
    assert stored.split == "test" and stored.images == 16
    app.run()  # a rerun keeps the result (cached) without another click
    assert_clean(app)
    assert "Worst shift" in texts(app)


def test_evaluate_wrong_data_for_the_model_is_an_error(default_model, mismatched_zip):
    app = default_model
    goto(app, "data")
    app.segmented_control(key="data_source").set_value("zip")
    app.run()
    app.file_uploader(key="data_zip").set_value(("pets.zip", mismatched_zip, "application/zip"))
    app.number_input(key="data_size_zip_None").set_value(32)
    app.button(key="data_load").click()
    app.run()
    assert_clean(app)
    goto(app, "evaluate")
    assert any("pets.zip — your dataset" in o for o in app.selectbox(key="eval_dataset").options)
    app.selectbox(key="eval_dataset").set_value(app_state(app).dataset.key)
    app.run()
    assert_clean(app, errors_allowed=True)
    message = app.error[0].value
    assert "class names do not match" in message.lower() and "cat" in message


def test_classify_upload_png_dicom_and_bad_file(default_model, png_bytes, dicom_ct_bytes):
    app = default_model
    goto(app, "classify")
    app.segmented_control(key="classify_source").set_value("upload")
    app.run()
    app.file_uploader(key="classify_files").set_value(
        [
            ("patch.png", png_bytes, "image/png"),
            ("ct-slice.dcm", dicom_ct_bytes, "application/dicom"),
            ("broken.png", b"\x89PNG not really", "image/png"),
        ]
    )
    app.run()
    assert_clean(app, errors_allowed=True)
    assert len(app.error) == 1 and "broken.png" in app.error[0].value
    table = app.dataframe[0].value
    assert list(table["file"]) == ["patch.png", "ct-slice.dcm", "broken.png"]
    assert app.get("download_button"), "results as CSV"
    app.selectbox(key="classify_detail").set_value("ct-slice.dcm")
    app.run()
    shown = texts(app)
    assert "Modality CT" in shown, "DICOM modality mismatch warning"
    assert "CT" in shown and "window" in shown, "modality and windowing shown"
    for secret in (PATIENT_NAME, "Secretpatient", PATIENT_ID, "19700101", "Secret General"):
        assert secret not in shown, f"patient identifier {secret!r} leaked"


def test_classify_single_upload_shows_prediction_and_gradcam(default_model, png_bytes):
    app = default_model
    goto(app, "classify")
    app.segmented_control(key="classify_source").set_value("upload")
    app.run()
    app.file_uploader(key="classify_files").set_value(("patch.png", png_bytes, "image/png"))
    app.run()
    assert_clean(app)
    assert app.subheader[0].value.startswith("Prediction: ")
    assert app.slider(key="classify_opacity").value == 0.45
    app.slider(key="classify_opacity").set_value(0.8)
    app.run()
    assert_clean(app)
    assert "Colour legend" in texts(app)


def test_explain_methods_side_by_side_and_synthesis(default_model):
    app = default_model
    goto(app, "explain")
    assert_clean(app)
    shown = texts(app)
    for title in ("Grad-CAM", "Grad-CAM++", "Score-CAM", "Vanilla saliency", "SmoothGrad"):
        assert title in shown
    for view in ("Feature maps", "First-layer filters"):
        app.segmented_control(key="explain_view").set_value(view)
        app.run()
        assert_clean(app)
        assert app.get("image"), view
    app.segmented_control(key="explain_view").set_value("Activation maximisation")
    app.run()
    app.button(key="am_run").click()
    app.run()
    assert_clean(app)
    assert "maximises class 1" in texts(app)
    app.segmented_control(key="explain_view").set_value("Deep dream")
    app.run()
    app.button(key="dd_run").click()
    app.run()
    assert_clean(app)
    assert "dream of" in texts(app)
    app.segmented_control(key="explain_view").set_value("Trust checks")
    app.run()
    for button in ("trust_sanity", "trust_agree", "trust_loc"):
        app.button(key=button).click()
        app.run()
        assert_clean(app)
    shown = texts(app)
    assert "Sanity check" in shown and "Method agreement" in shown
    assert "Pointing game hit rate" in shown


def test_models_library_download_upload_and_hub(default_model):
    app = default_model
    goto(app, "models")
    assert_clean(app)
    assert "microcalc-synthetic" in texts(app)
    assert app.get("download_button")
    zipped = app_state(app).models["shipped:microcalc-synthetic"]
    from medviz.ui import cache

    names = zipfile.ZipFile(BytesIO(cache._zip_folder(zipped.path))).namelist()
    assert sorted(n.split("/")[-1] for n in names) == ["README.md", "card.json", "model.keras"]

    # A .keras upload that is not a model: a clear error.
    app.file_uploader(key="models_upload").set_value(("evil.keras", b"not a zip", "x"))
    app.run()
    app.button(key="models_upload_load").click()
    app.run()
    assert_clean(app, errors_allowed=True)
    assert "evil" in app.error[0].value or "could not load" in app.error[0].value.lower()

    # Hub: an invalid id, then a valid one while offline.
    app.text_input(key="models_hub_repo").set_value("not a repo id")
    app.button(key="models_hub_go").click()
    app.run()
    assert "invalid hugging face repo id" in app.error[0].value.lower()
    app.text_input(key="models_hub_repo").set_value("medviz/does-not-exist")
    app.button(key="models_hub_go").click()
    app.run()
    assert_clean(app, errors_allowed=True)
    assert "offline" in app.error[0].value.lower() or "cannot be reached" in app.error[0].value


def test_models_upload_real_keras_file(app):
    from medviz.ui import settings

    model_file = settings.models_dir() / settings.DEFAULT_MODEL / "model.keras"
    card_file = model_file.with_name("card.json")
    goto(app, "models")
    app.file_uploader(key="models_upload").set_value(
        ("mine.keras", model_file.read_bytes(), "application/octet-stream")
    )
    app.file_uploader(key="models_upload_card").set_value(
        ("card.json", card_file.read_bytes(), "application/json")
    )
    app.run()
    app.button(key="models_upload_load").click()
    app.run()
    assert_clean(app)
    entry = app_state(app).models[app_state(app).active_model]
    assert entry.origin == "uploaded"
    assert entry.card.class_names == ("normal", "microcalcification")


def test_demo_mode_hides_paths_and_uploads(monkeypatch, new_app):
    monkeypatch.setenv("MEDVIZ_DEMO", "1")
    app = new_app()
    assert_clean(app)
    assert app_state(app).active_model == "shipped:microcalc-synthetic", "preloaded"
    goto(app, "data")
    assert "folder" not in app.segmented_control(key="data_source").options
    goto(app, "models")
    assert_clean(app)
    shown = texts(app)
    assert "Upload a Keras 3" not in shown and "Hugging Face Hub" not in shown
    goto(app, "classify")
    assert_clean(app)


def _shipped_names() -> list[str]:
    from medviz.ui import cache

    return [m.name for m in cache.shipped_models() if m.card is not None]


@pytest.mark.parametrize("name", _shipped_names())
def test_every_shipped_model_activates_and_classifies(app, name):
    goto(app, "models")
    app.button(key=f"models_activate_{name}").click()
    app.run()
    assert_clean(app)
    assert app_state(app).active_model == f"shipped:{name}"
    goto(app, "classify")
    assert_clean(app)
    if "examples" in app.segmented_control(key="classify_source").options:
        app.segmented_control(key="classify_source").set_value("examples")
        app.run()
        assert_clean(app)
        assert app.subheader[0].value.startswith("Prediction: ")
