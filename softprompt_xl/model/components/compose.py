"""The composed model: a backbone plus at most one language and one task component, and the rules between them.

Rules: prompts are concatenated as [language ; task ; input] - in training, evaluation loss and `generate`
alike; adapters stack language-first; LoRAs add. Only the parts named in `train_only` get gradients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import adapters
import torch
from torch import nn

from softprompt_xl.model.components import ROLES, Component, component_class
from softprompt_xl.model.component_header import ComponentHeader
from softprompt_xl.errors import UserError


class ComposedModel(nn.Module):
    def __init__(self, backbone: nn.Module, tokenizer: Any):
        super().__init__()
        # adapters.init wraps the attention linears; done up front for every combo so that the wrapped form is
        # the one every kind attaches to (it cannot wrap a LoRA host attached before it).
        if not hasattr(backbone, "adapters_config"):
            adapters.init(backbone)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.components = nn.ModuleDict()

    # --- building -------------------------------------------------------------------------------
    def add(self, component: Component, init_text: str | None = None) -> Component:
        if component.role in self.components:
            raise ValueError(f"a {component.role} component is already attached; remove it first")
        component.attach(self.backbone, self.tokenizer, init_text)
        self.components[component.role] = component
        self._activate()
        return component

    def new(self, role: str, name: str, config: dict, init_text: str | None = None) -> Component:
        """Attach a freshly initialised component of `config['kind']`."""
        return self.add(component_class(config["kind"])(role, name, config), init_text)

    def load(self, directory: str | Path) -> Component:
        """Attach a saved component (any kind) with its trained weights."""
        header = ComponentHeader.read(directory)
        cls = component_class(header.kind)
        if header.format_version > cls.format_version:
            raise UserError(
                f"The component in {directory} has format version {header.format_version}, newer than this "
                f"softprompt_xl reads ({cls.format_version}). Upgrade softprompt_xl."
            )
        component = self.add(cls(header.role, header.name, header.config))
        component.load_weights(directory)
        return component

    def remove(self, role: str) -> None:
        component = self.components[role]
        component.detach(self.backbone)
        del self.components[role]
        self._activate()

    def _activate(self) -> None:
        by_kind: dict[type, list[Component]] = {}
        for component in self.ordered():
            by_kind.setdefault(type(component), []).append(component)
        for cls, members in by_kind.items():
            cls.activate(self.backbone, members)

    def ordered(self) -> list[Component]:
        return [self.components[r] for r in ROLES if r in self.components]

    # --- what trains --------------------------------------------------------------------------
    def train_only(self, parts: list[str]) -> list[nn.Parameter]:
        """Freeze everything but `parts` (roles, or "backbone"); return the parameters left trainable."""
        unknown = set(parts) - set(self.components) - {"backbone"}
        if unknown:
            raise ValueError(f"cannot train {sorted(unknown)}: attached are {list(self.components)}")
        for p in self.parameters():
            p.requires_grad_(False)
        trainable: dict[int, nn.Parameter] = {}
        if "backbone" in parts:
            owned = {id(p) for c in self.components.values() for p in c.owned_parameters().values()}
            trainable.update({id(p): p for p in self.backbone.parameters() if id(p) not in owned})
        for role in parts:
            if role != "backbone":
                trainable.update({id(p): p for p in self.components[role].owned_parameters().values()})
        for p in trainable.values():
            p.requires_grad_(True)
        return list(trainable.values())

    def parameter_counts(self) -> dict[str, int]:
        """Trainable parameters per part (0 for a frozen one); `backbone` only when it trains."""
        counts = {role: sum(p.numel() for p in c.owned_parameters().values() if p.requires_grad)
                  for role, c in self.components.items()}
        owned = {id(p) for c in self.components.values() for p in c.owned_parameters().values()}
        backbone = sum(p.numel() for p in self.backbone.parameters() if p.requires_grad and id(p) not in owned)
        if backbone:
            counts["backbone"] = backbone
        return counts

    # --- running ------------------------------------------------------------------------------
    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Input embeddings with every prompt before them, and the mask extended to match."""
        embeds = self.backbone.get_input_embeddings()(input_ids)
        prefixes = [p for c in self.ordered() if (p := c.input_prefix(input_ids.shape[0])) is not None]
        if not prefixes:
            return embeds, attention_mask
        prefix = torch.cat(prefixes, dim=1).to(embeds.dtype)
        ones = attention_mask.new_ones(attention_mask.shape[0], prefix.shape[1])
        return torch.cat([prefix, embeds], dim=1), torch.cat([ones, attention_mask], dim=1)

    def forward(self, input_ids, attention_mask, labels=None):
        embeds, mask = self.embed(input_ids, attention_mask)
        return self.backbone(inputs_embeds=embeds, attention_mask=mask, labels=labels)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding on exactly the inputs the training loss sees."""
        return self.generate_scored(input_ids, attention_mask, max_new_tokens)[0]

    @torch.no_grad()
    def loss_and_generate(self, input_ids, attention_mask, labels, max_new_tokens: int):
        """The teacher-forced loss and `generate_scored`'s answers and scores of one batch, its inputs encoded once for
        both: evaluation would otherwise run the encoder twice, most of its cost when answers are short. (The encoder's
        output is caught as `generate` computes it: transformers refuses `encoder_outputs` as an input of `generate`
        on a model the adapters library has wrapped, and `output_hidden_states` would keep every layer's states.)"""
        embeds, mask = self.embed(input_ids, attention_mask)
        caught = []
        hook = self.backbone.get_encoder().register_forward_hook(lambda module, args, output: caught.append(output))
        try:
            out, score = self._greedy(mask, max_new_tokens, inputs_embeds=embeds)
        finally:
            hook.remove()
        (encoded,) = caught
        loss = self.backbone(encoder_outputs=encoded, attention_mask=mask, labels=labels).loss
        return loss, out.sequences, score

    def generate_scored(self, input_ids, attention_mask, max_new_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding, and each output's mean token log-probability (up to and including </s>), by which
        the answers of the windows of one long QA context are compared."""
        embeds, mask = self.embed(input_ids, attention_mask)
        out, score = self._greedy(mask, max_new_tokens, inputs_embeds=embeds)
        return out.sequences, score

    def _greedy(self, mask, max_new_tokens: int, **inputs) -> tuple[Any, torch.Tensor]:
        # The tokenizer's </s> and padding, whatever a hub model's generation config says (mT5's and mT0's say the
        # same): a batch stops as soon as every answer has ended, not after max_new_tokens decoder steps.
        out = self.backbone.generate(
            **inputs, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
            eos_token_id=self.tokenizer.eos_token_id, pad_token_id=self.tokenizer.pad_token_id,
            output_scores=True, return_dict_in_generate=True,
        )
        logprobs = self.backbone.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        produced = (out.sequences[:, 1:] != self.tokenizer.pad_token_id).to(logprobs.dtype)  # not the padding after </s>
        score = (logprobs * produced).sum(-1) / produced.sum(-1).clamp(min=1)
        return out, score
