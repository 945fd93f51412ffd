"""Tasks as text to text: how a record becomes an input and a target, what the gold is, how it is scored."""

from __future__ import annotations

from typing import Any

from ...errors import UserError
from .base import Task
from .qa import QuestionAnswering

TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (QuestionAnswering,)}


def get_task(task_cfg: Any) -> Task:
    try:
        cls = TASKS[task_cfg.name]
    except KeyError:
        raise UserError(f"Unknown task '{task_cfg.name}'. Valid tasks: {', '.join(sorted(TASKS))}.") from None
    return cls(task_cfg)
