"""Peak resident memory: a short training run (fresh process) and the app (from its section)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from bench.common import ROOT, Settings

_TRAIN = """
import json, resource, sys
import tensorflow  # noqa: F401
baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
from medviz.augment import AugmentConfig
from medviz.data import DEFAULT_DATASET, load_dataset
from medviz.training import TrainConfig, train
per_class, jit = int(sys.argv[1]), int(sys.argv[2])
data = load_dataset(DEFAULT_DATASET, seed=0, limit_per_class=per_class)
config = TrainConfig(epochs=2, augment=AugmentConfig())
if jit >= 0:
    config = TrainConfig(epochs=2, augment=AugmentConfig(), jit_compile=bool(jit))
result = train(config, data)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"after_import_tf_kib": baseline, "peak_kib": peak,
                  "train_images": int(len(data.split("train").images)),
                  "epochs": result.epochs_run, "seconds": result.seconds}))
"""


def training_peak(per_class: int, *, jit: int = -1) -> dict[str, Any]:
    """Peak RSS (``getrusage`` ``ru_maxrss``) of a fresh process training 2 epochs."""
    done = subprocess.run(
        [sys.executable, "-c", _TRAIN, str(per_class), str(jit)],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(ROOT)},
        timeout=900,
    )
    values = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        "peak_rss_mib": values["peak_kib"] / 1024.0,
        "after_import_tensorflow_rss_mib": values["after_import_tf_kib"] / 1024.0,
        "train_images": values["train_images"],
        "epochs": values["epochs"],
        "fit_seconds": values["seconds"],
        "what": "fresh python process: import TensorFlow, load the embedded data, "
        "train the default architecture 2 epochs at 64 px with default augmentation",
    }


def run(settings: Settings, *, app: dict[str, Any] | None = None) -> dict[str, Any]:
    """The memory section; the app figure comes from the app section's run."""
    out: dict[str, Any] = {"train": training_peak(settings.memory_train_images, jit=settings.jit)}
    if app and app.get("server_pid_peak_rss_mib") is not None:
        out["app"] = {
            "peak_rss_mib": app["server_pid_peak_rss_mib"],
            "rss_at_end_mib": app.get("server_pid_rss_mib"),
            "what": "VmHWM of the streamlit server process after the demo and every page "
            f"({1 + app.get('rounds', 0)} visits each)",
        }
    else:
        reason = (app or {}).get("reason") or (app or {}).get("error") or "app section not run"
        out["app"] = {"peak_rss_mib": None, "reason": reason}
    return out
