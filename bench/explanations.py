"""Cost of every explanation method on the default shipped model, warm, one 64×64 image.

Heatmap methods are run through :func:`medviz.explain.methods.run_method` with
their default options (the Explain page's defaults), after one warm call.
Activation maximisation and deep dream build their optimisation function per
call (that tracing is part of what the user waits for): both the total and the
per-step time (from the ``on_step`` callback's timestamps, first step excluded)
are reported.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from bench.common import DEFAULT_SHIPPED_MODEL, Settings, latency_summary, time_calls


def _stepped(run) -> dict[str, Any]:
    stamps: list[float] = []
    started = time.perf_counter()
    result = run(lambda step, total, loss: stamps.append(time.perf_counter()))
    total = time.perf_counter() - started
    steps = np.diff(np.asarray([started, *stamps]))
    per_step = steps[1:] if len(steps) > 1 else steps
    return {
        "total_s": total,
        "steps": len(stamps),
        "first_step_ms": float(steps[0] * 1000.0) if len(steps) else None,
        "per_step_ms_median": float(np.median(per_step) * 1000.0) if len(per_step) else None,
        "result": result,
    }


def run(settings: Settings) -> dict[str, Any]:
    """The explanation-cost section."""
    from medviz.data import DEFAULT_DATASET, load_dataset
    from medviz.explain import activation_maximization, deep_dream, get_explainer
    from medviz.explain.methods import METHODS, run_method
    from medviz.store import load_bundle

    bundle = load_bundle(DEFAULT_SHIPPED_MODEL)
    explainer = get_explainer(bundle.model)
    test = load_dataset(DEFAULT_DATASET, seed=0, limit_per_class=20).split("test")
    image = test.images[int(np.flatnonzero(test.labels != 0)[0])]
    methods: dict[str, Any] = {}
    for key, info in METHODS.items():
        try:
            seconds = time_calls(
                lambda _, k=key: run_method(explainer, image, method=k),
                calls=settings.method_calls,
                warmup=1,
            )
            methods[key] = {**latency_summary(seconds), "title": info.title, "cost": info.cost}
        except Exception as error:  # one method failing keeps the others
            methods[key] = {"error": f"{type(error).__name__}: {error}"}

    classes = list(range(explainer.n_classes))
    steps = settings.am_steps or None
    am = _stepped(
        lambda cb: activation_maximization(explainer, class_index=classes, steps=steps, on_step=cb)
    )
    am_result = am.pop("result")
    am["classes"] = len(classes)
    am["reported_seconds"] = am_result.seconds
    dream = _stepped(
        lambda cb: deep_dream(
            explainer, image, steps_per_octave=settings.dream_steps or None, on_step=cb
        )
    )
    dream_result = dream.pop("result")
    dream["frames"] = len(dream_result.frames)
    dream["layer"] = dream_result.layer
    return {
        "model": bundle.card.name,
        "input": list(explainer.input_shape),
        "methods": methods,
        "activation_max": am,
        "deep_dream": dream,
    }
