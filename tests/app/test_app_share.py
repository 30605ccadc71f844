"""Models page: export downloads, the Hub push form (token from the server only), Hub revision."""

from __future__ import annotations

from app_helpers import assert_clean, goto, texts

TOKEN = "hf_apptesttoken0123456789wxyz"


def _button(app, key_start: str, key_end: str):
    return next(
        b for b in app.button if (b.key or "").startswith(key_start) and b.key.endswith(key_end)
    )


def test_export_builds_checks_and_offers_a_download(default_model):
    app = goto(default_model, "models")
    assert_clean(app)
    assert "Export (SavedModel, LiteRT, ONNX)" in texts(app)
    assert not [b for b in app.get("download_button") if "models_export_litert" in (b.key or "")]
    _button(app, "models_export_litert_", "_build").click()
    app.run()
    assert_clean(app)
    shown = texts(app)
    assert "same probabilities: max |Δp|" in shown and "on 8 images" in shown
    downloads = [b for b in app.get("download_button") if "models_export_litert" in (b.key or "")]
    assert len(downloads) == 1, "the built export is offered for download"
    assert _button(app, "models_export_onnx_", "_build"), "other formats wait for their click"


def test_push_uses_the_server_token_and_fails_offline_in_one_line(default_model, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)  # the tests run with HF_HUB_OFFLINE=1
    app = goto(default_model, "models")
    shown = texts(app)
    assert "Token hf_…wxyz from the HF_TOKEN environment variable" in shown
    assert TOKEN not in shown
    assert not [t for t in app.text_input if "token" in (t.label or "").lower()]
    app.text_input(key="models_push_repo").set_value("someone/medviz-test")
    next(b for b in app.button if b.label == "Push to the Hub").click()
    app.run()
    assert_clean(app, errors_allowed=True)
    assert len(app.error) == 1
    message = app.error[0].value
    assert "offline mode is on" in message and "\n" not in message


def test_push_without_a_token_is_disabled(default_model, monkeypatch, tmp_path):
    import huggingface_hub.constants as constants

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "stored"))
    app = goto(default_model, "models")
    assert "Pushing needs a Hugging Face token" in texts(app)
    assert next(b for b in app.button if b.label == "Push to the Hub").disabled


def test_hub_fetch_passes_the_revision(app):
    app = goto(app, "models")
    app.text_input(key="models_hub_repo").set_value("medviz/not-cached")
    app.text_input(key="models_hub_revision").set_value("v1.2")
    app.button(key="models_hub_go").click()
    app.run()
    assert_clean(app, errors_allowed=True)
    assert "at revision 'v1.2' is not in the local cache" in app.error[0].value
