"""Resumable training: a run killed inside an epoch resumes with `medviz train --resume`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medviz.augment import AugmentConfig
from medviz.resume import load_state
from medviz.training import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
FAST = {"augment": AugmentConfig.none(), "jit_compile": False, "batch_size": 32}


class _Killed(Exception):
    pass


def test_resumed_training_equals_an_uninterrupted_one(tiny_microcalc, tmp_path):
    config = TrainConfig(epochs=3, **FAST)
    whole = train(config, tiny_microcalc, backup_dir=tmp_path / "whole")

    def crash(progress) -> None:  # after epoch 2's progress, before its backup
        if progress.epoch == 1:
            raise _Killed

    with pytest.raises(_Killed):
        train(config, tiny_microcalc, backup_dir=tmp_path / "cut", on_epoch_end=crash)
    assert load_state(tmp_path / "cut").epoch == 1, "only finished, backed-up epochs count"
    resumed = train(config, tiny_microcalc, backup_dir=tmp_path / "cut")
    assert resumed.history == whole.history and resumed.best_epoch == whole.best_epoch
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_unreadable_backup_is_one_clear_error(tmp_path):
    from medviz.errors import MedvizError

    (tmp_path / "state.json").write_text("{not json")
    with pytest.raises(MedvizError, match="cannot read the training backup"):
        load_state(tmp_path)


def _cli(*args: str, env: dict[str, str] | None = None, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "medviz", *args],
        cwd=ROOT,
        env={**os.environ, "MEDVIZ_AUTOTUNE": "0", "TF_DETERMINISTIC_OPS": "1", **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def test_cli_run_killed_mid_epoch_resumes_to_the_same_model(tmp_path):
    common = ["--data", "synthetic-microcalc", "--limit-per-class", "40", "--image-size", "32",
              "--epochs", "3", "--augment", "none", "--patience", "0"]  # fmt: skip
    runs = tmp_path / "runs"
    killed = _cli("train", *common, "--out", str(tmp_path / "cut"), "--runs", str(runs),
                  env={"MEDVIZ_PAUSE_AT_EPOCH": "2"})  # fmt: skip
    whole = _cli("train", "--json", *common, "--out", str(tmp_path / "whole"),
                 "--runs", str(tmp_path / "runs-whole"))  # fmt: skip
    try:  # both processes start TensorFlow at once; the paused one is killed inside epoch 3
        deadline = time.monotonic() + 240
        seen = ""
        while "paused in epoch 3" not in seen:
            assert killed.poll() is None and time.monotonic() < deadline, seen
            seen += killed.stderr.read(1)
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
        out, err = whole.communicate(timeout=240)
    finally:
        for process in (killed, whole):
            if process.poll() is None:
                process.kill()
    assert whole.returncode == 0, err
    assert "train:" in err and "batch" in err, "--json keeps the progress bar, on stderr"
    expected = json.loads(out)  # stdout: exactly one JSON document
    (run,) = runs.iterdir()
    assert json.loads((run / "run.json").read_text())["status"] == "running"  # died running
    assert load_state(run / "backup").epoch == 2

    resumed = _cli("train", "--resume", str(run), "--json", "--quiet")
    out, err = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, err
    assert "train:" not in err, "--quiet hides the progress bar"
    got = json.loads(out)
    assert got["model"] == str(tmp_path / "cut") and got["epochs_run"] == 3
    assert got["best_epoch"] == expected["best_epoch"]
    for key in ("auc", "accuracy"):
        assert got["metrics"][key] == pytest.approx(expected["metrics"][key], abs=1e-3)
    history = json.loads((run / "history.json").read_text())
    card = json.loads((tmp_path / "whole" / "card.json").read_text())
    np.testing.assert_allclose(
        history["val_loss"], card["training"]["history"]["val_loss"], atol=1e-4
    )
    assert not (run / "backup").exists(), "a finished run keeps no backup"

    again = _cli("train", "--resume", str(run))
    _, err = again.communicate(timeout=120)
    assert again.returncode == 2 and "only an interrupted run can be resumed" in err
