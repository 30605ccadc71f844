"""The shortcut lab as a background job, polled by the app like a training job.

:class:`ShortcutJob` runs :func:`medviz.explore.shortcut.run_shortcut_lab`
(two trainings, then scoring and Grad-CAM) in a daemon thread and reports a
:class:`medviz.services.jobs.JobSnapshot`, so the Shortcut lab page reuses the
Train page's polling pattern (``st.fragment(run_every=…)``) and its Stop
button. The thread only writes to the job object, under its lock.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from medviz.errors import MedvizError
from medviz.services.jobs import JobSnapshot, Status, ThreadedJob

if TYPE_CHECKING:  # pragma: no cover
    from medviz.data import Dataset
    from medviz.explore.markers import Marker
    from medviz.explore.shortcut import ShortcutResult
    from medviz.training import BatchProgress, EpochProgress, TrainConfig

log = logging.getLogger(__name__)

#: What each phase of the lab is called on the progress bar.
PHASES: tuple[str, ...] = ("Model 1/2: with the marker", "Model 2/2: control", "Scoring")


@dataclass
class ShortcutJob(ThreadedJob):
    """One shortcut-lab request running in a background thread.

    Attributes:
        data: A binary dataset with train, val and test splits.
        marker: The marker to plant.
        marked_class: Class index that gets it.
        fraction: Share of that class's train and val images stamped.
        config: Training settings of both models.
        dataset_label: Dataset name shown to people.
        control: How the control model is trained (``"random"`` or ``"none"``).
    """

    data: Dataset
    marker: Marker
    marked_class: int
    fraction: float
    config: TrainConfig
    dataset_label: str
    control: str = "random"
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    status: Status = "starting"
    started: float = field(default_factory=time.time)
    finished: float | None = None
    result: ShortcutResult | None = None
    error: str | None = None
    histories: list[dict[str, list[float]]] = field(default_factory=list)
    _phase: int = 0
    _epoch: EpochProgress | None = None
    _batch: BatchProgress | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    _thread_name = "medviz-shortcut"

    @property
    def phase(self) -> int:
        """0: training the shortcut model, 1: the clean model, 2: scoring."""
        with self._lock:
            return self._phase

    def _on_phase(self, index: int, _label: str) -> None:
        with self._lock:
            if self._epoch is not None:
                self.histories.append({k: list(v) for k, v in self._epoch.history.items()})
            self._phase, self._epoch, self._batch = index, None, None

    def _on_epoch(self, progress: EpochProgress) -> None:
        with self._lock:
            self._epoch = progress

    def _on_batch(self, progress: BatchProgress) -> None:
        with self._lock:
            self._batch = progress

    def _run(self) -> None:
        from medviz.explore.shortcut import run_shortcut_lab

        status: Status = "finished"
        try:
            result = run_shortcut_lab(
                self.data,
                marker=self.marker,
                marked_class=self.marked_class,
                fraction=self.fraction,
                config=self.config,
                control=self.control,
                on_phase=self._on_phase,
                on_epoch_end=self._on_epoch,
                on_batch_end=self._on_batch,
                should_stop=self._stop.is_set,
            )
            with self._lock:
                self.result = result
            if self._stop.is_set():
                status = "stopped"
        except MedvizError as err:
            status = "stopped" if self._stop.is_set() else "failed"
            self.error = str(err)
        except Exception as err:  # the thread must never die silently
            log.exception("shortcut job %s failed", self.id)
            status = "failed"
            self.error = f"The shortcut lab failed ({type(err).__name__}): {str(err)[:300]}"
        with self._lock:
            self.status = status
            self.finished = time.time()

    def snapshot(self) -> JobSnapshot:
        """A consistent copy of the progress (``run`` is the phase, ``repeats`` is 2 models)."""
        with self._lock:
            phase, epoch, batch, status = self._phase, self._epoch, self._batch, self.status
            history = {k: list(v) for k, v in (epoch.history if epoch else {}).items()}
        epochs = self.config.epochs
        if batch is not None:
            within = (batch.epoch + batch.batch / max(batch.batches, 1)) / epochs
        elif epoch is not None:
            within = (epoch.epoch + 1) / epochs
        else:
            within = 0.0
        fraction = min(1.0, (min(phase, 2) + within) / 2)
        elapsed = (self.finished or time.time()) - self.started
        eta = math.nan
        if 0 < fraction < 1 and phase < 2:
            eta = elapsed / fraction - elapsed
        if status == "finished":
            fraction, message = 1.0, "Finished"
        elif status == "stopped":
            message = "Stopped" + (" — scored with the weights so far" if self.result else "")
        elif status == "failed":
            message = "Failed"
        elif self._stop.is_set():
            message = "Stopping after this batch…"
        elif phase >= 2:
            message = "Scoring both models on clean, aligned and swapped test images…"
        elif batch is not None:
            message = (
                f"{PHASES[phase]} · epoch {batch.epoch + 1}/{batch.epochs} · "
                f"batch {batch.batch}/{batch.batches}"
            )
        else:
            message = f"{PHASES[phase]} · preparing…"
        return JobSnapshot(
            status=status,
            fraction=float(fraction),
            message=message,
            history=history,
            eta_s=float(eta),
            elapsed_s=float(elapsed),
            run=min(phase, 2),
            repeats=2,
            error=self.error,
        )
