"""Helpers of the AppTest suite (imported by its conftest and tests)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
TIMEOUT = 120  # seconds per script run: the first one imports TensorFlow (~5 s on 2 cores)

PATIENT_NAME = "Doe^Secretpatient"
PATIENT_ID = "PID-774411"


def configure_environment() -> None:
    """Tiny trainings and syntheses, no XLA compile, no network, no demo mode."""
    os.environ.setdefault("MEDVIZ_MAX_EPOCHS", "2")
    os.environ.setdefault("MEDVIZ_JIT", "0")
    os.environ.setdefault("MEDVIZ_TEST_STEPS", "3")
    os.environ.setdefault("MEDVIZ_POLL_SECONDS", "0.5")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.pop("MEDVIZ_DEMO", None)


def make_app():
    """A fresh AppTest session of ``app.py``, already run once (the Home page)."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    return at


def goto(at, page: str):
    """Switch to ``pages/<page>.py`` and run it."""
    at.switch_page(f"pages/{page}.py")
    at.run()
    return at


def classify_upload_page(at):
    """Open Classify with the shipped default model active and the upload source chosen."""
    goto(at, "classify")
    at.button(key="use_default").click()
    at.run()
    at.segmented_control(key="classify_source").set_value("upload")
    at.run()
    return at


def texts(at) -> str:
    """Everything the page shows as text (markdown, captions, alerts, metrics, tables)."""
    parts: list[str] = []

    def walk(node) -> None:
        children = getattr(node, "children", None)
        items = children.values() if isinstance(children, dict) else (children or [])
        for child in items:
            for attribute in ("value", "label", "body", "captions"):
                try:
                    value = getattr(child, attribute, None)
                except Exception:  # some widgets have no value outside a run
                    value = None
                if value is not None and not callable(value):
                    parts.append(value.to_csv() if hasattr(value, "to_csv") else str(value))
            walk(child)

    walk(at._tree)
    return "\n".join(parts)


def assert_clean(at, *, errors_allowed: bool = False) -> None:
    """No exception element (and, unless allowed, no st.error) on the page."""
    assert not at.exception, [e.value for e in at.exception]
    if not errors_allowed:
        assert not at.error, [e.value for e in at.error]


def app_state(at):
    """The session's :class:`medviz.ui.state.AppState`."""
    return at.session_state["_medviz_state"]


def wait_for_job(at, *, timeout: float = 150.0) -> None:
    """Wait for the session's newest training job to end, then rerun the page once.

    The job thread is joined instead of rerunning the page every half second: on two
    cores each rerun took CPU from the training it waited for, and the page only acts on
    the ended job (collecting the model, the results) in the run after it ended.
    """
    job = app_state(at).jobs[0]
    assert job.join(timeout=timeout), "training job did not finish in time"
    at.run()


def load_small_dataset(at, *, per_class: int = 12, size: int = 32):
    """Data page: the embedded synthetic patches, few and small (fast trainings)."""
    goto(at, "data")
    at.number_input(key="data_limit_embedded").set_value(per_class)
    at.number_input(key="data_size_embedded_None").set_value(size)
    at.button(key="data_load").click()
    at.run()
    assert_clean(at)
    return at
