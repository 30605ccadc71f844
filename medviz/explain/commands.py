"""The ``explain``, ``dream`` and ``localize`` commands of ``python -m medviz``.

:func:`register` adds them to the main parser's subparsers; each handler
returns an exit code and raises :class:`~medviz.errors.MedvizError` for bad
input (the main entry point prints it as one ``error:`` line, exit 2).
Conventions are those of :mod:`medviz.cli_support`: ``--json`` prints one
JSON document on stdout and nothing else there; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from medviz.cli_support import EXIT_OK, Progress, print_json
from medviz.errors import DataError, ModelError
from medviz.explain.deep_dream import deep_dream
from medviz.explain.overlay import overlay, save_png


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``explain``, ``dream`` and ``localize`` subcommands.

    Each subparser gets ``handler`` (and ``func``) defaults: a callable taking
    the parsed namespace and returning an exit code.
    """
    p = subparsers.add_parser(
        "explain",
        help="heatmap of one image with trust checks",
        description="Explain one image with a heatmap method, write the overlay as PNG, and "
        "report trust checks (model-randomisation correlation, deletion/insertion AUCs).",
    )
    p.add_argument("file", help="image file (PNG, JPEG, DICOM, ...)")
    p.add_argument("--model", required=True, help="model folder or file")
    p.add_argument("--method", default="gradcam", help="heatmap method (default: gradcam)")
    p.add_argument(
        "--class", dest="class_", metavar="C", help="class index or name (default: predicted)"
    )
    p.add_argument("--layer", help="layer for CAM methods (default: last spatial layer)")
    p.add_argument("--out", required=True, help="PNG to write the overlay to")
    p.add_argument("--heatmap-out", help="also write the raw heatmap as 8-bit gray PNG")
    p.add_argument("--colormap", default="jet", help="jet, viridis, inferno or gray")
    p.add_argument("--alpha", type=float, default=0.4, help="heatmap opacity (default 0.4)")
    p.add_argument("--no-trust", action="store_true", help="skip the trust checks")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(handler=cmd_explain, func=cmd_explain)

    d = subparsers.add_parser(
        "dream",
        help="activation maximisation or deep dream",
        description="Without --image: synthesise the input that maximises a class (--class) or "
        "a filter (--layer, --filter). With --image: deep dream on that image, amplifying a "
        "layer (optionally one filter) or the evidence for a class.",
    )
    d.add_argument("--model", required=True, help="model folder or file")
    d.add_argument("--class", dest="class_", metavar="C", help="class index or name")
    d.add_argument("--layer", help="layer with spatial output")
    d.add_argument("--filter", dest="filter_", type=int, metavar="F", help="filter of --layer")
    d.add_argument("--image", help="start from this image (deep dream)")
    d.add_argument("--steps", type=int, help="steps (per octave for deep dream)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--scale", type=int, default=1, help="upscale the PNG by this factor")
    d.add_argument("--out", required=True, help="PNG to write")
    d.add_argument("--json", action="store_true", help="print JSON on stdout")
    d.set_defaults(handler=cmd_dream, func=cmd_dream)

    loc = subparsers.add_parser(
        "localize",
        help="how well heatmaps localise lesions on a dataset with masks or boxes",
        description="Pointing game and IoU of a heatmap method on the images with a lesion "
        "mask or box, with bootstrap 95% intervals, next to two trivial pointers: the image "
        "centre and a random point. --data is a registered name or a folder of "
        "<class>/<image> with <image stem>.txt boxes ('x_center y_center width height', "
        "relative) or <image stem>_mask.png masks; its classes are matched to the model's by "
        "name and may be fewer.",
    )
    loc.add_argument("--model", required=True, help="model folder or file")
    loc.add_argument("--data", required=True, help="dataset name or folder with masks/boxes")
    loc.add_argument("--method", default="gradcam", help="heatmap method (default: gradcam)")
    loc.add_argument("--layer", help="layer for CAM methods")
    loc.add_argument("--split", default="test", help="train, val, test or all (default: test)")
    loc.add_argument(
        "--tolerance",
        type=float,
        default=0.02,
        help="pointing-game tolerance as a share of the image side (default 0.02 = 2%%)",
    )
    loc.add_argument(
        "--iou-top",
        default="0.05",
        help="IoU of the top share of heatmap pixels (default 0.05) or 'mask' (as many "
        "pixels as the lesion has)",
    )
    loc.add_argument(
        "--mirror",
        choices=("auto", "on", "off"),
        default="auto",
        help="average each map with its mirror image's (auto: when the model was trained with "
        "left-right flips, see medviz.explain.mirror)",
    )
    loc.add_argument("--max-images", type=int, help="score at most this many (seeded sample)")
    loc.add_argument("--seed", type=int, default=0, help="seed of the sample and bootstrap")
    loc.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples")
    loc.add_argument("--json", action="store_true", help="print JSON on stdout")
    loc.set_defaults(handler=cmd_localize, func=cmd_localize)


# ----------------------------------------------------------------- helpers
def _load(path: str):
    """``(bundle, model, class_names)`` from the model store."""
    from medviz.store import load_bundle

    bundle = load_bundle(path)
    return bundle, bundle.model, tuple(bundle.card.class_names)


def resolve_class(value: str | None, class_names: tuple[str, ...], n_classes: int) -> int | None:
    """Parse ``--class``: an index or a class name (case-insensitive).

    Raises:
        ModelError: Neither a valid index nor a known name.
    """
    if value is None:
        return None
    text = str(value).strip()
    names = list(class_names)
    for i, name in enumerate(names):
        if text == name:
            return i
    lowered = [n.lower() for n in names]
    if text.lower() in lowered:
        return lowered.index(text.lower())
    try:
        index = int(text)
    except ValueError:
        raise ModelError(
            f"--class {value!r} is not a class of this model; use an index 0..{n_classes - 1} "
            f"or one of {names}"
        ) from None
    if not 0 <= index < n_classes:
        raise ModelError(
            f"--class {index} is out of range; use 0..{n_classes - 1} or one of {names}"
        )
    return index


def _class_name(names: tuple[str, ...], index: int) -> str:
    return names[index] if 0 <= index < len(names) else str(index)


def _read_image(bundle, path: str) -> tuple[np.ndarray, np.ndarray]:
    """``(native pixels, model input (S, S, C) float32)``."""
    from medviz.data.images import decode_image

    if not Path(path).exists():
        raise DataError(f"{path}: no such file")
    pixels = decode_image(path).pixels
    return pixels, np.asarray(bundle.prepare(pixels), np.float32)


def _upscale(image: np.ndarray, factor: int) -> np.ndarray:
    if factor < 1:
        raise DataError(f"--scale must be >= 1, got {factor}")
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1) if factor > 1 else image


# ---------------------------------------------------------------- handlers
def cmd_explain(args: argparse.Namespace) -> int:
    """Handler of ``medviz explain``."""
    from medviz.explain.engine import get_explainer
    from medviz.explain.methods import canonical_method, run_method
    from medviz.explain.trust import deletion_insertion, sanity_check

    started = time.perf_counter()
    method = canonical_method(args.method)
    bundle, model, names = _load(args.model)
    load_s = time.perf_counter() - started
    explainer = get_explainer(model)
    class_index = resolve_class(args.class_, names, explainer.n_classes)
    _, x = _read_image(bundle, args.file)
    result = run_method(explainer, x, method=method, class_index=class_index, layer=args.layer)
    picture = overlay(x, result.heatmap, alpha=args.alpha, colormap=args.colormap)
    out = save_png(args.out, picture)
    if args.heatmap_out:
        save_png(args.heatmap_out, result.heatmap)

    trust: dict[str, Any] = {}
    timings: dict[str, float] = {"load_s": load_s, "explain_s": result.seconds}
    if not args.no_trust:
        check = sanity_check(
            explainer, x, method=method, class_index=result.class_index, layer=result.layer
        )
        timings["sanity_s"] = check.seconds
        t0 = time.perf_counter()
        curves = deletion_insertion(explainer, x, result.heatmap, class_index=result.class_index)
        timings["faithfulness_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        summary = _checks(explainer, x, result)
        timings["checks_s"] = time.perf_counter() - t0
        trust = {
            "sanity_correlation": check.correlation,
            "sanity_passed": check.passed,
            "randomized_layers": list(check.randomized_layers),
            "deletion_auc": curves.deletion_auc,
            "insertion_auc": curves.insertion_auc,
            "verdict": summary.verdict,
            "checks": summary.to_dict()["checks"],
            "summary": summary.line(),
        }
    timings["total_s"] = time.perf_counter() - started
    payload = {
        "file": args.file,
        "model": args.model,
        "method": method,
        "class": {"index": result.class_index, "name": _class_name(names, result.class_index)},
        "predicted": {
            "index": result.predicted_class,
            "name": _class_name(names, result.predicted_class),
        },
        "probabilities": {
            _class_name(names, i): float(p) for i, p in enumerate(result.probabilities)
        },
        "layer": result.layer,
        "out": str(out),
        "timings": timings,
        "trust": trust,
    }
    if args.json:
        print_json(payload)
    else:
        top = float(result.probabilities[result.predicted_class])
        where = f" at layer {result.layer}" if result.layer else ""
        print(
            f"{method} of class {payload['class']['name']!r} (predicted "
            f"{payload['predicted']['name']!r}, p={top:.3f}){where} -> {out} "
            f"in {result.seconds * 1000:.0f} ms"
        )
        if trust:
            verdict = (
                "changes with the weights" if trust["sanity_passed"] else "WARNING: barely changes"
            )
            print(
                f"trust: randomisation correlation {trust['sanity_correlation']:.2f} ({verdict}), "
                f"deletion AUC {trust['deletion_auc']:.3f}, "
                f"insertion AUC {trust['insertion_auc']:.3f}"
            )
            print(trust["summary"])
    return EXIT_OK


def _checks(explainer, x: np.ndarray, result):
    """The checks that can fail (:mod:`medviz.explain.checks`) of one explanation."""
    from medviz.explain.checks import FAMILIES, REFERENCES, trust_summary
    from medviz.explain.methods import METHODS, run_method

    references = {
        method: run_method(
            explainer,
            x,
            method=method,
            class_index=result.class_index,
            layer=result.layer if METHODS[method].needs_layer and result.layer else None,
        ).heatmap
        for method in REFERENCES.values()
        if FAMILIES[method] != FAMILIES[result.method]
    }
    return trust_summary(x, result.heatmap, method=result.method, references=references)


def cmd_dream(args: argparse.Namespace) -> int:
    """Handler of ``medviz dream``."""
    from medviz.explain.activation_max import activation_maximization
    from medviz.explain.engine import get_explainer

    if args.class_ is None and (args.layer is None or args.filter_ is None) and args.image is None:
        raise ModelError(
            "give --class C, or --layer L --filter F (with --image: --layer alone works)"
        )
    if args.class_ is not None and (args.layer is not None or args.filter_ is not None):
        raise ModelError("give --class or --layer/--filter, not both")
    if args.filter_ is not None and args.layer is None:
        raise ModelError("--filter needs --layer")
    bundle, model, names = _load(args.model)
    explainer = get_explainer(model)
    class_index = resolve_class(args.class_, names, explainer.n_classes)
    progress = Progress(1, label="dream")

    def on_step(step: int, total: int, loss: float) -> None:
        progress.total = total
        progress.update(step, note=f"loss {loss:.3g}")

    if args.image is None:
        mode = "activation-maximization"
        result = activation_maximization(
            explainer,
            class_index=class_index,
            layer=args.layer if class_index is None else None,
            filter_index=args.filter_,
            steps=args.steps,
            seed=args.seed,
            on_step=on_step,
        )
        image, seconds, target = result.image, result.seconds, result.targets[0]
        probs = result.probabilities[0]
        extra: dict[str, Any] = {"objective": float(result.objectives[0])}
    else:
        mode = "deep-dream"
        _, x = _read_image(bundle, args.image)
        result = deep_dream(
            explainer,
            x,
            layer=args.layer,
            filter_index=args.filter_,
            class_index=class_index,
            steps_per_octave=args.steps,
            seed=args.seed,
            on_step=on_step,
        )
        image, seconds, target = result.image, result.seconds, result.layer
        if result.filter_index is not None:
            target = f"{result.layer}/{result.filter_index}"
        probs = result.probabilities[1]
        extra = {"frames": len(result.frames)}
    progress.close()
    out = save_png(args.out, _upscale(image, args.scale))
    payload = {
        "model": args.model,
        "mode": mode,
        "target": target,
        "class": None
        if class_index is None
        else {"index": class_index, "name": _class_name(names, class_index)},
        "probabilities": {_class_name(names, i): float(p) for i, p in enumerate(probs)},
        "seconds": seconds,
        "out": str(out),
        **extra,
    }
    if args.json:
        print_json(payload)
    else:
        print(f"{mode} of {target} -> {out} in {seconds:.1f} s")
    return EXIT_OK


def _iou_fraction(value: str) -> float | None:
    text = str(value).strip().lower()
    if text == "mask":
        return None
    try:
        fraction = float(text.rstrip("%")) / (100.0 if text.endswith("%") else 1.0)
    except ValueError:
        fraction = -1.0
    if not 0.0 < fraction <= 1.0:
        raise DataError(f"--iou-top must be a share in (0, 1] or 'mask', got {value!r}")
    return fraction


def cmd_localize(args: argparse.Namespace) -> int:
    """Handler of ``medviz localize``."""
    from medviz.data.boxes import restrict_to_heldout
    from medviz.explain.methods import canonical_method
    from medviz.explain.mirror import resolve_mirror
    from medviz.explain.trust import localization_score, with_model_classes

    method = canonical_method(args.method)
    fraction = _iou_fraction(args.iou_top)
    bundle, model, names = _load(args.model)
    card = bundle.card
    dataset = _load_dataset(args.data, image_size=int(card.image_size), channels=int(card.channels))
    dataset, restricted = restrict_to_heldout(dataset, card.training)
    if restricted:
        print(
            f"{len(dataset)} images of {args.data} the model never trained on (listed in its "
            "card); the model was trained with the boxes of the others",
            file=sys.stderr,
        )
    dataset = with_model_classes(dataset, names)
    mirror = resolve_mirror(args.mirror, card.training)
    print(
        f"scoring {method}{' (mirror-averaged)' if mirror else ''} on {args.data} "
        f"({args.split})...",
        file=sys.stderr,
    )
    progress = Progress(1, label=method)

    def on_progress(done: int, total: int) -> None:
        progress.total = total
        progress.update(done)

    report = localization_score(
        model,
        dataset,
        method=method,
        layer=args.layer,
        split=args.split,
        tolerance=args.tolerance,
        fraction=fraction,
        max_images=args.max_images,
        n_bootstrap=args.bootstrap,
        seed=args.seed,
        on_progress=on_progress,
        mirror=mirror,
    )
    progress.close()
    payload = {"model": args.model, "data": args.data, "mirror": mirror, **report.summary()}
    if args.json:
        print_json(payload)
    else:
        iou = "mask-size" if fraction is None else f"top-{fraction:.0%}"
        print(
            f"{method}{' (mirror-averaged)' if mirror else ''} on {report.n} lesion images of "
            f"the {args.split} split "
            f"(tolerance {report.tolerance:.0%} of the side = {report.tolerance_px:.1f} px; "
            f"model accuracy on them {report.accuracy:.1%})"
        )
        rows = [(method, report), *((f"{k} point", b) for k, b in report.baselines.items())]
        for label, row in rows:
            lo, hi = row.hit_rate_ci
            ilo, ihi = row.mean_iou_ci
            print(
                f"  {label:<22} pointing game {row.hit_rate:.3f} (95% CI {lo:.3f}-{hi:.3f}), "
                f"{iou} IoU {row.mean_iou:.3f} ({ilo:.3f}-{ihi:.3f})"
            )
        verdict = "better than" if report.passed else "NOT better than"
        print(f"  {method} is {verdict} the best trivial pointer")
    return EXIT_OK


def _load_dataset(name: str, *, image_size: int, channels: int):
    try:
        from medviz.data import load_dataset
    except ImportError:  # pragma: no cover - older data package
        from medviz.data.registry import get_spec

        return get_spec(name).load(image_size=image_size, channels=channels)
    return load_dataset(name, image_size=image_size, channels=channels)
