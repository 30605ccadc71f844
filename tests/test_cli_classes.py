"""`medviz evaluate --classes` maps numbered data classes onto the model's."""

from __future__ import annotations

import numpy as np
from PIL import Image

from medviz.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_numbered_folders_evaluate_with_classes(capsys, tiny_model_dir, tiny_microcalc, tmp_path):
    test = tiny_microcalc.split("test")
    folder = tmp_path / "numbered"
    for i, (image, label) in enumerate(zip(test.images, test.labels, strict=True)):
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / str(label) / f"{i}.png")
    argv = ["evaluate", "--model", str(tiny_model_dir), "--data", str(folder), "--split", "all"]
    code, _, err = run(capsys, *argv, "--bootstrap", "0")
    assert code == 2 and "class names do not match" in err and "--classes" in err
    code, out, err = run(
        capsys, *argv, "--bootstrap", "0", "--classes", "normal,microcalcification"
    )
    assert code == 0, err
    assert f"n={len(test)}" in out
    code, _, err = run(
        capsys, *argv, "--bootstrap", "0", "--classes", "0=normal,1=microcalcification"
    )
    assert code == 0, err
    code, _, err = run(capsys, *argv, "--classes", "normal")
    assert code == 2 and "needs 2 names" in err


def test_medmnist_named_npz_evaluates_by_name(capsys, tiny_model_dir, tiny_microcalc, tmp_path):
    test = tiny_microcalc.split("test")
    path = tmp_path / "pneumoniamnist.npz"
    np.savez(
        path, test_images=test.images[..., 0], test_labels=test.labels[:, None].astype(np.uint8)
    )
    argv = ["evaluate", "--model", str(tiny_model_dir), "--data", str(path), "--split", "test"]
    code, _, err = run(capsys, *argv, "--bootstrap", "0")
    # recognised as PneumoniaMNIST: the names are normal/pneumonia, not 0/1
    assert code == 2 and "'pneumonia'" in err
    code, _, err = run(
        capsys, *argv, "--bootstrap", "0", "--classes", "pneumonia=microcalcification"
    )
    assert code == 0, err
