"""The one bootstrap of MedViz: stratified resample counts and percentile intervals.

:func:`medviz.metrics.evaluate` (AUC intervals), :func:`bootstrap_ci` (intervals of
a mean: localisation hit rates, accuracy) and the model cards all resample through
:func:`stratified_counts`, so one seed gives one set of resamples everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from medviz.errors import MedvizError

# Bootstrap resamples are processed in chunks of about this many counts, to
# bound memory at a few MB whatever N is.
BOOTSTRAP_CHUNK = 1_000_000


def percentile_ci(samples: np.ndarray, *, level: float = 0.95) -> tuple[float, float]:
    """Percentile interval of the finite values of ``samples``.

    Args:
        samples: ``(B,)`` bootstrap statistics; ``nan``/``inf`` are ignored.
        level: Coverage in ``(0, 1)``; 0.95 gives the 2.5th and 97.5th percentiles.

    Returns:
        ``(low, high)``, or ``(nan, nan)`` when no sample is finite.
    """
    if not 0.0 < level < 1.0:
        raise MedvizError(f"level must be in (0, 1), got {level!r}")
    samples = np.asarray(samples, dtype=np.float64)
    finite = samples[np.isfinite(samples)]
    if finite.size == 0:
        return (math.nan, math.nan)
    tail = (100.0 - 100.0 * level) / 2.0  # exactly 2.5 for level 0.95
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return (float(low), float(high))


def stratified_counts(
    y: np.ndarray, n_bootstrap: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Yield ``(N, b)`` counts of stratified bootstrap resamples, in chunks.

    Each class is resampled with replacement within itself, so every resample
    keeps the class counts (and an AUC defined on the data stays defined).

    Args:
        y: ``(N,)`` stratum of each sample (class labels; all equal for a plain
            bootstrap).
        n_bootstrap: Total number of resamples ``B``.
        rng: The generator that draws them.

    Yields:
        ``(N, b)`` int counts (how often each sample occurs in each of ``b``
        resamples); the ``b`` of all chunks add up to ``B``.
    """
    n = len(y)
    members = [np.flatnonzero(y == c) for c in np.unique(y)]
    chunk = max(1, BOOTSTRAP_CHUNK // max(n, 1))
    for start in range(0, n_bootstrap, chunk):
        b = min(chunk, n_bootstrap - start)
        resample = np.arange(b)[:, None]
        # Flat index sample * b + resample, so the reshape gives (N, b).
        flat = np.concatenate(
            [(m[rng.integers(0, len(m), size=(b, len(m)))] * b + resample).ravel() for m in members]
        )
        yield np.bincount(flat, minlength=n * b).reshape(n, b)


def bootstrap_ci(
    values: np.ndarray,
    *,
    strata: np.ndarray | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``.

    The accuracy interval of a model card is ``bootstrap_ci(y_true == y_pred,
    strata=y_true)``; a localisation hit rate is ``bootstrap_ci(hits)``.

    Args:
        values: ``(N,)`` numbers (e.g. 0/1 hits).
        strata: ``(N,)`` labels to resample within (stratified bootstrap, every
            resample keeps the class counts); ``None`` resamples all together.
        n_bootstrap: Number of resamples.
        seed: Seed of the resampling.
        level: Coverage of the interval in ``(0, 1)``.

    Returns:
        ``(low, high)``; ``(nan, nan)`` when ``values`` is empty.

    Raises:
        MedvizError: ``strata`` does not have one entry per value.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if len(v) == 0:
        return (math.nan, math.nan)
    groups = np.zeros(len(v), dtype=np.int64) if strata is None else np.asarray(strata).reshape(-1)
    if len(groups) != len(v):
        raise MedvizError(f"strata has {len(groups)} entries, values has {len(v)}; they must match")
    rng = np.random.default_rng(seed)
    means = np.empty(n_bootstrap)
    done = 0
    for counts in stratified_counts(groups, n_bootstrap, rng):
        b = counts.shape[1]
        means[done : done + b] = (v @ counts) / len(v)
        done += b
    return percentile_ci(means, level=level)
