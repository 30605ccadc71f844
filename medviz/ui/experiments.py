"""Streamlit glue of the Experiments page: cards, starting a run, the comparison table.

An experiment (:mod:`medviz.experiments`) runs as an ordinary background
:class:`~medviz.services.jobs.TrainingJob` (the Train page's, with its live curves
and Stop); :class:`ExperimentRun` remembers which experiment a job belongs to, so
the page can put :func:`medviz.reproduce.build_report`'s table beside it once the
job ends. Starting a run also makes the experiment's dataset the session's
dataset, so the finished model opens in Evaluate and Explain on the right images.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd
import streamlit as st

from medviz.experiments import Experiment, experiment_files, list_experiments
from medviz.reproduce import (
    QUICK_LIMIT_ENV,
    ReproduceReport,
    build_report,
    format_mean_std,
    format_value,
    quick_config,
)
from medviz.services.jobs import TrainingJob
from medviz.ui import cache, state

RUN_KEY = "experiment_run"


@dataclass(frozen=True)
class ExperimentRun:
    """The experiment a session's background job is running.

    Attributes:
        job_id: The :class:`TrainingJob`'s id.
        name: The experiment's name.
        quick: Whether it is a quick (smoke) run.
        choice: The dataset as loaded for the run (its key finds the cached data).
    """

    job_id: str
    name: str
    quick: bool
    choice: state.DatasetChoice


@st.cache_resource(show_spinner=False)
def _experiments(signature: tuple[tuple[str, float], ...]) -> tuple[Experiment, ...]:
    # Keyed by file names and modification times: an edited file is read again.
    # Shared by every session: experiments are read-only, frozen values.
    del signature
    return tuple(list_experiments())


def experiments() -> tuple[Experiment, ...]:
    """Every experiment of :func:`medviz.experiments.experiments_dir` (cached until a file changes).

    Raises:
        DataError: An experiment file is invalid.
    """
    files = experiment_files()
    return _experiments(tuple((str(p), p.stat().st_mtime) for p in files))


def dataset_choice(experiment: Experiment, *, quick: bool) -> state.DatasetChoice:
    """The dataset choice of a run of ``experiment`` (tiny in quick mode)."""
    config = quick_config(experiment) if quick else experiment.config
    return state.DatasetChoice(
        kind="registry",
        source=experiment.dataset,
        label=experiment.dataset + (" (quick sample)" if quick else ""),
        image_size=config.image_size,
        channels=experiment.channels,
        limit_per_class=int(os.environ.get(QUICK_LIMIT_ENV, "12")) if quick else None,
        seed=experiment.config.seed,
    )


def start(experiment: Experiment, *, repeats: int, quick: bool) -> TrainingJob:
    """Load the data, start the experiment's background job and make its data the session's.

    Raises:
        DataError: The data is missing or lacks a train or val split.
    """
    from medviz.data.registry import get_spec

    choice = dataset_choice(experiment, quick=quick)
    config = quick_config(experiment) if quick else experiment.config
    data = cache.dataset(choice)
    job = TrainingJob(
        name=experiment.name,
        title=experiment.title + (" (quick)" if quick else ""),
        config=config,
        data=data,
        dataset_label=choice.label,
        modality=get_spec(experiment.dataset).modality,
        repeats=repeats,
        n_bootstrap=0 if quick else 200,
        command=f"medviz reproduce {experiment.name}"
        + (" --quick" if quick else f" --repeats {repeats}")
        + " (Experiments page)",
    )
    state.add_job(job.start())
    state.set_dataset(choice)  # Evaluate and Explain open the run on its own images
    state.remember(RUN_KEY, ExperimentRun(job.id, experiment.name, quick, choice))
    return job


def current_run() -> tuple[ExperimentRun, TrainingJob] | None:
    """The session's latest experiment run and its job, if any."""
    run = state.recall(RUN_KEY)
    if run is None:
        return None
    job = next((j for j in state.get().jobs if j.id == run.job_id), None)
    return None if job is None else (run, job)


def report_for(run: ExperimentRun, job: TrainingJob, experiment: Experiment) -> ReproduceReport:
    """The comparison of a finished job's runs (computed once per job, kept in the session)."""
    report = state.recall("experiment_report", context=job.id)
    if report is None:
        data = cache.dataset(run.choice)
        report = build_report(experiment, job.runs, data, quick=run.quick)
        state.remember("experiment_report", report, context=job.id)
    return report


def card(experiment: Experiment) -> None:
    """What the experiment is: source, data, time, published figures, weights."""
    st.markdown(f"**{experiment.title}**")
    st.caption(experiment.summary)
    available = experiment.data_available()
    data_line = (
        f"`{experiment.dataset}` · " + ("available here" if available else "**not available**")
        if experiment.dataset
        else ""
    )
    st.markdown(
        f"Data: {data_line}  \n"
        f"Model: `{experiment.config.arch}` at {experiment.config.image_size} px · "
        f"{experiment.repeats} runs · about **{experiment.expected_minutes:g} min** on 2 CPU cores"
    )
    figures = [
        f"{format_value(f.metric, f.value)} {f.metric} ({f.model}; {f.measured_on})"
        for f in experiment.published
    ]
    st.markdown("Published: " + ("; ".join(figures) if figures else "no figure recorded"))
    with st.expander("Source, split and weights"):
        link = f" <{experiment.url}>" if experiment.url else ""
        st.markdown(f"{experiment.source_work}. {experiment.citation}{link}")
        st.markdown(f"**Split:** {experiment.split}")
        st.markdown(f"**Weights:** {experiment.weights}")
        if experiment.notes:
            st.markdown(f"**Notes:** {experiment.notes}")
        st.code(f"medviz reproduce {experiment.name}", language="bash")


def comparison_frame(report: ReproduceReport) -> pd.DataFrame:
    """Published vs MedViz, one row per metric (and the baseline)."""
    rows = [
        {
            "metric": row.metric,
            "published": format_value(row.metric, row.published)
            + (f" ({row.published_model})" if row.published_model else ""),
            "measured on": row.measured_on or "–",
            f"MedViz mean ± std ({report.split})": format_mean_std(row.metric, row.mean, row.std),
            "runs": row.runs,
        }
        for row in report.rows
    ]
    if report.baseline is not None:
        b = report.baseline
        rows.append(
            {
                "metric": f"accuracy, pixel-threshold baseline ({b['threshold']})",
                "published": format_value("accuracy", b.get("published")),
                "measured on": "same split",
                f"MedViz mean ± std ({report.split})": format_value("accuracy", b["accuracy"]),
                "runs": 1,
            }
        )
    return pd.DataFrame(rows)


def per_run_frame(report: ReproduceReport) -> pd.DataFrame:
    """One row per run."""
    return pd.DataFrame(list(report.per_run))
