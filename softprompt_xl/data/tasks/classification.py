"""Classification as text to text: the target is the label's word (NLI: Yes / Maybe / No; check-worthiness:
Checkworthy / Not checkworthy). Label words, input fields and template come from conf/task/<name>.yaml."""

from __future__ import annotations

from typing import Any

from softprompt_xl.data.tasks import metrics
from softprompt_xl.data.tasks.base import Task


class Classification(Task):
    kind = "classification"

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.labels: list[str] = list(settings.labels)  # index = the label id in the data
        self.positive = settings.get("positive_label")  # a label id whose F1 is reported, or None
        self.primary_metric = settings.get("primary_metric", "accuracy")
        self.required_fields = {**{field: str for field in settings.fields}, "label": int}
        self._by_word = {metrics.normalize_answer(word, None): i for i, word in enumerate(self.labels)}
        self._label_words: dict[str, int | None] = dict(settings.get("label_map") or {})  # None: no gold label

    def label_words(self):
        return self._label_words

    def check(self, record):
        problem = super().check(record)
        if problem is None and not 0 <= record["label"] < len(self.labels):
            return f"label {record['label']} is out of range: labels are 0..{len(self.labels) - 1} ({', '.join(self.labels)})"
        return problem

    def source(self, record):
        return self.template.format(**{field: record[field].strip() for field in self.required_fields if field != "label"})

    def target(self, record):
        return self.labels[record["label"]]

    def reference(self, record):
        return record["label"]

    def parse(self, text: str) -> int | None:
        """The label id a generation names, or None (compared without case and punctuation)."""
        return self._by_word.get(metrics.normalize_answer(text, None))

    def score(self, predictions, references, lang):
        parsed = [self.parse(p) for p in predictions]
        scores = {"accuracy": metrics.accuracy(parsed, references)}
        if self.positive is not None:
            scores["f1"] = metrics.binary_f1(parsed, references, self.positive)
        scores["unparsed"] = 100.0 * sum(p is None for p in parsed) / len(parsed) if parsed else 0.0
        return scores

    def example_stats(self, predictions, references, lang):
        parsed = [self.parse(p) for p in predictions]
        return metrics.with_rate(metrics.classification_stats(parsed, references, self.positive), "unparsed",
                                 [p is None for p in parsed])
