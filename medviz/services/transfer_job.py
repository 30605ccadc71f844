"""A transfer comparison (scratch vs frozen vs fine-tuned) in a background thread.

Like :class:`medviz.services.jobs.TrainingJob`: the thread only writes to the
job (under its lock), the page polls :meth:`TransferJob.snapshot`, and
:meth:`TransferJob.stop` ends the current arm after its batch and skips the rest.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from medviz.data.dataset import Dataset
from medviz.services.jobs import ThreadedJob
from medviz.training import EpochProgress, TrainConfig
from medviz.transfer import ARMS, ArmResult, TransferArm, compare_transfer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransferSnapshot:
    """A consistent copy of the comparison's progress.

    Attributes:
        status: ``"running"``, ``"finished"``, ``"stopped"`` or ``"failed"``.
        arm: The arm training now (``None`` when done).
        message: One line for a progress bar.
        fraction: Done fraction in [0, 1].
        results: The finished arms.
        live_history: Per-epoch logs of the arm training now.
        error: The failure, for people.
    """

    status: str
    arm: TransferArm | None
    message: str
    fraction: float
    results: tuple[ArmResult, ...]
    live_history: dict[str, list[float]]
    error: str | None


@dataclass
class TransferJob(ThreadedJob):
    """Runs :func:`medviz.transfer.compare_transfer` on ``data`` with ``config``."""

    config: TrainConfig
    data: Dataset
    fine_tune_from: int = 0
    arms: tuple[TransferArm, ...] = ARMS
    eval_split: str = "test"
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    status: str = "starting"
    _arm: TransferArm | None = None
    _epoch: int = 0
    _results: list[ArmResult] = field(default_factory=list)
    _history: dict[str, list[float]] = field(default_factory=dict)
    _error: str | None = None
    started: float = field(default_factory=time.time)

    _thread_name = "medviz-transfer"

    def _on_epoch(self, arm: TransferArm, progress: EpochProgress) -> None:
        with self._lock:
            self._arm, self._epoch = arm, progress.epoch + 1
            self._history = {k: list(v) for k, v in progress.history.items()}

    def _on_arm(self, result: ArmResult) -> None:
        with self._lock:
            self._results.append(result)
            self._history = {}

    def _run(self) -> None:
        try:
            compare_transfer(
                self.data,
                self.config,
                arms=self.arms,
                fine_tune_from=self.fine_tune_from,
                eval_split=self.eval_split,
                on_arm_end=self._on_arm,
                on_epoch_end=self._on_epoch,
                should_stop=self._stop.is_set,
            )
            status, error = ("stopped" if self._stop.is_set() else "finished"), None
        except Exception as err:  # shown on the page; the thread must not die silently
            log.exception("transfer comparison failed")
            status, error = "failed", f"{type(err).__name__}: {err}"
        with self._lock:
            self.status, self._error, self._arm = status, error, None

    def snapshot(self) -> TransferSnapshot:
        """The progress so far (thread-safe copy)."""
        with self._lock:
            done = len(self._results)
            epochs = max(1, self.config.epochs)
            fraction = min(
                1.0, (done + (self._epoch / epochs if self._arm else 0)) / len(self.arms)
            )
            if not self.running:
                fraction = 1.0 if self.status == "finished" else fraction
            arm = self._arm if self.running else None
            message = (
                f"{arm}: epoch {self._epoch}/{epochs} ({done} of {len(self.arms)} done)"
                if arm
                else f"{self.status} ({done} of {len(self.arms)} arms)"
            )
            return TransferSnapshot(
                status="running" if self.running else self.status,
                arm=arm,
                message=message,
                fraction=fraction,
                results=tuple(self._results),
                live_history={k: list(v) for k, v in self._history.items()},
                error=self._error,
            )
