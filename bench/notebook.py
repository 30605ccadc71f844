"""The source work's input pipeline: Keras 2 ``ImageDataGenerator``, re-implemented.

Keras 3 no longer ships ``ImageDataGenerator``. :class:`ImageTransformer`
reproduces what Keras 2's ``ImageDataGenerator.get_random_transform`` +
``apply_affine_transform`` did for one image: draw rotation, shift, shear,
zoom and flips, compose one 3×3 matrix about the image centre and resample
each channel with ``scipy.ndimage.affine_transform`` (bilinear, ``order=1``).
:class:`NotebookSequence` is the ``flow(x, y, batch_size)`` iterator around it:
a ``keras.utils.PyDataset`` whose ``__getitem__`` augments the images of a
batch one at a time in Python, fed to ``fit`` with Keras 2's defaults
(``workers=1``, ``use_multiprocessing=False``).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from scipy import ndimage

from medviz.augment import AugmentConfig


class ImageTransformer:
    """Keras 2 ``ImageDataGenerator`` random transforms, from a :class:`AugmentConfig`.

    The mapping: ``rotation_range = rotation_deg``; ``zoom_range =
    [1/zoom_max, 1]`` (Keras 2 zooms *in* with factors below 1, drawn
    independently for rows and columns); ``width/height_shift_range = shift``;
    ``shear_range = degrees(arctan(shear))``; flips as given; brightness,
    contrast and Gaussian noise as a ``preprocessing_function`` would apply
    them. ``fill_mode="reflect"`` as in MedViz. Elastic deformation has no
    ``ImageDataGenerator`` equivalent and is ignored.

    Args:
        config: The augmentation strengths.
    """

    def __init__(self, config: AugmentConfig) -> None:
        self.config = config
        self.zoom_range = (1.0 / config.zoom_max, 1.0)
        self.shear_deg = float(np.degrees(np.arctan(config.shear)))

    def random_transform(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Augment one image.

        Args:
            image: ``(H, W, C)`` float32 in ``[0, 255]``.
            rng: Source of the random parameters.

        Returns:
            ``(H, W, C)`` float32.
        """
        c = self.config
        h, w = image.shape[:2]
        theta = rng.uniform(-c.rotation_deg, c.rotation_deg) if c.rotation_deg else 0.0
        tx = rng.uniform(-c.shift, c.shift) * h if c.shift else 0.0
        ty = rng.uniform(-c.shift, c.shift) * w if c.shift else 0.0
        shear = rng.uniform(-self.shear_deg, self.shear_deg) if self.shear_deg else 0.0
        if self.zoom_range != (1.0, 1.0):
            zx, zy = rng.uniform(self.zoom_range[0], self.zoom_range[1], 2)
        else:
            zx = zy = 1.0
        x = apply_affine_transform(image, theta=theta, tx=tx, ty=ty, shear=shear, zx=zx, zy=zy)
        if c.horizontal_flip and rng.random() < 0.5:
            x = x[:, ::-1]
        if c.vertical_flip and rng.random() < 0.5:
            x = x[::-1]
        if c.brightness:
            x = x + rng.uniform(-c.brightness, c.brightness) * 255.0
        if c.contrast:
            mean = x.mean(axis=(0, 1), keepdims=True)
            x = (x - mean) * rng.uniform(1.0 - c.contrast, 1.0 + c.contrast) + mean
        if c.noise_sigma:
            x = x + rng.normal(0.0, c.noise_sigma, size=x.shape)
        return np.clip(x, 0.0, 255.0).astype(np.float32, copy=False)


def _offset_center(matrix: np.ndarray, h: int, w: int) -> np.ndarray:
    o_x, o_y = h / 2 + 0.5, w / 2 + 0.5
    offset = np.array([[1, 0, o_x], [0, 1, o_y], [0, 0, 1]])
    reset = np.array([[1, 0, -o_x], [0, 1, -o_y], [0, 0, 1]])
    return offset @ matrix @ reset


def apply_affine_transform(
    image: np.ndarray,
    *,
    theta: float = 0.0,
    tx: float = 0.0,
    ty: float = 0.0,
    shear: float = 0.0,
    zx: float = 1.0,
    zy: float = 1.0,
    fill_mode: str = "reflect",
    order: int = 1,
) -> np.ndarray:
    """Keras 2's ``apply_affine_transform`` for a channels-last image.

    Args:
        image: ``(H, W, C)`` float array.
        theta: Rotation in degrees.
        tx: Shift along rows, in pixels.
        ty: Shift along columns, in pixels.
        shear: Shear angle in degrees.
        zx: Zoom factor along rows (below 1 zooms in).
        zy: Zoom factor along columns.
        fill_mode: ``scipy.ndimage`` boundary mode.
        order: Spline order (1: bilinear).

    Returns:
        ``(H, W, C)`` transformed image (``image`` itself when nothing changes).
    """
    matrix = np.eye(3)
    changed = False
    if theta:
        t = np.deg2rad(theta)
        matrix = matrix @ np.array(
            [[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]]
        )
        changed = True
    if tx or ty:
        matrix = matrix @ np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]])
        changed = True
    if shear:
        s = np.deg2rad(shear)
        matrix = matrix @ np.array([[1, -np.sin(s), 0], [0, np.cos(s), 0], [0, 0, 1]])
        changed = True
    if zx != 1 or zy != 1:
        matrix = matrix @ np.array([[zx, 0, 0], [0, zy, 0], [0, 0, 1]])
        changed = True
    if not changed:
        return image
    h, w = image.shape[:2]
    matrix = _offset_center(matrix, h, w)
    channels = [
        ndimage.affine_transform(
            image[..., k], matrix[:2, :2], matrix[:2, 2], order=order, mode=fill_mode, cval=0.0
        )
        for k in range(image.shape[-1])
    ]
    return np.stack(channels, axis=-1)


class NotebookSequence(keras.utils.PyDataset):
    """``ImageDataGenerator(...).flow(x, y, batch_size, shuffle=True, seed=seed)``.

    Args:
        images: ``(N, H, W, C)`` uint8 images.
        labels: ``(N,)`` integer labels.
        n_classes: Number of classes (labels are one-hot encoded).
        batch_size: Images per batch.
        augment: Augmentations (``None``: none).
        seed: Seeds the shuffling and the transforms.
        workers: ``PyDataset`` workers (Keras 2's default: 1).
        use_multiprocessing: Worker processes instead of threads (default off).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        n_classes: int,
        *,
        batch_size: int,
        augment: AugmentConfig | None,
        seed: int = 0,
        workers: int = 1,
        use_multiprocessing: bool = False,
    ) -> None:
        super().__init__(workers=workers, use_multiprocessing=use_multiprocessing)
        self.images = images
        self.labels = np.asarray(labels)
        self.n_classes = n_classes
        self.batch_size = batch_size
        self.transformer = (
            None if augment is None or augment.is_identity else ImageTransformer(augment)
        )
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(images))

    def __len__(self) -> int:
        return math.ceil(len(self.images) / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Batch ``index``: ``((B, H, W, C) float32, (B, K) float32 one-hot)``."""
        chosen = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        batch = np.empty((len(chosen), *self.images.shape[1:]), dtype=np.float32)
        for j, i in enumerate(chosen):
            image = self.images[i].astype(np.float32)
            if self.transformer is not None:
                image = self.transformer.random_transform(image, self.rng)
            batch[j] = image
        return batch, np.eye(self.n_classes, dtype=np.float32)[self.labels[chosen]]

    def on_epoch_end(self) -> None:
        """Reshuffle, as ``flow(shuffle=True)`` did."""
        self.order = self.rng.permutation(len(self.images))
