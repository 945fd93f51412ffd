"""What every task provides to the data pipeline and the evaluator."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Callable, ClassVar

import datasets
import pyarrow.compute as pc

from softprompt_xl.errors import UserError

if TYPE_CHECKING:
    from softprompt_xl.data.tasks.metrics import ExampleStats

log = logging.getLogger(__name__)

FIX = "Fix or remove it, or point the source (conf/lang/<code>.yaml or data.files=...) at a file in the task's format."
NO_GOLD = -1  # the label of a record whose label the label_map maps to null: left out after any carve
# The place of a row of a dataset (as read, or a selection of it) in its files, for a message: sources.locate's.
Where = Callable[[datasets.Dataset, int], str]


class Task:
    kind: ClassVar[str]
    primary_metric: ClassVar[str]  # the score that selects the best validation step
    required_fields: ClassVar[dict[str, type]]  # field -> type, checked on every record of a source

    def __init__(self, settings: Any):
        self.settings = settings  # conf/task/<name>
        self.name: str = settings.name
        self.template: str = settings.template
        self.max_answer_length: int = int(settings.max_answer_length)
        # Column names of the published formats -> the task's fields (e.g. XNLI's sentence1 -> premise), applied
        # where a file has the former and lacks the latter; a source's own `columns` renames come first.
        self.column_aliases: dict[str, str] = dict(settings.get("column_aliases") or {})

    @property
    def columns(self) -> list[str]:
        """The fields of a record in order: the column names of a delimited file without a header row."""
        return list(self.required_fields)

    def label_words(self) -> dict[str, int | None] | None:
        """Label words of the published data -> label ids, for labels written as text (None: the task has no
        labels); a source's own label_map is merged over them."""
        return None

    def normalise(self, dataset: datasets.Dataset, source: dict, split: str, what: str,
                  where: Where) -> datasets.Dataset:
        """A split's records as read, the source's `columns` renamed -> the task's field names and values: its
        `column_aliases`, then label ids (`relabel`); a kind adds its own (answers, tags). Rows stay where they
        were read, so a message names the line of the file."""
        aliases: dict[str, str] = {}
        for old, new in self.column_aliases.items():
            if old in dataset.column_names and new not in dataset.column_names and new not in aliases.values():
                aliases[old] = new
        if aliases:
            dataset = dataset.rename_columns(aliases)
        return relabel(dataset, source, self.label_words(), split, what, where)

    def check(self, record: dict) -> str | None:
        """Why `record` does not fit the task's schema, or None."""
        for field, kind in self.required_fields.items():
            if field not in record or record[field] is None:
                return f"missing field '{field}'"
            if not isinstance(record[field], kind):
                return f"field '{field}' should be {kind.__name__}, got {type(record[field]).__name__}"
        return None

    def usable(self, record: dict) -> bool:
        """Whether a well-formed record can be trained on or scored (e.g. has a gold answer)."""
        return True

    def source(self, record: dict) -> str:
        raise NotImplementedError

    def encode(self, records: list[dict], tokenizer, max_input_length: int, training: bool, what: str) -> list[tuple[int, list[int]]]:
        """(record index, input ids) per model input: one per record, cut to `max_input_length` tokens."""
        ids = tokenizer([self.source(r) for r in records], max_length=max_input_length, truncation=True)["input_ids"]
        cut = sum(len(i) >= max_input_length for i in ids)
        if cut:
            log.info("%s: %d of %d inputs cut to %d tokens", what, cut, len(ids), max_input_length)
        return list(enumerate(ids))

    def target(self, record: dict) -> str:
        raise NotImplementedError

    def reference(self, record: dict) -> Any:
        """The raw gold the prediction is scored against (never decoded label ids)."""
        raise NotImplementedError

    def score(self, predictions: list[str], references: list[Any], lang: str) -> dict[str, float]:
        raise NotImplementedError

    def example_stats(self, predictions: list[str], references: list[Any], lang: str) -> "ExampleStats":
        """Per-example statistics whose sums give `score` (metrics.ExampleStats): what the report resamples."""
        raise NotImplementedError

    def prompt_init(self, lang_name: str) -> str:
        return self.settings.prompt_init.format(lang_name=lang_name)


class Malformed(Exception):
    """Raised inside datasets.map; turned into a UserError with the exact place outside it."""


def _label_map(source: dict, words: dict | None) -> tuple[dict[str, int | None], bool]:
    """The label map in force, keys in lower case: the task's label words under the source's label_map; and whether
    the source has one of its own (then every label must be named by it)."""
    own = source.get("label_map") or {}
    merged = {**(words or {}), **own}
    return {str(k).strip().lower(): None if v is None else int(v) for k, v in merged.items()}, bool(own)


def relabel(dataset: datasets.Dataset, source: dict, words: dict | None, split: str, what: str,
            where: Where) -> datasets.Dataset:
    """The `label` column as label ids: by the source's label_map (matched, without case, against a ClassLabel's
    class name and the value as text), and for labels written as text by the task's label `words` too; a label
    mapped to null becomes NO_GOLD."""
    mapping, own = _label_map(source, words)
    if "label" not in dataset.column_names:
        if own:
            raise UserError(f"The {split} split of {what} has no 'label' column for the source's label_map "
                            f"(its columns: {', '.join(dataset.column_names)}); rename it with 'columns'.")
        return dataset
    feature = dataset.features["label"]
    text = isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")
    if not (own or (text and words is not None)):
        return dataset
    names = feature.names if isinstance(feature, datasets.ClassLabel) else None

    def convert(batch: dict, indices: list[int]) -> dict:
        out = []
        for value, index in zip(batch["label"], indices):
            if value is None:  # no label at all: the task's check names the record
                out.append(None)
                continue
            keys = ([names[value]] if names and isinstance(value, int) and 0 <= value < len(names) else []) + [str(value)]
            key = next((k.strip().lower() for k in keys if k.strip().lower() in mapping), None)
            if key is not None:
                mapped = mapping[key]
                out.append(NO_GOLD if mapped is None else mapped)
            elif not own and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
                out.append(int(value))  # an id written as text (a TSV file is read as text)
            else:
                raise Malformed(index, value)
        return {"label": out}

    features = dataset.features.copy()
    features["label"] = datasets.Value("int64")
    try:
        return dataset.map(convert, batched=True, with_indices=True, features=features, desc="Mapping labels")
    except Malformed as err:
        index, value = err.args
        named = ", ".join(k for k, v in mapping.items() if v is not None)
        whose = ("the source's label_map does not name" if own else
                 "is neither a label word of the task's label_map nor a label id")
        raise UserError(
            f"{where(dataset, index).capitalize()} ({what}) has label {value!r}, which {whose} (it maps {named}). "
            "Add it to label_map in the source (label: id, or null to leave such records out) or fix the record."
        ) from None


def without_gold_less(dataset: datasets.Dataset, source: dict, words: dict | None, split: str,
                      what: str) -> datasets.Dataset:
    """`dataset` without the records whose label the label map sends to null (MultiNLI's "-"), counted."""
    mapping, _ = _label_map(source, words)
    feature = dataset.features.get("label")
    if None not in mapping.values() or not (
            isinstance(feature, datasets.ClassLabel) or isinstance(feature, datasets.Value) and feature.dtype.startswith("int")):
        return dataset
    if not pc.any(pc.equal(dataset.data.column("label"), NO_GOLD)).as_py():  # the rows as read: a superset
        return dataset
    kept = dataset.filter(lambda batch: [value != NO_GOLD for value in batch["label"]], batched=True,
                          desc="Leaving out records without a gold label")
    left_out = len(dataset) - len(kept)
    if left_out:
        nulls = ", ".join(repr(k) for k, v in mapping.items() if v is None)
        log.info("%s %s: left out %s of %s records without a gold label (label %s, mapped to null)", what, split,
                 f"{left_out:,}", f"{len(dataset):,}", nulls)
    if not len(kept):
        raise UserError(f"Every record of the {split} split of {what} has a label the label_map maps to null "
                        f"(no gold label). {FIX}")
    return kept
