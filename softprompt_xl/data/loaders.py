"""Tokenised examples and DataLoaders for the two stages: span corruption (stage 1) and a task (stage 2).

Inputs are padded per batch to the longest sequence in it, never to a fixed length.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import datasets
import torch
from torch.utils.data import DataLoader

from softprompt_xl.runtime.atomic import atomic_dir, write_json
from softprompt_xl.config import stable_hash, to_plain
from softprompt_xl.runtime.distributed import rank, world_size
from softprompt_xl.errors import UserError
from softprompt_xl.data.fingerprint import source_fingerprint
from softprompt_xl.data.layout import TextLayout
from softprompt_xl.data.sources import check_records, load_split
from softprompt_xl.data.objectives import stage1_objective
from softprompt_xl.data.tasks import Task

log = logging.getLogger(__name__)


@dataclass
class TaskSplit:
    """A tokenised split: `references[i]` is the raw gold of record i, and every example has `index` = the
    record it comes from (a long QA context gives several examples, one per window)."""

    examples: list[dict]
    references: list[Any]
    lang: str
    ids: list[Any]  # the records' own ids (or positions), to trace a prediction back to its record


TOKENIZED_FORMAT = 1  # bump when the encoding changes, so older cached splits are not reused


def prepare_task_split(
    task: Task, source: Any, split: str, lang: str, tokenizer, max_input_length: int, cache_dir: str,
    tokenized_dir: str | Path | None = None, layout: TextLayout = TextLayout(),
) -> TaskSplit:
    """The split tokenised for a backbone of `layout`, from `tokenized_dir` if this (tokenizer, layout, task config,
    source, split, length) was tokenised before, so the jobs of a sweep tokenise each (task, language) once."""
    if tokenized_dir is None:
        return _tokenize_split(task, source, split, lang, tokenizer, max_input_length, cache_dir, layout)
    spec = {
        "tokenizer": _tokenizer_digest(tokenizer), "task": to_plain(task.settings), "source": source_fingerprint(source),
        "split": split, "max_input_length": max_input_length, "format": TOKENIZED_FORMAT,
    }
    if layout.continuation:  # seq2seq splits keep the keys they had before decoder-only backbones came
        spec["layout"] = layout.name
    key = stable_hash(spec)
    path = Path(tokenized_dir) / f"{task.name}-{lang}-{split}-{key}"
    if (path / "meta.json").exists():
        examples = datasets.load_from_disk(str(path / "examples")).to_list()
        for e in examples:
            e["attention_mask"] = [1] * len(e["input_ids"])
        meta = json.loads((path / "meta.json").read_text(encoding="utf-8"))
        log.info("%s %s %s: tokenised split reused from %s", lang, task.name, split, path)
        return TaskSplit(examples, meta["references"], lang, meta["ids"])
    prepared = _tokenize_split(task, source, split, lang, tokenizer, max_input_length, cache_dir, layout)
    with atomic_dir(path) as tmp:
        columns = {k: [e[k] for e in prepared.examples] for k in ("input_ids", "labels", "index")}
        datasets.Dataset.from_dict(columns).save_to_disk(str(tmp / "examples"))
        write_json(tmp / "meta.json", {"references": prepared.references, "ids": prepared.ids})
    return prepared


def _tokenize_split(task: Task, source: Any, split: str, lang: str, tokenizer, max_input_length: int,
                    cache_dir: str, layout: TextLayout) -> TaskSplit:
    what = f"{lang} {task.name}"
    raw = load_split(source, split, cache_dir, what, task, lang)
    records = check_records(raw, task.check, source, split, what)
    usable, _, targets = model_text(task, records)
    if len(usable) < len(records):
        log.info("%s %s: %d of %d records have no gold target and are left out", what, split, len(records) - len(usable), len(records))
    if not usable:
        raise UserError(f"The {split} split of {what} has no usable records ({len(records)} read). Check the source.")
    examples = encode_examples(task, usable, targets, tokenizer, max_input_length, task.max_answer_length,
                               split == "train", f"{what} {split}", layout)
    ids = [r.get("id", i) for i, r in enumerate(usable)]
    return TaskSplit(examples, [task.reference(r) for r in usable], lang, ids)


def model_text(task: Task, records: Iterable[dict]) -> tuple[list[dict], list[str], list[str]]:
    """The records `task` can use (`task.usable`) with their inputs (`task.source`: the task's template) and targets
    (`task.target`): the one way a record becomes model text, for training, evaluation, the tiny backbone's
    tokenizer and its pre-training alike."""
    usable = [r for r in records if task.usable(r)]
    return usable, [task.source(r) for r in usable], [task.target(r) for r in usable]


def encode_examples(task: Task, records: list[dict], targets: list[str], tokenizer, max_input_length: int,
                    max_target_length: int, training: bool, what: str,
                    layout: TextLayout = TextLayout()) -> list[dict]:
    """Examples {input_ids, attention_mask, labels, index} of `records` (from `model_text`) and `targets`: inputs
    by `task.encode` (one per record, or per window of a long QA context), `index` the record of each, targets as
    `layout` (the backbone family's) writes them."""
    inputs = task.encode(records, layout.input_tokenizer(tokenizer), max_input_length, training, what)
    full = layout.target_ids(tokenizer, targets)
    # Cut as the tokenizer's own truncation would (keep the final EOS), from the one tokenisation that also
    # tells how many were too long.
    m = max_target_length
    labels = [ids if len(ids) <= m else ids[:m - 1] + ids[-1:] for ids in full]
    cut = sum(len(ids) > m for ids in full)
    if cut:  # said, not hidden: a model cannot learn or produce more than max_target_length tokens
        log.warning("%s: %d of %d targets are longer than %d tokens and were cut", what, cut, len(labels), m)
    return [{"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels[i], "index": i} for i, ids in inputs]


def check_subset_size(max_examples: Any) -> None:
    if max_examples is not None and (isinstance(max_examples, bool) or not isinstance(max_examples, int)
                                     or max_examples < 1):
        raise UserError(f"task_stage.val_max_examples={max_examples}: validate on a number of examples (at least 1, "
                        "e.g. 1000), or set it to null for the whole validation split.")


def fixed_subset(split: TaskSplit, max_examples: int | None) -> TaskSplit:
    """At most `max_examples` records of `split` (with all their inputs), in split order: those whose id (or
    position, for records without one) has the lowest SHA-256. The choice depends on the split alone - not on the
    run's seed, the library versions or the record order - so every run of a study, whatever its configuration or
    seed, selects its best step on the same records, and a smaller subset lies inside a larger one."""
    check_subset_size(max_examples)
    n = len(split.references)
    if max_examples is None or max_examples >= n:
        return split
    rank = sorted(range(n), key=lambda i: (hashlib.sha256(json.dumps(split.ids[i], default=str).encode()).digest(), i))
    kept = sorted(rank[:max_examples])
    position = {old: new for new, old in enumerate(kept)}
    examples = [{**e, "index": position[e["index"]]} for e in split.examples if e["index"] in position]
    return TaskSplit(examples, [split.references[i] for i in kept], split.lang, [split.ids[i] for i in kept])


@functools.lru_cache(maxsize=8)  # per tokenizer object: serialising mT5's 250k vocabulary takes a while
def _tokenizer_digest(tokenizer) -> str:
    # The tokenizer's whole definition (vocabulary, normaliser, special tokens), not its name: a rebuilt tiny
    # backbone or another revision of a hub model tokenises differently under the same name.
    # Truncation and padding are left out: they are settings of the last call, not of the tokenizer.
    definition = json.loads(tokenizer.backend_tokenizer.to_str())
    definition.pop("truncation", None)
    definition.pop("padding", None)
    return stable_hash(definition, 16)


def task_loader(split: TaskSplit, tokenizer, batch_size: int, num_workers: int = 0, steps: int | None = None,
                seed: int = 0, start_step: int = 0, group_by_length: int | None = None,
                layout: TextLayout = TextLayout()) -> DataLoader:
    """Training batches (`steps` given: see `training_loader`) or evaluation batches (sorted by length, so
    generation wastes little on padding), padded as `layout` says."""
    collate = layout.collator(tokenizer)
    if steps is not None:
        return training_loader(split.examples, collate, batch_size, steps, seed, start_step, num_workers,
                               group_by_length)
    examples = sorted(split.examples, key=lambda e: len(e["input_ids"]))
    return DataLoader(examples, batch_size=batch_size, shuffle=False, collate_fn=collate, num_workers=num_workers,
                      generator=own_generator())


def training_loader(examples: list, collate, batch_size: int, steps: int, seed: int, start_step: int = 0,
                    num_workers: int = 0, group_by_length: int | None = None) -> DataLoader:
    """Exactly `steps` full batches, reshuffled every epoch from `seed`, beginning at batch `start_step` (a
    resumed stage continues with the batches it had not seen). Of several processes training together, each
    gets its share of every batch: `batch_size` stays the batch of one optimiser step. `group_by_length` (task_stage's
    setting: null, or a number of batches) puts examples of similar input and target length into one batch."""
    from softprompt_xl.runtime.resume import ResumableSampler

    world = world_size()
    if batch_size % world:
        raise UserError(f"A batch of {batch_size} does not split evenly over the {world} processes of this run: "
                        f"choose a batch size divisible by {world} (task_stage.batch_size, lang_stage.batch_size).")
    lengths = [(len(e["input_ids"]), len(e["labels"])) for e in examples] if group_by_length else None
    sampler = ResumableSampler(len(examples), steps * batch_size, seed, start_step * batch_size, rank(), world,
                               batch_size, lengths, group_by_length or 0)
    return DataLoader(examples, batch_size=batch_size // world, sampler=sampler, collate_fn=collate,
                      num_workers=num_workers, generator=own_generator())


def own_generator() -> torch.Generator:
    # A DataLoader draws its workers' base seed from the global RNG each time it is iterated: with a generator
    # of its own it leaves the global RNG (dropout) alone, so a resumed stage draws the same dropout masks.
    return torch.Generator().manual_seed(0)


def corpus_loader(texts: list[str], what: str, tokenizer, spec: Any, seed: int, num_workers: int = 0,
                  objective: str = "span_corruption") -> DataLoader:
    """Stage-1 `objective` batches of a small in-memory corpus (the tiny backbones' pre-training): `texts` tokenised,
    concatenated and cut into chunks, shuffled, corrupted afresh in every batch (span corruption). Stage 1 streams
    its corpus instead (corpus.py). `spec` has input_length, batch_size and (span corruption) noise_density and
    mean_noise_span_length."""
    collator = stage1_objective(objective, tokenizer, spec, seed)
    ids = [tok for doc in collator.document_ids(texts) for tok in doc]  # each document ends with EOS
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
