"""Language and task components, by kind. `component_class` is the only way in: it rejects unknown kinds."""

from __future__ import annotations

from ..errors import UserError
from .adapter import BottleneckAdapter
from .base import ROLES, Component, read_header
from .lora import LoRA
from .prompt import SoftPrompt

REGISTRY: dict[str, type[Component]] = {cls.kind: cls for cls in (SoftPrompt, BottleneckAdapter, LoRA)}


def component_class(kind: str) -> type[Component]:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise UserError(f"Unknown component kind '{kind}'. Valid kinds: {', '.join(sorted(REGISTRY))}.") from None


__all__ = ["ROLES", "REGISTRY", "Component", "component_class", "read_header"]
