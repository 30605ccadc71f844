"""Browser tests: ``streamlit run app.py`` on a free loopback port, driven by Chromium.

Skipped, with the reason, when Debian's Chromium (``/usr/bin/chromium``) or the
Playwright package is missing. Screenshots go to ``test-artifacts/screenshots/``,
timings to ``test-artifacts/timings.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from e2e_helpers import ARTIFACTS, CHROMIUM, LAUNCH_ARGS, SERVER_TIMINGS, UPDATE_DOCS

from tools.browser import free_port, start_server, stop_server, wait_healthy


def pytest_collection_modifyitems(config, items):
    """Skip every browser test with one clear reason when the browser cannot run."""
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (scripts/ensure_chromium.sh)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright package is not installed (pip install -r requirements.txt)"
    if reason is None:
        return
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.skip(reason=f"browser tests skipped: {reason}"))


@pytest.fixture(scope="session")
def server():
    """The app served by a real ``streamlit run`` subprocess; yields its base URL."""
    port = free_port()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = ARTIFACTS / "streamlit-e2e.log"
    SERVER_TIMINGS.unlink(missing_ok=True)
    env = {
        "MEDVIZ_MAX_EPOCHS": "40",
        "MEDVIZ_JIT": "0",
        "MEDVIZ_TEST_STEPS": "4",
        "MEDVIZ_POLL_SECONDS": "1.0",
        # The Shortcut lab on 60 embedded images (120 for the docs screenshot).
        "MEDVIZ_SHORTCUT_LIMIT": "60" if UPDATE_DOCS else "30",
        "HF_HUB_OFFLINE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MEDVIZ_TIMINGS_FILE": str(SERVER_TIMINGS),
    }
    process = start_server(port, log=log, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, log)
        yield url
    finally:
        stop_server(process)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser session (its own Streamlit session) on the Home page."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(server)
    yield page
    context.close()


@pytest.fixture(scope="session")
def timings():
    """Collected measurements, written to ``test-artifacts/timings.json`` at the end."""
    collected: dict[str, object] = {}
    yield collected
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "timings.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    previous.update(collected)
    path.write_text(json.dumps(previous, indent=2) + "\n")
