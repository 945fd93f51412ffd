"""Next-token prediction, the stage-1 objective of decoder-only backbones (span corruption stays T5's).

Documents are tokenised without the tokenizer's own special tokens, each followed by its EOS, and run on into one
another (packed, as causal pre-training does); a chunk of `input_length` tokens is one example. In the batch, the
chunk's first token is the input and the rest its continuation (data/layout.py): the loss is that of every token
after the first, in every combo alike - with or without virtual tokens before the chunk, the same tokens are scored.
"""

from __future__ import annotations

import numpy as np
import torch


class NextTokenObjective:
    """Batches of chunks for next-token prediction: the same interface as span_corruption.SpanCorruptionCollator
    (`expanded_length` raw tokens per chunk, `batch(ids, number)`, `document_ids(texts)`, callable on examples)."""

    def __init__(self, tokenizer, input_length: int):
        self.tokenizer = tokenizer
        self.expanded_length = input_length
        self.eos_id = tokenizer.eos_token_id
        self.calls = 0

    def document_ids(self, texts: list[str]) -> list[list[int]]:
        return [ids + [self.eos_id] for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        self.calls += 1
        return self.batch(np.array([e["input_ids"] for e in examples]), self.calls - 1)

    def batch(self, ids: np.ndarray, batch_number: int) -> dict[str, torch.Tensor]:
        """Chunks (rows of `ids`) as input (first token) and continuation (the rest); nothing random."""
        ids = torch.from_numpy(np.asarray(ids, dtype=np.int64))
        return {"input_ids": ids[:, :1], "attention_mask": torch.ones_like(ids[:, :1]), "labels": ids[:, 1:].clone()}
