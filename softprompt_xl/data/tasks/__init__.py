"""Tasks as text to text: how a record becomes an input and a target, what the gold is, how it is scored."""

from __future__ import annotations

from typing import Any

from softprompt_xl.errors import UserError
from softprompt_xl.data.tasks.base import Task
from softprompt_xl.data.tasks.classification import Classification
from softprompt_xl.data.tasks.ner import EntitySpans
from softprompt_xl.data.tasks.qa import QuestionAnswering

# By kind: a task config (conf/task/<name>.yaml) names its kind, so a new classification task is only a YAML file.
KINDS: dict[str, type[Task]] = {cls.kind: cls for cls in (QuestionAnswering, EntitySpans, Classification)}


def get_task(task_cfg: Any) -> Task:
    try:
        cls = KINDS[task_cfg.kind]
    except KeyError:
        raise UserError(f"Unknown task kind '{task_cfg.kind}' in task '{task_cfg.name}'. "
                        f"Valid kinds: {', '.join(sorted(KINDS))}.") from None
    return cls(task_cfg)
