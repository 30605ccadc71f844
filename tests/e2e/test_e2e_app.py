"""The app in real Chromium: every page, the demo, an upload, a training started and stopped."""

from __future__ import annotations

import io
import re
import statistics
import time

import numpy as np
import pytest
from e2e_helpers import assert_clean, nav, save_screenshot, sidebar_text, wait_idle

pytestmark = pytest.mark.e2e

PAGES = [  # (navigation title, page heading)
    ("Home", "MedViz"),
    ("Data", "Data"),
    ("Augment", "Augment"),
    ("Train", "Train"),
    ("Evaluate", "Evaluate"),
    ("Models", "Models"),
    ("Classify", "Classify"),
    ("Explain", "Explain"),
]


def _goto(page, title: str, heading: str) -> float:
    if title == "Home":
        started = time.perf_counter()
        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Home").click()
        page.locator("h1").filter(has_text=heading).first.wait_for(state="visible")
        wait_idle(page, settle_ms=50)
        return time.perf_counter() - started
    return nav(page, title)


def _png(seed: int = 5) -> bytes:
    from PIL import Image

    from medviz.data.synthetic import generate_microcalc

    data = generate_microcalc(6, image_size=64, seed=seed)
    pixels = data.images[int(np.argmax(data.labels))][..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((128, 128)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_every_page_renders_empty(page):
    wait_idle(page)
    assert_clean(page)
    save_screenshot(page, "00-home-empty")
    for index, (title, heading) in enumerate(PAGES):
        _goto(page, title, heading)
        assert_clean(page)
        assert "not for clinical use" in sidebar_text(page)
        save_screenshot(page, f"0{index}-{title.lower()}-empty")


def test_demo_path_then_every_page(page, timings):
    wait_idle(page)
    started = time.perf_counter()
    page.get_by_role("button", name="Run the demo").click()
    page.locator("h1").filter(has_text="Classify").first.wait_for()
    prediction = page.locator("h3").filter(has_text="Prediction:")
    prediction.first.wait_for()
    wait_idle(page)
    timings["demo_click_to_prediction_s"] = round(time.perf_counter() - started, 3)
    assert_clean(page)
    assert "microcalc-synthetic" in sidebar_text(page)
    assert page.get_by_text("Colour legend").count() == 1
    save_screenshot(page, "10-demo-classify", docs=True)

    # First visit of every page with the model active (loads data, evaluates, explains).
    first: dict[str, float] = {}
    for title, heading in PAGES:
        first[title] = _goto(page, title, heading)
        assert_clean(page)
        assert "microcalc-synthetic" in sidebar_text(page)
        save_screenshot(page, f"1{PAGES.index((title, heading)) + 1}-{title.lower()}", docs=True)
    # Then page switches with everything cached.
    cached: dict[str, list[float]] = {title: [] for title, _ in PAGES}
    for _ in range(2):
        for title, heading in PAGES:
            cached[title].append(_goto(page, title, heading))
            assert_clean(page)
    values = [v for runs in cached.values() for v in runs]
    timings["page_switch_first_visit_s"] = {k: round(v, 3) for k, v in first.items()}
    timings["page_switch_cached_s"] = {k: round(max(v), 3) for k, v in cached.items()}
    timings["page_switch_cached_median_s"] = round(statistics.median(values), 3)
    timings["page_switch_cached_max_s"] = round(max(values), 3)
    assert statistics.median(values) < 1.0, cached


def test_evaluate_click_a_confusion_cell(page):
    wait_idle(page)
    page.get_by_role("button", name="Run the demo").click()
    page.locator("h3").filter(has_text="Prediction:").first.wait_for()
    wait_idle(page)
    nav(page, "Evaluate")
    assert_clean(page)
    heatmap = page.locator('[data-testid="stPlotlyChart"]').first
    heatmap.scroll_into_view_if_needed()
    box = heatmap.locator(".nsewdrag").first.bounding_box()
    assert box is not None
    # Click the top-left cell: true normal → predicted normal.
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25)
    page.get_by_text(re.compile(r"True normal, predicted normal — \d+ images")).wait_for()
    wait_idle(page)
    assert_clean(page)


def test_classify_upload_shows_a_prediction(page, timings):
    wait_idle(page)
    nav(page, "Classify")
    page.get_by_role("button", name="Use the shipped default model").click()
    page.get_by_text("PNG, JPEG, BMP, TIFF, PGM or DICOM").first.wait_for()
    wait_idle(page)
    files = page.locator('[data-testid="stFileUploader"] input[type="file"]')
    latencies, server_ms = [], []
    for seed in (5, 6, 7):
        started = time.perf_counter()
        files.set_input_files(
            files=[{"name": f"patch-{seed}.png", "mimeType": "image/png", "buffer": _png(seed)}]
        )
        page.locator("h3").filter(has_text="Prediction:").first.wait_for()
        caption = page.get_by_text(re.compile(r"took \d+ ms")).first
        caption.wait_for()
        wait_idle(page, settle_ms=0)
        latencies.append(time.perf_counter() - started)
        server_ms.append(int(re.search(r"took (\d+) ms", caption.inner_text()).group(1)))
        assert_clean(page)
    save_screenshot(page, "20-classify-upload", docs=True)
    timings["classify_upload_to_result_s"] = [round(v, 3) for v in latencies]
    timings["classify_server_predict_gradcam_ood_ms"] = server_ms
    assert min(server_ms) < 1000


def test_train_start_and_stop(page, timings):
    wait_idle(page)
    nav(page, "Data")
    limit = page.get_by_label("Images per class and split")
    limit.fill("40")
    limit.press("Enter")
    wait_idle(page)
    size = page.get_by_label("Image size (px)")
    size.fill("32")
    size.press("Enter")
    wait_idle(page)
    page.get_by_role("button", name="Load dataset").click()
    page.get_by_text("Loaded").first.wait_for()
    wait_idle(page)
    assert_clean(page)

    nav(page, "Train")
    epochs = page.get_by_label("Epochs")
    epochs.fill("40")
    epochs.press("Enter")
    wait_idle(page)
    early = page.get_by_label("Early stopping patience")
    early.fill("0")
    early.press("Enter")
    wait_idle(page)
    started = time.perf_counter()
    page.get_by_role("button", name="Start training").click()
    page.get_by_text(re.compile(r"Epoch \d+/40")).first.wait_for(timeout=120_000)
    # Let a couple of epochs draw their curves, then stop.
    page.get_by_text(re.compile(r"Epoch [3-9]/40|Epoch \d\d/40")).first.wait_for(timeout=120_000)
    timings["train_start_to_third_epoch_s"] = round(time.perf_counter() - started, 3)
    save_screenshot(page, "30-train-running", docs=True)
    assert_clean(page)
    page.get_by_role("button", name="Stop").click()
    page.get_by_text("is ready (stopped by you; best epoch kept)").wait_for(timeout=120_000)
    wait_idle(page)
    assert_clean(page)
    save_screenshot(page, "31-train-stopped", docs=True)
    sidebar = sidebar_text(page)
    assert "fast-cnn on synthetic-microcalc" in sidebar, sidebar
