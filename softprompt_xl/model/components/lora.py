"""LoRA whose updates add: W x + dW_lang x + dW_task x.

Written here because `adapters` chains stacked LoRAs multiplicatively, so an untrained language LoRA
would starve the task LoRA of gradient.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from softprompt_xl.model.components.base import ROLES, Component



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
    """Stands in for a linear layer: its output plus the sum of every attached delta.

    The deltas are added in composition order (language, then task), whatever order they were attached in:
    float addition is not associative, so swapping a language LoRA out and back must not reorder the sum.
    """

    def __init__(self, base: nn.Linear):
        super().__init__()
        self.base = base
        self.deltas = nn.ModuleDict()
        self._place: dict[str, tuple[int, str]] = {}  # label -> its place in the sum

    def add(self, role: str, label: str, delta: LowRankDelta) -> None:
        self._place[label] = (ROLES.index(role), label)
        entries = {**self.deltas, label: delta}
        self.deltas = nn.ModuleDict({k: entries[k] for k in sorted(entries, key=self._place.__getitem__)})

    def remove(self, label: str) -> None:
        del self.deltas[label], self._place[label]

    def forward(self, x):
        out = self.base(x)
        for delta in self.deltas.values():
            out = out + delta(x)
        return out


class LoRA(Component):
    kind = "lora"

    def attach(self, model, tokenizer, init_text):
        targets = set(self.config["targets"])  # linear layers by name (backbone.lora.layers)
        r, alpha, dropout = int(self.config["r"]), float(self.config["alpha"]), float(self.config.get("dropout", 0.0))
        self.deltas = nn.ModuleDict()
        self._hosts: dict[str, LoRAHost] = {}
        for path, module in list(model.named_modules()):
            parent_path, _, leaf = path.rpartition(".")
            if leaf not in targets or not isinstance(module, (nn.Linear, LoRAHost)):
                continue
            host = module
            if not isinstance(module, LoRAHost):
                host = LoRAHost(module).train(module.training)
                setattr(model.get_submodule(parent_path), leaf, host)
            base = host.base
            delta = LowRankDelta(base.in_features, base.out_features, r, alpha, dropout)
            delta.to(base.weight.device).train(base.training)  # one swapped in during evaluation has no dropout
            host.add(self.role, self.label, delta)
            self.deltas[path.replace(".", "/")] = delta
            self._hosts[path] = host
        if not self.deltas:
            raise ValueError(f"LoRA targets {sorted(targets)} match no linear layer of this model")

    def detach(self, model):
        for path, host in self._hosts.items():
            host.remove(self.label)
            if not host.deltas:  # the last LoRA here: put the layer itself back, so the model is as it was
                parent_path, _, leaf = path.rpartition(".")
                setattr(model.get_submodule(parent_path), leaf, host.base)
        self._hosts = {}

    def owned_parameters(self):
        return {f"{key}.{name}": p for key, delta in self.deltas.items() for name, p in delta.named_parameters()}
