"""Training throughput: MedViz's pipeline vs the notebook's generator vs the compute bound.

The contenders train the *same* architecture (``medviz.zoo.DEFAULT_ARCH``,
built with the same seed) on the *same* images and labels, with the same
batch size:

* ``medviz``: :func:`medviz.training.make_pipeline` (uint8 in memory → shuffle →
  batch → Keras preprocessing-layer augmentation → prefetch) fed to ``fit``, as
  :func:`medviz.training.train` does, with the XLA setting the library picks on
  this machine (``TrainConfig.jit_compile="auto"``: :mod:`medviz.autotune`);
* ``notebook``: :class:`bench.notebook.NotebookSequence`, the source work's
  per-image ``ImageDataGenerator`` augmentation in NumPy/SciPy, fed to ``fit``
  and compiled as a user writes it: plain Keras defaults (``jit_compile="auto"``,
  which Keras resolves to no XLA on a CPU);
* ``bound`` and ``bound_xla``: the model's own ``train_step`` compiled as ``fit``
  compiles it, without and with XLA, run over batches already materialised as
  float32 tensors: no augmentation, no input pipeline. The faster of the two is
  the best bound; nothing that feeds the model can beat it.

Epochs are timed round-robin (contender order rotating every round) so that
a load spike from another process hits every contender alike; the first
``warmup_epochs`` rounds (tracing, XLA compilation, thread pools) are dropped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from bench.common import Settings, summarize

CONTENDERS = ("medviz", "notebook", "bound", "bound_xla")


def train_config(*, jit_compile: bool | str | None = None):
    """The library's default :class:`~medviz.training.TrainConfig` (XLA as given)."""
    from medviz.training import TrainConfig

    config = TrainConfig()
    return config if jit_compile is None else replace(config, jit_compile=jit_compile)


def library_jit(
    x: np.ndarray, n_classes: int, *, batch_size: int, epochs: int, setting: bool | str = "auto"
):
    """The :class:`~medviz.autotune.JitDecision` ``train`` would make for this race."""
    from medviz.training import choose_jit

    config = replace(train_config(jit_compile=setting), batch_size=batch_size)
    shape = tuple(int(v) for v in x.shape[1:])
    return choose_jit(config, shape, n_classes, total_steps=epochs * math.ceil(len(x) / batch_size))


def compiled_model(input_shape: tuple[int, int, int], n_classes: int, *, config):
    """The default architecture, seeded by ``config.seed``, compiled as ``train`` does."""
    from medviz.training import compile_for_training
    from medviz.zoo import build_model

    model = build_model(config.arch, input_shape, n_classes, seed=config.seed)
    # The bench's configs use the constant (plateau) rate, which needs no step count.
    compile_for_training(model, config, steps_per_epoch=1)
    return model


class _EpochClock:
    """Keras callback recording the wall time of each epoch (between begin and end)."""

    def __init__(self) -> None:
        import keras

        class Clock(keras.callbacks.Callback):
            def __init__(self, owner: _EpochClock) -> None:
                super().__init__()
                self.owner = owner

            def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
                self.owner.started = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
                self.owner.seconds = time.perf_counter() - self.owner.started

        self.started = 0.0
        self.seconds = 0.0
        self.callback = Clock(self)


def _fit_epoch(model, data) -> Callable[[], float]:
    clock = _EpochClock()

    def epoch() -> float:
        model.fit(data, epochs=1, verbose=0, callbacks=[clock.callback], shuffle=False)
        return clock.seconds

    return epoch


def _bound_epoch(model, x: np.ndarray, y: np.ndarray, n_classes: int, batch_size: int):
    import tensorflow as tf

    batches = [
        (
            tf.constant(x[i : i + batch_size].astype(np.float32)),
            tf.one_hot(tf.constant(y[i : i + batch_size]), n_classes),
        )
        for i in range(0, len(x), batch_size)
    ]

    # Exactly what fit() compiles per step (Keras' one_step_on_data), minus the iterator.
    step = tf.function(
        lambda xb, yb: model.train_step((xb, yb)),
        reduce_retracing=True,
        jit_compile=model.jit_compile is True,
    )

    def epoch() -> float:
        started = time.perf_counter()
        logs: dict[str, Any] = {}
        for xb, yb in batches:
            logs = step(xb, yb)
        float(logs["loss"])  # wait for the last step
        return time.perf_counter() - started

    return epoch


def contender_epochs(
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    *,
    names: Sequence[str],
    batch_size: int,
    augment,
    seed: int = 0,
    jit_compile: bool | None = None,
) -> dict[str, Callable[[], float]]:
    """One ``epoch() -> seconds`` callable per contender, each with its own identical model.

    Args:
        x: ``(N, S, S, C)`` uint8 images.
        y: ``(N,)`` integer labels.
        n_classes: Number of classes.
        names: Contenders to build, from :data:`CONTENDERS`.
        batch_size: Images per step.
        augment: :class:`~medviz.augment.AugmentConfig` of ``medviz`` and ``notebook``.
        seed: Seeds weights, shuffling and augmentation of every contender.
        jit_compile: XLA of ``medviz`` (``None``: off). ``notebook`` always
            compiles with plain Keras' ``"auto"``, ``bound`` without and
            ``bound_xla`` with XLA.
    """
    from bench.notebook import NotebookSequence
    from medviz.training import make_pipeline

    xla_of = {"medviz": bool(jit_compile), "notebook": "auto", "bound": False, "bound_xla": True}
    shape = tuple(int(v) for v in x.shape[1:])
    out: dict[str, Callable[[], float]] = {}
    for name in names:
        if name not in xla_of:
            raise ValueError(f"unknown contender {name!r}; choose from {CONTENDERS}")
        config = train_config(jit_compile=xla_of[name])
        model = compiled_model(shape, n_classes, config=config)  # type: ignore[arg-type]
        if name == "medviz":
            data = make_pipeline(
                x, y, n_classes, batch_size=batch_size, augment=augment, shuffle=True, seed=seed
            )
            out[name] = _fit_epoch(model, data)
        elif name == "notebook":
            data = NotebookSequence(
                x, y, n_classes, batch_size=batch_size, augment=augment, seed=seed
            )
            out[name] = _fit_epoch(model, data)
        else:
            out[name] = _bound_epoch(model, x, y, n_classes, batch_size)
    return out


def race(
    epochs: dict[str, Callable[[], float]],
    *,
    n_images: int,
    warmup: int,
    repeats: int,
) -> dict[str, dict[str, Any]]:
    """Time the contenders' epochs round-robin; images/s statistics per contender.

    Returns:
        ``{name: {"images_per_s": summarize(...), "epoch_s": summarize(...),
        "warmup_epoch_s": [...]}}``.
    """
    names = list(epochs)
    seconds: dict[str, list[float]] = {n: [] for n in names}
    first: dict[str, list[float]] = {n: [] for n in names}
    for round_ in range(warmup + repeats):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        for name in order:
            value = epochs[name]()
            (first if round_ < warmup else seconds)[name].append(value)
    return {
        n: {
            "images_per_s": summarize([n_images / s for s in seconds[n]]),
            "epoch_s": summarize(seconds[n]),
            "warmup_epoch_s": [round(s, 3) for s in first[n]],
        }
        for n in names
    }


def pipeline_only(
    x: np.ndarray, y: np.ndarray, n_classes: int, *, batch_size: int, augment, seed: int = 0
) -> dict[str, float]:
    """Images/s of each input pipeline alone, no model (the profile's producer side)."""
    from bench.notebook import NotebookSequence
    from medviz.training import make_pipeline

    out = {}
    ds = make_pipeline(
        x, y, n_classes, batch_size=batch_size, augment=augment, shuffle=True, seed=seed
    )
    for _ in ds:  # warm: traces the map function
        pass
    started = time.perf_counter()
    for _ in ds:
        pass
    out["medviz_pipeline_images_per_s"] = len(x) / (time.perf_counter() - started)
    seq = NotebookSequence(x, y, n_classes, batch_size=batch_size, augment=augment, seed=seed)
    started = time.perf_counter()
    for i in range(len(seq)):
        seq[i]
    out["notebook_generator_images_per_s"] = len(x) / (time.perf_counter() - started)
    return out


def training_data(settings: Settings, *, image_size: int | None = None, n_images: int = 0):
    """``(x, y, n_classes)``: the embedded dataset's train split (seed 0), resized, truncated."""
    from medviz.data import DEFAULT_DATASET, load_dataset
    from medviz.training import resize_images

    size = image_size or settings.image_size
    data = load_dataset(DEFAULT_DATASET, seed=0)
    train = data.split("train")
    n = n_images or settings.train_images or len(train.images)
    x = resize_images(train.images[:n], size)
    return x, train.labels[:n], data.n_classes


def run(settings: Settings) -> dict[str, Any]:
    """The training-throughput section."""
    from medviz.augment import AugmentConfig
    from medviz.zoo import DEFAULT_ARCH

    x, y, n_classes = training_data(settings)
    augment = AugmentConfig()
    setting = "auto" if settings.jit < 0 else bool(settings.jit)
    jit = library_jit(
        x,
        n_classes,
        batch_size=settings.batch_size,
        epochs=settings.warmup_epochs + settings.repeats,
        setting=setting,
    )
    names = CONTENDERS if settings.jit_ab else ("medviz", "notebook", "bound")
    epochs = contender_epochs(
        x,
        y,
        n_classes,
        names=names,
        jit_compile=jit.jit_compile,
        batch_size=settings.batch_size,
        augment=augment,
    )
    results = race(epochs, n_images=len(x), warmup=settings.warmup_epochs, repeats=settings.repeats)
    med = {n: results[n]["images_per_s"]["median"] for n in names}
    best_bound = max((n for n in names if n.startswith("bound")), key=lambda n: med[n])
    report: dict[str, Any] = {
        "arch": DEFAULT_ARCH,
        "image_shape": list(x.shape[1:]),
        "images_per_epoch": len(x),
        "batch_size": settings.batch_size,
        "augment": augment.to_dict(),
        "jit_compile": jit.jit_compile,
        "jit_reason": jit.reason,
        "warmup_epochs": settings.warmup_epochs,
        "repeats": settings.repeats,
        "contenders": results,
        "images_per_s": med,
        "best_bound": best_bound,
        "medviz_vs_plain_keras": med["medviz"] / med["notebook"],
        "medviz_vs_best_bound": med["medviz"] / med[best_bound],
    }
    report["targets"] = {
        "medviz_vs_best_bound>=0.95": report["medviz_vs_best_bound"] >= 0.95,
        "medviz_vs_plain_keras>=1": report["medviz_vs_plain_keras"] >= 1.0,
    }
    # Profile: what one step costs on each side of the pipeline.
    producers = pipeline_only(x, y, n_classes, batch_size=settings.batch_size, augment=augment)
    step_ms = {n: 1000.0 * settings.batch_size / med[n] for n in names}
    report["profile"] = {
        **producers,
        "step_ms": step_ms,
        "augment_ms_per_batch_medviz_alone": 1000.0
        * settings.batch_size
        / producers["medviz_pipeline_images_per_s"],
        "augment_ms_per_batch_notebook_alone": 1000.0
        * settings.batch_size
        / producers["notebook_generator_images_per_s"],
    }
    return report
