"""Figures of the explore views: the embedding map, the neighbour strip, the TCAV bars.

Draw only, never compute (see :mod:`medviz.explore.embedding` and
:mod:`medviz.explore.tcav`). Plotly hover labels cannot hold images, so the
thumbnail on hover is done in two ways: the stand-alone HTML map
(:func:`embedding_html`, ``medviz embed --out map.html``) carries a small
base64 PNG per point and a few lines of script that show it next to the
pointer; in the app a click selects a point and the page shows its image.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from medviz.explore.embedding import COLOUR_BY, MAP_LIMITS, EmbeddingMap
from medviz.explore.tcav import TCAV_LIMITS, TcavResult
from medviz.plots import MUTED, PALETTE, TEMPLATE

CORRECT_COLOURS = {"correct": "#009E73", "wrong": "#D55E00"}


def thumbnail_uri(image: np.ndarray, *, size: int = 64) -> str:
    """A ``data:image/png;base64,…`` URI of an image shrunk (or enlarged) to ``size`` pixels.

    Args:
        image: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` uint8 pixels.
        size: Side of the thumbnail in pixels.
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    picture = Image.fromarray(np.ascontiguousarray(arr.astype(np.uint8)))
    picture = picture.resize((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _hover_text(emap: EmbeddingMap, rows: np.ndarray) -> list[str]:
    names = emap.class_names
    return [
        f"image {int(emap.indices[r])} · true {names[int(emap.labels[r])]}<br>"
        f"predicted {names[int(emap.predictions[r])]} ({float(emap.confidence[r]):.0%})"
        + ("" if emap.correct[r] else " · <b>wrong</b>")
        for r in rows
    ]


def embedding_figure(
    emap: EmbeddingMap,
    *,
    colour_by: str = "true",
    selected_row: int | None = None,
    neighbour_rows: Sequence[int] = (),
    thumbnails: Sequence[str] | None = None,
) -> go.Figure:
    """The map as a Plotly scatter, one point per image.

    Every point's ``customdata`` is ``[row, image index]`` (plus its thumbnail
    URI when ``thumbnails`` is given), so a selection or hover names the image
    whatever trace it is in.

    Args:
        emap: The map.
        colour_by: A key of :data:`~medviz.explore.embedding.COLOUR_BY`.
        selected_row: A row to ring (the image being looked at).
        neighbour_rows: Rows to mark as its nearest neighbours.
        thumbnails: One data URI per row (:func:`thumbnail_uri`), for :func:`embedding_html`.

    Returns:
        The figure.

    Raises:
        ValueError: Unknown ``colour_by``, or ``thumbnails`` of the wrong length.
    """
    if colour_by not in COLOUR_BY:
        raise ValueError(f"colour_by must be one of {list(COLOUR_BY)}, got {colour_by!r}")
    if thumbnails is not None and len(thumbnails) != len(emap):
        raise ValueError(f"need {len(emap)} thumbnails (one per point), got {len(thumbnails)}")
    fig = go.Figure()
    marker_size = 7 if len(emap) <= 1000 else 5

    def add(rows: np.ndarray, name: str, marker: dict) -> None:
        custom = [[int(r), int(emap.indices[r])] for r in rows]
        if thumbnails is not None:
            custom = [[*c, thumbnails[int(c[0])]] for c in custom]
        fig.add_trace(
            go.Scatter(
                x=emap.coords[rows, 0],
                y=emap.coords[rows, 1],
                mode="markers",
                name=name,
                customdata=custom,
                text=_hover_text(emap, rows),
                hovertemplate="%{text}<extra></extra>",
                marker={"size": marker_size, "opacity": 0.8, **marker},
            )
        )

    names = emap.class_names
    if colour_by in ("true", "predicted"):
        values = emap.labels if colour_by == "true" else emap.predictions
        for k, name in enumerate(names):
            rows = np.flatnonzero(values == k)
            if len(rows):
                add(rows, name, {"color": PALETTE[k % len(PALETTE)]})
    elif colour_by == "correct":
        for label, mask in (("correct", emap.correct), ("wrong", ~emap.correct)):
            rows = np.flatnonzero(mask)
            if len(rows):
                add(rows, label, {"color": CORRECT_COLOURS[label]})
    else:
        add(
            np.arange(len(emap)),
            "confidence",
            {
                "color": emap.confidence,
                "colorscale": "Viridis",
                "cmin": 0.5 if len(names) == 2 else 1.0 / len(names),
                "cmax": 1.0,
                "colorbar": {"title": {"text": "confidence"}, "tickformat": ".0%"},
            },
        )
    if len(neighbour_rows):
        rows = np.asarray(neighbour_rows, dtype=np.int64)
        fig.add_trace(
            go.Scatter(
                x=emap.coords[rows, 0],
                y=emap.coords[rows, 1],
                mode="markers",
                name="nearest neighbours",
                hoverinfo="skip",
                marker={
                    "size": 13,
                    "symbol": "circle-open",
                    "color": "#000000",
                    "line": {"width": 2},
                },
            )
        )
    if selected_row is not None:
        fig.add_trace(
            go.Scatter(
                x=[emap.coords[selected_row, 0]],
                y=[emap.coords[selected_row, 1]],
                mode="markers",
                name="selected",
                hoverinfo="skip",
                marker={"size": 18, "symbol": "star", "color": "#F0E442", "line": {"width": 1.5}},
            )
        )
    fig.update_layout(
        template=TEMPLATE,
        title={"text": f"{emap.method.upper()} of {emap.layer} · {emap.split} split"},
        xaxis={"title": {"text": f"{emap.method} 1"}, "zeroline": False},
        yaxis={"title": {"text": f"{emap.method} 2"}, "zeroline": False},
        legend={"title": {"text": COLOUR_BY[colour_by]}},
        margin={"l": 40, "r": 20, "t": 50, "b": 40},
        height=520,
        dragmode="pan",
    )
    return fig


_HOVER_SCRIPT = """
var plot = document.getElementById('{div}');
var tip = document.createElement('img');
tip.style.cssText = 'position:fixed;display:none;width:{size}px;height:{size}px;' +
  'border:2px solid #333;background:#fff;pointer-events:none;z-index:10;image-rendering:pixelated';
document.body.appendChild(tip);
plot.on('plotly_hover', function (ev) {{
  var p = ev.points[0];
  if (!p || !p.customdata || p.customdata.length < 3) return;
  tip.src = p.customdata[2];
  tip.style.left = (ev.event.clientX + 16) + 'px';
  tip.style.top = (ev.event.clientY + 16) + 'px';
  tip.style.display = 'block';
}});
plot.on('plotly_unhover', function () {{ tip.style.display = 'none'; }});
"""


def embedding_html(
    emap: EmbeddingMap,
    images: np.ndarray,
    *,
    colour_by: str = "true",
    thumbnail_size: int = 96,
    title: str = "MedViz embedding map",
) -> str:
    """A stand-alone HTML page of the map, with each image's thumbnail on hover.

    Plotly's JavaScript is embedded, so the file opens offline.

    Args:
        emap: The map.
        images: ``(n, S, S, C)`` uint8, the images of the map's rows in row order.
        colour_by: A key of :data:`~medviz.explore.embedding.COLOUR_BY`.
        thumbnail_size: Side of the hover thumbnail in screen pixels.
        title: The page title.

    Returns:
        The HTML document.

    Raises:
        ValueError: ``images`` does not have one image per point.
    """
    if len(images) != len(emap):
        raise ValueError(f"need {len(emap)} images (one per point), got {len(images)}")
    # Small stored thumbnails (48 px), drawn larger by the browser: the file stays small.
    thumbs = [thumbnail_uri(image, size=48) for image in images]
    fig = embedding_figure(emap, colour_by=colour_by, thumbnails=thumbs)
    div = "medviz-map"
    body = fig.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id=div,
        post_script=_HOVER_SCRIPT.format(div=div, size=int(thumbnail_size)),
        config={"scrollZoom": True},
    )
    summary = (
        f"{len(emap)} images of the {emap.split} split ({emap.n_total} in all), "
        f"accuracy {emap.accuracy:.1%}. {emap.note}"
    )
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body style='font-family:sans-serif;margin:16px'>"
        f"<h2>{title}</h2><p>{summary}</p><p><i>{MAP_LIMITS}</i></p>{body}"
        f"<script type='application/json' id='medviz-map-meta'>"
        f"{json.dumps({'method': emap.method, 'layer': emap.layer, 'split': emap.split})}"
        "</script></body></html>\n"
    )


def neighbour_strip_figure(
    images: Sequence[np.ndarray], captions: Sequence[str], *, title: str = ""
) -> go.Figure:
    """A row of images with a caption under each (the nearest neighbours).

    Args:
        images: ``(H, W)``, ``(H, W, 1)`` or ``(H, W, 3)`` uint8 images.
        captions: One caption per image (label and similarity).
        title: Figure title.

    Raises:
        ValueError: ``captions`` and ``images`` differ in length, or no images.
    """
    if len(images) != len(captions):
        raise ValueError(f"got {len(images)} images and {len(captions)} captions")
    if not len(images):
        raise ValueError("no images to show")
    fig = make_subplots(
        rows=1, cols=len(images), subplot_titles=list(captions), horizontal_spacing=0.01
    )
    for i, image in enumerate(images):
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = arr[..., None]
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        fig.add_trace(go.Image(z=arr, hoverinfo="skip"), row=1, col=i + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font={"size": 11})
    fig.update_layout(
        template=TEMPLATE,
        title={"text": title} if title else None,
        height=190 if not title else 220,
        margin={"l": 5, "r": 5, "t": 60 if title else 40, "b": 5},
    )
    return fig


def tcav_figure(result: TcavResult) -> go.Figure:
    """Bars of the concept's TCAV score per layer next to the random baseline.

    Error bars are one standard deviation over the random sets; a star above a
    layer marks a significant difference (Bonferroni over the layers).
    """
    layers = [r.layer for r in result.layers]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=layers,
            y=[r.score_mean for r in result.layers],
            error_y={"type": "data", "array": [r.score_std for r in result.layers]},
            name=f"concept “{result.concept}”",
            marker_color=PALETTE[0],
            hovertemplate="%{x}: TCAV %{y:.2f}<extra></extra>",
        )
    )
    fig.add_trace(
        go.Bar(
            x=layers,
            y=[r.random_mean for r in result.layers],
            error_y={"type": "data", "array": [r.random_std for r in result.layers]},
            name="random concepts",
            marker_color=MUTED,
            hovertemplate="%{x}: random %{y:.2f}<extra></extra>",
        )
    )
    for r in result.layers:
        label = f"p={r.p_value:.3g}" if np.isfinite(r.p_value) else "p=n/a"
        fig.add_annotation(
            x=r.layer,
            y=min(1.12, max(r.score_mean + r.score_std, r.random_mean + r.random_std) + 0.06),
            text=("★ " if r.significant else "") + label,
            showarrow=False,
            font={"size": 12, "color": "#000000" if r.significant else "#777777"},
        )
    fig.add_hline(y=0.5, line={"dash": "dot", "color": "#777777"})
    fig.update_layout(
        template=TEMPLATE,
        barmode="group",
        title={"text": f"TCAV: class “{result.class_name}” vs concept “{result.concept}”"},
        yaxis={"title": {"text": "TCAV score"}, "range": [0, 1.2]},
        xaxis={"title": {"text": "layer"}},
        height=420,
        margin={"l": 50, "r": 20, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.2},
    )
    return fig


__all__ = [
    "MAP_LIMITS",
    "TCAV_LIMITS",
    "embedding_figure",
    "embedding_html",
    "neighbour_strip_figure",
    "tcav_figure",
    "thumbnail_uri",
]
