"""Run an experiment of :mod:`medviz.experiments` and put the published figures beside MedViz's.

:func:`run_experiment` loads the experiment's dataset, runs its repeats through
:func:`medviz.pipeline.train_repeats` (the one repeat loop, also behind the app's
background :class:`~medviz.services.jobs.TrainingJob`), then :func:`build_report`
turns the finished runs into a :class:`ReproduceReport`: published value vs MedViz
mean ± std for every metric the experiment reports, one row per run, the best run's
classification report, and the extras the experiment asks for (the pixel-threshold
baseline on the same split, a cross-dataset test, predictions of new images, a deep
dream). :func:`write_report` stores it in ``runs/<name>-<timestamp>/`` as
``report.json`` and ``report.md`` beside the best model's folder (``model/``), which
``medviz evaluate`` and ``medviz explain`` open.

``quick=True`` shrinks everything (a few images per class, one epoch, the smallest
input the architecture takes, no bootstrap): the test suite runs every experiment
that way, to prove the file runs, not to measure anything.

Why one module (over 600 lines): the run, the comparison it produces and the two ways it
is written out (JSON and Markdown) share the :class:`ReproduceReport` fields and the
metric formatting; split apart, a field added in one place would be missing in another.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medviz.errors import DataError
from medviz.experiments import Experiment

QUICK_LIMIT_ENV = "MEDVIZ_REPRODUCE_QUICK_LIMIT"
"""Images per class and split in quick mode (default 12)."""
QUICK_SIZE_ENV = "MEDVIZ_REPRODUCE_QUICK_SIZE"
"""Input side in quick mode (default 32, raised to the architecture's minimum)."""

_PERCENT_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "val_accuracy",
    "false_positive_rate",
    "false_negative_rate",
)


@dataclass(frozen=True)
class ComparisonRow:
    """One metric: the published figure beside MedViz's mean ± std.

    Attributes:
        metric: Summary metric name.
        mean: MedViz's mean over the runs (``nan``: undefined, e.g. AUC of a
            split missing a class).
        std: Sample standard deviation over the runs (0 for one run).
        runs: Runs the mean is over.
        published: The source's figure (``None``: it reported none).
        published_model: What the published figure was measured for.
        measured_on: What the published figure was measured on.
    """

    metric: str
    mean: float
    std: float
    runs: int
    published: float | None = None
    published_model: str = ""
    measured_on: str = ""

    @property
    def difference(self) -> float | None:
        """MedViz's mean minus the published value (``None`` without one)."""
        if self.published is None or not math.isfinite(self.mean):
            return None
        return self.mean - self.published


@dataclass(frozen=True)
class ReproduceReport:
    """What one reproduction produced (JSON-ready through :meth:`to_dict`).

    Attributes:
        experiment: The experiment's name.
        title: Its title.
        dataset: Registry name of the data.
        split: Split the metrics are on (``"test"`` when the data has one).
        quick: Whether this was a quick (smoke) run: its numbers mean nothing.
        config: The training config used (after quick-mode shrinking).
        rows: Published vs MedViz per reported metric.
        context: Published figures of other models, for context only.
        per_run: One mapping per run (seed, epochs, seconds and its metrics).
        classification_report: The kept run's per-class report and averages.
        baseline: The pixel-threshold baseline on the same split (or ``None``).
        cross: Cross-dataset evaluations of the kept run.
        cross_note: What the cross-dataset test shows or why there is none.
        predictions: The kept run's answers for the experiment's new images.
        notes: Caveats found while running (missing data, undefined metrics…).
        weights: Which initial weights were used.
        seconds: Wall time of the whole reproduction.
        counts: Images per split and class.
        machine: Where it ran.
        folder: Where it was written (``None`` until :func:`write_report`).
        extras: Paths of further files (e.g. the deep dream PNG), relative to ``folder``.
    """

    experiment: str
    title: str
    dataset: str
    split: str
    quick: bool
    config: dict[str, Any]
    rows: tuple[ComparisonRow, ...]
    context: tuple[dict[str, Any], ...]
    per_run: tuple[dict[str, Any], ...]
    classification_report: dict[str, Any]
    baseline: dict[str, Any] | None
    cross: tuple[dict[str, Any], ...]
    cross_note: str
    predictions: tuple[dict[str, Any], ...]
    notes: tuple[str, ...]
    weights: str
    seconds: float
    counts: dict[str, Any]
    machine: str
    folder: str | None = None
    extras: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become ``None``)."""
        from medviz.cli_support import to_jsonable

        out = {
            key: getattr(self, key)
            for key in (
                "experiment",
                "title",
                "dataset",
                "split",
                "quick",
                "config",
                "classification_report",
                "baseline",
                "cross_note",
                "weights",
                "seconds",
                "counts",
                "machine",
                "folder",
                "extras",
            )
        }
        out["rows"] = [
            {
                "metric": r.metric,
                "medviz_mean": r.mean,
                "medviz_std": r.std,
                "runs": r.runs,
                "published": r.published,
                "published_model": r.published_model,
                "measured_on": r.measured_on,
                "difference": r.difference,
            }
            for r in self.rows
        ]
        out["context"] = list(self.context)
        out["per_run"] = list(self.per_run)
        out["cross"] = list(self.cross)
        out["predictions"] = list(self.predictions)
        out["notes"] = list(self.notes)
        return to_jsonable(out)


@dataclass(frozen=True)
class Reproduction:
    """What :func:`run_experiment` returns.

    Attributes:
        report: The comparison (not yet written; see :func:`write_report`).
        best: The kept :class:`~medviz.pipeline.PackagedRun` (best on validation).
        data: The dataset the runs trained on.
    """

    report: ReproduceReport
    best: Any
    data: Any


def format_value(metric: str, value: float | None) -> str:
    """``"93.8 %"`` for rates and accuracies, ``"0.981"`` for AUC/ECE, ``"12 s"`` for seconds."""
    if value is None or not math.isfinite(value):
        return "–"
    if metric in _PERCENT_METRICS:
        return f"{100 * value:.1f} %"
    if metric == "seconds":
        return f"{value:.0f} s"
    return f"{value:.3f}"


def format_mean_std(metric: str, mean: float, std: float) -> str:
    """Mean ± std in the metric's unit (``"93.1 ± 1.2 %"``)."""
    if not math.isfinite(mean):
        return "–"
    if metric in _PERCENT_METRICS:
        return f"{100 * mean:.1f} ± {100 * std:.1f} %"
    if metric == "seconds":
        return f"{mean:.0f} ± {std:.0f} s"
    return f"{mean:.3f} ± {std:.3f}"


def quick_config(experiment: Experiment):
    """The experiment's config shrunk for a smoke run.

    One epoch, the smallest input (``$MEDVIZ_REPRODUCE_QUICK_SIZE``, default 32, raised to the
    architecture's minimum), batches of at most 8, no XLA, no early stopping; transfer
    backbones frozen and randomly initialised (never a download).
    """
    from medviz.zoo import get_arch

    size = int(os.environ.get(QUICK_SIZE_ENV, "32"))
    config = experiment.config
    options = dict(config.arch_options)
    if get_arch(config.arch).transfer:
        # A frozen backbone: tracing the gradient through a whole ImageNet backbone costs
        # minutes on two cores, and the smoke run only has to prove the file runs.
        options.update(pretrained=False, mode="feature-extractor")
    return replace(
        config,
        arch_options=options,
        image_size=max(size, get_arch(config.arch).min_size),
        epochs=1,
        batch_size=min(config.batch_size, 8),
        early_stopping_patience=None,
        reduce_lr_patience=None if config.lr_schedule == "cosine" else config.reduce_lr_patience,
        jit_compile=False,
    )


def load_experiment_data(
    experiment: Experiment, *, image_size: int, limit_per_class: int | None = None
):
    """The experiment's dataset at ``image_size`` (seeded by its config's seed).

    Raises:
        DataError: The data is not present here (the message says where it is looked for).
    """
    from medviz.data import load_dataset

    return load_dataset(
        experiment.dataset,
        image_size=image_size,
        channels=experiment.channels,
        seed=experiment.config.seed,
        limit_per_class=limit_per_class,
    )


def run_experiment(
    experiment: Experiment,
    *,
    repeats: int | None = None,
    quick: bool = False,
    on_run_end: Callable[[int, Any], None] | None = None,
    on_epoch_end: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    log: Callable[[str], None] | None = None,
) -> Reproduction:
    """Train the experiment's repeats and compare them with the published figures.

    Args:
        experiment: What to run.
        repeats: Overrides the experiment's repeats.
        quick: Smoke run (see the module docstring); its numbers mean nothing.
        on_run_end: Called with ``(index, run)`` after each run.
        on_epoch_end: Passed to the trainer for every run.
        should_stop: Polled by the trainer; once ``True`` no further run starts.
        log: Progress sink (one line per step).

    Returns:
        The :class:`Reproduction`: report (not yet written), kept run and data.

    Raises:
        DataError: The data is missing or repeats < 1.
    """
    from medviz.pipeline import train_repeats

    started = time.perf_counter()
    say = log or (lambda _line: None)
    config = quick_config(experiment) if quick else experiment.config
    count = repeats if repeats is not None else (1 if quick else experiment.repeats)
    if count < 1:
        raise DataError(f"repeats must be at least 1, got {count}")
    limit = int(os.environ.get(QUICK_LIMIT_ENV, "12")) if quick else None
    say(f"{experiment.name}: loading {experiment.dataset} at {config.image_size} px")
    data = load_experiment_data(experiment, image_size=config.image_size, limit_per_class=limit)
    say(f"{experiment.name}: {data.counts()}; {count} run(s) of {config.arch}")
    from medviz.data.registry import get_spec

    repeated = train_repeats(
        config,
        data,
        repeats=count,
        name=experiment.name,
        title=experiment.title,
        modality=get_spec(experiment.dataset).modality,
        command=f"medviz reproduce {experiment.name}" + (" --quick" if quick else ""),
        on_run_end=on_run_end,
        on_epoch_end=on_epoch_end,
        should_stop=should_stop,
        n_bootstrap=0 if quick else 200,
        stress_images=0,
    )
    report = build_report(
        experiment,
        repeated.runs,
        data,
        quick=quick,
        log=say,
        seconds=time.perf_counter() - started,
    )
    return Reproduction(report=report, best=repeated.best, data=data)


def build_report(
    experiment: Experiment,
    runs: Sequence[Any],
    data,
    *,
    quick: bool = False,
    log: Callable[[str], None] | None = None,
    seconds: float = math.nan,
) -> ReproduceReport:
    """Compare finished runs of ``experiment`` with its published figures.

    The app's Experiments page calls this on the runs of its background job, the
    CLI on those of :func:`run_experiment`.

    Args:
        experiment: The experiment the runs belong to.
        runs: Finished :class:`~medviz.pipeline.PackagedRun` s (at least one).
        data: The dataset they were trained on (for the baseline and counts).
        quick: Mark the report as a smoke run.
        log: Progress sink.
        seconds: Wall time to record (default: the runs' training time).

    Raises:
        DataError: ``runs`` is empty.
    """
    from medviz.pipeline import machine_description, select_run, summarize_repeats

    say = log or (lambda _line: None)
    summary, split = summarize_repeats(runs)
    best = select_run(runs)
    notes: list[str] = []
    rows = []
    for metric in experiment.metrics:
        mean, std = summary.get(metric, (math.nan, math.nan))
        figure = experiment.figure(metric)
        if metric not in summary:
            notes.append(f"{metric} is not defined for this data (binary-only rates?)")
        elif not math.isfinite(mean):
            notes.append(f"{metric} is undefined on {split} (a class is missing there)")
        rows.append(
            ComparisonRow(
                metric=metric,
                mean=float(mean),
                std=float(std),
                runs=len(runs),
                published=figure.value if figure else None,
                published_model=figure.model if figure else "",
                measured_on=figure.measured_on if figure else "",
            )
        )
    context = tuple(
        {"metric": f.metric, "value": f.value, "model": f.model, "measured_on": f.measured_on}
        for f in experiment.published
        if not f.compare
    )
    per_run = []
    for i, run in enumerate(runs):
        ev = run.evaluations[split]
        row = {
            "run": i + 1,
            "seed": run.result.config.seed,
            "epochs": run.result.epochs_run,
            "best_epoch": run.result.best_epoch + 1,
            "seconds": round(run.result.seconds, 1),
            "val_accuracy": float(run.evaluations["val"].accuracy),
            "accuracy": float(ev.accuracy),
            "balanced_accuracy": float(ev.balanced_accuracy),
            "auc": float(ev.auc),
        }
        if ev.is_binary:
            row["false_positive_rate"] = float(ev.per_class[1].fpr)
            row["false_negative_rate"] = float(ev.per_class[1].fnr)
        per_run.append(row)
    best_ev = best.evaluations[split]
    report = {
        "split": split,
        "per_class": [m.to_dict() for m in best_ev.per_class],
        "averages": best_ev.averages(),
        "accuracy": float(best_ev.accuracy),
        "confusion_matrix": best_ev.confusion.astype(int).tolist(),
        "classes": list(best_ev.class_names),
        "run": runs.index(best) + 1 if best in runs else None,
    }
    baseline = None
    if experiment.baseline_threshold is not None:
        from medviz.baseline import evaluate_baseline

        say(f"{experiment.name}: pixel-threshold baseline ({experiment.baseline_threshold})")
        bev = evaluate_baseline(
            data, split=split, threshold=experiment.baseline_threshold, n_bootstrap=0
        )
        baseline = {
            "threshold": experiment.baseline_threshold,
            "split": split,
            "accuracy": float(bev.accuracy),
            "balanced_accuracy": float(bev.balanced_accuracy),
            "auc": float(bev.auc),
            "averages": bev.averages(),
        }
        figure = next((f for f in experiment.published if "baseline" in f.model.lower()), None)
        if figure is not None:
            baseline["published"] = figure.value
            baseline["published_metric"] = figure.metric
    cross = tuple(_cross_evaluations(experiment, best, quick=quick, notes=notes, log=say))
    cross_note = experiment.cross_dataset_note
    predictions = tuple(_predictions(experiment, best, notes=notes))
    return ReproduceReport(
        experiment=experiment.name,
        title=experiment.title,
        dataset=experiment.dataset,
        split=split,
        quick=quick,
        config=best.result.config.to_dict(),
        rows=tuple(rows),
        context=context,
        per_run=tuple(per_run),
        classification_report=report,
        baseline=baseline,
        cross=cross,
        cross_note=cross_note,
        predictions=predictions,
        notes=tuple(notes),
        weights=experiment.weights,
        seconds=float(seconds if math.isfinite(seconds) else sum(r.result.seconds for r in runs)),
        counts=data.counts(),
        machine=machine_description(),
    )


def _cross_evaluations(experiment: Experiment, best, *, quick: bool, notes: list, log):
    from medviz.data import load_dataset
    from medviz.metrics import evaluate

    card = best.bundle.card
    for name in experiment.cross_datasets:
        try:
            other = load_dataset(
                name,
                image_size=card.image_size,
                channels=card.channels,
                seed=experiment.config.seed,
                limit_per_class=int(os.environ.get(QUICK_LIMIT_ENV, "12")) if quick else None,
            )
        except DataError as error:
            notes.append(f"cross-dataset {name} skipped: {error}")
            continue
        if len(other.class_names) != card.n_classes:
            notes.append(f"cross-dataset {name} skipped: {len(other.class_names)} classes")
            continue
        split = "test" if "test" in other.available_splits else "all"
        log(f"{experiment.name}: cross-dataset test on {name} [{split}]")
        part = other.split(split)
        probs = best.bundle.predict_proba(part.images)
        ev = evaluate(
            part.labels,
            probs,
            class_names=other.class_names,
            threshold=card.threshold if probs.shape[1] == 2 else None,
            n_bootstrap=0,
        )
        yield {
            "dataset": name,
            "split": split,
            "n": int(ev.n),
            "accuracy": float(ev.accuracy),
            "auc": float(ev.auc),
        }


def _predictions(experiment: Experiment, best, *, notes: list):
    from medviz.data import decode_image, to_model_input
    from medviz.data.registry import get_spec

    if not experiment.predict_files:
        return
    folder = get_spec(experiment.dataset).path()
    card = best.bundle.card
    for relative in experiment.predict_files:
        path = (folder / relative) if folder is not None else Path(relative)
        if not path.is_file():
            notes.append(f"new image {relative} not found under {folder}")
            continue
        decoded = decode_image(path)
        x = to_model_input(decoded.pixels, image_size=card.image_size, channels=card.channels)
        probs = best.bundle.predict_proba(x[None])
        predicted = int(best.bundle.decide(probs)[0])
        yield {
            "file": relative,
            "predicted": card.class_names[predicted],
            "probabilities": {
                name: float(p) for name, p in zip(card.class_names, probs[0], strict=True)
            },
        }


def write_report(
    report: ReproduceReport,
    best,
    experiment: Experiment,
    *,
    runs_root: str | Path = "runs",
    data=None,
) -> ReproduceReport:
    """Write ``report.json``, ``report.md``, the kept model (``model/``) and extras.

    Args:
        report: From :func:`run_experiment` or :func:`build_report`.
        best: The kept run (its model is saved as ``model/``).
        experiment: The experiment (for the deep dream and the Markdown header).
        runs_root: Parent folder; the run goes to ``<runs_root>/<name>-<UTC timestamp>/``.
        data: The dataset (the deep dream starts from one of its images).

    Returns:
        The report with :attr:`~ReproduceReport.folder` and extras filled in.
    """
    from medviz.store import atomic_write_json, atomic_write_text, save_bundle

    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    folder = Path(runs_root) / f"{experiment.name}-{stamp}"
    suffix = 1
    while folder.exists():
        suffix += 1
        folder = Path(runs_root) / f"{experiment.name}-{stamp}-{suffix}"
    folder.mkdir(parents=True)
    save_bundle(best.bundle.model, best.bundle.card, folder / "model")
    extras = dict(report.extras)
    if experiment.deep_dream and data is not None:
        extras["deep_dream"] = _deep_dream_png(best, data, folder, quick=report.quick)
    report = replace(report, folder=str(folder), extras=extras)
    atomic_write_json(folder / "report.json", report.to_dict())
    atomic_write_text(folder / "report.md", report_markdown(report, experiment))
    return report


def _deep_dream_png(best, data, folder: Path, *, quick: bool) -> str:
    from PIL import Image

    from medviz.explain.deep_dream import deep_dream

    card = best.bundle.card
    part = data.split("test" if "test" in data.available_splits else "val")
    positive = np.flatnonzero(part.labels == card.n_classes - 1)
    start = part.images[positive[0] if len(positive) else 0]
    dream = deep_dream(
        best.bundle.model,
        start,
        class_index=card.n_classes - 1,
        octaves=1 if quick else 3,
        steps_per_octave=2 if quick else None,
    )
    image = np.asarray(dream.image)
    image = image[..., 0] if image.shape[-1] == 1 else image
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(folder / "deep_dream.png")
    return "deep_dream.png"


def comparison_markdown(report: ReproduceReport) -> str:
    """The published-vs-MedViz table (Markdown), with the baseline row when there is one."""
    lines = [
        f"| metric ({report.split}) | published | measured on | MedViz mean ± std | runs |",
        "|---|---|---|---|---|",
    ]
    for row in report.rows:
        published = format_value(row.metric, row.published)
        if row.published_model:
            published += f" ({row.published_model})"
        lines.append(
            f"| {row.metric} | {published} | {row.measured_on or '–'} | "
            f"{format_mean_std(row.metric, row.mean, row.std)} | {row.runs} |"
        )
    if report.baseline is not None:
        b = report.baseline
        published = b.get("published")
        lines.append(
            f"| accuracy, pixel-threshold baseline ({b['threshold']}) | "
            f"{format_value('accuracy', published)} | same data | "
            f"{format_value('accuracy', b['accuracy'])} (deterministic) | 1 |"
        )
    return "\n".join(lines)


def report_markdown(report: ReproduceReport, experiment: Experiment) -> str:
    """The whole report as Markdown: header, comparison, per-run rows, extras, notes."""
    out = [f"## {report.title} (`{report.experiment}`)", ""]
    if report.quick:
        out += ["**Quick (smoke) run: tiny images, one epoch. These numbers mean nothing.**", ""]
    cfg = report.config
    out += [
        f"Source: {experiment.source_work}. {experiment.citation}"
        + (f" <{experiment.url}>" if experiment.url else ""),
        "",
        f"Data: `{report.dataset}` — {experiment.split} Counts: {report.counts}.",
        "",
        f"Model: `{cfg['arch']}` at {cfg['image_size']} px, {cfg['epochs']} epochs max "
        f"(early stopping patience {cfg['early_stopping_patience']}), batch "
        f"{cfg['batch_size']}, lr {cfg['learning_rate']}, imbalance {cfg['imbalance']}. "
        f"Weights: {report.weights}",
        "",
        comparison_markdown(report),
        "",
    ]
    if report.context:
        out.append(
            "Other published figures (context, not this model): "
            + "; ".join(
                f"{c['model']} {format_value(c['metric'], c['value'])} {c['metric']} "
                f"({c['measured_on']})"
                for c in report.context
            )
        )
        out.append("")
    keys = [k for k in report.per_run[0] if k != "run"] if report.per_run else []
    if keys:
        out += ["| run | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        for row in report.per_run:
            cells = [
                format_value(k, row[k]) if k in (*_PERCENT_METRICS, "auc") else str(row[k])
                for k in keys
            ]
            out.append(f"| {row['run']} | " + " | ".join(cells) + " |")
        out.append("")
    cr = report.classification_report
    if cr:
        out.append(f"Classification report of the kept run (run {cr.get('run')}, best on val):")
        out.append("")
        out += ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
        for m in cr["per_class"]:
            out.append(
                f"| {m['name']} | {_num(m['precision'])} | {_num(m['recall'])} | "
                f"{_num(m['f1'])} | {m['support']} |"
            )
        for kind, values in cr["averages"].items():
            out.append(
                f"| {kind} avg | {_num(values['precision'])} | {_num(values['recall'])} | "
                f"{_num(values['f1'])} | |"
            )
        out.append("")
    if report.cross:
        for c in report.cross:
            out.append(
                f"Cross-dataset: {c['dataset']} [{c['split']}, n={c['n']}]: accuracy "
                f"{format_value('accuracy', c['accuracy'])}, AUC {format_value('auc', c['auc'])}."
            )
        out.append("")
    if report.cross_note:
        out += [f"Cross-dataset test: {report.cross_note}", ""]
    for p in report.predictions:
        probs = ", ".join(f"{k} {v:.3f}" for k, v in p["probabilities"].items())
        out.append(f"New image `{p['file']}`: predicted **{p['predicted']}** ({probs}).")
    if report.predictions:
        out.append("")
    if "deep_dream" in report.extras:
        out += [f"Deep dream of the positive class: `{report.extras['deep_dream']}`.", ""]
    for note in (*report.notes, *([experiment.notes] if experiment.notes else [])):
        out.append(f"- {note}")
    out += [
        "",
        f"Wall time {report.seconds / 60:.1f} min on {report.machine}; run folder "
        f"`{report.folder}`.",
        "",
    ]
    return "\n".join(out)


def _num(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.3f}"
