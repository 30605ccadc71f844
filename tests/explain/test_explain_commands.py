"""The explain, dream and localize commands, through the real ``python -m medviz`` parser."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest
from PIL import Image

store = pytest.importorskip("medviz.store", reason="medviz.store (load_bundle) is not available")

from medviz.cli_support import EXIT_BAD_INPUT, EXIT_OK, CliParser  # noqa: E402
from medviz.explain.commands import register, resolve_class  # noqa: E402


def _main(argv: list[str]) -> int:
    try:
        from medviz.cli import main
    except ImportError:  # the lead's CLI not there yet: same conventions by hand
        from medviz.errors import MedvizError

        parser = CliParser(prog="medviz")
        register(parser.add_subparsers(dest="command", required=True, parser_class=CliParser))
        args = parser.parse_args(argv)
        try:
            return int(args.handler(args))
        except MedvizError as err:
            import sys

            sys.stderr.write(f"error: {err}\n")
            return EXIT_BAD_INPUT
    return main(argv)


@pytest.fixture(scope="module")
def model_dir(trained_cnn, tmp_path_factory):
    folder = tmp_path_factory.mktemp("models") / "microcalc"
    card = store.ModelCard(
        name="microcalc",
        class_names=("normal", "microcalcification"),
        image_size=64,
        channels=1,
    )
    store.save_bundle(trained_cnn, card, folder)
    return folder


@pytest.fixture(scope="module")
def image_file(microcalc, tmp_path_factory):
    test = microcalc.split("test")
    pixels = test.images[np.flatnonzero(test.labels == 1)[0], :, :, 0]
    path = tmp_path_factory.mktemp("images") / "patch.png"
    Image.fromarray(pixels).save(path)
    return path


def test_register_adds_three_subcommands():
    parser = CliParser(prog="medviz")
    sub = parser.add_subparsers(dest="command", parser_class=CliParser)
    register(sub)
    args = parser.parse_args(["localize", "--model", "m", "--data", "d"])
    assert args.handler.__name__ == "cmd_localize" and args.method == "gradcam"
    assert set(sub.choices) == {"explain", "dream", "localize"}
    assert isinstance(sub.choices["dream"], argparse.ArgumentParser)


def test_resolve_class_by_index_or_name():
    names = ("normal", "microcalcification")
    assert resolve_class(None, names, 2) is None
    assert resolve_class("1", names, 2) == 1
    assert resolve_class("Microcalcification", names, 2) == 1
    with pytest.raises(ValueError, match=r"'tumour' is not a class.*normal"):
        resolve_class("tumour", names, 2)
    with pytest.raises(ValueError, match="out of range"):
        resolve_class("7", names, 2)


def test_explain_json(model_dir, image_file, tmp_path, capsys):
    out = tmp_path / "overlay.png"
    code = _main(
        ["explain", "--model", str(model_dir), str(image_file), "--method", "gradcam",
         "--class", "microcalcification", "--out", str(out), "--json"]
    )  # fmt: skip
    assert code == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["method"] == "gradcam" and payload["layer"] == "conv3"
    assert payload["class"] == {"index": 1, "name": "microcalcification"}
    assert set(payload["probabilities"]) == {"normal", "microcalcification"}
    assert {"explain_s", "total_s", "sanity_s", "faithfulness_s"} <= set(payload["timings"])
    trust = payload["trust"]
    assert -1 <= trust["sanity_correlation"] <= 1
    assert 0 <= trust["deletion_auc"] <= 1 and 0 <= trust["insertion_auc"] <= 1
    assert np.asarray(Image.open(out)).shape == (64, 64, 3)


def test_explain_text_and_errors(model_dir, image_file, tmp_path, capsys):
    out = tmp_path / "o.png"
    base = ["explain", "--model", str(model_dir), str(image_file), "--out", str(out)]
    assert _main([*base, "--method", "saliency", "--no-trust"]) == EXIT_OK
    assert "saliency of class" in capsys.readouterr().out
    assert _main([*base, "--method", "magic"]) == EXIT_BAD_INPUT
    assert "error: unknown explanation method 'magic'" in capsys.readouterr().err
    assert _main([*base, "--class", "tumour"]) == EXIT_BAD_INPUT
    assert "error:" in capsys.readouterr().err
    assert _main([*base, "--layer", "nope"]) == EXIT_BAD_INPUT
    assert "conv3" in capsys.readouterr().err  # the available layers are listed


def test_dream_class_filter_and_image(model_dir, image_file, tmp_path, capsys):
    out = tmp_path / "dream.png"
    model = ["--model", str(model_dir), "--out", str(out), "--json"]
    assert _main(["dream", *model, "--class", "microcalcification", "--steps", "6"]) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["mode"] == "activation-maximization" and payload["target"] == "class 1"
    assert np.asarray(Image.open(out)).shape == (64, 64)
    assert _main(["dream", *model, "--layer", "conv2", "--filter", "3", "--scale", "2"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["target"] == "conv2/3"
    assert np.asarray(Image.open(out)).shape == (128, 128)
    assert _main(["dream", *model, "--image", str(image_file), "--layer", "conv2"]) == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["mode"] == "deep-dream" and payload["frames"] > 1
    assert _main(["dream", *model]) == EXIT_BAD_INPUT
    assert "--class" in capsys.readouterr().err


def test_localize_json(model_dir, capsys):
    code = _main(
        ["localize", "--model", str(model_dir), "--data", "synthetic-microcalc",
         "--method", "gradcam", "--max-images", "40", "--json"]
    )  # fmt: skip
    assert code == EXIT_OK
    payload = json.loads(capsys.readouterr().out)
    assert payload["n"] == 40 and 0 <= payload["hit_rate"] <= 1
    lo, hi = payload["hit_rate_ci"]
    assert lo <= payload["hit_rate"] <= hi
    assert payload["mirror"] is False  # the card records no flip augmentation
    code = _main(
        ["localize", "--model", str(model_dir), "--data", "synthetic-microcalc",
         "--method", "gradcam", "--max-images", "40", "--mirror", "on", "--json"]
    )  # fmt: skip
    assert code == EXIT_OK
    assert json.loads(capsys.readouterr().out)["mirror"] is True
    assert _main(["localize", "--model", str(model_dir), "--data", "nope"]) == EXIT_BAD_INPUT
