"""Experiment tracking for one training stage: a W&B run (offline by default), a CSV log, or nothing.

The W&B run is always finished - with a failure exit code if the stage raised - so the next job of a
multirun never lands in it.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .config import stable_hash, to_plain
from .errors import UserError

log = logging.getLogger(__name__)


def wandb_environment(paths: Any) -> None:
    """Keep every file W&B writes (runs, cache, settings, artifacts) under paths.wandb unless the user chose."""
    base = Path(paths.wandb)
    for var, sub in (("WANDB_DIR", ""), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"),
                     ("WANDB_DATA_DIR", "data"), ("WANDB_ARTIFACT_DIR", "artifacts")):
        os.environ.setdefault(var, str(base / sub))
    base.mkdir(parents=True, exist_ok=True)


@contextmanager
def stage_logger(cfg: Any, job_type: str, name: str, key: str, output_dir: Path, tags: list[str]) -> Iterator[Any]:
    """A Lightning logger for one stage (or False for none), closed properly whatever happens. `key` is the
    store key of what the stage produces: a stage resumed after a kill continues the same W&B run. Of the
    processes of a multi-process run, rank 0 logs."""
    from .distributed import is_zero

    if not is_zero():
        yield False
    elif "wandb" in cfg.logger:
        yield from _wandb(cfg, job_type, name, key, tags)
    elif "csv" in cfg.logger:
        from lightning.pytorch.loggers import CSVLogger

        yield CSVLogger(output_dir, name="csv", version=job_type)
    else:
        yield False


def _wandb(cfg: Any, job_type: str, name: str, key: str, tags: list[str]) -> Iterator[Any]:
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    settings = cfg.logger.wandb
    wandb_environment(cfg.paths)
    try:
        run = wandb.init(
            id=f"{job_type}-{stable_hash([job_type, key], 16)}", resume="allow",
            project=settings.project, entity=settings.entity, group=settings.group, name=name, job_type=job_type,
            mode=settings.mode, dir=cfg.paths.wandb, tags=list(settings.tags) + tags, config=to_plain(cfg),
        )
    except wandb.errors.UsageError as err:  # e.g. online mode without a login
        raise UserError(
            f"W&B could not start in {settings.mode} mode: {err}. Log in with `wandb login` (or set WANDB_API_KEY) "
            "for online mode, or run with logger.wandb.mode=offline (the default) and upload later with `wandb sync`."
        ) from None
    logger = WandbLogger(experiment=run)
    exit_code = 1
    try:
        yield logger
        exit_code = 0
    finally:
        wandb.finish(exit_code=exit_code)


def log_summary(logger: Any, values: dict[str, Any]) -> None:
    """Final numbers into the W&B run summary (the charts keep the history)."""
    from lightning.pytorch.loggers import WandbLogger

    if isinstance(logger, WandbLogger):
        logger.experiment.summary.update(values)
