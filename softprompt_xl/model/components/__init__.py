"""Language and task components, by kind. `component_class` is the only way in: it rejects unknown kinds."""

from __future__ import annotations

from softprompt_xl.errors import UserError
from softprompt_xl.model.components.adapter import BottleneckAdapter
from softprompt_xl.model.components.base import ROLES, Component
from softprompt_xl.model.components.lora import LoRA
from softprompt_xl.model.components.prompt import SoftPrompt

REGISTRY: dict[str, type[Component]] = {cls.kind: cls for cls in (SoftPrompt, BottleneckAdapter, LoRA)}


def component_class(kind: str) -> type[Component]:
    try:
        return REGISTRY[kind]
    except KeyError:
        raise UserError(f"Unknown component kind '{kind}'. Valid kinds: {', '.join(sorted(REGISTRY))}.") from None


__all__ = ["ROLES", "REGISTRY", "Component", "component_class"]
