"""conf/trainer, split in two: the settings the framework reads itself, and everything else, which is passed to
`lightning.Trainer` as it is - any of its arguments (`trainer.accumulate_grad_batches=4`, `+trainer.deterministic=true`)
reaches every stage's Trainer without a change to the code, checked against the Trainer's signature first."""

from __future__ import annotations

import inspect
from typing import Any

from softprompt_xl.config import to_plain
from softprompt_xl.errors import UserError

# Read by the framework, not by Lightning: data loading, what a stage prints, the divergence guard.
FRAMEWORK_SETTINGS = ("num_workers", "progress", "progress_every_s", "divergence")
# Trainer arguments each stage sets itself: its budget, where it logs and checkpoints, how it validates.
SET_BY_THE_STAGE = ("max_steps", "max_epochs", "logger", "callbacks", "plugins", "default_root_dir",
                    "enable_checkpointing", "enable_progress_bar", "enable_model_summary", "num_sanity_val_steps",
                    "val_check_interval", "check_val_every_n_epoch", "use_distributed_sampler")
WHERE_INSTEAD = {"max_steps": "lang_stage.max_steps / task_stage.max_steps",
                 "val_check_interval": "task_stage.val_every_n_steps", "enable_progress_bar": "trainer.progress",
                 "enable_checkpointing": "checkpoint_every_n_steps"}


def trainer_arguments(trainer: Any) -> dict:
    """The `lightning.Trainer` arguments that conf/trainer sets; a UserError names one that is not an argument of
    the Trainer, or one a stage sets itself."""
    import lightning as L

    given = {k: v for k, v in to_plain(trainer).items() if k not in FRAMEWORK_SETTINGS}
    accepted = inspect.signature(L.Trainer.__init__).parameters
    for name in given:
        if name in SET_BY_THE_STAGE:
            instead = WHERE_INSTEAD.get(name)
            raise UserError(f"trainer.{name} is set by each stage itself"
                            + (f": use {instead} instead." if instead else ", so it cannot be configured.")
                            + " Drop it from trainer.")
        if name not in accepted:
            raise UserError(f"trainer.{name} is neither a lightning.Trainer argument nor a setting of the framework "
                            f"({', '.join(FRAMEWORK_SETTINGS)}). Check its spelling against the Trainer's arguments "
                            "(https://lightning.ai/docs/pytorch/stable/common/trainer.html), or drop it.")
    return given
