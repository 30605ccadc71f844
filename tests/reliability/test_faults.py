"""Faults: a training killed mid-epoch, a full disk, a read-only folder, a dropped session.

The run store must stay consistent (last complete checkpoint and its card
loadable, temporary files never picked up, a re-run starts cleanly), every save
is atomic (temporary file, fsync, rename) and a failed save keeps the previous
model.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from medviz.cli import main
from medviz.errors import ModelError
from medviz.store import RunStore, atomic_write_text, load_bundle, save_bundle

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ["train", "--data", "synthetic-microcalc", "--image-size", "32", "--patience", "0",
         "--json"]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}


def _epochs_logged(runs: Path) -> int:
    for history in runs.glob("*/history.json"):
        try:
            return len(json.loads(history.read_text()).get("loss", []))
        except (OSError, ValueError):
            return 0
    return 0


def test_sigkill_mid_epoch_leaves_a_consistent_run_store(tmp_path):
    runs, out = tmp_path / "runs", tmp_path / "model"
    log = (tmp_path / "train.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "medviz", *TRAIN, "--limit-per-class", "24", "--epochs", "60",
         "--out", str(out), "--runs", str(runs)],
        cwd=tmp_path, env=_env(), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            if _epochs_logged(runs) >= 1 and list(runs.glob("*/checkpoint/card.json")):
                break
            time.sleep(0.2)
        assert process.poll() is None, (tmp_path / "train.log").read_text()[-2000:]
        time.sleep(0.35)  # somewhere inside the next epoch
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
        log.close()
    assert process.returncode == -signal.SIGKILL

    (record,) = RunStore(runs).list()
    assert record.status == "interrupted", "a dead process is not 'running'"
    assert not out.exists(), "no half-written model folder where the final model goes"
    history = json.loads((record.folder / "history.json").read_text())
    assert len(history["loss"]) >= 1 and len(set(map(len, history.values()))) == 1
    # Debris a crash could leave: temporary files must never be picked up.
    checkpoint = record.checkpoint_folder
    (checkpoint / ".best.weights.h5.tmp.weights.h5").write_bytes(b"half written")
    (checkpoint / ".card.json.x1.tmp").write_text("{ half")
    (record.folder / ".run.json.x2.tmp").write_text("{ half")
    staging = runs / ".model.saving-deadbeef"
    staging.mkdir()
    (staging / "model.keras").write_bytes(b"half")
    bundle = RunStore(runs).load_checkpoint(record)
    card = json.loads((checkpoint / "card.json").read_text())
    assert 1 <= card["training"]["checkpoint_epoch"] <= len(history["loss"])
    assert bundle.card.class_names == ("normal", "microcalcification")
    probs = bundle.predict_proba(np.zeros((3, 32, 32, 1), np.uint8), calibrated=False)
    assert probs.shape == (3, 2) and np.isfinite(probs).all()
    assert [r.run_id for r in RunStore(runs).list()] == [record.run_id], "debris is not a run"

    # Re-running starts cleanly beside the interrupted run (in-process: TensorFlow is loaded;
    # a smaller sample, as the data does not matter here).
    small = ["--limit-per-class", "8", "--epochs", "1"]
    assert main([*TRAIN, *small, "--out", str(out), "--runs", str(runs)]) == 0
    statuses = {r.run_id: r.status for r in RunStore(runs).list()}
    assert statuses.pop(record.run_id) == "interrupted"
    assert list(statuses.values()) == ["finished"]
    assert load_bundle(out).card.training["epochs_run"] == 1


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _read_only(*args, **kwargs):
    raise OSError(errno.EROFS, os.strerror(errno.EROFS))


def _denied(*args, **kwargs):
    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))


@pytest.mark.parametrize(
    "fault", [_disk_full, _read_only, _denied], ids=["ENOSPC", "EROFS", "EACCES"]
)
@pytest.mark.parametrize("where", ["model.save", "os.fsync", "os.replace", "mkdir"])
def test_failed_save_keeps_the_previous_model(
    tiny_model_dir, tiny_packaged, tmp_path, monkeypatch, fault, where
):
    target = tmp_path / "m"
    shutil.copytree(tiny_model_dir, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    model = tiny_packaged.bundle.model
    if where == "model.save":
        monkeypatch.setattr(type(model), "save", fault)
    elif where == "os.fsync":
        monkeypatch.setattr("medviz.store.atomic.os.fsync", fault)
    elif where == "os.replace":
        monkeypatch.setattr("medviz.store.atomic.os.replace", fault)
    else:
        monkeypatch.setattr(Path, "mkdir", fault)
    with pytest.raises(ModelError) as info:
        save_bundle(model, tiny_packaged.bundle.card, target)
    message = str(info.value)
    code = {_disk_full: errno.ENOSPC, _read_only: errno.EROFS, _denied: errno.EACCES}[fault]
    assert os.strerror(code) in message, message
    assert "unchanged" in message and str(target) in message
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"], "no staging folder left"
    assert load_bundle(target).card.name == tiny_packaged.bundle.card.name


def test_atomic_write_never_leaves_half_a_file(tmp_path, monkeypatch):
    target = tmp_path / "card.json"
    atomic_write_text(target, '{"ok": 1}')
    monkeypatch.setattr("medviz.store.atomic.os.fsync", _disk_full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_text(target, '{"ok": 2, "long": "' + "x" * 100_000 + '"}')
    assert target.read_text() == '{"ok": 1}'
    assert [p.name for p in tmp_path.iterdir()] == ["card.json"], "temporary file removed"


def test_store_saves_fsync_before_rename(tiny_packaged, tmp_path, monkeypatch):
    """Every file of a model folder is fsynced before the rename that publishes it."""
    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync")
        return real_fsync(fd)

    def replace(src, dst):
        events.append(f"replace:{Path(dst).name}")
        return real_replace(src, dst)

    monkeypatch.setattr("medviz.store.atomic.os.fsync", fsync)
    monkeypatch.setattr("medviz.store.atomic.os.replace", replace)
    save_bundle(tiny_packaged.bundle.model, tiny_packaged.bundle.card, tmp_path / "m")
    assert events.count("fsync") >= 3, events  # model.keras, card.json, README.md
    assert events[-1] == "replace:m", "the folder is published last"
    first_publish = events.index("replace:m")
    assert "fsync" not in events[first_publish:], events


def test_cli_train_disk_full_is_one_error_line_and_keeps_the_model(
    capsys, tmp_path, monkeypatch, tiny_model_dir, tiny_packaged
):
    import keras

    out = tmp_path / "model"
    shutil.copytree(tiny_model_dir, out)
    before = (out / "model.keras").read_bytes()
    monkeypatch.setattr(keras.Model, "save", _read_only)
    # Training itself is tested elsewhere: hand the CLI a finished run straight away.
    monkeypatch.setattr("medviz.pipeline.train_and_package", lambda *a, **k: tiny_packaged)
    argv = ["train", "--data", "synthetic-microcalc", "--limit-per-class", "10", "--image-size",
            "32", "--epochs", "1", "--out", str(out), "--runs", str(tmp_path / "runs")]  # fmt: skip
    assert main(argv) == 1, "a storage failure is a runtime failure (1), not bad input (2)"
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Read-only file system" in lines[0] and "unchanged" in lines[0]
    assert "Traceback" not in err
    assert (out / "model.keras").read_bytes() == before

    monkeypatch.undo()
    monkeypatch.setattr(RunStore, "log_history", _disk_full)
    assert main([*argv[:-4], "--out", str(tmp_path / "m2"), "--runs", str(tmp_path / "r2")]) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "No space left on device" in lines[0], err
    assert "Traceback" not in err


def test_app_session_dropped_mid_training_thread_finishes():
    from app_helpers import app_state, goto, load_small_dataset, make_app

    app = make_app()
    load_small_dataset(app, per_class=8, size=32)
    goto(app, "train")
    app.number_input(key="train_epochs").set_value(2)
    app.button(key="train_start").click()
    app.run()
    job = app_state(app).jobs[0]
    assert job.running
    del app  # the browser tab is gone: nobody polls the job any more
    gc.collect()
    assert job.join(timeout=180), "the background thread ended"
    assert job.status == "finished", job.error
    assert job.best is not None and job.best.bundle.card.training["epochs_run"] == 2
