"""LoRA whose updates add: W x + dW_lang x + dW_task x.

Written here because `adapters` chains stacked LoRAs multiplicatively, so an untrained language LoRA
would starve the task LoRA of gradient.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Component


class LowRankDelta(nn.Module):
    def __init__(self, in_features: int, out_features: int, r: int, alpha: float, dropout: float):
        super().__init__()
        self.down = nn.Parameter(torch.empty(r, in_features))
        self.up = nn.Parameter(torch.zeros(out_features, r))  # zero: attaching changes nothing until trained
        nn.init.kaiming_uniform_(self.down, a=math.sqrt(5))
        self.scale = alpha / r
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        return (self.dropout(x) @ self.down.t() @ self.up.t()) * self.scale


class LoRAHost(nn.Module):
    """Stands in for a linear layer: its output plus the sum of every attached delta."""

    def __init__(self, base: nn.Linear):
        super().__init__()
        self.base = base
        self.deltas = nn.ModuleDict()

    def forward(self, x):
        out = self.base(x)
        for delta in self.deltas.values():
            out = out + delta(x)
        return out


class LoRA(Component):
    kind = "lora"

    def attach(self, model, tokenizer, init_text):
        targets = set(self.config.get("targets", ["q", "v"]))
        r, alpha, dropout = int(self.config["r"]), float(self.config["alpha"]), float(self.config.get("dropout", 0.0))
        self.deltas = nn.ModuleDict()
        self._hosts: dict[str, LoRAHost] = {}
        for path, module in list(model.named_modules()):
            parent_path, _, leaf = path.rpartition(".")
            if leaf not in targets or not isinstance(module, (nn.Linear, LoRAHost)):
                continue
            host = module
            if not isinstance(module, LoRAHost):
                host = LoRAHost(module)
                setattr(model.get_submodule(parent_path), leaf, host)
            base = host.base
            delta = LowRankDelta(base.in_features, base.out_features, r, alpha, dropout).to(base.weight.device)
            host.deltas[self.label] = delta
            self.deltas[path.replace(".", "/")] = delta
            self._hosts[path] = host
        if not self.deltas:
            raise ValueError(f"LoRA targets {sorted(targets)} match no linear layer of this model")

    def detach(self, model):
        for host in self._hosts.values():
            del host.deltas[self.label]
        self._hosts = {}

    def owned_parameters(self):
        return {f"{key}.{name}": p for key, delta in self.deltas.items() for name, p in delta.named_parameters()}
