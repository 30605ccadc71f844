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
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from medviz.errors import MedvizError

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import Dataset
    from medviz.pipeline import PackagedRun
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


@dataclass
class TrainingJob:
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

    # --- control --------------------------------------------------------------------------
    def start(self) -> TrainingJob:
        """Start the background thread (once)."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"medviz-train-{self.id}", daemon=True
            )
            self.status = "running"
            self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the trainer to stop after the current batch (the best weights are kept)."""
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
        return self._stop.is_set()

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

    def _run(self) -> None:
        from medviz.pipeline import train_repeats

        status: Status = "finished"
        try:
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
