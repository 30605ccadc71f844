"""Experiments as data: the source works MedViz grew from, as small declarative files.

One YAML (or JSON) file per experiment in ``experiments/`` says what a source work
did and what it reported: the dataset (a registry name) and its split policy, the
architecture and every :class:`~medviz.training.TrainConfig` field, the number of
repeated runs, the metrics to report and the published figures with what they were
measured on. :func:`load_experiment` validates a file into a frozen
:class:`Experiment`; :mod:`medviz.reproduce` runs one and puts the published figures
beside MedViz's mean ± std. ``medviz train --config FILE`` reads the same files (their
``config`` mapping).

The folder is found like the shipped models (:mod:`medviz.locations`):
``$MEDVIZ_EXPERIMENTS_DIR``, else ``<home>/experiments``.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medviz import locations
from medviz.errors import DataError

#: Metrics an experiment may report: the keys of the repeats summary
#: (:func:`medviz.pipeline.summarize_repeats`); the rates exist for binary data only.
REPORTABLE_METRICS: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "auc",
    "ece",
    "false_positive_rate",
    "false_negative_rate",
    "seconds",
)

#: App pages an experiment may link to (keys of :data:`medviz.ui.pages.PAGES`).
LINKABLE_PAGES: tuple[str, ...] = ("data", "augment", "train", "evaluate", "explain", "classify")

_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class PublishedFigure:
    """One figure a source work reported.

    Attributes:
        metric: A name of :data:`REPORTABLE_METRICS` (fractions, not percentages).
        value: The reported value.
        model: What it was measured for (e.g. ``"CNN"``, ``"ResNet50"``).
        measured_on: The data and split it was measured on, in the source's words.
        compare: Whether MedViz's run of this experiment measures the same thing
            (``False`` for another model's figure, shown for context only).
    """

    metric: str
    value: float
    model: str
    measured_on: str
    compare: bool = True


@dataclass(frozen=True)
class Experiment:
    """One source work's experiment, validated.

    Attributes:
        name: Slug, the file's stem (``medviz reproduce NAME``).
        title: Human title.
        summary: What the experiment does, one or two sentences.
        source_work: The work reproduced (repository or paper, and what it trained).
        citation: How to cite it.
        url: Where it lives (``""``: no public address known).
        dataset: Registry name (:data:`medviz.data.DATASETS`).
        channels: Channels the data is loaded with (``None``: the registry's).
        split: The split policy, for people (how train/val/test are made).
        config: The training settings (every ``TrainConfig`` field used).
        repeats: Runs with seeds ``config.seed + i``.
        metrics: What to report, names of :data:`REPORTABLE_METRICS`.
        published: The figures the source reported.
        weights: Which initial weights are used here and what the source used.
        expected_minutes: Wall time of the full run on the 2-core reference machine.
        baseline_threshold: Grey level of the pixel-threshold baseline evaluated
            beside the CNN on the same split (``None``: no baseline).
        cross_datasets: Registry names the best model is also evaluated on.
        cross_dataset_note: What the cross-dataset test shows, or why there is none.
        predict_files: Files (relative to the dataset's folder) the best model
            predicts after training, e.g. a new image the source tried.
        deep_dream: Render a deep dream of the best model's positive class.
        links: App pages that discuss the experiment (e.g. ``("augment",)``).
        notes: Differences from the source and other caveats, for people.
        path: The file it was read from.
    """

    name: str
    title: str
    summary: str
    source_work: str
    citation: str
    url: str
    dataset: str
    channels: int | None
    split: str
    config: Any  # medviz.training.TrainConfig (imported lazily: it imports Keras)
    repeats: int
    metrics: tuple[str, ...]
    published: tuple[PublishedFigure, ...]
    weights: str
    expected_minutes: float
    baseline_threshold: int | None = None
    cross_datasets: tuple[str, ...] = ()
    cross_dataset_note: str = ""
    predict_files: tuple[str, ...] = ()
    deep_dream: bool = False
    links: tuple[str, ...] = ()
    notes: str = ""
    path: Path | None = None

    def figure(self, metric: str) -> PublishedFigure | None:
        """The first comparable published figure of ``metric``, if any."""
        return next((f for f in self.published if f.metric == metric and f.compare), None)

    def data_available(self) -> bool:
        """Whether the dataset can be loaded here without a download."""
        from medviz.data.registry import DATASETS

        spec = DATASETS.get(self.dataset)
        return spec is not None and spec.is_available()


def experiments_dir() -> Path:
    """Folder of the experiment files: ``$MEDVIZ_EXPERIMENTS_DIR``, else ``<home>/experiments``.

    Returns:
        A path; it may not exist.
    """
    env = os.environ.get("MEDVIZ_EXPERIMENTS_DIR", "").strip()
    return Path(env).expanduser() if env else locations.home() / "experiments"


def experiment_files(folder: str | Path | None = None) -> list[Path]:
    """The experiment files in ``folder`` (default :func:`experiments_dir`), sorted by name."""
    root = Path(folder) if folder is not None else experiments_dir()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.suffix in _SUFFIXES and p.is_file())


def list_experiments(folder: str | Path | None = None) -> list[Experiment]:
    """Every experiment of ``folder`` (default :func:`experiments_dir`), sorted by name.

    Raises:
        DataError: A file is invalid (the message names it).
    """
    return [load_experiment(path) for path in experiment_files(folder)]


def load_experiment(name_or_path: str | Path, *, folder: str | Path | None = None) -> Experiment:
    """Read and validate one experiment.

    Args:
        name_or_path: An experiment name (a file stem in the folder) or a file path.
        folder: Where names are looked up (default :func:`experiments_dir`).

    Returns:
        The validated :class:`Experiment`.

    Raises:
        DataError: Unknown name (the message lists the known ones), unreadable
            file, or a field missing, unknown or out of range.
    """
    path = Path(name_or_path)
    if path.suffix not in _SUFFIXES or not path.is_file():
        by_name = {p.stem: p for p in experiment_files(folder)}
        if str(name_or_path) not in by_name:
            where = Path(folder) if folder is not None else experiments_dir()
            raise DataError(
                f"unknown experiment {str(name_or_path)!r}; known in {where}: "
                f"{sorted(by_name) or 'none'}"
            )
        path = by_name[str(name_or_path)]
    from medviz.config_files import read_mapping

    return parse_experiment(read_mapping(path), path=path)


_REQUIRED = (
    "name",
    "title",
    "summary",
    "source",
    "dataset",
    "config",
    "repeats",
    "metrics",
    "published",
    "weights",
    "expected_minutes",
)
_OPTIONAL = (
    "baseline_threshold",
    "cross_datasets",
    "cross_dataset_note",
    "predict_files",
    "deep_dream",
    "links",
    "notes",
)


def parse_experiment(values: dict[str, Any], *, path: Path | None = None) -> Experiment:
    """Validate a mapping (a parsed experiment file) into an :class:`Experiment`.

    Raises:
        DataError: A field is missing, unknown or invalid; the message names the
            file, the field, what it got and what is allowed.
    """
    from medviz.data.registry import DATASETS
    from medviz.errors import MedvizError
    from medviz.training import TrainConfig

    where = str(path) if path is not None else "experiment"

    def fail(message: str) -> DataError:
        return DataError(f"{where}: {message}")

    missing = [key for key in _REQUIRED if key not in values]
    if missing:
        raise fail(f"missing field(s) {missing}; required: {list(_REQUIRED)}")
    unknown = sorted(set(values) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise fail(f"unknown field(s) {unknown}; allowed: {sorted(_REQUIRED + _OPTIONAL)}")
    name = str(values["name"])
    if path is not None and path.stem != name:
        raise fail(f"name {name!r} must equal the file's stem {path.stem!r}")
    source = values["source"]
    if not isinstance(source, dict) or not {"work", "citation"} <= set(source):
        raise fail(f"source must be a mapping with 'work', 'citation' (and 'url'), got {source!r}")
    dataset = values["dataset"]
    if not isinstance(dataset, dict) or "name" not in dataset or "split" not in dataset:
        raise fail(f"dataset must be a mapping with 'name' and 'split', got {dataset!r}")
    if dataset["name"] not in DATASETS:
        raise fail(f"unknown dataset {dataset['name']!r}; registered: {sorted(DATASETS)}")
    channels = dataset.get("channels")
    if channels not in (None, 1, 3):
        raise fail(f"dataset.channels must be 1 or 3, got {channels!r}")
    config_values = values["config"]
    if not isinstance(config_values, dict):
        raise fail(f"config must be a mapping of TrainConfig fields, got {config_values!r}")
    allowed = {f.name for f in dataclasses.fields(TrainConfig)}
    bad = sorted(set(config_values) - allowed)
    if bad:
        raise fail(f"unknown TrainConfig field(s) {bad}; allowed: {sorted(allowed)}")
    try:
        config = TrainConfig.from_dict(config_values)
    except (MedvizError, TypeError) as error:
        raise fail(f"invalid config: {error}") from None
    if config.image_size is None:
        raise fail("config.image_size must be set (experiments state their input size)")
    repeats = values["repeats"]
    if not isinstance(repeats, int) or isinstance(repeats, bool) or repeats < 1:
        raise fail(f"repeats must be a whole number >= 1, got {repeats!r}")
    metrics = tuple(values["metrics"] or ())
    wrong = [m for m in metrics if m not in REPORTABLE_METRICS]
    if not metrics or wrong:
        raise fail(f"metrics {wrong or 'empty'} not reportable; choose from {REPORTABLE_METRICS}")
    published = tuple(_figure(entry, fail) for entry in values["published"] or ())
    expected = values["expected_minutes"]
    if not isinstance(expected, (int, float)) or not math.isfinite(expected) or expected <= 0:
        raise fail(f"expected_minutes must be a positive number, got {expected!r}")
    threshold = values.get("baseline_threshold")
    if threshold is not None and (not isinstance(threshold, int) or not 0 <= threshold <= 255):
        raise fail(f"baseline_threshold must be a grey level 0–255, got {threshold!r}")
    cross = tuple(values.get("cross_datasets") or ())
    unknown_cross = [c for c in cross if c not in DATASETS]
    if unknown_cross:
        raise fail(f"unknown cross_datasets {unknown_cross}; registered: {sorted(DATASETS)}")
    links = tuple(values.get("links") or ())
    bad_links = [link for link in links if link not in LINKABLE_PAGES]
    if bad_links:
        raise fail(f"unknown links {bad_links}; pages: {LINKABLE_PAGES}")
    return Experiment(
        name=name,
        title=str(values["title"]),
        summary=str(values["summary"]).strip(),
        source_work=str(source["work"]),
        citation=str(source["citation"]),
        url=str(source.get("url") or ""),
        dataset=str(dataset["name"]),
        channels=channels,
        split=str(dataset["split"]).strip(),
        config=config,
        repeats=repeats,
        metrics=metrics,
        published=published,
        weights=str(values["weights"]).strip(),
        expected_minutes=float(expected),
        baseline_threshold=threshold,
        cross_datasets=cross,
        cross_dataset_note=str(values.get("cross_dataset_note") or "").strip(),
        predict_files=tuple(str(f) for f in values.get("predict_files") or ()),
        deep_dream=bool(values.get("deep_dream", False)),
        links=links,
        notes=str(values.get("notes") or "").strip(),
        path=path,
    )


def _figure(entry: object, fail) -> PublishedFigure:
    if not isinstance(entry, dict):
        raise fail(f"each published figure must be a mapping, got {entry!r}")
    need = {"metric", "value", "model", "measured_on"}
    if not need <= set(entry) or set(entry) - need - {"compare"}:
        raise fail(
            f"published figure {entry!r} needs exactly {sorted(need)} (and optional 'compare')"
        )
    if entry["metric"] not in REPORTABLE_METRICS:
        raise fail(
            f"published metric {entry['metric']!r} unknown; choose from {REPORTABLE_METRICS}"
        )
    value = entry["value"]
    if not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise fail(f"published {entry['metric']} must be a fraction in [0, 1], got {value!r}")
    return PublishedFigure(
        metric=str(entry["metric"]),
        value=float(value),
        model=str(entry["model"]),
        measured_on=str(entry["measured_on"]),
        compare=bool(entry.get("compare", True)),
    )
