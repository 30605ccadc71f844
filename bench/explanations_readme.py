"""Measure the explanation stack on a trained model: ``python -m bench.explanations_readme``.

Reports, as one JSON document on stdout:

* prediction + Grad-CAM latency, warm, through a reused :class:`Explainer`
  versus the naive way (tf-keras-vis objects rebuilt on every call, see
  :func:`bench.reference_cam.reference_cam`), p50/p95 and the speed-up;
* activation maximisation (both classes of a binary model, default steps)
  and deep dream (default settings) wall times;
* the pointing-game hit rate and top-5 % IoU of Grad-CAM, Grad-CAM++ and
  LayerCAM on the positive test images of a dataset with masks;
* the median model-randomisation correlation and mean deletion/insertion
  AUCs of Grad-CAM on a few positive test images;
* with ``--tumour-model``, a real-lesion section (:func:`real_tumour`): the
  pointing game and IoU of every method on real brain-tumour slices with
  boxes (``brain-tumor-boxes``), next to the image-centre and random-point
  baselines, plus the share of each map's mass on the body and the agreement
  across method families. ``--tumour-only --readme`` refreshes just that
  section in ``bench/results/explain.json`` and the README.

``--out-dir`` also writes the activation-maximisation images, a deep-dream
strip and a Grad-CAM overlay as PNGs (e.g. for the README).

The README's explanation block and ``bench/results/explain.json`` are written
by this module (``--readme``); ``tests/test_docblocks.py`` keeps the two in step.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "n": len(ms),
    }


def latency(model, images: np.ndarray, *, repeats: int = 50, naive_repeats: int = 10) -> dict:
    """Warm prediction + Grad-CAM latency: reused Explainer vs tf-keras-vis rebuilt per call.

    Args:
        model: A ``keras.Model``.
        images: ``(N, H, W, C)`` images, cycled through.
        repeats: Timed Explainer calls (after one warm-up call).
        naive_repeats: Timed naive calls (after one warm-up call).

    Returns:
        ``{"explainer": {...}, "naive": {...}, "speedup_p50": float, "first_call_ms": float}``.
    """
    from bench.reference_cam import reference_cam
    from medviz.explain.engine import Explainer

    explainer = Explainer(model)
    started = time.perf_counter()
    explainer.explain(images[0], method="gradcam")
    first = time.perf_counter() - started
    warm = []
    for i in range(repeats):
        started = time.perf_counter()
        explainer.explain(images[i % len(images)], method="gradcam")
        warm.append(time.perf_counter() - started)

    def naive(image: np.ndarray) -> None:
        # What a page would do without the cache: predict, then a fresh Gradcam.
        np.asarray(model(image[None].astype(np.float32), training=False))
        reference_cam(model, image, method="gradcam")

    naive(images[0])
    slow = []
    for i in range(naive_repeats):
        started = time.perf_counter()
        naive(images[i % len(images)])
        slow.append(time.perf_counter() - started)
    fast, base = _percentiles(warm), _percentiles(slow)
    return {
        "explainer": fast,
        "naive": base,
        "speedup_p50": base["p50_ms"] / fast["p50_ms"],
        "first_call_ms": first * 1000.0,
    }


def run(model, dataset, *, out_dir: Path | None = None, n_trust: int = 10) -> dict[str, Any]:
    """All measurements on ``model`` and the test split of ``dataset``."""
    from medviz.explain.activation_max import activation_maximization
    from medviz.explain.deep_dream import deep_dream
    from medviz.explain.engine import get_explainer
    from medviz.explain.methods import explain
    from medviz.explain.overlay import overlay, save_png
    from medviz.explain.trust import deletion_insertion, localization_score, sanity_check

    explainer = get_explainer(model)
    test = dataset.split("test")
    positives = np.flatnonzero(test.labels != 0)
    report: dict[str, Any] = {"model": model.name, "data": dataset.name}
    report["gradcam_latency"] = latency(model, test.images[positives[:20]])

    classes = list(range(explainer.n_classes))
    am = activation_maximization(explainer, class_index=classes)
    am_single = activation_maximization(explainer, class_index=classes[-1])
    pair = am.images.astype(np.float32)
    report["activation_max"] = {
        "seconds_all_classes": am.seconds,
        "seconds_one_class": am_single.seconds,
        "steps": am.info["steps"],
        "probabilities": am.probabilities.tolist(),
        "mean_abs_difference_between_classes": float(np.abs(pair[0] - pair[-1]).mean()),
    }
    image = test.images[positives[0]]
    dream = deep_dream(explainer, image)
    report["deep_dream"] = {
        "seconds": dream.seconds,
        "frames": len(dream.frames),
        "layer": dream.layer,
    }

    report["localization"] = {}
    for method in ("gradcam", "gradcam++", "layercam"):
        loc = localization_score(explainer, dataset, method=method)
        report["localization"][method] = loc.summary()

    checks, deletion, insertion = [], [], []
    for i in positives[:n_trust]:
        result = explain(
            explainer, test.images[i], method="gradcam", class_index=int(test.labels[i])
        )
        checks.append(
            sanity_check(
                explainer, test.images[i], method="gradcam", class_index=result.class_index
            ).correlation
        )
        curves = deletion_insertion(explainer, test.images[i], result.heatmap)
        deletion.append(curves.deletion_auc)
        insertion.append(curves.insertion_auc)
    report["trust"] = {
        "n": len(checks),
        "sanity_correlation_median": float(np.median(checks)),
        "deletion_auc_mean": float(np.mean(deletion)),
        "insertion_auc_mean": float(np.mean(insertion)),
    }

    if out_dir is not None:
        from medviz.explain.features import tile

        out_dir.mkdir(parents=True, exist_ok=True)
        big = np.kron(tile(am.images[..., 0] / 255.0, pad=2), np.ones((4, 4)))
        save_png(out_dir / "activation_max.png", big)
        strip = tile(dream.frames[:: max(1, len(dream.frames) // 6), :, :, 0] / 255.0, n_cols=7)
        save_png(out_dir / "deep_dream.png", np.kron(strip, np.ones((3, 3))))
        heat = explain(explainer, image, method="gradcam").heatmap
        save_png(out_dir / "gradcam.png", np.kron(overlay(image, heat), np.ones((4, 4, 1))))
    return report


REAL_METHODS = ("gradcam", "gradcam++", "layercam", "saliency", "integrated-gradients", "occlusion")
"""Methods scored on the real lesions (the last two are slow: scored on a sample)."""
SLOW_METHODS = ("integrated-gradients", "occlusion")


def real_tumour(
    model,
    dataset,
    *,
    model_name: str,
    class_names: tuple[str, ...],
    methods: tuple[str, ...] = REAL_METHODS,
    max_images: int | None = None,
    slow_images: int = 300,
    n_checks: int = 30,
    seed: int = 0,
    mirror: bool = False,
    on_progress=None,
) -> dict[str, Any]:
    """Localisation of real lesions, with baselines, mass on the body and family agreement.

    Args:
        model: A ``keras.Model`` for the dataset's images.
        dataset: A :class:`~medviz.data.dataset.Dataset` with lesion ``masks``
            (e.g. ``brain-tumor-boxes``); its classes are matched to
            ``class_names`` by name and may be fewer.
        model_name: How the report names the model.
        class_names: The model's class names, in output order.
        methods: Heatmap methods to score.
        max_images: Sample of images for the fast methods (``None``: all).
        slow_images: Sample for :data:`SLOW_METHODS`.
        n_checks: Images (seeded sample) for the mass and agreement checks.
        seed: Seed of the samples and bootstraps.
        mirror: Also score Grad-CAM and Grad-CAM++ mirror-averaged
            (:mod:`medviz.explain.mirror`; the app's default for models trained
            with left-right flips), as rows ``"<method>, mirror-averaged"``.
        on_progress: Optional ``(what: str) -> None`` told before each step.

    Returns:
        ``{"model", "data", "n_images", "localization": {method: summary},
        "mass_on_body": {...}, "agreement": {...}}`` (JSON-friendly).
    """
    from medviz.explain.checks import (
        MIN_AGREEMENT,
        MIN_FOREGROUND_MASS,
        family_agreement,
        foreground_mass,
    )
    from medviz.explain.engine import get_explainer
    from medviz.explain.trust import localization_score, with_model_classes

    data = with_model_classes(dataset, class_names)
    explainer = get_explainer(model)
    out: dict[str, Any] = {
        "model": model_name,
        "data": data.name,
        "n_images": int(data.masks.any(axis=(1, 2)).sum()) if data.masks is not None else 0,
        "localization": {},
    }
    for method in methods:
        if on_progress is not None:
            on_progress(f"localisation: {method}")
        limit = slow_images if method in SLOW_METHODS else max_images
        report = localization_score(
            explainer, data, method=method, split="all", fraction=None, max_images=limit, seed=seed
        )
        out["localization"][method] = report.summary()
    for method in ("gradcam", "gradcam++") if mirror else ():
        if on_progress is not None:
            on_progress(f"localisation: {method}, mirror-averaged")
        report = localization_score(
            explainer,
            data,
            method=method,
            split="all",
            fraction=None,
            max_images=max_images,
            seed=seed,
            mirror=True,
        )
        out["localization"][f"{method}, mirror-averaged"] = report.summary()

    if on_progress is not None:
        on_progress(f"mass on the body and family agreement on {n_checks} images")
    rng = np.random.default_rng(seed)
    lesions = np.flatnonzero(data.masks.any(axis=(1, 2)))
    picked = np.sort(rng.choice(lesions, size=min(n_checks, len(lesions)), replace=False))
    shares: dict[str, list[float]] = {}
    means, pairs = [], []
    for i in picked:
        agreement = family_agreement(explainer, data.images[i], class_index=int(data.labels[i]))
        means.append(agreement.mean)
        pairs.append(agreement.matrix)
        for method, heat in zip(agreement.methods, agreement.heatmaps, strict=True):
            mass = foreground_mass(data.images[i], heat)
            if mass.judged:
                shares.setdefault(method, []).append(mass.share)
    matrix = np.mean(pairs, axis=0)
    names = agreement.methods
    out["mass_on_body"] = {
        method: {
            "n": len(values),
            "median": float(np.median(values)),
            "failing": float(np.mean(np.asarray(values) < MIN_FOREGROUND_MASS)),
        }
        for method, values in shares.items()
    }
    out["agreement"] = {
        "n": len(means),
        "methods": list(names),
        "mean": float(np.mean(means)),
        "failing": float(np.mean(np.asarray(means) < MIN_AGREEMENT)),
        "pairs": {
            f"{names[a]} / {names[b]}": float(matrix[a, b])
            for a in range(len(names))
            for b in range(a + 1, len(names))
        },
    }
    return out


REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_FILE = REPO_ROOT / "bench" / "results" / "explain.json"
README_BEGIN = "<!-- explain:begin (python -m bench.explanations_readme --readme) -->"
README_END = "<!-- explain:end -->"
COMMAND = "python -m bench.explanations_readme --model models/microcalc-synthetic --readme"
"""The command of reports that do not record their own (``report["command"]``)."""


def readme_section(report: dict[str, Any]) -> str:
    """The README's table of explanation figures, every number read from ``report``."""

    def ci(values) -> str:
        return f"[95 % CI {values[0]:.3f}–{values[1]:.3f}]"

    lat, am, dream = report["gradcam_latency"], report["activation_max"], report["deep_dream"]
    loc, trust = report["localization"], report["trust"]
    lines = [
        f"Model `{report['model']}` on `{report['data']}`; written by "
        f"`{report.get('command', COMMAND)}` (data: `bench/results/explain.json`).",
        "",
        "| what | figure |",
        "|---|---|",
        f"| prediction + Grad-CAM, warm, p50 / p95 (n={lat['explainer']['n']}) "
        f"| {lat['explainer']['p50_ms']:.1f} / {lat['explainer']['p95_ms']:.1f} ms; naive "
        f"tf-keras-vis rebuilt per call p95 {lat['naive']['p95_ms']:.0f} ms "
        f"({lat['speedup_p50']:.0f}× slower at the median) |",
    ]
    for method, values in loc.items():
        lines.append(
            f"| pointing game, {method}, positive test patches (n={values['n']}, tolerance "
            f"{values['tolerance_px']:g} px) | {values['hit_rate']:.3f} "
            f"{ci(values['hit_rate_ci'])}; top-{values['fraction']:.0%} IoU "
            f"{values['mean_iou']:.3f}{_baseline_text(values)} |"
        )
    lines += [
        f"| activation maximisation, all classes / one class ({am['steps']} steps) "
        f"| {am['seconds_all_classes']:.1f} / {am['seconds_one_class']:.1f} s |",
        f"| deep dream ({dream['frames']} frames, layer `{dream['layer']}`) "
        f"| {dream['seconds']:.1f} s |",
        f"| model-randomisation check, Grad-CAM (median rank correlation, n={trust['n']}) "
        f"| {trust['sanity_correlation_median']:.3f} (near 0: the map depends on the weights) |",
        f"| deletion / insertion AUC, Grad-CAM (mean, n={trust['n']}) "
        f"| {trust['deletion_auc_mean']:.3f} / {trust['insertion_auc_mean']:.3f} |",
    ]
    if "real_tumour" in report:
        lines += ["", *_real_tumour_lines(report["real_tumour"])]
    return "\n".join(lines)


def _baseline_text(values: dict[str, Any]) -> str:
    """``"; image centre …, random point …"`` when the summary has baselines."""
    base = values.get("baselines")
    if not base:
        return ""
    return (
        f"; image centre {base['centre']['hit_rate']:.3f}, "
        f"random point {base['random']['hit_rate']:.3f}"
    )


def _real_tumour_lines(real: dict[str, Any]) -> list[str]:
    """The README rows of the real-lesion section."""

    def ci(values) -> str:
        return f"[{values[0]:.3f}–{values[1]:.3f}]"

    loc = real["localization"]
    first = next(iter(loc.values()))
    lines = [
        f"Real lesions: model `{real['model']}` on `{real['data']}` ({real['n_images']} MRI "
        "slices with a tumour box, classes matched by name). A hit is the map's maximum inside "
        f"the box grown by {first['tolerance']:.0%} of the side; IoU of as many top pixels as "
        "the box has. The baselines are scored on the same images with the same bootstrap. "
        "Mirror-averaged rows average each map with its mirror image's (`medviz.explain."
        "mirror`): the default heatmap in the app and `medviz localize` for models trained "
        "with left-right flips, as this one.",
        "",
        "| method (real tumours) | n | pointing game [95 % CI] | image centre | random point "
        "| box IoU | centre IoU |",
        "|---|---|---|---|---|---|---|",
    ]
    for method, v in loc.items():
        centre, rand = v["baselines"]["centre"], v["baselines"]["random"]
        lines.append(
            f"| {method} | {v['n']} | {v['hit_rate']:.3f} {ci(v['hit_rate_ci'])} "
            f"| {centre['hit_rate']:.3f} {ci(centre['hit_rate_ci'])} "
            f"| {rand['hit_rate']:.3f} | {v['mean_iou']:.3f} | {centre['mean_iou']:.3f} |"
        )
    mass, agree = real["mass_on_body"], real["agreement"]
    masses = ", ".join(
        f"{m} {v['median']:.2f} ({v['failing']:.0%} of maps below 0.5)" for m, v in mass.items()
    )
    pairs = ", ".join(f"{k} {v:+.2f}" for k, v in agree["pairs"].items())
    lines += [
        "",
        f"Share of the map's mass on the head (median over {agree['n']} slices): {masses}. "
        f"Agreement across method families (correlation of 8×8 cell means): mean "
        f"{agree['mean']:+.2f}, {agree['failing']:.0%} of slices below 0.3 ({pairs}).",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints one JSON document."""
    from medviz.cli_support import CliParser, print_json

    parser = CliParser(prog="python -m bench.explanations_readme", description=__doc__)
    parser.add_argument(
        "--model", help="model folder or .keras file (required unless --tumour-only)"
    )
    parser.add_argument("--data", default="synthetic-microcalc", help="dataset with masks")
    parser.add_argument("--out-dir", help="also write example PNGs here")
    parser.add_argument(
        "--tumour-model", help="also score real lesions with this model (e.g. models/brain-mri)"
    )
    parser.add_argument(
        "--tumour-data", default="brain-tumor-boxes", help="dataset with real lesion boxes/masks"
    )
    parser.add_argument(
        "--tumour-images", type=int, help="sample of real images for the fast methods (all)"
    )
    parser.add_argument(
        "--tumour-slow-images",
        type=int,
        default=300,
        help="sample for occlusion and integrated gradients (default 300)",
    )
    parser.add_argument(
        "--tumour-only",
        action="store_true",
        help="only the real-lesion section (with --readme: replaces that section of the saved "
        "results and rewrites the README block)",
    )
    parser.add_argument(
        "--readme",
        action="store_true",
        help=f"also save {RESULTS_FILE.relative_to(REPO_ROOT)} and rewrite README.md's block",
    )
    args = parser.parse_args(argv)

    import json
    import sys

    from medviz.data import load_dataset
    from medviz.errors import MedvizError
    from medviz.store import load_bundle

    if args.tumour_only and not args.tumour_model:
        parser.error("--tumour-only needs --tumour-model")
    if not args.tumour_only and not args.model:
        parser.error("--model is required (unless --tumour-only)")
    real = None
    if args.tumour_model:
        tumour = load_bundle(args.tumour_model)
        tumour_data = load_dataset(
            args.tumour_data,
            image_size=int(tumour.card.image_size),
            channels=int(tumour.card.channels),
        )
        from medviz.data.boxes import restrict_to_heldout

        # A box-guided model is scored on the boxed images it never trained on.
        tumour_data, _ = restrict_to_heldout(tumour_data, tumour.card.training)
        from medviz.explain.mirror import mirror_default

        real = real_tumour(
            tumour.model,
            tumour_data,
            mirror=mirror_default(tumour.card.training),
            model_name=str(args.tumour_model),
            class_names=tuple(tumour.card.class_names),
            max_images=args.tumour_images,
            slow_images=args.tumour_slow_images,
            on_progress=lambda what: print(what, file=sys.stderr),
        )
    if args.tumour_only:
        if not args.readme:
            print_json(real)
            return 0
        try:
            report = json.loads(RESULTS_FILE.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise MedvizError(
                f"--tumour-only --readme updates {RESULTS_FILE}, which cannot be read ({exc}); "
                "run without --tumour-only first"
            ) from exc
    else:
        bundle = load_bundle(args.model)
        dataset = load_dataset(
            args.data, image_size=int(bundle.card.image_size), channels=int(bundle.card.channels)
        )
        out = Path(args.out_dir) if args.out_dir else None
        report = run(bundle.model, dataset, out_dir=out)
    if real is not None:
        import re

        report["real_tumour"] = real
        # The synthetic section's model: this run's, or the one of the saved report.
        earlier = re.search(r"--model (\S+)", str(report.get("command", COMMAND)))
        model_arg = args.model or (earlier.group(1) if earlier else "models/microcalc-synthetic")
        report["command"] = (
            f"python -m bench.explanations_readme --model {model_arg} "
            f"--tumour-model {args.tumour_model} --readme"
        )
    if args.readme:
        from medviz.docblocks import update_file
        from medviz.store import atomic_write_json

        atomic_write_json(RESULTS_FILE, report)
        update_file(REPO_ROOT / "README.md", README_BEGIN, README_END, readme_section(report))
    print_json(report)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
