"""AppTest, Evaluate: every number follows the threshold, threshold policies, the shown cell stays.

The shipped default model (binary, threshold from Youden's J) on its embedded test split.
"""

from __future__ import annotations

import json
import math

import pytest
from app_helpers import app_state, assert_clean, goto, texts


def _metric(app, label: str) -> str:
    return next(m.value for m in app.metric if m.label == label)


def _shown_cell(app) -> str:
    return next(m.value for m in app.markdown if m.value.startswith("**True "))


def _plotly_spec(app, title: str) -> dict:
    for chart in app.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        text = (spec.get("layout", {}).get("title") or {}).get("text", "")
        if title in text:
            return spec
    raise AssertionError(f"no chart titled {title!r}")


def click_cell(app, key: str, true_k: int, pred_k: int, names: list[str]) -> None:
    """Rerun as after a click on cell (true_k, pred_k) of the clickable confusion matrix.

    AppTest has no Plotly clicks: this sends what the browser sends, the chart's
    selection as its widget value, for one run.
    """
    chart = next(c for c in app.get("plotly_chart") if c.proto.id.endswith(f"-{key}"))
    point = {
        "customdata": [true_k, pred_k],
        "x": names[pred_k],
        "y": names[true_k],
        "curve_number": 1,
        "point_number": true_k * len(names) + pred_k,
        "point_index": true_k * len(names) + pred_k,
    }
    selection = {"selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}}
    tree = app._tree
    collect = tree.get_widget_states

    def with_click():
        states = collect()
        widget = states.widgets.add()
        widget.id = chart.proto.id
        widget.string_value = json.dumps(selection)  # Plotly selections travel as text
        return states

    tree.get_widget_states = with_click
    app.run()


@pytest.fixture
def evaluate_page(default_model):
    app = goto(default_model, "evaluate")
    assert_clean(app)
    return app


def test_accuracy_per_class_table_and_roc_point_follow_the_threshold(evaluate_page):
    app = evaluate_page
    seen = {}
    for threshold in (0.05, 0.95):
        app.slider(key="eval_threshold").set_value(threshold)
        app.run()
        assert_clean(app)
        sensitivity = float(_metric(app, "Sensitivity"))
        app.segmented_control(key="eval_view").set_value("Per class")
        app.run()
        (table,) = [d.value for d in app.dataframe]
        positive = table[table["class"] == "microcalcification"].iloc[0]
        assert positive["sensitivity"] == pytest.approx(sensitivity, abs=1e-3), "table follows"
        app.segmented_control(key="eval_view").set_value("ROC")
        app.run()
        roc = _plotly_spec(app, "ROC curve")
        point = next(t for t in roc["data"] if t.get("name", "").startswith("operating point"))
        assert f"threshold {threshold:.2f}" in point["name"]
        assert point["y"][0] == pytest.approx(sensitivity, abs=1e-3), "ROC point follows"
        seen[threshold] = (_metric(app, "Accuracy"), _metric(app, "Balanced accuracy"))
    assert seen[0.05] != seen[0.95], "accuracy follows the threshold"
    # At threshold 0.05 nearly everything is called positive: accuracy near one half.
    assert float(seen[0.05][0].rstrip("%")) < 80


def test_threshold_policy_starts_from_the_card_and_sets_the_slider(evaluate_page):
    app = evaluate_page
    card = app_state(app).models[app_state(app).active_model].card
    assert "Youden" in card.threshold_method
    assert app.segmented_control(key="eval_policy").value == "youden"
    start = app.slider(key="eval_threshold").value
    assert start == pytest.approx(math.floor(card.threshold * 1000) / 1000)
    assert "model card" in texts(app)

    app.segmented_control(key="eval_policy").set_value("calibrated")
    app.run()
    assert_clean(app)
    assert app.slider(key="eval_threshold").value == 0.5

    app.segmented_control(key="eval_policy").set_value("youden")
    app.run()
    assert_clean(app)
    # Youden's J on the same (complete) validation split the card's threshold came from.
    assert app.slider(key="eval_threshold").value == pytest.approx(start, abs=0.002)
    assert "Youden's J on the validation split of synthetic-microcalc" in texts(app)

    app.segmented_control(key="eval_policy").set_value("sensitivity")
    app.run()
    app.number_input(key="eval_target_sensitivity").set_value(0.99)
    app.run()
    assert_clean(app)
    strict = app.slider(key="eval_threshold").value
    assert strict < start, "a higher sensitivity needs a lower threshold"
    assert "sensitivity ≥ 99%" in texts(app)

    # The slider stays free: moved by hand, it is not pulled back by the policy.
    app.slider(key="eval_threshold").set_value(0.7)
    app.run()
    assert app.slider(key="eval_threshold").value == 0.7


def test_clicked_cell_survives_reruns_and_threshold_changes(evaluate_page):
    app = evaluate_page
    names = ["normal", "microcalcification"]
    click_cell(app, "eval_confusion", 0, 1, names)
    assert_clean(app)
    assert _shown_cell(app).startswith("**True normal, predicted microcalcification**")
    assert app.selectbox(key="eval_cell").value == (0, 1)

    app.slider(key="eval_threshold").set_value(0.3)  # redraws the chart: its click is gone
    app.run()
    assert_clean(app)
    assert _shown_cell(app).startswith("**True normal, predicted microcalcification**")
    app.run()
    assert _shown_cell(app).startswith("**True normal, predicted microcalcification**")

    app.selectbox(key="eval_cell").set_value((1, 1))  # the list still chooses
    app.run()
    assert _shown_cell(app).startswith("**True microcalcification, predicted microcalcification**")
    app.slider(key="eval_threshold").set_value(0.6)
    app.run()
    assert _shown_cell(app).startswith("**True microcalcification, predicted microcalcification**")
    figure = next(
        json.loads(c.proto.spec)
        for c in app.get("plotly_chart")
        if c.proto.id.endswith("-eval_confusion")
    )
    (outline,) = figure["layout"]["shapes"]
    assert (outline["x0"], outline["y0"]) == (0.5, 0.5), "the shown cell is outlined"


def test_other_classes_are_refused_before_loading_the_data(default_model, monkeypatch, tmp_path):
    from medviz.data import DATASETS
    from medviz.ui import cache
    from medviz.ui.state import DatasetChoice

    # brain-mri is listed (its folder exists) but holds no image: loading it would fail
    # differently, so the message below proves nothing was loaded.
    (tmp_path / "brain_mri").mkdir()
    monkeypatch.setenv("MEDVIZ_DATA_ROOT", str(tmp_path))
    loaded = []
    real = cache.dataset_for_model
    monkeypatch.setattr(
        cache, "dataset_for_model", lambda c, card: loaded.append(c.source) or real(c, card)
    )
    app = goto(default_model, "evaluate")
    assert any("brain-mri" in o for o in app.selectbox(key="eval_dataset").options)
    spec = DATASETS["brain-mri"]
    brain = DatasetChoice("registry", spec.name, spec.name, spec.image_size, spec.channels)
    app.selectbox(key="eval_dataset").set_value(brain.key)
    app.run()
    assert_clean(app, errors_allowed=True)
    message = app.error[0].value
    assert "class names do not match" in message and "glioma" in message
    assert "brain-mri" not in loaded


def test_pixel_threshold_baseline_beside_the_model_on_the_same_split(evaluate_page):
    from medviz.baseline import evaluate_baseline
    from medviz.ui import cache
    from medviz.ui.state import default_dataset_choice

    app = evaluate_page
    app.segmented_control(key="eval_view").set_value("Pixel-threshold baseline")
    app.run()
    assert_clean(app)
    (table,) = [d.value for d in app.dataframe if "AUC 95 % CI" in d.value.columns]
    assert list(table[""]) == ["this model", "pixel-threshold baseline"]
    # The complete embedded dataset at the model's 64 px, as the page loaded it: from the
    # process-wide cache (generating its 2,400 patches again costs ~5 s of CPU).
    data = cache.dataset(default_dataset_choice(), image_size=64, channels=1)
    assert data.class_names == ("normal", "microcalcification") and len(data.labels) == 2400
    assert data.images.shape[1:] == (64, 64, 1)
    expected = evaluate_baseline(data, split=app.selectbox(key="eval_split").value, threshold=120)
    assert table.iloc[1]["accuracy"] == pytest.approx(expected.accuracy)
    app.slider(key="eval_baseline_grey").set_value(200)
    app.run()
    assert_clean(app)
    (moved,) = [d.value for d in app.dataframe if "AUC 95 % CI" in d.value.columns]
    assert moved.iloc[0]["accuracy"] == table.iloc[0]["accuracy"]  # the model does not move
    assert "darker than 200" in texts(app)
