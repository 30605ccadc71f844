"""The model kept from several runs is chosen on validation, never on test."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from medviz.errors import DataError
from medviz.pipeline import RepeatedRuns, select_run
from medviz.services.jobs import TrainingJob


def _run(name: str, val_auc: float, test_auc: float, val_acc: float = 0.8, test_acc: float = 0.8):
    evaluations = {
        "val": SimpleNamespace(auc=val_auc, accuracy=val_acc),
        "test": SimpleNamespace(auc=test_auc, accuracy=test_acc),
    }
    return SimpleNamespace(name=name, evaluations=evaluations)


# val ranks b > a > c, test ranks c > a > b: a test-selecting rule picks c
RUNS = [_run("a", 0.90, 0.85), _run("b", 0.95, 0.80), _run("c", 0.85, 0.99)]


def test_repeated_runs_best_is_chosen_on_validation():
    repeated = RepeatedRuns(runs=list(RUNS), summary={}, split="test")
    assert repeated.best.name == "b"


def test_training_job_best_is_chosen_on_validation():
    job = TrainingJob(name="x", title="x", config=None, data=None, dataset_label="x")
    assert job.best is None
    job.runs = list(RUNS)
    job.summary_split = "test"
    assert job.best.name == "b"


def test_selection_falls_back_to_validation_accuracy():
    runs = [
        _run("a", math.nan, 0.99, val_acc=0.70, test_acc=0.99),
        _run("b", math.nan, 0.50, val_acc=0.90, test_acc=0.50),
    ]
    assert select_run(runs).name == "b"
    # a defined AUC beats an undefined one
    runs.append(_run("c", 0.60, 0.50, val_acc=0.10))
    assert select_run(runs).name == "c"


def test_selection_needs_validation():
    with pytest.raises(DataError, match="no runs"):
        select_run([])
    only_test = SimpleNamespace(evaluations={"test": SimpleNamespace(auc=0.9, accuracy=0.9)})
    with pytest.raises(DataError, match="validation"):
        select_run([only_test])
