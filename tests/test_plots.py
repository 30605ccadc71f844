"""Tests of medviz.plots: trace types, data values and labels, no rendering."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from medviz import plots as P
from medviz.errors import MedvizError
from medviz.metrics import evaluate, summarize_runs


@pytest.fixture(scope="module")
def binary_eval():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    p = np.clip(rng.normal(0.35 + 0.3 * y, 0.2), 0, 1)
    return evaluate(y, p, class_names=["benign", "malignant"], n_bootstrap=50)


@pytest.fixture(scope="module")
def multi_eval():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 300)
    z = rng.normal(size=(300, 3))
    z[np.arange(300), y] += 1.5
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return evaluate(y, p, class_names=["glioma", "no tumor", "pituitary"], n_bootstrap=50)


def _is_white(fig: go.Figure) -> bool:
    expected = pio.templates[P.TEMPLATE].layout.plot_bgcolor
    return fig.layout.template.layout.plot_bgcolor == expected


def _title(fig: go.Figure) -> str:
    return fig.layout.title.text or ""


def test_confusion_matrix_figure(multi_eval):
    fig = P.confusion_matrix_figure(multi_eval)
    (heat,) = fig.data
    assert isinstance(heat, go.Heatmap)
    np.testing.assert_array_equal(np.asarray(heat.z), multi_eval.confusion)
    assert list(heat.x) == list(heat.y) == list(multi_eval.class_names)
    custom = np.asarray(heat.customdata)
    assert custom.shape == (3, 3, 4)
    for i in range(3):
        for j in range(3):
            assert tuple(custom[i, j, :2]) == (i, j)  # click -> (true, predicted)
            assert custom[i, j, 2] == multi_eval.confusion[i, j]
            assert heat.text[i][j] == str(multi_eval.confusion[i, j])
    assert fig.layout.xaxis.title.text == "Predicted class"
    assert fig.layout.yaxis.title.text == "True class"
    assert _is_white(fig) and "Confusion" in _title(fig)


def test_confusion_matrix_figure_normalized_from_matrix():
    matrix = np.array([[8, 2], [0, 0]])
    fig = P.confusion_matrix_figure(matrix, normalize=True)
    z = np.asarray(fig.data[0].z, dtype=float)
    np.testing.assert_allclose(z[0], [0.8, 0.2])
    assert np.isnan(z[1]).all()  # empty row: no fraction, no warning
    assert list(fig.data[0].x) == ["0", "1"]
    assert fig.data[0].text[0][0] == "80%"
    with pytest.raises(MedvizError, match="K, K"):
        P.confusion_matrix_figure(np.zeros((2, 3)))


def test_roc_figure_binary(binary_eval):
    fig = P.roc_figure(binary_eval)
    names = [t.name for t in fig.data]
    assert names[0].startswith("chance")
    curve = fig.data[1]
    assert "malignant" in curve.name and "AUC" in curve.name
    assert f"{binary_eval.auc:.3f}" in curve.name and f"{binary_eval.auc_ci[0]:.3f}" in curve.name
    np.testing.assert_allclose(curve.x, binary_eval.roc[0].fpr)
    np.testing.assert_allclose(curve.y, binary_eval.roc[0].tpr)
    point = fig.data[2]
    assert "operating point" in point.name
    assert point.x[0] == pytest.approx(binary_eval.per_class[1].fpr)
    assert "False positive rate" in fig.layout.xaxis.title.text


def test_roc_figure_multiclass(multi_eval):
    fig = P.roc_figure(multi_eval)
    curves = [t for t in fig.data if "AUC" in (t.name or "") and not t.name.startswith("chance")]
    assert len(curves) == 3 + 2
    assert curves[3].name.startswith("micro") and curves[4].name.startswith("macro")
    assert curves[4].line.dash == "dash"


def test_pr_figure(binary_eval, multi_eval):
    fig = P.pr_figure(binary_eval)
    assert "AP" in fig.data[0].name
    np.testing.assert_allclose(fig.data[0].x, binary_eval.pr[0].recall)
    prevalence = np.mean(binary_eval.y_true == 1)
    assert fig.data[-1].y[0] == pytest.approx(prevalence)
    assert len(P.pr_figure(multi_eval).data) == 4  # 3 classes + micro


def test_calibration_figure(binary_eval):
    fig = P.calibration_figure(binary_eval)
    assert f"{binary_eval.calibration.ece:.3f}" in _title(fig) and "ECE" in _title(fig)
    bars = [t for t in fig.data if isinstance(t, go.Bar)]
    np.testing.assert_allclose(
        np.asarray(bars[0].y, float), binary_eval.calibration.bin_accuracy, equal_nan=True
    )
    np.testing.assert_array_equal(bars[1].y, binary_eval.calibration.bin_count)
    assert bars[1].yaxis == "y2"  # the count histogram sits in its own panel
    assert any(t.name == "perfect calibration" for t in fig.data)
    # A bare Calibration works too.
    assert len(P.calibration_figure(binary_eval.calibration).data) == len(fig.data)


def test_per_class_figure(multi_eval):
    fig = P.per_class_figure(multi_eval)
    assert [t.name for t in fig.data] == [
        "Precision",
        "Recall (sensitivity)",
        "F1",
        "Specificity",
    ]
    assert all(isinstance(t, go.Bar) for t in fig.data) and fig.layout.barmode == "group"
    np.testing.assert_allclose(fig.data[3].y, [m.specificity for m in multi_eval.per_class])


def test_threshold_figure(binary_eval):
    fig = P.threshold_figure(binary_eval.y_true, binary_eval.y_prob[:, 1], 0.3)
    assert [t.name for t in fig.data] == ["Sensitivity", "Specificity"]
    assert fig.data[0].y[0] == 1.0 and fig.data[1].y[0] == 0.0  # threshold 0: all positive
    (line,) = fig.layout.shapes
    assert line.x0 == line.x1 == 0.3
    assert "0.30" in fig.layout.annotations[0].text


def test_history_figure_full_partial_and_empty():
    history = {
        "loss": [1.0, 0.7, 0.5],
        "val_loss": [1.1, 0.8],  # the epoch in progress has no validation yet
        "accuracy": [0.5, 0.6, 0.7],
        "val_accuracy": [0.4, 0.55],
    }
    fig = P.history_figure(history)
    assert len(fig.data) == 4  # auc absent: only loss and accuracy panels
    assert [a.text for a in fig.layout.annotations] == ["loss", "accuracy"]
    assert list(fig.data[0].x) == [1, 2, 3] and list(fig.data[1].x) == [1, 2]
    assert [t.showlegend for t in fig.data] == [True, True, False, False]
    assert fig.data[1].line.dash == "dash"
    empty = P.history_figure({})
    assert len(empty.data) == 0 and "No epochs" in empty.layout.annotations[0].text
    only_val = P.history_figure({"val_auc": [0.8]}, metrics=("auc",))
    assert only_val.data[0].name == "val"


def test_runs_figure():
    summary = summarize_runs([{"auc": 0.95, "accuracy": 0.9}, {"auc": 0.97, "accuracy": 0.86}])
    fig = P.runs_figure(summary)
    (bar,) = fig.data
    assert list(bar.x) == ["auc", "accuracy"]
    np.testing.assert_allclose(bar.y, [0.96, 0.88])
    np.testing.assert_allclose(bar.error_y.array, [summary["auc"][1], summary["accuracy"][1]])
    assert "±" in bar.text[0]


def test_probability_figure():
    fig = P.probability_figure(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"])
    (bar,) = fig.data
    assert bar.orientation == "h"
    assert bar.marker.color[1] != bar.marker.color[0] == bar.marker.color[2]
    assert "b" in _title(fig)
    chosen = P.probability_figure(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], predicted=2)
    assert chosen.data[0].marker.color[2] == P.PALETTE[0]
    with pytest.raises(MedvizError, match="3 probabilities for 2 classes"):
        P.probability_figure(np.array([0.1, 0.7, 0.2]), ["a", "b"])


def test_class_counts_figure():
    counts = {"train": {"benign": 70, "malignant": 30}, "test": {"benign": 15, "malignant": 5}}
    fig = P.class_counts_figure(counts)
    assert [t.name for t in fig.data] == ["train", "test"]
    assert list(fig.data[0].x) == ["benign", "malignant"]
    assert list(fig.data[1].y) == [15, 5]


def test_size_scatter_figure():
    sizes = np.array([[512, 512], [640, 480], [512, 512], [1024, 768]])
    labels = np.array([0, 1, 0, 1])
    fig = P.size_scatter_figure(sizes, labels, ["normal", "tumor"])
    assert len(fig.data) == 2 and fig.data[0].name.startswith("normal")
    assert list(fig.data[1].x) == [640, 1024] and list(fig.data[1].y) == [480, 768]
    assert fig.layout.xaxis.title.text == "Width (px)"
    with pytest.raises(MedvizError, match="N, 2"):
        P.size_scatter_figure(np.zeros((4, 3)), labels, ["normal", "tumor"])


def test_stress_figure():
    from medviz.stress import StressReport

    report = StressReport(
        class_names=("a", "b"),
        shifts=("blur", "noise", "crop"),
        severities=(1, 3, 5),
        accuracy=np.array([[0.9, 0.7, 0.5], [0.85, 0.6, 0.5], [0.9, 0.9, 0.8]]),
        auc=np.array([[0.95, 0.8, np.nan], [0.9, 0.7, 0.5], [0.96, 0.95, 0.9]]),
        clean_accuracy=0.92,
        clean_auc=0.97,
        n=60,
        n_available=60,
        seed=0,
        temperature=1.0,
        threshold=0.5,
        seconds=1.0,
    )
    fig = P.stress_figure(report)
    assert len(fig.data) == 6  # one line per shift in each of the two panels
    accuracy_lines, auc_lines = fig.data[:3], fig.data[3:]
    assert [t.name for t in accuracy_lines] == ["Gaussian blur", "Gaussian noise", "Crop (zoom in)"]
    assert list(accuracy_lines[0].x) == [0, 1, 3, 5]
    assert list(accuracy_lines[1].y) == [0.92, 0.85, 0.6, 0.5]  # starts at the clean level
    assert auc_lines[0].y[0] == 0.97 and np.isnan(auc_lines[0].y[-1])
    assert all(t.showlegend for t in accuracy_lines) and not any(t.showlegend for t in auc_lines)
    assert accuracy_lines[2].line.color == auc_lines[2].line.color == P.PALETTE[2]
    clean_lines = sorted(s.y0 for s in fig.layout.shapes)
    assert clean_lines == [0.92, 0.97]
    assert "n=60" in fig.layout.title.text
    assert fig.layout.annotations[1].text == "AUC"
    assert fig.to_json()
    multi = StressReport.from_dict({**report.to_dict(), "classes": ["a", "b", "c"]})
    assert P.stress_figure(multi).layout.annotations[1].text == "Macro AUC (one-vs-rest)"


def test_figures_serialise(binary_eval):
    # Streamlit sends figures as JSON: nan/inf in curves must not break that.
    for fig in (
        P.roc_figure(binary_eval),
        P.calibration_figure(binary_eval),
        P.confusion_matrix_figure(np.array([[1, 0], [0, 0]]), normalize=True),
    ):
        assert fig.to_json()


def test_no_heavy_imports():
    code = (
        "import sys, medviz.metrics, medviz.plots; "
        "bad = [m for m in ('tensorflow', 'streamlit', 'sklearn') if m in sys.modules]; "
        "assert not bad, bad"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
