"""Experiments: rerun a source work's experiment and see its published figure beside yours."""

from __future__ import annotations

import streamlit as st

from medviz.ui import components, pages, state, training_view
from medviz.ui import experiments as ui

components.page_header(
    "experiments",
    "The works MedViz grew from, one card each: what they trained, on which data, and what they "
    "published. Run one (in the background, with live curves and Stop) and compare its "
    "published figure with MedViz's mean ± std over repeated runs. The same runs from the "
    "command line: `medviz reproduce NAME`.",
)

found = None
with components.user_errors():
    found = ui.experiments()
if not found:
    st.info("No experiment files found (the `experiments/` folder of the checkout).")
    st.stop()

running = state.running_job()
current = ui.current_run()
by_name = {e.name: e for e in found}

# --- the run in progress (or the last one) ---------------------------------------------------
if current is not None:
    run, job = current
    experiment = by_name.get(run.name)
    with st.container(border=True):
        training_view.live_job(job, key="experiments")
        state.collect_finished_jobs()  # idempotent: the finished model joins the session
        if not job.running and experiment is not None:
            if job.status == "failed" or not job.runs:
                st.error(job.error or "The run ended before any model was kept.")
            else:
                report = None
                with components.user_errors(), st.spinner("Comparing with the published figures…"):
                    report = ui.report_for(run, job, experiment)
                if report is not None:
                    if report.quick:
                        st.warning("Quick run: a few images, one epoch. The numbers mean nothing.")
                    st.markdown(f"**Published vs MedViz** ({len(job.runs)} run(s))")
                    st.dataframe(
                        ui.comparison_frame(report), hide_index=True, key="experiments_table"
                    )
                    with st.expander("Per-run rows and notes"):
                        st.dataframe(ui.per_run_frame(report), hide_index=True)
                        for note in report.notes:
                            st.caption(note)
                        if report.cross_note:
                            st.caption(f"Cross-dataset test: {report.cross_note}")
                    links = st.columns(3)
                    links[0].page_link(
                        pages.path("evaluate"),
                        label="Open in Evaluate",
                        icon=":material/monitoring:",
                    )
                    links[1].page_link(
                        pages.path("explain"), label="Open in Explain", icon=":material/psychology:"
                    )
                    if "augment" in experiment.links:
                        links[2].page_link(
                            pages.path("augment"),
                            label="Augmentation realism",
                            icon=":material/auto_awesome:",
                        )

# --- the gallery -----------------------------------------------------------------------------
quick = st.toggle(
    "Quick run (a few images, one epoch: checks that it runs, measures nothing)",
    value=False,
    key="experiments_quick",
)
columns = st.columns(2)
for index, experiment in enumerate(found):
    with columns[index % 2].container(border=True):
        ui.card(experiment)
        controls = st.columns([1, 1])
        repeats = int(
            controls[0].number_input(
                "Runs",
                1,
                20,
                1 if quick else experiment.repeats,
                key=f"experiments_repeats_{experiment.name}",
                help="Seeds seed, seed+1, …; the table shows mean ± std over them.",
            )
        )
        available = experiment.data_available()
        clicked = controls[1].button(
            "Run",
            type="primary",
            icon=":material/play_arrow:",
            disabled=running is not None or not available,
            help="One training at a time per session."
            if running is not None
            else (None if available else "Its dataset is not in the data folder here."),
            key=f"experiments_run_{experiment.name}",
        )
        if clicked and running is None:
            with components.user_errors():
                ui.start(experiment, repeats=repeats, quick=quick)
                st.rerun()
