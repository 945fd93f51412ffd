"""Tokenised examples and DataLoaders for the two stages: span corruption (stage 1) and a task (stage 2).

Inputs are padded per batch to the longest sequence in it, never to a fixed length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import DataLoader
from transformers import DataCollatorForSeq2Seq

from ..errors import UserError
from .sources import load_split
from .span_corruption import SpanCorruptionCollator
from .tasks import Task

log = logging.getLogger(__name__)


@dataclass
class TaskSplit:
    """A tokenised split; `references[i]` is the raw gold of `examples[i]` (`examples[i]["index"] == i`)."""

    examples: list[dict]
    references: list[Any]
    lang: str
    ids: list[Any]  # the records' own ids (or positions), to trace a prediction back to its record


def prepare_task_split(
    task: Task, source: Any, split: str, lang: str, tokenizer, max_input_length: int, cache_dir: str
) -> TaskSplit:
    what = f"{lang} {task.name}"
    raw = load_split(source, split, cache_dir, what)
    records = []
    for i, record in enumerate(raw):
        problem = task.check(record)
        if problem:
            raise UserError(
                f"Record {i} of the {split} split of {what} is malformed: {problem}. Fix or remove it "
                f"(source: {source.get('data_files') or source.get('path')})."
            )
        records.append(record)
    usable = [r for r in records if task.usable(r)]
    if len(usable) < len(records):
        log.info("%s %s: %d of %d records have no gold target and are left out", what, split, len(records) - len(usable), len(records))
    if not usable:
        raise UserError(f"The {split} split of {what} has no usable records ({len(records)} read). Check the source.")
    encoded = tokenizer([task.source(r) for r in usable], max_length=max_input_length, truncation=True)
    truncated = sum(len(ids) >= max_input_length for ids in encoded["input_ids"])
    if truncated:
        log.info("%s %s: %d of %d inputs cut to %d tokens", what, split, truncated, len(usable), max_input_length)
    labels = tokenizer(text_target=[task.target(r) for r in usable], max_length=task.max_answer_length, truncation=True)
    examples = [
        {"input_ids": ids, "attention_mask": mask, "labels": lab, "index": i}
        for i, (ids, mask, lab) in enumerate(zip(encoded["input_ids"], encoded["attention_mask"], labels["input_ids"]))
    ]
    ids = [r.get("id", i) for i, r in enumerate(usable)]
    return TaskSplit(examples, [task.reference(r) for r in usable], lang, ids)


def task_loader(split: TaskSplit, tokenizer, batch_size: int, shuffle: bool, num_workers: int = 0) -> DataLoader:
    examples = split.examples
    if not shuffle:  # evaluation: similar lengths together, so generation wastes little on padding
        examples = sorted(examples, key=lambda e: len(e["input_ids"]))
    collate = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100, return_tensors="pt")
    return DataLoader(examples, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, num_workers=num_workers)


def corpus_texts(source: Any, lang: str, cache_dir: str, max_documents: int | None = None) -> list[str]:
    """The documents of a language's corpus (a `text` column), at most `max_documents` of them."""
    raw = load_split(source, "train", cache_dir, f"{lang} corpus")
    if "text" not in raw.column_names:
        raise UserError(f"The {lang} corpus has no 'text' column (columns: {raw.column_names}); stage 1 needs one.")
    if max_documents:
        raw = raw.select(range(min(int(max_documents), len(raw))))
    return list(raw["text"])


def span_corruption_loader(texts: list[str], what: str, tokenizer, spec: Any, seed: int, num_workers: int = 0) -> DataLoader:
    """Span corruption data: `texts` tokenised, concatenated and cut into chunks, corrupted afresh in every batch.

    `spec` has input_length, noise_density, mean_noise_span_length and batch_size.
    """
    ids = [tok for doc in tokenizer(texts)["input_ids"] for tok in doc]  # each document ends with </s>
    collator = SpanCorruptionCollator(
        tokenizer, int(spec.input_length), float(spec.noise_density), float(spec.mean_noise_span_length), seed
    )
    length = collator.expanded_length
    chunks = [{"input_ids": ids[i : i + length]} for i in range(0, len(ids) - length + 1, length)]
    if not chunks:
        raise UserError(
            f"The {what} has {len(ids)} tokens, fewer than one chunk of {length}: use a larger corpus "
            "or a smaller input_length."
        )
    log.info("%s: %d documents, %d tokens, %d chunks of %d", what, len(texts), len(ids), len(chunks), length)
    generator = torch.Generator().manual_seed(seed)
    batch_size = int(spec.batch_size)
    return DataLoader(chunks, batch_size=batch_size, shuffle=True, collate_fn=collator,
                      num_workers=num_workers, generator=generator, drop_last=len(chunks) >= batch_size)
