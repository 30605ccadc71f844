"""Load and faults against the real app: concurrent browser sessions, a tab closed mid-training.

``test_soak_short`` (20 s of load after set-up, part of ``make test``) and ``test_soak_long``
(``make soak``, marker ``soak``, ``MEDVIZ_SOAK_SECONDS`` long, default 120) start
the app on loopback (the session's ``server`` fixture) and drive several
Chromium sessions at once: some classify uploads, one explains uploads with five
methods, one trains. Every action is timed; the figures (requests, errors, p50
and p95 latency) go to ``test-artifacts/soak.json``. Each session loads its own
dataset (a distinct images-per-class cap) and the training session names its
models uniquely; every session asserts its sidebar shows only its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import re
import threading
import time
import urllib.request
from dataclasses import dataclass, field

import numpy as np
import pytest
from e2e_helpers import (
    ARTIFACTS,
    CHROMIUM,
    ERROR_ALERT,
    EXCEPTION,
    IDLE,
    LAUNCH_ARGS,
    assert_clean,
    nav,
    sidebar_text,
    wait_idle,
)

pytestmark = pytest.mark.e2e
ACTION_TIMEOUT_MS = 150_000


def _png(seed: int) -> bytes:
    from PIL import Image

    from medviz.data.synthetic import generate_microcalc

    data = generate_microcalc(2, image_size=64, seed=seed)
    buffer = io.BytesIO()
    Image.fromarray(data.images[seed % 2][..., 0]).resize((96, 96)).save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Session:
    """One simulated user: what it does and what happened."""

    index: int
    role: str  # "classify", "explain" or "train"
    limit: int  # its own dataset: images per class and split
    latencies: list[tuple[str, float]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    isolated: bool | None = None
    trained: list[str] = field(default_factory=list)

    @property
    def marker(self) -> str:
        return f"≤{self.limit}/class"


async def _idle(page, settle_ms: int = 150) -> None:
    await page.wait_for_timeout(settle_ms)
    await page.wait_for_selector(IDLE, timeout=ACTION_TIMEOUT_MS)


async def _rerun_done(page) -> None:
    """Wait for the script run an action triggered (it may start and end quickly)."""
    with contextlib.suppress(Exception):  # a fast run may already be over
        await page.wait_for_selector(
            '[data-testid="stApp"][data-test-script-state="running"]', timeout=3_000
        )
    await _idle(page, settle_ms=50)


async def _nav(page, title: str) -> None:
    nav_bar = page.locator('[data-testid="stSidebarNav"]')
    await nav_bar.get_by_role("link", name=title, exact=True).click()
    await page.locator("h1").filter(has_text=title).first.wait_for(state="visible")
    await _idle(page, settle_ms=50)


async def _number(page, label: str, value: int) -> None:
    box = page.get_by_role("spinbutton", name=label)
    await box.fill(str(value))
    await box.press("Enter")
    await _idle(page)


async def _check_clean(page, what: str) -> None:
    if await page.locator(EXCEPTION).count():
        raise AssertionError(
            f"{what}: exception shown: {await page.locator(EXCEPTION).first.inner_text()}"
        )
    if await page.locator(ERROR_ALERT).count():
        raise AssertionError(
            f"{what}: error shown: {await page.locator(ERROR_ALERT).first.inner_text()}"
        )


async def _timed(session: Session, kind: str, action) -> None:
    started = time.perf_counter()
    try:
        await action()
        session.latencies.append((kind, time.perf_counter() - started))
    except Exception as err:  # counted and reported, the soak goes on
        session.errors.append(f"{kind}: {type(err).__name__}: {str(err)[:300]}")


async def _setup(page, url: str, session: Session) -> None:
    """Open the app, load this session's own dataset, get to the page of its role."""
    await page.goto(url)
    await _idle(page)

    async def load_own_dataset() -> None:
        await _nav(page, "Data")
        await _number(page, "Images per class and split", session.limit)
        await _number(page, "Image size (px)", 32)
        await page.get_by_role("button", name="Load dataset").click()
        await page.get_by_text("Loaded").first.wait_for()
        await _idle(page)
        await _check_clean(page, "load dataset")

    await _timed(session, "load dataset", load_own_dataset)
    if session.role in ("classify", "explain"):

        async def use_default() -> None:
            await _nav(page, "Classify")
            await page.get_by_role("button", name="Use the shipped default model").click()
            await page.get_by_text("PNG, JPEG, BMP, TIFF, PGM or DICOM").first.wait_for()
            await _idle(page)

        await _timed(session, "activate model", use_default)
    if session.role == "explain":
        await _timed(session, "open explain", lambda: _nav(page, "Explain"))
        await page.get_by_role("radio", name="Upload an image", exact=True).click()
        await _idle(page)
    if session.role == "train":
        await _timed(session, "open train", lambda: _nav(page, "Train"))
        await _number(page, "Epochs", 1)


async def _user(
    browser, url: str, session: Session, seconds: float, others: list[Session], barrier
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(ACTION_TIMEOUT_MS)
    try:
        try:
            await _setup(page, url, session)
        finally:
            await barrier.wait()  # the timed part starts when every session is set up
        deadline = time.monotonic() + seconds
        n = 0
        while n == 0 or time.monotonic() < deadline:  # at least one request each
            n += 1
            seed = 1000 * session.index + n
            if session.role == "classify":
                name = f"s{session.index}-{n}.png"

                async def classify(name: str = name, seed: int = seed, n: int = n) -> None:
                    files = page.locator('[data-testid="stFileUploader"] input[type="file"]')
                    await files.set_input_files(
                        files=[{"name": name, "mimeType": "image/png", "buffer": _png(seed)}]
                    )
                    # The uploader keeps earlier files: the first gives the detail view, later
                    # ones the results table (each new file is classified once, then memoised).
                    if n == 1:
                        done = page.get_by_text(re.compile(rf"{re.escape(name)} · .* took \d+ ms"))
                    else:
                        done = page.locator("h3").filter(has_text=f"{n} images classified")
                    await done.first.wait_for()
                    await _idle(page, settle_ms=0)
                    await _check_clean(page, "classify")

                await _timed(session, "classify", classify)
            elif session.role == "explain":

                async def explain(seed: int = seed) -> None:
                    files = page.locator('[data-testid="stFileUploader"] input[type="file"]')
                    await files.set_input_files(
                        files=[
                            {"name": f"e{seed}.png", "mimeType": "image/png", "buffer": _png(seed)}
                        ]
                    )
                    await _rerun_done(page)
                    await page.get_by_text(re.compile(r"Explaining .* CAM layer")).first.wait_for()
                    await page.get_by_text(re.compile(r"Grad-CAM · \d+ ms")).first.wait_for()
                    await _check_clean(page, "explain")

                await _timed(session, "explain", explain)
            else:
                title = f"soak-train-{session.index}-{n}"

                async def train(title: str = title) -> None:
                    box = page.get_by_role("textbox", name="Model name")
                    await box.fill(title)
                    await box.press("Enter")
                    await _idle(page)
                    await page.get_by_role("button", name="Start training").click()
                    await page.get_by_text(
                        re.compile(rf"{re.escape(title)}\s+is ready")
                    ).first.wait_for()
                    await _idle(page)
                    await _check_clean(page, "train")
                    session.trained.append(title)

                await _timed(session, "train", train)

        # Isolation: only this session's dataset (and models) in its sidebar.
        sidebar = await page.locator('[data-testid="stSidebar"]').inner_text()
        foreign = [o.marker for o in others if o is not session and o.marker in sidebar]
        foreign += [t for o in others if o is not session for t in o.trained if t in sidebar]
        if session.role != "train":
            foreign += ["soak-train"] if "soak-train" in sidebar else []
        session.isolated = session.marker in sidebar and not foreign
        if not session.isolated:
            session.errors.append(
                f"isolation: own {session.marker!r}, foreign {foreign}: {sidebar[:300]}"
            )
    except Exception as err:  # set-up failures are errors of the soak
        session.errors.append(f"session: {type(err).__name__}: {str(err)[:300]}")
    finally:
        await context.close()


async def _soak(url: str, sessions: list[Session], seconds: float) -> None:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            barrier = asyncio.Barrier(len(sessions))
            await asyncio.gather(
                *(_user(browser, url, s, seconds, sessions, barrier) for s in sessions)
            )
        finally:
            await browser.close()


def _run_soak(server: str, roles: list[str], seconds: float, key: str) -> dict:
    sessions = [Session(i, role, limit=11 + i) for i, role in enumerate(roles)]
    started = time.perf_counter()
    failure: list[BaseException] = []

    def target() -> None:  # Playwright's async API in its own thread and event loop
        try:
            asyncio.run(_soak(server, sessions, seconds))
        except BaseException as err:  # re-raised in the test thread
            failure.append(err)

    thread = threading.Thread(target=target, name="soak")
    thread.start()
    thread.join(timeout=seconds + 600)
    assert not thread.is_alive(), "the soak did not end"
    if failure:
        raise failure[0]
    wall = time.perf_counter() - started
    with urllib.request.urlopen(f"{server}/_stcore/health", timeout=10) as response:
        healthy = response.status == 200
    latencies = sorted(d for s in sessions for _, d in s.latencies)
    errors = [e for s in sessions for e in s.errors]
    by_kind: dict[str, list[float]] = {}
    for s in sessions:
        for kind, d in s.latencies:
            by_kind.setdefault(kind, []).append(d)
    report = {
        "command": "make test" if key == "short" else "make soak",
        "sessions": len(sessions),
        "roles": roles,
        "seconds_requested": seconds,
        "wall_s": round(wall, 1),
        "requests": len(latencies),
        "errors": len(errors),
        "error_messages": errors[:20],
        "p50_s": round(float(np.percentile(latencies, 50)), 3) if latencies else None,
        "p95_s": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
        "per_kind": {
            k: {"n": len(v), "p95_s": round(float(np.percentile(v, 95)), 3)}
            for k, v in sorted(by_kind.items())
        },
        "isolation_ok": all(s.isolated for s in sessions),
        "server_healthy_after": healthy,
        "trainings_finished": sum(len(s.trained) for s in sessions),
    }
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / "soak.json"
    previous = json.loads(path.read_text()) if path.exists() else {}
    previous[key] = report
    path.write_text(json.dumps(previous, indent=2) + "\n")
    return report


def _assert_report(report: dict, roles: list[str]) -> None:
    assert report["errors"] == 0, report["error_messages"]
    assert report["isolation_ok"], report
    assert report["server_healthy_after"]
    assert report["per_kind"].get("classify", {}).get("n", 0) >= roles.count("classify")
    assert report["per_kind"].get("explain", {}).get("n", 0) >= roles.count("explain")
    assert report["trainings_finished"] >= 1, report


def test_soak_short(server):
    roles = ["classify", "classify", "explain", "train"]
    seconds = float(os.environ.get("MEDVIZ_SOAK_SHORT_SECONDS", "20"))
    _assert_report(_run_soak(server, roles, seconds, "short"), roles)


@pytest.mark.soak
def test_soak_long(server):
    roles = ["classify", "classify", "classify", "explain", "explain", "train"]
    seconds = float(os.environ.get("MEDVIZ_SOAK_SECONDS", "120"))
    _assert_report(_run_soak(server, roles, seconds, "long"), roles)


def test_tab_closed_mid_training_leaves_the_server_healthy(browser, server):
    """Close the page while it trains; a new session finds the server working and trains."""

    def prepare(page) -> None:
        page.goto(server)
        wait_idle(page)
        nav(page, "Data")
        for label, value in (("Images per class and split", 20), ("Image size (px)", 32)):
            box = page.get_by_role("spinbutton", name=label)
            box.fill(str(value))
            box.press("Enter")
            wait_idle(page)
        page.get_by_role("button", name="Load dataset").click()
        page.get_by_text("Loaded").first.wait_for()
        wait_idle(page)
        nav(page, "Train")

    first = browser.new_context()
    page = first.new_page()
    page.set_default_timeout(120_000)
    prepare(page)
    for label, value in (("Epochs", 6), ("Early stopping patience", 0)):
        box = page.get_by_role("spinbutton", name=label)
        box.fill(str(value))
        box.press("Enter")
        wait_idle(page)
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Epoch \d+/6")).first.wait_for()
    first.close()  # the tab is gone mid-training

    with urllib.request.urlopen(f"{server}/_stcore/health", timeout=10) as response:
        assert response.status == 200
    second = browser.new_context()
    page = second.new_page()
    page.set_default_timeout(150_000)
    try:
        prepare(page)
        assert "Training" not in sidebar_text(page), "the closed tab's job is not ours"
        epochs = page.get_by_role("spinbutton", name="Epochs")
        epochs.fill("1")
        epochs.press("Enter")
        wait_idle(page)
        page.get_by_role("button", name="Start training").click()
        page.get_by_text(re.compile(r"is ready")).first.wait_for()
        wait_idle(page)
        assert_clean(page)
    finally:
        second.close()
