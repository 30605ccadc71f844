"""Train page helpers: resume an interrupted run, TensorBoard log folder and command.

The run store and its backups are :mod:`medviz.services.jobs` and :mod:`medviz.resume`;
here only the widgets that offer them.
"""

from __future__ import annotations

import time
from pathlib import Path

import streamlit as st

from medviz.services.jobs import TrainingJob, resumable_runs, resume_job, slug
from medviz.training import TrainConfig
from medviz.ui import cache, components, settings, state


def resume_panel(choice: state.DatasetChoice, *, running: TrainingJob | None) -> None:
    """Offer to continue an interrupted run of the chosen dataset (none: nothing shown).

    A run is interrupted when the server that trained it stopped (closed laptop,
    killed process); it continues from its last finished epoch with its own
    settings and reaches the result an uninterrupted run would have.
    """
    runs = resumable_runs(settings.runs_dir(), choice.key)
    if not runs:
        return
    with st.container(border=True):
        st.markdown(
            f"**{len(runs)} interrupted training{'s' if len(runs) > 1 else ''}** of this "
            "dataset can continue from the last finished epoch, with its own settings."
        )
        cols = st.columns([3, 1])
        pick = cols[0].selectbox(
            "Interrupted run",
            range(len(runs)),
            format_func=lambda i: runs[i].label,
            key="train_resume_pick",
        )
        clicked = cols[1].button(
            "Resume",
            icon=":material/play_circle:",
            disabled=running is not None,
            help="One training at a time per session." if running else None,
            key="train_resume",
        )
    if clicked and running is None:
        run = runs[int(pick)]
        with components.user_errors():
            config = TrainConfig.from_dict(run.settings["config"])
            with st.spinner("Loading images…"):
                data = cache.dataset(choice, image_size=config.image_size)
            state.add_job(resume_job(run, data).start())
            st.rerun()


def log_folder(title: str) -> Path | None:
    """A new TensorBoard log folder for a run called ``title`` (``None`` without a run store)."""
    root = settings.runs_dir()
    if root is None:
        return None
    return root / "logs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{slug(title)}"


def show_logs(job: TrainingJob) -> None:
    """Where the job's TensorBoard and CSV logs are and how to look at them."""
    if job.log_dir is None:
        return
    from medviz.training_logs import CSV_FILE, tensorboard_command

    st.markdown(
        f"**TensorBoard logs:** `{job.log_dir}` (curves, and Grad-CAM images of a few validation "
        f"images per epoch; one row per epoch in `{CSV_FILE}`). View them with:"
    )
    st.code(tensorboard_command(job.log_dir), language="bash")
