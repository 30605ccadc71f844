"""Smoke test of the speed benchmarks: ``python -m bench --quick`` at tiny sizes.

The environment caps every size (``MEDVIZ_BENCH_*``) so the whole run, one
fresh process importing TensorFlow, takes well under a minute on 2 cores. The
browser section is skipped here (the e2e tests cover the app in Chromium).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

TINY = {
    "MEDVIZ_BENCH_TRAIN_IMAGES": "48",
    "MEDVIZ_BENCH_BATCH_SIZE": "16",
    "MEDVIZ_BENCH_REPEATS": "2",
    "MEDVIZ_BENCH_JIT": "0",
    "MEDVIZ_BENCH_JIT_AB": "0",
    "MEDVIZ_BENCH_LATENCY_CALLS": "6",
    "MEDVIZ_BENCH_NAIVE_CALLS": "1",
    "MEDVIZ_BENCH_UPLOAD_SIZE": "96",
    "MEDVIZ_BENCH_TRANSFER_SIZE": "32",
    "MEDVIZ_BENCH_TTQ_MAX_EPOCHS": "1",
    "MEDVIZ_BENCH_TTQ_LIMIT_PER_CLASS": "24",
    "MEDVIZ_BENCH_AM_STEPS": "3",
    "MEDVIZ_BENCH_DREAM_STEPS": "2",
    "MEDVIZ_BENCH_METHOD_CALLS": "1",
    "MEDVIZ_BENCH_SIZES": "28",
    "MEDVIZ_BENCH_SCALING_PIXELS": str(32 * 28 * 28),
    "MEDVIZ_BENCH_MEMORY_TRAIN_IMAGES": "12",
    "MEDVIZ_BENCH_STREAM_DATASETS": "40,80",
    "MEDVIZ_BENCH_STREAM_SOURCE_SIZE": "48",
    "MEDVIZ_BENCH_STREAM_EPOCHS": "1",
}


@pytest.fixture(scope="module")
def quick_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    env = {
        **os.environ,
        **TINY,
        "PYTHONPATH": str(ROOT),
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "MEDVIZ_BENCH_JIT": "0",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--skip", "app", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads((out / "latest.json").read_text())
    return report, (out / "latest.md").read_text(), seconds


def test_every_section_ran_without_error(quick_report):
    report, _, _ = quick_report
    for name in report["sections_run"]:
        assert "error" not in report[name], (name, report[name].get("error"))
    assert "app" not in report["sections_run"]
    machine = report["machine"]
    assert machine["usable_cores"] >= 1 and machine["tensorflow"] and machine["cpu_model"]
    assert len(machine["load_average_start"]) == 3


def test_throughput_figures_are_sane(quick_report):
    report, _, _ = quick_report
    tp = report["throughput"]
    for name in ("medviz", "notebook", "bound"):
        stats = tp["contenders"][name]["images_per_s"]
        assert stats["median"] > 0 and stats["min"] <= stats["median"] <= stats["max"]
        assert stats["n"] == 2
    assert tp["medviz_vs_plain_keras"] == pytest.approx(
        tp["images_per_s"]["medviz"] / tp["images_per_s"]["notebook"]
    )
    best = tp["best_bound"]
    assert best == max(
        (n for n in tp["images_per_s"] if n.startswith("bound")), key=tp["images_per_s"].get
    )
    assert tp["medviz_vs_best_bound"] == pytest.approx(
        tp["images_per_s"]["medviz"] / tp["images_per_s"][best]
    )
    assert "XLA" in tp["jit_reason"]
    assert tp["profile"]["medviz_pipeline_images_per_s"] > 0
    assert report["summary"]["throughput.medviz_vs_plain_keras"] == tp["medviz_vs_plain_keras"]


def test_latency_and_explanations_are_sane(quick_report):
    report, _, _ = quick_report
    for key in ("default", "transfer"):
        lat = report["latency"][key]
        assert 0 < lat["p50_ms"] <= lat["p95_ms"]
        assert lat["naive"]["p50_ms"] > 0 and lat["speedup_vs_naive"] > 0
        assert lat["n"] == 6
    reused = report["latency"]["default"]["reused_tf_keras_vis"]
    assert 0 < reused["p50_ms"] <= reused["p95_ms"] and reused["build_s"] > 0
    assert report["summary"]["latency.default.speedup_vs_reused_tf_keras_vis"] == (
        reused["p50_ms"] / report["latency"]["default"]["p50_ms"]
    )
    assert report["latency"]["transfer"]["reused_tf_keras_vis"] is None
    assert report["summary"]["latency.default.p95_ms"] == report["latency"]["default"]["p95_ms"]
    methods = report["explanations"]["methods"]
    assert {"gradcam", "gradcam++", "layercam", "scorecam", "saliency", "occlusion"} <= set(methods)
    for key, value in methods.items():
        assert "error" not in value, key
        assert 0 < value["p50_ms"] <= value["p95_ms"]
    for key in ("activation_max", "deep_dream"):
        assert report["explanations"][key]["total_s"] > 0
        assert report["explanations"][key]["per_step_ms_median"] > 0


def test_quality_memory_scaling_are_sane(quick_report):
    report, _, _ = quick_report
    tq = report["time_to_quality"]
    assert "time_to_val_auc_095_s" in tq and tq["epochs"]
    value = tq["time_to_val_auc_095_s"]
    assert 0 <= tq["test_auc"] <= 1 and tq["stable"] in (True, False)
    assert tq["config"]["lr_schedule"] == "cosine"  # the dataset's recipe
    assert (value is None and tq["note"]) or value > 0
    assert tq["pneumonia_xray_train"]["seconds"] > 0
    assert "card.json" in tq["pneumonia_xray_train"]["source"]
    assert report["memory"]["train"]["peak_rss_mib"] > 100
    assert report["memory"]["app"]["peak_rss_mib"] is None  # app skipped
    sizes = report["scaling"]["sizes"]
    assert set(sizes) == {"28"}
    for entry in sizes.values():
        assert entry["images_per_s"]["medviz"] > 0 and entry["images_per_s"]["bound"] > 0
        assert 0 < entry["latency"]["p50_ms"] <= entry["latency"]["p95_ms"]
    datasets = report["scaling"]["datasets"]
    assert set(datasets["rows"]) == {"40", "80"}, datasets
    for row in datasets["rows"].values():
        assert row["index"]["cache"] == "built" and row["streamed"]["cache"] == "reused"
        assert row["in_memory"]["cache"] is None
        for run in row.values():
            assert run["peak_rss_mib"] > 100
        assert row["streamed"]["images_per_s"] > 0 and row["in_memory"]["images_per_s"] > 0
    assert datasets["streamed_rss_ratio"] == pytest.approx(
        datasets["rows"]["80"]["streamed"]["peak_rss_mib"]
        / datasets["rows"]["40"]["streamed"]["peak_rss_mib"]
    )


def test_markdown_and_summary(quick_report, tmp_path):
    from bench.report import README_END, README_START, update_readme

    report, md, seconds = quick_report
    assert "## Training throughput" in md and "## Scaling with image size" in md
    assert set(report["targets"]) == {
        "throughput.medviz_vs_best_bound",
        "throughput.medviz_vs_plain_keras",
        "time_to_val_auc_095_s",
        "time_to_quality.stable",
        "time_to_quality.test_auc",
        "latency.default.p95_ms",
        "latency.default.speedup_vs_naive",
        "latency.default.speedup_vs_reused_tf_keras_vis",
        "scaling.streamed_rss_ratio",
        "scaling.streamed_throughput_ratio",
    }
    readme = tmp_path / "README.md"
    readme.write_text("# X\n\n## What the network learned\ntext\n")
    update_readme(readme, report)
    update_readme(readme, report)  # idempotent: replaces its own section
    text = readme.read_text()
    assert text.count(README_START) == 1 and text.count(README_END) == 1
    assert text.index("## Speed") < text.index("## What the network learned")
    print(f"bench smoke run: {seconds:.1f} s")


def test_settings_env_and_notebook_transform():
    from bench.common import Settings, summarize
    from bench.notebook import ImageTransformer, apply_affine_transform
    from medviz.augment import AugmentConfig

    s = Settings.quick().with_env({"MEDVIZ_BENCH_SIZES": "28,64", "MEDVIZ_BENCH_REPEATS": "4"})
    assert s.sizes == (28, 64) and s.repeats == 4
    with pytest.raises(ValueError, match="MEDVIZ_BENCH_REPEATS"):
        Settings().with_env({"MEDVIZ_BENCH_REPEATS": "many"})
    stats = summarize([1.0, 2.0, 3.0])
    assert stats["median"] == 2.0 and stats["rel_spread"] == 1.0
    image = np.random.default_rng(0).uniform(0, 255, (16, 16, 1)).astype(np.float32)
    assert apply_affine_transform(image) is image
    moved = ImageTransformer(AugmentConfig()).random_transform(image, np.random.default_rng(1))
    assert moved.shape == image.shape and moved.dtype == np.float32
    assert moved.min() >= 0 and moved.max() <= 255 and not np.allclose(moved, image)
