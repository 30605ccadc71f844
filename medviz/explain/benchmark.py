"""Measure the explanation stack on a trained model: ``python -m medviz.explain.benchmark``.

Reports, as one JSON document on stdout:

* prediction + Grad-CAM latency, warm, through a reused :class:`Explainer`
  versus the naive way (tf-keras-vis objects rebuilt on every call, see
  :func:`~medviz.explain.cams.reference_cam`), p50/p95 and the speed-up;
* activation maximisation (both classes of a binary model, default steps)
  and deep dream (default settings) wall times;
* the pointing-game hit rate and top-5 % IoU of Grad-CAM, Grad-CAM++ and
  LayerCAM on the positive test images of a dataset with masks;
* the median model-randomisation correlation and mean deletion/insertion
  AUCs of Grad-CAM on a few positive test images.

``--out-dir`` also writes the activation-maximisation images, a deep-dream
strip and a Grad-CAM overlay as PNGs (e.g. for the README).
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
    from medviz.explain.cams import reference_cam
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


REPO_ROOT = Path(__file__).resolve().parents[2]
RESULTS_FILE = REPO_ROOT / "bench" / "results" / "explain.json"
README_BEGIN = "<!-- explain:begin (python -m medviz.explain.benchmark --readme) -->"
README_END = "<!-- explain:end -->"
COMMAND = "python -m medviz.explain.benchmark --model models/microcalc-synthetic --readme"


def readme_section(report: dict[str, Any]) -> str:
    """The README's table of explanation figures, every number read from ``report``."""

    def ci(values) -> str:
        return f"[95 % CI {values[0]:.3f}–{values[1]:.3f}]"

    lat, am, dream = report["gradcam_latency"], report["activation_max"], report["deep_dream"]
    loc, trust = report["localization"], report["trust"]
    lines = [
        f"Model `{report['model']}` on `{report['data']}`; written by `{COMMAND}` "
        "(data: `bench/results/explain.json`).",
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
            f"{values['tolerance_px']} px) | {values['hit_rate']:.3f} {ci(values['hit_rate_ci'])};"
            f" top-{values['fraction']:.0%} IoU {values['mean_iou']:.3f} |"
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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; prints one JSON document."""
    from medviz.cli_support import CliParser, print_json

    parser = CliParser(prog="python -m medviz.explain.benchmark", description=__doc__)
    parser.add_argument("--model", required=True, help="model folder or .keras file")
    parser.add_argument("--data", default="synthetic-microcalc", help="dataset with masks")
    parser.add_argument("--out-dir", help="also write example PNGs here")
    parser.add_argument(
        "--readme",
        action="store_true",
        help=f"also save {RESULTS_FILE.relative_to(REPO_ROOT)} and rewrite README.md's block",
    )
    args = parser.parse_args(argv)

    from medviz.store import load_bundle

    bundle = load_bundle(args.model)
    from medviz.data import load_dataset

    dataset = load_dataset(
        args.data, image_size=int(bundle.card.image_size), channels=int(bundle.card.channels)
    )
    out = Path(args.out_dir) if args.out_dir else None
    report = run(bundle.model, dataset, out_dir=out)
    if args.readme:
        from medviz.docblocks import update_file
        from medviz.store import atomic_write_json

        atomic_write_json(RESULTS_FILE, report)
        update_file(REPO_ROOT / "README.md", README_BEGIN, README_END, readme_section(report))
    print_json(report)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
