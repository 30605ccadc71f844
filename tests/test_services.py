"""The front-end-neutral services: the one repeat loop (with stop), jobs, data for a model."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from medviz import pipeline
from medviz.augment import AugmentConfig
from medviz.errors import DataError, MedvizError
from medviz.services.datasets import dataset_for_model
from medviz.services.jobs import TrainingJob
from medviz.training import TrainConfig

CONFIG = TrainConfig(epochs=2, batch_size=32, augment=AugmentConfig.none(), jit_compile=False)
QUICK = {"n_bootstrap": 0, "stress_images": 0}


def _fake_train(monkeypatch, result, *, on_call=None, unfinished_from: int | None = None):
    """Replace the trainer by the already trained tiny model; return the seeds it was given.

    ``on_call(n)`` runs at the n-th call (0-based); from call ``unfinished_from`` on
    the result has no finished epoch (a run stopped during its first epoch).
    """
    seeds: list[int] = []

    def train(config, data, **callbacks):
        n = len(seeds)
        seeds.append(config.seed)
        assert callable(callbacks["should_stop"]) or callbacks["should_stop"] is None
        if on_call is not None:
            on_call(n)
        if unfinished_from is not None and n >= unfinished_from:
            return replace(result, best_epoch=-1, config=config)
        return replace(result, config=config)

    monkeypatch.setattr(pipeline, "train", train)
    return seeds


def test_repeats_stop_after_the_current_run(monkeypatch, tiny_packaged, tiny_microcalc):
    stop = {"now": False}
    seeds = _fake_train(
        monkeypatch, tiny_packaged.result, on_call=lambda n: stop.update(now=n == 1)
    )
    ended = []
    repeated = pipeline.train_repeats(
        CONFIG,
        tiny_microcalc,
        repeats=4,
        name="r",
        should_stop=lambda: stop["now"],
        on_run_end=lambda i, run: ended.append(i),
        **QUICK,
    )
    assert seeds == [0, 1] and ended == [0, 1], "no run starts after a stop"
    assert repeated.stopped and len(repeated.runs) == 2
    assert repeated.split == "test" and set(repeated.summary) >= {"auc", "accuracy"}
    mean, _ = repeated.summary["accuracy"]
    assert mean == pytest.approx(np.mean([r.evaluations["test"].accuracy for r in repeated.runs]))


def test_repeats_without_stop_run_every_seed(monkeypatch, tiny_packaged, tiny_microcalc):
    seeds = _fake_train(monkeypatch, tiny_packaged.result)
    repeated = pipeline.train_repeats(
        replace(CONFIG, seed=7), tiny_microcalc, repeats=2, name="r", **QUICK
    )
    assert seeds == [7, 8] and not repeated.stopped and len(repeated.runs) == 2


def test_repeats_drop_a_run_stopped_before_its_first_epoch(
    monkeypatch, tiny_packaged, tiny_microcalc
):
    stop = {"now": False}
    _fake_train(
        monkeypatch,
        tiny_packaged.result,
        on_call=lambda n: stop.update(now=n == 1),
        unfinished_from=1,
    )
    repeated = pipeline.train_repeats(
        CONFIG, tiny_microcalc, repeats=3, name="r", should_stop=lambda: stop["now"], **QUICK
    )
    assert repeated.stopped and len(repeated.runs) == 1


def test_repeats_raise_when_an_unstopped_run_has_no_epoch(
    monkeypatch, tiny_packaged, tiny_microcalc
):
    _fake_train(monkeypatch, tiny_packaged.result, unfinished_from=1)
    with pytest.raises(DataError, match="before the first epoch"):
        pipeline.train_repeats(CONFIG, tiny_microcalc, repeats=2, name="r", **QUICK)
    with pytest.raises(DataError, match="at least 1"):
        pipeline.train_repeats(CONFIG, tiny_microcalc, repeats=0, name="r")


def _job(data, repeats: int) -> TrainingJob:
    return TrainingJob(
        name="job",
        title="Job",
        config=CONFIG,
        data=data,
        dataset_label="tiny",
        repeats=repeats,
        n_bootstrap=0,
    )


def test_job_stopped_keeps_the_finished_runs(monkeypatch, tiny_packaged, tiny_microcalc):
    job = _job(tiny_microcalc, repeats=3)
    seeds = _fake_train(monkeypatch, tiny_packaged.result, on_call=lambda n: job.stop())
    assert job.start().join(timeout=300)
    assert job.status == "stopped" and job.error is None
    assert seeds == [0] and len(job.runs) == 1 and job.best is job.runs[0]
    assert job.summary_split == "test" and "auc" in job.summary
    snap = job.snapshot()
    assert snap.run == 1 and snap.message.startswith("Stopped")


def test_job_runs_every_repeat(monkeypatch, tiny_packaged, tiny_microcalc):
    job = _job(tiny_microcalc, repeats=2)
    _fake_train(monkeypatch, tiny_packaged.result)
    assert job.start().join(timeout=300)
    assert job.status == "finished" and len(job.runs) == 2 and job.snapshot().fraction == 1.0
    accuracies = [run.evaluations["test"].accuracy for run in job.runs]
    assert job.summary["accuracy"] == pytest.approx(
        (np.mean(accuracies), np.std(accuracies, ddof=1))
    )


def test_job_stopped_before_any_epoch_says_so(monkeypatch, tiny_packaged, tiny_microcalc):
    job = _job(tiny_microcalc, repeats=2)
    _fake_train(monkeypatch, tiny_packaged.result, on_call=lambda n: job.stop(), unfinished_from=0)
    assert job.start().join(timeout=300)
    assert job.status == "stopped" and job.runs == [] and job.best is None
    assert job.error.startswith("Stopped before the first epoch ended")


def test_job_failure_is_reported(monkeypatch, tiny_packaged, tiny_microcalc):
    job = _job(tiny_microcalc, repeats=1)
    _fake_train(monkeypatch, tiny_packaged.result, unfinished_from=0)
    assert job.start().join(timeout=300)
    assert job.status == "failed" and "before the first epoch" in job.error


# --- dataset_for_model ---------------------------------------------------------------------------


def _class_folders(data, root: Path, *, per_class: int = 8, size: int = 40) -> Path:
    """``data``'s first images as PNG class folders (sorted names: the reverse of the model's)."""
    from PIL import Image

    for k, name in enumerate(data.class_names):
        (root / name).mkdir(parents=True)
        for i in np.flatnonzero(data.labels == k)[:per_class]:
            Image.fromarray(data.images[i][..., 0]).resize((size, size)).save(
                root / name / f"{i}.png"
            )
    return root


def test_dataset_for_model_loads_at_the_model_input_in_its_class_order(
    tmp_path, tiny_packaged, tiny_microcalc
):
    card = tiny_packaged.bundle.card
    folder = _class_folders(tiny_microcalc, tmp_path / "data")
    data = dataset_for_model(str(folder), card, limit_per_class=5)
    assert data.class_names == tuple(card.class_names) == ("normal", "microcalcification")
    assert data.image_shape == (card.image_size, card.image_size, card.channels)
    assert np.bincount(data.labels).tolist() == [5, 5]


def test_dataset_for_model_remaps_a_loaded_dataset(tiny_packaged, tiny_microcalc):
    card = tiny_packaged.bundle.card
    flipped = replace(
        tiny_microcalc,
        labels=1 - tiny_microcalc.labels,
        class_names=tuple(reversed(tiny_microcalc.class_names)),
    )
    data = dataset_for_model(flipped, card)
    assert data.class_names == tuple(card.class_names)
    np.testing.assert_array_equal(data.labels, tiny_microcalc.labels)
    renamed = replace(tiny_microcalc, class_names=("0", "1"))
    data = dataset_for_model(renamed, card, classes="0=normal,1=microcalcification")
    np.testing.assert_array_equal(data.labels, tiny_microcalc.labels)


def test_dataset_for_model_errors(tiny_packaged, tiny_microcalc):
    card = tiny_packaged.bundle.card
    numbered = replace(tiny_microcalc, class_names=("0", "1"))
    with pytest.raises(MedvizError, match="--classes normal,microcalcification") as hinted:
        dataset_for_model(
            numbered, card, mismatch_hint="name them with --classes normal,microcalcification"
        )
    assert "0" in str(hinted.value)
    with pytest.raises(MedvizError) as plain:
        dataset_for_model(numbered, card)
    assert "--classes" not in str(plain.value)
    small = replace(tiny_microcalc, images=tiny_microcalc.images[:, :16, :16], masks=None)
    with pytest.raises(DataError, match=r"needs \(32, 32, 1\)"):
        dataset_for_model(small, card)
    with pytest.raises(ValueError, match="limit_per_class"):
        dataset_for_model(tiny_microcalc, card, limit_per_class=3)


def test_cli_load_for_model_names_the_classes_option(tmp_path, tiny_packaged, tiny_microcalc):
    from medviz.cli import load_for_model

    numbered = replace(tiny_microcalc, class_names=("a", "b"))
    folder = _class_folders(numbered, tmp_path / "data", per_class=4)
    with pytest.raises(MedvizError, match="--classes normal,microcalcification"):
        load_for_model(str(folder), tiny_packaged.bundle.card)
