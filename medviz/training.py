"""The training engine: one call trains, reports progress, stops cleanly.

``train(config, data, on_epoch_end=…, on_batch_end=…, should_stop=…)`` runs
Keras ``fit`` on a ``tf.data`` pipeline (uint8 in memory → shuffle → batch →
augment batch-wise → prefetch), keeps the best weights in memory (and, when
asked, on disk after every improvement), and returns the best model even when
the user pressed Stop or early stopping fired. It never touches Streamlit:
the app drives it from a background thread through the callbacks.

Why one module (over 600 lines): the train call, its callbacks (progress, stop,
best weights, checkpoint), the tf.data pipeline and the optimizer schedule all
read one :class:`TrainConfig` and must stay consistent with each other.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np

from medviz import guidance
from medviz.augment import AugmentConfig, augment_batch, build_augmenter
from medviz.autotune import JitDecision, decide_jit, measure_jit, probe_key
from medviz.data.balance import class_weights, undersample
from medviz.data.dataset import Dataset
from medviz.data.streaming import StreamedDataset, stream_pipeline
from medviz.errors import DataError, MedvizError
from medviz.weights import WeightsStatus, resolve_weights
from medviz.zoo import DEFAULT_ARCH, build_model, get_arch

Imbalance = Literal["none", "class-weights", "undersample"]


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run.

    Attributes:
        arch: Architecture name (see :data:`medviz.zoo.ARCHITECTURES`).
        image_size: Side length to train at (``None``: the dataset's).
        epochs: Maximum epochs.
        batch_size: Images per step.
        learning_rate: Initial learning rate.
        optimizer: ``"adam"`` or ``"sgd"`` (with Nesterov momentum 0.9).
        seed: Seeds weights, shuffling and augmentation.
        early_stopping_patience: Epochs without improvement before stopping
            (``None``: never).
        reduce_lr_patience: Epochs without improvement before halving the
            learning rate (``None``: never). Only with ``lr_schedule="plateau"``.
        lr_schedule: ``"plateau"`` (constant, halved by ReduceLROnPlateau) or
            ``"cosine"`` (``warmup_epochs`` of linear warm-up from a tenth of
            ``learning_rate``, then cosine decay to zero over the remaining steps).
        warmup_epochs: Length of the cosine schedule's warm-up in epochs
            (fractions allowed; 0: none). Ignored by ``"plateau"``.
        monitor: Validation quantity that picks the best epoch.
        imbalance: ``"none"``, ``"class-weights"`` or ``"undersample"``.
        augment: On-the-fly augmentations.
        label_smoothing: Cross-entropy label smoothing.
        arch_options: Options for transfer architectures.
        jit_compile: Let XLA compile the train step: ``True``, ``False`` or
            ``"auto"`` (measured on this machine on first use and cached, see
            :mod:`medviz.autotune`; on a 2-core CPU XLA was slower).
        cam_guidance: Weight of the box-guidance loss (0: off). For every
            training image with a lesion mask, the class activation map of its
            class at the last feature map before global average pooling is
            pushed into the mask (cross-entropy between the mask's share of
            each map cell and the spatial softmax of the map). Needs a dataset
            with ``masks``; images without a lesion add no guidance.
        precise_bn: After training, recompute every BatchNorm layer's moving
            mean and variance over one pass of the un-augmented training images
            ("precise BN", :func:`recompute_batchnorm_statistics`), so the
            model is evaluated and calibrated with population statistics
            instead of an average of the last few augmented batches. The
            shipped models use it.
        pretrained: Initial weights of a transfer architecture: ``"none"``
            (random), ``"imagenet"``, ``"medviz"`` or a weights file path;
            ``None`` keeps ``arch_options["pretrained"]`` (default: the
            architecture's own pretrained weights). Missing weights raise
            :class:`medviz.weights.WeightsMissingError` before training starts.
    """

    arch: str = DEFAULT_ARCH
    image_size: int | None = None
    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 3e-3
    optimizer: Literal["adam", "sgd"] = "adam"
    seed: int = 0
    early_stopping_patience: int | None = 5
    reduce_lr_patience: int | None = 2
    lr_schedule: Literal["plateau", "cosine"] = "plateau"
    warmup_epochs: float = 1.0
    monitor: str = "val_auc"
    imbalance: Imbalance = "none"
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    label_smoothing: float = 0.0
    arch_options: dict[str, Any] = field(default_factory=dict)
    jit_compile: bool | Literal["auto"] = "auto"
    cam_guidance: float = 0.0
    precise_bn: bool = False
    pretrained: str | None = None

    def __post_init__(self) -> None:
        get_arch(self.arch)
        checks = {
            "epochs": self.epochs >= 1,
            "batch_size": self.batch_size >= 1,
            "learning_rate": self.learning_rate > 0,
            "label_smoothing": 0 <= self.label_smoothing < 1,
            "cam_guidance": self.cam_guidance >= 0,
            "warmup_epochs": self.warmup_epochs >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise MedvizError(f"invalid {name}={getattr(self, name)!r}")
        if self.jit_compile not in (True, False, "auto"):
            raise MedvizError(
                f"jit_compile must be True, False or 'auto', got {self.jit_compile!r}"
            )
        if not isinstance(self.precise_bn, bool):
            raise MedvizError(f"precise_bn must be true or false, got {self.precise_bn!r}")
        if self.optimizer not in ("adam", "sgd"):
            raise MedvizError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.imbalance not in ("none", "class-weights", "undersample"):
            raise MedvizError(
                "imbalance must be 'none', 'class-weights' or 'undersample', "
                f"got {self.imbalance!r}"
            )
        if self.cam_guidance > 0 and self.imbalance == "class-weights":
            raise MedvizError(
                "cam_guidance trains a two-output model, which Keras cannot class-weight; "
                "use imbalance='undersample' or 'none' with it"
            )
        if self.lr_schedule not in ("plateau", "cosine"):
            raise MedvizError(
                f"lr_schedule must be 'plateau' or 'cosine', got {self.lr_schedule!r}"
            )
        if self.lr_schedule == "cosine" and self.reduce_lr_patience is not None:
            raise MedvizError(
                "lr_schedule='cosine' sets the learning rate at every step; "
                f"reduce_lr_patience must be None with it, got {self.reduce_lr_patience}"
            )
        if self.monitor not in ("val_auc", "val_loss", "val_accuracy"):
            raise MedvizError(
                f"monitor must be val_auc, val_loss or val_accuracy, got {self.monitor!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        values = asdict(self)
        values["augment"] = self.augment.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`."""
        values = dict(values)
        if isinstance(values.get("augment"), dict):
            values["augment"] = AugmentConfig.from_dict(values["augment"])
        return cls(**values)


@dataclass(frozen=True)
class BatchProgress:
    """Reported after every training batch."""

    epoch: int  # 0-based
    epochs: int
    batch: int  # 1-based count of batches done in this epoch
    batches: int
    logs: dict[str, float]
    elapsed_s: float
    eta_s: float


@dataclass(frozen=True)
class EpochProgress:
    """Reported after every epoch."""

    epoch: int  # 0-based
    epochs: int
    logs: dict[str, float]
    history: dict[str, list[float]]
    best_epoch: int
    best_value: float
    elapsed_s: float
    eta_s: float
    learning_rate: float


@dataclass
class TrainResult:
    """What a run produced.

    Attributes:
        model: The model holding the **best** weights seen.
        history: Per-epoch logs, ``{metric: [epoch 1, epoch 2, …]}``.
        best_epoch: 0-based epoch of the best weights (-1 if none finished).
        best_value: Value of the monitored quantity there.
        stopped_by_user: ``should_stop`` ended the run.
        stopped_early: Early stopping ended the run.
        seconds: Wall time of ``fit``.
        config: The config used.
        class_names: Class names of the data.
        input_shape: ``(S, S, C)`` the model takes.
        train_counts: Images per class used for training.
        jit_reason: Why XLA was on or off (``config.jit_compile`` holds the choice).
        weights: What the backbone was initialised from (``None``: not a transfer net).
    """

    model: Any
    history: dict[str, list[float]]
    best_epoch: int
    best_value: float
    stopped_by_user: bool
    stopped_early: bool
    seconds: float
    config: TrainConfig
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    train_counts: dict[str, int]
    jit_reason: str = ""
    weights: WeightsStatus | None = None

    @property
    def epochs_run(self) -> int:
        """Number of completed epochs."""
        return len(next(iter(self.history.values()), []))


def resize_images(images: np.ndarray, size: int) -> np.ndarray:
    """Resize a ``(N, H, W, C)`` uint8 batch to ``(N, size, size, C)`` (bilinear, antialiased)."""
    if images.shape[1:3] == (size, size):
        return images
    import tensorflow as tf

    out = np.empty((len(images), size, size, images.shape[-1]), dtype=np.uint8)
    for start in range(0, len(images), 512):
        chunk = tf.image.resize(images[start : start + 512], (size, size), antialias=True)
        out[start : start + 512] = np.clip(np.round(chunk.numpy()), 0, 255).astype(np.uint8)
    return out


def make_pipeline(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    *,
    batch_size: int,
    augment: AugmentConfig | None = None,
    shuffle: bool = False,
    seed: int = 0,
    sample_weights: np.ndarray | None = None,
    epochs: tuple[int, int] | None = None,
):
    """A ``tf.data.Dataset`` of ``(float32 images in [0,255], one-hot labels[, weights])``.

    Images stay uint8 in memory; casting and augmentation happen per batch,
    vectorised, on parallel threads, overlapped with training by prefetch.

    ``epochs=(first, end)`` with ``shuffle`` gives one finite dataset of the
    batches of epochs ``first … end-1`` (fit it with ``steps_per_epoch``), each
    epoch's order a stateless shuffle of ``(seed, epoch)``: a run resumed at
    epoch ``first`` sees the orders an uninterrupted run saw (a reshuffling
    ``Dataset.shuffle`` draws each order from a generator state no file keeps).
    """
    import tensorflow as tf

    parts: tuple = (images, labels) if sample_weights is None else (images, labels, sample_weights)
    if shuffle and epochs is not None:
        n = len(images)
        tensors = tuple(tf.constant(p) for p in parts)

        def epoch_batches(epoch):
            order = tf.random.experimental.stateless_shuffle(
                tf.range(n, dtype=tf.int64), seed=tf.stack([tf.cast(seed, tf.int64), epoch])
            )
            return tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

        ds = tf.data.Dataset.range(*epochs).flat_map(epoch_batches)
        ds = ds.map(lambda index: tuple(tf.gather(t, index) for t in tensors))
    else:
        ds = tf.data.Dataset.from_tensor_slices(parts)
        if shuffle:
            ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)
    augmenter = build_augmenter(augment, seed=seed) if augment is not None else None

    def prepare(x, y, *w):
        x = augment_batch(augmenter, tf.cast(x, tf.float32))
        return (x, tf.one_hot(y, n_classes), *w)

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def compile_for_training(model: keras.Model, config: TrainConfig, *, steps_per_epoch: int) -> None:
    """Compile ``model`` as :func:`train` does: optimizer, loss, metrics and XLA of ``config``.

    Args:
        model: A ``(None, S, S, C) -> (None, K)`` softmax model.
        config: Supplies ``optimizer``, ``learning_rate``, ``lr_schedule``,
            ``label_smoothing`` and ``jit_compile``.
        steps_per_epoch: Optimizer steps per epoch (sizes a cosine schedule).
    """
    model.compile(
        optimizer=_optimizer(config, steps_per_epoch=steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy", keras.metrics.AUC(name="auc")],
        jit_compile=config.jit_compile,
    )


def _optimizer(config: TrainConfig, *, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    learning_rate = learning_rate_schedule(config, steps_per_epoch=steps_per_epoch)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate)
    return keras.optimizers.SGD(learning_rate, momentum=0.9, nesterov=True)


def distribution_strategy():
    """MirroredStrategy over every GPU when there are several, else the default strategy."""
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def learning_rate_schedule(config: TrainConfig, *, steps_per_epoch: int):
    """The optimizer's learning rate: a float, or a cosine schedule over the whole run.

    Args:
        config: Supplies ``learning_rate``, ``epochs`` and ``lr_schedule``.
        steps_per_epoch: Batches per epoch (optimizer steps).

    Returns:
        ``config.learning_rate`` for ``"plateau"``; for ``"cosine"`` a
        ``keras.optimizers.schedules.CosineDecay`` warming up linearly over
        ``config.warmup_epochs`` from a tenth of the rate, then decaying to zero
        at the last step.
    """
    if config.lr_schedule == "plateau":
        return config.learning_rate
    warmup = round(config.warmup_epochs * steps_per_epoch) if config.epochs > 1 else 0
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate / 10 if warmup else config.learning_rate,
        decay_steps=max(1, config.epochs * steps_per_epoch - warmup),
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def train(
    config: TrainConfig,
    data: Dataset | StreamedDataset,
    *,
    on_epoch_end: Callable[[EpochProgress], None] | None = None,
    on_batch_end: Callable[[BatchProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    checkpoint_path: str | Path | None = None,
    strategy: Any = None,
    log_dir: str | Path | None = None,
    backup_dir: str | Path | None = None,
) -> TrainResult:
    """Train ``config.arch`` on the train split of ``data``, validating on its val split.

    Args:
        config: The run's settings.
        data: A dataset with ``"train"`` and ``"val"`` splits; a
            :class:`~medviz.data.streaming.StreamedDataset` is read batch by
            batch from its disk cache (memory stays flat as it grows).
        on_epoch_end: Called after every epoch with an :class:`EpochProgress`.
        on_batch_end: Called after every batch with a :class:`BatchProgress`.
        should_stop: Polled after every batch; returning ``True`` stops the
            run at once, keeping the best weights so far.
        checkpoint_path: When given, the best weights are saved there
            (``*.weights.h5``, written atomically) after every improvement.
        strategy: A ``tf.distribute`` strategy to build and fit under (default:
            :func:`distribution_strategy`); see :mod:`medviz.distributed`.
        log_dir: When given, TensorBoard, CSV and per-epoch Grad-CAM logs are
            written there (see :mod:`medviz.training_logs`).
        backup_dir: When given, the training state is backed up there after
            every epoch, and a backup found there is resumed from its last
            finished epoch (see :mod:`medviz.resume`).

    Returns:
        A :class:`TrainResult` whose model holds the best weights.

    Raises:
        DataError: A split is missing or holds a single class.
    """
    train_set = data.split("train")
    try:
        val_set = data.split("val")
    except DataError:
        raise DataError(
            f"dataset {data.name!r} has no validation split; training needs one to pick the "
            "best epoch (splits present: " + ", ".join(data.available_splits) + ")"
        ) from None
    if len(np.unique(train_set.labels)) < 2:
        raise DataError(f"the train split of {data.name!r} holds a single class")

    size = config.image_size or data.image_shape[0]
    spec = get_arch(config.arch)
    if size < spec.min_size:
        raise MedvizError(f"{config.arch} needs image_size >= {spec.min_size}, got {size}")
    streamed = isinstance(data, StreamedDataset)
    if streamed and config.cam_guidance > 0:
        raise MedvizError(
            "cam_guidance needs lesion masks, which streamed datasets do not carry; "
            "load the dataset in memory (without --stream) or set cam_guidance to 0"
        )
    y_train = train_set.labels
    keep = np.arange(len(y_train))
    if config.imbalance == "undersample":
        keep = undersample(y_train, seed=config.seed)
        y_train = y_train[keep]
    if streamed:
        # Pixels stay in the disk cache; only row numbers and labels are in memory.
        x_train = x_val = None
        y_val = val_set.labels
    else:
        x_train = resize_images(train_set.images, size)
        if config.imbalance == "undersample":
            x_train = x_train[keep]
        x_val, y_val = resize_images(val_set.images, size), val_set.labels
    class_weight = (
        class_weights(y_train, data.n_classes) if config.imbalance == "class-weights" else None
    )
    n_classes = data.n_classes
    input_shape = (size, size, data.image_shape[-1])

    # Nets without a backbone have no weights status (None); asking them for one still fails.
    weights = resolve_config_weights(config)
    weights = weights if spec.transfer else None
    if spec.transfer:
        # The decided status goes to the builder, which loads exactly that file.
        config = replace(config, arch_options={**config.arch_options, "pretrained": weights})
    batches = math.ceil(len(y_train) / config.batch_size)
    # Resolved before seeding: the probe builds models of its own.
    jit = choose_jit(config, input_shape, n_classes, total_steps=config.epochs * batches)
    config = replace(config, jit_compile=jit.jit_compile)
    keras.utils.set_random_seed(config.seed)
    state = None
    if backup_dir is not None:
        from medviz import resume

        state = resume.load_state(backup_dir)
    initial_epoch = 0 if state is None else state.epoch
    resumable_epochs = None if backup_dir is None else (initial_epoch, config.epochs)
    with (distribution_strategy() if strategy is None else strategy).scope():
        model = build_model(
            config.arch, input_shape, n_classes, seed=config.seed, **config.arch_options
        )
        if config.cam_guidance > 0:
            fit_model, train_ds, val_ds = _guided_setup(
                model,
                config,
                train_set,
                val_set,
                inputs=(x_train, y_train, x_val, y_val),
                size=size,
                keep=keep,
                steps_per_epoch=batches,
            )
        else:
            compile_for_training(model, config, steps_per_epoch=batches)
            fit_model = model
            if streamed:
                train_ds = stream_pipeline(
                    train_set.take(keep),
                    n_classes,
                    batch_size=config.batch_size,
                    image_size=size,
                    augment=config.augment,
                    shuffle=True,
                    seed=config.seed,
                    epochs=resumable_epochs,
                )
                val_ds = stream_pipeline(
                    val_set, n_classes, batch_size=max(config.batch_size, 128), image_size=size
                )
            else:
                train_ds = make_pipeline(
                    x_train,
                    y_train,
                    n_classes,
                    batch_size=config.batch_size,
                    augment=config.augment,
                    shuffle=True,
                    seed=config.seed,
                    epochs=resumable_epochs,
                )
                val_ds = make_pipeline(
                    x_val, y_val, n_classes, batch_size=max(config.batch_size, 128)
                )

    mode = "min" if config.monitor == "val_loss" else "max"
    tracker = _Tracker(
        config=config,
        batches=batches,
        mode=mode,
        on_epoch_end=on_epoch_end,
        on_batch_end=on_batch_end,
        should_stop=should_stop,
        checkpoint_path=checkpoint_path,
    )
    callbacks: list[keras.callbacks.Callback] = [tracker]
    if config.early_stopping_patience is not None:
        early = keras.callbacks.EarlyStopping(
            monitor=config.monitor, mode=mode, patience=config.early_stopping_patience
        )
        callbacks.append(early)
    if config.reduce_lr_patience is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=config.monitor,
                mode=mode,
                factor=0.5,
                patience=config.reduce_lr_patience,
                min_lr=1e-6,
            )
        )
    if log_dir is not None:
        from medviz.training_logs import log_callbacks

        if streamed:  # the Grad-CAM panel needs a few validation images in memory
            first = np.arange(min(len(val_set), 64))
            log_images, log_labels = resize_images(val_set.read(first), size), y_val[first]
        else:
            log_images, log_labels = x_val, y_val
        callbacks += log_callbacks(
            log_dir,
            model=model,
            val_images=log_images,
            val_labels=log_labels,
            append=backup_dir is not None,
        )
    if backup_dir is not None:
        if state is not None:
            resume.apply_tracker_state(tracker, state, resume.restore_model(fit_model, state))
        # last: it saves after the others updated their counters, restores after Keras reset them
        callbacks.append(
            resume.TrainingBackup(backup_dir, tracker=tracker, callbacks=callbacks, state=state)
        )
    started = time.perf_counter()
    if initial_epoch < config.epochs and not (state is not None and state.stopped):
        fit_model.fit(
            train_ds,
            validation_data=val_ds,
            epochs=config.epochs,
            initial_epoch=initial_epoch,
            # the resumable pipeline is one dataset of all remaining epochs
            steps_per_epoch=batches
            if backup_dir is not None and config.cam_guidance == 0
            else None,
            callbacks=callbacks,
            class_weight=class_weight,
            shuffle=False,  # the tf.data pipeline already shuffles, seeded
            verbose=0,
        )
    seconds = time.perf_counter() - started
    if tracker.best_weights is not None:
        fit_model.set_weights(tracker.best_weights)
    if config.precise_bn and tracker.best_epoch >= 0:
        # After the best weights are back: the statistics must describe those weights.
        recompute_batchnorm_statistics(model, x_train, seed=config.seed)
    finished = tracker.epochs_done
    stopped_early = not tracker.stopped_by_user and 0 < finished < config.epochs
    return TrainResult(
        model=model,
        history=tracker.history,
        best_epoch=tracker.best_epoch,
        best_value=tracker.best_value,
        stopped_by_user=tracker.stopped_by_user,
        stopped_early=stopped_early,
        seconds=seconds,
        config=replace(config, image_size=size, arch_options=_card_options(config.arch_options)),
        class_names=data.class_names,
        input_shape=input_shape,
        train_counts={
            c: int(k)
            for c, k in zip(
                data.class_names, np.bincount(y_train, minlength=n_classes), strict=True
            )
        },
        jit_reason=jit.reason,
        weights=weights,
    )


def recompute_batchnorm_statistics(
    model: keras.Model, images: np.ndarray, *, batch_size: int = 64, seed: int = 0
) -> int:
    """Recompute every BatchNorm layer's moving statistics on ``images`` ("precise BN").

    During training the moving mean/variance are an exponential average (momentum
    0.9) over the last few *augmented* batches, so they drift from epoch to epoch;
    measured on the shipped models, that alone made validation accuracy jump by
    several points between neighbouring epochs. Averaging the batch statistics
    over one pass of the un-augmented images (shuffled, seeded) gives the
    population statistics the network is then evaluated with. Weights other
    than the moving statistics are not touched.

    Args:
        model: A model taking raw pixels ``(None, S, S, C)``.
        images: ``(N, S, S, C)`` uint8 training images at the model's input size
            and channels.
        batch_size: Images per forward pass.
        seed: Seed of the pass's order.

    Returns:
        The number of BatchNorm layers recomputed (0: none, nothing changed).
    """
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if not norms or not len(images):
        return 0
    saved = [layer.momentum for layer in norms]
    order = np.random.default_rng(seed).permutation(len(images))
    try:
        for k, start in enumerate(range(0, len(images), batch_size)):
            for layer in norms:
                layer.momentum = k / (k + 1)  # a running mean of the batch statistics
            batch = images[order[start : start + batch_size]].astype(np.float32)
            model(batch, training=True)
    finally:
        for layer, momentum in zip(norms, saved, strict=True):
            layer.momentum = momentum
    return len(norms)


def resolve_config_weights(config: TrainConfig) -> WeightsStatus:
    """The initial weights a run of ``config`` will use, decided without building anything.

    Raises:
        WeightsMissingError: The asked-for pretrained weights are not available.
    """
    if config.pretrained is not None:
        return resolve_weights(config.arch, config.pretrained)
    if not get_arch(config.arch).transfer:
        return WeightsStatus("random")
    return resolve_weights(config.arch, config.arch_options.get("pretrained", True))


def _card_options(options: dict[str, Any]) -> dict[str, Any]:
    # The card stores JSON, and a recipe that retrains anywhere: the status becomes the
    # --pretrained value that names its source (the card's "pretrained" entry has the hash).
    status = options.get("pretrained")
    if isinstance(status, WeightsStatus):
        names = {"imagenet-cache": "imagenet", "medviz-backbone": "medviz", "random": "none"}
        return {**options, "pretrained": names.get(status.source, status.path)}
    return options


def choose_jit(
    config: TrainConfig,
    input_shape: tuple[int, int, int],
    n_classes: int,
    *,
    total_steps: int,
) -> JitDecision:
    """XLA on or off for a run of ``config`` (``"auto"``: cached probe, see :mod:`medviz.autotune`).

    Args:
        config: Supplies ``jit_compile``, ``arch``, ``arch_options`` and ``batch_size``.
        input_shape: ``(S, S, C)`` of the model input.
        n_classes: Classes of the output.
        total_steps: Train steps of the whole run (weighs XLA's compile time).
    """

    def build(jit_compile: bool) -> keras.Model:
        model = build_model(config.arch, input_shape, n_classes, seed=0, **config.arch_options)
        compile_for_training(
            model, replace(config, jit_compile=jit_compile), steps_per_epoch=max(1, total_steps)
        )
        return model

    return decide_jit(
        config.jit_compile,
        total_steps=total_steps,
        key=lambda: probe_key(
            config.arch, input_shape, n_classes, config.batch_size, options=config.arch_options
        ),
        measure=lambda key: measure_jit(build, input_shape, n_classes, config.batch_size, key=key),
    )


def _guided_setup(
    model: keras.Model,
    config: TrainConfig,
    train_set: Dataset,
    val_set: Dataset,
    *,
    inputs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    size: int,
    keep: np.ndarray,
    steps_per_epoch: int,
):
    """The two-output model and pipelines of box-guided training (see :mod:`medviz.guidance`).

    ``inputs`` are the train images and labels (already resized and undersampled by
    ``keep``) and the val images and labels that :func:`train` prepared.
    """
    x_train, y_train, x_val, y_val = inputs
    if train_set.masks is None or val_set.masks is None:
        raise DataError(
            f"cam_guidance={config.cam_guidance} needs lesion masks, and dataset "
            f"{train_set.name!r} has none; load a dataset with boxes or masks"
        )
    fit_model = guidance.guided_training_model(model)
    feature_shape = model.get_layer(guidance.cam_feature_layer(model)).output.shape
    grid = (int(feature_shape[1]), int(feature_shape[2]))
    guidance.compile_guided(
        fit_model,
        optimizer=_optimizer(config, steps_per_epoch=steps_per_epoch),
        label_smoothing=config.label_smoothing,
        weight=config.cam_guidance,
        jit_compile=config.jit_compile,
    )

    def masks_at(part: Dataset, index: np.ndarray | None = None) -> np.ndarray:
        masks = part.masks if index is None else part.masks[index]
        return resize_images(masks.astype(np.uint8)[..., None] * np.uint8(255), size)[..., 0] > 127

    train_ds = guidance.make_guided_pipeline(
        x_train,
        y_train,
        masks_at(train_set, keep),
        model.outputs[0].shape[-1],
        grid=grid,
        batch_size=config.batch_size,
        augment=config.augment,
        shuffle=True,
        seed=config.seed,
    )
    val_ds = guidance.make_guided_pipeline(
        x_val,
        y_val,
        masks_at(val_set),
        model.outputs[0].shape[-1],
        grid=grid,
        batch_size=max(config.batch_size, 128),
    )
    return fit_model, train_ds, val_ds


#: Log names of the guided two-output model, mapped to those of a plain run.
_GUIDED_LOG_NAMES = {
    "predictions_loss": "classification_loss",
    "cam_features_loss": "guidance_loss",
    "predictions_accuracy": "accuracy",
    "predictions_auc": "auc",
}


def _plain_log_name(key: str) -> str:
    prefix = "val_" if key.startswith("val_") else ""
    base = key[len(prefix) :]
    return prefix + _GUIDED_LOG_NAMES.get(base, base)


class _Tracker(keras.callbacks.Callback):
    """Progress reporting, cooperative stopping and best-weights keeping."""

    def __init__(
        self,
        *,
        config: TrainConfig,
        batches: int,
        mode: str,
        on_epoch_end: Callable[[EpochProgress], None] | None,
        on_batch_end: Callable[[BatchProgress], None] | None,
        should_stop: Callable[[], bool] | None,
        checkpoint_path: str | Path | None,
    ) -> None:
        super().__init__()
        self.config = config
        self.batches = batches
        self.better = (lambda a, b: a < b) if mode == "min" else (lambda a, b: a > b)
        self.best_value = math.inf if mode == "min" else -math.inf
        self.best_epoch = -1
        self.best_weights: list[np.ndarray] | None = None
        self.history: dict[str, list[float]] = {}
        self.callbacks = (on_epoch_end, on_batch_end)
        self.should_stop = should_stop
        self.checkpoint_path = Path(checkpoint_path) if checkpoint_path else None
        self.stopped_by_user = False
        self.epochs_done = 0
        self.started = time.perf_counter()
        self.epoch = 0

    def _eta(self, fraction_done: float) -> float:
        elapsed = time.perf_counter() - self.started
        return elapsed / fraction_done - elapsed if fraction_done > 0 else math.nan

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.should_stop is not None and self.should_stop():
            self.stopped_by_user = True
            self.model.stop_training = True
        on_batch = self.callbacks[1]
        if on_batch is not None:
            done = (self.epoch * self.batches + batch + 1) / (self.config.epochs * self.batches)
            on_batch(
                BatchProgress(
                    epoch=self.epoch,
                    epochs=self.config.epochs,
                    batch=batch + 1,
                    batches=self.batches,
                    logs={_plain_log_name(k): float(v) for k, v in (logs or {}).items()},
                    elapsed_s=time.perf_counter() - self.started,
                    eta_s=self._eta(done),
                )
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = {_plain_log_name(k): float(v) for k, v in (logs or {}).items()}
        if self.stopped_by_user and not any(k.startswith("val_") for k in logs):
            return  # interrupted mid-epoch: its numbers describe a partial pass
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        self.epochs_done = epoch + 1
        value = logs.get(self.config.monitor, math.nan)
        if math.isfinite(value) and (self.best_epoch < 0 or self.better(value, self.best_value)):
            self.best_value, self.best_epoch = value, epoch
            self.best_weights = [w.copy() for w in self.model.get_weights()]
            if self.checkpoint_path is not None:
                self._save_checkpoint()
        on_epoch = self.callbacks[0]
        if on_epoch is not None:
            lr = float(np.asarray(self.model.optimizer.learning_rate))
            on_epoch(
                EpochProgress(
                    epoch=epoch,
                    epochs=self.config.epochs,
                    logs=logs,
                    history={k: list(v) for k, v in self.history.items()},
                    best_epoch=self.best_epoch,
                    best_value=self.best_value,
                    elapsed_s=time.perf_counter() - self.started,
                    eta_s=self._eta((epoch + 1) / self.config.epochs),
                    learning_rate=lr,
                )
            )

    def _save_checkpoint(self) -> None:
        import os

        assert self.checkpoint_path is not None
        self.checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.checkpoint_path.with_name(f".{self.checkpoint_path.name}.tmp.weights.h5")
        self.model.save_weights(temp)
        with open(temp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(temp, self.checkpoint_path)


#: Public name of the tracker, for training loops other than ``fit`` (medviz.distributed).
Tracker = _Tracker
