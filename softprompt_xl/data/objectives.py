"""The stage-1 objectives by name: what a language component learns its language by. A backbone's config names its
family's (`lang_objective`: span_corruption for T5, next_token for decoder-only models); `lang_stage.objective`
overrides it."""

from __future__ import annotations

from typing import Any

from softprompt_xl.data.next_token import NextTokenObjective
from softprompt_xl.data.span_corruption import SpanCorruptionCollator
from softprompt_xl.errors import UserError

OBJECTIVES = {"span_corruption": "span corruption", "next_token": "next-token prediction"}  # name -> in words


def check_objective(name: Any) -> None:
    if name not in OBJECTIVES:
        raise UserError(f"lang_stage.objective={name} is not a stage-1 objective: use span_corruption (T5's, the "
                        "paper's) or next_token (decoder-only models'), or null for the backbone's own "
                        "(backbone.lang_objective).")


def stage1_objective(name: str, tokenizer: Any, spec: Any, seed: int, stream: int = 0):
    """The objective `name` on chunks of `spec.input_length` input tokens (span corruption: `spec`'s noise_density
    and mean_noise_span_length too; its masks from `seed` and `stream`, a process's rank)."""
    check_objective(name)
    if name == "next_token":
        return NextTokenObjective(tokenizer, int(spec.input_length))
    return SpanCorruptionCollator(tokenizer, int(spec.input_length), float(spec.noise_density),
                                  float(spec.mean_noise_span_length), seed, stream=stream)


def objective_name(lang_stage: Any, backbone: Any) -> str:
    """The objective a language stage trains by: its own setting, else the backbone's family's."""
    return lang_stage.get("objective") or backbone.get("lang_objective") or "span_corruption"
