"""Atomic file writes: write a temporary sibling, fsync, rename.

A crash or a full disk never leaves a half-written file where a good one was.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from medviz.cli_support import to_jsonable

# --- atomic files ------------------------------------------------------------------------------


def fsync_file(path: Path) -> None:
    """Flush a file that was written by someone else (e.g. Keras) to the disk."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file, fsync and rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temp, 0o644)  # mkstemp makes 0600; cards and READMEs are meant to be read
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: str | Path, payload: Any) -> None:
    """Write JSON atomically (NaN becomes ``null``)."""

    atomic_write_text(path, json.dumps(to_jsonable(payload), indent=2) + "\n")
