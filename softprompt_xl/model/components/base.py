"""The component protocol: a trainable piece that attaches to a backbone and saves and loads on its own.

A component declares the parameters it owns; nothing else about it is visible to the training code.
On disk it is a directory with `component.json` (kind, format version, role, hyperparameters; written and read by
model/component_header.py) and `weights.safetensors` (exactly its own parameters), so it can be paired later with
any other component.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from softprompt_xl.errors import UserError
from softprompt_xl.model.component_header import WEIGHTS_FILE, ComponentHeader

ROLES = ("lang", "task")  # also the composition order: [language ; task ; input]


class Component(nn.Module):
    kind: ClassVar[str]
    format_version: ClassVar[int] = 1

    def __init__(self, role: str, name: str, config: dict[str, Any]):
        super().__init__()
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        self.role, self.name, self.config = role, name, dict(config)

    # --- what every kind implements -------------------------------------------------------------
    def attach(self, model: nn.Module, tokenizer: Any, init_text: str | None) -> None:
        """Create the parameters and hook them into `model`; `init_text` may seed them (prompts)."""
        raise NotImplementedError

    def detach(self, model: nn.Module) -> None:
        """Undo `attach`, leaving `model` as it was (used to swap a language component)."""
        raise NotImplementedError

    def owned_parameters(self) -> dict[str, nn.Parameter]:
        """The parameters this component owns, by stable names (the keys of its weights file)."""
        raise NotImplementedError

    # --- optional hooks -------------------------------------------------------------------------
    def input_prefix(self, batch_size: int) -> torch.Tensor | None:
        """Vectors to put before the input embeddings ([batch, n, d]), or None."""
        return None

    @classmethod
    def activate(cls, model: nn.Module, components: list["Component"]) -> None:
        """Make the attached components of this kind act together, in composition order."""

    # --- shared ---------------------------------------------------------------------------------
    @property
    def label(self) -> str:
        """Unique within one model, e.g. `lang_sk`: never one name for every language."""
        return f"{self.role}_{self.name}"

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.owned_parameters().values())

    def save(self, directory: str | Path, meta: dict[str, Any] | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: p.detach().to("cpu").contiguous() for k, p in self.owned_parameters().items()}
        save_file(tensors, str(directory / WEIGHTS_FILE))
        ComponentHeader(kind=self.kind, format_version=self.format_version, role=self.role, name=self.name,
                        config=self.config, num_parameters=self.num_parameters(), meta=meta or {}).write(directory)

    def load_weights(self, directory: str | Path) -> None:
        path = Path(directory) / WEIGHTS_FILE
        try:
            saved = load_file(str(path))
        except SafetensorError as err:  # e.g. cut short by a full disk or an interrupted copy
            raise UserError(f"{path} is damaged ({err}): the component cannot be loaded; train it again, or copy it "
                            "again.") from None
        own = self.owned_parameters()
        if set(saved) != set(own):
            missing, unexpected = sorted(set(own) - set(saved)), sorted(set(saved) - set(own))
            raise UserError(
                f"The {self.kind} weights in {path} do not fit this backbone: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}. Was it trained on another backbone? Retrain it (force=true)."
            )
        with torch.no_grad():
            for key, param in own.items():
                if saved[key].shape != param.shape:
                    raise UserError(
                        f"The {self.kind} weight '{key}' in {path} has shape {tuple(saved[key].shape)}, this backbone "
                        f"needs {tuple(param.shape)}: it was trained on another backbone or configuration. Retrain it."
                    )
                param.copy_(saved[key])

