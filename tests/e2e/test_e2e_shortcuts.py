"""The Shortcut lab in real Chromium: a tiny run to its side-by-side results (and a screenshot)."""

from __future__ import annotations

import re

import pytest
from e2e_helpers import UPDATE_DOCS, assert_clean, nav, save_screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_shortcut_lab_runs_and_shows_both_models(page, timings):
    import time

    wait_idle(page)
    nav(page, "Shortcut lab")
    assert_clean(page)
    page.get_by_text("Expected time").first.wait_for()
    epochs = page.get_by_role("spinbutton", name="Epochs per model")
    epochs.fill("3" if UPDATE_DOCS else "1")  # one epoch per model runs the whole lab
    epochs.press("Enter")
    wait_idle(page)
    started = time.perf_counter()
    page.get_by_role("button", name="Run the shortcut lab").click()
    page.get_by_text(re.compile(r"Model 1/2")).first.wait_for(timeout=120_000)
    page.get_by_text("Reliance score · with marker").first.wait_for(timeout=300_000)
    timings["shortcut_lab_tiny_run_s"] = round(time.perf_counter() - started, 3)
    wait_idle(page)
    assert_clean(page)
    page.get_by_text("Grad-CAM mass on the marker").first.wait_for()
    save_screenshot(page, "shortcuts", docs=True)
