"""AppTest, Explore: the embedding map of a small embedded split, a selected image sent to
Explain, and a concept test run in the background."""

from __future__ import annotations

import time

from app_helpers import APP, TIMEOUT, app_state, assert_clean, goto, texts


def _explore_app():
    from streamlit.testing.v1 import AppTest

    from medviz.ui import cache
    from medviz.ui.state import AppState, default_dataset_choice

    shipped = cache.shipped_entry(cache.shipped_model("microcalc-synthetic"))
    state = AppState(models={shipped.key: shipped}, active_model=shipped.key)
    state.dataset = default_dataset_choice(limit_per_class=12)
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    app.session_state["_medviz_state"] = state
    app.run()
    goto(app, "explore")
    assert_clean(app)
    return app, shipped


def test_map_selection_opens_in_explain_and_tcav_runs():
    from medviz.ui import cache
    from medviz.ui.state import Kept

    app, shipped = _explore_app()
    shown = texts(app)
    assert "penultimate-layer features" in shown and "distorts distances" in shown
    assert len(app.get("plotly_chart")) == 1
    assert "accuracy" in shown and "Click a point" in shown
    app.selectbox(key="explore_colour").set_value("correct")
    app.run()
    assert_clean(app)

    # A click on a point is a chart selection (not drivable in AppTest): keep it as the page does.
    choice = app_state(app).dataset
    key = f"registry:{choice.source}:64:1:{choice.limit_per_class}:{choice.seed}"
    context = f"{cache.model_token(shipped)}|{key}|val|pca|2000"
    app_state(app).selections["explore_selected"] = Kept(context, 0)
    app.run()
    assert_clean(app)
    shown = texts(app)
    assert "True class" in shown
    assert len(app.get("plotly_chart")) == 2, "the map and the neighbour strip"
    assert "most similar direction" in shown
    app.button(key="explore_to_explain").click()
    app.run()
    assert_clean(app)
    assert app.title[0].value == "Explain"
    assert app.segmented_control(key="explain_source").value == "explore"
    assert any(m.value.startswith("Explaining") for m in app.markdown)

    goto(app, "explore")
    app.segmented_control(key="explore_view").set_value("Concepts (TCAV)")
    app.run()
    assert_clean(app)
    assert "significantly from random" in texts(app)
    app.number_input(key="tcav_runs").set_value(2)
    app.run()
    app.button(key="tcav_run").click()
    app.run()
    call = app_state(app).selections["explore_tcav"].value
    deadline = time.monotonic() + 120
    while call.running and time.monotonic() < deadline:
        time.sleep(0.1)
    app.run()
    assert_clean(app)
    snap = call.snapshot()
    assert snap.status == "finished", snap.message
    assert len(snap.result.layers) == 3
    assert "random sets per layer" in texts(app)
