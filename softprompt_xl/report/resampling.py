"""Uncertainty over test examples, from per-example statistics (data/tasks/metrics.ExampleStats): a percentile
bootstrap confidence interval of a cell's score, and a paired test of two configurations on the same examples.

A cell may hold several seeds: its score is the mean of the seeds' scores, each on the same test examples. A
bootstrap resample draws example indices once and applies them to every seed (the examples are what is sampled,
the seeds are what the cell is), so the interval is that of the seed-averaged score.

The paired test is approximate randomisation (Noreen 1989; Riezler & Maxwell 2005), two-sided: under the null
hypothesis that the two configurations are interchangeable, which of them produced example i's outputs is a coin
flip, so each round swaps the two systems' statistics on a random half of the examples (the same examples for
every seed pair) and recomputes the difference of the scores; p = (1 + rounds at least as far from 0 as the
observed difference) / (1 + rounds). Chosen over the p-value of a paired bootstrap because it tests exactly
that null (no shifting of a resampled distribution is needed), holds for corpus-level metrics such as F1 that
are no mean over examples, and is the more conservative of the two in Riezler & Maxwell's study. The interval of
the difference is a paired bootstrap (the same example indices for both configurations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from softprompt_xl.data.tasks.metrics import ExampleStats

CHUNK = 200  # resamples drawn at once: bounds memory at CHUNK x examples


@dataclass(frozen=True)
class Settings:
    confidence: float = 0.95
    resamples: int = 1000
    seed: int = 0


@dataclass(frozen=True)
class Interval:
    score: float  # the score itself (mean over the seeds), not the resamples' mean
    lo: float
    hi: float


@dataclass(frozen=True)
class Paired:
    difference: float  # score of a - score of b
    lo: float  # bootstrap interval of the difference
    hi: float
    p: float  # two-sided, approximate randomisation


def _score(runs: list[ExampleStats], metric: str, sums: list[np.ndarray]) -> np.ndarray:
    """The seed-averaged metric for summed statistics per run (leading axes: resamples)."""
    return np.mean([run.metrics(s)[metric] for run, s in zip(runs, sums)], axis=0)


def _counts(rng: np.random.Generator, n: int, resamples: int):
    """How often each example is drawn, per bootstrap resample, in chunks: (chunk, n) integer arrays."""
    for start in range(0, resamples, CHUNK):
        yield rng.multinomial(n, np.full(n, 1.0 / n), size=min(CHUNK, resamples - start)).astype(np.float64)


def _percentiles(values: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = 100.0 * (1.0 - confidence) / 2
    lo, hi = np.percentile(values, [tail, 100.0 - tail])
    return float(lo), float(hi)


def _check(runs: list[ExampleStats]) -> int:
    sizes = {len(run.values) for run in runs}
    if len(sizes) != 1 or not sizes.pop():
        raise ValueError(f"the runs must score the same, non-empty examples: they have {[len(r.values) for r in runs]}")
    return len(runs[0].values)


def interval(runs: list[ExampleStats], metric: str, settings: Settings = Settings()) -> Interval:
    """Percentile bootstrap interval of the mean over `runs` (seeds, rows aligned: row i is the same example in
    each) of `metric`, resampling examples."""
    n = _check(runs)
    rng = np.random.default_rng(settings.seed)
    scores = np.concatenate([_score(runs, metric, [counts @ run.values for run in runs])
                             for counts in _counts(rng, n, settings.resamples)])
    point = float(_score(runs, metric, [run.values.sum(axis=0) for run in runs]))
    return Interval(point, *_percentiles(scores, settings.confidence))


def paired(a: list[ExampleStats], b: list[ExampleStats], metric: str, settings: Settings = Settings()) -> Paired:
    """Configuration a against b on the same examples: `a[k]` and `b[k]` are a pair of runs (the same seed), every
    run's row i the same example."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired runs are needed: {len(a)} against {len(b)}")
    n = _check([*a, *b])
    rng = np.random.default_rng(settings.seed)
    totals_a, totals_b = [r.values.sum(axis=0) for r in a], [r.values.sum(axis=0) for r in b]
    observed = float(_score(a, metric, totals_a) - _score(b, metric, totals_b))
    differences = np.concatenate([
        _score(a, metric, [counts @ r.values for r in a]) - _score(b, metric, [counts @ r.values for r in b])
        for counts in _counts(rng, n, settings.resamples)])
    gaps = [rb.values - ra.values for ra, rb in zip(a, b)]  # what swapping an example moves from b to a
    beyond = 0
    for start in range(0, settings.resamples, CHUNK):
        swap = (rng.random((min(CHUNK, settings.resamples - start), n)) < 0.5).astype(np.float64)
        moved = [swap @ gap for gap in gaps]
        shuffled = (_score(a, metric, [t + m for t, m in zip(totals_a, moved)])
                    - _score(b, metric, [t - m for t, m in zip(totals_b, moved)]))
        beyond += int(np.sum(np.abs(shuffled) >= abs(observed) - 1e-9))  # ties count: identical systems give p = 1
    return Paired(observed, *_percentiles(differences, settings.confidence), (beyond + 1) / (settings.resamples + 1))
