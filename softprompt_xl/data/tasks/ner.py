"""Named entities as text to text: `tag: {tokens}` -> `TYPE: entity` spans joined by a separator (`$$`),
scored by micro span F1 against the spans of the raw IOB2 tags."""

from __future__ import annotations

from ... import metrics
from .base import Task


class EntitySpans(Task):
    kind = "ner"
    primary_metric = "span_f1"
    required_fields = {"tokens": list, "ner_tags": list}

    def __init__(self, cfg):
        super().__init__(cfg)
        self.tag_names: list[str] = list(cfg.tag_names)  # index = the tag id in the data (WikiANN order)
        self.separator: str = cfg.separator
        self.types = {name.partition("-")[2] for name in self.tag_names if "-" in name}

    def check(self, record):
        problem = super().check(record)
        if problem:
            return problem
        if len(record["tokens"]) != len(record["ner_tags"]):
            return f"{len(record['tokens'])} tokens but {len(record['ner_tags'])} tags"
        bad = [t for t in record["ner_tags"] if not (isinstance(t, int) and 0 <= t < len(self.tag_names))]
        if bad:
            return f"tag {bad[0]!r} is out of range: tags are 0..{len(self.tag_names) - 1} ({', '.join(self.tag_names)})"
        return None

    def spans(self, record) -> list[tuple[str, str]]:
        return metrics.iob2_spans(record["tokens"], [self.tag_names[t] for t in record["ner_tags"]])

    def source(self, record):
        return self.template.format(tokens=" ".join(record["tokens"]))

    def target(self, record):
        return self.separator.join(f"{kind}: {text}" for kind, text in self.spans(record))

    def reference(self, record):
        return self.spans(record)

    def parse(self, text: str) -> tuple[list[tuple[str, str]], bool]:
        """The (type, text) spans of a generation, and whether every part of it was a well-formed span."""
        spans, ok = [], True
        for part in filter(None, (p.strip() for p in text.split(self.separator))):
            kind, colon, entity = part.partition(":")
            if colon and kind.strip() in self.types and entity.strip():
                spans.append((kind.strip(), " ".join(entity.split())))
            else:
                ok = False
        return spans, ok

    def score(self, predictions, references, lang):
        parsed = [self.parse(p) for p in predictions]
        gold = [[(kind, " ".join(text.split())) for kind, text in ref] for ref in references]
        scores = metrics.span_f1([spans for spans, _ in parsed], gold)
        scores["unparsed"] = 100.0 * sum(not ok for _, ok in parsed) / len(parsed) if parsed else 0.0
        return scores
