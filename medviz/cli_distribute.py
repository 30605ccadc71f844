"""The non-chief side of ``medviz train --distribute multiworker``.

Every machine of a cluster runs the same ``medviz train`` command with its own ``TF_CONFIG``.
The chief (``cmd_train`` in :mod:`medviz.cli`) trains, packages and writes the model folder and
the run record; every other worker trains its shard of the data in step with it through
:func:`run_worker` and writes nothing that outlives the run (see :mod:`medviz.distributed`).
"""

from __future__ import annotations

import sys

from medviz.cli_support import EXIT_OK, print_json
from medviz.data.dataset import Dataset
from medviz.distributed import DistributionPlan, train_distributed


def run_worker(plan: DistributionPlan, config, data: Dataset, *, as_json: bool = False) -> int:
    """Train as a non-chief worker and report the run on stdout; returns the exit code.

    Args:
        plan: A ``multiworker`` plan whose task is not the chief.
        config: The :class:`~medviz.training.TrainConfig`, identical on every worker.
        data: The dataset, identical on every worker (each trains on its own shard).
        as_json: Print one JSON object instead of a line of text.
    """
    assert plan.cluster is not None
    result = train_distributed(plan, config, data, checkpoint_path="checkpoint.weights.h5")
    val_auc = result.history.get("val_auc", [float("nan")])
    payload = {
        "worker": plan.cluster.rank,
        "task": f"{plan.cluster.task_type}:{plan.cluster.task_index}",
        "model": None,  # written by the chief
        "epochs_run": result.epochs_run,
        "best_epoch": result.best_epoch + 1,
        "best_val": result.best_value,
        "val_auc": val_auc,
        "seconds": round(result.seconds, 2),
        **plan.describe(),
    }
    if as_json:
        print_json(payload)
    else:
        sys.stdout.write(
            f"worker {plan.cluster.rank} of {plan.workers} done: {result.epochs_run} epochs in "
            f"{result.seconds:.1f}s, last val AUC {val_auc[-1]:.3f}; waiting for the chief to "
            "write the model\n"
        )
    sys.stdout.flush()
    plan.finish()
    return EXIT_OK
