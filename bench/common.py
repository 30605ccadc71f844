"""Shared pieces of the benchmarks: settings, timing statistics, machine description."""

from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DEFAULT_SHIPPED_MODEL = ROOT / "models" / "microcalc-synthetic"
PNEUMONIA_CARD = ROOT / "models" / "pneumonia-xray" / "card.json"
ENV_PREFIX = "MEDVIZ_BENCH_"


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run; :meth:`quick` shrinks them, the environment caps them.

    Every field can be overridden by ``MEDVIZ_BENCH_<FIELD>`` (upper case;
    sizes as a comma list), which is how the smoke test keeps a run tiny.

    Attributes:
        image_size: Side of the training-throughput images.
        train_images: Images per timed epoch (``0``: the whole train split).
        batch_size: Images per training step.
        warmup_epochs: Untimed epochs before the timed ones (tracing, caches).
        repeats: Timed epochs per contender (median and spread over these).
        latency_calls: Timed warm calls of the fast path (p50/p95 over these).
        naive_calls: Timed calls of the naive path.
        upload_size: Side of the uploaded PNG.
        transfer_size: Input side of the transfer-learning model.
        ttq_max_epochs: Epoch cap of the time-to-quality run.
        ttq_limit_per_class: Images per class and split of its data (``0``: all).
        am_steps: Activation-maximisation steps (``0``: the default).
        dream_steps: Deep-dream steps per octave (``0``: the default).
        method_calls: Timed calls per explanation method (after one warm call).
        sizes: Image sides of the scaling section.
        scaling_pixels: Pixels per timed scaling epoch (images = this / side²).
        memory_train_images: Images per class in the memory-measuring training run.
        stream_datasets: Dataset sizes (images) of the streaming memory comparison.
        stream_source_size: Side of those datasets' files (JPEG).
        stream_epochs: Training epochs of each streaming run (the last one is timed).
        app_timeout_s: Seconds the app gets to start and to render a page.
        jit: XLA for the timed training: ``-1`` the library default
            (``TrainConfig.jit_compile="auto"``, a cached probe), ``0`` off, ``1`` on.
        jit_ab: Also race the bound with XLA (``0``: only the bound without).
    """

    image_size: int = 64
    train_images: int = 800
    batch_size: int = 32
    warmup_epochs: int = 1
    repeats: int = 4
    latency_calls: int = 50
    naive_calls: int = 12
    upload_size: int = 224
    transfer_size: int = 96
    ttq_max_epochs: int = 15
    ttq_limit_per_class: int = 0
    am_steps: int = 0
    dream_steps: int = 0
    method_calls: int = 5
    sizes: tuple[int, ...] = (28, 64, 128, 224)
    scaling_pixels: int = 640 * 64 * 64
    memory_train_images: int = 400
    stream_datasets: tuple[int, ...] = (2000, 20000)
    stream_source_size: int = 256
    stream_epochs: int = 2
    app_timeout_s: float = 180.0
    jit: int = -1
    jit_ab: int = 1

    @classmethod
    def quick(cls) -> Settings:
        """Small sizes for development runs (minutes, not tens of minutes)."""
        return cls(
            train_images=256,
            repeats=3,
            latency_calls=30,
            naive_calls=4,
            ttq_max_epochs=3,
            ttq_limit_per_class=200,
            am_steps=8,
            dream_steps=4,
            method_calls=2,
            scaling_pixels=256 * 64 * 64,
            memory_train_images=64,
            stream_datasets=(200, 2000),
            jit_ab=0,
        )

    def with_env(self, environ: dict[str, str] | None = None) -> Settings:
        """This, with every ``MEDVIZ_BENCH_<FIELD>`` of ``environ`` applied.

        Raises:
            ValueError: A variable holds a value of the wrong type.
        """
        environ = dict(os.environ if environ is None else environ)
        changes: dict[str, Any] = {}
        for f in fields(self):
            raw = environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or not raw.strip():
                continue
            current = getattr(self, f.name)
            try:
                if isinstance(current, tuple):
                    changes[f.name] = tuple(int(v) for v in raw.split(",") if v.strip())
                elif isinstance(current, float):
                    changes[f.name] = float(raw)
                else:
                    changes[f.name] = int(raw)
            except ValueError:
                raise ValueError(f"{ENV_PREFIX}{f.name.upper()}={raw!r} is not valid") from None
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        values = asdict(self)
        values["sizes"] = list(self.sizes)
        return values

    @property
    def jit_compile(self) -> bool | str:
        """XLA setting for the training contenders (``"auto"``: the library's probe)."""
        return "auto" if self.jit < 0 else bool(self.jit)


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """Median and spread of repeated measurements.

    Args:
        values: ``(n,)`` measurements, ``n >= 1``.

    Returns:
        ``{"median", "min", "max", "iqr", "rel_spread", "n", "values"}``;
        ``rel_spread`` is ``(max - min) / median``.
    """
    arr = np.asarray(values, dtype=np.float64)
    median = float(np.median(arr))
    q75, q25 = np.percentile(arr, [75, 25])
    return {
        "median": median,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "iqr": float(q75 - q25),
        "rel_spread": float((arr.max() - arr.min()) / median) if median else 0.0,
        "n": len(arr),
        "values": [float(v) for v in arr],
    }


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p95/mean/min/max in milliseconds of ``(n,)`` call durations in seconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "mean_ms": float(ms.mean()),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "n": len(ms),
    }


def time_calls(fn: Callable[[int], object], *, calls: int, warmup: int = 1) -> list[float]:
    """Seconds of ``calls`` timed calls ``fn(i)`` after ``warmup`` untimed ones."""
    for i in range(warmup):
        fn(i)
    out = []
    for i in range(calls):
        started = time.perf_counter()
        fn(i)
        out.append(time.perf_counter() - started)
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 2)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine(*, with_tf: bool = True) -> dict[str, Any]:
    """Where the figures came from: CPU, cores, RAM, versions, date, load average."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "ram_gib": _ram_gib(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average_start": [round(v, 2) for v in os.getloadavg()],
    }
    if with_tf:
        import keras
        import tensorflow as tf

        out["tensorflow"] = tf.__version__
        out["keras"] = keras.__version__
        out["gpus"] = len(tf.config.list_physical_devices("GPU"))
        out["tf_intra_op_threads"] = tf.config.threading.get_intra_op_parallelism_threads()
        out["tf_inter_op_threads"] = tf.config.threading.get_inter_op_parallelism_threads()
    out["numpy"] = np.__version__
    return out


def run_section(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one section; a failure becomes ``{"error": ...}`` instead of ending the run."""
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    try:
        result = fn()
    except Exception as error:  # one broken section must not lose the others
        result = {
            "error": f"{type(error).__name__}: {error}",
            "traceback": traceback.format_exc(limit=8),
        }
    result["section_seconds"] = round(time.perf_counter() - started, 2)
    result["load_average_1min"] = [round(load_before, 2), round(os.getloadavg()[0], 2)]
    return result


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))
