"""Turn a benchmark report (dict) into the summary, ``latest.md`` and the README "Speed" section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

README_START = "<!-- bench:speed:start -->"
README_END = "<!-- bench:speed:end -->"


def get(report: dict[str, Any], path: str, default: Any = None) -> Any:
    """``report["a"]["b"]…`` for ``path="a.b…"``, ``default`` where any part is missing."""
    node: Any = report
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


#: summary key -> (path in the report, target text, test) ; test None: no target.
SUMMARY = {
    "throughput.images_per_s.medviz": ("throughput.images_per_s.medviz", None, None),
    "throughput.images_per_s.notebook": ("throughput.images_per_s.notebook", None, None),
    "throughput.images_per_s.bound": ("throughput.images_per_s.bound", None, None),
    "throughput.images_per_s.bound_xla": ("throughput.images_per_s.bound_xla", None, None),
    "throughput.medviz_vs_best_bound": (
        "throughput.medviz_vs_best_bound",
        ">= 0.95",
        lambda v: v >= 0.95,
    ),
    "throughput.medviz_vs_plain_keras": (
        "throughput.medviz_vs_plain_keras",
        ">= 1",
        lambda v: v >= 1,
    ),
    "time_to_val_auc_095_s": (
        "time_to_quality.time_to_val_auc_095_s",
        "<= 8 s",
        lambda v: v <= 8,
    ),
    "time_to_quality.stable": (
        "time_to_quality.stable",
        "no epoch after the first below val AUC 0.8",
        lambda v: bool(v),
    ),
    "time_to_quality.test_auc": (
        "time_to_quality.test_auc",
        ">= 0.95",
        lambda v: v >= 0.95,
    ),
    "pneumonia_xray_train_s": ("time_to_quality.pneumonia_xray_train.seconds", None, None),
    "latency.default.p50_ms": ("latency.default.p50_ms", None, None),
    "latency.default.p95_ms": ("latency.default.p95_ms", "<= 150 ms", lambda v: v <= 150),
    "latency.default.speedup_vs_naive": (
        "latency.default.speedup_vs_naive",
        ">= 3",
        lambda v: v >= 3,
    ),
    "latency.default.speedup_vs_reused_tf_keras_vis": (
        "latency.default.speedup_vs_reused_tf_keras_vis",
        ">= 1",
        lambda v: v >= 1,
    ),
    "latency.transfer.p50_ms": ("latency.transfer.p50_ms", None, None),
    "latency.transfer.p95_ms": ("latency.transfer.p95_ms", None, None),
    "latency.transfer.speedup_vs_naive": ("latency.transfer.speedup_vs_naive", None, None),
    "app.first_page_s": ("app.first_page_s", None, None),
    "app.page_warm_median_s": ("app.page_warm_median_s", None, None),
    "app.import_tensorflow_s": ("app.import_tensorflow.median_s", None, None),
    "memory.app_peak_rss_mib": ("memory.app.peak_rss_mib", None, None),
    "scaling.streamed_rss_ratio": (
        "scaling.datasets.streamed_rss_ratio",
        "<= 1.2",
        lambda v: v <= 1.2,
    ),
    "scaling.streamed_throughput_ratio": (
        "scaling.datasets.streamed_throughput_ratio",
        ">= 0.9",
        lambda v: v >= 0.9,
    ),
    "memory.train_peak_rss_mib": ("memory.train.peak_rss_mib", None, None),
}


def summarize_report(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(summary, targets)``: headline figures by dotted key, and each target's verdict."""
    summary, targets = {}, {}
    for key, (path, text, test) in SUMMARY.items():
        value = get(report, path)
        summary[key] = value
        if text is not None:
            met = None if value is None else bool(test(value))
            targets[key] = {"target": text, "value": value, "met": met}
    return summary, targets


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def limits(report: dict[str, Any]) -> list[str]:
    """Sentences explaining each missed target from the measured profile."""
    out = []
    tp = report.get("throughput", {})
    prof = tp.get("profile", {})
    if tp.get("medviz_vs_best_bound") is not None and tp["medviz_vs_best_bound"] < 0.95:
        out.append(
            f"MedViz reaches {100 * tp['medviz_vs_best_bound']:.0f} % of the best bound "
            f"(`{tp.get('best_bound')}`): its augmentation "
            f"({_fmt(prof.get('augment_ms_per_batch_medviz_alone'))} ms per batch alone) runs on "
            f"the same cores as the train step; XLA choice: {tp.get('jit_reason')}."
        )
    if tp.get("medviz_vs_plain_keras") is not None and tp["medviz_vs_plain_keras"] < 1:
        out.append(
            f"MedViz runs at {tp['medviz_vs_plain_keras']:.2f}× the plain-Keras notebook "
            f"(notebook generator alone {_fmt(prof.get('augment_ms_per_batch_notebook_alone'))} "
            f"ms per batch, MedViz pipeline alone "
            f"{_fmt(prof.get('augment_ms_per_batch_medviz_alone'))} ms)."
        )
    tq = report.get("time_to_quality", {})
    if tq.get("reached") is False or (tq.get("time_to_val_auc_095_s") or 0) > 60:
        epochs = tq.get("epochs", [])
        per_epoch = (
            (epochs[-1]["wall_s"] - epochs[0]["wall_s"]) / (len(epochs) - 1)
            if len(epochs) > 1
            else None
        )
        out.append(
            f"Time to val AUC 0.95: {_fmt(tq.get('time_to_val_auc_095_s'))} s "
            f"({tq.get('epochs_to_target')} epochs; first epoch incl. build and tracing "
            f"{_fmt(tq.get('first_epoch_wall_s'))} s, then {_fmt(per_epoch)} s per epoch). "
            "The first epoch holds model building, tracing and the XLA compilation of the "
            "train step and of the validation step (full and remainder batch shapes each); the "
            "later epochs are bound by the train step's compute (see the throughput profile), "
            "which the load average above shares with other processes. " + (tq.get("note") or "")
        )
    lat = report.get("latency", {}).get("default", {})
    if lat.get("p95_ms") is not None and lat["p95_ms"] > 150:
        out.append(f"Default-model p95 {lat['p95_ms']:.0f} ms: {lat.get('breakdown_p50_ms')}")
    return out


def _section(lines: list[str], title: str, section: dict[str, Any]) -> bool:
    """Append a ``## title`` heading; ``True`` when the section's body should follow.

    A section whose run failed gets its error line instead of a body.
    """
    lines += ["", f"## {title}", ""]
    if "error" in section:
        lines.append(f"error: `{section['error']}`")
        return False
    return True


def markdown(report: dict[str, Any]) -> str:
    """The full Markdown report."""
    m = report.get("machine", {})
    lines = [
        "# MedViz speed benchmarks",
        "",
        f"Run {m.get('date')} with `{report.get('command')}` "
        f"({'quick' if report.get('quick') else 'full'} run, "
        f"{report.get('total_seconds', 0):.0f} s).",
        f"Machine: {m.get('cpu_model')}, {m.get('usable_cores')} usable cores, "
        f"{m.get('ram_gib')} GiB RAM, TensorFlow {m.get('tensorflow')}, Keras {m.get('keras')}, "
        f"Python {m.get('python')}; load average at start {m.get('load_average_start')}, "
        f"at end {m.get('load_average_end')}.",
    ]
    if report.get("load_warning"):
        lines += ["", f"> **Note:** {report['load_warning']}"]
    lines += ["", "## Targets", "", "| figure | value | target | met |", "|---|---|---|---|"]
    for key, t in report.get("targets", {}).items():
        lines.append(f"| `{key}` | {_fmt(t['value'], 2)} | {t['target']} | {_fmt(t['met'])} |")
    notes = limits(report)
    if notes:
        lines += ["", "## What limits the missed targets", ""] + [f"- {n}" for n in notes]

    tp = report.get("throughput", {})
    if "contenders" in tp:
        lines += [
            "",
            "## Training throughput",
            "",
            f"`{tp['arch']}` at {tp['image_shape']}, {tp['images_per_epoch']} images per epoch, "
            f"batch {tp['batch_size']}, MedViz XLA {'on' if tp['jit_compile'] else 'off'} "
            f"({tp.get('jit_reason', 'no reason recorded')}), "
            f"{tp['warmup_epochs']} warm-up epoch(s) dropped, {tp['repeats']} timed epochs each, "
            "round-robin.",
            "",
            "| contender | median img/s | min–max | rel. spread | warm-up epoch s |",
            "|---|---|---|---|---|",
        ]
        for name, c in tp["contenders"].items():
            s = c["images_per_s"]
            lines.append(
                f"| {name} | {s['median']:.1f} | {s['min']:.1f}–{s['max']:.1f} | "
                f"{100 * s['rel_spread']:.0f} % | {c['warmup_epoch_s']} |"
            )
        prof = tp.get("profile", {})
        lines += [
            "",
            f"Ratios: medviz / plain-Keras notebook **{tp['medviz_vs_plain_keras']:.2f}×**, "
            f"medviz / best bound (`{tp['best_bound']}`) **{tp['medviz_vs_best_bound']:.2f}**.",
            "",
            "Profile (per batch): "
            + ", ".join(f"{k} step {v:.1f} ms" for k, v in prof.get("step_ms", {}).items())
            + f"; MedViz pipeline alone {_fmt(prof.get('augment_ms_per_batch_medviz_alone'))} ms "
            f"({_fmt(prof.get('medviz_pipeline_images_per_s'), 0)} img/s), notebook generator "
            f"alone {_fmt(prof.get('augment_ms_per_batch_notebook_alone'))} ms "
            f"({_fmt(prof.get('notebook_generator_images_per_s'), 0)} img/s).",
        ]
    elif "error" in tp:
        lines += ["", "## Training throughput", "", f"error: `{tp['error']}`"]

    tq = report.get("time_to_quality", {})
    if _section(lines, "Time to quality", tq):
        lines.append(
            f"Default recipe on `{tq.get('dataset')}` ({tq.get('train_images')} training images, "
            f"augmentation {tq.get('config', {}).get('augment')}): val AUC ≥ "
            f"{tq.get('target_val_auc')} after **{_fmt(tq.get('time_to_val_auc_095_s'))} s** "
            f"({tq.get('epochs_to_target')} epochs; best {_fmt(tq.get('best_val_auc'), 3)}). "
            f"Lowest val AUC after the first epoch "
            f"{_fmt(tq.get('min_val_auc_after_first_epoch'), 3)} (stable: {tq.get('stable')}); "
            f"test AUC of the returned model {_fmt(tq.get('test_auc'), 3)}. Per epoch (s, val "
            "AUC): "
            + ", ".join(f"({e['wall_s']:.1f}, {e['val_auc']:.3f})" for e in tq.get("epochs", []))
            + "."
        )
        pn = tq.get("pneumonia_xray_train", {})
        lines.append(
            f"Shipped `pneumonia-xray` ({pn.get('arch')}, {pn.get('image_size')} px, "
            f"{pn.get('train_images')} training images, {pn.get('epochs_run')} epochs): "
            f"**{_fmt(pn.get('seconds'))} s** — {pn.get('source')} ({pn.get('machine')}, "
            f"{pn.get('date')})."
        )

    lat = report.get("latency", {})
    if _section(lines, "Interactive latency (one uploaded PNG, warm)", lat):
        lines += [
            f"Upload: {lat.get('upload')}. Fast path = the app's `decode_upload` + `classify`.",
            "",
            "| model | input | p50 ms | p95 ms | naive p50 ms | speed-up | reused tf-keras-vis "
            "p50 ms | speed-up | decode / resize / predict / Grad-CAM p50 ms |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for key in ("default", "transfer"):
            e = lat.get(key, {})
            if "p50_ms" not in e:
                continue
            b = e["breakdown_p50_ms"]
            reused = e.get("reused_tf_keras_vis") or {}
            reused_cells = (
                f"{reused['p50_ms']:.1f} | {e['speedup_vs_reused_tf_keras_vis']:.1f}×"
                if reused
                else "– | –"
            )
            lines.append(
                f"| {key}: {e['model']} | {e['input']} | {e['p50_ms']:.1f} | {e['p95_ms']:.1f} | "
                f"{e['naive']['p50_ms']:.1f} | {e['speedup_vs_naive']:.1f}× | {reused_cells} | "
                f"{b['decode_png']:.1f} / {b['to_model_input']:.1f} / {b['predict']:.1f} / "
                f"{b['gradcam']:.1f} |"
            )

    ex = report.get("explanations", {})
    if _section(lines, "Explanation methods (default shipped model, 64 px, warm)", ex):
        lines += ["| method | p50 ms | p95 ms | cost |", "|---|---|---|---|"]
        for key, e in ex.get("methods", {}).items():
            if "error" in e:
                lines.append(f"| {key} | error: {e['error']} | | |")
            else:
                lines.append(
                    f"| {e['title']} | {e['p50_ms']:.1f} | {e['p95_ms']:.1f} | {e['cost']} |"
                )
        for key, title in (
            ("activation_max", "Activation maximisation"),
            ("deep_dream", "Deep dream"),
        ):
            e = ex.get(key, {})
            lines.append(
                f"| {title} ({e.get('steps')} steps) | total {_fmt(e.get('total_s'), 2)} s | "
                f"{_fmt(e.get('per_step_ms_median'))} ms/step | first step "
                f"{_fmt(e.get('first_step_ms'))} ms (tracing) |"
            )

    app = report.get("app", {})
    if _section(lines, "App in Chromium", app):
        lines.append(
            "`import tensorflow` in a fresh process: "
            f"{_fmt(get(app, 'import_tensorflow.median_s'), 2)} s; "
            f"`import streamlit`: {_fmt(get(app, 'import_streamlit.median_s'), 2)} s."
        )
        if app.get("first_page_s") is None:
            lines.append(f"Browser part not run: {app.get('reason')}")
        else:
            lines += [
                f"`streamlit run` → server healthy {app['server_healthy_s']:.1f} s → first page "
                f"fully rendered **{app['first_page_s']:.1f} s**; demo click → prediction "
                f"{app['demo_click_to_prediction_s']:.1f} s.",
                "",
                "| page | first visit s | warm s (median) |",
                "|---|---|---|",
            ]
            for title in app.get("pages", []):
                lines.append(
                    f"| {title} | {app['page_first_visit_s'][title]:.2f} | "
                    f"{app['page_warm_s'][title]:.2f} |"
                )

    mem = report.get("memory", {})
    if _section(lines, "Memory", mem):
        lines.append(
            "App server peak RSS (VmHWM) after every page: "
            f"**{_fmt(get(mem, 'app.peak_rss_mib'), 0)} MiB** {get(mem, 'app.reason') or ''}; "
            "training run peak RSS "
            f"**{_fmt(get(mem, 'train.peak_rss_mib'), 0)} MiB** (high-water mark right after "
            "`import tensorflow`: "
            f"{_fmt(get(mem, 'train.after_import_tensorflow_rss_mib'), 0)} MiB)."
        )

    sc = report.get("scaling", {})
    if _section(lines, "Scaling with image size", sc):
        lines += [
            "| side | imgs/epoch | medviz img/s | bound img/s | medviz/bound "
            "| latency p50 / p95 ms | naive p50 ms |",
            "|---|---|---|---|---|---|---|",
        ]
        for size, e in sc.get("sizes", {}).items():
            ips = e.get("images_per_s", {})
            la = e.get("latency", {})
            lines.append(
                f"| {size} | {e.get('train_images_per_epoch', '—')} | {_fmt(ips.get('medviz'))} | "
                f"{_fmt(ips.get('bound'))} | {_fmt(e.get('medviz_vs_bound'), 2)} | "
                f"{_fmt(la.get('p50_ms'))} / {_fmt(la.get('p95_ms'))} | "
                f"{_fmt(la.get('naive_p50_ms'))} |"
            )
        ds = sc.get("datasets", {})
        if "rows" in ds:
            lines += [
                "",
                f"Dataset size (files {ds['source_size']} px JPEG, trained at {ds['image_size']} "
                "px; the last epoch timed; each run in a fresh process):",
                "",
                "| images | streamed training: peak RSS MiB | img/s | in memory: peak RSS MiB "
                "| img/s | one-time indexing pass: s | its peak RSS MiB |",
                "|---|---|---|---|---|---|---|",
            ]
            for n, row in ds["rows"].items():
                st, mem, ix = row["streamed"], row["in_memory"], row["index"]
                lines.append(
                    f"| {int(n):,} | {st['peak_rss_mib']:.0f} | {st['images_per_s']:.0f} | "
                    f"{mem['peak_rss_mib']:.0f} | {mem['images_per_s']:.0f} | {ix['load_s']:.1f} "
                    f"| {ix['peak_rss_mib']:.0f} |"
                )
            lines.append(
                f"\nStreamed, largest vs smallest: peak RSS ×{ds['streamed_rss_ratio']:.2f} "
                f"(target ≤ 1.2), throughput ×{ds['streamed_throughput_ratio']:.2f} (target ≥ 0.9)."
            )
        elif "error" in ds:
            lines.append(f"\nDataset-size scaling failed: {ds['error']}")
    errors = [k for k, v in report.items() if isinstance(v, dict) and "error" in v]
    if errors:
        lines += ["", f"Sections that failed: {', '.join(errors)} (see latest.json)."]
    return "\n".join(lines) + "\n"


def readme_section(report: dict[str, Any]) -> str:
    """The README's "Speed" section body (between the markers)."""
    m = report.get("machine", {})
    s = report.get("summary", {})
    t = report.get("targets", {})

    def verdict(key: str) -> str:
        met = t.get(key, {}).get("met")
        return "" if met is None else (" ✅" if met else " ❌")

    rows = [
        (
            "training img/s, fast-cnn 64 px, default augmentation: MedViz / plain-Keras "
            "notebook / bound without XLA / bound with XLA",
            f"{_fmt(s.get('throughput.images_per_s.medviz'))} / "
            f"{_fmt(s.get('throughput.images_per_s.notebook'))} / "
            f"{_fmt(s.get('throughput.images_per_s.bound'))} / "
            f"{_fmt(s.get('throughput.images_per_s.bound_xla'))}",
        ),
        (
            "MedViz vs plain-Keras notebook (target ≥ 1×)",
            _fmt(s.get("throughput.medviz_vs_plain_keras"), 2)
            + ("×" if s.get("throughput.medviz_vs_plain_keras") is not None else "")
            + verdict("throughput.medviz_vs_plain_keras"),
        ),
        (
            "MedViz vs best compute bound (target ≥ 0.95)",
            _fmt(s.get("throughput.medviz_vs_best_bound"), 2)
            + verdict("throughput.medviz_vs_best_bound"),
        ),
        (
            "time to val AUC 0.95, embedded data, default recipe (target ≤ 8 s)",
            f"{_fmt(s.get('time_to_val_auc_095_s'))} s{verdict('time_to_val_auc_095_s')}",
        ),
        (
            "shipped pneumonia-xray training (recorded in its card.json, not re-run)",
            f"{_fmt(s.get('pneumonia_xray_train_s'), 0)} s",
        ),
        (
            "upload 224 px PNG → prediction + Grad-CAM, default model, p50 / p95 (target ≤ 150 ms)",
            f"{_fmt(s.get('latency.default.p50_ms'))} / {_fmt(s.get('latency.default.p95_ms'))} ms"
            f"{verdict('latency.default.p95_ms')}",
        ),
        (
            "… speed-up vs naive tf-keras-vis per call (target ≥ 3×)",
            f"{_fmt(s.get('latency.default.speedup_vs_naive'))}×"
            f"{verdict('latency.default.speedup_vs_naive')}",
        ),
        (
            "… speed-up vs one tf-keras-vis instance built once and reused (target ≥ 1×)",
            f"{_fmt(s.get('latency.default.speedup_vs_reused_tf_keras_vis'))}×"
            f"{verdict('latency.default.speedup_vs_reused_tf_keras_vis')}",
        ),
        (
            "same, MobileNetV2 transfer model, p50 / p95; speed-up",
            f"{_fmt(s.get('latency.transfer.p50_ms'))} / {_fmt(s.get('latency.transfer.p95_ms'))} "
            f"ms; {_fmt(s.get('latency.transfer.speedup_vs_naive'))}×",
        ),
        (
            "`streamlit run` → first page rendered in Chromium; warm page render (median)",
            f"{_fmt(s.get('app.first_page_s'))} s; {_fmt(s.get('app.page_warm_median_s'), 2)} s",
        ),
        ("`import tensorflow` (fresh process)", f"{_fmt(s.get('app.import_tensorflow_s'))} s"),
        (
            "peak RSS: app after every page / short training run",
            f"{_fmt(s.get('memory.app_peak_rss_mib'), 0)} / "
            f"{_fmt(s.get('memory.train_peak_rss_mib'), 0)} MiB",
        ),
    ]
    lines = [
        f"Measured by `make bench` (`python -m bench`) on {m.get('date', '?')[:10]}: "
        f"{m.get('cpu_model')}, {m.get('usable_cores')} cores, {m.get('ram_gib')} GiB, "
        f"TensorFlow {m.get('tensorflow')}, Keras {m.get('keras')}, CPU only; load average "
        f"{m.get('load_average_start')} at start. Full report: "
        "[`bench/results/latest.md`](bench/results/latest.md) (data: `latest.json`).",
    ]
    if report.get("load_warning"):
        lines += ["", f"> {report['load_warning']}"]
    lines += ["", "| what | figure |", "|---|---|"]
    lines += [f"| {a} | {b} |" for a, b in rows]
    notes = limits(report)
    if notes:
        lines += ["", "What limits the missed targets:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def update_readme(readme: Path, report: dict[str, Any]) -> None:
    """Replace (or append) the "Speed" section of ``readme`` with this report's figures."""
    from medviz.docblocks import replace_block

    text = readme.read_text(encoding="utf-8")
    if README_START not in text:
        anchor = "## What the network learned"
        section = f"## Speed\n{README_START}\n{README_END}\n\n"
        text = text.replace(anchor, section + anchor) if anchor in text else text + "\n" + section
    readme.write_text(
        replace_block(text, README_START, README_END, readme_section(report)), "utf-8"
    )
