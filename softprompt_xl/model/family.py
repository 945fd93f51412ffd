"""Backbone families: what differs between an encoder-decoder (mT5, mT0) and a decoder-only model (Qwen, Gemma,
BLOOMZ, Llama), answered here and nowhere else - how the model is loaded, where virtual tokens enter, how a batch
(data/layout.py) becomes a loss and how answers are generated. The composed model (components/compose.py) gives a
family the input embeddings with every prompt before them; the stages never ask which family they run.

Both families keep one contract: `forward` returns the mean token loss of the batch's labels and logits aligned
with them (`logits[b, t]` predicts `labels[b, t]`), and `generate` returns the answer tokens alone and each
answer's mean token log-probability up to and including its EOS.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM, StoppingCriteria, StoppingCriteriaList
from transformers.modeling_outputs import CausalLMOutput

from softprompt_xl.data.layout import CAUSAL


class Seq2Seq:
    """T5's family: prompts before the encoder's input; the decoder reads the labels."""

    name: ClassVar[str] = "seq2seq"
    auto_class: ClassVar[type] = AutoModelForSeq2SeqLM
    padding_side: ClassVar[str] = "right"

    def forward(self, backbone, embeds, mask, labels):
        return backbone(inputs_embeds=embeds, attention_mask=mask, labels=labels)

    def batch_loss(self, backbone, batch: dict) -> torch.Tensor:
        """The loss of a batch on the bare backbone (the tiny backbones' pre-training)."""
        return backbone(**batch).loss

    def loss_and_generate(self, backbone, tokenizer, embeds, mask, labels, max_new_tokens, stop=None):
        # The encoder's output is caught as `generate` computes it, so evaluation encodes once: transformers refuses
        # `encoder_outputs` as an input of `generate` on a model the adapters library has wrapped, and
        # `output_hidden_states` would keep every layer's states.
        caught = []
        hook = backbone.get_encoder().register_forward_hook(lambda module, args, output: caught.append(output))
        try:
            tokens, score = self.generate(backbone, tokenizer, embeds, mask, max_new_tokens, stop)
        finally:
            hook.remove()
        (encoded,) = caught
        loss = backbone(encoder_outputs=encoded, attention_mask=mask, labels=labels).loss
        return loss, tokens, score

    def generate(self, backbone, tokenizer, embeds, mask, max_new_tokens, stop=None):
        out = _greedy(backbone, tokenizer, embeds, mask, max_new_tokens, stop)
        logprobs = backbone.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        produced = (out.sequences[:, 1:] != tokenizer.pad_token_id).to(logprobs.dtype)  # not the padding after </s>
        return out.sequences, _mean(logprobs, produced)


class Causal:
    """Decoder-only models: [prompts ; input ; target], the loss on the target only, generation continuing the input
    with the KV cache. The attention mask and the position ids cover the virtual tokens; inputs are padded on the
    left (data/layout.py), so padding sits between the prompts and the input, masked, and positions count only what
    the mask keeps - the same numbers as an unpadded example, in training and in `generate` alike."""

    name: ClassVar[str] = CAUSAL
    auto_class: ClassVar[type] = AutoModelForCausalLM
    padding_side: ClassVar[str] = "left"

    def forward(self, backbone, embeds, mask, labels):
        targets = labels != -100
        target_embeds = backbone.get_input_embeddings()(labels.masked_fill(~targets, 0)).to(embeds.dtype)
        joined = torch.cat([embeds, target_embeds], dim=1)
        joined_mask = torch.cat([mask, targets.to(mask.dtype)], dim=1)
        width = labels.shape[1]
        # The logits of the positions that predict the targets only: with a 150k-token vocabulary, the logits of
        # every input position would be most of a step's memory.
        extra = {**_positions(backbone, joined_mask), **_keep(backbone, width + 1)}
        logits = backbone(inputs_embeds=joined, attention_mask=joined_mask, **extra).logits[:, -(width + 1):-1]
        loss = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)
        return CausalLMOutput(loss=loss, logits=logits)

    def batch_loss(self, backbone, batch: dict) -> torch.Tensor:
        ids = batch["input_ids"]
        embeds = backbone.get_input_embeddings()(ids)
        return self.forward(backbone, embeds, batch["attention_mask"], batch["labels"]).loss

    def loss_and_generate(self, backbone, tokenizer, embeds, mask, labels, max_new_tokens, stop=None):
        tokens, score = self.generate(backbone, tokenizer, embeds, mask, max_new_tokens, stop)
        return self.forward(backbone, embeds, mask, labels).loss, tokens, score

    def generate(self, backbone, tokenizer, embeds, mask, max_new_tokens, stop=None):
        # Given only embeddings, `generate` returns the new tokens alone, and derives each step's position from the
        # attention mask (its cumulative sum), as `forward` above does.
        out = _greedy(backbone, tokenizer, embeds, mask, max_new_tokens, stop)
        logprobs = backbone.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        ended = (out.sequences == tokenizer.eos_token_id).long()
        if stop:  # an answer cut at the stop text ends there: the padding after it is no answer token
            ended = ended | _stopped(out.sequences, tokenizer, stop)
        produced = (ended.cumsum(-1) - ended == 0).to(logprobs.dtype)  # up to and including the first EOS (or stop)
        return out.sequences, _mean(logprobs, produced)


FAMILIES = {family.name: family for family in (Seq2Seq(), Causal())}


def family_of(backbone_cfg: Any) -> Seq2Seq | Causal:
    """The family of a backbone's config (`family`: causal for decoder-only models; T5's by default)."""
    return FAMILIES[CAUSAL if backbone_cfg.get("family") == CAUSAL else Seq2Seq.name]


def family_of_model(model: Any) -> Seq2Seq | Causal:
    """The family of a loaded model: encoder-decoder or not, as its config says."""
    return FAMILIES[Seq2Seq.name if model.config.is_encoder_decoder else CAUSAL]


def _greedy(backbone, tokenizer, embeds, mask, max_new_tokens, stop=None):
    # The tokenizer's EOS and padding, whatever a hub model's generation config says: a batch stops as soon as every
    # answer has ended (at EOS, or at the `stop` text), not after max_new_tokens steps.
    stopping = {"stopping_criteria": StoppingCriteriaList([StopText(tokenizer, stop)])} if stop else {}
    return backbone.generate(
        inputs_embeds=embeds, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        output_scores=True, return_dict_in_generate=True, **stopping,
    )


class StopText(StoppingCriteria):
    """Ends an answer once its text holds `stop`: decoded, so it works with any tokenizer (transformers' own
    `stop_strings` failed on the tiny decoder's Metaspace vocabulary), and by the rule `_stopped` scores by."""

    def __init__(self, tokenizer, stop: str):
        self.tokenizer, self.stop = tokenizer, stop

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids, skip_special_tokens=True)
        return torch.tensor([self.stop in text for text in texts], dtype=torch.bool, device=input_ids.device)


def _stopped(sequences: torch.Tensor, tokenizer, stop: str) -> torch.Tensor:
    """1 at the token with which each answer's text first holds `stop` (where `stop_strings` ended it), else 0."""
    def holds(prefix: list[int]) -> bool:
        return stop in tokenizer.decode(prefix, skip_special_tokens=True)

    marks = torch.zeros_like(sequences)
    for row, ids in enumerate(sequences.tolist()):
        if holds(ids):
            low, high = 1, len(ids)  # the shortest prefix whose text holds the stop (bisected: a prefix's grows)
            while low < high:
                middle = (low + high) // 2
                low, high = (low, middle) if holds(ids[:middle]) else (middle + 1, high)
            marks[row, low - 1] = 1
    return marks


def _mean(logprobs: torch.Tensor, produced: torch.Tensor) -> torch.Tensor:
    return (logprobs * produced).sum(-1) / produced.sum(-1).clamp(min=1)


def _accepts(backbone, argument: str) -> bool:
    return argument in inspect.signature(backbone.forward).parameters


def _positions(backbone, mask: torch.Tensor) -> dict:
    """Position ids counting only the tokens the mask keeps (BLOOM has none: ALiBi reads the mask itself)."""
    if not _accepts(backbone, "position_ids"):
        return {}
    return {"position_ids": (mask.long().cumsum(-1) - 1).clamp(min=0)}


def _keep(backbone, last: int) -> dict:
    return {"logits_to_keep": last} if _accepts(backbone, "logits_to_keep") else {}
