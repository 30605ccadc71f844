"""The run store: ``runs/<id>/`` with ``run.json``, ``history.json`` and checkpoints."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from medviz.errors import ModelError
from medviz.store.atomic import atomic_write_json
from medviz.store.bundle import ModelBundle, save_bundle
from medviz.store.card import CARD_FILE, CHECKPOINT_DIR, CHECKPOINT_WEIGHTS, ModelCard

# --- run store ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunRecord:
    """One training run on disk: ``runs/<id>/``.

    Files: ``run.json`` (config, status, timestamps), ``history.json``
    (per-epoch logs, rewritten after every epoch), ``metrics.json`` and
    ``model/`` (a model folder) once finished. Every file is written
    atomically, so a killed process leaves the last complete state.
    """

    run_id: str
    folder: Path
    status: str
    config: dict[str, Any]
    started: str
    finished: str | None
    pid: int | None = None

    @property
    def model_folder(self) -> Path:
        """Where the finished model lives."""
        return self.folder / "model"

    @property
    def checkpoint_folder(self) -> Path:
        """Where the best weights so far and their card live while the run trains."""
        return self.folder / CHECKPOINT_DIR


class RunStore:
    """A folder of training runs (default ``runs/``)."""

    def __init__(self, root: str | Path = "runs") -> None:
        self.root = Path(root)

    def create(self, config: dict[str, Any], *, label: str = "run") -> RunRecord:
        """Start a run: a new ``runs/<timestamp>-<label>-<random>/`` with ``run.json``."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", label)[:40] or "run"
        run_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{safe}-{uuid.uuid4().hex[:6]}"
        folder = self.root / run_id
        folder.mkdir(parents=True)
        record = RunRecord(run_id, folder, "running", config, _now(), None, os.getpid())
        self._write(record)
        return record

    def open(self, folder: str | Path) -> RunRecord:
        """The run in ``folder`` (any run folder, not only one under :attr:`root`).

        Raises:
            ModelError: ``folder`` holds no readable ``run.json``.
        """
        folder = Path(folder)
        try:
            values = json.loads((folder / "run.json").read_text(encoding="utf-8"))
            status = values["status"]
            same_host = values.get("host") in (None, socket.gethostname())
            if status == "running" and same_host and not _process_alive(values.get("pid")):
                status = "interrupted"
            return RunRecord(
                values["run_id"],
                folder,
                status,
                values["config"],
                values["started"],
                values.get("finished"),
                values.get("pid"),
            )
        except (OSError, ValueError, KeyError) as err:
            raise ModelError(f"{folder} is not a readable run folder (run.json: {err})") from None

    def reopen(self, record: RunRecord) -> RunRecord:
        """Mark an interrupted run as running again, in this process (to resume it).

        Raises:
            ModelError: The run is finished, failed, or still running elsewhere.
        """
        if record.status != "interrupted":
            raise ModelError(
                f"run {record.run_id} is {record.status!r}; only an interrupted run can be resumed"
            )
        again = replace(record, status="running", finished=None, pid=os.getpid())
        self._write(again)
        return again

    def save_checkpoint_card(self, record: RunRecord, card: ModelCard) -> None:
        """Write the card describing the run's checkpoint weights (atomically).

        The weights themselves (``checkpoint/best.weights.h5``) are written
        atomically by :func:`medviz.training.train` via ``checkpoint_path``.
        """
        atomic_write_json(record.checkpoint_folder / CARD_FILE, card.to_dict())

    def load_checkpoint(self, record: RunRecord) -> ModelBundle:
        """The best model of a run so far, from its checkpoint (also of a killed run).

        The architecture is rebuilt from the registry by name (no code is
        loaded from disk) and the last completely written weights file is
        loaded; temporary files of an interrupted write are never read.

        Raises:
            ModelError: The run has no complete checkpoint yet.
        """
        from medviz.zoo import ARCHITECTURES, build_model

        folder = record.checkpoint_folder
        weights, card_file = folder / CHECKPOINT_WEIGHTS, folder / CARD_FILE
        if not (weights.is_file() and card_file.is_file()):
            raise ModelError(f"run {record.run_id} has no complete checkpoint yet (no epoch ended)")
        try:
            card = ModelCard.from_dict(json.loads(card_file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as err:
            raise ModelError(f"run {record.run_id}: checkpoint card unreadable: {err}") from None
        if card.arch not in ARCHITECTURES:
            raise ModelError(f"run {record.run_id}: unknown architecture {card.arch!r}")
        options = card.facts.arch_options
        if ARCHITECTURES[card.arch].transfer:
            options["pretrained"] = False  # the checkpoint holds every weight
        model = build_model(
            card.arch, (card.image_size, card.image_size, card.channels), card.n_classes, **options
        )
        try:
            model.load_weights(weights)
        except (OSError, ValueError) as err:
            raise ModelError(f"run {record.run_id}: checkpoint weights unreadable: {err}") from None
        return ModelBundle(model=model, card=card, path=None)

    def log_history(self, record: RunRecord, history: dict[str, list[float]]) -> None:
        """Replace the run's history (call after every epoch)."""
        atomic_write_json(record.folder / "history.json", history)

    def finish(
        self,
        record: RunRecord,
        *,
        model: Any,
        card: ModelCard,
        metrics: dict[str, Any],
        status: str = "finished",
    ) -> RunRecord:
        """Save the model and metrics, then mark the run ``status``."""
        save_bundle(model, card, record.model_folder)
        atomic_write_json(record.folder / "metrics.json", metrics)
        done = replace(record, status=status, finished=_now())
        self._write(done)
        return done

    def fail(self, record: RunRecord, reason: str) -> RunRecord:
        """Mark a run as failed (or stopped before any model existed)."""
        done = replace(record, status=f"failed: {reason}"[:200], finished=_now())
        self._write(done)
        return done

    def list(self) -> list[RunRecord]:
        """Every readable run, newest first; half-written folders are skipped.

        A run whose ``run.json`` says ``running`` but whose process no longer
        exists is reported as ``interrupted``.
        """
        records = []
        for run_json in self.root.glob("*/run.json"):
            try:
                records.append(self.open(run_json.parent))
            except ModelError:
                continue
        return sorted(records, key=lambda r: r.run_id, reverse=True)

    def history(self, record: RunRecord) -> dict[str, list[float]]:
        """The run's latest complete history ({} before the first epoch)."""
        path = record.folder / "history.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    def _write(self, record: RunRecord) -> None:
        atomic_write_json(
            record.folder / "run.json",
            {
                "run_id": record.run_id,
                "status": record.status,
                "config": record.config,
                "started": record.started,
                "finished": record.finished,
                "pid": record.pid,
                "host": socket.gethostname(),
            },
        )


def _process_alive(pid: object) -> bool:
    """Whether process ``pid`` of this machine still runs (unknown pids count as alive)."""
    if not isinstance(pid, int) or pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
