"""Bottleneck adapter (Pfeiffer `seq_bn`) from the `adapters` library; several stack language-first (MAD-X)."""

from __future__ import annotations

from adapters import SeqBnConfig
from adapters.composition import Stack

from softprompt_xl.model.components.base import Component


class BottleneckAdapter(Component):
    kind = "adapter"

    def attach(self, model, tokenizer, init_text):
        model.add_adapter(
            self.label,
            config=SeqBnConfig(
                reduction_factor=self.config.get("reduction_factor", 16),
                non_linearity=self.config.get("non_linearity", "relu"),
            ),
        )
        # The adapter lives inside the model; keep plain references (a dict is not registered as a submodule).
        marker = f".adapters.{self.label}."
        self._params = {
            name.replace(marker, ".adapters.{adapter}."): p for name, p in model.named_parameters() if marker in name
        }

    def detach(self, model):
        model.delete_adapter(self.label)
        self._params = {}

    def owned_parameters(self):
        return self._params

    @classmethod
    def activate(cls, model, components):
        labels = [c.label for c in components]
        model.set_active_adapters(Stack(*labels) if len(labels) > 1 else labels[0])
