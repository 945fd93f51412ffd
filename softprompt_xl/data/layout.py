"""How a backbone reads a task example: the one rule, per backbone family, for turning (input text, target text)
into token ids and batches.

- seq2seq (mT5, mT0): the input goes to the encoder as the tokenizer writes it (T5's ends with </s>); the target is
  the decoder's labels, ending with </s>; both padded on the right.
- continuation (decoder-only: Qwen, Gemma, BLOOMZ, Llama): the target continues the input. An example keeps the two
  apart - `input_ids` the input as the tokenizer writes it, `labels` the target (after `separator`, so it is
  tokenised as in running text) ending with the tokenizer's EOS - and a batch pads the inputs on the LEFT and the
  targets on the right, so that every input ends where its target begins and generation continues from there.
  The model joins them ([input ; target], loss on the target only: model/family.py).

The backbone's config chooses (`family`, `continuation.separator`); keeping the two parts apart in the examples lets
training, the evaluation loss and generation all read the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from transformers import DataCollatorForSeq2Seq

CAUSAL = "causal"  # conf/backbone `family` of decoder-only models; anything else is seq2seq


@dataclass(frozen=True)
class TextLayout:
    continuation: bool = False
    separator: str = " "  # before a continuation's target: " Bristol", the token running text has after "A:"

    @classmethod
    def of(cls, backbone: Any) -> TextLayout:
        """The layout of a backbone's config (conf/backbone/<id>.yaml)."""
        if backbone.get("family") != CAUSAL:
            return cls()
        return cls(True, str((backbone.get("continuation") or {}).get("separator", " ")))

    @property
    def name(self) -> str:
        """What the tokenised-split cache key records (a continuation's examples differ from seq2seq's)."""
        return f"continuation{self.separator!r}" if self.continuation else "seq2seq"

    def target_ids(self, tokenizer: Any, targets: list[str]) -> list[list[int]]:
        """Each target's token ids, ending with the tokenizer's EOS (where generation stops)."""
        if not self.continuation:
            return tokenizer(text_target=targets)["input_ids"]
        ids = tokenizer([self.separator + t for t in targets], add_special_tokens=False)["input_ids"]
        return [i + [tokenizer.eos_token_id] for i in ids]

    def collator(self, tokenizer: Any):
        """Pads a list of examples into a batch, as the module docstring says."""
        if not self.continuation:
            return DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100, return_tensors="pt")
        return ContinuationCollator(tokenizer.pad_token_id)


class ContinuationCollator:
    """Inputs padded on the left (mask 0), targets on the right (label -100); other fields (`index`) as tensors."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, examples: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        target_width = max(len(e["labels"]) for e in examples)
        batch = {
            "input_ids": torch.tensor([[self.pad_id] * (width - len(e["input_ids"])) + list(e["input_ids"])
                                       for e in examples]),
            "attention_mask": torch.tensor([[0] * (width - len(e["input_ids"])) + [1] * len(e["input_ids"])
                                            for e in examples]),
            "labels": torch.tensor([list(e["labels"]) + [-100] * (target_width - len(e["labels"])) for e in examples]),
        }
        for key in examples[0].keys() - batch.keys():
            batch[key] = torch.tensor([e[key] for e in examples])
        return batch
