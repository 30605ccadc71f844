"""Resumable training: a crash-safe backup of the training state after every epoch.

:func:`medviz.training.train` given ``backup_dir`` adds a :class:`TrainingBackup`
callback. After every epoch it writes, into ``backup_dir``:

* ``epoch-NNNN.npz``: the model's weights, the optimizer's variables (Adam's
  moments, its step count and a learning rate that ``ReduceLROnPlateau`` may
  have lowered) and the layers' random-seed states (dropout), as plain arrays
  in the order Keras lists them;
* ``best-NNNN.npz``: the best weights so far, when that epoch improved;
* ``state.json`` last, atomically: the epoch, the file names above, and the
  counters of the other callbacks (best epoch and value, history, early-stopping
  and learning-rate-plateau patience).

A process killed at any moment (SIGKILL, power cut) leaves ``state.json``
pointing to complete files of the last finished epoch. On the next call
:func:`load_state` reads it, ``train`` loads the weights, skips the shuffles of
the epochs already done (the ``tf.data`` shuffle is seeded, each epoch's order
is the next draw) and continues with ``fit(initial_epoch=…)``; the callbacks'
counters are restored in ``on_train_begin`` (after Keras has reset them). With
augmentation off, the resumed run matches an uninterrupted one of the same seed
(see ``tests/test_resume.py``); random augmentations restart their draws.

Keras' own ``BackupAndRestore`` is not used because it overwrites its weights in
place and writes its epoch number in a second, non-atomic step, and it knows
nothing of the other callbacks' counters or the best weights. Plain arrays, not
Keras weight files: loading a ``.weights.h5`` in the Train page's thread while
the page loaded a model in another failed now and then (layers found without
variables); ``set_weights`` and ``assign`` have no such shared state.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np

from medviz.errors import MedvizError
from medviz.store.atomic import atomic_write_json, fsync_file

STATE_FILE = "state.json"
"""The file that says which epoch a backup folder holds (written last, atomically)."""


@dataclass(frozen=True)
class ResumeState:
    """What :class:`TrainingBackup` wrote after the last finished epoch.

    Attributes:
        folder: The backup folder.
        epoch: Epochs finished (the next ``fit`` starts at this 0-based epoch).
        arrays: File of the weights, optimizer variables and seed states.
        best_weights: File of the best weights so far (or ``None``).
        tracker: Best epoch, best value and history of the progress tracker.
        callbacks: ``{class name: {attribute: value}}`` counters of the
            early-stopping and learning-rate callbacks.
        stopped: Whether early stopping had ended the run.
    """

    folder: Path
    epoch: int
    arrays: str
    best_weights: str | None
    tracker: dict[str, Any]
    callbacks: dict[str, dict[str, Any]]
    stopped: bool


def load_state(folder: str | Path) -> ResumeState | None:
    """The backup of ``folder``, or ``None`` when no epoch has finished there.

    Raises:
        MedvizError: ``state.json`` exists but cannot be read, or names a missing file.
    """
    folder = Path(folder)
    path = folder / STATE_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        state = ResumeState(
            folder=folder,
            epoch=int(values["epoch"]),
            arrays=str(values["arrays"]),
            best_weights=values.get("best_weights"),
            tracker=dict(values["tracker"]),
            callbacks={k: dict(v) for k, v in values.get("callbacks", {}).items()},
            stopped=bool(values.get("stopped", False)),
        )
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise MedvizError(f"cannot read the training backup {path}: {err}") from None
    for name in (state.arrays, state.best_weights):
        if name is not None and not (folder / name).is_file():
            raise MedvizError(f"the training backup {path} names a missing file {name!r}")
    return state


def seed_variables(model: keras.Model) -> list:
    """The model's random-seed state variables (in ``variables`` but not in ``weights``)."""
    kept = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in kept]


def restore_model(model: keras.Model, state: ResumeState) -> list[np.ndarray] | None:
    """Load the backed-up weights, optimizer and seed states into a compiled ``model``.

    Returns:
        The best weights so far (for the progress tracker), or ``None``.

    Raises:
        MedvizError: The backup does not fit the model (another architecture or size).
    """
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)  # its variables must exist to assign
    best = None
    try:
        if state.best_weights is not None:
            with np.load(state.folder / state.best_weights) as saved:
                best = [saved[f"w{i}"] for i in range(len(model.weights))]
        with np.load(state.folder / state.arrays) as saved:
            model.set_weights([saved[f"w{i}"] for i in range(len(model.weights))])
            targets = [("o", model.optimizer.variables if model.optimizer else [])]
            targets.append(("s", seed_variables(model)))
            for prefix, variables in targets:
                for i, variable in enumerate(variables):
                    value = saved[f"{prefix}{i}"]
                    if tuple(value.shape) != tuple(variable.shape):
                        raise ValueError(f"{variable.path}: {value.shape} != {variable.shape}")
                    variable.assign(value)
    except (KeyError, ValueError) as err:
        raise MedvizError(
            f"the training backup in {state.folder} does not fit this model ({err}); "
            "was it written by another architecture, image size or class count?"
        ) from None
    return best


#: Attributes of Keras callbacks that carry state across epochs.
_COUNTERS = {
    "EarlyStopping": ("wait", "best", "stopped_epoch", "best_epoch"),
    "ReduceLROnPlateau": ("wait", "best", "cooldown_counter"),
}


class TrainingBackup(keras.callbacks.Callback):
    """Backs up the training state after every epoch and restores the callbacks' counters.

    Put it **last** in the callback list: at the end of an epoch every other
    callback has then updated its counters, and at the start of training Keras
    has reset them before they are restored here.

    Args:
        folder: The backup folder (created).
        tracker: The progress tracker of :func:`medviz.training.train` (its
            ``best_epoch``, ``best_value``, ``best_weights``, ``history`` and
            ``epochs_done`` are saved and restored).
        callbacks: The other callbacks of the run.
        state: The state to restore at the start of training, or ``None``.
    """

    def __init__(
        self,
        folder: str | Path,
        *,
        tracker: Any,
        callbacks: list[keras.callbacks.Callback],
        state: ResumeState | None = None,
    ) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.tracker = tracker
        self.others = [c for c in callbacks if type(c).__name__ in _COUNTERS]
        self.state = state

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.state is None:
            return
        for callback in self.others:
            for name, value in self.state.callbacks.get(type(callback).__name__, {}).items():
                setattr(callback, name, _from_json(value))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.tracker.stopped_by_user and self.tracker.epochs_done <= epoch:
            return  # a partial epoch cut short by Stop is not a resume point
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"epoch-{epoch + 1:04d}"
        arrays = {f"w{i}": w for i, w in enumerate(self.model.get_weights())}
        optimizer = self.model.optimizer.variables if self.model.optimizer else []
        arrays.update({f"o{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer)})
        seeds = seed_variables(self.model)
        arrays.update({f"s{i}": np.asarray(v.numpy()) for i, v in enumerate(seeds)})
        arrays_name = self._write_arrays(f"{stem}.npz", arrays)
        best_name = _previous_best(self.folder)
        if self.tracker.best_epoch == epoch and self.tracker.best_weights is not None:
            best = {f"w{i}": w for i, w in enumerate(self.tracker.best_weights)}
            best_name = self._write_arrays(f"best-{epoch + 1:04d}.npz", best)
        stopped = any(getattr(c, "stopped_epoch", 0) > 0 for c in self.others) or bool(
            self.model.stop_training and not self.tracker.stopped_by_user
        )
        atomic_write_json(
            self.folder / STATE_FILE,
            {
                "epoch": epoch + 1,
                "arrays": arrays_name,
                "best_weights": best_name,
                "tracker": {
                    "best_epoch": self.tracker.best_epoch,
                    "best_value": _to_json(self.tracker.best_value),
                    "history": self.tracker.history,
                    "epochs_done": self.tracker.epochs_done,
                },
                "callbacks": {
                    type(c).__name__: {
                        name: _to_json(getattr(c, name))
                        for name in _COUNTERS[type(c).__name__]
                        if hasattr(c, name)
                    }
                    for c in self.others
                },
                "stopped": stopped,
            },
        )
        keep = {arrays_name, best_name}
        for old in self.folder.glob("*-*.*"):  # files of earlier epochs, now superseded
            if old.name not in keep and not old.name.startswith("."):
                old.unlink(missing_ok=True)

    def _write_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> str:
        temp = self.folder / f".{name}.tmp.npz"
        np.savez(temp, **arrays)
        fsync_file(temp)
        os.replace(temp, self.folder / name)
        return name


def apply_tracker_state(tracker: Any, state: ResumeState, best: list[np.ndarray] | None) -> None:
    """Put the saved best epoch, value, weights and history back into the progress tracker."""
    values = state.tracker
    tracker.best_epoch = int(values["best_epoch"])
    tracker.best_value = _from_json(values["best_value"])
    tracker.history = {k: [float(x) for x in v] for k, v in values["history"].items()}
    tracker.epochs_done = int(values.get("epochs_done", state.epoch))
    tracker.best_weights = best


def _previous_best(folder: Path) -> str | None:
    state = folder / STATE_FILE
    if not state.is_file():
        return None
    try:
        return json.loads(state.read_text(encoding="utf-8")).get("best_weights")
    except (OSError, ValueError):
        return None


def _to_json(value: Any) -> Any:
    """Numbers JSON can hold: infinities as strings (``best`` starts at ±inf)."""
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, str) and value in ("inf", "-inf", "nan"):
        return float(value)
    return value
