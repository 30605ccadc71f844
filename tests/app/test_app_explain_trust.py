"""Explain page: a verdict under every heatmap, and localisation only on matching data."""

from __future__ import annotations

from app_helpers import app_state, assert_clean, goto, texts

from medviz.ui.state import DatasetChoice

VERDICTS = ("Do not trust this map", "No check failed", "Not checked")


def test_every_heatmap_has_a_verdict(default_model):
    app = default_model
    goto(app, "explain")
    assert_clean(app)
    lines = [e.value for e in (*app.caption, *app.markdown)]
    verdicts = [line for line in lines if any(v in line for v in VERDICTS)]
    methods = app.multiselect(key="explain_methods").value
    assert len(verdicts) == len(methods) >= 2, lines


def test_localisation_says_why_the_active_dataset_cannot_be_used(default_model):
    app = default_model
    goto(app, "explain")
    app.segmented_control(key="explain_view").set_value("Trust checks")
    for source, why in (
        ("brain-mri", "has no lesion masks or boxes"),
        ("brain-tumor-boxes", "does not match the active model"),
    ):
        app_state(app).dataset = DatasetChoice(kind="registry", source=source, label=source)
        app.run()
        assert_clean(app)
        assert app.button(key="trust_loc").disabled, source
        info = " ".join(i.value for i in app.info)
        assert why in info, info
        if source == "brain-tumor-boxes":
            assert "glioma" in info and "microcalcification" in info  # both class lists
    app.button(key="trust_agree").click()
    app.run()
    assert_clean(app)
    shown = texts(app)
    assert "Method agreement across families" in shown and "Occlusion" in shown
