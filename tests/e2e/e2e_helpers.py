"""Helpers of the browser tests: waiting for Streamlit, navigating, checking for errors."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from tools.browser import (  # noqa: F401  (re-exported for the tests)
    CHROMIUM,
    ERROR_ALERT,
    EXCEPTION,
    IDLE,
    LAUNCH_ARGS,
    ROOT,
    nav,
    wait_idle,
    wait_rendered,
)

ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
#: ``MEDVIZ_UPDATE_DOCS=1``: the run refreshes docs/screenshots, so the tests that make those
#: pictures use fuller settings (more epochs, images, random sets); otherwise the smallest
#: settings that exercise the same behaviour.
UPDATE_DOCS = os.environ.get("MEDVIZ_UPDATE_DOCS") == "1"
# One file per pytest-xdist worker (each has its own server); plain pytest: no suffix.
SERVER_TIMINGS = ARTIFACTS / f"server-timings{os.environ.get('PYTEST_XDIST_WORKER', '')}.jsonl"


def assert_clean(page, *, errors_allowed: bool = False) -> None:
    """No exception element anywhere (and no st.error unless the test provoked one)."""
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
    if not errors_allowed:
        errors = page.locator(ERROR_ALERT)
        assert errors.count() == 0, errors.first.inner_text()


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def save_screenshot(page, name: str, *, docs: bool = False, full_page: bool = True) -> Path:
    """Save a screenshot to the artefacts (and, for the best ones, to docs/screenshots).

    The docs copy is made only with ``MEDVIZ_UPDATE_DOCS=1``: a test run must not
    change tracked files.

    Streamlit scrolls inside its main container, not the document, so a full-page
    shot temporarily makes the viewport as tall as the page content.
    """
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    with contextlib.suppress(Exception):  # a chart that never draws shows in the picture
        wait_idle(page, settle_ms=0)  # the last run has finished: its elements are mounted
        wait_rendered(page)
    size = page.viewport_size
    if full_page and size is not None:
        height = page.evaluate(
            "() => (document.querySelector('[data-testid=\"stMain\"]') || document.body)"
            ".scrollHeight"
        )
        page.set_viewport_size({"width": size["width"], "height": int(min(max(height, 600), 5000))})
        with contextlib.suppress(Exception):
            _next_frames(page)  # the taller viewport has been laid out
            wait_rendered(page)
    page.screenshot(path=str(path))
    if full_page and size is not None:
        page.set_viewport_size(size)
    if docs and UPDATE_DOCS:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
    return path


def _next_frames(page, frames: int = 2) -> None:
    """Wait until the browser has painted ``frames`` more animation frames (layout done)."""
    page.evaluate(
        "n => new Promise(done => { const step = k => k ? requestAnimationFrame(() => step(k - 1))"
        " : done(); step(n); })",
        frames,
    )


def server_runs() -> list[dict]:
    """The script runs the server has recorded so far (page, seconds)."""
    import json

    if not SERVER_TIMINGS.exists():
        return []
    return [json.loads(line) for line in SERVER_TIMINGS.read_text().splitlines() if line]
