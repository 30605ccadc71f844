"""Conventions shared by every ``python -m medviz`` command.

* ``--json`` prints machine-readable output on stdout, nothing else there.
* Progress goes to stderr.
* Exit codes: 0 ok, 2 bad input (one ``error:`` line on stderr, no
  traceback), 3 some of several files failed.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3


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
    """A minimal progress bar on stderr (silent when stderr is not a TTY unless forced)."""

    def __init__(self, total: int, *, label: str, enabled: bool | None = None) -> None:
        self.total = max(total, 1)
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.started = time.perf_counter()

    def update(self, done: int, *, note: str = "") -> None:
        """Redraw the bar at ``done`` out of ``total`` steps."""
        if not self.enabled:
            return
        fraction = min(done / self.total, 1.0)
        elapsed = time.perf_counter() - self.started
        eta = elapsed / fraction - elapsed if fraction > 0 else float("nan")
        bar = "#" * int(fraction * 30)
        sys.stderr.write(
            f"\r{self.label} [{bar:<30}] {done}/{self.total} eta {eta:5.1f}s {note}"[:120]
        )
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            sys.stderr.write("\n")


Handler = Callable[[argparse.Namespace], int]
