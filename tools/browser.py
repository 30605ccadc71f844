"""Serving the app and driving it from a browser: shared by ``bench`` and ``tests/e2e``.

``streamlit run app.py`` on a free loopback port (headless, no file watcher),
a health wait, and the Playwright helpers that tell when a page has finished
running and rendering. Neither Streamlit nor Playwright is imported here: the
server is a subprocess, and the page helpers take a Playwright ``Page``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from medviz.ui import pages as ui_pages

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("MEDVIZ_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
ERROR_ALERT = '[data-testid="stAlertContentError"]'

#: (navigation title, page heading) of every page, in navigation order (from the app's registry).
PAGES: tuple[tuple[str, str], ...] = tuple((page.title, page.heading) for page in ui_pages.PAGES)


class ServerError(RuntimeError):
    """The Streamlit server exited or did not become healthy in time."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_command(port: int) -> list[str]:
    """The ``streamlit run app.py`` command line: headless, loopback, no file watcher."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
    ]


def start_server(port: int, *, log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """Start the app on ``port`` with ``env`` added to the environment; output goes to ``log``."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    environment.pop("MEDVIZ_DEMO", None)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as output:
        return subprocess.Popen(
            server_command(port), cwd=ROOT, env=environment, stdout=output, stderr=subprocess.STDOUT
        )


def wait_healthy(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    """Poll ``/_stcore/health`` until it answers 200.

    Raises:
        ServerError: The process exited, or ``timeout`` seconds passed.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerError(f"streamlit exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise ServerError(f"streamlit did not become healthy in {timeout:.0f} s:\n{log.read_text()}")


def stop_server(process: subprocess.Popen) -> None:
    """Terminate the server (kill it after 15 s)."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


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


def goto(page, title: str, heading: str) -> float:
    """Like :func:`nav`, also for Home (whose heading differs from its title)."""
    if title != "Home":
        return nav(page, title)
    started = time.perf_counter()
    page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Home").click()
    page.locator("h1").filter(has_text=heading).first.wait_for(state="visible")
    wait_idle(page, settle_ms=50)
    return time.perf_counter() - started


def wait_rendered(page, *, timeout: float = 20_000) -> None:
    """Wait until every Plotly chart has drawn and every image has loaded."""
    page.wait_for_function(
        """() => {
            const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
            const drawn = charts.every(c => c.querySelector('.main-svg'));
            const images = [...document.querySelectorAll('img')];
            return drawn && images.every(i => i.complete);
        }""",
        timeout=timeout,
    )
