"""Scaling with image size and dataset size.

Image size: training throughput and interactive latency at 28…224 px.
Dataset size: peak memory and throughput of training on 2,000 vs 20,000
images, streamed from a disk cache and held in memory (:mod:`bench.stream_scaling`).

Throughput: MedViz's pipeline and the compute bound (as in :mod:`bench.throughput`)
on the embedded data resized to each side, with about the same number of pixels
per timed epoch at every size. Latency: the app path of :mod:`bench.latency`
on a default-architecture model built at each size (random weights: latency
does not depend on them), for the same uploaded PNG.
"""

from __future__ import annotations

from typing import Any

from bench import latency, stream_scaling, throughput
from bench.common import Settings


def run(settings: Settings) -> dict[str, Any]:
    """The scaling section."""
    from medviz.augment import AugmentConfig
    from medviz.zoo import DEFAULT_ARCH, build_model

    png = latency.upload_png(settings.upload_size)
    out: dict[str, Any] = {"arch": DEFAULT_ARCH, "sizes": {}}
    for size in settings.sizes:
        entry: dict[str, Any] = {}
        try:
            n = max(2 * settings.batch_size, settings.scaling_pixels // (size * size))
            x, y, n_classes = throughput.training_data(settings, image_size=size, n_images=n)
            repeats = max(2, settings.repeats // 2)
            jit = throughput.library_jit(
                x,
                n_classes,
                batch_size=settings.batch_size,
                epochs=settings.warmup_epochs + repeats,
                setting=settings.jit_compile,
            )
            epochs = throughput.contender_epochs(
                x,
                y,
                n_classes,
                names=("medviz", "bound"),
                batch_size=settings.batch_size,
                augment=AugmentConfig(),
                jit_compile=jit.jit_compile,
            )
            race = throughput.race(
                epochs, n_images=len(x), warmup=settings.warmup_epochs, repeats=repeats
            )
            med = {k: v["images_per_s"]["median"] for k, v in race.items()}
            entry["train_images_per_epoch"] = len(x)
            entry["images_per_s"] = med
            entry["images_per_s_rel_spread"] = {
                k: v["images_per_s"]["rel_spread"] for k, v in race.items()
            }
            entry["medviz_vs_bound"] = med["medviz"] / med["bound"]
            entry["jit_compile"] = jit.jit_compile
        except Exception as error:  # one size failing keeps the others
            entry["throughput_error"] = f"{type(error).__name__}: {error}"
        try:
            model = build_model(DEFAULT_ARCH, (size, size, 1), 2, seed=0)
            bundle = latency.in_memory_bundle(
                model, name=f"{DEFAULT_ARCH}-{size}", image_size=size, channels=1
            )
            measured = latency.measure(
                bundle,
                png,
                calls=settings.latency_calls,
                naive_calls=max(1, settings.naive_calls // 2),
                explain_only=False,
                reused=False,
            )
            entry["latency"] = {
                k: measured[k] for k in ("p50_ms", "p95_ms", "speedup_vs_naive", "breakdown_p50_ms")
            }
            entry["latency"]["naive_p50_ms"] = measured["naive"]["p50_ms"]
        except Exception as error:
            entry["latency_error"] = f"{type(error).__name__}: {error}"
        out["sizes"][str(size)] = entry
    from medviz.locations import cache_dir

    try:
        out["datasets"] = stream_scaling.run(settings, root=cache_dir() / "bench")
    except Exception as error:  # keeps the image-size rows
        out["datasets"] = {"error": f"{type(error).__name__}: {error}"}
    return out
