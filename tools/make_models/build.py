"""Train, package and measure the recipes' models (the public API of :mod:`medviz` only).

A :class:`~tools.make_models.recipes.Recipe` is trained with
:func:`medviz.training.train`, whose ``TrainConfig.precise_bn`` recomputes the
BatchNorm statistics on the un-augmented training images after training, before
:func:`medviz.pipeline.package_result` fits the temperature and threshold,
evaluates, stress-tests and writes the card, so calibration sees the final
statistics. Nothing of :mod:`medviz` is patched or re-implemented here; the
tool adds measurements (accuracy intervals, footprint) to the card. A
:class:`~tools.make_models.recipes.CliRecipe`
runs its ``python -m medviz …`` command in a subprocess whose working folder is
the output root, so the relative paths of the recorded command hold.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from tools.make_models.docs import card_dict, render_readme
from tools.make_models.recipes import (
    REPO_ROOT,
    THIS_COMMAND,
    CliRecipe,
    Recipe,
    get_recipe,
    model_dir,
    relative,
)

# --- measurements beyond the card's ------------------------------------------------------------


def accuracy_ci(
    y_true: np.ndarray, y_pred: np.ndarray, *, n_bootstrap: int = 1000, seed: int = 0
) -> list[float]:
    """Stratified bootstrap 95 % percentile interval of the accuracy.

    :mod:`medviz.metrics` bootstraps only the AUC, with a private resampler, so
    this interval keeps its own (seeded, per-class resampling: the figures in
    the shipped cards were made with it).

    Args:
        y_true: ``(N,)`` true labels.
        y_pred: ``(N,)`` decided labels.
        n_bootstrap: Resamples.
        seed: Seed of the resampling.

    Returns:
        ``[low, high]``.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rng = np.random.default_rng(seed)
    correct = y_true == y_pred
    groups = [np.flatnonzero(y_true == c) for c in np.unique(y_true)]
    samples = np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        hits = sum(correct[rng.choice(g, len(g), replace=True)].sum() for g in groups)
        samples[b] = hits / len(y_true)
    lo, hi = np.percentile(samples, [2.5, 97.5])
    return [float(lo), float(hi)]


def cpu_latency_ms(model, image_size: int, channels: int, *, repeats: int = 20) -> float:
    """Median milliseconds for one image through ``model`` on this machine (batch of 1)."""
    x = np.full((1, image_size, image_size, channels), 128.0, dtype=np.float32)
    model(x, training=False)  # build/trace
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(x, training=False)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def duplicate_summary(data) -> dict[str, int]:
    """Exact-duplicate groups (by file digest) and whether any crosses a split (computed)."""
    if data.provenance is None:
        return {}
    digests = np.asarray(data.provenance.digests)
    _, inverse, counts = np.unique(digests, return_inverse=True, return_counts=True)
    crossing = 0
    for group in np.flatnonzero(counts > 1):
        if len(set(data.splits[inverse == group].tolist())) > 1:
            crossing += 1
    return {
        "duplicate_groups": int((counts > 1).sum()),
        "redundant_copies": int((counts - 1).sum()),
        "groups_crossing_splits": crossing,
    }


def load_recipe_data(recipe: Recipe, *, limit_per_class: int | None = None):
    """The recipe's dataset at its input size, with display class names and lesion images.

    Through :func:`medviz.data.recipe.load_recipe_data`, as ``medviz train --config``.
    """
    from medviz.data.recipe import DataRecipe
    from medviz.data.recipe import load_recipe_data as load

    data = DataRecipe(recipe.data, recipe.channels, recipe.class_names, recipe.lesion_data)
    return load(
        data, image_size=recipe.image_size, seed=recipe.config.seed, limit_per_class=limit_per_class
    )


def inference_model(model):
    """The same layers and weights as a fresh, uncompiled model: saves without optimizer state.

    A compiled model's ``.keras`` file carries Adam's two moment tensors per
    weight, three times the weights themselves; MedViz loads with
    ``compile=False`` and never needs them.
    """
    import keras

    return keras.Model(model.input, model.output, name=model.name)


# --- building ----------------------------------------------------------------------------------


def log_line(message: str) -> None:
    """Progress on stderr, time-stamped."""
    sys.stderr.write(f"[make_models {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def reproduce_line(recipe: Recipe) -> str:
    """How the card says to reproduce ``recipe`` besides its own command."""
    if recipe.shipped:
        return f"make models (runs {THIS_COMMAND}: every shipped model)"
    return f"{THIS_COMMAND} --bench"


def saved_result(recipe: Recipe, folder: Path | None = None, *, root: Path = REPO_ROOT):
    """The saved model of ``recipe`` with its recorded training facts, as a ``TrainResult``.

    Lets :func:`build_recipe` re-package a model (calibration, threshold,
    evaluation, stress test, card) after the packaging rules changed, without
    training it again.

    Raises:
        SystemExit: The folder has no model or card, or the card is of another recipe.
    """
    from medviz.errors import MedvizError
    from medviz.store import load_bundle
    from medviz.training import TrainConfig, TrainResult

    folder = Path(folder) if folder is not None else model_dir(recipe.name, root=root)
    try:
        bundle = load_bundle(folder)
    except MedvizError as err:
        raise SystemExit(f"error: cannot re-package {recipe.name}: {err}") from None
    facts = dict(bundle.card.training)
    config = TrainConfig.from_dict(facts.get("config", {}))
    if str(facts.get("batchnorm_statistics", "")).startswith("recomputed"):
        # Cards written before precise BN was a TrainConfig option record it only here.
        config = replace(config, precise_bn=True)
    if config != recipe.config:
        raise SystemExit(
            f"error: {folder} was trained with another config than recipe {recipe.name}; "
            "train it again instead of re-packaging"
        )
    counts = facts.get("counts", {}).get("train", {})
    return TrainResult(
        model=bundle.model,
        history=facts.get("history", {}),
        best_epoch=int(facts.get("best_epoch", 1)) - 1,
        best_value=float("nan"),
        stopped_by_user=bool(facts.get("stopped_by_user", False)),
        stopped_early=bool(facts.get("stopped_early", False)),
        seconds=float(facts.get("seconds", 0.0)),
        config=config,
        class_names=tuple(bundle.card.class_names),
        input_shape=(bundle.card.image_size, bundle.card.image_size, bundle.card.channels),
        train_counts={str(k): int(v) for k, v in counts.items()},
    )


def build_recipe(
    recipe: Recipe,
    *,
    out: Path | None = None,
    root: Path = REPO_ROOT,
    n_bootstrap: int = 1000,
    limit_per_class: int | None = None,
    log: Callable[[str], None] = log_line,
    trained=None,
) -> dict[str, Any]:
    """Train, calibrate, evaluate and save one recipe; return its summary (JSON-ready).

    Args:
        recipe: What to build.
        out: Model folder (default: :func:`~tools.make_models.recipes.model_dir` under ``root``).
        root: Output root.
        n_bootstrap: Bootstrap resamples of the intervals.
        limit_per_class: For smoke tests only (the card then describes a toy model).
        log: Progress sink.
        trained: A ``TrainResult`` (see :func:`saved_result`): skip training, only
            re-package the model.
    """
    from medviz.data.registry import get_spec
    from medviz.pipeline import package_result
    from medviz.store import (
        CARD_FILE,
        README_FILE,
        atomic_write_json,
        atomic_write_text,
        save_bundle,
    )
    from medviz.training import train

    spec = get_spec(recipe.data)
    if recipe.shipped and not spec.shippable:
        raise SystemExit(f"error: {recipe.data} may not be shipped ({spec.licence})")
    folder = Path(out) if out is not None else model_dir(recipe.name, root=root)
    log(f"{recipe.name}: loading {recipe.data} at {recipe.image_size} px")
    data = load_recipe_data(recipe, limit_per_class=limit_per_class)
    log(f"{recipe.name}: {data.counts()}")

    def on_epoch_end(p) -> None:
        logs = " ".join(
            f"{k}={v:.4f}"
            for k, v in p.logs.items()
            if k in ("loss", "accuracy", "val_loss", "val_accuracy", "val_auc")
        )
        log(f"{recipe.name}: epoch {p.epoch + 1}/{p.epochs} {p.elapsed_s:.0f}s {logs}")

    packaging = {
        "name": recipe.name,
        "title": recipe.title,
        "modality": spec.modality,
        "command": recipe.command(),
        "limitations": recipe.limitations,
        "intended_use": recipe.intended_use or None,
        "n_bootstrap": n_bootstrap,
    }
    if trained is not None:
        log(f"{recipe.name}: re-packaging the saved model (no training)")
        result = trained
    else:
        result = train(recipe.config, data, on_epoch_end=on_epoch_end)
    run = package_result(result, data, **packaging)
    card = run.bundle.card
    metrics = {}
    for split, ev in run.evaluations.items():
        entry = dict(card.metrics[split])
        entry["accuracy_ci"] = accuracy_ci(ev.y_true, ev.y_pred, n_bootstrap=n_bootstrap)
        metrics[split] = entry
    training = dict(card.training)
    training.update(
        {
            "source_of_data": spec.source,
            "split_source": data.extras.get("split_source"),
            "duplicates": duplicate_summary(data),
            "data_classes": list(get_spec(recipe.data).class_names),
            "selection": "architecture, input size, epochs, augmentation, temperature and "
            "threshold chosen on the training/validation splits only; the test split was "
            "evaluated once, after training",
            "batchnorm_statistics": "recomputed on the un-augmented training split after "
            "training (precise BN), before temperature scaling and threshold selection"
            if recipe.config.precise_bn
            else "moving averages from training",
        }
    )
    if recipe.lesion_data is not None:
        from medviz.data.boxes import HELDOUT_LESIONS_KEY, heldout_lesion_sources

        training[HELDOUT_LESIONS_KEY] = heldout_lesion_sources(data)
    training["reproduce"] = reproduce_line(recipe)
    card = replace(card, metrics=metrics, training=training)
    model = inference_model(run.bundle.model)
    save_bundle(model, card, folder)
    size = (folder / "model.keras").stat().st_size
    latency = cpu_latency_ms(model, card.image_size, card.channels)
    training["footprint"] = {"model_bytes": size, "cpu_latency_ms_one_image": round(latency, 1)}
    card = replace(card, training=training)
    atomic_write_json(folder / CARD_FILE, card_dict(folder, card))
    atomic_write_text(folder / README_FILE, render_readme(card))
    log(f"{recipe.name}: saved {folder} ({size / 1e6:.2f} MB) in {run.result.seconds:.0f}s")
    return summarize(card, folder, size_bytes=size, latency_ms=latency, recipe=recipe, root=root)


def refresh_docs(name: str, *, root: Path = REPO_ROOT) -> Path:
    """Rewrite a recipe-made model's documentation (card text, README) from its recipe.

    For documentation-only changes of this module (title, intended use,
    limitations, command lines): weights and every measured figure are left
    as they are; the footprint is measured when missing.
    """
    from medviz.store import (
        CARD_FILE,
        README_FILE,
        atomic_write_json,
        atomic_write_text,
        load_bundle,
    )

    recipe = get_recipe(name)
    if not isinstance(recipe, Recipe):
        raise SystemExit(f"error: {name} is not made by a make_models recipe")
    folder = model_dir(name, root=root)
    bundle = load_bundle(folder)
    card = bundle.card
    training = dict(card.training)
    training["command"] = recipe.command()
    training["reproduce"] = reproduce_line(recipe)
    if "footprint" not in training:
        latency = cpu_latency_ms(bundle.model, card.image_size, card.channels)
        training["footprint"] = {
            "model_bytes": (folder / "model.keras").stat().st_size,
            "cpu_latency_ms_one_image": round(latency, 1),
        }
    card = replace(
        card,
        title=recipe.title,
        intended_use=recipe.intended_use or card.intended_use,
        limitations=tuple(recipe.limitations),
        training=training,
    )
    atomic_write_json(folder / CARD_FILE, card_dict(folder, card))
    atomic_write_text(folder / README_FILE, render_readme(card))
    return folder


def summarize(
    card,
    folder: Path,
    *,
    size_bytes: int,
    latency_ms: float | None,
    recipe=None,
    root: Path = REPO_ROOT,
) -> dict[str, Any]:
    """The JSON summary of one built model (what the bench report is written from)."""
    training = card.training
    return {
        "name": card.name,
        "folder": relative(folder, root=root),
        "shipped": bool(recipe.shipped) if recipe is not None else True,
        "data": training.get("dataset"),
        "licence": card.licence,
        "arch": card.arch,
        "params": card.params,
        "input": f"{card.image_size}x{card.image_size}x{card.channels}",
        "command": training.get("command"),
        "counts": training.get("counts"),
        "epochs_run": training.get("epochs_run"),
        "best_epoch": training.get("best_epoch"),
        "seconds": training.get("seconds"),
        "machine": training.get("machine"),
        "size_bytes": size_bytes,
        "latency_ms": latency_ms,
        "threshold": card.threshold,
        "temperature": card.temperature,
        "calibration": card.calibration,
        "metrics": {
            split: {
                k: m.get(k)
                for k in (
                    "n",
                    "accuracy",
                    "accuracy_ci",
                    "balanced_accuracy",
                    "auc",
                    "auc_ci",
                    "ece",
                    "confusion_matrix",
                )
            }
            for split, m in card.metrics.items()
        },
        "published": getattr(recipe, "published", {}) or {},
    }


def run_cli(argv: Sequence[str]) -> dict[str, Any]:
    """Run ``python -m medviz <argv> --json`` in-process and return its JSON answer."""
    from medviz.cli import main

    argv = list(argv)
    if "--json" not in argv:
        argv.append("--json")
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"error: `python -m medviz {shlex.join(argv)}` exited with {code}")
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    return json.loads(lines[-1])


def build_cli_recipe(
    recipe: CliRecipe, *, root: Path = REPO_ROOT, log: Callable[[str], None] = log_line
) -> dict[str, Any]:
    """Run a CLI recipe's ``python -m medviz …`` command with ``root`` as its working folder.

    A subprocess, so the command's relative paths (``--out models/…``, the
    run store) resolve under ``root`` exactly as the command recorded in the
    card says, without changing this process's working folder.

    Raises:
        SystemExit: The command failed.
    """
    import medviz
    from medviz.store import load_bundle

    log(f"{recipe.name}: {recipe.command()}")
    # The medviz this process runs, also when root is not the checkout holding it.
    library = str(Path(medviz.__file__).resolve().parents[1])
    paths = [library, *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    command = [sys.executable, "-m", "medviz", *recipe.argv]
    done = subprocess.run(command, cwd=root, env=env, stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise SystemExit(f"error: `{recipe.command()}` exited with {done.returncode}")
    folder = model_dir(recipe.name, root=root)
    bundle = load_bundle(folder)
    size = (folder / "model.keras").stat().st_size
    latency = cpu_latency_ms(bundle.model, bundle.card.image_size, bundle.card.channels)
    return summarize(
        bundle.card, folder, size_bytes=size, latency_ms=latency, recipe=recipe, root=root
    )


def existing_summary(name: str, *, root: Path = REPO_ROOT) -> dict[str, Any]:
    """The summary of a model already on disk under ``root`` (no training)."""
    from medviz.store import load_bundle

    recipe = get_recipe(name)
    folder = model_dir(name, root=root)
    bundle = load_bundle(folder)
    size = (folder / "model.keras").stat().st_size
    return summarize(
        bundle.card, folder, size_bytes=size, latency_ms=None, recipe=recipe, root=root
    )
