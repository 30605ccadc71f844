"""Feature maps and first-layer kernels."""

from __future__ import annotations

import numpy as np
import pytest

from medviz.errors import DataError, ModelError
from medviz.explain import (
    feature_grid,
    feature_maps,
    filter_kernels,
    kernel_grid,
    normalize_feature_maps,
    tile,
)


def test_feature_maps_of_any_layer(tiny_cnn, images):
    maps = feature_maps(tiny_cnn, images["tiny"], layer="conv1")
    assert maps.shape == (32, 32, 8) and maps.dtype == np.float32
    assert feature_maps(tiny_cnn, images["tiny"]).shape == (16, 16, 16)  # default: conv2
    with pytest.raises(ModelError, match="no layer 'conv9'"):
        feature_maps(tiny_cnn, images["tiny"], layer="conv9")


def test_feature_maps_of_the_transfer_model(transfer_model, images):
    maps = feature_maps(transfer_model, images["transfer"], layer="Conv1_relu")
    assert maps.shape == (16, 16, 16)


def test_normalisation_per_map_and_global():
    maps = np.stack([np.zeros((4, 4)), np.arange(16.0).reshape(4, 4), 10 * np.ones((4, 4))], -1)
    per = normalize_feature_maps(maps)
    assert per[..., 1].min() == 0.0 and per[..., 1].max() == 1.0
    assert not per[..., 0].any() and not per[..., 2].any()  # constant maps become 0
    glob = normalize_feature_maps(maps, mode="global")
    assert glob.max() == 1.0 and glob[..., 2].max() == pytest.approx(10 / 15)
    with pytest.raises(DataError, match="per_map"):
        normalize_feature_maps(maps, mode="x")  # type: ignore[arg-type]


def test_tile_layout():
    grid = tile(np.zeros((5, 3, 4)), pad=1, pad_value=1.0)
    assert grid.shape == (2 * 4 - 1, 3 * 5 - 1)  # 3 columns, 2 rows
    assert grid[0, 4] == 1.0 and grid[0, 0] == 0.0
    assert tile(np.zeros((4, 2, 2, 3)), n_cols=4).shape == (2, 11, 3)


def test_feature_grid_orders_strongest_first(tiny_cnn, images):
    grid, index = feature_grid(tiny_cnn, images["tiny"], layer="conv1", max_maps=4)
    maps = feature_maps(tiny_cnn, images["tiny"], layer="conv1")
    assert len(index) == 4
    means = maps.mean(axis=(0, 1))
    assert list(index) == list(np.argsort(-means, kind="stable")[:4])
    assert grid.shape == (2 * 33 - 1, 2 * 33 - 1) and grid.min() >= 0 and grid.max() <= 1


def test_filter_kernels(tiny_cnn, transfer_model):
    k = filter_kernels(tiny_cnn)
    assert k.shape == (3, 3, 1, 8)
    assert np.allclose(k.min(axis=(0, 1, 2)), 0) and np.allclose(k.max(axis=(0, 1, 2)), 1)
    assert filter_kernels(tiny_cnn, layer="conv2").shape == (3, 3, 8, 16)
    assert kernel_grid(tiny_cnn).ndim == 2
    rgb = kernel_grid(transfer_model)
    assert rgb.ndim == 3 and rgb.shape[-1] == 3
    with pytest.raises(ModelError, match=r"no 4-D convolution kernel.*conv1"):
        filter_kernels(tiny_cnn, layer="gap")
