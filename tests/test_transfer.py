"""The MedViz backbone's two transfer modes, its card entry and the transfer comparison.

A randomly initialised backbone file stands in for the shipped one (same layers),
so these tests neither need ``models/medviz-backbone-v1`` nor depend on its numbers.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from medviz.augment import AugmentConfig
from medviz.backbone import BACKBONE_NAME, WEIGHTS_FILE, build_backbone_model, trunk_layer_names
from medviz.training import TrainConfig, train
from medviz.weights import WeightsMissingError


@pytest.fixture
def backbone_file(tmp_path, monkeypatch) -> Path:
    import keras

    monkeypatch.setenv("MEDVIZ_MODELS_DIR", str(tmp_path))
    path = tmp_path / BACKBONE_NAME / WEIGHTS_FILE
    path.parent.mkdir()
    keras.utils.set_random_seed(7)
    build_backbone_model(64).save_weights(path)
    return path


def _trunk_weights(model) -> dict[str, list[np.ndarray]]:
    return {n: model.get_layer(n).get_weights() for n in trunk_layer_names(model)}


def _same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def _config(**options) -> TrainConfig:
    return TrainConfig(
        arch="medviz-backbone",
        epochs=1,
        batch_size=32,
        augment=AugmentConfig.none(),
        jit_compile=False,
        early_stopping_patience=None,
        arch_options=options,
    )


def test_backbone_builds_flat_at_several_sizes_with_the_file_weights(backbone_file):
    import keras

    from medviz.zoo import build_model

    reference = build_backbone_model(64)
    reference.load_weights(backbone_file)
    for size, channels in ((32, 1), (96, 3)):
        model = build_model("medviz-backbone", (size, size, channels), 3, pretrained="medviz")
        assert not any(isinstance(layer, keras.Model) for layer in model.layers), "nested model"
        assert model.output_shape == (None, 3)
        for name in ("mv_stem_conv", "mv_stage4b_conv"):
            assert _same(
                model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()
            )


def test_frozen_backbone_stays_unchanged_and_finetune_changes_it(backbone_file, tiny_microcalc):
    frozen = train(_config(mode="feature-extractor"), tiny_microcalc)
    reference = build_backbone_model(64)
    reference.load_weights(backbone_file)
    expected = {n: reference.get_layer(n).get_weights() for n in trunk_layer_names(reference)}
    weights = _trunk_weights(frozen.model)
    assert frozen.weights is not None and frozen.weights.source == "medviz-backbone"
    # Every trunk weight, batch-norm moving statistics included, is the file's.
    assert all(_same(weights[n], w) for n, w in expected.items() if w)
    trainable = {w.path.split("/")[0] for w in frozen.model.trainable_weights}
    assert trainable == {"predictions"}, trainable

    tuned = train(_config(mode="fine-tune", fine_tune_from=0), tiny_microcalc)
    changed = _trunk_weights(tuned.model)
    assert not _same(changed["mv_stem_conv"], expected["mv_stem_conv"])
    assert not _same(changed["mv_stage4b_conv"], expected["mv_stage4b_conv"])


def test_unfreeze_depth_is_respected(backbone_file, tiny_microcalc):
    from medviz.zoo import build_model

    probe = build_model("medviz-backbone", (32, 32, 1), 2, pretrained="none")
    names = trunk_layer_names(probe)
    cut = names.index("mv_stage4a_conv")
    # fine_tune_from counts the trunk model's layers (input layer first), as for ImageNet nets.
    depth = cut + 1
    result = train(_config(mode="fine-tune", fine_tune_from=depth), tiny_microcalc)
    reference = build_backbone_model(64)
    reference.load_weights(backbone_file)
    below = [n for n in names[:cut] if reference.get_layer(n).get_weights()]
    above = ("mv_stage4a_conv", "mv_stage4b_conv")
    for name in below:
        assert _same(
            result.model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()
        ), name
    for name in above:
        assert not _same(
            result.model.get_layer(name).get_weights(), reference.get_layer(name).get_weights()
        ), name


def test_missing_backbone_is_refused_and_none_trains_from_random(
    tmp_path, monkeypatch, tiny_microcalc
):
    monkeypatch.setenv("MEDVIZ_MODELS_DIR", str(tmp_path))
    with pytest.raises(WeightsMissingError, match="--pretrained none"):
        train(_config(), tiny_microcalc)
    result = train(replace(_config(), pretrained="none"), tiny_microcalc)
    assert result.weights.source == "random"
    assert result.config.arch_options["pretrained"] == "none"


def test_subsample_train_keeps_n_labels_per_class_and_whole_val_test(tiny_microcalc):
    from medviz.transfer import subsample_train

    small = subsample_train(tiny_microcalc, 25, seed=1)
    train_labels = small.labels[small.splits == "train"]
    assert len(train_labels) == 25 and set(train_labels) == {0, 1}
    for split in ("val", "test"):
        assert (small.splits == split).sum() == (tiny_microcalc.splits == split).sum()
    assert subsample_train(tiny_microcalc, None, seed=0) is tiny_microcalc


def test_cli_compare_transfer_reports_three_arms(backbone_file, tmp_path, capsys):
    from medviz.cli import main

    argv = ["compare-transfer", "--data", "synthetic-microcalc", "--limit-per-class", "16"]
    argv += ["--image-size", "32", "--epochs", "1", "--out", str(tmp_path / "cmp"), "--json"]
    assert main(argv) == 0
    payload = json.loads(capsys.readouterr().out)
    assert [a["arm"] for a in payload["arms"]] == ["scratch", "feature-extractor", "fine-tune"]
    assert all(0 <= a["accuracy"] <= 1 for a in payload["arms"])
    frozen = payload["arms"][1]
    assert frozen["trainable_params"] < payload["arms"][2]["trainable_params"]
    assert "MedViz medical backbone" in frozen["weights"]
    assert (tmp_path / "cmp" / "compare-transfer.html").is_file()


def test_compare_transfer_recomputes_batchnorm_statistics_unless_told_not_to():
    from medviz.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["compare-transfer", "--data", "x"]).precise_bn is True
    assert (
        parser.parse_args(["compare-transfer", "--data", "x", "--no-precise-bn"]).precise_bn
        is False
    )
