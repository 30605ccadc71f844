"""Train page: resume an interrupted run; TensorBoard log toggle shows the folder and command."""

from __future__ import annotations

import json
import subprocess

import pytest
from app_helpers import app_state, assert_clean, goto, load_small_dataset, texts, wait_for_job

from medviz.augment import AugmentConfig
from medviz.resume import load_state
from medviz.services.jobs import TrainingJob
from medviz.store import RunStore
from medviz.training import TrainConfig, train


class _ServerDied(Exception):
    pass


def _dead_pid() -> int:
    """The id of a process that has ended (the killed server's, as the run store sees it)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_interrupted_run_resumes_from_the_train_page(app, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIZ_RUNS_DIR", str(tmp_path / "runs"))
    load_small_dataset(app, per_class=12, size=32)
    choice = app_state(app).dataset
    from medviz.ui import cache

    data = cache.dataset(choice, image_size=32)
    config = TrainConfig(
        epochs=2, image_size=32, augment=AugmentConfig.none(), jit_compile=False, batch_size=8
    )
    # The run the page started, cut short after its first epoch by a dying server.
    job = TrainingJob(name="cut", title="Cut short", config=config, data=data,
                      dataset_label=choice.label, runs_dir=tmp_path / "runs",
                      dataset_key=choice.key)  # fmt: skip
    record = job._open_record()

    def die(progress) -> None:
        if progress.epoch == 1:
            raise _ServerDied

    with pytest.raises(_ServerDied):
        train(config, data, backup_dir=record.folder / "backup", on_epoch_end=die)
    run_json = record.folder / "run.json"
    values = json.loads(run_json.read_text())
    run_json.write_text(json.dumps({**values, "pid": _dead_pid()}))
    assert load_state(record.folder / "backup").epoch == 1

    goto(app, "train")
    assert_clean(app)
    assert "1 interrupted training" in texts(app)
    app.button(key="train_resume").click()
    app.run()
    wait_for_job(app)
    assert_clean(app)
    resumed = app_state(app).jobs[0]
    assert resumed.status == "finished" and resumed.resume is not None
    assert resumed.best.result.epochs_run == 2, "epoch 1 from the backup, epoch 2 trained now"
    (done,) = RunStore(tmp_path / "runs").list()
    assert done.status == "finished" and (done.folder / "model" / "model.keras").is_file()
    assert "interrupted training" not in texts(app)


def test_tensorboard_toggle_writes_logs_and_shows_the_command(app, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIZ_RUNS_DIR", str(tmp_path / "runs"))
    load_small_dataset(app, per_class=12, size=32)
    goto(app, "train")
    app.number_input(key="train_epochs").set_value(1)
    app.toggle(key="train_logs").set_value(True)
    app.button(key="train_start").click()
    app.run()
    wait_for_job(app)
    assert_clean(app)
    job = app_state(app).jobs[0]
    assert job.log_dir is not None and (job.log_dir / "history.csv").is_file()
    assert any((job.log_dir / "gradcam").iterdir())
    shown = [c.value for c in app.code]
    assert f"tensorboard --logdir {job.log_dir}" in shown
