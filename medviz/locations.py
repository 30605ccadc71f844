"""Where MedViz finds its shipped models and the real datasets, with or without a checkout.

MedViz runs from a source checkout (``make run``, ``make test``) and as an installed package
(``pip install .``), where the package lives in ``site-packages`` and nothing sits beside it.
So no folder is derived from ``__file__`` alone; the *home* folder is, in this order:

1. ``$MEDVIZ_HOME``, when set;
2. the current working directory, when it holds a ``models/`` folder;
3. the source checkout ``medviz`` is imported from, when it is imported from one (a folder
   holding ``pyproject.toml`` and ``medviz/``);
4. the current working directory.

Shipped models are ``<home>/models`` (``$MEDVIZ_MODELS_DIR`` overrides), real datasets
``<home>/../shared/datasets`` (``$MEDVIZ_DATA_ROOT`` overrides). Everything is read on each
call, so tests and long-running processes see changes to the environment, and nothing here
touches the disk at import or fails when no such folder exists: callers report a missing
folder when they need it. A model given by an explicit path (``--model /abs/path``) never
goes through here.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def source_checkout() -> Path | None:
    """The source checkout ``medviz`` is imported from, or ``None`` for an installed package.

    Returns:
        The folder holding ``pyproject.toml`` and this ``medviz/`` package, else ``None``.
    """
    root = PACKAGE_DIR.parent
    if (root / "pyproject.toml").is_file() and (root / "medviz" / "__init__.py").is_file():
        return root
    return None


def home() -> Path:
    """MedViz's home folder: ``$MEDVIZ_HOME``, a working directory holding ``models/``, the
    source checkout, else the working directory (see the module docstring).

    Returns:
        An absolute path; it may not exist.
    """
    env = os.environ.get("MEDVIZ_HOME", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    cwd = Path.cwd()
    if (cwd / "models").is_dir():
        return cwd
    return source_checkout() or cwd


def models_dir() -> Path:
    """Folder of the shipped models, one sub-folder per model.

    Returns:
        ``$MEDVIZ_MODELS_DIR`` when set, else ``<home>/models``; it may not exist.
    """
    env = os.environ.get("MEDVIZ_MODELS_DIR", "").strip()
    return Path(env).expanduser() if env else home() / "models"


def data_root() -> Path:
    """Folder holding the real datasets.

    Returns:
        ``$MEDVIZ_DATA_ROOT`` when set, else ``<home>/../shared/datasets``; it may not exist.
    """
    env = os.environ.get("MEDVIZ_DATA_ROOT", "").strip()
    return Path(env) if env else home().parent / "shared" / "datasets"


CACHE_ENV = "MEDVIZ_CACHE_DIR"
"""Environment variable naming the folder of machine-local caches."""


def cache_dir() -> Path:
    """Folder for machine-local caches: ``$MEDVIZ_CACHE_DIR`` or ``~/.cache/medviz``.

    It holds what is measured or decoded once per machine: the XLA probe
    (:mod:`medviz.autotune`) and streamed datasets' pixel caches
    (:mod:`medviz.data.streaming`). It may not exist yet.
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medviz"
