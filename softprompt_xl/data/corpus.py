"""Stage 1's corpus, streamed: documents are read, tokenised and cut into chunks of the stage-1 objective (span
corruption, or next-token prediction: data/objectives.py) while the model trains, so a 20 GB Wikipedia dump starts training as soon as a toy corpus does and memory never grows with it.

Which documents train and which are held out is the corpus source's `splits` (datasets' split syntax, as the
authors wrote it: `train: train[:5%]`, `heldout: train[5%:]`; English `train[:1000000]`). `datasets` cannot slice
a streamed split, so the slice is resolved here to row numbers by `datasets.ReadInstruction` (same rounding as
`load_dataset(split=...)`) and applied with `skip` / `take`.

The stream is shuffled within blocks of `shuffle_batches` batches: block b is filled from where block b-1 stopped
(the documents' own `state_dict()` in `datasets`, plus the tokens not yet cut into chunks) and permuted by a
generator seeded with (seed, b). The position of a block is thus small and the batches after it depend on nothing
else: it travels with each block's first batch, `CorpusPosition` keeps the latest in the checkpoint, and a resumed
stage refills that block and continues with exactly the batches the uninterrupted one would have trained on.
"""

from __future__ import annotations

import copy
import itertools
import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator

import datasets
import lightning as L
import numpy as np
import torch

from softprompt_xl.config import to_plain
from softprompt_xl.errors import UserError
from softprompt_xl.runtime.hub import hub_reachable
from softprompt_xl.data.sources import FILE_FORMATS, LOAD_KEYS, existing_files
from softprompt_xl.data.objectives import stage1_objective

log = logging.getLogger(__name__)

POSITION = "corpus_position"  # the batch key that carries a block's position
_DOCS_PER_CALL = 64  # documents tokenised per tokenizer call: fast tokenizers are much faster in batches


def documents(source: Any, part: str, cache_dir: str, what: str) -> datasets.IterableDataset | None:
    """The `text` of the documents of `part` ("train" or "heldout") of a corpus source, streamed; None when the
    source has no such part (a corpus without `splits.heldout` is not scored on held-out text)."""
    source = to_plain(source)
    if not isinstance(source, dict) or not source.get("path"):
        raise UserError(f"No corpus is configured (the {what}): set lang.sources.wiki (data=hub) or data.wiki.")
    selector = (source.get("splits") or {}).get(part, "train" if part == "train" else None)
    if selector is None:
        return None
    try:
        instruction = datasets.ReadInstruction.from_spec(selector)
    except (ValueError, AssertionError) as err:
        raise UserError(f"The {what} has an invalid {part} selection {selector!r} ({err}): write it in "
                        "datasets' split syntax, e.g. train, train[:5%], train[5%:] or train[:1000000].") from None
    if len(instruction._relative_instructions) > 1:
        raise UserError(f"The {what} has a {part} selection of several parts ({selector!r}): stage 1 streams one "
                        "contiguous range, e.g. train[:5%] or train[5%:].")
    base = instruction._relative_instructions[0].splitname
    stream = _open(source, base, cache_dir, what)
    if "text" not in (stream.column_names or ["text"]):
        raise UserError(f"The {what} has no 'text' column (columns: {stream.column_names}); stage 1 "
                        "reads the documents' text from it: rename the column (the source's 'columns' map does not "
                        "apply to corpora) or point lang.sources.wiki at a corpus with one.")
    spec = instruction._relative_instructions[0]
    if spec.from_ is None and spec.to is None:
        return stream
    plain = spec.unit == "abs" and (spec.from_ or 0) >= 0 and (spec.to is None or spec.to >= 0)
    rows = None if plain else _num_rows(stream, source, base, cache_dir, what, selector)
    if plain:
        start, stop = spec.from_ or 0, spec.to
    else:
        absolute = instruction.to_absolute({base: rows})[0]
        start, stop = absolute.from_, absolute.to
    log.info("%s: %s %s = documents %d to %s", what, part, selector, start, "the end" if stop is None else stop)
    if start:
        stream = stream.skip(start)
    if stop is not None:
        stream = stream.take(max(stop - start, 0))
    return stream


def _open(source: dict, split: str, cache_dir: str, what: str) -> datasets.IterableDataset:
    kwargs = _load_kwargs(source, what)
    if source["path"] in FILE_FORMATS:
        kwargs["data_files"] = existing_files(source.get("data_files"), split, what)
    elif not hub_reachable():
        datasets.config.HF_HUB_OFFLINE = True
    try:
        stream = datasets.load_dataset(**kwargs, split=split, streaming=True, cache_dir=cache_dir)
    except Exception as err:  # noqa: BLE001 - datasets' own errors name neither the run nor the fix
        detail = (str(err).strip().splitlines() or [repr(err)])[0]
        raise UserError(
            f"Could not open the {what} ({source['path']}{' ' + source['name'] if source.get('name') else ''},"
            f" split {split}): {detail}. A hub corpus is streamed and needs the Hub (or its files downloaded "
            "elsewhere and lang.sources.wiki pointed at them: path: parquet, data_files: {train: DIR/*.parquet})."
        ) from None
    return stream.select_columns(["text"]) if stream.column_names and "text" in stream.column_names else stream


def _load_kwargs(source: dict, what: str) -> dict:
    """`load_dataset`'s arguments for a corpus source: a local one names its file format, read by datasets' builder."""
    kwargs = {k: source[k] for k in LOAD_KEYS if source.get(k)}
    if source["path"] in FILE_FORMATS:
        builder = FILE_FORMATS[source["path"]]
        if builder is None:
            raise UserError(f"The {what} is given as {source['path']!r} files: a corpus is Parquet, JSON "
                            "Lines, CSV, Arrow or plain text (path: parquet | json | csv | arrow | text).")
        kwargs["path"] = builder
    return kwargs


def _num_rows(stream: datasets.IterableDataset, source: dict, split: str, cache_dir: str, what: str,
              selector: str) -> int:
    """How many documents the split has, to resolve a percentage: from the dataset card, else from the Parquet
    footers of its files (a few kB each, local or on the Hub, as `wikimedia/wikipedia` ships them), else (other
    local files) by reading them once."""
    splits = stream.info.splits if stream.info else None
    if splits and split in splits and splits[split].num_examples:
        return int(splits[split].num_examples)
    import fsspec
    import pyarrow.parquet as pq

    kwargs = _load_kwargs(source, what)
    files = list(datasets.load_dataset_builder(**kwargs, cache_dir=cache_dir).config.data_files.get(split) or [])
    if files and all(str(f).endswith(".parquet") for f in files):
        total = 0
        for f in files:
            with fsspec.open(str(f), "rb") as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
        return total
    if source["path"] not in FILE_FORMATS:
        raise UserError(f"The {what} does not say how many documents its {split} split has, so "
                        f"{selector!r} cannot be resolved while streaming: give absolute counts, e.g. "
                        "train[:100000] and train[100000:].")
    log.warning("%s: counting the documents of its %s split to resolve %r (absolute counts such as "
                "train[:100000] skip this)", what, split, selector)
    return sum(1 for _ in stream)


@dataclass
class Position:
    """Where block `block` of the stream begins: epoch over the documents, the documents' datasets state after the
    last one read (None: before the first), and the tokens read but not yet cut into chunks."""

    block: int = 0
    epoch: int = 0
    documents: dict | None = None
    carry: list[int] = field(default_factory=list)


class CorpusStream(torch.utils.data.IterableDataset):
    """Stage-1 batches of `batch_size` chunks (this process's share of each), `steps` of them from `start_step`,
    read from `docs` (cycled), block-shuffled and made into batches of `objective` (data/objectives.py: span
    corruption, or next-token prediction) as the module docstring says."""

    def __init__(self, docs: datasets.IterableDataset, tokenizer, spec: Any, seed: int, steps: int,
                 start_step: int = 0, rank: int = 0, world: int = 1, what: str = "corpus",
                 objective: str = "span_corruption"):
        self.docs, self.tokenizer, self.what = docs, tokenizer, what
        self.batch_size, self.shuffle_batches = int(spec.batch_size), max(int(spec.shuffle_batches), 1)
        if self.batch_size % world:
            raise UserError(f"A batch of {self.batch_size} does not split evenly over the {world} processes of this "
                            f"run: choose a lang_stage.batch_size divisible by {world}.")
        self.collator = stage1_objective(objective, tokenizer, spec, seed, stream=rank)
        self.length = self.collator.expanded_length
        self.seed, self.steps, self.start_step, self.rank, self.world = seed, steps, start_step, rank, world
        self.resume: Position | None = None  # set from a checkpoint by CorpusPosition before iteration
        self._initial = copy.deepcopy(docs.state_dict())
        # Documents are cut into chunks here, so the tokenizer's warning about sequences over its maximum is noise.
        getattr(tokenizer, "deprecation_warnings", {})["sequence-length-is-longer-than-the-specified-maximum"] = True

    def __iter__(self) -> Iterator[dict]:
        block_size = self.shuffle_batches * self.batch_size
        position = self.resume or Position()
        if position.block * self.shuffle_batches > self.start_step:  # a position past the start cannot be used
            position = Position()
        tokens = _Tokens(self, position)
        share = self.batch_size // self.world
        while position.block * self.shuffle_batches < self.steps:
            chunks = tokens.chunks(block_size, self.length)
            following = Position(position.block + 1, tokens.epoch, tokens.state, tokens.carry.tolist())
            order = np.random.default_rng([self.seed, position.block]).permutation(block_size)
            first = True
            for j in range(self.shuffle_batches):
                step = position.block * self.shuffle_batches + j
                if step >= self.steps:
                    return
                if step < self.start_step:
                    continue
                rows = order[j * self.batch_size:(j + 1) * self.batch_size][self.rank * share:(self.rank + 1) * share]
                batch = self.collator.batch(chunks[rows], step)
                if first:  # enough for a checkpoint to find this block again
                    batch[POSITION] = asdict(position)
                    first = False
                yield batch
            position = following


class _Tokens:
    """The token stream of the documents from a position on: documents tokenised in groups, cycled by epoch."""

    def __init__(self, stream: CorpusStream, position: Position):
        self.stream, self.epoch = stream, position.epoch
        self.carry = np.asarray(position.carry, dtype=np.int64)
        self._begin(position.documents)

    def _begin(self, state: dict | None) -> None:
        self.stream.docs.load_state_dict(copy.deepcopy(state or self.stream._initial))
        self.rows = iter(self.stream.docs)
        self.state = state
        self.tokens_this_epoch = 0 if state is None else None  # counted only over a whole epoch

    def chunks(self, count: int, length: int) -> np.ndarray:
        """The next `count` chunks of `length` tokens (documents end with </s> and run on into the next)."""
        parts, have = [self.carry], len(self.carry)
        while have < count * length:
            ids = self._next_group()
            parts.extend(ids)
            have += sum(len(i) for i in ids)
        tokens = np.concatenate(parts)
        self.carry = tokens[count * length:]
        return tokens[:count * length].reshape(count, length)

    def _next_group(self) -> list[np.ndarray]:
        ids = _tokenised_group(self.rows, self.stream.collator)
        if not ids:  # the end of an epoch: start the documents again
            if self.tokens_this_epoch is not None and self.tokens_this_epoch < self.stream.length:
                raise UserError(
                    f"The {self.stream.what} has {self.tokens_this_epoch} tokens, fewer than one chunk of "
                    f"{self.stream.length}: use a larger corpus (or a wider train selection) or a smaller input_length.")
            self.epoch += 1
            self._begin(None)
            return []
        self.state = self.stream.docs.state_dict()
        if self.tokens_this_epoch is not None:
            self.tokens_this_epoch += sum(len(i) for i in ids)
        return ids


def _tokenised_group(rows: Iterator[dict], objective) -> list[np.ndarray]:
    """The token ids of the next (up to) `_DOCS_PER_CALL` documents of `rows`, as `objective` reads documents (each
    ending with the tokenizer's EOS); empty at their end."""
    texts = [row["text"] for row in itertools.islice(rows, _DOCS_PER_CALL)]
    return [np.asarray(i, dtype=np.int64) for i in objective.document_ids(texts)] if texts else []


class CorpusPosition(L.Callback):
    """Keeps the position of the block of the last trained batch in the checkpoint, and gives it back to the
    stream on resume. Must come before the callback that saves checkpoints."""

    def __init__(self, stream: CorpusStream):
        self.stream = stream
        self.position: dict | None = None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if POSITION in batch:
            self.position = batch[POSITION]

    def state_dict(self) -> dict:
        return {"position": self.position}

    def load_state_dict(self, state_dict: dict) -> None:
        self.position = state_dict.get("position")
        self.stream.resume = Position(**self.position) if self.position else None


def heldout_batches(docs: datasets.IterableDataset, tokenizer, spec: Any, seed: int, max_chunks: int,
                    batch_size: int, objective: str = "span_corruption") -> list[dict]:
    """The first `max_chunks` chunks of the held-out documents in order, as batches of `objective` (span
    corruption: with masks fixed by `seed`)."""
    collator = stage1_objective(objective, tokenizer, spec, seed)
    length, parts, have, rows = collator.expanded_length, [], 0, iter(docs)
    while have < max_chunks * length and (group := _tokenised_group(rows, collator)):
        parts += group
        have += sum(len(i) for i in group)
    tokens = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    count = min(len(tokens) // length, max_chunks)
    chunks = tokens[:count * length].reshape(count, length)
    return [collator.batch(chunks[i:i + batch_size], i // batch_size) for i in range(0, count, batch_size)]
