"""Process start-up for the server: background TensorFlow import, GIL switch interval.

Importing TensorFlow and Keras takes seconds. Starting it in a daemon thread as
soon as anyone opens the app means the first "Run the demo" or "Classify"
usually finds it already imported. Only module imports happen here (a
process-wide, user-independent effect): no model, no data, no session state.

TensorFlow's import is not thread-safe: two threads importing it at once
deadlock or register its gradients twice. So while the background import runs,
nothing else may import TensorFlow: ``app.py`` calls :func:`wait` before every
page except Home (which never needs TensorFlow). Under ``AppTest`` (tests run
other TensorFlow code in the same process) no thread is started.

The GIL switch interval drops from 5 ms to 1 ms. Every TensorFlow call releases
the GIL and must win it back from Streamlit's busy threads (message
serialisation, the event loop, a training thread); with the default interval a
prediction + Grad-CAM measured 65 ms next to one busy thread instead of 10 ms,
with 1 ms it measured 23 ms.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.001
MODULES = ("tensorflow", "keras", "medviz.store", "medviz.explain.engine", "medviz.pipeline")
_lock = threading.Lock()
_thread: threading.Thread | None = None
_started = False


def _in_app_test() -> bool:
    try:
        from streamlit import config

        return bool(config.get_option("global.appTest"))
    except Exception:
        return False


def start() -> None:
    """Start the background imports once per process (later calls do nothing)."""
    global _started, _thread
    with _lock:
        if _started:
            return
        _started = True
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        if _in_app_test() or "tensorflow" in sys.modules:
            return
        _thread = threading.Thread(target=_run, name="medviz-warm-imports", daemon=True)
        _thread.start()


def importing() -> bool:
    """Whether the background import is still running."""
    return _thread is not None and _thread.is_alive()


def wait(timeout: float | None = None) -> None:
    """Block until the background import has finished (at once when there is none)."""
    if _thread is not None:
        _thread.join(timeout)


def _run() -> None:
    for name in MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # the page that needs it will report a real error
            log.warning("background import of %s failed", name, exc_info=True)
            return
