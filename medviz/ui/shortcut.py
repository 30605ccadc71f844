"""Streamlit glue of the Shortcut lab page: dataset choices, the job in the session, results.

The computation is :mod:`medviz.explore.shortcut`, run in the background by
:class:`medviz.services.shortcut.ShortcutJob`; this module only decides what
the page offers, keeps the job in the session's state and draws its progress
(the Train page's fragment-polling pattern) and its results.

``MEDVIZ_SHORTCUT_LIMIT`` caps the images per class (and split) the page loads
by default (tests: a few dozen).
"""

from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pandas as pd
import streamlit as st

from medviz.data import DATASETS
from medviz.data.dataset import Dataset
from medviz.explore.markers import Marker, stamp
from medviz.explore.shortcut import (
    CONTROL_TITLES,
    DEFAULT_IMAGE_SIZE,
    ShortcutResult,
    expected_seconds,
)
from medviz.explore.shortcut_plots import accuracy_figure, heatmap_grid_figure
from medviz.plots import history_figure
from medviz.services.jobs import format_seconds
from medviz.services.shortcut import PHASES, ShortcutJob
from medviz.ui import cache, settings, state

JOB_KEY = "shortcut_job"
#: Largest side the lab trains at (with 8 epochs: under two minutes on a quiet 2-core CPU).
MAX_IMAGE_SIZE = DEFAULT_IMAGE_SIZE
#: Default images per class and split for real (folder) datasets, so a run stays short.
REAL_DATA_LIMIT = 400

WHAT_IT_SHOWS = (
    "It shows how far a network trained where a marker co-occurs with one class decides by the "
    "marker: accuracy falls when the marker moves to the other class (the reliance score), "
    "and Grad-CAM shows whether its heat sits on the marker. It cannot show which shortcuts a "
    "model trained on *your* real data has picked up (it only tests the marker it planted "
    "itself), and a score near 0 means this marker was not used, not that the model is free of "
    "other shortcuts."
)


def env_limit() -> int | None:
    """``MEDVIZ_SHORTCUT_LIMIT`` (images per class and split), or ``None``."""
    raw = os.environ.get("MEDVIZ_SHORTCUT_LIMIT", "").strip()
    try:
        return max(1, int(raw)) if raw else None
    except ValueError:
        return None


def binary_choices() -> list[state.DatasetChoice]:
    """Binary datasets the lab can use: the registry's that are present, embedded first, and
    the session's own dataset when it is not a registry one (checked for two classes on start)."""
    choices = []
    for spec in DATASETS.values():
        if len(spec.class_names) != 2 or not spec.is_available():
            continue
        choices.append(
            state.DatasetChoice(
                kind="registry",
                source=spec.name,
                label=spec.name,
                image_size=min(spec.image_size, MAX_IMAGE_SIZE),
                channels=spec.channels,
                limit_per_class=env_limit()
                or (None if spec.kind == "generated" else REAL_DATA_LIMIT),
            )
        )
    active = state.active_dataset()
    if active is not None and active.kind != "registry":
        size = min(active.image_size or MAX_IMAGE_SIZE, MAX_IMAGE_SIZE)
        choices.append(replace(active, image_size=size))
    return choices


def class_names_of(choice: state.DatasetChoice) -> tuple[str, ...] | None:
    """Class names without loading when the registry knows them."""
    spec = DATASETS.get(choice.registry_name or "")
    return spec.class_names if spec is not None else None


def load(choice: state.DatasetChoice) -> Dataset:
    """The dataset of ``choice`` at its (lab) image size, through the shared cache."""
    return cache.dataset(choice)


def current_job() -> ShortcutJob | None:
    """This session's latest shortcut-lab job."""
    return state.recall(JOB_KEY)


def start_job(job: ShortcutJob) -> ShortcutJob:
    """Keep ``job`` in the session and start it."""
    state.remember(JOB_KEY, job)
    return job.start()


def expected_time(n_train: int, *, image_size: int, epochs: int) -> str:
    """``"about 1 min 05 s"`` for the lab on a 2-core CPU."""
    return "about " + format_seconds(
        expected_seconds(n_train, image_size=image_size, epochs=epochs)
    )


def train_count(choice: state.DatasetChoice) -> int | None:
    """Training images of the choice without loading it (embedded data), else ``None``."""
    spec = DATASETS.get(choice.registry_name or "")
    if spec is not None and spec.kind == "generated":
        total = 2400 if choice.limit_per_class is None else 2 * choice.limit_per_class
        return round(0.7 * total)
    return None


def preview(data: Dataset, marker: Marker, marked_class: int) -> tuple[np.ndarray, np.ndarray]:
    """One training image of the marked class, without and with the marker (``(S, S, C)`` each)."""
    members = np.flatnonzero((data.labels == marked_class) & (data.splits == "train"))
    image = data.images[members[0] if len(members) else 0]
    return image, stamp(image[None], marker)[0]


def show_progress(job: ShortcutJob) -> None:
    """Progress, times and Stop, refreshed while the job runs (a fragment)."""

    @st.fragment(run_every=settings.poll_seconds() if job.running else None)
    def live() -> None:
        snap = job.snapshot()
        st.progress(snap.fraction, text=snap.message)
        cols = st.columns(4)
        cols[0].metric("Elapsed", format_seconds(snap.elapsed_s))
        cols[1].metric("Time left", format_seconds(snap.eta_s) if job.running else "–")
        cols[2].metric("Step", PHASES[min(job.phase, 2)] if job.running else snap.message)
        if job.running:
            cols[3].button(
                "Stop",
                icon=":material/stop_circle:",
                on_click=job.stop,
                disabled=job.stop_requested,
                help="Stops after the current batch; the lab needs both models to score.",
                key=f"shortcut_stop_{job.id}",
            )
        if job.running:
            epochs = len(next(iter(snap.history.values()), []))
            context = f"{job.id}|{job.phase}|{epochs}"
            figure = state.recall("shortcut_curves", context=context)
            if figure is None:  # rebuild only after a new epoch
                figure = history_figure(snap.history)
                figure.update_layout(title=f"Training history · {PHASES[min(job.phase, 2)]}")
                state.remember("shortcut_curves", figure, context=context)
            st.plotly_chart(figure, key=f"shortcut_history_{job.id}")
        elif state.context_changed("shortcut_refreshed", job.id):
            st.rerun(scope="app")  # draw the results below

    live()


def show_result(result: ShortcutResult) -> None:
    """The side-by-side results: scores, accuracy bars, Grad-CAM grid and a table."""
    short, clean = result.shortcut, result.clean
    cols = st.columns(4)
    cols[0].metric(
        "Reliance score · with marker",
        f"{short.reliance:+.2f}",
        help="Balanced accuracy on aligned minus on swapped test images (up to +1: decides by "
        "the marker; about 0: ignores it).",
    )
    cols[1].metric(
        "Reliance score · control",
        f"{clean.reliance:+.2f}",
        help=f"The {CONTROL_TITLES[result.control]}.",
    )
    cols[2].metric("Clean test accuracy · with marker", f"{short.balanced_accuracy['clean']:.1%}")
    cols[3].metric("Clean test accuracy · control", f"{clean.balanced_accuracy['clean']:.1%}")
    st.plotly_chart(accuracy_figure(result), key="shortcut_accuracy")
    if result.marker.has_region:
        st.markdown(
            f"**Grad-CAM mass on the marker**: {short.marker_mass:.0%} for the model trained with "
            f"it, {clean.marker_mass:.0%} for the control; the marker covers "
            f"{result.marker_area:.0%} of each image (a uniform heatmap's share)."
        )
    else:
        st.markdown(
            "A brightness offset has no region, so no heatmap share is measured; compare the "
            "maps by eye."
        )
    st.plotly_chart(heatmap_grid_figure(result), key="shortcut_gradcam")
    rows = [
        {
            "model": label,
            "clean": scores.balanced_accuracy["clean"],
            "aligned": scores.balanced_accuracy["aligned"],
            "swapped": scores.balanced_accuracy["swapped"],
            "reliance score": scores.reliance,
            "Grad-CAM on marker": scores.marker_mass,
            "epochs": scores.epochs_run,
            "train s": round(scores.seconds, 1),
        }
        for label, scores in (
            ("trained with the marker", short),
            (CONTROL_TITLES[result.control], clean),
        )
    ]
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="shortcut_table")
    st.caption(
        f"{result.dataset}: marker {result.marker.describe()} in {result.fraction:.0%} of "
        f"'{result.marked_class_name}' train and val images ({result.n_marked} stamped), "
        f"{result.config.arch} at {result.image_size} px, {result.config.epochs} epochs per "
        f"model, {result.n_test} test images, {format_seconds(result.seconds)} in all. "
        "Accuracies are balanced (mean recall of the two classes) at the arg-max decision."
    )
    if abs(clean.reliance) > 0.2:
        st.info(
            f"The control also scores {clean.reliance:+.2f}: the marker changes its decisions "
            "though it never learnt a link between marker and class. A network that never saw "
            "the marker can read any unfamiliar structure as the class's evidence (a "
            "lesion detector calls 'something stands out' a lesion); what training with the "
            f"marker added is the difference, {short.reliance - clean.reliance:+.2f}.",
            icon=":material/info:",
        )
    if short.reliance > 0.5:
        st.warning(
            "The model trained with the marker decides largely by it: accurate where the marker "
            "goes with its class, wrong once it moves.",
            icon=":material/warning:",
        )


def show_job(job: ShortcutJob) -> None:
    """Progress while running, then the results (or why there are none)."""
    st.subheader(f"Shortcut lab on {job.dataset_label}", anchor=False)
    st.caption(f"Marker: {job.marker.describe()} · {job.fraction:.0%} of the class")
    show_progress(job)
    if job.running:
        return
    if job.result is not None:
        show_result(job.result)
    elif job.status == "failed":
        st.error(job.error or "The shortcut lab failed.", icon=":material/error:")
    else:
        st.warning(job.error or "Stopped before both models were trained.")
