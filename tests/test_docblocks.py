"""Generated README blocks: the helper, and every block in step with its source."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medviz.docblocks import block_body, replace_block, update_file

ROOT = Path(__file__).resolve().parents[1]


def _readme() -> str:
    return (ROOT / "README.md").read_text(encoding="utf-8")


def test_replace_block_and_update_file(tmp_path):
    text = "intro\n<!-- a -->\nold\n<!-- b -->\noutro\n"
    assert block_body(text, "<!-- a -->", "<!-- b -->") == "old"
    assert replace_block(text, "<!-- a -->", "<!-- b -->", "new\n") == (
        "intro\n<!-- a -->\nnew\n<!-- b -->\noutro\n"
    )
    assert block_body("<!-- b --> <!-- a -->", "<!-- a -->", "<!-- b -->") is None
    with pytest.raises(ValueError, match="no '<!-- x -->'"):
        replace_block(text, "<!-- x -->", "<!-- b -->", "new")
    path = tmp_path / "README.md"
    path.write_text(text)
    assert update_file(path, "<!-- a -->", "<!-- b -->", "new") is True
    assert update_file(path, "<!-- a -->", "<!-- b -->", "new") is False
    assert "new" in path.read_text() and "old" not in path.read_text()
    with pytest.raises(ValueError, match=r"README\.md has no"):
        update_file(path, "<!-- x -->", "<!-- y -->", "z")


def test_explanation_figures_are_those_of_explain_json():
    from bench import explanations_readme as benchmark

    report = json.loads(benchmark.RESULTS_FILE.read_text(encoding="utf-8"))
    body = block_body(_readme(), benchmark.README_BEGIN, benchmark.README_END)
    assert body == benchmark.readme_section(report), f"run: {benchmark.COMMAND}"
    hit = report["localization"]["gradcam"]["hit_rate"]
    assert f"{hit:.3f}" in body


def test_speed_section_is_that_of_latest_json():
    from bench import report as bench_report

    latest = ROOT / "bench" / "results" / "latest.json"
    report = json.loads(latest.read_text(encoding="utf-8"))
    body = block_body(_readme(), bench_report.README_START, bench_report.README_END)
    assert body == bench_report.readme_section(report).strip(), "run: make bench"
