"""XLA on or off for a training run, chosen by measuring both on this machine.

XLA is not a free win: on a 2-core CPU it made the default CNN about 1.5× slower
per step (and Keras' own ``jit_compile="auto"`` turns it off on CPU), while on a
GPU it usually helps. So ``TrainConfig.jit_compile="auto"`` (the default) runs a
short probe the first time an architecture, input shape and batch size trains
on a machine: a few train steps of the real model with and without XLA, after
warm-up, timed. The result is cached (``$MEDVIZ_CACHE_DIR/autotune.json``,
default ``~/.cache/medviz``) under a key naming the machine, the TensorFlow
version and the model, and every later run reads it.

The choice weighs the run's length: XLA pays its compile time once, so it wins
only when ``compile + steps × step time`` is smaller with it.

Overrides, in order: an explicit ``True``/``False`` in the config; the
environment variable ``MEDVIZ_JIT_COMPILE`` (``1``/``0``); a cached probe;
``MEDVIZ_AUTOTUNE=0`` (no probe: XLA on for GPUs, off for CPUs).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np

from medviz.locations import cache_dir

JitSetting = bool | Literal["auto"]

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class JitProbe:
    """Measured cost of training steps with and without XLA for one model on one machine.

    Attributes:
        key: Cache key (machine, TensorFlow version, architecture, shapes, batch).
        step_s_xla: Seconds per train step with XLA, after compilation.
        step_s_plain: Seconds per train step without XLA, after tracing.
        compile_s_xla: Seconds of the first XLA steps beyond their steady-state time.
        compile_s_plain: The same without XLA (graph tracing).
        measured_at: UTC time of the probe, ISO 8601.
    """

    key: str
    step_s_xla: float
    step_s_plain: float
    compile_s_xla: float
    compile_s_plain: float
    measured_at: str

    def best(self, total_steps: int) -> bool:
        """Whether XLA finishes ``total_steps`` train steps sooner, compile time included."""
        with_xla = self.compile_s_xla + total_steps * self.step_s_xla
        without = self.compile_s_plain + total_steps * self.step_s_plain
        return with_xla < without


@dataclass(frozen=True)
class JitDecision:
    """The XLA setting a run uses and why.

    Attributes:
        jit_compile: Whether the train step is XLA-compiled.
        reason: One line for logs and model cards.
        probe: The measurement behind it, when one was used.
    """

    jit_compile: bool
    reason: str
    probe: JitProbe | None = None


def machine_fingerprint() -> str:
    """CPU model, core count, accelerators and TensorFlow version, as one string."""
    import tensorflow as tf

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    return f"{cpu} x{os.cpu_count()} | gpus={len(gpus)} | tf {tf.__version__}"


def probe_key(
    arch: str,
    input_shape: tuple[int, int, int],
    n_classes: int,
    batch_size: int,
    *,
    options: dict | None = None,
) -> str:
    """Cache key of a probe: machine fingerprint plus the model and batch it measured."""
    model = json.dumps(
        [arch, list(input_shape), n_classes, batch_size, options or {}],
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(model.encode()).hexdigest()[:12]
    return f"{machine_fingerprint()} | {arch} {input_shape[0]}px c{input_shape[2]} | {digest}"


def _cache_file() -> Path:
    return cache_dir() / "autotune.json"


def cached_probe(key: str) -> JitProbe | None:
    """The stored probe for ``key``, or ``None`` (also for an unreadable cache)."""
    try:
        entries = json.loads(_cache_file().read_text())
        return JitProbe(**entries[key])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def store_probe(probe: JitProbe) -> None:
    """Add ``probe`` to the cache file (atomic replace; a failed write is not an error)."""
    path = _cache_file()
    try:
        entries = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        entries = {}
    entries[probe.key] = asdict(probe)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
        tmp.replace(path)
    except OSError:
        pass


def measure_jit(
    build: Callable[[bool], object],
    input_shape: tuple[int, int, int],
    n_classes: int,
    batch_size: int,
    *,
    key: str,
    steps: int = 4,
    warmup: int = 2,
) -> JitProbe:
    """Time train steps of a freshly built model with and without XLA.

    Args:
        build: ``build(jit_compile)`` returns a compiled ``keras.Model``
            ``(None, *input_shape) -> (None, n_classes)``.
        input_shape: ``(S, S, C)`` of the model input (raw 0–255 pixels).
        n_classes: Classes of the softmax output.
        batch_size: Images per step, as in the run.
        key: Cache key to record.
        steps: Timed steps per setting (the median step counts).
        warmup: Untimed steps first (compilation or tracing).

    Returns:
        The probe; not stored (see :func:`store_probe`).
    """
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(batch_size, *input_shape)).astype("float32")
    y = np.eye(n_classes, dtype="float32")[rng.integers(0, n_classes, size=batch_size)]
    timings: dict[bool, tuple[float, float]] = {}
    for jit in (False, True):
        model = build(jit)
        start = time.perf_counter()
        for _ in range(warmup):
            model.train_on_batch(x, y)
        first = time.perf_counter() - start
        times = []
        for _ in range(steps):
            t0 = time.perf_counter()
            model.train_on_batch(x, y)
            times.append(time.perf_counter() - t0)
        step = float(np.median(times))
        timings[jit] = (step, max(0.0, first - warmup * step))
    return JitProbe(
        key=key,
        step_s_xla=timings[True][0],
        step_s_plain=timings[False][0],
        compile_s_xla=timings[True][1],
        compile_s_plain=timings[False][1],
        measured_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def parse_flag(text: str) -> bool | None:
    """``True`` for 1/true/yes/on, ``False`` for 0/false/no/off (any case), else ``None``."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def _env_flag(name: str) -> bool | None:
    return parse_flag(os.environ.get(name, ""))


def _has_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU"))


def decide_jit(
    setting: JitSetting,
    *,
    total_steps: int,
    key: Callable[[], str],
    measure: Callable[[str], JitProbe],
) -> JitDecision:
    """Resolve a config's ``jit_compile`` to on or off (see the module docstring for the order).

    Args:
        setting: ``True``, ``False`` or ``"auto"``.
        total_steps: Train steps the run will take (epochs × batches).
        key: Returns the probe's cache key (called only when needed).
        measure: Runs the probe for a key (called only on a cache miss).

    Raises:
        ValueError: ``setting`` is none of the three.
    """
    if isinstance(setting, bool):
        return JitDecision(setting, f"XLA {'on' if setting else 'off'}: set in the config")
    if setting != "auto":
        raise ValueError(f"jit_compile must be True, False or 'auto', got {setting!r}")
    forced = _env_flag("MEDVIZ_JIT_COMPILE")
    if forced is not None:
        return JitDecision(forced, f"XLA {'on' if forced else 'off'}: MEDVIZ_JIT_COMPILE")
    cache_key = key()
    probe = cached_probe(cache_key)
    source = "cached probe"
    if probe is None:
        if _env_flag("MEDVIZ_AUTOTUNE") is False:
            gpu = _has_gpu()
            return JitDecision(
                gpu, f"XLA {'on' if gpu else 'off'}: {'GPU' if gpu else 'CPU'} default (no probe)"
            )
        probe = measure(cache_key)
        store_probe(probe)
        source = "probe"
    use = probe.best(total_steps)
    ratio = probe.step_s_xla / probe.step_s_plain if probe.step_s_plain > 0 else float("inf")
    return JitDecision(
        use,
        f"XLA {'on' if use else 'off'}: {source} on this machine, an XLA step takes "
        f"{ratio:.2f}× a plain one, compile {probe.compile_s_xla:.1f} s, {total_steps} steps",
        probe,
    )
