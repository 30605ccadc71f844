"""AppTest, Explain (and Classify): one calibrated probability, sensible defaults, and
features that need a matching dataset saying so before they run."""

from __future__ import annotations

import re

import pytest
from app_helpers import APP, TIMEOUT, app_state, assert_clean, goto, texts


def _explain_example(app, name: str):
    goto(app, "explain")
    app.selectbox(key="explain_example").set_value(name)
    app.run()
    assert_clean(app)
    return app


def test_classify_and_explain_show_the_same_calibrated_probability(default_model):
    app = default_model
    goto(app, "classify")
    app.segmented_control(key="classify_source").set_value("examples")
    app.run()
    app.pills(key="classify_example").set_value("normal 1")
    app.run()
    assert_clean(app)
    predicted = app.subheader[0].value.removeprefix("Prediction: ")
    classify_caption = next(c.value for c in app.caption if "calibrated probability" in c.value)
    shown = re.search(r"calibrated probability ([\d.]+ ?%)", classify_caption).group(1)

    _explain_example(app, "normal 1")
    line = next(m.value for m in app.markdown if m.value.startswith("Explaining"))
    assert "uncalibrated" not in line
    assert f"Explaining **{predicted}** · the model gives it {shown} (calibrated)" in line


def test_activation_maximisation_defaults_to_the_predicted_class(default_model):
    app = _explain_example(default_model, "normal 1")
    app.segmented_control(key="explain_view").set_value("Activation maximisation")
    app.run()
    assert_clean(app)
    assert app.selectbox(key="am_class").value == 0, "normal 1 is predicted normal"

    app.selectbox(key="explain_example").set_value("microcalcification 1")
    app.run()
    assert app.selectbox(key="am_class").value == 1, "follows the image"


def test_feature_maps_default_to_the_deepest_map_of_at_least_8x8():
    from streamlit.testing.v1 import AppTest

    from medviz.explain.layers import conv_layers, spatial_size
    from medviz.ui import cache
    from medviz.ui.state import AppState

    # At 28 px the CAM layer of this model is 7×7: feature maps should not default to it.
    shipped = cache.shipped_entry(cache.shipped_model("pneumonia-xray-28px"))
    model = cache.bundle(shipped).model  # the file the page opens, loaded once per process
    app = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    app.session_state["_medviz_state"] = AppState(
        models={shipped.key: shipped}, active_model=shipped.key
    )
    app.run()
    goto(app, "explain")
    if "explain_example" not in [w.key for w in app.selectbox]:
        pytest.skip("no pneumoniamnist examples on this machine")
    app.segmented_control(key="explain_view").set_value("Feature maps")
    app.run()
    assert_clean(app)
    layer = app.selectbox(key="explain_fm_layer").value
    layers = conv_layers(model)
    assert min(spatial_size(model, layer)) >= 8
    assert all(min(spatial_size(model, later)) < 8 for later in layers[layers.index(layer) + 1 :])


def test_localisation_on_a_mismatched_dataset_says_so_instead_of_running(default_model):
    from medviz.data import DATASETS
    from medviz.ui.state import DatasetChoice

    app = default_model
    spec = DATASETS["brain-mri"]
    # Other classes (nothing is loaded: the registry knows them).
    app_state(app).dataset = DatasetChoice("registry", spec.name, spec.name, 128, 1)
    goto(app, "explain")
    app.segmented_control(key="explain_view").set_value("Trust checks")
    app.run()
    assert_clean(app)
    assert app.button(key="trust_loc").disabled
    info = " ".join(i.value for i in app.info)
    assert "brain-mri" in info and "no lesion masks" in info

    # The model's classes at another size: localisation reloads them at the model's size.
    app_state(app).dataset = DatasetChoice(
        "registry", "synthetic-microcalc", "synthetic-microcalc", 32, 1, limit_per_class=4
    )
    app.run()
    assert not app.button(key="trust_loc").disabled

    # A matching dataset: the check runs.
    app_state(app).dataset = DatasetChoice(
        "registry", "synthetic-microcalc", "synthetic-microcalc", 64, 1, limit_per_class=12
    )
    app.run()
    assert not app.button(key="trust_loc").disabled
    app.button(key="trust_loc").click()
    app.run()
    assert_clean(app)
    assert "Pointing game hit rate" in texts(app)
