"""Box-guided training: teach a classifier to look where the lesion is.

A CNN trained on labels alone may classify well while its class activation
map points elsewhere: measured on real tumour boxes (``brain-tumor-boxes``),
the first shipped brain MRI model classified 98 % of slices right while the
maximum of its Grad-CAM fell inside the tumour for 0.3 % of them (and inside
for 22 % after the architecture was fixed). Where some training images come
with lesion boxes or masks, this module adds a second loss that moves the
class activation map into the lesion.

For a network ending in ``feature map A (h, w, D) → global average pooling →
Dense(W, b)``, the class-``c`` activation map is ``CAM_c = A · W[:, c]``
(Zhou et al. 2016); Grad-CAM at that layer is the same map up to a positive
factor, so what is trained here is what the Explain page shows. The loss is
the cross-entropy between the mask's share of every map cell (a distribution
over the ``h·w`` cells) and the spatial softmax of ``CAM_c``: it is smallest
when the map's mass — and so its maximum — sits on the lesion. Images
without a lesion add nothing.

The guided model is trained as a two-output functional model
(``predictions`` and the feature map) over the very layers of the classifier,
so the classifier that is saved has no extra layer and loads with
``safe_mode=True``.
"""

from __future__ import annotations

import keras
import numpy as np

from medviz.augment import AugmentConfig, augment_batch, build_augmenter
from medviz.errors import ModelError

#: Name of the feature-map output of the training model (and of its loss).
FEATURES_OUTPUT = "cam_features"


def cam_feature_layer(model: keras.Model) -> str:
    """Name of the layer whose output feeds the model's global average pooling.

    Raises:
        ModelError: The model has no single ``GlobalAveragePooling2D`` head
            followed by a Dense ``predictions`` layer.
    """
    pools = [
        layer for layer in model.layers if isinstance(layer, keras.layers.GlobalAveragePooling2D)
    ]
    try:
        dense = model.get_layer("predictions")
    except ValueError:
        dense = None
    if len(pools) != 1 or not isinstance(dense, keras.layers.Dense):
        raise ModelError(
            f"box guidance needs a model ending in one GlobalAveragePooling2D and a Dense "
            f"'predictions' layer; {model.name!r} has {len(pools)} pooling layer(s) and "
            f"predictions={type(dense).__name__}"
        )
    history = pools[0].input._keras_history
    return history.operation.name


class BoxGuidanceLoss(keras.losses.Loss):
    """Cross-entropy between a lesion's cell shares and the spatial softmax of the class map.

    ``y_true`` is ``(B, h, w, 1 + K)``: channel 0 the share of each map cell
    covered by the lesion (all zero: no lesion), channels ``1:`` the one-hot
    class broadcast over the grid. ``y_pred`` is the ``(B, h, w, D)`` feature
    map. Returns ``(B,)`` losses (0 for images without a lesion).
    """

    def __init__(self, kernel: keras.Variable, *, name: str = "box_guidance") -> None:
        super().__init__(name=name)
        self.kernel = kernel

    def call(self, y_true, y_pred):
        ops = keras.ops
        share = y_true[..., 0]
        onehot = y_true[..., 1:]
        cam = ops.einsum("bhwd,dc->bhwc", y_pred, ops.cast(self.kernel, y_pred.dtype))
        score = ops.sum(cam * onehot, axis=-1)
        batch = ops.shape(score)[0]
        score = ops.reshape(score, (batch, -1))
        target = ops.reshape(share, (batch, -1))
        total = ops.sum(target, axis=-1, keepdims=True)
        target = target / ops.maximum(total, 1e-6)
        loss = -ops.sum(target * ops.log_softmax(score, axis=-1), axis=-1)
        return ops.where(total[:, 0] > 0, loss, ops.zeros_like(loss))


def guided_training_model(model: keras.Model) -> keras.Model:
    """A two-output view (``predictions``, feature map) over the layers of ``model``."""
    features = model.get_layer(cam_feature_layer(model)).output
    return keras.Model(
        model.inputs, {"predictions": model.outputs[0], FEATURES_OUTPUT: features}, name=model.name
    )


def compile_guided(
    training_model: keras.Model,
    *,
    optimizer: keras.optimizers.Optimizer,
    label_smoothing: float,
    weight: float,
    jit_compile: bool,
) -> None:
    """Compile the two-output model: classification loss + ``weight`` × box guidance."""
    kernel = training_model.get_layer("predictions").kernel
    training_model.compile(
        optimizer=optimizer,
        loss={
            "predictions": keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
            FEATURES_OUTPUT: BoxGuidanceLoss(kernel),
        },
        loss_weights={"predictions": 1.0, FEATURES_OUTPUT: float(weight)},
        metrics={"predictions": ["accuracy", keras.metrics.AUC(name="auc")]},
        jit_compile=jit_compile,
    )


def make_guided_pipeline(
    images: np.ndarray,
    labels: np.ndarray,
    masks: np.ndarray,
    n_classes: int,
    *,
    grid: tuple[int, int],
    batch_size: int,
    augment: AugmentConfig | None = None,
    shuffle: bool = False,
    seed: int = 0,
):
    """A ``tf.data.Dataset`` of ``(images, {"predictions": one-hot, "cam_features": target})``.

    Args:
        images: ``(N, S, S, C)`` uint8.
        labels: ``(N,)`` class indices.
        masks: ``(N, S, S)`` bool lesion masks (all ``False``: no lesion).
        n_classes: ``K``.
        grid: ``(h, w)`` of the feature map the guidance acts on.
        batch_size: Images per batch.
        augment: Augmentations; the geometric ones move image and mask
            together, the photometric ones touch the image only.
        shuffle: Shuffle every epoch (seeded).
        seed: Seed of shuffle and augmentation.
    """
    import tensorflow as tf

    mask_pixels = masks.astype(np.uint8)[..., None] * np.uint8(255)
    ds = tf.data.Dataset.from_tensor_slices((images, labels, mask_pixels))
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    geometric = photometric = None
    if augment is not None:
        geometric = build_augmenter(augment, seed=seed, part="geometric")
        photometric = build_augmenter(augment, seed=seed, part="photometric")
    height, width = grid

    def prepare(x, y, m):
        both = tf.concat([tf.cast(x, tf.float32), tf.cast(m, tf.float32)], axis=-1)
        if geometric is not None:
            both = geometric(both, training=True)
        x = augment_batch(photometric, tf.clip_by_value(both[..., :-1], 0.0, 255.0))
        share = tf.image.resize(
            tf.clip_by_value(both[..., -1:] / 255.0, 0.0, 1.0), (height, width), method="area"
        )
        onehot = tf.one_hot(y, n_classes)
        grid_onehot = tf.broadcast_to(
            onehot[:, None, None, :], (tf.shape(onehot)[0], height, width, n_classes)
        )
        return x, {"predictions": onehot, FEATURES_OUTPUT: tf.concat([share, grid_onehot], -1)}

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)
