"""TensorBoard and CSV logs of a training run, with Grad-CAM images of a few validation images.

``medviz train --logdir DIR`` and the Train page's "TensorBoard logs" toggle hand
:func:`medviz.training.train` a log folder; :func:`log_callbacks` turns it into
Keras' own ``TensorBoard`` (scalars: losses, accuracy, AUC, learning rate) and
``CSVLogger`` (``DIR/history.csv``, one row per epoch) callbacks plus a
:class:`GradCamImages` callback that writes, after every epoch, the Grad-CAM
overlays of a fixed set of validation images (the same images every epoch, so
the maps can be compared across epochs in TensorBoard's Images tab).

TensorBoard is an optional extra (``pip install 'medviz[tensorboard]'``): its
absence is reported with one clear :class:`~medviz.errors.MedvizError` before
training starts, never half-way through.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import keras
import numpy as np

from medviz.errors import MedvizError

CSV_FILE = "history.csv"
"""Name of the per-epoch CSV log inside the log folder."""

IMAGES_DIR = "gradcam"
"""Sub-folder of the log folder holding the Grad-CAM image summaries."""

DEFAULT_CAM_IMAGES = 4
"""Validation images whose Grad-CAM is logged every epoch."""


def require_tensorboard() -> None:
    """Raise a clear error when the ``tensorboard`` package is missing.

    Raises:
        MedvizError: ``tensorboard`` cannot be imported.
    """
    if importlib.util.find_spec("tensorboard") is None:
        raise MedvizError(
            "TensorBoard logs need the 'tensorboard' package, which is not installed; "
            "install it with: pip install 'medviz[tensorboard]' (or pip install tensorboard)"
        )


def tensorboard_command(log_dir: str | Path) -> str:
    """The shell command that shows the logs of ``log_dir``."""
    import shlex

    return f"tensorboard --logdir {shlex.quote(str(log_dir))}"


def cam_sample(labels: np.ndarray, n: int = DEFAULT_CAM_IMAGES) -> np.ndarray:
    """Indices of ``n`` validation images to follow, spread over the classes, fixed order.

    Args:
        labels: ``(N,)`` validation labels.
        n: How many images.

    Returns:
        ``(min(n, N),)`` int64 indices: the first image of each class in turn.
    """
    labels = np.asarray(labels)
    per_class = [np.flatnonzero(labels == c).tolist() for c in np.unique(labels)]
    picked: list[int] = []
    while len(picked) < min(n, len(labels)):
        for members in per_class:
            if members and len(picked) < n:
                picked.append(members.pop(0))
    return np.asarray(picked, dtype=np.int64)


class GradCamImages(keras.callbacks.Callback):
    """Writes Grad-CAM overlays of fixed validation images to TensorBoard after every epoch.

    Args:
        model: The classifier (``(None, S, S, C) -> (None, K)`` softmax) whose
            maps are drawn; for box-guided training the plain model, not the
            two-output training wrapper.
        images: ``(M, S, S, C)`` uint8 validation images (raw pixels).
        labels: ``(M,)`` their true classes (the map explains the true class).
        log_dir: The run's log folder; images go to ``log_dir/gradcam``.
    """

    def __init__(
        self, model: keras.Model, images: np.ndarray, labels: np.ndarray, *, log_dir: str | Path
    ) -> None:
        super().__init__()
        self.classifier = model
        self.images = np.asarray(images)
        self.labels = np.asarray(labels, dtype=np.int64)
        self.folder = Path(log_dir) / IMAGES_DIR
        self._explainer = None
        self._writer = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        import tensorflow as tf

        from medviz.explain import Explainer

        self._explainer = Explainer(self.classifier)
        self._writer = tf.summary.create_file_writer(str(self.folder))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        import tensorflow as tf

        from medviz.explain.methods import run_batch
        from medviz.explain.overlay import overlay

        if self._explainer is None or self._writer is None or not len(self.images):
            return
        self._explainer.refresh()  # clone-based heads copy the new weights; a no-op otherwise
        maps, _, probabilities = run_batch(
            self._explainer, self.images, method="gradcam", class_indices=self.labels
        )
        blended = np.stack(
            [overlay(image, heat, alpha=0.4) for image, heat in zip(self.images, maps, strict=True)]
        )
        true_class = probabilities[np.arange(len(blended)), self.labels]
        with self._writer.as_default(step=epoch):
            tf.summary.image(
                "gradcam/true_class",
                blended,
                max_outputs=len(blended),
                description="Grad-CAM of the true class over fixed validation images "
                f"(probabilities of the true class: "
                f"{', '.join(f'{p:.2f}' for p in true_class)})",
            )
        self._writer.flush()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()


def log_callbacks(
    log_dir: str | Path,
    *,
    model: keras.Model,
    val_images: np.ndarray,
    val_labels: np.ndarray,
    cam_images: int = DEFAULT_CAM_IMAGES,
    append: bool = False,
) -> list[keras.callbacks.Callback]:
    """Keras' ``TensorBoard`` and ``CSVLogger`` callbacks plus :class:`GradCamImages`.

    Args:
        log_dir: Folder for the logs (created).
        model: The classifier whose Grad-CAM is drawn (see :class:`GradCamImages`).
        val_images: ``(N, S, S, C)`` uint8 validation images at the training size.
        val_labels: ``(N,)`` their labels.
        cam_images: Validation images followed by Grad-CAM (0: none).
        append: Append to an existing CSV log (a resumed run).

    Returns:
        The callbacks, to pass to ``fit``.

    Raises:
        MedvizError: ``tensorboard`` is not installed.
    """
    require_tensorboard()
    folder = Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    callbacks: list[keras.callbacks.Callback] = [
        # update_freq="epoch": one point per epoch, like the CSV; no profiler, no weight
        # histograms (they slow small-model epochs by more than the training itself).
        keras.callbacks.TensorBoard(log_dir=str(folder), histogram_freq=0, write_graph=False),
        keras.callbacks.CSVLogger(str(folder / CSV_FILE), append=append),
    ]
    if cam_images > 0:
        index = cam_sample(val_labels, cam_images)
        callbacks.append(
            GradCamImages(model, val_images[index], np.asarray(val_labels)[index], log_dir=folder)
        )
    return callbacks
