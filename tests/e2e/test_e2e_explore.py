"""Explore in real Chromium: the embedding map of the demo model and a concept test."""

from __future__ import annotations

import pytest
from e2e_helpers import UPDATE_DOCS, assert_clean, nav, save_screenshot, wait_idle

pytestmark = pytest.mark.e2e


def test_explore_map_and_concept_test(page):
    wait_idle(page)
    page.get_by_role("button", name="Run the demo").click()
    page.locator("h3").filter(has_text="Prediction:").first.wait_for()
    wait_idle(page)
    nav(page, "Explore")
    page.get_by_text("Click a point").first.wait_for(timeout=300_000)
    wait_idle(page)
    assert_clean(page)
    assert page.locator(".js-plotly-plot").count() >= 1
    save_screenshot(page, "19-explore", docs=True)

    page.get_by_text("Concepts (TCAV)", exact=True).first.click()
    wait_idle(page)
    if not UPDATE_DOCS:  # the same test on 3 random sets per layer instead of the default 10
        runs = page.get_by_role("spinbutton", name="Random sets")
        runs.fill("3")
        runs.press("Enter")
        wait_idle(page)
    page.get_by_role("button", name="Run the concept test").click()
    page.get_by_text(
        "3 random sets per layer" if not UPDATE_DOCS else "random sets per layer"
    ).first.wait_for(timeout=300_000)
    wait_idle(page)
    assert_clean(page)
    save_screenshot(page, "19-explore-tcav", docs=True)
