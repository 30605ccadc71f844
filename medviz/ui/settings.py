"""Environment switches of the web app (read on every call, so tests can set them).

=========================  =========================================================
``MEDVIZ_DEMO``            ``1``: conference/kiosk mode (no server paths, no model
                           uploads or Hub, shipped models preloaded, offline).
``MEDVIZ_MAX_EPOCHS``      Upper bound of the epochs slider (tests: 1–3).
``MEDVIZ_MAX_UPLOAD_MB``   Largest accepted upload in MB (default 200, as
                           ``server.maxUploadSize`` in ``.streamlit/config.toml``).
``MEDVIZ_JIT``             Default of the XLA option of training: ``auto``
                           (measured per machine, :mod:`medviz.autotune`), ``1`` or ``0``.
``MEDVIZ_POLL_SECONDS``    How often the Train page refreshes a running job.
``MEDVIZ_MODELS_DIR``      Folder of shipped models (default ``<home>/models``, see
                           :mod:`medviz.locations`).
``MEDVIZ_DATA_ROOTS``      Folders (``os.pathsep``-separated) a path typed on the Data
                           page must stay inside (default the data root; see
                           :mod:`medviz.data.paths`).
``MEDVIZ_TIMINGS_FILE``    Append every script run's duration there (JSON lines;
                           the browser tests measure page switches with it).
``MEDVIZ_STRESS_IMAGES``   Images the Evaluate page stress-tests (default 200).
=========================  =========================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from medviz import locations
from medviz.autotune import parse_flag

DEFAULT_MODEL = "microcalc-synthetic"
DISCLAIMER = "Research and teaching only — not for clinical use."
APP_TITLE = "MedViz"
TAGLINE = "Train, test and explain CNNs on medical images"

_TRUE = {"1", "true", "yes", "on"}


def _int_env(name: str, default: int, *, low: int = 1) -> int:
    try:
        return max(low, int(os.environ.get(name, "") or default))
    except ValueError:
        return default


def demo_forced() -> bool:
    """Whether ``MEDVIZ_DEMO`` switches demo mode on for everybody (no toggle then)."""
    return os.environ.get("MEDVIZ_DEMO", "").strip().lower() in _TRUE


def max_epochs() -> int:
    """Largest number of epochs a user may ask for."""
    return _int_env("MEDVIZ_MAX_EPOCHS", 200)


def max_upload_mb() -> int:
    """Largest upload in megabytes."""
    return _int_env("MEDVIZ_MAX_UPLOAD_MB", 200)


def jit_default() -> bool | Literal["auto"]:
    """Default of the "XLA compile" training option: ``"auto"`` unless ``MEDVIZ_JIT`` says."""
    flag = parse_flag(os.environ.get("MEDVIZ_JIT", "auto"))
    return "auto" if flag is None else flag


def poll_seconds() -> float:
    """Refresh period of a running training job, in seconds."""
    try:
        return max(0.2, float(os.environ.get("MEDVIZ_POLL_SECONDS", "") or 1.0))
    except ValueError:
        return 1.0


def models_dir() -> Path:
    """Folder holding the shipped models (one sub-folder per model; see :mod:`medviz.locations`)."""
    return locations.models_dir()


def runs_dir() -> Path | None:
    """Run store of the Train page (resumable runs): ``$MEDVIZ_RUNS_DIR``, else ``<home>/runs``;
    ``None`` in demo mode (a kiosk keeps nothing on disk)."""
    if demo_forced():
        return None
    env = os.environ.get("MEDVIZ_RUNS_DIR", "").strip()
    return Path(env).expanduser() if env else locations.home() / "runs"


def timings_file() -> Path | None:
    """Where script-run durations are appended, or ``None`` (the default: nowhere)."""
    env = os.environ.get("MEDVIZ_TIMINGS_FILE")
    return Path(env) if env else None


def stress_images() -> int:
    """Sample size of the Evaluate page's stress test (small: it runs on a click)."""
    return _int_env("MEDVIZ_STRESS_IMAGES", 200)
