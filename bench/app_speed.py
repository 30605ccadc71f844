"""The app in Chromium: start-up to the first rendered page, warm page renders, peak memory.

The server and the page helpers are the e2e tests' own (:mod:`tools.browser`).
Chromium is launched first, so its start-up is not counted; the clock starts
when ``streamlit run app.py`` is spawned and stops when the Home page's heading
is visible, the script run has finished and every chart and image has drawn.
Then the demo is started (it loads the shipped models and data so every page
shows real content), every page is visited once (cold) and then
``rounds`` more times (warm: median per page). Finally the server's peak
resident memory (``VmHWM`` of ``/proc/<pid>/status``) is read.

The cost of importing TensorFlow is measured separately, in fresh processes
(``python -c "import tensorflow"``), because the app imports it in a
background thread while the first page is read.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Settings


def import_seconds(module: str, *, repeats: int = 2) -> dict[str, Any]:
    """Wall seconds of ``python -c "import <module>"`` in fresh processes (median, all)."""
    values = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            check=True,
            capture_output=True,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)},
            timeout=300,
        )
        values.append(time.perf_counter() - started)
    return {"median_s": statistics.median(values), "values_s": values}


def status_kib(pid: int) -> dict[str, int]:
    """``VmHWM`` and ``VmRSS`` (KiB) of process ``pid`` from ``/proc/<pid>/status``."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


def unavailable() -> str | None:
    """Why the browser benchmark cannot run here (``None``: it can)."""
    from tools.browser import CHROMIUM

    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (install Debian's chromium: scripts/ensure_chromium.sh)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed"
    return None


def browse(settings: Settings, *, rounds: int = 2) -> dict[str, Any]:
    """Start the app, render every page, read its memory; see the module docstring."""
    from playwright.sync_api import sync_playwright

    from tools import browser as ui

    log = ROOT / "test-artifacts" / "streamlit-bench.log"
    timeout_ms = settings.app_timeout_s * 1000.0
    out: dict[str, Any] = {}
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(ui.CHROMIUM), args=ui.LAUNCH_ARGS)
        context = chromium.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        port = ui.free_port()
        url = f"http://127.0.0.1:{port}"
        started = time.perf_counter()
        process = ui.start_server(
            port, log=log, env={"HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        )
        try:
            ui.wait_healthy(url, process, log, timeout=settings.app_timeout_s)
            out["server_healthy_s"] = time.perf_counter() - started
            page.goto(url)
            page.locator("h1").filter(has_text="MedViz").first.wait_for(state="visible")
            ui.wait_idle(page, timeout=timeout_ms)
            ui.wait_rendered(page, timeout=timeout_ms)
            out["first_page_s"] = time.perf_counter() - started

            clicked = time.perf_counter()
            page.get_by_role("button", name="Run the demo").click()
            page.locator("h3").filter(has_text="Prediction:").first.wait_for()
            ui.wait_idle(page, timeout=timeout_ms)
            out["demo_click_to_prediction_s"] = time.perf_counter() - clicked

            cold: dict[str, float] = {}
            for title, heading in ui.PAGES:
                cold[title] = ui.goto(page, title, heading)
                ui.wait_rendered(page, timeout=timeout_ms)
            warm: dict[str, list[float]] = {title: [] for title, _ in ui.PAGES}
            for _ in range(rounds):
                for title, heading in ui.PAGES:
                    begun = time.perf_counter()
                    ui.goto(page, title, heading)
                    ui.wait_rendered(page, timeout=timeout_ms)
                    warm[title].append(time.perf_counter() - begun)
            out["page_first_visit_s"] = cold
            out["page_warm_s"] = {t: statistics.median(v) for t, v in warm.items()}
            out["page_warm_all_s"] = warm
            out["page_warm_median_s"] = statistics.median(
                [v for values in warm.values() for v in values]
            )
            memory = status_kib(process.pid)
            out["server_pid_peak_rss_mib"] = memory["VmHWM"] / 1024.0
            out["server_pid_rss_mib"] = memory["VmRSS"] / 1024.0
        finally:
            ui.stop_server(process)
            context.close()
            chromium.close()
    out["rounds"] = rounds
    out["pages"] = [t for t, _ in ui.PAGES]
    return out


def run(settings: Settings) -> dict[str, Any]:
    """The app section; ``first_page_s`` is ``None`` with a reason when no browser can run."""
    out: dict[str, Any] = {}
    try:
        out["import_tensorflow"] = import_seconds("tensorflow")
        out["import_streamlit"] = import_seconds("streamlit")
    except (subprocess.SubprocessError, OSError) as error:
        out["import_tensorflow"] = {"error": f"{type(error).__name__}: {error}"}
    reason = unavailable()
    if reason is not None:
        out.update(first_page_s=None, reason=reason)
        return out
    out.update(browse(settings))
    return out
