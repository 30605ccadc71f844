"""Shared fixtures: tiny data and tiny models, so the suite stays fast on 2 cores."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the internet
os.environ.setdefault("MEDVIZ_OFFLINE", "1")  # nor Keras' ImageNet download (medviz.weights)
# XLA "auto" without a probe (CPU: off) and a cache of the suite's own, so a developer's
# measured ~/.cache/medviz never changes what the tests run; tests/test_autotune.py probes.
os.environ.setdefault("MEDVIZ_AUTOTUNE", "0")
os.environ.setdefault("MEDVIZ_CACHE_DIR", tempfile.mkdtemp(prefix="medviz-test-cache-"))
os.environ.setdefault("MEDVIZ_RUNS_DIR", tempfile.mkdtemp(prefix="medviz-test-runs-"))


@pytest.fixture(scope="session")
def tiny_microcalc():
    """240 synthetic 32×32 patches (easy), with train/val/test splits and masks."""
    from medviz.data.synthetic import generate_microcalc

    return generate_microcalc(240, image_size=32, difficulty="easy", seed=3)


@pytest.fixture(scope="session")
def tiny_packaged(tiny_microcalc):
    """A fast-cnn trained for 2 epochs on :func:`tiny_microcalc`, packaged with its card."""
    from medviz.augment import AugmentConfig
    from medviz.pipeline import train_and_package
    from medviz.training import TrainConfig

    config = TrainConfig(epochs=2, batch_size=32, augment=AugmentConfig.none(), jit_compile=False)
    return train_and_package(config, tiny_microcalc, name="tiny", command="pytest", n_bootstrap=50)


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_packaged, tmp_path_factory):
    """:func:`tiny_packaged` saved as a model folder."""
    from medviz.store import save_bundle

    folder = tmp_path_factory.mktemp("models") / "tiny"
    return save_bundle(tiny_packaged.bundle.model, tiny_packaged.bundle.card, folder)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
