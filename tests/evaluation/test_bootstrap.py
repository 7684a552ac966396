"""rnntool.evaluation.bootstrap: percentile intervals and sacreBLEU's paired bootstrap p-value."""

from __future__ import annotations

import random

import numpy as np
import pytest

from rnntool.errors import UsageError
from rnntool.evaluation.bootstrap import bootstrap_interval, paired_bootstrap, resample_indices


def mean_of(values):
    values = np.asarray(values, dtype=np.float64)
    return lambda idx: float(values[idx].mean())


def test_resamples_are_sacrebleus_draws():
    """Row by row, the same indices as sacreBLEU's rng.choice(n, size=(samples, n)) from default_rng(seed)."""
    for n, seed in ((1, 3), (7, 12345), (1001, 0)):
        rows = np.array(list(resample_indices(n, samples=20, seed=seed)))
        assert np.array_equal(rows, np.random.default_rng(seed).choice(n, size=(20, n), replace=True))


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_interval_contains_estimate_and_repeats(seed):
    correct = (np.random.default_rng(seed).random(500) < 0.7).astype(float)
    stat = mean_of(correct)
    low, high = bootstrap_interval(stat, len(correct), seed=seed)
    assert low < stat(np.arange(len(correct))) < high
    assert 0.0 <= low < high <= 1.0
    assert (low, high) == bootstrap_interval(stat, len(correct), seed=seed)
    assert (low, high) != bootstrap_interval(stat, len(correct), seed=seed + 1)
    narrow = bootstrap_interval(stat, len(correct), seed=seed, level=0.5)
    assert low < narrow[0] < narrow[1] < high
    # the textbook standard error of a proportion: the 95% interval is about +-1.96 of it
    p = correct.mean()
    assert abs((high - low) / 2 - 1.96 * np.sqrt(p * (1 - p) / len(correct))) < 0.01


def test_interval_is_the_percentiles_of_the_resampled_scores():
    values = np.random.default_rng(4).normal(size=50)
    stat = mean_of(values)
    scores = [stat(idx) for idx in resample_indices(50, samples=200, seed=9)]
    expected = np.percentile(scores, [5.0, 95.0])
    assert bootstrap_interval(stat, 50, samples=200, seed=9, level=0.9) == pytest.approx(tuple(expected), abs=1e-15)


def test_identical_systems_are_not_significant():
    stat = mean_of(np.random.default_rng(1).random(300) < 0.6)
    res = paired_bootstrap(stat, stat, 300)
    assert res == {"score_a": res["score_a"], "score_b": res["score_a"], "delta": 0.0, "p_value": 1.0,
                   "samples": 1000, "seed": 12345}


def test_clearly_better_system_is_significant_and_repeats():
    rng = np.random.default_rng(2)
    a = mean_of(rng.random(400) < 0.6)
    b = mean_of(rng.random(400) < 0.8)
    res = paired_bootstrap(a, b, 400, samples=500, seed=7)
    assert res["delta"] == pytest.approx(res["score_b"] - res["score_a"]) and res["delta"] > 0.1
    assert res["p_value"] < 0.05
    assert res["samples"] == 500 and res["seed"] == 7
    assert paired_bootstrap(a, b, 400, samples=500, seed=7) == res
    # a small net difference among many disagreements is not: B right on 6 of 10 where they differ
    a_right = np.array([1.0] * 4 + [0.0] * 6 + [1.0] * 30 + [0.0] * 20)
    b_right = np.array([0.0] * 4 + [1.0] * 6 + [1.0] * 30 + [0.0] * 20)
    assert paired_bootstrap(mean_of(a_right), mean_of(b_right), 60)["p_value"] > 0.1


def test_p_value_is_sacrebleus_formula_on_a_tiny_example():
    """Five resamples of four examples, by hand, then through sacreBLEU's own _compute_p_value."""
    significance = pytest.importorskip("sacrebleu.significance")
    a_vals = np.array([1.0, 0.0, 1.0, 0.0])
    b_vals = np.array([1.0, 1.0, 1.0, 0.0])
    samples, seed = 5, 42
    idxs = np.random.default_rng(seed).choice(4, size=(samples, 4), replace=True)
    observed = abs(b_vals.mean() - a_vals.mean())  # 0.25
    diffs = np.array([abs(b_vals[i].mean() - a_vals[i].mean()) for i in idxs])
    shifted = diffs - diffs.mean()
    by_hand = (int(np.sum(shifted > observed)) + 1) / (samples + 1)
    res = paired_bootstrap(mean_of(a_vals), mean_of(b_vals), 4, samples=samples, seed=seed)
    assert res["p_value"] == by_hand == significance._compute_p_value(shifted, observed)
    assert res["score_a"] == 0.5 and res["score_b"] == 0.75 and res["delta"] == 0.25


def test_p_value_equals_sacrebleus_paired_bootstrap_on_bleu():
    """BLEU from sacreBLEU's sufficient statistics as the statistic: the same p-value as sacreBLEU's PairedTest."""
    pytest.importorskip("sacrebleu")
    from sacrebleu.metrics import BLEU

    from rnntool.kinds.translation import bleu

    rng = random.Random(0)
    words = "the a cat dog sees likes river house red blue old man child".split()
    refs = [" ".join(rng.choice(words) for _ in range(rng.randint(4, 10))) for _ in range(40)]
    good = [" ".join(rng.choice(words) if rng.random() < 0.15 else w for w in r.split()) for r in refs]
    bad = [" ".join(rng.choice(words) if rng.random() < 0.3 else w for w in r.split()) for r in refs]
    expected = bleu.paired_bootstrap(bad, good, refs, seed=12345, n_samples=200)

    def bleu_of(hyps):
        metric = BLEU()
        stats = np.array(metric._extract_corpus_statistics(hyps, [refs]), dtype=np.float64)
        return lambda idx: float(metric._compute_score_from_stats(list(stats[idx].sum(0))).score)

    res = paired_bootstrap(bleu_of(bad), bleu_of(good), len(refs), samples=200, seed=12345)
    assert res["score_a"] == pytest.approx(expected["score_a"], abs=1e-9)
    assert res["score_b"] == pytest.approx(expected["score_b"], abs=1e-9)
    assert res["p_value"] == expected["p_value"]


def test_bad_arguments():
    stat = mean_of([1.0, 0.0])
    with pytest.raises(UsageError):
        bootstrap_interval(stat, 0)
    with pytest.raises(UsageError):
        bootstrap_interval(stat, 2, samples=0)
    with pytest.raises(UsageError):
        bootstrap_interval(stat, 2, level=1.0)
    with pytest.raises(UsageError):
        paired_bootstrap(stat, stat, 2, seed=-1)
