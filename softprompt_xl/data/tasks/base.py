"""What every task provides to the data pipeline and the evaluator."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from softprompt_xl.data.tasks.metrics import ExampleStats

log = logging.getLogger(__name__)


class Task:
    kind: ClassVar[str]
    primary_metric: ClassVar[str]  # the score that selects the best validation step
    required_fields: ClassVar[dict[str, type]]  # field -> type, checked on every record of a source

    def __init__(self, cfg: Any):
        self.cfg = cfg
        self.name: str = cfg.name
        self.template: str = cfg.template
        self.max_answer_length: int = int(cfg.max_answer_length)
        # Column names of the published formats -> the task's fields (e.g. XNLI's sentence1 -> premise), applied
        # where a file has the former and lacks the latter; a source's own `columns` renames come first.
        self.column_aliases: dict[str, str] = dict(cfg.get("column_aliases") or {})

    @property
    def columns(self) -> list[str]:
        """The fields of a record in order: the column names of a delimited file without a header row."""
        return list(self.required_fields)

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
        return self.cfg.prompt_init.format(lang_name=lang_name)
