"""The ``embed`` and ``tcav`` commands of ``python -m medviz``: explore what a model learned.

``medviz embed`` writes a dataset split's embedding map (penultimate features
projected to 2-D) as a stand-alone HTML page with thumbnails on hover, or as
JSON; ``medviz tcav`` tests a concept given by a folder of example images
against random images for one class at several layers (TCAV). Conventions are
those of :mod:`medviz.cli_support`: ``--json`` prints one JSON document on
stdout, progress goes to stderr, bad input exits 2 with one ``error:`` line.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medviz.cli_support import EXIT_OK, Progress, print_json
from medviz.errors import DataError, MedvizError

Add = Callable[[str, Callable[[argparse.Namespace], int], str], argparse.ArgumentParser]


def _load_for_model(source, card, *, limit_per_class: int | None, classes: str | None):
    from medviz.services.datasets import dataset_for_model

    return dataset_for_model(
        source,
        card,
        limit_per_class=limit_per_class,
        classes=classes,
        mismatch_hint=(
            f"name the data's classes with --classes, e.g. --classes {','.join(card.class_names)}"
        ),
    )


def cmd_embed(args: argparse.Namespace) -> int:
    """``medviz embed``: the embedding map of one split as HTML or JSON."""
    from medviz.explore.embedding import embedding_map
    from medviz.store import load_bundle
    from medviz.store.atomic import atomic_write_json, atomic_write_text

    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".json"):
        raise MedvizError(f"--out must end in .html or .json, got {args.out!r}")
    started = time.perf_counter()
    bundle = load_bundle(args.model)
    data = _load_for_model(
        args.data, bundle.card, limit_per_class=args.limit_per_class, classes=args.classes
    )
    if args.split != "all" and args.split not in data.available_splits:
        raise MedvizError(
            f"{data.name!r} has no {args.split} split; it has {list(data.available_splits)}"
        )
    loaded = time.perf_counter()
    emap = embedding_map(
        bundle,
        data,
        split=args.split,
        method=args.method,
        limit=args.limit or None,
        seed=args.seed,
    )
    mapped = time.perf_counter()
    if out.suffix.lower() == ".json":
        atomic_write_json(out, emap.to_dict())
    else:
        from medviz.explore.plots import embedding_html

        subset = data if args.split == "all" else data.split(args.split)
        page = embedding_html(
            emap,
            subset.images[emap.indices],
            colour_by=args.colour_by,
            title=f"{bundle.card.name}: embedding map of {data.name}",
        )
        atomic_write_text(out, page)
    finished = time.perf_counter()
    timings = {
        "load_s": round(loaded - started, 2),
        "map_s": round(mapped - loaded, 2),
        "write_s": round(finished - mapped, 2),
        "total_s": round(finished - started, 2),
    }
    if args.json:
        summary = emap.to_dict()
        summary.pop("points")
        print_json({"model": str(args.model), "data": data.name, "out": str(out), **summary,
                    "timings": timings})  # fmt: skip
    else:
        print(
            f"{bundle.card.name} on {data.name} [{args.split}]: {len(emap)} images mapped "
            f"({args.method}, layer {emap.layer}), accuracy {emap.accuracy:.1%}; "
            f"{timings['total_s']:.1f} s (features + projection {timings['map_s']:.1f} s)"
        )
        if emap.note:
            print(f"  note: {emap.note}")
        print(f"  written: {out}")
    return EXIT_OK


def load_image_folder(
    folder: str | Path, *, image_size: int, channels: int, limit: int | None, seed: int = 0
) -> np.ndarray:
    """Every image under ``folder`` (recursively) as model inputs, a seeded sample above ``limit``.

    Args:
        folder: A folder of image files (PNG, JPEG, TIFF, DICOM …).
        image_size: The model's input side.
        channels: The model's channels.
        limit: Most images (``None``: all).
        seed: Seed of the sample.

    Returns:
        ``(n, S, S, C)`` uint8.

    Raises:
        DataError: Not a folder, or no image in it (the message says which).
    """
    from medviz.data.images import IMAGE_SUFFIXES, decode_image, to_model_input

    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"{folder}: not a folder of images")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise DataError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    if limit is not None and len(files) > limit:
        pick = np.random.default_rng(seed).choice(len(files), size=limit, replace=False)
        files = [files[i] for i in sorted(pick)]
    return np.stack(
        [
            to_model_input(decode_image(p).pixels, image_size=image_size, channels=channels)
            for p in files
        ]
    )


@functools.lru_cache(maxsize=4)
def _load(source: str, image_size: int, channels: int, seed: int):
    """A dataset at the model's input, loaded once per command (concept, random and class
    images often come from the same dataset: one load instead of three)."""
    from medviz.data import load_dataset

    return load_dataset(source, image_size=image_size, channels=channels, seed=seed)


def _sample(images: np.ndarray, limit: int | None, seed: int) -> np.ndarray:
    if limit is None or len(images) <= limit:
        return images
    pick = np.random.default_rng(seed).choice(len(images), size=limit, replace=False)
    return images[np.sort(pick)]


def _images_from(source: str, card, *, limit: int | None, seed: int, split: str) -> np.ndarray:
    """A folder's images, or a dataset's images of ``split`` (all classes), at the model's input."""
    if Path(source).is_dir() and not _is_class_folder_dataset(Path(source)):
        return load_image_folder(
            source, image_size=card.image_size, channels=card.channels, limit=limit, seed=seed
        )
    data = _load(source, card.image_size, card.channels, seed)
    subset = data.split(split) if split in data.available_splits else data
    return _sample(subset.images, limit, seed)


def _is_class_folder_dataset(root: Path) -> bool:
    """Whether ``root`` holds class sub-folders of images (a dataset) rather than loose images."""
    from medviz.data.images import IMAGE_SUFFIXES

    loose = any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in root.iterdir())
    return not loose and any(p.is_dir() for p in root.iterdir())


def _concept_images(source: str, card, *, limit: int | None, seed: int) -> np.ndarray:
    """A folder's images, or ``DATA:CLASS``: the train images of one class of a dataset."""
    if Path(source).is_dir() or ":" not in source:
        return load_image_folder(
            source, image_size=card.image_size, channels=card.channels, limit=limit, seed=seed
        )
    name, _, wanted = source.rpartition(":")
    data = _load(name, card.image_size, card.channels, seed)
    from medviz.metrics import normalize_class_name

    found = [normalize_class_name(c) for c in data.class_names]
    if normalize_class_name(wanted) not in found:
        raise MedvizError(
            f"--concept {source!r}: {name!r} has no class {wanted!r}; it has "
            f"{list(data.class_names)}"
        )
    subset = data.split("train") if "train" in data.available_splits else data
    label = found.index(normalize_class_name(wanted))
    return _sample(subset.images[subset.labels == label], limit, seed)


def cmd_tcav(args: argparse.Namespace) -> int:
    """``medviz tcav``: TCAV scores of a concept for one class at several layers."""
    from medviz.explain import Explainer
    from medviz.explore.tcav import default_tcav_layers, run_tcav
    from medviz.store import load_bundle

    started = time.perf_counter()
    bundle = load_bundle(args.model)
    card = bundle.card
    names = list(card.class_names)
    wanted = args.class_
    if wanted in names:
        class_index = names.index(wanted)
    elif wanted.isdigit() and int(wanted) < len(names):
        class_index = int(wanted)
    else:
        raise MedvizError(f"--class {wanted!r} is not a class of the model; it has {names}")
    concept = _concept_images(args.concept, card, limit=args.max_concept, seed=args.seed)
    random_images = _images_from(
        args.random, card, limit=args.max_random, seed=args.seed, split="train"
    )
    data_source = args.data
    if data_source is None:
        if not Path(args.random).is_dir() or _is_class_folder_dataset(Path(args.random)):
            data_source = args.random
        else:
            data_source = str(card.training.get("dataset", "")) or None
    if not data_source:
        raise MedvizError("say where the class's images come from with --data")
    if Path(data_source).is_dir() and not _is_class_folder_dataset(Path(data_source)):
        raise MedvizError(f"--data {data_source!r} is a folder of loose images, not a dataset")
    data = _load_for_model(
        _load(data_source, card.image_size, card.channels, args.seed),
        card,
        limit_per_class=None,
        classes=args.classes,
    )
    split = args.split if args.split in data.available_splits else "all"
    subset = data if split == "all" else data.split(split)
    class_images = _sample(
        subset.images[subset.labels == class_index], args.max_class_images, args.seed
    )
    if not len(class_images):
        raise MedvizError(f"{data.name!r} has no images of class {names[class_index]!r} ({split})")
    layers = (
        [name.strip() for name in args.layers.split(",") if name.strip()]
        if args.layers
        else default_tcav_layers(bundle.model)
    )
    loaded = time.perf_counter()
    progress = Progress(len(layers) * (args.runs + 1), label="tcav")
    result = run_tcav(
        Explainer(bundle.model),
        concept,
        random_images,
        class_images,
        class_index=class_index,
        class_name=names[class_index],
        concept=args.name or Path(args.concept).name or args.concept,
        layers=layers,
        runs=args.runs,
        alpha=args.alpha,
        seed=args.seed,
        on_progress=lambda done, total, note: progress.update(done, note=note),
    )
    progress.close()
    if args.out:
        from medviz.explore.plots import tcav_figure
        from medviz.store.atomic import atomic_write_text

        out = Path(args.out)
        if out.suffix.lower() != ".html":
            raise MedvizError(f"--out must end in .html, got {args.out!r}")
        atomic_write_text(out, tcav_figure(result).to_html(include_plotlyjs=True))
    timings = {
        "load_s": round(loaded - started, 2),
        "tcav_s": round(result.seconds, 2),
        "total_s": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print_json({"model": str(args.model), "data": data.name, "split": split,
                    **result.to_dict(), "timings": timings, "out": args.out})  # fmt: skip
        return EXIT_OK
    print(
        f"TCAV of concept {result.concept!r} ({result.n_concept} images) for class "
        f"{result.class_name!r} ({result.n_class} images of {data.name} [{split}]), random "
        f"pool {result.n_random}, {result.runs} runs, {timings['total_s']:.1f} s"
    )
    corrected = result.alpha / len(result.layers)
    for r in result.layers:
        mark = "significant" if r.significant else "not significant"
        print(
            f"  {r.layer:<28} TCAV {r.score_mean:.2f} ± {r.score_std:.2f}  random "
            f"{r.random_mean:.2f} ± {r.random_std:.2f}  CAV accuracy {r.cav_accuracy:.2f}  "
            f"p={r.p_value:.3g} ({mark} at {corrected:.3g})"
        )
    if args.out:
        print(f"  written: {args.out}")
    sys.stdout.flush()
    return EXIT_OK


def add_commands(add: Add) -> None:
    """Register ``embed`` and ``tcav`` with the main parser's ``add`` helper."""
    from medviz.explore.embedding import COLOUR_BY, DEFAULT_LIMIT, PROJECTIONS

    p = add(
        "embed",
        cmd_embed,
        "Embedding map of a dataset split: penultimate features in 2-D (HTML with thumbnails "
        "on hover, or JSON).",
    )
    p.add_argument("--model", required=True, help="model folder, .keras file or hf://user/repo")
    p.add_argument("--data", required=True, help="registry name, folder, .zip or .npz")
    p.add_argument("--split", default="val", choices=("train", "val", "test", "all"))
    p.add_argument("--method", default="pca", choices=tuple(PROJECTIONS))
    p.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"most points, a stratified seeded sample above (default {DEFAULT_LIMIT}; 0 = all)",
    )
    p.add_argument("--colour-by", default="true", choices=tuple(COLOUR_BY))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit-per-class", type=int, default=None)
    p.add_argument("--classes", default=None, metavar="A,B,…", help="names for the data's classes")
    p.add_argument("--out", required=True, help="map.html (interactive) or map.json")

    t = add(
        "tcav",
        cmd_tcav,
        "Concept test (TCAV): is a class sensitive to a concept given by example images?",
    )
    t.add_argument("--model", required=True, help="model folder, .keras file or hf://user/repo")
    t.add_argument(
        "--concept",
        required=True,
        help="folder of images showing the concept, or DATA:CLASS (the train images of one "
        "class of a dataset, e.g. synthetic-microcalc:microcalcification)",
    )
    t.add_argument(
        "--random",
        required=True,
        help="folder of random images, or a dataset (name, folder, .zip, .npz) to draw them from",
    )
    t.add_argument("--class", dest="class_", required=True, help="class name (or index) tested")
    t.add_argument(
        "--data",
        default=None,
        help="dataset holding the class's images (default: --random when it is a dataset, "
        "else the model's training dataset)",
    )
    t.add_argument("--split", default="val", help="split of --data (default val; else all)")
    t.add_argument("--layers", default=None, help="comma list (default: the last 3 conv stages)")
    t.add_argument("--runs", type=int, default=10, help="random sets per layer (default 10)")
    t.add_argument("--alpha", type=float, default=0.05, help="significance before Bonferroni")
    t.add_argument("--name", default=None, help="concept name (default: the folder's)")
    t.add_argument("--max-concept", type=int, default=50)
    t.add_argument("--max-random", type=int, default=100)
    t.add_argument("--max-class-images", type=int, default=100)
    t.add_argument("--classes", default=None, metavar="A,B,…", help="names for --data's classes")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="write the bar chart as HTML")
