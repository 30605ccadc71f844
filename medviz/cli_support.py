"""Conventions shared by every ``python -m medviz`` command.

* ``--json`` prints machine-readable output on stdout, nothing else there.
* Progress bars (``tqdm``) go to stderr, also under ``--json``; ``--quiet``
  hides them (:func:`set_quiet`).
* Exit codes (:data:`EXIT_CODES_HELP`): 0 ok, 1 runtime failure (disk full,
  read-only or unreadable storage, an internal error), 2 bad input (a wrong
  option, a file that is not what it should be), 3 some of several files
  failed; every failure is one ``error:`` line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import sys
import time
import weakref
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3

EXIT_CODES_HELP = """exit codes:
  0  success
  1  runtime failure: the disk is full, storage is read-only or unreadable, or an
     internal error (the message says which; --verbose shows the traceback)
  2  bad input: a wrong option or value, a missing or unusable file, model or dataset
  3  some of several files failed (predict), the others were processed"""
"""The exit-code table shown by ``medviz --help`` (and the README)."""

_QUIET = [False]


def set_quiet(quiet: bool) -> None:
    """Hide (``True``) or show progress bars for the rest of the process (``--quiet``)."""
    _QUIET[0] = bool(quiet)


def is_quiet() -> bool:
    """Whether ``--quiet`` hid the progress bars."""
    return _QUIET[0]


#: ``errno`` values of storage failures: the machine's problem, not the command's.
STORAGE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO, errno.EACCES, errno.EPERM, errno.EFBIG}
)


def exit_code_for(error: BaseException) -> int:
    """The exit code of an error that ended a command.

    Runtime failures (1) are storage errors (:data:`STORAGE_ERRNOS`: full disk,
    read-only, permission, I/O), raised directly or wrapped in a MedViz error,
    and errors MedViz does not expect; everything the user can fix by changing
    the command is bad input (2): wrong values, missing files, and files that
    are not what they should be (an unreadable image is an ``OSError`` too,
    without a storage ``errno``).
    """
    from medviz.errors import MedvizError

    def is_storage(err: BaseException | None) -> bool:
        return isinstance(err, OSError) and err.errno in STORAGE_ERRNOS

    if isinstance(error, MedvizError):
        cause = error.__cause__ or error.__context__
        return EXIT_RUNTIME if is_storage(cause) else EXIT_BAD_INPUT
    if isinstance(error, OSError):
        return EXIT_RUNTIME if is_storage(error) else EXIT_BAD_INPUT
    return EXIT_RUNTIME


class CliParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors follow the one-``error:``-line rule."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_BAD_INPUT)


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and NaN into plain JSON values."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, np.generic):
        return to_jsonable(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_json(payload: Any) -> None:
    """Write one JSON document (one line) to stdout."""
    sys.stdout.write(json.dumps(to_jsonable(payload)) + "\n")
    sys.stdout.flush()


class Progress:
    """A ``tqdm`` progress bar on stderr (stdout stays free for ``--json``).

    Args:
        total: Steps of the whole task (may be changed later through :attr:`total`).
        label: Shown before the bar.
        enabled: ``False`` hides the bar; ``None`` (default) shows it unless
            ``--quiet`` was given.
        unit: Name of one step.
    """

    def __init__(
        self, total: int, *, label: str, enabled: bool | None = None, unit: str = "step"
    ) -> None:
        self.label = label
        self.unit = unit
        self.enabled = (not is_quiet()) if enabled is None else bool(enabled and not is_quiet())
        self.started = time.perf_counter()
        self._total = max(int(total), 1)
        self._bar = None  # drawn at the first update: an early error stays a lone line

    @property
    def total(self) -> int:
        """Steps of the whole task."""
        return self._total

    @total.setter
    def total(self, value: int) -> None:
        self._total = max(int(value), 1)
        if self._bar is not None:
            self._bar.total = self._total

    def update(self, done: int, *, note: str = "") -> None:
        """Move the bar to ``done`` out of :attr:`total` steps."""
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=self._total,
                desc=self.label,
                unit=self.unit,
                file=sys.stderr,
                dynamic_ncols=True,
                mininterval=0.5,
                leave=True,
            )
            _OPEN.add(self)
        self._bar.n = min(int(done), self._total)
        if note:
            self._bar.set_postfix_str(note, refresh=False)
        self._bar.refresh()

    def close(self) -> None:
        """End the bar's line."""
        if self._bar is not None:
            self._bar.close()
        _OPEN.discard(self)


_OPEN: weakref.WeakSet[Progress] = weakref.WeakSet()


def close_progress() -> None:
    """End every open bar's line, so an ``error:`` line that follows starts a line of its own."""
    for progress in list(_OPEN):
        progress.close()


Handler = Callable[[argparse.Namespace], int]
