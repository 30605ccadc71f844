import dataclasses

import numpy as np
import pytest

from medviz.augment import AUGMENTATIONS, AugmentConfig, build_augmenter, preview
from medviz.errors import MedvizError


@pytest.fixture
def image():
    rng = np.random.default_rng(0)
    return rng.integers(40, 200, (32, 32, 1), dtype=np.uint8)


def test_preview_is_deterministic_by_seed(image):
    config = AugmentConfig(noise_sigma=10, shear=0.1)
    a = preview(image, config, n=4, seed=5)
    b = preview(image, config, n=4, seed=5)
    c = preview(image, config, n=4, seed=6)
    assert a.shape == (4, 32, 32, 1) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert len({v.tobytes() for v in a}) == 4  # the four versions differ


def test_identity_changes_nothing(image):
    assert build_augmenter(AugmentConfig.none()) is None
    out = preview(image, AugmentConfig.none(), n=2)
    assert np.array_equal(out[0], image) and np.array_equal(out[1], image)


def test_noise_has_the_requested_sigma_in_pixel_units():
    flat = np.full((64, 64, 1), 128, np.uint8)
    out = preview(flat, AugmentConfig(rotation_deg=0, zoom_max=1.0, noise_sigma=20), n=8)
    assert 18 < (out.astype(float) - 128).std() < 22


def test_flips_are_exact(image):
    out = preview(image, AugmentConfig(rotation_deg=0, zoom_max=1.0, horizontal_flip=True), n=16)
    flipped = image[:, ::-1]
    assert all(np.array_equal(v, image) or np.array_equal(v, flipped) for v in out)
    assert any(np.array_equal(v, flipped) for v in out)


def test_every_augmentation_has_a_realism_note_and_config_field():
    names = {f.name for f in dataclasses.fields(AugmentConfig)}
    assert {a.field for a in AUGMENTATIONS} == names
    assert all(len(a.realism) > 30 for a in AUGMENTATIONS)
    hflip = next(a for a in AUGMENTATIONS if a.field == "horizontal_flip")
    assert "heart" in hflip.realism


def test_validation_and_round_trip():
    with pytest.raises(MedvizError, match="rotation_deg=400"):
        AugmentConfig(rotation_deg=400)
    with pytest.raises(MedvizError, match="unknown augmentation"):
        AugmentConfig.from_dict({"twirl": 1})
    config = AugmentConfig(shift=0.1, vertical_flip=True)
    assert AugmentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(MedvizError, match="shape"):
        preview(np.zeros((2, 2, 2, 2), np.uint8), config)


def test_gamma_keeps_black_and_white_and_bends_the_middle():
    ramp = np.tile(np.linspace(0, 255, 32, dtype=np.float32), (32, 1)).astype(np.uint8)[..., None]
    out = preview(ramp, AugmentConfig(rotation_deg=0, zoom_max=1.0, gamma=0.5), n=8, seed=1)
    assert np.all(out[:, :, 0] <= 1) and np.all(out[:, :, -1] >= 254)
    middles = out[:, 0, 16, 0].astype(int)
    assert middles.max() - middles.min() > 20  # gammas differ between images


def test_lower_resolution_blurs_edges_but_keeps_the_mean():
    bars = np.zeros((64, 64, 1), np.uint8)
    bars[:, ::2] = 255
    out = preview(bars, AugmentConfig(rotation_deg=0, zoom_max=1.0, resolution_min=0.3), n=4)
    assert abs(out.mean() - bars.mean()) < 12
    assert out.std() < 0.5 * bars.std()  # one-pixel bars do not survive a 30-99 % shrink


def test_geometric_and_photometric_parts_split_the_config():
    config = AugmentConfig(rotation_deg=5, brightness=0.2, gamma=0.2, horizontal_flip=True)
    geometric = build_augmenter(config, part="geometric")
    photometric = build_augmenter(config, part="photometric")
    assert [type(layer).__name__ for layer in geometric.layers] == [
        "RandomRotation",
        "RandomZoom",
        "RandomFlip",
    ]
    assert {type(layer).__name__ for layer in photometric.layers} == {
        "RandomBrightness",
        "_RandomGamma",
    }
    assert (
        build_augmenter(
            AugmentConfig(brightness=0.2, rotation_deg=0, zoom_max=1.0), part="geometric"
        )
        is None
    )
    with pytest.raises(MedvizError, match="part"):
        build_augmenter(config, part="colour")
