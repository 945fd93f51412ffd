"""T5 span corruption (Raffel et al. 2020), the objective of stage 1.

A chunk of `expanded_length` tokens loses about `noise_density` of them in spans of mean length
`mean_noise_span_length`; each span becomes one sentinel in the input and `sentinel + span` in the target.
Ported from transformers' examples/flax/language-modeling/run_t5_mlm_flax.py, with one change: sentinels
are looked up by name (`<extra_id_k>`), so any tokenizer works, not only those that put them last in the vocab.
"""

from __future__ import annotations

import numpy as np
import torch


def compute_lengths(input_length: int, noise_density: float, mean_noise_span_length: float) -> tuple[int, int]:
    """Raw tokens per chunk and target length such that corrupted inputs are exactly `input_length` long."""

    def lengths(tokens: int) -> tuple[int, int]:
        noise = int(round(tokens * noise_density))
        spans = int(round(noise / mean_noise_span_length))
        return tokens - noise + spans + 1, noise + spans + 1  # +1: the final </s>

    tokens = input_length
    while lengths(tokens + 1)[0] <= input_length:
        tokens += 1
    _, target_length = lengths(tokens)
    if noise_density == 0.5 and target_length > input_length:
        tokens -= 1
        target_length -= 1
    return tokens, target_length


def random_spans_noise_mask(length: int, noise_density: float, mean_noise_span_length: float, rng) -> np.ndarray:
    num_noise = min(max(int(round(length * noise_density)), 1), length - 1)
    num_nonnoise = length - num_noise
    num_spans = max(int(round(min(num_noise, num_nonnoise) / mean_noise_span_length)), 1)

    def segment(num_items: int, num_segments: int) -> np.ndarray:
        first = np.arange(num_items - 1) < (num_segments - 1)
        rng.shuffle(first)
        segment_id = np.cumsum(np.pad(first, [[1, 0]]))
        return np.unique(segment_id, return_counts=True)[1]

    interleaved = np.stack([segment(num_nonnoise, num_spans), segment(num_noise, num_spans)], axis=1).reshape(-1)
    starts = np.zeros(length, dtype=np.int8)
    starts[np.cumsum(interleaved)[:-1]] = 1
    return (np.cumsum(starts) % 2) == 1


class SpanCorruptionCollator:
    """Turns chunks of `expanded_length` token ids into (input_ids, labels) with fresh random spans per call.

    The spans of batch k depend only on (seed, k) (`corrupt`; a call numbers its batches from 0): a resumed stage
    then draws the masks the uninterrupted one would have drawn. `stream` (the rank of a process
    training with others) gives each process masks of its own.
    """

    def __init__(self, tokenizer, input_length: int, noise_density: float, mean_noise_span_length: float, seed: int,
                 stream: int = 0):
        self.expanded_length, self.target_length = compute_lengths(input_length, noise_density, mean_noise_span_length)
        self.input_length = input_length
        self.noise_density, self.mean_noise_span_length = noise_density, mean_noise_span_length
        self.tokenizer, self.eos_id = tokenizer, tokenizer.eos_token_id
        names = [t for t in tokenizer.additional_special_tokens if t.startswith("<extra_id_")]
        self.sentinels = np.array([tokenizer.convert_tokens_to_ids(f"<extra_id_{k}>") for k in range(len(names))])
        if len(self.sentinels) == 0:
            raise ValueError("the tokenizer has no <extra_id_k> sentinel tokens; span corruption needs them")
        self.seed, self.calls, self.stream = seed, 0, stream

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        self.calls += 1
        return self.corrupt(np.array([e["input_ids"] for e in examples]), self.calls - 1)

    def document_ids(self, texts: list[str]) -> list[list[int]]:
        """A corpus's documents as token ids, each ending with </s> (T5's tokenizer appends it)."""
        return self.tokenizer(texts)["input_ids"]

    def batch(self, ids: np.ndarray, batch_number: int) -> dict[str, torch.Tensor]:
        """The stage-1 objective's batch of chunks (data/objectives.py): here, `corrupt`."""
        return self.corrupt(ids, batch_number)

    def corrupt(self, ids: np.ndarray, batch_number: int) -> dict[str, torch.Tensor]:
        """Chunks (rows of `ids`) corrupted with the masks of batch `batch_number`."""
        rng = np.random.default_rng([self.seed, batch_number, self.stream] if self.stream else [self.seed, batch_number])
        mask = np.stack([
            random_spans_noise_mask(self.expanded_length, self.noise_density, self.mean_noise_span_length, rng)
            for _ in range(len(ids))
        ])
        inputs = self._filter(ids, self._sentinel_ids(mask.astype(np.int64)))
        labels = self._filter(ids, self._sentinel_ids((~mask).astype(np.int64)))
        return {
            "input_ids": torch.from_numpy(inputs),
            "attention_mask": torch.ones(inputs.shape, dtype=torch.long),
            "labels": torch.from_numpy(labels),
        }

    def _sentinel_ids(self, mask: np.ndarray) -> np.ndarray:
        # At the first token of each span: the span's sentinel; elsewhere in a span: -1 (dropped); else 0 (kept).
        starts = mask - np.roll(mask, 1, axis=-1) * mask
        starts[:, 0] = mask[:, 0]
        span_number = np.where(starts != 0, np.cumsum(starts, axis=-1), 0)
        if span_number.max() > len(self.sentinels):
            raise ValueError(f"{span_number.max()} noise spans but only {len(self.sentinels)} sentinel tokens")
        sentinel = np.where(span_number != 0, self.sentinels[np.maximum(span_number - 1, 0)], 0)
        return sentinel - (mask - starts)

    def _filter(self, ids: np.ndarray, sentinel: np.ndarray) -> np.ndarray:
        full = np.where(sentinel != 0, sentinel, ids)
        kept = full[full >= 0].reshape(ids.shape[0], -1)
        return np.concatenate([kept, np.full((ids.shape[0], 1), self.eos_id)], axis=-1)
