"""Dataset health report: counts, duplicates, leakage and shortcut cues.

The report looks only at labels, splits and the per-file
:class:`~medviz.data.dataset.Provenance` (original size, mode, content
digest and the split groups the loader found), never at pixels, so it is
fast even for thousands of images. :func:`cross_dataset_report` does look at
pixels: it finds the images two datasets share.

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
from medviz.data.groups import cross_matches
from medviz.data.streaming import StreamedDataset

IMBALANCE_RATIO = 3.0
"""Largest/smallest class count above which the report warns."""

SHORTCUT_MARGIN = 0.15
"""How far above chance the shortcut score must be to warn."""

_MAX_SHORTCUT_SAMPLES = 20_000


class LeakageGroup(NamedTuple):
    """Byte-identical files found in more than one split."""

    sources: tuple[str, ...]
    splits: tuple[str, ...]


class GroupCrossing(NamedTuple):
    """A group (one patient, or a near-duplicate cluster) with images in several splits."""

    key: str
    sources: tuple[str, ...]
    splits: tuple[str, ...]
    how: str  # "patient" (from the file names) or "near-duplicate"


class NearDuplicatePair(NamedTuple):
    """Two images found to be copies of each other (resized, re-encoded, lightly cropped)."""

    index_a: int  # position in the dataset
    index_b: int
    source_a: str
    source_b: str
    split_a: str
    split_b: str
    class_a: str
    class_b: str
    exact: bool  # byte-identical files


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
        groups: Summary of the split groups (``n_groups``, ``n_multi``
            groups of ≥ 2 images, ``n_in_multi``, ``largest``, ``n_patient``
            groups read from file names), or ``None`` without groups.
        group_crossings: Groups (patients or near-duplicate clusters) whose
            images sit in more than one split; none after MedViz assigns the
            splits, but splits a source gives can cross.
        near_duplicates: Pairs of images that are copies of each other (pHash/
            dHash candidates confirmed by correlation, see
            :mod:`medviz.data.groups`; byte-identical pairs marked ``exact``),
            or ``None`` when the loader did not look for them.
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
    groups: dict[str, int] | None = None
    group_crossings: list[GroupCrossing] = field(default_factory=list)
    near_duplicates: list[NearDuplicatePair] | None = None

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
            "groups": self.groups,
            "group_crossings": [
                {"key": g.key, "sources": list(g.sources), "splits": list(g.splits), "how": g.how}
                for g in self.group_crossings
            ],
            "near_duplicates": None
            if self.near_duplicates is None
            else [pair._asdict() for pair in self.near_duplicates],
        }


def health_report(dataset: Dataset | StreamedDataset) -> HealthReport:
    """Check a dataset for imbalance, duplicates, leakage and shortcuts.

    Args:
        dataset: Any :class:`Dataset`, or a
            :class:`~medviz.data.streaming.StreamedDataset` (whose one
            indexing pass gathered the provenance: nothing is read again);
            without provenance only counts and imbalance are reported.

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
    groups, crossings = _group_check(dataset)
    near = _near_duplicates(dataset)
    if crossings:
        first = crossings[0]
        warnings.append(
            f"{len(crossings)} groups of images that belong together (one patient, or "
            f"near-copies of one image) cross splits, e.g. {first.key!r} ({first.how}, "
            f"{len(first.sources)} images) is in {' and '.join(first.splits)}: "
            "validation and test then flatter the model; let MedViz assign the splits."
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
        groups=groups,
        group_crossings=crossings,
        near_duplicates=near,
    )


def _near_duplicates(dataset: Dataset) -> list[NearDuplicatePair] | None:
    """The copies the loader's grouping found, one row per pair, sorted by source."""
    provenance = dataset.provenance
    if provenance is None or provenance.near_pairs is None:
        return None
    rows = set()
    for i, j in np.asarray(provenance.near_pairs).reshape(-1, 2).tolist():
        a, b = sorted((int(i), int(j)), key=lambda k: provenance.sources[k])
        if a != b:
            rows.add((a, b))
    return [
        NearDuplicatePair(
            index_a=a,
            index_b=b,
            source_a=provenance.sources[a],
            source_b=provenance.sources[b],
            split_a=str(dataset.splits[a]),
            split_b=str(dataset.splits[b]),
            class_a=dataset.class_names[int(dataset.labels[a])],
            class_b=dataset.class_names[int(dataset.labels[b])],
            exact=provenance.digests[a] == provenance.digests[b],
        )
        for a, b in sorted(rows, key=lambda r: (provenance.sources[r[0]], provenance.sources[r[1]]))
    ]


def _group_check(dataset: Dataset) -> tuple[dict[str, int] | None, list[GroupCrossing]]:
    """Summary of the provenance groups and the groups found in several splits."""
    provenance = dataset.provenance
    if provenance is None or provenance.groups is None:
        return None, []
    members: dict[str, list[int]] = defaultdict(list)
    for i, key in enumerate(provenance.groups):
        members[key].append(i)
    methods = provenance.group_methods or ("single",) * len(dataset)
    sizes = [len(idx) for idx in members.values()]
    summary = {
        "n_groups": len(members),
        "n_multi": sum(n > 1 for n in sizes),
        "n_in_multi": sum(n for n in sizes if n > 1),
        "largest": max(sizes, default=0),
        "n_patient": sum(any(methods[i] == "pattern" for i in idx) for idx in members.values()),
    }
    crossings = []
    for key, idx in sorted(members.items()):
        splits = {str(dataset.splits[i]) for i in idx}
        if len(splits) > 1:
            how = "patient" if any(methods[i] == "pattern" for i in idx) else "near-duplicate"
            crossings.append(
                GroupCrossing(
                    key=key,
                    sources=tuple(sorted(provenance.sources[i] for i in idx)),
                    splits=tuple(s for s in SPLITS if s in splits),
                    how=how,
                )
            )
    return summary, crossings


@dataclass(frozen=True)
class CrossDatasetReport:
    """Images shared by two datasets (the same originals, copied another way).

    Attributes:
        name_a: First dataset's name.
        name_b: Second dataset's name.
        n_a: Images in the first.
        n_b: Images in the second.
        a_matched: Images of the first with a copy in the second.
        b_matched: Images of the second with a copy in the first.
        examples: Up to 10 ``(source in a, split, source in b, split, correlation)``.
        split_pairs: ``{"a_split→b_split": n}`` counts of matched pairs, e.g.
            how many test images of one set are training images of the other.
        method: How matches were found.
        warning: A sentence when any image is shared, else ``None``.
    """

    name_a: str
    name_b: str
    n_a: int
    n_b: int
    a_matched: int
    b_matched: int
    examples: tuple[tuple[str, str, str, str, float], ...]
    split_pairs: dict[str, int]
    method: str
    warning: str | None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "a": self.name_a,
            "b": self.name_b,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "a_matched": self.a_matched,
            "b_matched": self.b_matched,
            "a_matched_fraction": self.a_matched / self.n_a if self.n_a else 0.0,
            "examples": [list(e) for e in self.examples],
            "split_pairs": dict(self.split_pairs),
            "method": self.method,
            "warning": self.warning,
        }


def cross_dataset_report(a: Dataset, b: Dataset, **options: object) -> CrossDatasetReport:
    """Which images of ``a`` are copies of images of ``b`` (resized, cropped, re-encoded)?

    Two public datasets built from the same originals (PneumoniaMNIST and the
    Kermany chest X-rays) must not serve as each other's external test set:
    a model trained on one has seen most of the other.

    Args:
        a: A dataset.
        b: Another dataset (any image size).
        **options: Passed to :func:`medviz.data.groups.cross_matches`
            (``fractions``, ``hash_threshold``, ``min_correlation``).

    Returns:
        The :class:`CrossDatasetReport`.
    """
    matches = cross_matches(a.images, b.images, **options)  # type: ignore[arg-type]

    def source(data: Dataset, i: int) -> str:
        return data.provenance.sources[i] if data.provenance is not None else f"image {i}"

    order = np.argsort(-matches.scores, kind="stable")
    picked = order[np.linspace(0, len(order) - 1, min(10, len(order))).astype(int)]
    examples = tuple(
        (
            source(a, int(i)),
            str(a.splits[i]),
            source(b, int(j)),
            str(b.splits[j]),
            round(float(score), 4),
        )
        for (i, j), score in zip(matches.pairs[picked], matches.scores[picked], strict=True)
    )
    split_pairs = Counter(f"{a.splits[i]}→{b.splits[j]}" for i, j in matches.pairs.tolist())
    warning = None
    if matches.a_matched:
        warning = (
            f"{matches.a_matched} of {len(a)} images of {a.name!r} "
            f"({matches.a_matched / max(len(a), 1):.0%}) are copies of images of {b.name!r}: "
            "the two sets share their originals, so neither is an independent test set "
            "for a model trained on the other."
        )
    return CrossDatasetReport(
        name_a=a.name,
        name_b=b.name,
        n_a=len(a),
        n_b=len(b),
        a_matched=matches.a_matched,
        b_matched=matches.b_matched,
        examples=examples,
        split_pairs=dict(sorted(split_pairs.items())),
        method=matches.method,
        warning=warning,
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
