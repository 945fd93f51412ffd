"""Bottleneck adapter (Pfeiffer `seq_bn`) from the `adapters` library; several stack language-first (MAD-X)."""

from __future__ import annotations

from typing import Any

import adapters
from adapters import AdapterModelInterface, SeqBnConfig
from adapters.composition import Stack

from softprompt_xl.errors import UserError
from softprompt_xl.model.components.base import Component


def init_adapters(model: Any, interface: dict | None = None) -> None:
    """Make `model` one the adapters library can add adapters to: a model type it supports (T5, mT5, Llama, Qwen2,
    Gemma 3, ...), or any other with the `interface` (AdapterModelInterface's fields: where the layers, attention
    projections and feed-forward are; conf/backbone/bloomz_560m.yaml has one). A model it cannot serve is left as
    it is: every other kind works on it, and a bottleneck adapter says why it cannot (BottleneckAdapter.attach)."""
    if hasattr(model, "adapters_config"):
        return
    try:
        adapters.init(model, interface=AdapterModelInterface(**interface) if interface else None)
    except ValueError as err:  # "Model X not pre-supported by adapters"
        model.adapters_unsupported = str(err)


class BottleneckAdapter(Component):
    kind = "adapter"

    def attach(self, model, tokenizer, init_text):
        # adapters_config: what adapters.init gives a model (every transformers model has an `add_adapter` of its
        # own, peft's, which takes no adapters config)
        if not hasattr(model, "adapters_config"):
            raise UserError(
                f"A bottleneck adapter cannot be added to this backbone ({model.config.model_type}): the adapters "
                f"library does not support it ({getattr(model, 'adapters_unsupported', 'not initialised')}). Give "
                "the backbone's config an `adapters_interface` (the layer and projection names of the model: see "
                "conf/backbone/bloomz_560m.yaml and https://docs.adapterhub.ml/plugin_interface.html), or choose a "
                "combo without an adapter (lp_tp, lp_tl, ll_tl, ...).")
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
