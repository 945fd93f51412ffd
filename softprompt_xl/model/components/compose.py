"""The composed model: a backbone plus at most one language and one task component, and the rules between them.

Rules: prompts are concatenated as [language ; task ; input] - in training, evaluation loss and `generate`
alike, on either backbone family (model/family.py says where the input goes); adapters stack language-first; LoRAs
add. Only the parts named in `train_only` get gradients.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from softprompt_xl.model.components import ROLES, Component, component_class
from softprompt_xl.model.components.adapter import init_adapters
from softprompt_xl.model.family import family_of_model
from softprompt_xl.model.component_header import ComponentHeader
from softprompt_xl.errors import UserError


class ComposedModel(nn.Module):
    def __init__(self, backbone: nn.Module, tokenizer: Any, stop: str | None = None):
        super().__init__()
        # adapters.init wraps the attention linears; done up front for every combo so that the wrapped form is
        # the one every kind attaches to (it cannot wrap a LoRA host attached before it). load_backbone does it
        # with the interface a backbone's config gives for models the library does not know.
        init_adapters(backbone)
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.family = family_of_model(backbone)
        self.stop = stop  # where an answer ends besides EOS (data/layout.py TextLayout.stop)
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

    def forward(self, input_ids, attention_mask, labels):
        """The batch's mean token loss, and logits aligned with `labels` (model/family.py)."""
        embeds, mask = self.embed(input_ids, attention_mask)
        return self.family.forward(self.backbone, embeds, mask, labels)

    @torch.no_grad()
    def generate(self, input_ids, attention_mask, max_new_tokens: int) -> torch.Tensor:
        """Greedy decoding on exactly the inputs the training loss sees: the answer tokens."""
        return self.generate_scored(input_ids, attention_mask, max_new_tokens)[0]

    @torch.no_grad()
    def loss_and_generate(self, input_ids, attention_mask, labels, max_new_tokens: int):
        """The teacher-forced loss and `generate_scored`'s answers and scores of one batch (the family shares what
        it can between the two: T5's encoder runs once)."""
        embeds, mask = self.embed(input_ids, attention_mask)
        return self.family.loss_and_generate(self.backbone, self.tokenizer, embeds, mask, labels,
                                             max_new_tokens, self.stop)

    def generate_scored(self, input_ids, attention_mask, max_new_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy decoding, and each answer's mean token log-probability (up to and including its EOS), by which
        the answers of the windows of one long QA context are compared."""
        embeds, mask = self.embed(input_ids, attention_mask)
        return self.family.generate(self.backbone, self.tokenizer, embeds, mask, max_new_tokens, self.stop)

    def answers(self, tokens: torch.Tensor) -> list[str]:
        """The generated answers as text: up to the stop text, if any, and stripped."""
        texts = self.tokenizer.batch_decode(tokens, skip_special_tokens=True)
        return [(text.split(self.stop)[0] if self.stop else text).strip() for text in texts]
