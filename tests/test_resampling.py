"""The report's statistics (report/resampling.py) against independent implementations on synthetic per-example
statistics with a known answer: scipy's percentile bootstrap, and an exact sign-flip test enumerated by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats as scipy_stats

from softprompt_xl.data.tasks import metrics
from softprompt_xl.report.resampling import Settings, interval, paired


def mean_stats(values) -> metrics.ExampleStats:
    """A per-example score whose metric is its mean (as SQuAD F1 or accuracy)."""
    return metrics.example_stats({"examples": [1.0] * len(values), "x": list(values)},
                                 lambda s: {"score": 100.0 * s["x"] / s["examples"]})


def f1_stats(matched, predicted, gold) -> metrics.ExampleStats:
    return metrics.span_stats([[("PER", str(k)) for k in range(p)] for p in predicted],
                              [[("PER", str(k)) for k in range(m)] + [("LOC", str(k)) for k in range(g - m)]
                               for m, g in zip(matched, gold)])


MANY = Settings(resamples=20000, seed=1)


def scipy_interval(data: tuple, statistic) -> tuple[float, float]:
    ci = scipy_stats.bootstrap(data, statistic, n_resamples=20000, method="percentile", paired=True, vectorized=True,
                               random_state=np.random.default_rng(2)).confidence_interval
    return ci.low, ci.high


def test_interval_of_a_mean_matches_scipy_and_the_normal_approximation():
    rng = np.random.default_rng(0)
    x = rng.random(300) < 0.7  # accuracy-like: 0/1 per example
    ours = interval([mean_stats(x)], "score", MANY)
    lo, hi = scipy_interval((100.0 * x,), lambda v, axis: v.mean(axis))
    assert ours.score == pytest.approx(100 * x.mean())
    half = 1.96 * 100 * x.std() / np.sqrt(len(x))  # ~5.2 points
    for ours_end, scipy_end, normal_end in ((ours.lo, lo, ours.score - half), (ours.hi, hi, ours.score + half)):
        assert ours_end == pytest.approx(scipy_end, abs=0.4)  # a step of the 0/1 mean (1/3) plus Monte-Carlo error
        assert ours_end == pytest.approx(normal_end, abs=0.8)


def test_interval_of_a_corpus_f1_matches_scipy():
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 4, 250)
    matched = rng.binomial(gold, 0.6)
    predicted = matched + rng.integers(0, 2, 250)
    ours = interval([f1_stats(matched, predicted, gold)], "span_f1", MANY)
    assert ours.score == pytest.approx(200 * matched.sum() / (predicted.sum() + gold.sum()))
    lo, hi = scipy_interval((matched, predicted, gold), lambda m, p, g, axis: 200 * m.sum(axis) / (p.sum(axis) + g.sum(axis)))
    assert (ours.lo, ours.hi) == pytest.approx((lo, hi), abs=0.3)
    assert ours.lo < ours.score < ours.hi


def test_seeds_are_averaged_under_the_same_resampled_examples():
    """For a mean metric, the seed-averaged score of a resample is the mean of the per-example seed averages: the
    interval is scipy's on those averages (and narrower than a single seed's when the seeds disagree)."""
    rng = np.random.default_rng(4)
    seeds = [rng.random(200) for _ in range(3)]
    ours = interval([mean_stats(s) for s in seeds], "score", MANY)
    lo, hi = scipy_interval((100 * np.mean(seeds, axis=0),), lambda v, axis: v.mean(axis))
    assert ours.score == pytest.approx(100 * np.mean(seeds))
    assert (ours.lo, ours.hi) == pytest.approx((lo, hi), abs=0.3)
    single = interval([mean_stats(seeds[0])], "score", MANY)
    assert ours.hi - ours.lo < single.hi - single.lo


def exact_sign_flip_p(a: list[tuple[int, int, int]], b: list[tuple[int, int, int]]) -> float:
    """Every one of the 2^n swaps of the two systems' outputs, with the corpus F1 computed in plain Python."""
    def f1(rows):
        m, p, g = (sum(r[i] for r in rows) for i in range(3))
        return 200 * m / (p + g) if m else 0.0

    observed = f1(a) - f1(b)
    flips = list(itertools.product([False, True], repeat=len(a)))
    beyond = sum(abs(f1([y if s else x for x, y, s in zip(a, b, swap)]) - f1([x if s else y for x, y, s in zip(a, b, swap)]))
                 >= abs(observed) - 1e-9 for swap in flips)
    return beyond / len(flips)


def test_the_paired_p_value_is_the_exact_permutation_p_value():
    rng = np.random.default_rng(5)
    gold = rng.integers(1, 4, 12)
    rows_a = [(int(m), int(m) + 1, int(g)) for m, g in zip(rng.binomial(gold, 0.9), gold)]
    rows_b = [(int(m), int(m) + 1, int(g)) for m, g in zip(rng.binomial(gold, 0.4), gold)]
    exact = exact_sign_flip_p(rows_a, rows_b)
    assert 0.005 < exact < 0.5  # neither end: the test can tell
    a, b = (f1_stats(*zip(*rows)) for rows in (rows_a, rows_b))
    result = paired([a], [b], "span_f1", MANY)
    assert result.p == pytest.approx(exact, abs=0.006)  # 3 standard errors at 20000 rounds (p ~ 0.09)
    assert result.difference == pytest.approx(a.score()["span_f1"] - b.score()["span_f1"])


def test_a_clearly_better_system_and_identical_systems():
    rng = np.random.default_rng(6)
    truth = rng.random((2, 400))
    better = [mean_stats(t < 0.8) for t in truth]  # two seeds each
    worse = [mean_stats(t < 0.6) for t in truth[::-1]]
    clear = paired(better, worse, "score", Settings())
    assert clear.p < 0.01 and clear.lo > 0 and clear.difference == pytest.approx(20, abs=5)
    same = paired(better, better, "score", Settings())
    assert same.p == 1.0 and same.difference == 0.0 and same.lo == same.hi == 0.0
    noise = paired([mean_stats(truth[0] < 0.7)], [mean_stats(truth[1] < 0.7)], "score", Settings())
    assert noise.p > 0.05 and noise.lo < 0 < noise.hi  # two draws of one system


def test_the_paired_interval_matches_scipy_on_paired_differences():
    rng = np.random.default_rng(7)
    a, b = rng.random(250), rng.random(250) * 0.9
    ours = paired([mean_stats(a)], [mean_stats(b)], "score", MANY)
    lo, hi = scipy_interval((100 * (a - b),), lambda v, axis: v.mean(axis))
    assert (ours.lo, ours.hi) == pytest.approx((lo, hi), abs=0.3)


def test_resampling_is_seeded():
    x = mean_stats(np.random.default_rng(8).random(50))
    assert interval([x], "score", Settings(seed=3)) == interval([x], "score", Settings(seed=3))
    assert interval([x], "score", Settings(seed=3)) != interval([x], "score", Settings(seed=4))
