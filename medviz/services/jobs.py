"""Training outside the caller's thread: a background job a front end polls.

A web page's script is rerun on every widget change and stopped when the user
switches page, so a training run cannot live in it. A :class:`TrainingJob`
runs :func:`medviz.pipeline.train_repeats` (the one repeat loop, also behind
``python -m medviz train --repeats``) in a daemon thread; the thread only
writes to the job object (under its lock). The app keeps the job in the
session's state (:class:`medviz.ui.state.AppState`) and its Train page polls
:meth:`TrainingJob.snapshot`. :meth:`TrainingJob.stop` sets a
:class:`threading.Event` the trainer polls after every batch (``should_stop``),
and the best weights seen so far are kept.

Given ``runs_dir``, a job records its run in a :class:`~medviz.store.RunStore`
(``app.json`` holds what the page needs to start it again) and backs up its
training state after every epoch (:mod:`medviz.resume`); a run whose server
died lists as interrupted, and :func:`resumable_runs` / ``resume=`` continue
it from its last finished epoch. ``log_dir`` adds TensorBoard and CSV logs
(:mod:`medviz.training_logs`).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from medviz.errors import MedvizError

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import Dataset
    from medviz.pipeline import PackagedRun
    from medviz.store import RunRecord
    from medviz.training import BatchProgress, EpochProgress, TrainConfig

log = logging.getLogger(__name__)

Status = Literal["starting", "running", "finished", "stopped", "failed"]


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's progress, for display."""

    status: Status
    fraction: float
    message: str
    history: dict[str, list[float]]
    eta_s: float
    elapsed_s: float
    run: int
    repeats: int
    error: str | None


class ThreadedJob:
    """Start, stop and wait for a job's ``_run`` in a daemon thread (training, shortcut lab,
    transfer comparison).

    The dataclass using it has ``id``, ``status``, ``_stop`` (an Event) and
    ``_thread`` fields and a ``_run`` method; ``_thread_name`` names its threads.
    Stopping is a request the work polls after every batch.
    """

    _thread_name = "medviz-job"

    def start(self):
        """Start the background thread (once); returns the job."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"{self._thread_name}-{self.id}", daemon=True
            )
            self.status = "running"
            self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the work to stop after the current batch (the best weights are kept)."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread; return whether it has ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    @property
    def running(self) -> bool:
        """Whether the job is still working."""
        return self.status in ("starting", "running")

    @property
    def stop_requested(self) -> bool:
        """Whether Stop was asked for."""
        return self._stop.is_set()


@dataclass
class TrainingJob(ThreadedJob):
    """One training request (one run, or several seeds) running in a background thread.

    Attributes:
        name: Model name for the card (a slug).
        title: Name shown to people.
        config: Training settings.
        data: The dataset (already at the training image size).
        dataset_label: Dataset name shown to people.
        modality: Modality recorded in the model card.
        repeats: Number of runs with seeds ``config.seed + i``.
        n_bootstrap: Bootstrap resamples of the AUC intervals.
        runs_dir: Run store to record the run in, with a per-epoch backup
            (``None``: nothing on disk). Single runs only are resumable.
        log_dir: TensorBoard/CSV log folder (single runs only; ``None``: none).
        dataset_key: The page's dataset choice key, recorded for resuming.
        resume: An interrupted run (of :func:`resumable_runs`) to continue.
        command: How the model was made, recorded in its card.
    """

    name: str
    title: str
    config: TrainConfig
    data: Dataset
    dataset_label: str
    modality: str = "unknown"
    repeats: int = 1
    n_bootstrap: int = 500
    runs_dir: Path | None = None
    log_dir: Path | None = None
    dataset_key: str = ""
    resume: RunRecord | None = None
    record: RunRecord | None = None
    command: str = "MedViz web app (Train page)"
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    status: Status = "starting"
    started: float = field(default_factory=time.time)
    finished: float | None = None
    runs: list[PackagedRun] = field(default_factory=list)
    summary: dict[str, tuple[float, float]] | None = None
    summary_split: str | None = None
    error: str | None = None
    collected: bool = False
    _epoch: EpochProgress | None = None
    _batch: BatchProgress | None = None
    _run_index: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    _thread_name = "medviz-train"

    @property
    def best(self) -> PackagedRun | None:
        """The run to keep: highest validation AUC, then accuracy (never test; see
        :func:`medviz.pipeline.select_run`), or the only one."""
        if not self.runs:
            return None
        from medviz.pipeline import select_run

        return select_run(self.runs)

    # --- the thread -----------------------------------------------------------------------
    def _on_epoch(self, progress: EpochProgress) -> None:
        with self._lock:
            self._epoch = progress

    def _on_batch(self, progress: BatchProgress) -> None:
        with self._lock:
            self._batch = progress

    def _on_run_end(self, index: int, run: PackagedRun) -> None:
        with self._lock:
            self.runs.append(run)
            self._run_index = index + 1
            self._epoch = self._batch = None

    def _open_record(self) -> RunRecord | None:
        """The run-store record of this job (created, or the interrupted one reopened)."""
        from medviz.store import RunStore
        from medviz.store.atomic import atomic_write_json

        if self.resume is not None:
            return RunStore(self.resume.folder.parent).reopen(self.resume)
        if self.runs_dir is None:
            return None
        record = RunStore(self.runs_dir).create(
            {"data": self.dataset_label, **self.config.to_dict()}, label=self.name
        )
        atomic_write_json(
            record.folder / APP_RUN_FILE,
            {
                "dataset_key": self.dataset_key,
                "dataset_label": self.dataset_label,
                "name": self.name,
                "title": self.title,
                "modality": self.modality,
                "repeats": self.repeats,
                "log_dir": str(self.log_dir) if self.log_dir else None,
                "config": self.config.to_dict(),
            },
        )
        return record

    def _close_record(self, status: Status) -> None:
        """Store the kept model in the run store (or mark the run failed); never raises."""
        import shutil

        from medviz.store import RunStore

        record = self.record
        if record is None:
            return
        store = RunStore(record.folder.parent)
        try:
            best = self.best
            if best is None:
                store.fail(record, self.error or status)
            else:
                metrics = {split: ev.to_dict() for split, ev in best.evaluations.items()}
                store.finish(
                    record,
                    model=best.bundle.model,
                    card=best.bundle.card,
                    metrics=metrics,
                    status="finished" if status == "finished" else status,
                )
            shutil.rmtree(record.folder / "backup", ignore_errors=True)
        except (OSError, MedvizError):  # the model is in the session; the store is a copy
            log.exception("could not record run %s", record.run_id)

    def _run(self) -> None:
        from medviz.pipeline import train_repeats

        status: Status = "finished"
        try:
            self.record = self._open_record()
            options: dict[str, Any] = {}
            if self.repeats == 1:  # one backup and one log folder describe one run
                if self.record is not None:
                    options["backup_dir"] = self.record.folder / "backup"
                if self.log_dir is not None:
                    options["log_dir"] = self.log_dir
            repeated = train_repeats(
                self.config,
                self.data,
                repeats=self.repeats,
                name=self.name,
                title=self.title,
                modality=self.modality,
                command=self.command,
                on_run_end=self._on_run_end,
                on_epoch_end=self._on_epoch,
                on_batch_end=self._on_batch,
                should_stop=self._stop.is_set,
                n_bootstrap=self.n_bootstrap,
                # The stress table is one click away on Evaluate; here it would delay the
                # model a user just stopped by tens of seconds on a laptop CPU.
                stress_images=0,
                **options,
            )
            if repeated.stopped:
                status = "stopped"
            with self._lock:
                self.summary, self.summary_split = repeated.summary, repeated.split
        except MedvizError as err:
            if self._stop.is_set():
                status, self.error = "stopped", f"Stopped before the first epoch ended: {err}"
            else:
                status, self.error = "failed", str(err)
        except Exception as err:  # the thread must never die silently
            log.exception("training job %s failed", self.id)
            status = "failed"
            self.error = f"Training failed ({type(err).__name__}): {str(err)[:300]}"
        self._close_record(status)
        with self._lock:
            self.status = status
            self.finished = time.time()

    # --- reading ----------------------------------------------------------------------------
    def snapshot(self) -> JobSnapshot:
        """A consistent copy of the progress, safe to read from the script thread."""
        with self._lock:
            epoch, batch, done_runs = self._epoch, self._batch, self._run_index
            status = self.status
            history = {k: list(v) for k, v in (epoch.history if epoch else {}).items()}
            if not history and self.runs:
                history = {k: list(v) for k, v in self.runs[-1].result.history.items()}
        epochs = self.config.epochs
        if batch is not None:
            within = (batch.epoch + batch.batch / max(batch.batches, 1)) / epochs
            eta, elapsed = batch.eta_s, batch.elapsed_s
        elif epoch is not None:
            within = (epoch.epoch + 1) / epochs
            eta, elapsed = epoch.eta_s, epoch.elapsed_s
        else:
            within, eta, elapsed = 0.0, math.nan, time.time() - self.started
        fraction = min(1.0, (done_runs + within) / self.repeats)
        if status in ("finished", "stopped", "failed"):
            fraction = 1.0 if status == "finished" else fraction
            message = {
                "finished": "Finished",
                "stopped": "Stopped — the best weights so far were kept",
                "failed": "Failed",
            }[status]
        elif batch is not None:
            message = (
                f"Epoch {batch.epoch + 1}/{batch.epochs} · batch {batch.batch}/{batch.batches}"
            )
            if epoch is not None:
                message += f" · best {self.config.monitor} {epoch.best_value:.3f}"
        else:
            message = "Preparing data and building the model…"
        if self.repeats > 1 and status in ("starting", "running"):
            message = f"Run {min(done_runs + 1, self.repeats)}/{self.repeats} · {message}"
        if self._stop.is_set() and status in ("starting", "running"):
            message = "Stopping after this batch…"
        return JobSnapshot(
            status=status,
            fraction=float(fraction),
            message=message,
            history=history,
            eta_s=float(eta),
            elapsed_s=float(elapsed),
            run=done_runs,
            repeats=self.repeats,
            error=self.error,
        )


APP_RUN_FILE = "app.json"
"""File of an app run folder: what the Train page needs to resume it."""


@dataclass(frozen=True)
class ResumableRun:
    """An interrupted Train-page run that can continue.

    Attributes:
        record: The run-store record (status ``interrupted``).
        settings: The contents of its ``app.json`` (title, name, modality,
            dataset key and label, log folder, ``config`` as a dict).
        epochs_done: Epochs finished and backed up.
    """

    record: RunRecord
    settings: dict[str, Any]
    epochs_done: int

    @property
    def label(self) -> str:
        """One line naming the run for a choice list."""
        epochs = self.settings.get("config", {}).get("epochs", "?")
        return (
            f"{self.settings.get('title', self.record.run_id)} · {self.epochs_done}/{epochs} "
            f"epochs · started {self.record.started}"
        )


def resumable_runs(runs_dir: Path | None, dataset_key: str) -> list[ResumableRun]:
    """Interrupted Train-page runs of the dataset ``dataset_key`` with a backup, newest first."""
    import json

    from medviz.resume import load_state
    from medviz.store import RunStore

    if runs_dir is None or not Path(runs_dir).is_dir():
        return []
    found = []
    for record in RunStore(runs_dir).list():
        if record.status != "interrupted":
            continue
        try:
            settings = json.loads((record.folder / APP_RUN_FILE).read_text(encoding="utf-8"))
            state = load_state(record.folder / "backup")
        except (OSError, ValueError, MedvizError):
            continue
        if state is None or settings.get("dataset_key") != dataset_key:
            continue
        found.append(ResumableRun(record=record, settings=settings, epochs_done=state.epoch))
    return found


def resume_job(run: ResumableRun, data: Dataset) -> TrainingJob:
    """The job that continues ``run`` on ``data`` (its dataset, loaded at its image size)."""
    from medviz.training import TrainConfig

    settings = run.settings
    log_dir = settings.get("log_dir")
    return TrainingJob(
        name=settings["name"],
        title=settings["title"],
        config=TrainConfig.from_dict(settings["config"]),
        data=data,
        dataset_label=settings.get("dataset_label", ""),
        modality=settings.get("modality", "unknown"),
        dataset_key=settings.get("dataset_key", ""),
        log_dir=Path(log_dir) if log_dir else None,
        resume=run.record,
    )


def slug(text: str) -> str:
    """A file-system friendly model name."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "model"


def format_seconds(seconds: float) -> str:
    """``"1 min 05 s"`` / ``"12 s"`` / ``"–"``."""
    if not math.isfinite(seconds) or seconds < 0:
        return "–"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"
