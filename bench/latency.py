"""Interactive latency of one uploaded image: decode + preprocess + predict + Grad-CAM.

The fast path is the app's own Classify path, imported, not rewritten:
:func:`medviz.services.uploads.decode_upload` then :func:`medviz.services.predict.classify`
(card preprocessing, cached compiled :class:`~medviz.explain.Explainer`,
calibrated prediction, Grad-CAM of the decided class, OOD score), after
:func:`medviz.services.predict.warm_up` as the app does on model load. The naive path
decodes and preprocesses the same way, predicts with ``model(x)``, and computes
Grad-CAM through tf-keras-vis rebuilt on every call
(:func:`bench.reference_cam.reference_cam`); the reused path is the same with one
tf-keras-vis instance built once and called every time
(:class:`bench.reference_cam.ReferenceCam`), as a careful notebook would. The
explanation-only comparison of :func:`bench.explanations_readme.latency` is reported
beside it.
"""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np

from bench.common import DEFAULT_SHIPPED_MODEL, Settings, latency_summary, time_calls

MAX_UPLOAD_MB = 50


def upload_png(size: int, *, seed: int = 5) -> bytes:
    """A ``size``×``size`` grey PNG (a positive synthetic patch, upscaled), encoded in memory."""
    from PIL import Image

    from medviz.data.synthetic import generate_microcalc

    data = generate_microcalc(8, image_size=64, seed=seed)
    pixels = data.images[int(np.argmax(data.labels))][..., 0]
    buffer = io.BytesIO()
    Image.fromarray(pixels).resize((size, size), Image.BILINEAR).save(buffer, format="PNG")
    return buffer.getvalue()


def in_memory_bundle(model, *, name: str, image_size: int, channels: int):
    """A :class:`~medviz.store.ModelBundle` for a model built in memory (no reference stats)."""
    from medviz.store import ModelBundle, ModelCard

    card = ModelCard(
        name=name,
        class_names=("normal", "abnormal"),
        image_size=image_size,
        channels=channels,
        arch=name,
    )
    return ModelBundle(model=model, card=card)


def measure(
    bundle,
    png: bytes,
    *,
    calls: int,
    naive_calls: int,
    explain_only: bool = True,
    reused: bool = True,
) -> dict[str, Any]:
    """Warm app-path latency vs naive latency of ``png`` through ``bundle``.

    Args:
        bundle: The model and its card.
        png: The encoded upload.
        calls: Timed fast-path calls.
        naive_calls: Timed naive calls.
        explain_only: Also run :func:`bench.explanations_readme.latency` (Grad-CAM
            without decoding) on the model input.
        reused: Also time the reused tf-keras-vis instance (``calls`` calls).

    Returns:
        ``{"p50_ms", "p95_ms", ..., "naive": {...}, "speedup_vs_naive",
        "reused_tf_keras_vis": {...}, "speedup_vs_reused_tf_keras_vis", "breakdown_ms": {...}}``.
    """
    from bench.explanations_readme import latency as explain_latency
    from bench.reference_cam import ReferenceCam, reference_cam
    from medviz.data import decode_image, to_model_input
    from medviz.explain import get_explainer
    from medviz.services.predict import classify, warm_up
    from medviz.services.uploads import decode_upload

    card, model = bundle.card, bundle.model
    started = time.perf_counter()
    explainer = get_explainer(model)
    warm_up(explainer, card)
    warm_up_s = time.perf_counter() - started

    def app_call(_: int) -> None:
        decoded = decode_upload(png, name="upload.png", max_mb=MAX_UPLOAD_MB)
        classify(bundle, explainer, decoded, name="upload.png")

    def naive_call(_: int, cam=None) -> None:
        decoded = decode_image(png, name="upload.png")
        x = to_model_input(decoded.pixels, image_size=card.image_size, channels=card.channels)
        probs = np.asarray(model(x[None].astype(np.float32), training=False))
        predicted = int(np.argmax(probs[0]))
        if cam is None:
            reference_cam(model, x, method="gradcam", class_index=predicted)
        else:
            cam(x, class_index=predicted)

    started = time.perf_counter()
    app_call(0)
    first_ms = (time.perf_counter() - started) * 1000.0
    fast = latency_summary(time_calls(app_call, calls=calls, warmup=2))
    naive = latency_summary(time_calls(naive_call, calls=naive_calls, warmup=1))
    reused_summary = None
    if reused:
        started = time.perf_counter()
        reused_cam = ReferenceCam(model, method="gradcam")
        build_s = time.perf_counter() - started
        reused_summary = latency_summary(
            time_calls(lambda i: naive_call(i, cam=reused_cam), calls=calls, warmup=2)
        )
        reused_summary["build_s"] = build_s

    # Where the fast path's time goes.
    decoded = decode_upload(png, name="upload.png", max_mb=MAX_UPLOAD_MB)
    x_uint8 = to_model_input(decoded.pixels, image_size=card.image_size, channels=card.channels)
    x = explainer.prepare(x_uint8)
    n = max(5, calls // 3)
    breakdown = {
        "decode_png": latency_summary(
            time_calls(lambda _: decode_upload(png, name="u.png", max_mb=MAX_UPLOAD_MB), calls=n)
        )["p50_ms"],
        "to_model_input": latency_summary(
            time_calls(
                lambda _: to_model_input(
                    decoded.pixels, image_size=card.image_size, channels=card.channels
                ),
                calls=n,
            )
        )["p50_ms"],
        "predict": latency_summary(time_calls(lambda _: explainer.predict(x), calls=n))["p50_ms"],
        "gradcam": latency_summary(
            time_calls(lambda _: explainer.explain(x_uint8, method="gradcam"), calls=n)
        )["p50_ms"],
    }
    explained = (
        explain_latency(
            model,
            x_uint8[None],
            repeats=max(10, calls // 2),
            naive_repeats=max(1, naive_calls // 2),
        )
        if explain_only
        else None
    )
    return {
        "model": card.name,
        "arch": card.arch,
        "input": [card.image_size, card.image_size, card.channels],
        "upload_bytes": len(png),
        **fast,
        "first_call_after_warm_up_ms": first_ms,
        "warm_up_s": warm_up_s,
        "naive": naive,
        "speedup_vs_naive": naive["p50_ms"] / fast["p50_ms"],
        "speedup_vs_naive_p95": naive["p95_ms"] / fast["p95_ms"],
        "reused_tf_keras_vis": reused_summary,
        "speedup_vs_reused_tf_keras_vis": (
            reused_summary["p50_ms"] / fast["p50_ms"] if reused_summary else None
        ),
        "breakdown_p50_ms": breakdown,
        "explain_only": explained,
    }


def transfer_model(size: int):
    """A flat MobileNetV2 transfer model from the zoo, random weights (offline), grey input."""
    from medviz.zoo import build_model

    return build_model("mobilenetv2", (size, size, 1), 2, seed=0, pretrained=False)


def run(settings: Settings) -> dict[str, Any]:
    """The interactive-latency section (default shipped model and a transfer model)."""
    from medviz.store import load_bundle

    png = upload_png(settings.upload_size)
    out: dict[str, Any] = {"upload": f"{settings.upload_size}x{settings.upload_size} grey PNG"}
    bundle = load_bundle(DEFAULT_SHIPPED_MODEL)
    out["default"] = measure(
        bundle, png, calls=settings.latency_calls, naive_calls=settings.naive_calls
    )
    out["default"]["targets"] = {
        "p95_ms<=150": out["default"]["p95_ms"] <= 150.0,
        "speedup_vs_naive>=3": out["default"]["speedup_vs_naive"] >= 3.0,
    }
    size = settings.transfer_size
    transfer = in_memory_bundle(
        transfer_model(size), name="mobilenetv2", image_size=size, channels=1
    )
    out["transfer"] = measure(
        transfer,
        png,
        calls=settings.latency_calls,
        naive_calls=settings.naive_calls,
        explain_only=False,
        reused=False,
    )
    out["transfer"]["note"] = (
        f"MobileNetV2 flat transfer model at {size}x{size}, random weights (offline build); "
        "latency does not depend on the weights"
    )
    return out
