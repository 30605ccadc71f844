"""Fit and measure a model's OOD detector: ``python -m medviz fit-ood``.

The model's own dataset is loaded with the split it was trained with:
**train** (a sample) gives the per-layer class means, **val** is the
in-domain side of the classifier and sets the limit, **test** is never used
for fitting and measures the in-domain false-flag rate. Foreign sources are
measured in-sample and **leave-one-source-out** (refit without source S,
flag rate on S), the estimate for modalities nobody has thought of.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from medviz.errors import DataError
from medviz.metrics import as_class_probabilities
from medviz.model_readme import render_model_readme
from medviz.ood.detector import (
    OodDetector,
    fit_classifier,
    fit_layer_reference,
    fit_novelty,
    score_table,
)
from medviz.ood.features import OUTPUT, feature_layers, input_statistics, layer_features
from medviz.ood.reference import ReferenceStats, distances
from medviz.ood.sources import SOURCES, Source, get_source, is_available, load_source, same_modality
from medviz.store import (
    CARD_FILE,
    README_FILE,
    atomic_write_json,
    atomic_write_text,
)

# Share of the in-domain flag budget given to the novelty score (the rest: the classifier).
NOVELTY_SHARE = 0.5
# Generated images are cheap to vary but slow to push through a 128-px net; 200 of each suffice.
GENERATED_PER_SOURCE = 200


@dataclass(frozen=True)
class Measured:
    """Measurements of one set of images.

    Attributes:
        name: Source or split name.
        modality: Its modality.
        stats: ``(N, n_stats)`` input statistics.
        features: One ``(N, D_l)`` array per detector layer.
        predicted: ``(N,)`` the model's predicted class.
    """

    name: str
    modality: str
    stats: np.ndarray
    features: list[np.ndarray]
    predicted: np.ndarray

    def __len__(self) -> int:
        return len(self.stats)


@dataclass
class OodFit:
    """A fitted detector and everything measured on the way.

    Attributes:
        detector: The detector (with its rates) to store in the card.
        notes: Sources skipped and why, and other remarks for the user.
        legacy: Flag rates of the card's old penultimate-distance check on
            the same images (``None`` without one), for comparison.
        seconds: Wall time.
    """

    detector: OodDetector
    notes: list[str] = field(default_factory=list)
    legacy: dict[str, float] | None = None
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-ready report."""
        return {
            "rates": self.detector.rates,
            "limit": self.detector.limit,
            "layers": list(self.detector.layer_names),
            "legacy_flag_rates": self.legacy,
            "notes": self.notes,
            "seconds": round(self.seconds, 1),
        }


def measure(model, name: str, modality: str, images: np.ndarray, layers: Sequence[str]):
    feats = layer_features(model, images, (*layers, OUTPUT), batch_size=64)
    probs = as_class_probabilities(feats.pop())
    return Measured(name, modality, input_statistics(images), feats, probs.argmax(axis=1))


def _sample(n_total: int, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n_total, size=min(n, n_total), replace=False))


def _rate(flags: np.ndarray) -> float:
    return round(float(np.mean(flags)), 4) if len(flags) else float("nan")


def fit_ood(
    bundle,
    *,
    data: str | None = None,
    sources: Sequence[str] | None = None,
    per_source: int = 400,
    n_reference: int = 600,
    n_in_domain: int = 1000,
    target_rate: float = 0.02,
    n_stages: int = 2,
    seed: int = 0,
    root: Path | None = None,
    progress: Callable[[str], None] | None = None,
    also_in_domain: Sequence[str] = (),
) -> OodFit:
    """Fit a model's OOD detector and measure it.

    Args:
        bundle: The loaded model (:class:`medviz.store.ModelBundle`).
        data: The model's own dataset (default: the card's training dataset).
        sources: Names from :data:`medviz.ood.sources.SOURCES` (default: all);
            missing ones are skipped with a note.
        per_source: At most this many images per source.
        n_reference: Training images for the per-layer class means.
        n_in_domain: At most this many validation and test images each.
        target_rate: Fraction of in-domain images the limit may flag.
        n_stages: Conv stages used besides the penultimate layer.
        seed: Sampling seed.
        root: Data root (default :func:`medviz.data.registry.data_root`).
        progress: Called with a line of progress text.
        also_in_domain: Registry names of further datasets the model is meant to read
            (e.g. PneumoniaMNIST for the chest model that was trained for 28 px images):
            their train/val/test images join the in-domain sets of the same split.

    Returns:
        An :class:`OodFit`; nothing is written.

    Raises:
        DataError: The own dataset is missing or lacks val/test, or no foreign source is left.
    """
    from medviz.data import load_dataset
    from medviz.data.registry import DATASETS, data_root

    started = time.perf_counter()
    say = progress or (lambda _line: None)
    card, model = bundle.card, bundle.model
    root = root or data_root()
    rng = np.random.default_rng(seed)
    name = data or card.facts.dataset
    if not name:
        raise DataError(
            "the model card does not say which dataset the model was trained on; pass --data"
        )
    spec = DATASETS.get(name)
    modality = spec.modality if spec is not None else card.modality
    say(f"loading {name} at {card.image_size} px")
    own = load_dataset(name, image_size=card.image_size, channels=card.channels, seed=seed)
    missing = [s for s in ("train", "val", "test") if s not in own.available_splits]
    if missing:
        raise DataError(
            f"dataset {name!r} has no {'/'.join(missing)} split; fit-ood needs all three"
        )
    layers = feature_layers(model, n_stages=n_stages)
    say(f"layers: {', '.join(layers)}")
    measured: dict[str, Measured] = {}
    extras = [
        load_dataset(extra, image_size=card.image_size, channels=card.channels, seed=seed)
        for extra in also_in_domain
    ]
    for split, n in (("train", n_reference), ("val", n_in_domain), ("test", n_in_domain)):
        subset = own.split(split)
        images = subset.images[_sample(len(subset.images), n, rng)]
        images = with_trained_resolutions(images, card.training, rng)
        for extra in extras:
            if split in extra.available_splits:
                part = extra.split(split).images
                images = np.concatenate([images, part[_sample(len(part), n // 2, rng)]])
        measured[split] = measure(model, split, modality, images, layers)
        say(f"{split}: {len(images)} images measured")
    notes: list[str] = []
    names = list(sources) if sources else list(SOURCES)
    for source_name in names:
        source: Source = get_source(source_name)
        if source.registry == name or source.registry in also_in_domain:
            notes.append(f"{source_name}: in-domain data of the model, not a foreign source")
            continue
        if not is_available(source, root):
            notes.append(f"{source_name}: not found under {root}, skipped")
            continue
        try:
            images = load_source(
                source,
                image_size=card.image_size,
                channels=card.channels,
                n=per_source if source.generator is None else min(per_source, GENERATED_PER_SOURCE),
                seed=seed,
                root=root,
            )
        except DataError as err:
            notes.append(f"{source_name}: {err}; skipped")
            continue
        measured[source_name] = measure(model, source_name, source.modality, images, layers)
        say(f"{source_name}: {len(images)} images measured")
    detector = fit_from_measurements(
        measured, layers, card.n_classes, modality, target_rate=target_rate, seed=seed
    )
    foreign = [
        k
        for k, m in measured.items()
        if k not in ("train", "val", "test") and not same_modality(m.modality, modality)
    ]
    for key in measured:
        if key not in ("train", "val", "test") and key not in foreign:
            notes.append(
                f"{key}: same modality as the model ({modality}); measured, not trained on"
            )
    legacy = _legacy_rates(card, measured) if card.reference else None
    detector = replace(
        detector,
        rates={
            **detector.rates,
            "data": name,
            "per_source": per_source,
            "fitted": time.strftime("%Y-%m-%d"),
        },
    )
    return OodFit(detector, notes, legacy, time.perf_counter() - started)


def with_trained_resolutions(images: np.ndarray, training: dict, rng) -> np.ndarray:
    """Add lower-resolution copies of in-domain images when the model was trained for them.

    A model trained with ``resolution_min < 1`` (e.g. the 64 px chest X-ray model, made to
    read MedMNIST-style 28 px images as well) must not call such images foreign: each image
    gets a copy shrunk to a random share in ``[resolution_min, 1)`` of its side and enlarged
    back, as a small upload reaches the model.

    Args:
        images: ``(N, S, S, C)`` uint8 model inputs.
        training: The card's ``training`` entry (its ``config.augment``).
        rng: ``numpy`` random generator.

    Returns:
        ``(N, …)`` or ``(2N, …)`` images.
    """
    from PIL import Image

    augment = (training.get("config") or {}).get("augment") or {}
    low = float(augment.get("resolution_min", 1.0))
    if low >= 1.0 or not len(images):
        return images
    side = images.shape[1]
    copies = []
    for image in images:
        small = max(2, round(side * rng.uniform(low, 1.0)))
        pixels = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
        pixels = pixels.resize((small, small), Image.Resampling.BILINEAR)
        back = np.asarray(pixels.resize((side, side), Image.Resampling.BILINEAR))
        copies.append(back.reshape(image.shape))
    return np.concatenate([images, np.stack(copies)])


def _tables(measured: dict[str, Measured], refs) -> dict[str, np.ndarray]:
    return {k: score_table(m.stats, m.features, refs) for k, m in measured.items()}


def fit_from_measurements(
    measured: dict[str, Measured],
    layers: Sequence[str],
    n_classes: int,
    modality: str,
    *,
    target_rate: float,
    seed: int,
) -> OodDetector:
    train = measured["train"]
    # Class means by the model's own decision: no label mapping needed, and at prediction time
    # the nearest mean is what counts anyway.
    refs = tuple(
        fit_layer_reference(layer, f, train.predicted, n_classes)
        for layer, f in zip(layers, train.features, strict=True)
    )
    tables = _tables(measured, refs)
    foreign = [
        k
        for k, m in measured.items()
        if k not in ("train", "val", "test") and not same_modality(m.modality, modality)
    ]
    if not foreign:
        raise DataError("no foreign source is available: cannot fit the OOD detector")
    same = [k for k in measured if k not in ("train", "val", "test") and k not in foreign]

    # The novelty model depends on in-domain images only: one fit serves every leave-one-out.
    centre = tables["val"].mean(axis=0)
    spread = tables["val"].std(axis=0) + 1e-6
    novelty = fit_novelty(
        np.clip((tables["val"] - centre) / spread, -50, 50),
        target_rate=target_rate * NOVELTY_SHARE,
        seed=seed,
    )

    def fit(excluded: str | None = None) -> OodDetector:
        kept = [k for k in foreign if k != excluded]
        x_out = np.concatenate([tables[k] for k in kept])
        groups = np.concatenate([[k] * len(tables[k]) for k in kept])
        lr = fit_classifier(
            tables["val"], x_out, groups, target_rate=target_rate * (1 - NOVELTY_SHARE), seed=seed
        )
        return OodDetector(
            layers=refs,
            centre=lr.centre,
            spread=lr.spread,
            coef=lr.coef,
            intercept=lr.intercept,
            lr_limit=lr.limit,
            novelty_location=novelty.location,
            novelty_precision=novelty.precision,
            novelty_limit=novelty.limit,
        )

    full = fit()

    def flags(detector: OodDetector, key: str) -> np.ndarray:
        return detector.score_from_table(tables[key]) > detector.limit

    supervised_oof = fit_classifier(
        tables["val"],
        np.concatenate([tables[k] for k in foreign]),
        np.concatenate([[k] * len(tables[k]) for k in foreign]),
        target_rate=target_rate * (1 - NOVELTY_SHARE),
        seed=seed,
    )
    oof_flags = (supervised_oof.oof_in_domain > supervised_oof.limit) | (
        novelty.oof_in_domain > novelty.limit
    )
    rates: dict[str, Any] = {
        "target_in_domain_rate": target_rate,
        "in_domain_val_out_of_fold": _rate(oof_flags),
        "in_domain_test": _rate(flags(full, "test")),
        "n_val": len(tables["val"]),
        "n_test": len(tables["test"]),
        "foreign": {},
        "same_modality": {k: {"n": len(tables[k]), "flagged": _rate(flags(full, k))} for k in same},
    }
    for key in foreign:
        loo = fit(excluded=key) if len(foreign) > 1 else None
        rates["foreign"][key] = {
            "modality": measured[key].modality,
            "n": len(tables[key]),
            "flagged": _rate(flags(full, key)),
            "leave_one_out": _rate(flags(loo, key)) if loo is not None else None,
        }
    in_sample = [v["flagged"] for v in rates["foreign"].values()]
    loo_rates = [
        v["leave_one_out"] for v in rates["foreign"].values() if v["leave_one_out"] is not None
    ]
    rates["foreign_min"] = min(in_sample)
    rates["foreign_leave_one_out_min"] = min(loo_rates) if loo_rates else None
    rates["foreign_leave_one_out_mean"] = round(float(np.mean(loo_rates)), 4) if loo_rates else None
    return replace(full, rates=rates)


def _legacy_rates(card, measured: dict[str, Measured]) -> dict[str, float] | None:
    """Flag rates of the old penultimate-distance check, on the same images."""
    stats = ReferenceStats.from_dict(card.reference)
    out = {}
    for key, m in measured.items():
        penultimate = m.features[-1]
        if penultimate.shape[1] != stats.scale.shape[0]:
            return None
        out[key] = _rate(distances(penultimate, stats) > stats.threshold)
    return out


def write_detector(bundle, detector: OodDetector) -> Path:
    """Store ``detector`` in the bundle's ``card.json`` and regenerate its ``README.md``.

    Cards made by ``tools.make_models`` keep the README sections it adds
    (accuracy intervals, reproduce, footprint; see :mod:`medviz.model_readme`);
    other cards get the library's card Markdown, as
    :func:`medviz.store.save_bundle` writes it.

    Returns:
        The card file.

    Raises:
        DataError: The bundle was not loaded from a folder.
    """
    from dataclasses import replace as replace_card

    if bundle.path is None:
        raise DataError("the model was not loaded from a folder: there is no card to write")
    card = replace_card(bundle.card, ood=detector.to_dict())
    readme = render_model_readme(card)
    path = Path(bundle.path) / CARD_FILE
    atomic_write_json(path, card.to_dict())
    atomic_write_text(Path(bundle.path) / README_FILE, readme)
    bundle.card = card
    return path
