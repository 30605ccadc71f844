"""The bench report: not-shipped models, baselines and the cross-dataset table.

``python -m tools.make_models --bench`` trains the models whose data licences
forbid shipping them into ``runs/bench-models/`` (git-ignored), evaluates them
and the shipped models across datasets with ``python -m medviz evaluate …
--json`` (run in-process, same code path), and writes
``bench/results/models.json`` and ``bench/results/models.md`` from those JSON
answers (:func:`render_report`). No figure in those files is typed by hand.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from tools.make_models.build import build_recipe, existing_summary, log_line, run_cli
from tools.make_models.docs import fmt, with_ci
from tools.make_models.recipes import (
    BASELINES,
    BENCH,
    BENCH_RESULTS,
    CROSS,
    REPO_ROOT,
    SHIPPED,
    THIS_COMMAND,
    CrossEval,
    model_dir,
    relative,
)


def cross_evaluate(
    cell: CrossEval, *, root: Path = REPO_ROOT, n_bootstrap: int = 1000
) -> dict[str, Any]:
    """Evaluate one cell with ``python -m medviz evaluate`` (or its in-process equivalent).

    ``medviz evaluate`` matches classes by name; when a dataset names them
    differently (the INFN folders are ``0``/``1``) the same code path runs
    in-process with the data's class names mapped as ``cell.class_map`` says.
    The recorded command names the model folder relative to ``root``; the run
    itself is given the full path, so it does not depend on the working folder.
    """
    folder = model_dir(cell.model, root=root)
    options = ["--data", cell.data, "--split", cell.split, "--bootstrap", str(n_bootstrap)]
    argv = ["evaluate", "--model", relative(folder, root=root), *options]
    if not cell.class_map:
        payload = run_cli(["evaluate", "--model", str(folder), *options])
        command = "python -m medviz " + shlex.join([*argv, "--json"])
    else:
        # What cmd_evaluate does, once the data's class names are mapped to the model's.
        from medviz.data import load_dataset
        from medviz.metrics import match_classes
        from medviz.pipeline import evaluate_split
        from medviz.store import load_bundle

        bundle = load_bundle(folder)
        card = bundle.card
        data = load_dataset(cell.data, image_size=card.image_size, channels=card.channels)
        mapping = dict(cell.class_map)
        data = replace(data, class_names=tuple(mapping.get(c, c) for c in data.class_names))
        index = match_classes(card.class_names, data.class_names)
        data = replace(data, labels=index[data.labels], class_names=tuple(card.class_names))
        ev = evaluate_split(bundle, data, cell.split, n_bootstrap=n_bootstrap)
        payload = {"model": relative(folder, root=root), "data": data.name, "split": cell.split}
        payload.update(ev.to_dict())
        command = (
            "in-process medviz evaluate with class map "
            + ", ".join(f"{a}→{b}" for a, b in cell.class_map)
            + f" (python -m medviz {shlex.join(argv)} refuses the differing class names)"
        )
    return {
        "model": cell.model,
        "data": cell.data,
        "split": cell.split,
        "note": cell.note,
        "command": command,
        "result": {
            k: payload.get(k)
            for k in ("n", "accuracy", "balanced_accuracy", "auc", "auc_ci", "ece", "threshold")
        },
    }


def run_bench(
    *,
    only: Sequence[str] = (),
    train: bool = True,
    root: Path = REPO_ROOT,
    n_bootstrap: int = 1000,
    log: Callable[[str], None] = log_line,
) -> dict[str, Any]:
    """Train the bench recipes, evaluate across datasets, write ``bench/results/models.*``.

    Args:
        only: Restrict training to these bench recipes (the others are read
            from ``runs/bench-models/`` when present).
        train: ``False`` re-evaluates what is on disk without training; a bench
            model whose folder is gone keeps its rows of the previous report
            (marked with that report's date), as do its cross-dataset cells.
        root: Output root (model folders and ``bench/results/`` under it).
        n_bootstrap: Bootstrap resamples for the intervals.
        log: Progress sink.
    """
    previous = _previous_report(Path(root) / BENCH_RESULTS) if not train else {}
    models: dict[str, dict[str, Any]] = {}
    carried: set[str] = set()
    for recipe in BENCH:
        folder = model_dir(recipe.name, root=root)
        if train and (not only or recipe.name in only):
            models[recipe.name] = build_recipe(recipe, root=root, n_bootstrap=n_bootstrap, log=log)
        elif (folder / "model.keras").exists():
            models[recipe.name] = existing_summary(recipe.name, root=root)
            models[recipe.name]["latency_ms"] = None
        elif recipe.name in previous.get("models", {}):
            when = previous["models"][recipe.name]["carried_from"]
            log(f"{recipe.name}: not on disk; its rows are carried from {when}")
            models[recipe.name] = previous["models"][recipe.name]
            carried.add(recipe.name)
    for recipe in SHIPPED:
        if (model_dir(recipe.name, root=root) / "model.keras").exists():
            models[recipe.name] = existing_summary(recipe.name, root=root)
    baselines = []
    for data in BASELINES:
        argv = ["baseline", "--data", data, "--threshold", "120", "--split", "test"]
        log(f"baseline: python -m medviz {shlex.join(argv)}")
        payload = run_cli(argv)
        baselines.append(
            {
                "data": data,
                "split": "test",
                "command": "python -m medviz " + shlex.join([*argv, "--json"]),
                "result": {
                    k: payload.get(k)
                    for k in ("n", "accuracy", "balanced_accuracy", "auc", "auc_ci")
                },
            }
        )
    cross = []
    for cell in CROSS:
        key = (cell.model, cell.data, cell.split)
        if cell.model in carried and key in previous.get("cross", {}):
            cross.append(previous["cross"][key])
            continue
        if cell.model not in models:
            log(f"cross: {cell.model} is not built; skipped")
            continue
        log(f"cross: {cell.model} on {cell.data} [{cell.split}]")
        cross.append(cross_evaluate(cell, root=root, n_bootstrap=n_bootstrap))
    from medviz.pipeline import machine_description

    report = {
        "generated_by": f"{THIS_COMMAND} --bench",
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine_description(),
        "models": list(models.values()),
        "baselines": baselines,
        "cross_dataset": cross,
    }
    write_report(report, Path(root) / BENCH_RESULTS)
    return report


def _previous_report(folder: Path) -> dict[str, Any]:
    """``{"date", "models": {name: entry}, "cross": {(model, data, split): cell}}`` of the
    report on disk (empty when there is none), for rows a report-only run carries over."""
    try:
        report = json.loads((folder / "models.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    date = report.get("date", "an earlier run")
    return {
        "date": date,
        "models": {
            m["name"]: {k: v for k, v in m.items() if k != "carried_from"}
            | {"carried_from": m.get("carried_from", date)}
            for m in report.get("models", [])
        },
        "cross": {
            (c["model"], c["data"], c["split"]): {k: v for k, v in c.items() if k != "carried_from"}
            | {"carried_from": c.get("carried_from", date)}
            for c in report.get("cross_dataset", [])
        },
    }


def write_report(report: dict[str, Any], folder: Path = REPO_ROOT / BENCH_RESULTS) -> None:
    """Write ``models.json`` and the Markdown rendered from it."""
    from medviz.store import atomic_write_json, atomic_write_text

    atomic_write_json(folder / "models.json", report)
    atomic_write_text(folder / "models.md", render_report(report))


def render_report(report: dict[str, Any]) -> str:
    """``bench/results/models.md`` from the JSON report (every figure comes from it)."""
    lines = [
        "# Models: shipped, bench-only and cross-dataset",
        "",
        f"Generated by `{report['generated_by']}` on {report['date']} "
        f"({report['machine']}) from `models.json`; do not edit by hand.",
        "Intervals are stratified bootstrap 95 % percentile intervals. Val and test splits are "
        "held out of training: in-distribution, carved from the source's training data with "
        "patients and near-duplicates kept within one split (rows marked † predate that rule "
        "and were grouped by file digest); the official test splits are withheld from this "
        "machine.",
        "",
        "## Models",
        "",
        "| model | shipped | data | input | arch | params | split | n | accuracy [95 % CI] "
        "| AUC [95 % CI] | ECE | train s | MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m in report["models"]:
        for split, v in m["metrics"].items():
            name = f"{m['name']} †" if m.get("carried_from") else m["name"]
            lines.append(
                f"| {name} | {'yes' if m['shipped'] else 'no'} | {m['data']} | {m['input']} "
                f"| {m['arch']} | {m['params']:,} | {split} | {v['n']} "
                f"| {with_ci(v['accuracy'], v.get('accuracy_ci'))} "
                f"| {with_ci(v['auc'], v.get('auc_ci'))} | {fmt(v['ece'])} "
                f"| {fmt(m['seconds'], 0)} | {m['size_bytes'] / 1e6:.2f} |"
            )
    published = [m for m in report["models"] if m.get("published")]
    if published:
        lines += ["", "## Published reference figures (cited, not measured here)", ""]
        for m in published:
            pub = dict(m["published"])
            source = pub.pop("source", "")
            parts = "; ".join(
                f"{name}: " + ", ".join(f"{k} {v}" for k, v in vals.items())
                for name, vals in pub.items()
            )
            lines.append(f"- **{m['name']}** ({source}): {parts}")
    if report["baselines"]:
        lines += [
            "",
            "## Pixel-threshold baseline (grey level 120), same split as the CNNs",
            "",
            "| data | split | n | accuracy | AUC [95 % CI] | command |",
            "|---|---|---|---|---|---|",
        ]
        for b in report["baselines"]:
            r = b["result"]
            lines.append(
                f"| {b['data']} | {b['split']} | {r['n']} | {fmt(r['accuracy'])} "
                f"| {with_ci(r['auc'], r.get('auc_ci'))} | `{b['command']}` |"
            )
    if report["cross_dataset"]:
        lines += [
            "",
            "## Cross-dataset",
            "",
            "| model | evaluated on | split | n | accuracy | AUC [95 % CI] | ECE | note |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for c in report["cross_dataset"]:
            r = c["result"]
            model = f"{c['model']} †" if c.get("carried_from") else c["model"]
            lines.append(
                f"| {model} | {c['data']} | {c['split']} | {r['n']} | {fmt(r['accuracy'])} "
                f"| {with_ci(r['auc'], r.get('auc_ci'))} | {fmt(r['ece'])} | {c['note']} |"
            )
        lines += ["", "Commands:", ""]
        lines += [f"- `{c['command']}`" for c in report["cross_dataset"]]
    carried = sorted(
        {m["carried_from"] for m in report["models"] if m.get("carried_from")}
        | {c["carried_from"] for c in report["cross_dataset"] if c.get("carried_from")}
    )
    if carried:
        lines += [
            "",
            f"† Carried over from the run of {', '.join(carried)}: the model was not on disk "
            "for this report (`--report-only`); `--bench` retrains it.",
        ]
    lines.append("")
    return "\n".join(lines)
