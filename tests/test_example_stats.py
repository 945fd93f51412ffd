"""Per-example sufficient statistics (metrics.ExampleStats): for every task, the metric of the summed statistics
is the task's own score, on toy records with right, half-right, wrong and unparseable predictions."""

from __future__ import annotations

import random

import numpy as np
import pytest

from softprompt_xl.data.tasks import get_task
from softprompt_xl.toy.generate import fresh_records

TASKS = ["qa", "ner", "nli", "checkworthy"]


def toy_predictions(task, records: list[dict], rng: random.Random) -> list[str]:
    """Each prediction the gold target, another record's, the gold cut in half, or nonsense."""
    targets = [task.target(r) for r in records]
    out = []
    for target in targets:
        pick = rng.random()
        out.append(target if pick < 0.4 else rng.choice(targets) if pick < 0.7
                   else target[:len(target) // 2] if pick < 0.9 else rng.choice(["", "???", "blah blah"]))
    return out


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("lang", ["en", "sk"])
def test_score_is_the_metric_of_the_summed_statistics(make_cfg, name, lang):
    task = get_task(make_cfg(f"task={name}").task)
    rng = random.Random(f"{name}{lang}")
    records = [r for r in fresh_records(name, lang, 120) if task.usable(r)]
    predictions, references = toy_predictions(task, records, rng), [task.reference(r) for r in records]
    stats = task.example_stats(predictions, references, lang)
    assert stats.values.shape == (len(records), len(stats.columns))
    score = task.score(predictions, references, lang)
    assert stats.score() == pytest.approx(score, abs=1e-9)
    assert 0 < score[task.primary_metric] < 100  # neither trivial end: the statistics are exercised
    # A subset's statistics score as the task scores that subset (resampling is taking rows).
    rows = np.array(sorted(rng.sample(range(len(records)), 30)))
    assert stats.take(rows).score() == pytest.approx(
        task.score([predictions[i] for i in rows], [references[i] for i in rows], lang), abs=1e-9)
    # Vectorised: summed statistics of many resamples at once give one value per resample.
    sums = np.stack([stats.values.sum(0), stats.values[rows].sum(0)])
    assert stats.metrics(sums)[task.primary_metric][1] == pytest.approx(stats.take(rows).score()[task.primary_metric])
