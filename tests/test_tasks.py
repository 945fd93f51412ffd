"""Tasks: formatting round trips (gold targets parse back to the gold) and metrics against references."""

from __future__ import annotations

import random

import pytest
import torch
from seqeval.metrics import f1_score, precision_score, recall_score

from softprompt_xl.data.tasks import metrics
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


def _long_qa_record(answer_sentence: int, sentences: int = 12) -> dict:
    filler = [f"Mesto číslo {k} má veľký park a staré námestie." for k in range(sentences)]
    filler[answer_sentence] = "Eva býva v Nitre a rada jedáva halušky."
    context = " ".join(filler)
    return {"id": "long", "question": "Kde býva Eva?", "context": context,
            "answers": {"text": ["v Nitre"], "answer_start": [context.index("v Nitre")]}}


@pytest.mark.parametrize("answer_sentence", [0, 6, 11])
def test_long_qa_contexts_become_overlapping_windows(make_cfg, tiny, answer_sentence):
    _, tokenizer = tiny
    task = get_task(make_cfg("task=qa").task)
    record = _long_qa_record(answer_sentence)
    context_ids = tokenizer(record["context"], add_special_tokens=False)["input_ids"]
    head = tokenizer("question: Kde býva Eva? context:", add_special_tokens=False)["input_ids"]
    assert len(head) + len(context_ids) > 48  # too long for one input

    windows = task.encode([record], tokenizer, 48, training=False, what="test")
    assert len(windows) > 2 and all(index == 0 for index, _ in windows)
    covered = []
    for _, ids in windows:
        assert len(ids) <= 48 and ids[:len(head)] == head and ids[-1] == tokenizer.eos_token_id
        covered.append(ids[len(head):-1])
    assert [t for t in context_ids if any(t in c for c in covered)] == context_ids  # nothing is lost
    assert set(covered[0]) & set(covered[1])  # consecutive windows overlap

    kept = task.encode([record], tokenizer, 48, training=True, what="test")
    assert 1 <= len(kept) < len(windows)  # training keeps only the windows that hold the answer
    assert all("v Nitre" in tokenizer.decode(ids) for _, ids in kept)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")  # no Trainer: only the selection is tested
def test_the_surest_window_answer_wins(make_cfg, tiny):
    """Evaluation keeps, per record, the generation with the highest mean log-probability over its windows."""
    from softprompt_xl.data.loaders import TaskSplit
    from softprompt_xl.model.module import ComboModule

    _, tokenizer = tiny
    task = get_task(make_cfg("task=qa").task)
    answers = ["v Nitre", "v Prešove", "v Žiline"]
    scores = torch.tensor([-2.0, -0.5, -1.0])

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.tokenizer = tokenizer

        def loss_and_generate(self, input_ids, attention_mask, labels, max_new_tokens):
            tokens = tokenizer(answers, padding=True, return_tensors="pt")["input_ids"]
            return torch.tensor(0.0), tokens, scores

        def answers(self, tokens):  # as ComposedModel.answers, with no stop text
            return [text.strip() for text in tokenizer.batch_decode(tokens, skip_special_tokens=True)]

    split = TaskSplit([], [{"answers": ["v Prešove"], "context": "Eva býva v Prešove."}], "sk", ["x"])
    module = ComboModule(Net(), [], task=task, test_splits=[split])
    batch = {"input_ids": torch.ones(3, 4, dtype=torch.long), "attention_mask": torch.ones(3, 4, dtype=torch.long),
             "labels": torch.ones(3, 2, dtype=torch.long), "index": torch.tensor([0, 0, 0])}
    module._evaluate(batch, split, 0, "test")
    assert module.predictions[0][0][0] == "v Prešove"


def test_qa_unparsed_counts_answers_that_are_not_in_the_context(make_cfg):
    task = get_task(make_cfg("task=qa").task)
    ref = task.reference({"question": "Kde?", "context": "Eva býva v Nitre.", "answers": {"text": ["v Nitre"], "answer_start": [9]}})
    scores = task.score(["v Nitre", "", "v Prahe", "nitre"], [ref] * 4, "sk")
    assert scores["unparsed"] == 50.0 and scores["exact_match"] == 25.0


def test_tokenised_splits_are_cached_and_reused(make_cfg, tiny, tmp_path, caplog):
    import logging

    from softprompt_xl.data.loaders import prepare_task_split

    cfg = make_cfg("task=nli", "lang=sk")
    _, tokenizer = tiny
    task = get_task(cfg.task)
    args = (task, cfg.data.task, "validation", "sk", tokenizer, 128, str(tmp_path / "datasets"), tmp_path / "tok")
    first = prepare_task_split(*args)
    with caplog.at_level(logging.INFO):
        second = prepare_task_split(*args)
    assert "reused" in caplog.text
    assert second.examples == first.examples and second.references == first.references and second.ids == first.ids
    other = prepare_task_split(*args[:5], 16, *args[6:])  # another input length: another entry, not the cached one
    assert len(list((tmp_path / "tok").iterdir())) == 2 and other.examples != first.examples


# --- tags written as text -> the task's IOB2 ids ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_iob1_iob2_and_bioes_segment_as_seqeval_reads_them(seed):
    from seqeval.metrics.sequence_labeling import get_entities

    from softprompt_xl.data.tasks.ner import entities, retag

    rng = random.Random(seed)
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    for _ in range(300):
        tags = [rng.choice(["O", *(f"{p}-{t}" for p in "BIES" for t in ("PER", "ORG", "LOC"))]) for _ in range(rng.randint(1, 12))]
        assert [(kind, start, end - 1) for start, end, kind in entities(tags)] == get_entities(tags)
        ids, changed = retag(tags, names, {})
        assert changed == []
        tokens = [f"w{i}" for i in range(len(tags))]
        # written back as IOB2, the same entities come out (and IOB2 tags are their own conversion)
        iob2 = [names[i] for i in ids]
        assert metrics.iob2_spans(tokens, iob2) == [(k, " ".join(tokens[s:e + 1])) for k, s, e in get_entities(tags)]
        assert retag(iob2, names, {})[0] == ids


def test_conll2003_iob1_by_hand():
    from softprompt_xl.data.tasks.ner import retag

    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC"]
    # I- begins an entity unless it follows one of its type; B- separates two adjacent entities of one type
    tags = ["I-LOC", "I-LOC", "B-LOC", "O", "I-PER", "I-ORG", "I-MISC", "I-MISC", "B-MISC", "I-PER"]
    ids, changed = retag(tags, names, {"MISC": "O"})
    assert [names[i] for i in ids] == ["B-LOC", "I-LOC", "B-LOC", "O", "B-PER", "B-ORG", "O", "O", "O", "B-PER"]
    assert changed == ["MISC>O", "MISC>O"]
    ids, changed = retag(tags, names, {"MISC": "LOC"})
    assert [names[i] for i in ids][6:9] == ["B-LOC", "I-LOC", "B-LOC"] and changed == ["MISC>LOC"] * 2
    with pytest.raises(ValueError, match=r"entity type 'MISC' is not one of the task's types \(LOC, ORG, PER\)"):
        retag(tags, names, {})
    with pytest.raises(ValueError, match=r"tag 'PER' is not an IOB tag"):
        retag(["PER"], names, {})


def test_wikiann_spans_become_iob2_tags():
    from softprompt_xl.data.tasks.ner import spans_to_tags

    tokens = ["Jan", "a", "Jan", "Novák", "z", "Brna"]
    assert spans_to_tags(tokens, ["PER: Jan", "PER: Jan Novák", "LOC: Brna"]) == [
        "B-PER", "O", "B-PER", "I-PER", "O", "B-LOC"]
    assert spans_to_tags(tokens, ["None"]) == ["O"] * 6
    with pytest.raises(ValueError, match="'LOC: Praha' is not a run of the sentence's tokens"):
        spans_to_tags(tokens, ["LOC: Praha"])
