"""From data to a finished, documented model folder.

``train_and_package`` runs the training engine, then does what turns a set
of weights into something a user can trust: it fits the calibration
temperature on the **validation** split, sets the binary operating threshold
(0.5 on calibrated probabilities by default; Youden's J or a target
sensitivity on validation on request), evaluates on the held-out test split,
stress-tests a validation sample under controlled image shifts, stores
reference feature statistics for the out-of-distribution warning, and writes
it all into a :class:`~medviz.store.ModelCard`.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from medviz.data.dataset import Dataset
from medviz.data.streaming import StreamedDataset, packaging_sample
from medviz.errors import DataError, MedvizError
from medviz.inference import penultimate_features, predict_proba
from medviz.metrics import (
    ThresholdChoice,
    ThresholdPolicy,
    apply_temperature,
    choose_threshold,
    evaluate,
    fit_temperature,
    logits_from_probabilities,
    parse_threshold_policy,
    summarize_runs,
)
from medviz.ood import fit_reference
from medviz.store import ModelBundle, ModelCard, default_preprocessing
from medviz.stress import stress_split
from medviz.training import EpochProgress, TrainConfig, TrainResult, train
from medviz.zoo import parameter_counts


@dataclass
class PackagedRun:
    """A trained model with its card and the evaluations behind it."""

    bundle: ModelBundle
    result: TrainResult
    evaluations: dict[str, object]  # split -> medviz.metrics.Evaluation


def machine_description() -> str:
    """One line naming the CPU/GPU this ran on."""
    import os

    try:
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    except ImportError:
        gpus = []
    device = f"{len(gpus)} GPU(s)" if gpus else "CPU only"
    return f"{platform.machine()} {os.cpu_count()} cores, {platform.system()}, {device}"


def evaluate_split(
    bundle: ModelBundle,
    data: Dataset,
    split: str,
    *,
    calibrated: bool = True,
    n_bootstrap: int = 1000,
):
    """Evaluate a bundle on one split with its card's threshold and temperature."""
    subset = data.split(split)
    probs = bundle.predict_proba(subset.images, calibrated=calibrated)
    threshold = bundle.card.threshold if probs.shape[1] == 2 else None
    return evaluate(
        subset.labels,
        probs,
        class_names=data.class_names,
        threshold=threshold,
        n_bootstrap=n_bootstrap,
    )


DEFAULT_STRESS_IMAGES = 100
"""Validation images the pipeline stress-tests after training (a quick sample)."""


def operating_threshold(
    bundle: ModelBundle,
    data: Dataset,
    policy: str | ThresholdPolicy = "card",
    *,
    split: str = "val",
) -> ThresholdChoice | None:
    """The operating threshold of a binary model under ``policy``.

    Args:
        bundle: The model and its card (temperature, threshold).
        data: Data at the model's input size, labels in the model's order.
        policy: ``"card"`` (the card's own threshold) or a threshold policy
            (``"fixed"``, ``"fixed:0.4"``, ``"youden"``, ``"sensitivity:0.95"``);
            fitted policies use the calibrated probabilities on ``split``.
        split: The split youden/sensitivity are fitted on.

    Returns:
        The :class:`~medviz.metrics.ThresholdChoice`, or ``None`` for a
        multi-class model (argmax).

    Raises:
        MedvizError: Unknown policy, or a fitted policy on a split that lacks
            a class.
    """
    card = bundle.card
    if card.n_classes != 2:
        return None
    if policy == "card":
        threshold = 0.5 if card.threshold is None else float(card.threshold)
        reason = card.threshold_reason or "from the model card"
        return ThresholdChoice(threshold, card.threshold_method, reason)
    policy = parse_threshold_policy(policy)
    if not policy.needs_data:
        return choose_threshold(policy)
    subset = data.split(split)
    probs = bundle.predict_proba(subset.images)
    return choose_threshold(policy, subset.labels, probs[:, 1], split=split)


def train_and_package(
    config: TrainConfig,
    data: Dataset | StreamedDataset,
    *,
    name: str,
    title: str = "",
    modality: str = "unknown",
    command: str = "",
    limitations: Sequence[str] = (),
    intended_use: str | None = None,
    on_epoch_end: Callable[[EpochProgress], None] | None = None,
    on_batch_end: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_path=None,
    log_dir=None,
    backup_dir=None,
    n_bootstrap: int = 1000,
    threshold_policy: str | ThresholdPolicy = "fixed",
    stress_images: int = DEFAULT_STRESS_IMAGES,
) -> PackagedRun:
    """Train, calibrate, choose the threshold, evaluate, stress-test and write the card.

    Args:
        config: Training settings.
        data: Dataset with train and val splits (test optional but recommended).
        name: Model name for the card.
        title: Human title.
        modality: Modality the model expects.
        command: The command that reproduces the model (recorded in the card).
        limitations: Known limitations, for the card.
        intended_use: Overrides the default intended-use sentence.
        on_epoch_end: Passed to :func:`medviz.training.train`.
        on_batch_end: Passed to :func:`medviz.training.train`.
        should_stop: Passed to :func:`medviz.training.train`.
        checkpoint_path: Passed to :func:`medviz.training.train`.
        log_dir: Passed to :func:`medviz.training.train` (TensorBoard and CSV logs).
        backup_dir: Passed to :func:`medviz.training.train` (resumable training).
        n_bootstrap: Bootstrap resamples for the AUC confidence intervals.
        threshold_policy: Binary models: ``"fixed"`` (0.5 on calibrated
            probabilities, the default: a threshold tuned to the validation
            split turns into false alarms under shift), ``"fixed:0.4"``,
            ``"youden"`` or ``"sensitivity:0.95"`` (fitted on validation after
            temperature scaling). Multi-class models always use argmax.
        stress_images: Validation images for the stress test recorded in the
            card (0 = none).

    Returns:
        A :class:`PackagedRun` (nothing is written to disk; use
        :func:`medviz.store.save_bundle`).
    """
    parse_threshold_policy(threshold_policy)  # a bad policy fails before training
    result = train(
        config,
        data,
        on_epoch_end=on_epoch_end,
        on_batch_end=on_batch_end,
        should_stop=should_stop,
        checkpoint_path=checkpoint_path,
        log_dir=log_dir,
        backup_dir=backup_dir,
    )
    return package_result(
        result,
        data,
        name=name,
        title=title,
        modality=modality,
        command=command,
        limitations=limitations,
        intended_use=intended_use,
        n_bootstrap=n_bootstrap,
        threshold_policy=threshold_policy,
        stress_images=stress_images,
    )


def package_result(
    result: TrainResult,
    data: Dataset | StreamedDataset,
    *,
    name: str,
    title: str = "",
    modality: str = "unknown",
    command: str = "",
    limitations: Sequence[str] = (),
    intended_use: str | None = None,
    n_bootstrap: int = 1000,
    threshold_policy: str | ThresholdPolicy = "fixed",
    stress_images: int = DEFAULT_STRESS_IMAGES,
) -> PackagedRun:
    """Calibrate, choose the threshold, evaluate, stress-test and write the card of a trained model.

    The second half of :func:`train_and_package` (same arguments), also used to
    re-package a saved model after the packaging rules changed, without training again.

    Raises:
        DataError: ``result`` holds no finished epoch.
    """
    policy = parse_threshold_policy(threshold_policy)
    config = result.config
    if result.best_epoch < 0:
        raise DataError(
            "training stopped before the first epoch finished: there is no model to keep"
        )
    model = result.model
    size, _, channels = result.input_shape
    counts = data.counts()
    if isinstance(data, StreamedDataset):
        # Packaging reads val and test whole and a sample of train: small enough for memory.
        data = packaging_sample(data, seed=config.seed)
    val = data.split("val")
    val_probs = predict_proba(model, val.images)
    temperature = fit_temperature(logits_from_probabilities(val_probs), val.labels)
    threshold, threshold_method = None, "argmax"
    threshold_reason = "more than two classes: the most probable class is predicted"
    if data.n_classes == 2:
        calibrated = apply_temperature(logits_from_probabilities(val_probs), temperature)
        choice = choose_threshold(policy, val.labels, calibrated[:, 1], split="validation")
        threshold, threshold_method = choice.threshold, choice.method
        threshold_reason = choice.reason
    train_split = data.split("train")
    features = penultimate_features(model, train_split.images)
    reference = fit_reference(features, train_split.labels, data.n_classes)
    _, total = parameter_counts(model)
    card = ModelCard(
        name=name,
        title=title or name,
        class_names=data.class_names,
        image_size=size,
        channels=channels,
        modality=modality,
        arch=config.arch,
        params=total,
        preprocessing=default_preprocessing(size, channels),
        training={
            "dataset": data.name,
            "licence": data.licence,
            "split": "seeded stratified split; patients and near-duplicates kept within one split"
            if data.provenance is not None
            else "as provided",
            "counts": counts,
            "command": command,
            "config": result.config.to_dict(),
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch + 1,
            "stopped_early": result.stopped_early,
            "stopped_by_user": result.stopped_by_user,
            "seconds": round(result.seconds, 1),
            "xla": result.jit_reason or None,
            "machine": machine_description(),
            "date": time.strftime("%Y-%m-%d"),
            "history": result.history,
            # Transfer nets only: the backbone's initial weights (source, file, SHA-256).
            **({"pretrained": result.weights.to_card()} if result.weights is not None else {}),
        },
        threshold=threshold,
        threshold_method=threshold_method,
        threshold_reason=threshold_reason,
        temperature=float(temperature),
        reference=reference.to_dict(),
        limitations=tuple(limitations),
        licence=data.licence,
        **({"intended_use": intended_use} if intended_use else {}),
    )
    bundle = ModelBundle(model=model, card=card)
    evaluations: dict[str, object] = {}
    for split in ("val", "test"):
        if split in data.available_splits:
            evaluations[split] = evaluate_split(bundle, data, split, n_bootstrap=n_bootstrap)
    uncalibrated_ece = evaluate_split(bundle, data, "val", calibrated=False, n_bootstrap=0).ece
    stress = None
    if stress_images:
        # On validation, like the temperature: the test split stays evaluated once.
        report = stress_split(bundle, data, "val", max_images=stress_images, seed=config.seed)
        stress = report.to_dict()
    card = replace(
        card,
        metrics={split: ev.to_dict() for split, ev in evaluations.items()},
        calibration={
            "val_ece_before": float(uncalibrated_ece),
            "val_ece_after": float(evaluations["val"].ece),
        },
        stress=stress,
    )
    bundle.card = card
    return PackagedRun(bundle=bundle, result=result, evaluations=evaluations)


@dataclass
class RepeatedRuns:
    """Several trainings of one config with different seeds.

    Attributes:
        runs: The finished runs, in seed order.
        summary: Metric name -> ``(mean, std)`` over :attr:`runs` on :attr:`split`.
        split: ``"test"`` when the data has one, else ``"val"``.
        stopped: Whether ``should_stop`` ended the loop before every repeat ran.
    """

    runs: list[PackagedRun]
    summary: dict[str, tuple[float, float]]  # metric -> (mean, std)
    split: str
    stopped: bool = False

    @property
    def best(self) -> PackagedRun:
        """The run with the highest *validation* AUC (see :func:`select_run`).

        :attr:`split` is only what the summary reports; choosing by test
        scores would make the test estimate optimistic.
        """
        return select_run(self.runs)


def select_run(runs: Sequence[PackagedRun]) -> PackagedRun:
    """The run to keep, chosen on the validation split only.

    Highest validation AUC wins; where AUC is undefined (a class missing
    from validation) it counts as lowest, and validation accuracy breaks
    ties, so runs without any AUC are ranked by accuracy. The test split
    never takes part: it is read once, for the report of the chosen model.

    Args:
        runs: Packaged runs, each with an ``evaluations["val"]``.

    Returns:
        The chosen run (the first of equals).

    Raises:
        DataError: ``runs`` is empty or a run has no validation evaluation.
    """
    if not runs:
        raise DataError("no runs to choose from")

    def score(run: PackagedRun) -> tuple[float, float]:
        val = run.evaluations.get("val")
        if val is None:
            raise DataError(
                f"run has no validation evaluation (has {sorted(run.evaluations)}); "
                "the model is chosen on validation only"
            )
        auc, accuracy = float(getattr(val, "auc", math.nan)), float(val.accuracy)
        return (auc if math.isfinite(auc) else -math.inf, accuracy)

    return max(runs, key=score)


def summarize_repeats(runs: Sequence[PackagedRun]) -> tuple[dict[str, tuple[float, float]], str]:
    """Mean ± std of accuracy, balanced accuracy, AUC, ECE and seconds over ``runs``.

    Binary runs add the false-positive and false-negative rates of class 1
    (``FP / (FP + TN)`` and ``FN / (FN + TP)``).

    Args:
        runs: Finished runs of one config (at least one).

    Returns:
        ``(summary, split)``: metric name -> ``(mean, std)``, on the test split
        when the runs have one, else on validation.

    Raises:
        DataError: ``runs`` is empty.
    """
    if not runs:
        raise DataError("no runs to summarise")
    split = "test" if "test" in runs[0].evaluations else "val"
    rows = []
    for run in runs:
        ev = run.evaluations[split]
        row = {
            "accuracy": ev.accuracy,
            "balanced_accuracy": ev.balanced_accuracy,
            "auc": ev.auc,
            "ece": ev.ece,
            "seconds": run.result.seconds,
        }
        if ev.is_binary:
            # The source works report these: normals called sick, sick called normal.
            row["false_positive_rate"] = ev.per_class[1].fpr
            row["false_negative_rate"] = ev.per_class[1].fnr
        rows.append(row)
    return summarize_runs(rows), split


def train_repeats(
    config: TrainConfig,
    data: Dataset | StreamedDataset,
    *,
    repeats: int,
    name: str,
    on_run_end: Callable[[int, PackagedRun], None] | None = None,
    on_epoch_end: Callable[[EpochProgress], None] | None = None,
    on_batch_end: Callable | None = None,
    should_stop: Callable[[], bool] | None = None,
    **options,
) -> RepeatedRuns:
    """Train ``repeats`` times with seeds ``config.seed + i``; summarise mean ± std.

    The one repeat loop of MedViz: ``python -m medviz train --repeats`` and the
    app's background :class:`~medviz.services.jobs.TrainingJob` both run it.
    The summary covers accuracy, balanced accuracy, AUC and ECE on the test
    split when there is one, else on validation (see :func:`summarize_repeats`).

    Args:
        config: Training settings; run ``i`` uses seed ``config.seed + i``.
        data: Dataset with train and val splits.
        repeats: Number of runs (at least 1).
        name: Model name for the cards.
        on_run_end: Called with ``(index, run)`` after each packaged run.
        on_epoch_end: Passed to :func:`medviz.training.train` for every run.
        on_batch_end: Passed to :func:`medviz.training.train` for every run.
        should_stop: Polled by the trainer after every batch and here after
            every run: once it returns ``True`` the current run keeps its best
            weights and no further run starts. A run stopped before its first
            epoch ended is dropped when an earlier run finished.
        **options: Further keyword arguments of :func:`train_and_package`.

    Returns:
        The finished runs and their summary (:attr:`RepeatedRuns.stopped` says
        whether ``should_stop`` cut the loop short).

    Raises:
        DataError: ``repeats`` is below 1.
        MedvizError: A run failed, or the first run was stopped before its
            first epoch ended (no model to keep).
    """
    if repeats < 1:
        raise DataError(f"repeats must be at least 1, got {repeats}")

    def stop_requested() -> bool:
        return should_stop is not None and bool(should_stop())

    runs: list[PackagedRun] = []
    for i in range(repeats):
        try:
            run = train_and_package(
                replace(config, seed=config.seed + i),
                data,
                name=name,
                on_epoch_end=on_epoch_end,
                on_batch_end=on_batch_end,
                should_stop=should_stop,
                **options,
            )
        except MedvizError:
            if runs and stop_requested():
                break  # stopped before this run's first epoch: keep the finished ones
            raise
        runs.append(run)
        if on_run_end is not None:
            on_run_end(i, run)
        if stop_requested():
            break
    summary, split = summarize_repeats(runs)
    return RepeatedRuns(runs=runs, summary=summary, split=split, stopped=stop_requested())
