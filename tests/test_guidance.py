import numpy as np
import pytest

from medviz.augment import AugmentConfig
from medviz.errors import DataError, MedvizError, ModelError
from medviz.guidance import BoxGuidanceLoss, cam_feature_layer
from medviz.training import TrainConfig, train
from medviz.zoo import build_model


def _target(share: np.ndarray, label: int, n_classes: int) -> np.ndarray:
    onehot = np.broadcast_to(np.eye(n_classes)[label], (*share.shape, n_classes))
    return np.concatenate([share[..., None], onehot], axis=-1)[None].astype("float32")


def test_loss_is_low_when_the_class_map_peaks_on_the_lesion():
    import keras

    kernel = keras.Variable(np.eye(2, dtype="float32"))  # feature d is the map of class d
    share = np.zeros((4, 4), "float32")
    share[1, 2] = 1.0
    on, off = np.zeros((1, 4, 4, 2), "float32"), np.zeros((1, 4, 4, 2), "float32")
    on[0, 1, 2, 1] = 5.0
    off[0, 3, 0, 1] = 5.0
    loss = BoxGuidanceLoss(kernel)
    y_true = _target(share, 1, 2)
    low = float(np.asarray(loss.call(y_true, on))[0])
    high = float(np.asarray(loss.call(y_true, off))[0])
    assert low < np.log(16) < high
    # The map of the *other* class peaking on the lesion does not help.
    other = np.zeros((1, 4, 4, 2), "float32")
    other[0, 1, 2, 0] = 5.0
    assert float(np.asarray(loss.call(y_true, other))[0]) == pytest.approx(np.log(16), rel=1e-5)
    # No lesion, no loss.
    assert float(np.asarray(loss.call(_target(np.zeros((4, 4)), 1, 2), off))[0]) == 0.0


def test_feature_layer_is_the_map_before_global_average_pooling():
    assert cam_feature_layer(build_model("res-cnn-loc", (64, 64, 1), 3)) == "stage4_out"
    with pytest.raises(ModelError, match="GlobalAveragePooling2D"):
        cam_feature_layer(build_model("fast-cnn", (32, 32, 1), 2))  # global max pooling


def test_guidance_needs_masks_and_refuses_class_weights(tiny_microcalc):
    from dataclasses import replace

    config = TrainConfig(
        arch="res-cnn-loc", image_size=32, epochs=1, cam_guidance=1.0, jit_compile=False
    )
    with pytest.raises(DataError, match="needs lesion masks"):
        train(config, replace(tiny_microcalc, masks=None))
    with pytest.raises(MedvizError, match="class-weight"):
        replace(config, imbalance="class-weights")


def test_guided_training_moves_the_class_map_onto_the_lesions():
    """Same seed, same data: with guidance the Grad-CAM maximum lands on the lesion more often."""
    from medviz.data.synthetic import generate_microcalc
    from medviz.explain.engine import get_explainer
    from medviz.explain.trust import pointing_game

    data = generate_microcalc(480, image_size=64, difficulty="easy", seed=5)
    base = TrainConfig(
        arch="res-cnn-loc",
        image_size=64,
        epochs=4,
        batch_size=32,
        learning_rate=2e-3,
        augment=AugmentConfig.none(),
        jit_compile=False,
        monitor="val_loss",
        early_stopping_patience=None,
    )
    test = data.split("test")
    positive = np.flatnonzero(test.labels == 1)
    hit_rates = {}
    for weight in (0.0, 2.0):
        from dataclasses import replace

        result = train(replace(base, cam_guidance=weight), data)
        assert set(result.history) >= {"loss", "val_loss", "accuracy", "val_auc"}
        assert len(result.model.outputs) == 1  # the saved classifier has no extra head
        maps, _, _ = get_explainer(result.model).heatmaps(
            test.images[positive], method="gradcam", class_indices=test.labels[positive]
        )
        hit_rates[weight] = np.mean(
            [pointing_game(m, k) for m, k in zip(maps, test.masks[positive], strict=True)]
        )
    assert hit_rates[2.0] > hit_rates[0.0] + 0.1, hit_rates
