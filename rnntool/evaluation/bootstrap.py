"""Bootstrap resampling for any corpus-level statistic (numpy only, no torch).

    bootstrap_interval(stat, n) -> (low, high)                 # 95% percentile interval of stat
    paired_bootstrap(stat_a, stat_b, n) -> {"score_a", "score_b", "delta", "p_value", ...}

A *statistic* is a callable that takes an index array ``idx`` (which examples, with repeats) and returns
the corpus-level score of those examples, e.g. ``lambda idx: correct[idx].mean()`` for accuracy, or
precision/recall/F1 from per-example counts summed over ``idx``. ``statistic(np.arange(n))`` is the
score on the data itself.

The resamples are drawn exactly as sacreBLEU draws them (``numpy.random.default_rng(seed)``, then
``rng.choice(n, size=(samples, n), replace=True)``, here one row at a time so memory stays O(n)); the
same seed gives the same resamples, hence the same interval and the same p-value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from rnntool.errors import UsageError

DEFAULT_SEED = 12345
DEFAULT_SAMPLES = 1000
DEFAULT_LEVEL = 0.95

Statistic = Callable[[np.ndarray], float]

__all__ = [
    "DEFAULT_LEVEL",
    "DEFAULT_SAMPLES",
    "DEFAULT_SEED",
    "bootstrap_interval",
    "paired_bootstrap",
    "resample_indices",
]


def _check(n: int, samples: int, seed: int | None) -> None:
    if n < 1:
        raise UsageError("nothing to resample: the bootstrap needs at least one example")
    if samples < 1:
        raise UsageError(f"the number of bootstrap samples must be at least 1, got {samples}")
    if seed is not None and seed < 0:
        raise UsageError(f"the bootstrap seed must be a non-negative integer, got {seed}")


def resample_indices(n: int, *, samples: int = DEFAULT_SAMPLES,
                     seed: int | None = DEFAULT_SEED) -> Iterator[np.ndarray]:
    """``samples`` index arrays of length ``n``, drawn from ``range(n)`` with replacement.

    One ``numpy.random.default_rng(seed)`` for all of them; row ``i`` equals row ``i`` of sacreBLEU's
    ``rng.choice(n, size=(samples, n), replace=True)``. ``seed=None`` draws fresh randomness.
    """
    _check(n, samples, seed)  # here, not on the first next()
    rng = np.random.default_rng(seed)
    return (rng.choice(n, size=n, replace=True) for _ in range(samples))


def bootstrap_interval(statistic: Statistic, n: int, *, samples: int = DEFAULT_SAMPLES,
                       seed: int | None = DEFAULT_SEED, level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``n`` examples.

    Computes ``statistic(idx)`` for ``samples`` resamples ``idx`` of ``range(n)`` (with replacement) and
    returns their ``(1 - level) / 2`` and ``1 - (1 - level) / 2`` percentiles (numpy's linear
    interpolation). The same seed gives the same interval.
    """
    if not 0.0 < level < 1.0:
        raise UsageError(f"the interval level must be between 0 and 1 (e.g. 0.95), got {level}")
    scores = np.fromiter((statistic(idx) for idx in resample_indices(n, samples=samples, seed=seed)),
                         dtype=np.float64, count=samples)
    tail = (1.0 - level) / 2.0
    low, high = np.percentile(scores, [100.0 * tail, 100.0 * (1.0 - tail)])
    return float(low), float(high)


def paired_bootstrap(statistic_a: Statistic, statistic_b: Statistic, n: int, *, samples: int = DEFAULT_SAMPLES,
                     seed: int | None = DEFAULT_SEED) -> dict[str, Any]:
    """Paired bootstrap test (Koehn 2004) of system B against baseline A on the same ``n`` examples.

    Both statistics see the same resampled indices. The p-value is computed exactly as sacreBLEU's
    paired bootstrap does it (``sacrebleu/significance.py``, ``_paired_bs_test`` and
    ``_compute_p_value``, sacreBLEU 2.x), i.e. with the null-hypothesis shift of the resampled differences:

        observed = |score_b - score_a|
        d_i      = |score_b(idx_i) - score_a(idx_i)|         for each resample i
        count    = #{i : d_i - mean(d) > observed}             (strictly greater, as sacreBLEU)
        p_value  = (count + 1) / (samples + 1)

    Like sacreBLEU's, the test is two-sided (absolute differences): a small p-value says the systems
    differ; the sign of ``delta`` says which is better. One departure, the same as
    ``rnntool.kinds.translation.bleu.paired_bootstrap``: equal scores (e.g. identical outputs) get
    ``p_value = 1.0``, where sacreBLEU's strict count would give 1/(samples + 1), i.e. "significant".

    Returns ``{"score_a", "score_b", "delta" (score_b - score_a), "p_value", "samples", "seed"}``.
    """
    _check(n, samples, seed)
    full = np.arange(n)
    score_a = float(statistic_a(full))
    score_b = float(statistic_b(full))
    diffs = np.empty(samples, dtype=np.float64)
    for i, idx in enumerate(resample_indices(n, samples=samples, seed=seed)):
        diffs[i] = abs(float(statistic_b(idx)) - float(statistic_a(idx)))
    observed = abs(score_a - score_b)
    count = int(np.sum(diffs - diffs.mean() > observed))
    p_value = (count + 1) / (samples + 1)
    if score_a == score_b:
        p_value = 1.0
    return {
        "score_a": score_a,
        "score_b": score_b,
        "delta": score_b - score_a,
        "p_value": float(p_value),
        "samples": samples,
        "seed": seed,
    }
