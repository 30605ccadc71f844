"""Display pieces shared by the pages: header, sidebar, error boundary, image grids."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import streamlit as st

from medviz.errors import MedvizError
from medviz.ui import cache, pages, settings, state

log = logging.getLogger(__name__)


# --- timings -------------------------------------------------------------------------------------


def record_timing(page: str, seconds: float) -> None:
    """Append one script run's duration to ``$MEDVIZ_TIMINGS_FILE`` (JSON lines), if set."""
    target = settings.timings_file()
    if target is None:
        return
    try:
        with open(target, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"page": page, "seconds": round(seconds, 4)}) + "\n")
    except OSError:
        log.warning("cannot append timings to %s", target)


# --- errors --------------------------------------------------------------------------------------


def error_message(err: BaseException) -> str:
    """The sentence shown to a user for an error they caused."""
    if isinstance(err, MedvizError):
        text = str(err)
    elif isinstance(err, OSError):
        detail = err.strerror or str(err)
        where = f" ({state.path_label(err.filename)})" if getattr(err, "filename", None) else ""
        text = f"could not read or write a file{where}: {detail}"
    else:
        text = str(err)
    if not text:
        return "Something went wrong."
    text = state.scrub_paths(text)  # demo mode never shows where things live on the server
    first = text.split(" ", 1)[0]
    if any(ch in first for ch in "./:_\\'\"<"):  # starts with a file name or a quoted value
        return text
    return text[:1].upper() + text[1:]


@contextlib.contextmanager
def user_errors(prefix: str = "") -> Iterator[None]:
    """Show MedViz and file-system errors as ``st.error`` and carry on (no traceback).

    Streamlit's own control-flow exceptions (rerun, stop, switch page) pass through.
    """
    try:
        yield
    except (MedvizError, OSError) as err:
        log.info("user error: %s", err)
        st.error(f"{prefix}{error_message(err)}", icon=":material/error:")


# --- page frame ----------------------------------------------------------------------------------


STYLE_SHEET = Path(__file__).resolve().parent / "assets" / "style.css"


def style() -> None:
    """Add MedViz's style rules (``assets/style.css``) to the page; call once per run."""
    st.html(f"<style>{STYLE_SHEET.read_text(encoding='utf-8')}</style>")


def page_header(key: str, intro: str) -> None:
    """The page's title (its :attr:`~medviz.ui.pages.Page.heading`) and one line on what it is for.

    Args:
        key: The page's key in :data:`medviz.ui.pages.PAGES`, e.g. ``"classify"``.
        intro: One sentence or two under the title.

    Raises:
        ValueError: ``key`` names no page.
    """
    st.title(pages.page(key).heading, anchor=False)
    st.caption(intro)


def sidebar() -> None:
    """Active model and dataset, training status, demo switch and the medical disclaimer."""
    state.collect_finished_jobs()
    app = state.get()
    with st.sidebar:
        entry = state.active_model()
        st.markdown("**Active model**")
        if entry is None:
            st.caption("None yet — pick one on **Models** or press **Run the demo** on Home.")
        else:
            st.markdown(f":material/neurology: {entry.title}")
            st.caption(f"{entry.summary} · {state.ORIGIN_LABELS[entry.origin]}")
        st.markdown("**Dataset**")
        choice = state.active_dataset()
        if choice is None:
            st.caption("None yet — choose one on **Data**.")
        else:
            st.markdown(f":material/dataset: {choice.label}")
            size = f"{choice.image_size} px" if choice.image_size else "native size"
            limit = (
                f" · ≤{choice.limit_per_class}/class" if choice.limit_per_class is not None else ""
            )
            st.caption(f"{size}{limit}")
        job = state.running_job()
        if job is not None:
            st.markdown("**Training**")
            st.page_link(pages.path("train"), label=job.title, icon=":material/model_training:")
        st.divider()
        if settings.demo_forced():
            st.badge("Demo mode", icon=":material/co_present:", color="blue")
        else:
            app.demo_toggle = st.toggle(
                "Presentation mode",
                value=app.demo_toggle,
                help="Hides server paths and model uploads, as MEDVIZ_DEMO=1 does.",
            )
        st.caption(f":material/medical_information: **{settings.DISCLAIMER}**")


def views(options: Sequence[str], *, key: str, label: str = "View") -> str:
    """A row of view buttons; only the chosen view is computed and drawn (unlike tabs)."""
    chosen = st.segmented_control(
        label,
        list(options),
        default=options[0],
        required=True,
        key=key,
        label_visibility="collapsed",
    )
    return chosen or options[0]


# --- models --------------------------------------------------------------------------------------


def activate_shipped(name: str = settings.DEFAULT_MODEL) -> state.ModelEntry:
    """Make a shipped model the session's active model.

    Raises:
        ModelError: No such shipped model, or its card is unreadable.
    """
    from medviz.errors import ModelError

    model = cache.shipped_model(name)
    if model is None:
        raise ModelError(
            f"the shipped model {name!r} is not in {state.path_label(settings.models_dir())}"
        )
    return state.add_model(cache.shipped_entry(model))


def start_demo() -> None:
    """The one-click demo: the shipped default model and the embedded data, first example."""
    activate_shipped(settings.DEFAULT_MODEL)
    state.set_dataset(state.default_dataset_choice())
    state.get().classify_example = -1  # Classify opens on the first positive example


def require_model(purpose: str) -> state.ModelEntry | None:
    """The active model; without one, say so and offer the shipped default in one click."""
    entry = state.active_model()
    if entry is not None:
        return entry
    st.info(f"No model is active. {purpose}", icon=":material/info:")
    cols = st.columns([1, 1, 2])
    if cols[0].button(
        "Use the shipped default model", type="primary", icon=":material/bolt:", key="use_default"
    ):
        with user_errors():
            activate_shipped()
            st.rerun()
    cols[1].page_link(pages.path("models"), label="Browse models", icon=":material/inventory_2:")
    return None


def load_active_model(purpose: str):
    """The active model's entry, bundle and explainer; the page stops when there are none.

    Without an active model this offers the shipped default (see :func:`require_model`);
    a model that fails to load shows its error. Either way the rest of the page is skipped.

    Returns:
        ``(entry, bundle, explainer)``, all cached per model file.
    """
    entry = require_model(purpose)
    if entry is None:
        st.stop()
    bundle = explainer = None
    with user_errors(), st.spinner("Loading the model…"):
        bundle = cache.bundle(entry)
        explainer = cache.explainer(entry)
    if bundle is None or explainer is None:
        st.stop()
    return entry, bundle, explainer


def require_dataset() -> state.DatasetChoice:
    """The session's dataset, or the embedded synthetic one when none was chosen."""
    return state.active_dataset() or state.default_dataset_choice()


# --- images --------------------------------------------------------------------------------------


def upscale(image: np.ndarray, size: int = 256) -> np.ndarray:
    """Enlarge a small image for display with nearest-neighbour (every pixel stays visible)."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    height, width = arr.shape[:2]
    factor = max(1, size // max(height, width))
    if factor == 1:
        return arr
    return np.repeat(np.repeat(arr, factor, axis=0), factor, axis=1)


def to_display(image: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 3)`` uint8 for ``st.image`` (floats in [0, 1] are scaled)."""
    arr = np.asarray(image)
    if np.issubdtype(arr.dtype, np.floating):
        arr = np.clip(np.round(arr * 255.0), 0, 255).astype(np.uint8)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    return arr


def image_grid(
    images: Sequence[np.ndarray] | np.ndarray,
    captions: Sequence[str] | None = None,
    *,
    columns: int = 6,
    size: int = 160,
) -> None:
    """Images in rows of ``columns``, each enlarged to about ``size`` pixels."""
    items = list(images)
    for start in range(0, len(items), columns):
        cols = st.columns(columns)
        for offset, image in enumerate(items[start : start + columns]):
            caption = captions[start + offset] if captions is not None else None
            cols[offset].image(upscale(to_display(image), size), caption=caption, width="stretch")


# --- trust checks --------------------------------------------------------------------------------


def family_references(
    token: str, digest: str, explainer, image: np.ndarray, class_index: int, layer: str
) -> dict[str, np.ndarray]:
    """Maps of one reference method per family (a CAM, integrated gradients, occlusion).

    Cached like every heatmap of the page, so a map the user also shows is computed once.
    """
    from medviz.explain.checks import REFERENCES

    maps = {}
    for method in REFERENCES.values():
        result = cache.explanation(token, digest, method, class_index, layer, explainer, image)
        maps[method] = result.heatmap
    return maps


def trust_verdict(summary) -> None:
    """The checks' verdict under a heatmap: red with the failed checks, else a grey caption."""
    line = summary.line()
    if summary.failed:
        st.markdown(f":red[:material/gpp_bad: **{line}**]")
    elif summary.trusted:
        st.caption(f":material/verified_user: {line}")
    else:
        st.caption(f":material/help: {line}")


def localisation_problem(choice: state.DatasetChoice, class_names: Sequence[str]) -> str | None:
    """Why the dataset ``choice`` cannot score the model's heatmaps, known before loading.

    Registered datasets are judged by their registry entry (masks or boxes, class
    names matched by name); other sources are judged once loaded.
    """
    from medviz.data import DATASETS
    from medviz.data.registry import has_lesion_masks
    from medviz.explain.trust import map_class_names

    spec = DATASETS.get(choice.source) if choice.kind == "registry" else None
    if spec is None:
        return None
    if not has_lesion_masks(spec):
        return (
            f"the active dataset {spec.name!r} has no lesion masks or boxes; choose one that "
            "has (e.g. synthetic-microcalc, brain-tumor-boxes) on **Data**"
        )
    try:
        map_class_names(class_names, spec.class_names)
    except MedvizError as err:
        return f"the active dataset {spec.name!r} does not match the active model: {err}"
    return None


def colour_legend(
    colormap: str = "jet", *, label: str = "importance", width: int | str = 320
) -> None:
    """A horizontal colour bar with low/high labels: the legend of a heatmap overlay."""
    from medviz.explain import colorbar

    legend = colorbar(colormap, height=256, width=12)
    bar = np.rot90(legend.image, k=-1)  # high values on the right
    st.image(bar, width=width)
    st.caption(f"Colour legend: ← low {label} · high {label} →")


def clickable_cells(figure, class_names: Sequence[str], *, selected: tuple[int, int] | None = None):
    """Make the cells of a confusion-matrix heatmap selectable by a click.

    Plotly heatmaps cannot be *selected* (Streamlit's ``on_select`` only reports
    points of selectable traces), so an invisible square marker sits on every
    cell centre; a click selects it and outlines the cell. Its ``customdata`` is
    ``[true, predicted]``. ``selected`` (``(true, predicted)``) is outlined by a
    rectangle on the cell's edges: the page's remembered cell stays marked when
    the figure is redrawn and the chart's own selection is gone.
    """
    import plotly.graph_objects as go

    names = list(class_names)
    true_idx = [t for t in range(len(names)) for _ in range(len(names))]
    pred_idx = [p for _ in range(len(names)) for p in range(len(names))]
    figure.add_trace(
        go.Scatter(
            x=[names[p] for p in pred_idx],
            y=[names[t] for t in true_idx],
            customdata=[[t, p] for t, p in zip(true_idx, pred_idx, strict=True)],
            mode="markers",
            marker={
                "symbol": "square-open",
                "size": max(24, 200 // max(len(names), 1)),
                "color": "#D55E00",
                "line": {"width": 3},
                "opacity": 0,
            },
            selected={"marker": {"opacity": 1}},
            unselected={"marker": {"opacity": 0}},
            hovertemplate="true %{y}<br>predicted %{x}<br>click to see the images<extra></extra>",
            showlegend=False,
            name="cells",
        )
    )
    # The markers must not widen the axes: keep exactly one cell per category.
    k = len(names)
    if selected is not None:
        true_k, pred_k = selected
        # Category axes place category i at i, so the cell spans i ± 0.5.
        figure.add_shape(
            type="rect",
            x0=pred_k - 0.5,
            x1=pred_k + 0.5,
            y0=true_k - 0.5,
            y1=true_k + 0.5,
            line={"color": "#D55E00", "width": 3},
            layer="above",
        )
    figure.update_xaxes(range=[-0.5, k - 0.5], autorange=False)
    figure.update_yaxes(range=[k - 0.5, -0.5], autorange=False)
    return figure
