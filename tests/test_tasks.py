"""Tasks: formatting round trips (gold targets parse back to the gold) and metrics against references."""

from __future__ import annotations

import random

import pytest
from seqeval.metrics import f1_score, precision_score, recall_score

from softprompt_xl import metrics
from softprompt_xl.data.tasks import get_task

TAGS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]


@pytest.mark.parametrize("seed", range(5))
def test_span_f1_agrees_with_seqeval(seed):
    rng = random.Random(seed)
    gold_tags, pred_tags, gold_spans, pred_spans = [], [], [], []
    for _ in range(40):
        n = rng.randint(1, 12)
        tokens = [f"w{i}" for i in range(n)]  # distinct tokens: a span's text fixes its position, as in seqeval
        gold = [rng.choice(TAGS) for _ in range(n)]
        pred = [t if rng.random() < 0.7 else rng.choice(TAGS) for t in gold]
        gold_tags.append(gold)
        pred_tags.append(pred)
        gold_spans.append(metrics.iob2_spans(tokens, gold))
        pred_spans.append(metrics.iob2_spans(tokens, pred))
    ours = metrics.span_f1(pred_spans, gold_spans)
    assert ours["span_f1"] == pytest.approx(100 * f1_score(gold_tags, pred_tags))
    assert ours["precision"] == pytest.approx(100 * precision_score(gold_tags, pred_tags))
    assert ours["recall"] == pytest.approx(100 * recall_score(gold_tags, pred_tags))


def test_iob2_spans_by_hand():
    tokens = ["Jana", "Nováková", "pracuje", "v", "Slovenskej", "sporiteľni", "v", "Bratislave", "."]
    tags = ["B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O", "B-LOC", "O"]
    assert metrics.iob2_spans(tokens, tags) == [("PER", "Jana Nováková"), ("ORG", "Slovenskej sporiteľni"),
                                                ("LOC", "Bratislave")]


def test_ner_target_round_trip_and_scoring(make_cfg):
    task = get_task(make_cfg("task=ner").task)
    record = {"tokens": ["Eva", "Malá", "žije", "v", "Nitre", "."], "ner_tags": [1, 2, 0, 0, 5, 0]}
    assert task.check(record) is None
    target = task.target(record)
    assert target == "PER: Eva Malá$$LOC: Nitre"
    assert task.parse(target) == (task.reference(record), True)
    assert task.source(record) == "tag: Eva Malá žije v Nitre ."
    scores = task.score([target, "PER: Eva$$nonsense", ""], [task.reference(record)] * 3, "sk")
    # predicted 2 + 1 + 0 spans, 2 + 0 + 0 correct, 6 gold -> P 2/3, R 1/3
    assert scores["precision"] == pytest.approx(100 * 2 / 3) and scores["recall"] == pytest.approx(100 / 3)
    assert scores["unparsed"] == pytest.approx(100 / 3)


def test_ner_malformed_records_are_named(make_cfg):
    task = get_task(make_cfg("task=ner").task)
    assert "3 tokens but 2 tags" in task.check({"tokens": ["a", "b", "c"], "ner_tags": [0, 1]})
    assert "tag 9 is out of range" in task.check({"tokens": ["a"], "ner_tags": [9]})
    assert "missing field 'ner_tags'" in task.check({"tokens": ["a"]})


def test_nli_round_trip_and_accuracy(make_cfg):
    task = get_task(make_cfg("task=nli").task)
    records = [{"premise": "Eva býva v Nitre.", "hypothesis": "Eva býva v Nitre.", "label": i} for i in range(3)]
    assert [task.target(r) for r in records] == ["Yes", "Maybe", "No"]
    assert [task.parse(task.target(r)) for r in records] == [0, 1, 2]
    assert task.source(records[0]) == 'Eva býva v Nitre. Question: Does this imply that "Eva býva v Nitre."? Yes, no, or maybe?'
    scores = task.score(["yes.", "No", "perhaps"], [0, 1, 2], "sk")
    assert scores == {"accuracy": pytest.approx(100 / 3), "unparsed": pytest.approx(100 / 3)}
    assert "label 3 is out of range" in task.check({**records[0], "label": 3})


def test_checkworthy_f1_of_the_positive_class(make_cfg):
    task = get_task(make_cfg("task=checkworthy").task)
    assert task.parse("Not checkworthy") == 0 and task.parse("checkworthy") == 1
    # gold 1 1 0 0, predicted 1 0 1 unparsed -> tp 1, fp 1, fn 1 -> F1 50, accuracy 25
    scores = task.score(["Checkworthy", "Not checkworthy", "Checkworthy", "???"], [1, 1, 0, 0], "en")
    assert scores == {"accuracy": 25.0, "f1": 50.0, "unparsed": 25.0}
