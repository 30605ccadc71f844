"""Helpers of the browser tests: waiting for Streamlit, navigating, checking for errors."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("MEDVIZ_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlertContentError"]'


def wait_idle(page, *, timeout: float = 90_000, settle_ms: int = 150) -> None:
    """Wait until the script run triggered by the last action has finished."""
    page.wait_for_timeout(settle_ms)
    page.wait_for_selector(IDLE, timeout=timeout)


def nav(page, title: str) -> float:
    """Click a page in the sidebar navigation; return seconds until its title shows, idle."""
    started = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=title, exact=True).click()
    page.locator("h1").filter(has_text=title).first.wait_for(state="visible")
    wait_idle(page, settle_ms=50)
    return time.perf_counter() - started


def assert_clean(page, *, errors_allowed: bool = False) -> None:
    """No exception element anywhere (and no st.error unless the test provoked one)."""
    assert page.locator(EXCEPTION).count() == 0, page.locator(EXCEPTION).first.inner_text()
    if not errors_allowed:
        errors = page.locator(ERROR_ALERT)
        assert errors.count() == 0, errors.first.inner_text()


def sidebar_text(page) -> str:
    return page.locator('[data-testid="stSidebar"]').inner_text()


def save_screenshot(page, name: str, *, docs: bool = False, full_page: bool = True) -> Path:
    """Save a screenshot to the artefacts (and, for the best ones, to docs/screenshots)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    if docs:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)
    return path
