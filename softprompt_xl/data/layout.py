"""How a backbone reads a task example: the one rule, per backbone family, for turning (input text, target text)
into token ids and batches.

- seq2seq (mT5, mT0): the input goes to the encoder as the tokenizer writes it (T5's ends with </s>); the target is
  the decoder's labels, ending with </s>; both padded on the right.
- continuation (decoder-only: Qwen, Gemma, BLOOMZ, Llama): the target continues the input. An example keeps the two
  apart - `input_ids` the input as the tokenizer writes it, `labels` the target (after `separator`, so it is
  tokenised as in running text) ending with the tokenizer's EOS - and a batch pads the inputs on the LEFT and the
  targets on the right, so that every input ends where its target begins and generation continues from there.
  The model joins them ([input ; target], loss on the target only: model/family.py).

The backbone's config chooses (`family`, `continuation.separator`, `continuation.chat_template`); keeping the two
parts apart in the examples lets training, the evaluation loss and generation all read the same batch.

An instruction-tuned model (as mT0 is) may expect its chat template: with `continuation.chat_template: true` every
input is framed as the user's turn followed by the assistant's opening (the tokenizer's own template), the frame
being to the input what T5's </s> is - the tokens the tokenizer adds around a whole input - so a task that cuts a
long input into windows (QA) frames each window.
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
    chat_template: bool = False  # inputs framed by the tokenizer's chat template (an instruction-tuned model's)
    stop: str | None = None  # where an answer ends besides EOS (a base model zero-shot rambles on: "\n")

    @classmethod
    def of(cls, backbone: Any) -> TextLayout:
        """The layout of a backbone's config (conf/backbone/<id>.yaml)."""
        if backbone.get("family") != CAUSAL:
            return cls()
        settings = backbone.get("continuation") or {}
        return cls(True, str(settings.get("separator", " ")), bool(settings.get("chat_template", False)),
                   settings.get("stop") or None)

    @property
    def name(self) -> str:
        """What the tokenised-split cache key records (a continuation's examples differ from seq2seq's)."""
        if not self.continuation:
            return "seq2seq"
        return f"continuation{self.separator!r}" + (" chat" if self.chat_template else "")  # (stop: not in examples)

    def input_tokenizer(self, tokenizer: Any) -> Any:
        """The tokenizer a task encodes its inputs with: the backbone's, or with the chat frame around every input."""
        return ChatFramed(tokenizer) if self.chat_template else tokenizer

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


class ChatFramed:
    """A tokenizer whose special tokens around a whole input are its chat template's frame: the user's turn before
    the input, the assistant's opening after it. Anything else is the tokenizer's own."""

    _PLACE = "\x00"

    def __init__(self, tokenizer: Any):
        if not getattr(tokenizer, "chat_template", None):
            from softprompt_xl.errors import UserError

            raise UserError(f"backbone.continuation.chat_template=true, but the backbone's tokenizer "
                            f"({tokenizer.name_or_path}) has no chat template: set it to false (a base model reads "
                            "the task's template as it is).")
        self.tokenizer = tokenizer
        framed = tokenizer.apply_chat_template([{"role": "user", "content": self._PLACE}], tokenize=False,
                                               add_generation_prompt=True)
        before, after = framed.split(self._PLACE)
        self.before = tokenizer(before, add_special_tokens=False)["input_ids"]
        self.after = tokenizer(after, add_special_tokens=False)["input_ids"]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.tokenizer, name)

    def __call__(self, texts, add_special_tokens: bool = True, **kwargs):
        if add_special_tokens and kwargs.get("truncation") and kwargs.get("max_length"):
            kwargs["max_length"] -= self.num_special_tokens_to_add()  # the frame counts, as T5's </s> does
        encoded = self.tokenizer(texts, add_special_tokens=False, **kwargs)
        if add_special_tokens:
            encoded["input_ids"] = [self.build_inputs_with_special_tokens(ids) for ids in encoded["input_ids"]]
        return encoded

    def build_inputs_with_special_tokens(self, ids: list[int]) -> list[int]:
        return self.before + list(ids) + self.after

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return len(self.before) + len(self.after)
