"""Plotly figures of MedViz results: draw only, never compute (see :mod:`medviz.metrics`).

Every function takes already computed results (an :class:`~medviz.metrics.Evaluation`,
a history dict, counts …) and returns a new :class:`plotly.graph_objects.Figure`
without side effects, so the same figure works in Streamlit, a notebook or an
exported report. All figures share the ``"plotly_white"`` template and the
Okabe–Ito colourblind-safe palette.

Why one module (over 600 lines): many short, independent figure functions that
share one template and palette; each page imports only the ones it draws.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from medviz.errors import MedvizError
from medviz.metrics import (
    Calibration,
    Evaluation,
    RocCurve,
    format_mean_std,
    sensitivity_specificity,
    sensitivity_specificity_curve,
)
from medviz.stress import SHIFTS

if TYPE_CHECKING:  # pragma: no cover
    from medviz.stress import StressReport

TEMPLATE = "plotly_white"
# Okabe & Ito (2008): distinguishable with every common colour-vision deficiency.
PALETTE: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#F0E442",  # yellow
    "#000000",  # black
)
MUTED = "#BBBBBB"
# Sequential scale that stays readable in grey-scale and for colour-blind readers.
HEATMAP_SCALE = "Blues"


def color(i: int) -> str:
    """Colour ``i`` of the palette (cycled)."""
    return PALETTE[i % len(PALETTE)]


def _layout(fig: go.Figure, title: str, *, x: str | None = None, y: str | None = None) -> go.Figure:
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title, "x": 0.02, "xanchor": "left"},
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        legend={"bgcolor": "rgba(255,255,255,0.7)"},
    )
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig


def _fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _has_thresholds(curve: RocCurve) -> bool:
    return bool(np.isfinite(curve.thresholds).any())


def _auc_label(curve: RocCurve) -> str:
    if not math.isfinite(curve.auc):
        return f"{curve.label} (AUC n/a)"
    low, high = curve.auc_ci
    ci = f" [{low:.3f}, {high:.3f}]" if math.isfinite(low) and math.isfinite(high) else ""
    return f"{curve.label} (AUC {curve.auc:.3f}{ci})"


# --------------------------------------------------------------------------- #
# Evaluation figures
# --------------------------------------------------------------------------- #


def confusion_matrix_figure(
    evaluation_or_matrix: Evaluation | np.ndarray,
    class_names: Sequence[str] | None = None,
    *,
    normalize: bool = False,
) -> go.Figure:
    """Heatmap of a confusion matrix, rows true and columns predicted.

    Each cell shows its count (or row fraction with ``normalize``); the hover
    adds the row percentage. ``customdata[i][j]`` is ``[i, j, count, row
    fraction]`` so that a clicked cell maps back to (true, predicted) indices.

    Args:
        evaluation_or_matrix: An :class:`Evaluation` or a ``(K, K)`` count matrix.
        class_names: ``K`` names; taken from the evaluation, else ``"0"``… .
        normalize: Colour and label cells by row fraction instead of count.

    Returns:
        A figure with one ``Heatmap`` trace whose ``z`` is the ``(K, K)``
        matrix (counts, or row fractions with ``normalize``).
    """
    if isinstance(evaluation_or_matrix, Evaluation):
        counts = evaluation_or_matrix.confusion
        names = list(class_names or evaluation_or_matrix.class_names)
    else:
        counts = np.asarray(evaluation_or_matrix)
        names = [str(i) for i in range(len(counts))] if class_names is None else list(class_names)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or len(names) != len(counts):
        raise MedvizError(
            f"confusion matrix must be (K, K) with K class names, got {counts.shape} "
            f"and {len(names)} names"
        )
    k = len(counts)
    counts = counts.astype(np.int64)
    row_sum = counts.sum(axis=1, keepdims=True)
    fraction = np.divide(
        counts, row_sum, out=np.full(counts.shape, np.nan), where=row_sum > 0
    ).astype(float)
    true_idx, pred_idx = np.indices((k, k))
    custom = np.stack([true_idx, pred_idx, counts, fraction], axis=-1)
    if normalize:
        z = fraction
        text = [["–" if math.isnan(f) else f"{f:.0%}" for f in row] for row in fraction]
    else:
        z = counts
        text = [[str(c) for c in row] for row in counts]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=names,
            y=names,
            text=text,
            texttemplate="%{text}",
            customdata=custom,
            colorscale=HEATMAP_SCALE,
            zmin=0,
            zmax=1 if normalize else max(int(counts.max(initial=0)), 1),
            colorbar={"title": {"text": "row fraction" if normalize else "count"}},
            hovertemplate=(
                "true %{y}<br>predicted %{x}<br>count %{customdata[2]}"
                "<br>%{customdata[3]:.1%} of true %{y}<extra></extra>"
            ),
        )
    )
    title = "Confusion matrix" + (" (row-normalised)" if normalize else "")
    _layout(fig, title, x="Predicted class", y="True class")
    # First class on top, as in a printed table.
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", side="bottom")
    return fig


def roc_figure(evaluation: Evaluation) -> go.Figure:
    """ROC curves with ``AUC [95 % CI]`` in the legend and the chance diagonal.

    Binary: the class-1 curve and a marker at the operating point. Multi-class:
    one-vs-rest curves per class, then micro and macro averages (dashed).
    """
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="chance (AUC 0.5)",
            line={"color": MUTED, "dash": "dot"},
            hoverinfo="skip",
        )
    )
    for i, curve in enumerate(evaluation.roc):
        average = curve.label in ("micro", "macro") and not evaluation.is_binary
        fig.add_trace(
            go.Scatter(
                x=curve.fpr,
                y=curve.tpr,
                mode="lines",
                name=_auc_label(curve),
                line={
                    "color": PALETTE[-1] if curve.label == "micro" and average else color(i),
                    "dash": "dash" if average else "solid",
                    "width": 2,
                },
                customdata=curve.thresholds,
                hovertemplate=(
                    "FPR %{x:.3f}<br>TPR %{y:.3f}"
                    # The macro average has no single threshold per point.
                    + ("<br>threshold %{customdata:.3f}" if _has_thresholds(curve) else "")
                    + f"<extra>{curve.label}</extra>"
                ),
            )
        )
    if evaluation.is_binary:
        positive = evaluation.per_class[1]
        rule = "argmax" if evaluation.threshold is None else f"threshold {evaluation.threshold:.2f}"
        fig.add_trace(
            go.Scatter(
                x=[positive.fpr],
                y=[positive.recall],
                mode="markers",
                name=f"operating point ({rule})",
                marker={"color": PALETTE[5], "size": 11, "symbol": "x"},
                hovertemplate="FPR %{x:.3f}<br>sensitivity %{y:.3f}<extra>operating point</extra>",
            )
        )
    _layout(
        fig,
        "ROC curve" + ("" if evaluation.is_binary else "s (one-vs-rest)"),
        x="False positive rate (1 − specificity)",
        y="True positive rate (sensitivity)",
    )
    fig.update_xaxes(range=[0, 1], constrain="domain")
    fig.update_yaxes(range=[0, 1.02], scaleanchor="x", scaleratio=1)
    fig.update_layout(legend={"x": 0.98, "y": 0.02, "xanchor": "right", "yanchor": "bottom"})
    return fig


def pr_figure(evaluation: Evaluation) -> go.Figure:
    """Precision–recall curves with average precision in the legend.

    Binary: the class-1 curve and a dotted line at the prevalence (the AP of a
    random score). Multi-class: one-vs-rest curves per class, then micro.
    """
    fig = go.Figure()
    for i, curve in enumerate(evaluation.pr):
        micro = curve.label == "micro" and not evaluation.is_binary
        fig.add_trace(
            go.Scatter(
                x=curve.recall,
                y=curve.precision,
                mode="lines",
                line_shape="hv",  # precision is a step function of recall
                name=f"{curve.label} (AP {_fmt(curve.average_precision)})",
                line={
                    "color": PALETTE[-1] if micro else color(i),
                    "dash": "dash" if micro else "solid",
                },
                hovertemplate=(
                    f"recall %{{x:.3f}}<br>precision %{{y:.3f}}<extra>{curve.label}</extra>"
                ),
            )
        )
    if evaluation.is_binary:
        prevalence = float(np.mean(evaluation.y_true == 1))
        fig.add_trace(
            go.Scatter(
                x=[0, 1],
                y=[prevalence, prevalence],
                mode="lines",
                name=f"chance (prevalence {prevalence:.3f})",
                line={"color": MUTED, "dash": "dot"},
                hoverinfo="skip",
            )
        )
    _layout(
        fig,
        "Precision–recall curve" + ("" if evaluation.is_binary else "s (one-vs-rest)"),
        x="Recall (sensitivity)",
        y="Precision (PPV)",
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.02])
    fig.update_layout(legend={"x": 0.02, "y": 0.02, "xanchor": "left", "yanchor": "bottom"})
    return fig


def calibration_figure(evaluation: Evaluation | Calibration) -> go.Figure:
    """Reliability diagram with the ECE in the title and a count histogram below.

    Row 1: accuracy per confidence bin (bars at the bin centres, the mean
    confidence as a line with markers) and the perfect-calibration diagonal.
    Row 2: samples per bin.
    """
    cal = evaluation.calibration if isinstance(evaluation, Evaluation) else evaluation
    edges = np.asarray(cal.bin_edges, dtype=float)
    centres = (edges[:-1] + edges[1:]) / 2
    widths = np.diff(edges)
    ranges = [f"{a:.2f}–{b:.2f}" for a, b in itertools.pairwise(edges)]
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.05
    )
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"color": MUTED, "dash": "dot"},
            hoverinfo="skip",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=centres,
            y=cal.bin_accuracy,
            width=widths * 0.9,
            name="accuracy per bin",
            marker={"color": color(0), "opacity": 0.75},
            customdata=np.column_stack([ranges, cal.bin_count]),
            hovertemplate=(
                "confidence %{customdata[0]}<br>accuracy %{y:.3f}"
                "<br>n = %{customdata[1]}<extra></extra>"
            ),
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=cal.bin_confidence,
            y=cal.bin_accuracy,
            mode="lines+markers",
            name="mean confidence vs accuracy",
            line={"color": color(1)},
            hovertemplate="mean confidence %{x:.3f}<br>accuracy %{y:.3f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=centres,
            y=cal.bin_count,
            width=widths * 0.9,
            name="samples per bin",
            marker={"color": MUTED},
            hovertemplate="confidence %{customdata}<br>n = %{y}<extra></extra>",
            customdata=ranges,
        ),
        row=2,
        col=1,
    )
    _layout(
        fig,
        f"Reliability diagram — ECE {_fmt(cal.ece)}, MCE {_fmt(cal.mce)}",
    )
    fig.update_xaxes(range=[0, 1], row=1, col=1)
    fig.update_xaxes(range=[0, 1], title_text="Confidence (top-class probability)", row=2, col=1)
    fig.update_yaxes(range=[0, 1.02], title_text="Accuracy", row=1, col=1)
    fig.update_yaxes(title_text="Count", row=2, col=1)
    fig.update_layout(bargap=0, legend={"x": 0.02, "y": 0.98})
    return fig


_PER_CLASS_METRICS: tuple[tuple[str, str], ...] = (
    ("precision", "Precision"),
    ("recall", "Recall (sensitivity)"),
    ("f1", "F1"),
    ("specificity", "Specificity"),
)


def per_class_figure(evaluation: Evaluation) -> go.Figure:
    """Grouped bars of precision, recall, F1 and specificity per class.

    Undefined values (``nan``) are drawn as missing bars.
    """
    names = [m.name for m in evaluation.per_class]
    fig = go.Figure()
    for i, (key, label) in enumerate(_PER_CLASS_METRICS):
        values = [getattr(m, key) for m in evaluation.per_class]
        fig.add_trace(
            go.Bar(
                x=names,
                y=values,
                name=label,
                marker={"color": color(i)},
                text=[_fmt(v, 2) for v in values],
                textposition="outside",
                customdata=[m.support for m in evaluation.per_class],
                hovertemplate=(
                    f"%{{x}}<br>{label} %{{y:.3f}}<br>support %{{customdata}}<extra></extra>"
                ),
            )
        )
    _layout(fig, "Per-class metrics (one-vs-rest)", x="Class", y="Score")
    fig.update_yaxes(range=[0, 1.1])
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": -0.2})
    return fig


def threshold_figure(y_true: np.ndarray, p_positive: np.ndarray, threshold: float) -> go.Figure:
    """Sensitivity and specificity against the decision threshold.

    Args:
        y_true: ``(N,)`` labels in ``{0, 1}``.
        p_positive: ``(N,)`` ``P(class 1)`` (or ``(N, 2)`` probabilities).
        threshold: The current threshold, drawn as a vertical line.

    Returns:
        A figure with a sensitivity and a specificity line over 201 thresholds
        on ``[0, 1]`` and a vertical line (a layout shape) at ``threshold``.
    """
    t, sens, spec = sensitivity_specificity_curve(y_true, p_positive)
    at_sens, at_spec = sensitivity_specificity(y_true, p_positive, threshold)
    fig = go.Figure()
    for i, (values, name) in enumerate(((sens, "Sensitivity"), (spec, "Specificity"))):
        fig.add_trace(
            go.Scatter(
                x=t,
                y=values,
                mode="lines",
                name=name,
                line={"color": color(i), "width": 2},
                hovertemplate=f"threshold %{{x:.3f}}<br>{name} %{{y:.3f}}<extra></extra>",
            )
        )
    fig.add_vline(
        x=threshold,
        line={"color": PALETTE[-1], "dash": "dash"},
        annotation_text=(f"t = {threshold:.2f}: sens {_fmt(at_sens)}, spec {_fmt(at_spec)}"),
        annotation_position="top",
    )
    _layout(
        fig,
        "Sensitivity and specificity vs threshold",
        x="Threshold on P(positive)",
        y="Rate",
    )
    fig.update_xaxes(range=[0, 1])
    fig.update_yaxes(range=[0, 1.05])
    fig.update_layout(legend={"x": 0.5, "y": -0.2, "xanchor": "center", "orientation": "h"})
    return fig


def stress_figure(report: StressReport) -> go.Figure:
    """Accuracy and AUC against shift severity, one line per shift.

    Args:
        report: A :class:`~medviz.stress.StressReport` (or one rebuilt from a
            card with :meth:`~medviz.stress.StressReport.from_dict`).

    Returns:
        Two side-by-side panels (accuracy, AUC); x is the severity from 0
        (clean) to the report's highest, each shift a line starting at the
        clean value, and the clean level a dashed horizontal line (a layout
        shape) in each panel. Undefined AUCs (a class absent) are gaps.
    """
    severities = [0, *report.severities]
    auc_title = "AUC" if len(report.class_names) == 2 else "Macro AUC (one-vs-rest)"
    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("Accuracy", auc_title), horizontal_spacing=0.1
    )
    for col, (values, clean, label) in enumerate(
        (
            (report.accuracy, report.clean_accuracy, "accuracy"),
            (report.auc, report.clean_auc, "AUC"),
        ),
        start=1,
    ):
        for i, name in enumerate(report.shifts):
            title = SHIFTS[name].title if name in SHIFTS else name
            fig.add_trace(
                go.Scatter(
                    x=severities,
                    y=[clean, *values[i]],
                    mode="lines+markers",
                    name=title,
                    legendgroup=name,
                    showlegend=col == 1,
                    line={"color": color(i)},
                    marker={"size": 6},
                    hovertemplate=(
                        f"{title}<br>severity %{{x}}<br>{label} %{{y:.3f}}<extra></extra>"
                    ),
                ),
                row=1,
                col=col,
            )
        if math.isfinite(clean):
            fig.add_hline(
                y=clean,
                line={"color": PALETTE[-1], "dash": "dash", "width": 1},
                annotation_text=f"clean {clean:.3f}",
                annotation_position="bottom left",
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="Severity (0 = clean)", tickvals=severities, row=1, col=col)
        fig.update_yaxes(range=[0, 1.05], row=1, col=col)
    _layout(fig, f"How robust is it? Accuracy and AUC under image shifts (n={report.n})")
    fig.update_layout(legend={"orientation": "h", "y": -0.25})
    return fig


# --------------------------------------------------------------------------- #
# Training and runs
# --------------------------------------------------------------------------- #


def history_figure(
    history: Mapping[str, Sequence[float]],
    *,
    metrics: Sequence[str] = ("loss", "accuracy", "auc"),
) -> go.Figure:
    """Training curves, one subplot per metric, train solid and validation dashed.

    Works on partial histories (live training: lists of different lengths)
    and on an empty one (an empty figure with a note).

    Args:
        history: Keras-style ``{"loss": [...], "val_loss": [...], ...}``.
        metrics: Metric names to draw, in order; those with no values in
            ``history`` (neither ``name`` nor ``val_name``) are left out.

    Returns:
        A figure with one column per drawn metric; x is the 1-based epoch.
    """
    shown = [m for m in metrics if len(history.get(m, ())) or len(history.get(f"val_{m}", ()))]
    if not shown:
        fig = go.Figure()
        fig.add_annotation(
            text="No epochs yet", showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5
        )
        _layout(fig, "Training history")
        fig.update_xaxes(visible=False)
        fig.update_yaxes(visible=False)
        return fig
    fig = make_subplots(rows=1, cols=len(shown), subplot_titles=shown, horizontal_spacing=0.08)
    for col, metric in enumerate(shown, start=1):
        for key, split, dash, c in (
            (metric, "train", "solid", 0),
            (f"val_{metric}", "val", "dash", 1),
        ):
            values = [float(v) for v in history.get(key, ())]
            if not values:
                continue
            fig.add_trace(
                go.Scatter(
                    x=list(range(1, len(values) + 1)),
                    y=values,
                    mode="lines+markers",
                    name=split,
                    legendgroup=split,
                    # One legend entry per split, not one per subplot.
                    showlegend=not any(tr.name == split for tr in fig.data),
                    line={"color": color(c), "dash": dash},
                    marker={"size": 5},
                    hovertemplate=f"epoch %{{x}}<br>{key} %{{y:.4f}}<extra></extra>",
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="Epoch", rangemode="tozero", row=1, col=col)
    _layout(fig, "Training history")
    fig.update_xaxes(tickformat="d")
    return fig


def runs_figure(summary: Mapping[str, tuple[float, float]]) -> go.Figure:
    """Mean of each metric over several runs, with ± one standard deviation.

    Args:
        summary: ``{metric: (mean, std)}`` as from :func:`medviz.metrics.summarize_runs`.
    """
    names = list(summary)
    means = [float(summary[k][0]) for k in names]
    stds = [float(summary[k][1]) for k in names]
    fig = go.Figure(
        go.Bar(
            x=names,
            y=means,
            error_y={"type": "data", "array": stds, "visible": True, "color": PALETTE[-1]},
            marker={"color": color(0)},
            text=[format_mean_std(m, s) for m, s in zip(means, stds, strict=True)],
            textposition="outside",
            name="mean ± std",
            hovertemplate="%{x}<br>%{text}<extra></extra>",
        )
    )
    _layout(fig, "Metrics over runs (mean ± std)", x="Metric", y="Value")
    return fig


# --------------------------------------------------------------------------- #
# Single prediction and dataset views
# --------------------------------------------------------------------------- #


def probability_figure(
    probabilities: np.ndarray, class_names: Sequence[str], *, predicted: int | None = None
) -> go.Figure:
    """Horizontal bars of one image's class probabilities, predicted class highlighted.

    Args:
        probabilities: ``(K,)`` probabilities (a ``(1, K)`` row is accepted).
        class_names: ``K`` names.
        predicted: Index of the predicted class; ``None`` highlights the argmax.
    """
    p = np.asarray(probabilities, dtype=float).reshape(-1)
    if len(p) != len(class_names):
        raise MedvizError(
            f"got {len(p)} probabilities for {len(class_names)} classes {list(class_names)}"
        )
    if predicted is None:
        predicted = int(np.argmax(p)) if len(p) else -1
    elif not 0 <= predicted < len(p):
        raise MedvizError(f"predicted must be in [0, {len(p) - 1}], got {predicted}")
    colors = [color(0) if i == predicted else MUTED for i in range(len(p))]
    fig = go.Figure(
        go.Bar(
            x=p,
            y=list(class_names),
            orientation="h",
            marker={"color": colors},
            text=[f"{v:.1%}" for v in p],
            textposition="auto",
            hovertemplate="%{y}: %{x:.2%}<extra></extra>",
        )
    )
    title = f"Prediction: {class_names[predicted]}" if predicted >= 0 else "Class probabilities"
    _layout(fig, title, x="Probability")
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    # First class on top, in the order of the class names.
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(showlegend=False)
    return fig


def class_counts_figure(counts: Mapping[str, Mapping[str, int]]) -> go.Figure:
    """Grouped bars of images per class, one colour per split.

    Args:
        counts: ``{split: {class_name: count}}`` as from ``Dataset.counts()``.
    """
    classes: list[str] = []
    for per_class in counts.values():
        classes.extend(c for c in per_class if c not in classes)
    fig = go.Figure()
    for i, (split, per_class) in enumerate(counts.items()):
        values = [int(per_class.get(c, 0)) for c in classes]
        fig.add_trace(
            go.Bar(
                x=classes,
                y=values,
                name=split,
                marker={"color": color(i)},
                text=values,
                textposition="outside",
                hovertemplate=f"{split}<br>%{{x}}: %{{y}} images<extra></extra>",
            )
        )
    _layout(fig, "Images per class and split", x="Class", y="Images")
    fig.update_layout(barmode="group")
    return fig


def size_scatter_figure(
    sizes: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> go.Figure:
    """Original width vs height of every image, coloured by class.

    If the classes separate by size, a model can learn the size instead of
    the pathology (a shortcut).

    Args:
        sizes: ``(N, 2)`` ``(width, height)`` before resizing.
        labels: ``(N,)`` class indices.
        class_names: ``K`` names.
    """
    sizes = np.asarray(sizes)
    labels = np.asarray(labels)
    if sizes.ndim != 2 or sizes.shape[1] != 2 or len(labels) != len(sizes):
        raise MedvizError(
            f"sizes must be (N, 2) with N labels, got sizes {sizes.shape} and labels {labels.shape}"
        )
    fig = go.Figure()
    for k, name in enumerate(class_names):
        member = labels == k
        fig.add_trace(
            go.Scatter(
                x=sizes[member, 0],
                y=sizes[member, 1],
                mode="markers",
                name=f"{name} (n={int(member.sum())})",
                marker={"color": color(k), "size": 7, "opacity": 0.6},
                hovertemplate=f"{name}<br>%{{x}} × %{{y}} px<extra></extra>",
            )
        )
    _layout(fig, "Original image size by class", x="Width (px)", y="Height (px)")
    return fig
