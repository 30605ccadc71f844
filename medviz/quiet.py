"""Keep TensorFlow's start-up noise off a command line's stderr.

Importing TensorFlow prints lines no user asked for: ``cudart_stub`` "Could not find cuda
drivers", ``failed call to cuInit`` and "All log messages before absl::InitializeLog()" on a
machine without a GPU, and notices about oneDNN and CPU features. Some come from TensorFlow's
own logging (``TF_CPP_MIN_LOG_LEVEL`` silences those), but the CUDA probing lines are written by
the C++ absl logger straight to file descriptor 2 before any setting is read. So
:func:`silence_tensorflow_startup` does both: it sets the environment variables, and it arranges
that the first ``import tensorflow`` (by whichever module) runs with descriptor 2 pointed at a
temporary file, together with the device probe that prints the ``cuInit`` line. If that import
fails, what it printed is written to stderr after all, so a broken install still says why.
TensorFlow is not imported here: commands that never need it stay as fast as before.

``medviz --verbose`` does not call it, so the absl and CUDA lines come through; TensorFlow's
own INFO lines stay hidden by the ``TF_CPP_MIN_LOG_LEVEL=2`` default that importing
:mod:`medviz` sets (``TF_CPP_MIN_LOG_LEVEL=0`` shows them too).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import os
import sys
import tempfile
from collections.abc import Sequence
from types import ModuleType

# C++ INFO and WARNING lines (oneDNN, CPU features). ``TF_ENABLE_ONEDNN_OPTS`` is left alone:
# it changes numerics, not just what is printed.
TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}


class _QuietLoader(importlib.abc.Loader):
    """Runs the wrapped loader of ``tensorflow`` with file descriptor 2 sent to a temp file."""

    def __init__(self, loader: importlib.abc.Loader) -> None:
        self._loader = loader

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as sink:
            os.dup2(sink.fileno(), 2)
            try:
                self._loader.exec_module(module)
                # The CUDA platform is probed (and cuInit's failure logged) on first device use;
                # a probe that fails here fails again, loudly, where a device is used.
                with contextlib.suppress(Exception):
                    module.config.list_physical_devices()
            except BaseException:
                sys.stderr.flush()
                os.dup2(saved, 2)
                sink.seek(0)
                sys.stderr.write(sink.read().decode("utf-8", "replace"))
                sys.stderr.flush()
                raise
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
                os.close(saved)
        _quiet_python_loggers()

    def __getattr__(self, name: str):
        # Anything else (get_resource_reader, is_package …) is the real loader's.
        return getattr(self._loader, name)


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` as usual and wraps its loader in :class:`_QuietLoader`, once."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "tensorflow":
            return None
        _remove_finder()
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader)
        return spec


def _remove_finder() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _QuietTensorFlowFinder)]


def _quiet_python_loggers() -> None:
    """TensorFlow's and absl's Python loggers: errors only."""
    import logging

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging
    except ImportError:  # absl comes with TensorFlow; without it there is nothing to quieten
        return
    absl_logging.set_verbosity(absl_logging.ERROR)


def silence_tensorflow_startup() -> None:
    """Keep TensorFlow's start-up lines off stderr for the rest of this process.

    Sets :data:`TF_ENV` (values already in the environment win) and, when TensorFlow is not
    imported yet, installs a one-shot import hook that silences its first import; when it is
    imported already, only the Python loggers are quietened. Idempotent.
    """
    for key, value in TF_ENV.items():
        os.environ.setdefault(key, value)
    if "tensorflow" in sys.modules:
        _quiet_python_loggers()
        return
    if not any(isinstance(f, _QuietTensorFlowFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder())
