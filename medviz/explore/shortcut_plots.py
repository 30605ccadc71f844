"""Plotly figures of the shortcut lab: draw a :class:`ShortcutResult`, never compute."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from medviz.explain.overlay import overlay, to_rgb
from medviz.explore.shortcut import CONTROL_TITLES, VARIANTS, ShortcutResult

TEMPLATE = "plotly_white"
# Okabe–Ito colours (as medviz.plots): clean, aligned, swapped.
VARIANT_COLOURS = {"clean": "#0072B2", "aligned": "#009E73", "swapped": "#D55E00"}
VARIANT_TITLES = {
    "clean": "clean test images",
    "aligned": "marker on its class (aligned)",
    "swapped": "marker on the other class (swapped)",
}


def accuracy_figure(result: ShortcutResult) -> go.Figure:
    """Grouped bars: balanced accuracy on clean, aligned and swapped test images, per model.

    Each model's group is labelled with its shortcut-reliance score
    (aligned minus swapped); a dotted line marks chance (0.5).
    """
    models = (
        ("Trained with the marker", result.shortcut),
        (CONTROL_TITLES[result.control].capitalize(), result.clean),
    )
    labels = [f"{name}<br>reliance {scores.reliance:+.2f}" for name, scores in models]
    fig = go.Figure()
    for variant in VARIANTS:
        values = [scores.balanced_accuracy[variant] for _, scores in models]
        fig.add_trace(
            go.Bar(
                x=labels,
                y=values,
                name=VARIANT_TITLES[variant],
                marker_color=VARIANT_COLOURS[variant],
                text=[f"{v:.2f}" for v in values],
                textposition="outside",
                hovertemplate=f"{variant}: balanced accuracy %{{y:.3f}}<extra></extra>",
            )
        )
    fig.add_hline(y=0.5, line_dash="dot", line_color="#777777", annotation_text="chance")
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        title=f"Balanced accuracy on {result.n_test} test images "
        f"(marker planted in '{result.marked_class_name}', {result.fraction:.0%})",
        yaxis={"title": "Balanced accuracy", "range": [0, 1.12]},
        legend={"orientation": "h", "y": -0.18},
        margin={"l": 50, "r": 20, "t": 60, "b": 40},
        height=420,
    )
    return fig


def heatmap_grid_figure(result: ShortcutResult, *, alpha: float = 0.45) -> go.Figure:
    """A grid of the explained images: columns image, clean model's and shortcut model's Grad-CAM.

    Each heatmap's title gives the model's decided class and the share of its
    mass inside the marker region.
    """
    k = len(result.examples)
    names = result.class_names
    from medviz.explore.shortcut import marker_mass

    mass_clean = marker_mass(result.heatmaps_clean, result.example_masks)
    mass_short = marker_mass(result.heatmaps_shortcut, result.example_masks)
    titles = []
    for i in range(k):
        truth = names[int(result.example_labels[i])]

        def note(predicted: int, mass: float) -> str:
            share = (
                ""
                if math.isnan(mass) or not result.marker.has_region
                else f", {mass:.0%} on marker"
            )
            return f"→ {names[int(predicted)]}{share}"

        titles += [
            f"true: {truth}",
            f"control {note(result.predicted_clean[i], mass_clean[i])}",
            f"marker {note(result.predicted_shortcut[i], mass_short[i])}",
        ]
    fig = make_subplots(
        rows=max(k, 1),
        cols=3,
        subplot_titles=titles or None,
        horizontal_spacing=0.02,
        vertical_spacing=0.06 if k > 1 else 0.1,
    )
    for i in range(k):
        image = result.examples[i]
        panels = (
            to_rgb(image),
            overlay(image, result.heatmaps_clean[i], alpha=alpha),
            overlay(image, result.heatmaps_shortcut[i], alpha=alpha),
        )
        for j, panel in enumerate(panels, start=1):
            fig.add_trace(go.Image(z=np.asarray(panel), hoverinfo="skip"), row=i + 1, col=j)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=11)
    fig.update_layout(
        template=TEMPLATE,
        title="Grad-CAM of the same marked test images: control model vs model with the marker",
        height=60 + 190 * max(k, 1),
        margin={"l": 10, "r": 10, "t": 70, "b": 10},
    )
    return fig
