"""Transfer learning compared: from scratch vs frozen backbone vs fine-tuned backbone.

The source works' one experiment ("does pretraining help with 65 images?") as
one call: :func:`compare_transfer` trains the same transfer architecture three
ways on the same labelled images, with the same recipe, and scores each on the
dataset's held-out split:

- ``scratch``: random initialisation (``pretrained="none"``), everything trains;
- ``feature-extractor``: pretrained backbone frozen (BN in inference mode), only
  the head trains;
- ``fine-tune``: pretrained backbone, layers from ``fine_tune_from`` on train.

The best epoch is picked on the validation split, never on the held-out one.
``python -m bench.transfer`` repeats it over datasets, label counts and seeds;
``medviz compare-transfer`` and the Train page run it once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from medviz.data.dataset import Dataset
from medviz.errors import DataError, MedvizError
from medviz.training import EpochProgress, TrainConfig, train

TransferArm = Literal["scratch", "feature-extractor", "fine-tune"]
ARMS: tuple[TransferArm, ...] = ("scratch", "feature-extractor", "fine-tune")


@dataclass(frozen=True)
class ArmResult:
    """One way of training, scored on the held-out split.

    Attributes:
        arm: ``"scratch"``, ``"feature-extractor"`` or ``"fine-tune"``.
        accuracy: Held-out accuracy (argmax).
        auc: Held-out ROC AUC (binary: of the second class; multi-class: one-vs-rest macro).
        seconds: Training wall time.
        epochs_run: Epochs trained.
        best_epoch: 1-based epoch picked on validation.
        history: Per-epoch logs (``loss``, ``val_auc`` …) for curves.
        weights: What the backbone started from (``WeightsStatus.describe()``).
        trainable_params: Parameters that trained.
    """

    arm: TransferArm
    accuracy: float
    auc: float
    seconds: float
    epochs_run: int
    best_epoch: int
    history: dict[str, list[float]]
    weights: str
    trainable_params: int


def subsample_train(data: Dataset, n_labels: int | None, *, seed: int) -> Dataset:
    """``data`` with its train split cut to ``n_labels`` images (class-stratified, ≥ 1 per class).

    Val and test splits are kept whole. ``None`` or more than the split holds keeps all.

    Raises:
        DataError: ``n_labels`` is smaller than the number of classes.
    """
    train_idx = np.flatnonzero(data.splits == "train")
    if n_labels is None or n_labels >= len(train_idx):
        return data
    if n_labels < data.n_classes:
        raise DataError(f"n_labels must be at least the {data.n_classes} classes, got {n_labels}")
    rng = np.random.default_rng(seed)
    labels = data.labels[train_idx]
    keep: list[int] = []
    # Proportional per class, at least one each, topped up at random to exactly n_labels.
    for c in range(data.n_classes):
        members = train_idx[labels == c]
        share = max(1, round(n_labels * len(members) / len(train_idx)))
        keep.extend(rng.choice(members, size=min(share, len(members)), replace=False))
    rest = np.setdiff1d(train_idx, keep)
    if len(keep) < n_labels:
        keep.extend(rng.choice(rest, size=n_labels - len(keep), replace=False))
    keep = sorted(keep[:n_labels])
    others = np.flatnonzero(data.splits != "train")
    return data.take(np.sort(np.concatenate([np.asarray(keep, dtype=int), others])))


def score(model, data: Dataset, split: str, *, image_size: int) -> tuple[float, float]:
    """``(accuracy, AUC)`` of ``model`` on ``data``'s ``split``.

    Args:
        model: A ``(None, S, S, C) -> (None, K)`` softmax model.
        data: The dataset.
        split: Usually ``"test"`` (the held-out split).
        image_size: Side the model takes (images are resized to it).
    """
    from sklearn.metrics import roc_auc_score

    from medviz.training import resize_images

    part = data.split(split)
    x = resize_images(part.images, image_size).astype(np.float32)
    probs = np.asarray(model.predict(x, batch_size=256, verbose=0))
    accuracy = float(np.mean(np.argmax(probs, axis=1) == part.labels))
    if len(np.unique(part.labels)) < 2:
        return accuracy, float("nan")
    if probs.shape[1] == 2:
        return accuracy, float(roc_auc_score(part.labels, probs[:, 1]))
    return accuracy, float(roc_auc_score(part.labels, probs, multi_class="ovr"))


def arm_config(base: TrainConfig, arm: TransferArm, *, fine_tune_from: int = 0) -> TrainConfig:
    """``base`` set up for one arm (weights source, mode, unfreeze depth)."""
    if arm not in ARMS:
        raise MedvizError(f"arm must be one of {ARMS}, got {arm!r}")
    options = dict(base.arch_options)
    if arm == "scratch":
        return replace(base, pretrained="none", arch_options={**options, "mode": "fine-tune"})
    pretrained = base.pretrained if base.pretrained not in (None, "none") else None
    options["mode"] = arm
    if arm == "fine-tune":
        options["fine_tune_from"] = fine_tune_from
    return replace(base, pretrained=pretrained, arch_options=options)


def compare_transfer(
    data: Dataset,
    base: TrainConfig,
    *,
    arms: Sequence[TransferArm] = ARMS,
    fine_tune_from: int = 0,
    eval_split: str = "test",
    on_arm_end: Callable[[ArmResult], None] | None = None,
    on_epoch_end: Callable[[TransferArm, EpochProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> list[ArmResult]:
    """Train ``base.arch`` once per arm on ``data`` and score each on ``eval_split``.

    Args:
        data: A dataset with train, val and ``eval_split`` splits.
        base: The shared recipe; ``base.arch`` must be a transfer architecture.
        arms: Which of ``scratch``, ``feature-extractor``, ``fine-tune`` to run.
        fine_tune_from: Unfreeze depth of the fine-tune arm.
        eval_split: Held-out split to score on (never used to pick epochs).
        on_arm_end: Called with each :class:`ArmResult` as it is done.
        on_epoch_end: Called with the arm and each epoch's progress.
        should_stop: Polled between batches; stops the current arm and skips the rest.

    Returns:
        One :class:`ArmResult` per finished arm, in ``arms`` order.

    Raises:
        MedvizError: ``base.arch`` is not a transfer architecture, or a missing split.
        WeightsMissingError: The pretrained weights are not available.
    """
    from medviz.training import resolve_config_weights
    from medviz.zoo import get_arch, parameter_counts

    if not get_arch(base.arch).transfer:
        raise MedvizError(
            f"{base.arch!r} is not a transfer architecture; compare-transfer needs one of the "
            "transfer backbones (e.g. medviz-backbone, mobilenetv2)"
        )
    if eval_split not in data.available_splits:
        raise DataError(f"dataset {data.name!r} has no {eval_split!r} split to score on")
    configs = {arm: arm_config(base, arm, fine_tune_from=fine_tune_from) for arm in arms}
    for config in configs.values():
        resolve_config_weights(config)  # missing weights fail before the first arm trains
    results = []
    for arm, config in configs.items():
        if should_stop is not None and should_stop():
            break
        started = time.perf_counter()
        run = train(
            config,
            data,
            on_epoch_end=(lambda p, a=arm: on_epoch_end(a, p)) if on_epoch_end else None,
            should_stop=should_stop,
        )
        seconds = time.perf_counter() - started
        if run.best_epoch < 0:
            break  # stopped before the first epoch finished
        accuracy, auc = score(run.model, data, eval_split, image_size=run.input_shape[0])
        trainable, _ = parameter_counts(run.model)
        result = ArmResult(
            arm=arm,
            accuracy=accuracy,
            auc=auc,
            seconds=seconds,
            epochs_run=run.epochs_run,
            best_epoch=run.best_epoch + 1,
            history=run.history,
            weights=run.weights.describe() if run.weights else "",
            trainable_params=trainable,
        )
        results.append(result)
        if on_arm_end is not None:
            on_arm_end(result)
    return results


def comparison_figure(results: Sequence[ArmResult], *, metric: str = "val_auc"):
    """Validation curves of every arm side by side (one line per arm).

    Args:
        results: Finished arms (their ``history``).
        metric: The logged quantity to draw (``val_auc``, ``val_loss``, ``val_accuracy`` …).

    Returns:
        A Plotly figure: epoch on x, ``metric`` on y.
    """
    import plotly.graph_objects as go

    figure = go.Figure()
    for r in results:
        values = r.history.get(metric, [])
        figure.add_trace(
            go.Scatter(
                x=list(range(1, len(values) + 1)),
                y=values,
                mode="lines+markers",
                name=f"{r.arm} (test AUC {r.auc:.3f})",
            )
        )
    figure.update_layout(
        xaxis_title="epoch",
        yaxis_title=metric,
        height=320,
        margin={"l": 10, "r": 10, "t": 30, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return figure


def comparison_rows(results: Sequence[ArmResult]) -> list[dict[str, object]]:
    """One table row per arm: accuracy, AUC, time, epochs, trainable parameters, weights."""
    return [
        {
            "arm": r.arm,
            "test accuracy": round(r.accuracy, 3),
            "test AUC": round(r.auc, 3),
            "time (s)": round(r.seconds, 1),
            "epochs": r.epochs_run,
            "best epoch": r.best_epoch,
            "trainable parameters": r.trainable_params,
            "weights": r.weights,
        }
        for r in results
    ]
