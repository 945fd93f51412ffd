"""Named entities as text to text: `tag: {tokens}` -> `TYPE: entity` spans joined by a separator (`$$`),
scored by micro span F1 against the spans of the raw IOB2 tags.

Tags written as text (CoNLL files, JSON Lines with string tags, a hub dataset with another tag set) become the
task's IOB2 ids here, whatever scheme they are in: IOB2, IOB1 (CoNLL-2003: `I-` begins an entity unless it follows
one of the same type; `B-` only between two adjacent entities of one type) and BIOES/BILOU are each read as the
entities they mean, which are then written as IOB2 (`B-` first, `I-` after). Entity types outside the task's are mapped
by `tag_map` (`{MISC: O}` drops them, `{PERSON: PER}` renames them); a type neither known nor mapped is refused.
"""

from __future__ import annotations

import re
from typing import Any

import datasets
import pyarrow.compute as pc

from softprompt_xl.data.tasks import metrics
from softprompt_xl.data.tasks.base import FIX, Malformed, Task, log
from softprompt_xl.errors import UserError

OUTSIDE = "O"
_TAG = re.compile(r"\A([BIESLU])-(\S+)\Z")
_BEGINS = {"B", "S", "U"}  # a prefix that always starts an entity
_ENDS = {"E", "L", "S", "U"}  # a prefix after which the entity is closed


class EntitySpans(Task):
    kind = "ner"
    primary_metric = "span_f1"
    required_fields = {"tokens": list, "ner_tags": list}

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.tag_names: list[str] = list(settings.tag_names)  # index = the tag id in the data (WikiANN order)
        self.separator: str = settings.separator
        self.types = {name.partition("-")[2] for name in self.tag_names if "-" in name}
        # Entity types of the data -> a task type, or O to drop them (conf/task/ner.yaml; a source may add to it).
        self.tag_map: dict[str, str] = {str(k): OUTSIDE if v is None else str(v)
                                        for k, v in (settings.get("tag_map") or {}).items()}

    def normalise(self, dataset, source, split, what, where):
        """Tags written as text (CoNLL, JSON Lines), as another tag set's ids (a ClassLabel of other names) or as
        WikiANN's `spans` -> the task's IOB2 ids; the source's `tag_map` is merged over the task's. Ids of the
        task's own tag set (WikiANN's) are kept as they are."""
        dataset = super().normalise(dataset, source, split, what, where)
        from_spans = "ner_tags" not in dataset.column_names and {"spans", "tokens"} <= set(dataset.column_names)
        names = None
        if not from_spans:
            if "ner_tags" not in dataset.column_names:
                return dataset
            inner = getattr(dataset.features["ner_tags"], "feature", None)
            if isinstance(inner, datasets.ClassLabel):
                if list(inner.names) == self.tag_names:
                    return dataset
                names = list(inner.names)
            elif not (isinstance(inner, datasets.Value) and inner.dtype in ("string", "large_string")):
                return dataset  # ids: in the task's order, as WikiANN's (the task's check names any out of range)
        tag_map = {**self.tag_map,
                   **{str(k): OUTSIDE if v is None else str(v) for k, v in (source.get("tag_map") or {}).items()}}

        def convert(batch: dict, indices: list[int]) -> dict:
            out: dict[str, list] = {"ner_tags": [], "_retyped": []}
            for i, index in enumerate(indices):
                try:
                    if from_spans:
                        tags = spans_to_tags(batch["tokens"][i], batch["spans"][i])
                    elif names:
                        tags = [names[t] for t in batch["ner_tags"][i]]
                    else:
                        tags = batch["ner_tags"][i]
                    ids, changed = retag(tags, self.tag_names, tag_map)
                except (ValueError, TypeError, IndexError) as err:
                    raise Malformed(index, str(err)) from None
                out["ner_tags"].append(ids)
                out["_retyped"].append(changed)
            return out

        features = dataset.features.copy()
        features["ner_tags"] = datasets.List(datasets.ClassLabel(names=self.tag_names))
        features["_retyped"] = datasets.List(datasets.Value("string"))
        try:
            mapped = dataset.map(convert, batched=True, with_indices=True, features=features, desc="Mapping NER tags")
        except Malformed as err:
            index, problem = err.args
            hint = "in the source, conf/lang/<code>.yaml, or on the command line: +task.tag_map.<TYPE>=O"
            fix = f" ({hint})." if "tag_map" in problem else f". {FIX}"
            raise UserError(f"{where(dataset, index).capitalize()} ({what}): {problem}{fix}") from None
        counts = pc.value_counts(pc.list_flatten(mapped.data.column("_retyped").combine_chunks())).to_pylist()
        for entry in sorted(counts, key=lambda e: e["values"]):
            kind, new = entry["values"].split(">")
            if new == OUTSIDE:
                log.info("%s %s: dropped %s %s entities (tag_map %s: O)", what, split, f"{entry['counts']:,}", kind, kind)
            else:
                log.info("%s %s: renamed %s %s entities to %s (tag_map)", what, split, f"{entry['counts']:,}", kind, new)
        return mapped.remove_columns("_retyped")

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
        # Tokens are joined by spaces in every language, Chinese too, whose WikiANN split has one token per
        # character: WikiANN's own `spans` write an entity the same way ("PER: 王 晓 燕"; spans_to_tags reads
        # them so), and so do the targets (metrics.iob2_spans), so a model copies an entity from its input as it
        # is scored. Joining zh without spaces would have to change source, targets and the spans reader at once
        # and would gain nothing the span F1 sees.
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

    def example_stats(self, predictions, references, lang):
        parsed = [self.parse(p) for p in predictions]
        gold = [[(kind, " ".join(text.split())) for kind, text in ref] for ref in references]
        return metrics.with_rate(metrics.span_stats([spans for spans, _ in parsed], gold), "unparsed",
                                 [not ok for _, ok in parsed])


def is_tag(text: str) -> bool:
    """Whether `text` is an IOB/BIOES tag: O, or a B/I/E/S/L/U prefix, a hyphen and a type."""
    return text == OUTSIDE or _TAG.match(text) is not None


def entities(tags: list[str]) -> list[tuple[int, int, str]]:
    """(start, end, type) of each entity of a tag sequence in IOB1, IOB2 or BIOES/BILOU; raises ValueError on a
    tag that is none of them."""
    out: list[list] = []
    open_type = None  # the type of the entity the previous token belongs to, while it may continue
    for i, tag in enumerate(tags):
        if tag == OUTSIDE:
            open_type = None
            continue
        match = _TAG.match(tag)
        if not match:
            raise ValueError(f"tag {tag!r} is not an IOB tag (O, B-TYPE, I-TYPE; or BIOES)")
        prefix, kind = match.groups()
        if prefix in _BEGINS or open_type != kind:
            out.append([i, i + 1, kind])
        else:
            out[-1][1] = i + 1
        open_type = None if prefix in _ENDS else kind
    return [tuple(e) for e in out]


def retag(tags: list[str], tag_names: list[str], tag_map: dict[str, str]) -> tuple[list[int], list[str]]:
    """The ids (indices in `tag_names`, IOB2) of a tag sequence, and `"TYPE>NEW"` for each entity `tag_map`
    changed (NEW is O for a dropped one). Raises ValueError naming a tag or type it cannot place."""
    index = {name: i for i, name in enumerate(tag_names)}
    ids = [index[OUTSIDE]] * len(tags)
    changed = []
    for start, end, kind in entities(tags):
        new = tag_map.get(kind, kind)
        if new != kind:
            changed.append(f"{kind}>{new}")
        if new == OUTSIDE:
            continue
        for position in range(start, end):
            name = f"{'B' if position == start else 'I'}-{new}"
            if name not in index:
                known = sorted({n.partition('-')[2] for n in tag_names if '-' in n})
                raise ValueError(
                    f"entity type {kind!r}{f' (mapped to {new!r})' if new != kind else ''} is not one of the task's "
                    f"types ({', '.join(known)}); map it with tag_map, e.g. tag_map: {{{kind}: O}} to drop it or "
                    f"{{{kind}: {known[0]}}} to rename it")
            ids[position] = index[name]
    return ids, changed


def spans_to_tags(tokens: list[str], spans: list[str]) -> list[str]:
    """IOB2 tags from WikiANN's `spans` ("PER: Jan Novák", in sentence order; ["None"] when there is no entity):
    each span is the next run of tokens whose text, joined by spaces, is the span's text."""
    tags = [OUTSIDE] * len(tokens)
    cursor = 0
    for span in spans:
        if span == "None":
            continue
        kind, colon, text = span.partition(": ")
        words = text.split(" ")
        if not colon or not kind or not text:
            raise ValueError(f"span {span!r} is not 'TYPE: entity text'")
        at = next((i for i in range(cursor, len(tokens) - len(words) + 1) if tokens[i:i + len(words)] == words), None)
        if at is None:
            raise ValueError(f"span {span!r} is not a run of the sentence's tokens (after token {cursor})")
        tags[at:at + len(words)] = [f"B-{kind}"] + [f"I-{kind}"] * (len(words) - 1)
        cursor = at + len(words)
    return tags
