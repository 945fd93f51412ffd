"""Extractive QA (SQuAD format): `question: {q} context: {c}` -> the first gold answer; SQuAD EM / F1."""

from __future__ import annotations

from ... import metrics
from .base import Task


class QuestionAnswering(Task):
    kind = "extractive_qa"
    primary_metric = "f1"
    required_fields = {"question": str, "context": str, "answers": dict}

    def check(self, record):
        problem = super().check(record)
        if problem:
            return problem
        answers = record["answers"]
        if not isinstance(answers.get("text"), list):
            return "field 'answers' should hold a list 'text'"
        return None

    def usable(self, record):
        return bool(record["answers"]["text"])  # unanswerable items have no target to learn or score

    def source(self, record):
        return self.template.format(question=record["question"].strip(), context=record["context"].strip())

    def target(self, record):
        return record["answers"]["text"][0]

    def reference(self, record):
        return list(record["answers"]["text"])

    def score(self, predictions, references, lang):
        return metrics.squad(predictions, references, lang)
