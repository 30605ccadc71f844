"""Dataset health report: counts, duplicates, leakage and shortcut cues.

The report looks only at labels, splits and the per-file
:class:`~medviz.data.dataset.Provenance` (original size, mode and content
digest), never at pixels, so it is fast even for thousands of images.

The *shortcut* check asks whether a small decision tree can predict the
class from the original width, height, aspect ratio and mode alone. If it
can (cross-validated balanced accuracy clearly above chance), a CNN can too —
for example by learning that one hospital's scanner writes 512×512 RGB
files — and a good test score may say nothing about the pathology.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from medviz.data.dataset import SPLITS, Dataset

IMBALANCE_RATIO = 3.0
"""Largest/smallest class count above which the report warns."""

SHORTCUT_MARGIN = 0.15
"""How far above chance the shortcut score must be to warn."""

_MAX_SHORTCUT_SAMPLES = 20_000


class LeakageGroup(NamedTuple):
    """Byte-identical files found in more than one split."""

    sources: tuple[str, ...]
    splits: tuple[str, ...]


class ConflictGroup(NamedTuple):
    """Byte-identical files that carry different class labels."""

    sources: tuple[str, ...]
    classes: tuple[str, ...]


@dataclass(frozen=True)
class ShortcutCheck:
    """Can file size and mode alone predict the class?

    Attributes:
        score: Cross-validated balanced accuracy of a depth-4 decision tree
            on (width, height, aspect ratio, mode).
        chance: Balanced accuracy of guessing, ``1 / number of classes``.
        folds: Number of cross-validation folds used.
        warning: A sentence when ``score > chance + SHORTCUT_MARGIN``, else ``None``.
    """

    score: float
    chance: float
    folds: int
    warning: str | None


@dataclass(frozen=True)
class HealthReport:
    """What is worth knowing about a dataset before training on it.

    Attributes:
        name: The dataset's name.
        n_images: Number of images.
        counts: ``{split: {class: n}}``.
        size_distribution: ``[((width, height), n), …]`` of the original
            files, most common first.
        mode_distribution: ``{mode: n}`` of the original files.
        duplicate_groups: Source names of byte-identical files, groups of ≥ 2.
        leakage_groups: Duplicate groups spanning more than one split.
        cross_class_duplicates: Duplicate groups with more than one label.
        shortcut: The size/mode shortcut check, or ``None`` when it cannot
            run (no provenance, or a class with fewer than 2 images).
        warnings: Human sentences about the problems found.
    """

    name: str
    n_images: int
    counts: dict[str, dict[str, int]]
    size_distribution: list[tuple[tuple[int, int], int]] = field(default_factory=list)
    mode_distribution: dict[str, int] = field(default_factory=dict)
    duplicate_groups: list[tuple[str, ...]] = field(default_factory=list)
    leakage_groups: list[LeakageGroup] = field(default_factory=list)
    cross_class_duplicates: list[ConflictGroup] = field(default_factory=list)
    shortcut: ShortcutCheck | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """The report as plain JSON-ready dicts, lists, strings and numbers."""
        shortcut = self.shortcut
        return {
            "name": self.name,
            "n_images": self.n_images,
            "counts": self.counts,
            "size_distribution": [
                {"size": [int(w), int(h)], "count": int(n)} for (w, h), n in self.size_distribution
            ],
            "mode_distribution": dict(self.mode_distribution),
            "duplicate_groups": [list(g) for g in self.duplicate_groups],
            "leakage_groups": [
                {"sources": list(g.sources), "splits": list(g.splits)} for g in self.leakage_groups
            ],
            "cross_class_duplicates": [
                {"sources": list(g.sources), "classes": list(g.classes)}
                for g in self.cross_class_duplicates
            ],
            "shortcut": None
            if shortcut is None
            else {
                "score": shortcut.score,
                "chance": shortcut.chance,
                "folds": shortcut.folds,
                "warning": shortcut.warning,
            },
            "warnings": list(self.warnings),
        }


def health_report(dataset: Dataset) -> HealthReport:
    """Check a dataset for imbalance, duplicates, leakage and shortcuts.

    Args:
        dataset: Any :class:`Dataset`; without provenance only counts and
            imbalance are reported.

    Returns:
        The :class:`HealthReport`.
    """
    counts = dataset.counts()
    warnings = _balance_warnings(dataset, counts)
    provenance = dataset.provenance
    if provenance is None or len(dataset) == 0:
        warnings += _extras_warnings(dataset.extras)
        return HealthReport(dataset.name, len(dataset), counts, warnings=tuple(warnings))

    sizes = [(int(w), int(h)) for w, h in provenance.original_sizes]
    size_distribution = Counter(sizes).most_common()
    mode_distribution = dict(Counter(provenance.original_modes).most_common())

    members: dict[str, list[int]] = defaultdict(list)
    for i, digest in enumerate(provenance.digests):
        members[digest].append(i)
    groups = sorted(
        (
            sorted(idx, key=lambda i: provenance.sources[i])
            for idx in members.values()
            if len(idx) > 1
        ),
        key=lambda idx: provenance.sources[idx[0]],
    )
    duplicate_groups = [tuple(provenance.sources[i] for i in idx) for idx in groups]
    leakage_groups, conflicts = [], []
    for idx, sources in zip(groups, duplicate_groups, strict=True):
        splits = {str(dataset.splits[i]) for i in idx}
        if len(splits) > 1:
            leakage_groups.append(LeakageGroup(sources, tuple(s for s in SPLITS if s in splits)))
        labels = sorted({int(dataset.labels[i]) for i in idx})
        if len(labels) > 1:
            conflicts.append(ConflictGroup(sources, tuple(dataset.class_names[k] for k in labels)))

    if duplicate_groups:
        redundant = sum(len(g) - 1 for g in duplicate_groups)
        warnings.append(
            f"{len(duplicate_groups)} groups of byte-identical files ({redundant} redundant "
            f"copies), e.g. {' = '.join(duplicate_groups[0][:2])}; duplicates over-weight "
            "those images."
        )
    if leakage_groups:
        first = leakage_groups[0]
        warnings.append(
            f"{len(leakage_groups)} duplicate groups cross splits, e.g. {first.sources[0]} is "
            f"in {' and '.join(first.splits)}: the same image in training and evaluation "
            "inflates the scores."
        )
    if conflicts:
        warnings.append(
            f"{len(conflicts)} byte-identical images carry different labels, e.g. "
            f"{conflicts[0].sources[0]} ({' / '.join(conflicts[0].classes)})."
        )
    shortcut = _shortcut(dataset, sizes, provenance.original_modes)
    if shortcut is not None and shortcut.warning:
        warnings.append(shortcut.warning)
    warnings += _extras_warnings(dataset.extras)
    return HealthReport(
        name=dataset.name,
        n_images=len(dataset),
        counts=counts,
        size_distribution=size_distribution,
        mode_distribution=mode_distribution,
        duplicate_groups=duplicate_groups,
        leakage_groups=leakage_groups,
        cross_class_duplicates=conflicts,
        shortcut=shortcut,
        warnings=tuple(warnings),
    )


def _balance_warnings(dataset: Dataset, counts: dict[str, dict[str, int]]) -> list[str]:
    """Imbalance worse than 1:IMBALANCE_RATIO, and classes missing from a split."""
    warnings = []
    totals = np.bincount(dataset.labels, minlength=dataset.n_classes)
    absent = [dataset.class_names[i] for i in np.flatnonzero(totals == 0)]
    if absent:
        warnings.append(f"classes without any image: {absent}.")
    present = totals[totals > 0]
    if len(present) >= 2 and present.max() > IMBALANCE_RATIO * present.min():
        big, small = int(np.argmax(totals)), int(np.argmin(np.where(totals > 0, totals, np.inf)))
        warnings.append(
            f"classes are imbalanced {totals[big] / totals[small]:.1f}:1 "
            f"({dataset.class_names[big]} {totals[big]} vs {dataset.class_names[small]} "
            f"{totals[small]}); use class weights or undersampling, and judge the model by "
            "balanced accuracy."
        )
    for split, table in counts.items():
        empty = [c for c, n in table.items() if n == 0 and c not in absent]
        if empty:
            warnings.append(f"the {split} split has no images of {empty}.")
    return warnings


def _extras_warnings(extras: dict[str, object]) -> list[str]:
    """Sentences about files a loader skipped or could not read (``(path, reason)`` pairs)."""
    warnings = []
    errors: list[tuple[str, str]] = list(extras.get("errors") or [])  # type: ignore[call-overload]
    skipped: list[tuple[str, str]] = list(extras.get("skipped") or [])  # type: ignore[call-overload]
    if errors:
        path, reason = errors[0]
        warnings.append(
            f"{len(errors)} files could not be read and were left out, e.g. {path}: {reason}."
        )
    if skipped:
        path, reason = skipped[0]
        warnings.append(f"{len(skipped)} items were skipped, e.g. {path} ({reason}).")
    return warnings


def _shortcut(
    dataset: Dataset, sizes: list[tuple[int, int]], modes: tuple[str, ...]
) -> ShortcutCheck | None:
    """Cross-validated balanced accuracy of class-from-(size, mode) prediction."""
    labels = dataset.labels
    present, per_class = np.unique(labels, return_counts=True)
    if len(present) < 2 or per_class.min() < 2:
        return None
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.tree import DecisionTreeClassifier

    size = np.asarray(sizes, dtype=np.float64)
    mode_codes = {m: i for i, m in enumerate(sorted(set(modes)))}
    features = np.column_stack(
        [
            size[:, 0],
            size[:, 1],
            size[:, 0] / np.maximum(size[:, 1], 1),
            [mode_codes[m] for m in modes],
        ]
    )
    if len(labels) > _MAX_SHORTCUT_SAMPLES:
        keep = np.random.default_rng(0).choice(len(labels), _MAX_SHORTCUT_SAMPLES, replace=False)
        features, labels = features[keep], labels[keep]
        present, per_class = np.unique(labels, return_counts=True)
    folds = int(min(5, per_class.min()))
    if folds < 2:
        return None
    tree = DecisionTreeClassifier(max_depth=4, random_state=0)
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    score = float(
        cross_val_score(tree, features, labels, cv=cv, scoring="balanced_accuracy").mean()
    )
    chance = 1.0 / len(present)
    warning = None
    if score > chance + SHORTCUT_MARGIN:
        warning = (
            f"image size and mode alone predict the class (balanced accuracy {score:.2f}, "
            f"chance {chance:.2f}): a model can learn the source or scanner instead of the "
            "pathology; images are resized to squares, but check heatmaps and an external test set."
        )
    return ShortcutCheck(score=score, chance=chance, folds=folds, warning=warning)
