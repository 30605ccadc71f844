"""The Experiments page: cards of every experiment, a quick run in the background, the table."""

from __future__ import annotations

from app_helpers import ROOT, app_state, assert_clean, goto, texts, wait_for_job


def test_cards_render_and_a_quick_run_shows_the_comparison(app, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDVIZ_EXPERIMENTS_DIR", str(ROOT / "experiments"))
    monkeypatch.setenv("MEDVIZ_REPRODUCE_QUICK_LIMIT", "10")
    goto(app, "experiments")
    assert_clean(app)
    shown = texts(app)
    # One card per experiment file: title, expected time and the published figure.
    for title in ("SARS-CoV-2 CT", "Mammogram patches", "Chest X-ray pneumonia", "Brain MRI"):
        assert title in shown
    assert "93.8 % accuracy (simple CNN" in shown and "min** on 2 CPU cores" in shown
    assert "no figure recorded" in shown  # the synthetic demo has no published figure

    # The synthetic demo's data is generated, so it always runs. Alone in its folder, so the
    # reruns while waiting draw one card, not ten.
    demo = (ROOT / "experiments" / "synthetic-microcalc-demo.yaml").read_text()
    (tmp_path / "synthetic-microcalc-demo.yaml").write_text(demo)
    monkeypatch.setenv("MEDVIZ_EXPERIMENTS_DIR", str(tmp_path))
    app.toggle(key="experiments_quick").set_value(True)
    app.run()
    app.button(key="experiments_run_synthetic-microcalc-demo").click()
    app.run()
    assert_clean(app)
    job = app_state(app).jobs[0]
    assert job.name == "synthetic-microcalc-demo" and job.config.epochs == 1
    assert "medviz reproduce synthetic-microcalc-demo --quick" in job.command
    wait_for_job(app)
    app.run()
    assert_clean(app)
    assert job.status == "finished", job.error
    shown = texts(app)
    assert "Published vs MedViz" in shown and "pixel-threshold baseline (120)" in shown
    assert "Quick run" in shown
    tables = [d.value for d in app.dataframe if "metric" in d.value.columns]
    assert list(tables[0]["metric"])[:2] == ["accuracy", "auc"]
    assert "MedViz mean ± std (test)" in tables[0].columns
    # The finished model is the session's active model, on the experiment's own data.
    state = app_state(app)
    assert state.active_model == f"trained:{job.id}"
    assert state.dataset is not None and state.dataset.source == "synthetic-microcalc"
    goto(app, "evaluate")
    assert_clean(app)
    assert "AUC" in texts(app)
