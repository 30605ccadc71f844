"""Training on several devices or machines with ``tf.distribute``.

Three modes, chosen by name (``medviz train --distribute …``):

- ``none``: the ordinary :func:`medviz.training.train` (Keras ``fit``; several local GPUs
  already get a ``MirroredStrategy`` there).
- ``mirrored``: the same ``fit`` path under an explicit ``tf.distribute.MirroredStrategy`` over
  every local GPU, or over ``N`` logical CPU devices when ``MEDVIZ_LOGICAL_CPUS=N`` is set
  (a CPU split in two trains no faster; it exists to test the mirrored path without GPUs).
- ``multiworker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across the machines named in
  the standard ``TF_CONFIG`` environment variable. Keras 3's ``fit`` does not run under this
  strategy (keras-team/keras#20585: "Keras 3 does not work with MultiWorkerMirroredStrategy"),
  so this module trains with a custom loop: a ``tf.function`` train step run by
  ``strategy.run``, gradients all-reduced by the Keras optimizer, the loss reduced with
  ``strategy.reduce``. It keeps what :func:`~medviz.training.train` does: the same model
  (:func:`~medviz.zoo.build_model`), optimizer and learning-rate schedule
  (:func:`~medviz.training.compile_for_training`), cross-entropy with label smoothing, class
  weights or undersampling, batch-wise augmentation (:func:`~medviz.training.make_pipeline`),
  best-epoch tracking, early stopping and learning-rate halving on plateau, checkpoints and
  epoch progress (the same tracker and Keras callbacks as ``fit``), and returns a
  :class:`~medviz.training.TrainResult` that :func:`medviz.pipeline.package_result` packages.

How the multi-worker loop keeps the run equivalent to one worker:

- ``config.batch_size`` is the **global** batch: each of the ``R`` replicas takes
  ``batch_size / R`` images per step, and every worker runs ``ceil(N_train / batch_size)``
  steps per epoch, as ``fit`` does on one machine, so the schedule sees the same steps.
- Each worker reads only its shard of the training images (every ``W``-th image, from
  ``distribute_datasets_from_function``'s input context), shuffled and augmented locally.
- BatchNormalization layers normalise with the statistics of the global batch while training
  (Keras' ``synchronized`` option, switched on for the run only), so the moving statistics
  stay identical on every worker and match what one worker with the whole batch computes.
- Validation runs on every worker over the whole validation split with identical weights;
  the metrics are then averaged across workers, so early stopping and learning-rate decisions
  are the same everywhere (a worker that stopped alone would leave the others waiting forever).
- Checkpoints go to ``checkpoint_path`` on the chief only; the other workers write theirs to a
  temporary folder that is removed at the end (the TensorFlow multi-worker tutorial's rule: every
  worker runs the same code, only the chief's files are kept).

Why one module (over 600 lines): reading ``TF_CONFIG``, creating the strategy before any other
TensorFlow work, and the loop that must run identically on every worker are one technique; the
loop's invariants (global batch, shards, synchronised statistics, agreed decisions) depend on
the plan the first half builds.

XLA stays off in the multi-worker step (it holds collective all-reduce ops). There is no fault
tolerance: if one worker dies, the others wait for it until the collective times out; start
every worker again.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from medviz.data.dataset import Dataset
from medviz.errors import DataError, MedvizError

Mode = Literal["none", "mirrored", "multiworker"]
MODES: tuple[Mode, ...] = ("none", "mirrored", "multiworker")

#: Environment variable: split the CPU into this many logical devices for ``mirrored``.
LOGICAL_CPUS_ENV = "MEDVIZ_LOGICAL_CPUS"

#: Jobs of a ``TF_CONFIG`` cluster that MultiWorkerMirroredStrategy trains with.
_TRAINING_JOBS = ("chief", "worker")


@dataclass(frozen=True)
class ClusterConfig:
    """A validated ``TF_CONFIG``: the cluster's machines and this process's task.

    Attributes:
        jobs: Job name (``"chief"``, ``"worker"``) -> ``host:port`` addresses.
        task_type: This process's job.
        task_index: This process's index within its job.
    """

    jobs: Mapping[str, tuple[str, ...]]
    task_type: str
    task_index: int

    @property
    def workers(self) -> int:
        """Machines that train (the chief counts as one)."""
        return sum(len(self.jobs.get(job, ())) for job in _TRAINING_JOBS)

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the model: the ``chief``, else ``worker`` 0."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    @property
    def address(self) -> str:
        """This process's own ``host:port``."""
        return self.jobs[self.task_type][self.task_index]

    @property
    def rank(self) -> int:
        """0 for the chief, then the workers in order (``chief`` first, then ``worker``)."""
        chiefs = len(self.jobs.get("chief", ()))
        return self.task_index if self.task_type == "chief" else chiefs + self.task_index


def parse_tf_config(text: str | None) -> ClusterConfig:
    """Parse and check a ``TF_CONFIG`` value.

    Args:
        text: The JSON text, e.g. ``{"cluster": {"worker": ["a:2222", "b:2222"]},
            "task": {"type": "worker", "index": 0}}``.

    Returns:
        The :class:`ClusterConfig`.

    Raises:
        MedvizError: Missing or not JSON; no ``cluster`` or ``task``; a job other than
            ``chief``/``worker`` (parameter servers and evaluators are not supported); more
            than one chief; an address that is not ``host:port``; a task type not in the
            cluster; an index out of range.
    """
    if text is None or not text.strip():
        raise MedvizError(
            "--distribute multiworker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:2222", "host2:2222"]}, '
            '"task": {"type": "worker", "index": 0}} (see docs/distributed.md); it is not set'
        )
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise MedvizError(f"TF_CONFIG is not valid JSON ({error}): {text!r}") from None
    if not isinstance(values, dict):
        raise MedvizError(f"TF_CONFIG must be a JSON object with cluster and task, got {text!r}")
    cluster, task = values.get("cluster"), values.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise MedvizError(
            'TF_CONFIG has no "cluster" (a mapping of job name to a list of host:port '
            f"addresses); got {cluster!r}"
        )
    unknown = sorted(set(cluster) - set(_TRAINING_JOBS))
    if unknown:
        raise MedvizError(
            f"TF_CONFIG cluster has job(s) {unknown}; MultiWorkerMirroredStrategy trains "
            f"with 'chief' and 'worker' only (parameter servers and evaluators are not supported)"
        )
    jobs: dict[str, tuple[str, ...]] = {}
    for job, addresses in cluster.items():
        if not isinstance(addresses, list) or not addresses:
            raise MedvizError(
                f"TF_CONFIG cluster[{job!r}] must be a non-empty list of host:port, "
                f"got {addresses!r}"
            )
        for address in addresses:
            _check_address(job, address)
        jobs[job] = tuple(addresses)
    if len(jobs.get("chief", ())) > 1:
        raise MedvizError(f"TF_CONFIG cluster has {len(jobs['chief'])} chiefs; at most one")
    every = [a for addresses in jobs.values() for a in addresses]
    if len(set(every)) != len(every):
        raise MedvizError(f"TF_CONFIG cluster names an address twice: {every}")
    if not isinstance(task, dict):
        raise MedvizError(
            'TF_CONFIG has no "task" (this machine\'s {"type": "worker", "index": i}); '
            f"got {task!r}"
        )
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in jobs:
        raise MedvizError(
            f"TF_CONFIG task type {task_type!r} is not a job of the cluster "
            f"({', '.join(sorted(jobs))})"
        )
    if isinstance(index, bool) or not isinstance(index, int):
        raise MedvizError(f"TF_CONFIG task index must be an integer, got {index!r}")
    if not 0 <= index < len(jobs[task_type]):
        raise MedvizError(
            f"TF_CONFIG task index {index} is out of range: the cluster has "
            f"{len(jobs[task_type])} {task_type} address(es), indices 0–{len(jobs[task_type]) - 1}"
        )
    return ClusterConfig(jobs=jobs, task_type=task_type, task_index=index)


def _check_address(job: str, address: object) -> None:
    host, _, port = str(address).rpartition(":")
    if not isinstance(address, str) or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise MedvizError(
            f"TF_CONFIG cluster[{job!r}] address {address!r} is not host:port "
            "(port 1–65535), e.g. '10.0.0.2:2222'"
        )


@dataclass(frozen=True)
class DistributionPlan:
    """How one process takes part in a run.

    Attributes:
        mode: ``"none"``, ``"mirrored"`` or ``"multiworker"``.
        strategy: The ``tf.distribute`` strategy (``None`` for ``"none"``).
        cluster: The parsed ``TF_CONFIG`` (``"multiworker"`` only).
        replicas: Replicas in sync (devices over all workers; 1 for ``"none"``).
        devices: Local devices the replicas run on.
    """

    mode: Mode
    strategy: Any = None
    cluster: ClusterConfig | None = None
    replicas: int = 1
    devices: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_chief(self) -> bool:
        """Whether this process writes the model and the run record."""
        return self.cluster is None or self.cluster.is_chief

    @property
    def workers(self) -> int:
        """Machines taking part (1 unless ``multiworker``)."""
        return 1 if self.cluster is None else self.cluster.workers

    def finish(self) -> None:
        """Wait until every worker of a ``multiworker`` run has called this (no-op otherwise).

        The chief calls it after writing the model, the other workers after training: a worker
        that exits while the chief still packages is reported by TensorFlow's coordination
        service as a crashed task (tensorflow/tensorflow#58434), so all of them leave together.
        """
        if self.mode != "multiworker":
            return
        import tensorflow as tf

        strategy = self.strategy

        @tf.function
        def barrier():
            ones = strategy.run(lambda: tf.constant(1.0))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, ones, axis=None)

        barrier()

    def describe(self) -> dict[str, Any]:
        """What a model card records about the run's distribution."""
        if self.mode == "none":
            return {"distribute": "none"}
        return {"distribute": self.mode, "workers": self.workers, "replicas": self.replicas}


def plan_distribution(
    mode: str,
    *,
    tf_config: str | None = None,
    logical_cpus: int | None = None,
) -> DistributionPlan:
    """Create the strategy of ``mode``; call it before any other TensorFlow work.

    Args:
        mode: ``"none"``, ``"mirrored"`` or ``"multiworker"``.
        tf_config: ``TF_CONFIG`` text (default: the environment's), for ``"multiworker"``.
        logical_cpus: For ``"mirrored"``: split the CPU into this many logical devices and
            mirror over them (default: ``$MEDVIZ_LOGICAL_CPUS``; unset: every local GPU, or the
            one device there is).

    Returns:
        The :class:`DistributionPlan` (``"none"`` imports no TensorFlow).

    Raises:
        MedvizError: Unknown mode, a bad ``TF_CONFIG`` or logical-device count, or logical
            devices requested after TensorFlow had started.
    """
    if mode not in MODES:
        raise MedvizError(f"distribute must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "none":
        return DistributionPlan(mode="none")
    if mode == "multiworker":
        text = os.environ.get("TF_CONFIG") if tf_config is None else tf_config
        cluster = parse_tf_config(text)
        import tensorflow as tf

        # The strategy reads TF_CONFIG itself; pass the text we checked.
        os.environ["TF_CONFIG"] = text or ""
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        devices = tuple(strategy.extended.worker_devices)
        return DistributionPlan(
            mode="multiworker",
            strategy=strategy,
            cluster=cluster,
            replicas=int(strategy.num_replicas_in_sync),
            devices=devices,
        )
    count = _logical_cpus(logical_cpus)
    import tensorflow as tf

    if count is not None:
        _split_cpu(tf, count)
        names = tuple(d.name for d in tf.config.list_logical_devices("CPU"))
        # NCCL, MirroredStrategy's default all-reduce, is GPU-only.
        strategy = tf.distribute.MirroredStrategy(
            devices=list(names), cross_device_ops=tf.distribute.ReductionToOneDevice()
        )
    else:
        strategy = tf.distribute.MirroredStrategy()
    devices = tuple(strategy.extended.worker_devices)
    if len(devices) < 2:
        warnings.warn(
            f"--distribute mirrored found one device ({devices[0] if devices else 'none'}): "
            f"it trains like --distribute none; it needs several GPUs, or {LOGICAL_CPUS_ENV}=N "
            "to split the CPU for a test",
            stacklevel=2,
        )
    return DistributionPlan(
        mode="mirrored",
        strategy=strategy,
        replicas=int(strategy.num_replicas_in_sync),
        devices=devices,
    )


def _logical_cpus(value: int | None) -> int | None:
    if value is None:
        text = os.environ.get(LOGICAL_CPUS_ENV, "").strip()
        if not text:
            return None
        if not text.isdigit():
            raise MedvizError(f"{LOGICAL_CPUS_ENV} must be a whole number ≥ 1, got {text!r}")
        value = int(text)
    if value < 1:
        raise MedvizError(f"logical_cpus must be at least 1, got {value}")
    return value


def _split_cpu(tf, count: int) -> None:
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        present = len(tf.config.list_logical_devices("CPU"))
        if present != count:
            raise MedvizError(
                f"cannot split the CPU into {count} logical devices: TensorFlow has already "
                f"started with {present}; set {LOGICAL_CPUS_ENV} before the process uses "
                "TensorFlow (a new process)"
            ) from None


def train_distributed(
    plan: DistributionPlan,
    config,
    data: Dataset,
    *,
    on_epoch_end: Callable | None = None,
    checkpoint_path: str | Path | None = None,
    on_batch_end: Callable | None = None,
    log_dir: str | Path | None = None,
):
    """Train ``config`` on ``data`` as ``plan`` says; every worker of a cluster calls it.

    Args:
        plan: From :func:`plan_distribution`.
        config: A :class:`~medviz.training.TrainConfig`; ``batch_size`` is the global batch.
        data: A dataset with ``"train"`` and ``"val"`` splits, the same on every worker.
        on_epoch_end: Called after every epoch with an :class:`~medviz.training.EpochProgress`.
        checkpoint_path: Best weights after every improvement (``*.weights.h5``); workers other
            than the chief write to a temporary folder instead, removed at the end.
        on_batch_end: Called after every batch (``none`` and ``mirrored``; the multi-worker
            loop reports per epoch only).
        log_dir: TensorBoard and CSV logs (``none`` and ``mirrored`` only).

    Returns:
        A :class:`~medviz.training.TrainResult` whose model holds the best weights (for
        ``multiworker``, a plain model outside the strategy, ready to package and save).

    Raises:
        DataError: A split is missing or holds a single class.
        MedvizError: Box guidance or ``log_dir`` with ``multiworker`` (not supported).
    """
    from medviz.training import train

    common = {
        "on_epoch_end": on_epoch_end,
        "checkpoint_path": checkpoint_path,
        "on_batch_end": on_batch_end,
        "log_dir": log_dir,
    }
    if plan.mode == "none":
        return train(config, data, **common)
    if plan.mode == "mirrored":
        return train(config, data, strategy=plan.strategy, **common)
    if log_dir is not None:
        raise MedvizError(
            "--logdir writes Keras callbacks' logs, which the multi-worker loop does not run; "
            "drop --logdir or use --distribute mirrored"
        )
    if plan.is_chief:
        return _train_multiworker(plan, config, data, on_epoch_end, checkpoint_path)
    with tempfile.TemporaryDirectory(prefix="medviz-worker-") as scratch:
        path = Path(scratch) / "checkpoint.weights.h5" if checkpoint_path else None
        return _train_multiworker(plan, config, data, on_epoch_end, path)


def train_and_package_distributed(plan: DistributionPlan, config, data: Dataset, **options):
    """:func:`medviz.pipeline.train_and_package` with training done as ``plan`` says.

    Call it on the chief (other workers call :func:`train_distributed` alone). The card's
    ``training`` records the plan (``distribute``, ``workers``, ``replicas``).

    Args:
        plan: From :func:`plan_distribution`.
        config: Training settings (``batch_size`` is the global batch).
        data: The dataset.
        **options: Keyword arguments of :func:`~medviz.pipeline.train_and_package`
            (``on_epoch_end`` and ``checkpoint_path`` go to the training).

    Returns:
        The :class:`~medviz.pipeline.PackagedRun`.
    """
    from medviz.metrics import parse_threshold_policy
    from medviz.pipeline import package_result, train_and_package

    if plan.mode == "none":
        return train_and_package(config, data, **options)
    parse_threshold_policy(options.get("threshold_policy", "fixed"))  # fail before training
    result = train_distributed(
        plan,
        config,
        data,
        on_epoch_end=options.pop("on_epoch_end", None),
        checkpoint_path=options.pop("checkpoint_path", None),
        on_batch_end=options.pop("on_batch_end", None),
        log_dir=options.pop("log_dir", None),
    )
    run = package_result(result, data, **options)
    card = run.bundle.card
    run.bundle.card = replace(card, training={**card.training, **plan.describe()})
    return run


# --- the multi-worker loop ---------------------------------------------------------------------


def _train_multiworker(
    plan: DistributionPlan,
    config,
    data: Dataset,
    on_epoch_end: Callable | None,
    checkpoint_path: str | Path | None,
):
    import keras
    import tensorflow as tf

    from medviz.data.balance import class_weights, undersample
    from medviz.training import (
        Tracker,
        TrainResult,
        compile_for_training,
        make_pipeline,
        resize_images,
    )
    from medviz.zoo import build_model, get_arch

    if config.cam_guidance > 0:
        raise MedvizError(
            f"cam_guidance={config.cam_guidance}: box-guided training runs on Keras fit, which "
            "does not run multi-worker; use --distribute none or mirrored for it"
        )
    if not isinstance(data, Dataset):
        # Each worker slices its shard out of in-memory arrays; a streamed dataset has none.
        raise MedvizError(
            "--distribute multiworker reads the dataset in memory on every worker; "
            "drop --stream (or use --distribute mirrored, which streams)"
        )
    train_set = data.split("train")
    if "val" not in data.available_splits:
        raise DataError(
            f"dataset {data.name!r} has no validation split; training needs one to pick the "
            "best epoch (splits present: " + ", ".join(data.available_splits) + ")"
        )
    val_set = data.split("val")
    if len(np.unique(train_set.labels)) < 2:
        raise DataError(f"the train split of {data.name!r} holds a single class")
    size = config.image_size or data.image_shape[0]
    if size < get_arch(config.arch).min_size:
        raise MedvizError(
            f"{config.arch} needs image_size >= {get_arch(config.arch).min_size}, got {size}"
        )
    replicas = plan.replicas
    if config.batch_size % replicas:
        raise MedvizError(
            f"batch_size={config.batch_size} must be a multiple of the {replicas} replicas "
            f"({plan.workers} workers): each replica takes an equal part of the global batch"
        )
    x_train, y_train = resize_images(train_set.images, size), train_set.labels
    x_val, y_val = resize_images(val_set.images, size), val_set.labels
    if config.imbalance == "undersample":
        keep = undersample(y_train, seed=config.seed)
        x_train, y_train = x_train[keep], y_train[keep]
    n_classes = data.n_classes
    weights = None
    if config.imbalance == "class-weights":
        by_class = class_weights(y_train, n_classes)
        weights = np.array([by_class[int(c)] for c in y_train], dtype=np.float32)
    input_shape = (size, size, data.image_shape[-1])
    steps = math.ceil(len(x_train) / config.batch_size)
    config = replace(config, jit_compile=False, image_size=size)
    strategy = plan.strategy
    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = build_model(
            config.arch, input_shape, n_classes, seed=config.seed, **config.arch_options
        )
        compile_for_training(model, config, steps_per_epoch=steps)
        model.optimizer.build(model.trainable_variables)
    batch_norms = [
        layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
    ]
    for layer in batch_norms:
        layer.synchronized = True  # global-batch statistics: see the module docstring

    def shard(context: tf.distribute.InputContext) -> tf.data.Dataset:
        part = slice(context.input_pipeline_id, None, context.num_input_pipelines)
        return make_pipeline(
            x_train[part],
            y_train[part],
            n_classes,
            batch_size=context.get_per_replica_batch_size(config.batch_size),
            augment=config.augment,
            shuffle=True,
            seed=config.seed + context.input_pipeline_id,
            sample_weights=None if weights is None else weights[part],
        ).repeat()

    batches = iter(strategy.distribute_datasets_from_function(shard))
    smoothing = config.label_smoothing
    global_batch = config.batch_size

    def replica_step(x, y, *w):
        with tf.GradientTape() as tape:
            probs = model(x, training=True)
            losses = keras.losses.categorical_crossentropy(y, probs, label_smoothing=smoothing)
            if w:
                losses = losses * tf.cast(w[0], losses.dtype)
            loss = tf.nn.compute_average_loss(losses, global_batch_size=global_batch)
            if model.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(model.losses))
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        correct = tf.reduce_sum(
            tf.cast(tf.equal(tf.argmax(probs, -1), tf.argmax(y, -1)), tf.float32)
        )
        return loss, correct, tf.cast(tf.shape(x)[0], tf.float32)

    @tf.function
    def train_step(iterator):
        loss, correct, seen = strategy.run(replica_step, args=next(iterator))
        total = tf.distribute.ReduceOp.SUM
        return (
            strategy.reduce(total, loss, axis=None),
            strategy.reduce(total, correct, axis=None),
            strategy.reduce(total, seen, axis=None),
        )

    @tf.function
    def agree(values):
        # Averaged over workers: every worker takes the same stop / learning-rate decision.
        per_replica = strategy.run(tf.identity, args=(values,))
        return strategy.reduce(tf.distribute.ReduceOp.MEAN, per_replica, axis=None)

    @tf.function
    def predict(x):
        return model(x, training=False)

    mode = "min" if config.monitor == "val_loss" else "max"
    tracker = Tracker(
        config=config,
        batches=steps,
        mode=mode,
        on_epoch_end=on_epoch_end,
        on_batch_end=None,
        should_stop=None,
        checkpoint_path=checkpoint_path,
    )
    callbacks: list = [tracker]
    if config.early_stopping_patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=config.monitor, mode=mode, patience=config.early_stopping_patience
            )
        )
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
    hooks = keras.callbacks.CallbackList(callbacks, model=model)
    model.stop_training = False
    started = time.perf_counter()
    hooks.on_train_begin()
    for epoch in range(config.epochs):
        hooks.on_epoch_begin(epoch)
        loss_sum = correct_sum = seen_sum = 0.0
        for _ in range(steps):
            loss, correct, seen = train_step(batches)
            loss_sum += float(loss)
            correct_sum += float(correct)
            seen_sum += float(seen)
        val = _validate(predict, x_val, y_val, n_classes, smoothing)
        val = dict(zip(val, np.asarray(agree(tf.constant(list(val.values()))), float), strict=True))
        logs = {"loss": loss_sum / steps, "accuracy": correct_sum / max(seen_sum, 1.0), **val}
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end()
    seconds = time.perf_counter() - started
    for layer in batch_norms:
        layer.synchronized = False
    # A plain copy outside the strategy: packaging, saving and inference see an ordinary model.
    best = tracker.best_weights if tracker.best_weights is not None else model.get_weights()
    plain = build_model(
        config.arch, input_shape, n_classes, seed=config.seed, **config.arch_options
    )
    compile_for_training(plain, config, steps_per_epoch=steps)
    plain.set_weights(best)
    finished = tracker.epochs_done
    return TrainResult(
        model=plain,
        history=tracker.history,
        best_epoch=tracker.best_epoch,
        best_value=tracker.best_value,
        stopped_by_user=False,
        stopped_early=0 < finished < config.epochs,
        seconds=seconds,
        config=config,
        class_names=data.class_names,
        input_shape=input_shape,
        train_counts={
            c: int(k)
            for c, k in zip(
                data.class_names, np.bincount(y_train, minlength=n_classes), strict=True
            )
        },
        jit_reason=(
            f"XLA off: multi-worker custom train step ({plan.workers} workers, "
            f"{replicas} replicas) with collective all-reduce"
        ),
    )


def _validate(
    predict: Callable,
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    label_smoothing: float,
    *,
    batch_size: int = 256,
) -> dict[str, float]:
    """``val_loss``, ``val_accuracy`` and ``val_auc`` as Keras ``fit`` computes them.

    ``val_auc`` is ``keras.metrics.AUC`` over the one-hot labels (the metric ``fit`` logs).
    """
    import keras

    probs = np.concatenate(
        [
            np.asarray(predict(images[start : start + batch_size].astype(np.float32)))
            for start in range(0, len(images), batch_size)
        ]
    )
    one_hot = np.eye(n_classes, dtype=np.float32)[labels]
    loss = keras.losses.categorical_crossentropy(one_hot, probs, label_smoothing=label_smoothing)
    auc = keras.metrics.AUC()
    auc.update_state(one_hot, probs)
    return {
        "val_loss": float(np.mean(np.asarray(loss))),
        "val_accuracy": float(np.mean(probs.argmax(axis=1) == labels)),
        "val_auc": float(auc.result()),
    }
