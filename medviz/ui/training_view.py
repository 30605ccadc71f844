"""The live view of a background training job: progress, times, Stop, curves.

The Train page and the Experiments page both show a running
:class:`~medviz.services.jobs.TrainingJob` this way. Each part is an
``st.fragment`` that reruns on its own every few seconds while the job runs,
so the rest of the page is not redrawn; when the job ends, the whole app is
rerun once so the new model joins the sidebar.
"""

from __future__ import annotations

import streamlit as st

from medviz.plots import history_figure
from medviz.services.jobs import TrainingJob, format_seconds
from medviz.ui import settings, state


def live_job(job: TrainingJob, *, key: str = "train") -> None:
    """Show ``job``'s progress with a Stop button, then its curves.

    Args:
        job: The job to follow.
        key: Prefix of the widget keys and kept figures (one per page), e.g.
            ``"train"`` gives ``train_stop_<job id>`` and ``train_history_<job id>``.
    """
    poll = settings.poll_seconds()

    @st.fragment(run_every=poll if job.running else None)
    def live_progress() -> None:
        """Progress, times and the Stop button: cheap, refreshed every poll."""
        snap = job.snapshot()
        st.subheader(job.title, anchor=False)
        st.progress(snap.fraction, text=snap.message)
        cols = st.columns([1, 1, 1, 1])
        cols[0].metric("Elapsed", format_seconds(snap.elapsed_s))
        cols[1].metric("Time left", format_seconds(snap.eta_s) if job.running else "–")
        done = len(next(iter(snap.history.values()), []))
        cols[2].metric("Epochs done", f"{done}/{job.config.epochs}")
        if job.running:
            cols[3].button(
                "Stop",
                icon=":material/stop_circle:",
                on_click=job.stop,
                disabled=job.stop_requested,
                help="Stops after the current batch and keeps the best weights so far.",
                key=f"{key}_stop_{job.id}",
            )
        if not job.running and state.context_changed(f"{key}_refreshed", job.id):
            st.rerun(scope="app")  # the new model joins the sidebar and the model list

    @st.fragment(run_every=max(2.0, 3 * poll) if job.running else None)
    def live_curves() -> None:
        """The Plotly curves, redrawn (less often) from the history so far."""
        snap = job.snapshot()
        epochs = len(next(iter(snap.history.values()), []))
        context = f"{job.id}|{epochs}"
        figure = state.recall(f"{key}_curves", context=context)
        if figure is None:  # rebuild only after a new epoch
            figure = history_figure(snap.history)
            state.remember(f"{key}_curves", figure, context=context)
        st.plotly_chart(figure, key=f"{key}_history_{job.id}")

    live_progress()
    live_curves()
