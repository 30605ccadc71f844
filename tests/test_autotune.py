"""XLA on or off, chosen by a cached probe (medviz.autotune) and used by train()."""

from __future__ import annotations

import json

import pytest

from medviz import autotune
from medviz.autotune import JitProbe, decide_jit


def probe(key: str = "k", *, xla: float = 0.5, plain: float = 1.0, compile_s: float = 10.0):
    return JitProbe(
        key=key,
        step_s_xla=xla,
        step_s_plain=plain,
        compile_s_xla=compile_s,
        compile_s_plain=0.5,
        measured_at="2026-12-03T00:00:00+00:00",
    )


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDVIZ_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MEDVIZ_JIT_COMPILE", raising=False)
    monkeypatch.delenv("MEDVIZ_AUTOTUNE", raising=False)
    return tmp_path


def never(*_):
    raise AssertionError("must not be called")


def test_probe_weighs_compile_time_against_run_length():
    faster_steps = probe(xla=0.5, plain=1.0, compile_s=10.0)
    assert not faster_steps.best(5)  # 10 + 2.5 s against 0.5 + 5 s
    assert faster_steps.best(100)  # 10 + 50 s against 0.5 + 100 s
    assert not probe(xla=1.2, plain=1.0, compile_s=0.0).best(10_000)


def test_explicit_setting_wins_without_probing(cache):
    for setting in (True, False):
        decision = decide_jit(setting, total_steps=10, key=never, measure=never)
        assert decision.jit_compile is setting
        assert "set in the config" in decision.reason


def test_unknown_setting_is_a_value_error(cache):
    with pytest.raises(ValueError, match="'sometimes'"):
        decide_jit("sometimes", total_steps=10, key=never, measure=never)


def test_environment_forces_the_choice(cache, monkeypatch):
    monkeypatch.setenv("MEDVIZ_JIT_COMPILE", "1")
    assert decide_jit("auto", total_steps=1, key=never, measure=never).jit_compile is True
    monkeypatch.setenv("MEDVIZ_JIT_COMPILE", "0")
    assert decide_jit("auto", total_steps=10**6, key=never, measure=never).jit_compile is False


def test_probe_runs_once_then_the_cache_answers(cache):
    calls = []

    def measure(key):
        calls.append(key)
        return probe(key, xla=0.5, plain=1.0, compile_s=10.0)

    first = decide_jit("auto", total_steps=1000, key=lambda: "machine|fast-cnn", measure=measure)
    assert first.jit_compile is True and "probe on this machine" in first.reason
    stored = json.loads((cache / "autotune.json").read_text())
    assert stored["machine|fast-cnn"]["step_s_xla"] == 0.5
    # Same key: read back, no second measurement; a short run now prefers no XLA.
    again = decide_jit("auto", total_steps=5, key=lambda: "machine|fast-cnn", measure=measure)
    assert calls == ["machine|fast-cnn"]
    assert again.jit_compile is False and "cached probe" in again.reason
    # Another model is another key: measured afresh.
    decide_jit("auto", total_steps=5, key=lambda: "machine|vgg-small", measure=measure)
    assert calls == ["machine|fast-cnn", "machine|vgg-small"]


def test_without_probe_the_cpu_default_is_off(cache, monkeypatch):
    monkeypatch.setenv("MEDVIZ_AUTOTUNE", "0")
    decision = decide_jit("auto", total_steps=1000, key=lambda: "k", measure=never)
    assert decision.jit_compile is False  # this suite runs on CPU
    assert "CPU default" in decision.reason


def test_unreadable_cache_is_a_miss(cache):
    (cache / "autotune.json").write_text("{not json")
    assert autotune.cached_probe("k") is None
    autotune.store_probe(probe("k"))
    assert autotune.cached_probe("k") == probe("k")


def test_probe_key_names_machine_and_model():
    key = autotune.probe_key("fast-cnn", (64, 64, 1), 2, 32)
    assert "fast-cnn 64px c1" in key and "tf " in key
    assert key != autotune.probe_key("fast-cnn", (64, 64, 1), 2, 16)


def test_train_probes_on_first_use_and_reuses_it(cache, tiny_microcalc):
    from medviz.augment import AugmentConfig
    from medviz.training import TrainConfig, train

    config = TrainConfig(
        arch="fast-cnn", epochs=1, batch_size=32, augment=AugmentConfig.none(), jit_compile="auto"
    )
    first = train(config, tiny_microcalc)
    assert "probe on this machine" in first.jit_reason
    assert first.config.jit_compile in (True, False)  # the card records what ran
    (entry,) = json.loads((cache / "autotune.json").read_text()).values()
    assert entry["step_s_xla"] > 0 and entry["step_s_plain"] > 0
    second = train(config, tiny_microcalc)
    assert "cached probe" in second.jit_reason
    assert second.config.jit_compile == first.config.jit_compile
