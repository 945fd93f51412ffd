"""Experiment tracking for one training stage: a W&B run (offline by default), a CSV log, or nothing.

The W&B run is always finished - with a failure exit code if the stage raised - so the next job of a
multirun never lands in it. W&B conventions (README "Weights & Biases"): one project per study, one group per
sweep, `job_type` = the stage (lang / task / eval), tags for combo, language, task and backbone, a flat `run`
block in the config to filter and group by, and each trained component as an artifact named by its store key.
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from softprompt_xl.config import stable_hash, to_plain
from softprompt_xl.errors import UserError
from softprompt_xl.model.component_header import ComponentHeader
from softprompt_xl.pipeline.run_spec import LangView, RunSpec

log = logging.getLogger(__name__)


def wandb_environment(paths: Any) -> None:
    """Keep every file W&B writes (runs, cache, settings, artifacts) under paths.wandb unless the user chose."""
    base = Path(paths.wandb)
    for var, sub in (("WANDB_DIR", ""), ("WANDB_CACHE_DIR", "cache"), ("WANDB_CONFIG_DIR", "config"),
                     ("WANDB_DATA_DIR", "data"), ("WANDB_ARTIFACT_DIR", "artifacts")):
        os.environ.setdefault(var, str(base / sub))
    base.mkdir(parents=True, exist_ok=True)


@contextmanager
def stage_logger(run: RunSpec, job_type: str, name: str, key: str, output_dir: Path, tags: list[str],
                 lang: LangView | None = None) -> Iterator[Any]:
    """A Lightning logger for one stage of `run` (or False for none), closed properly whatever happens. `key` is
    the store key of what the stage produces: a stage resumed after a kill continues the same W&B run. `lang`: the
    language of a stage-1 stage (another of the run's evaluation languages, perhaps). Of the processes of a
    multi-process run, rank 0 logs."""
    from softprompt_xl.runtime.distributed import is_zero

    if not is_zero():
        yield False
    elif "wandb" in run.logger:
        yield from _wandb(run, job_type, name, key, tags, lang or run.lang)
    elif "csv" in run.logger:
        from lightning.pytorch.loggers import CSVLogger

        yield CSVLogger(output_dir, name="csv", version=job_type)
    else:
        yield False


def _wandb(run: RunSpec, job_type: str, name: str, key: str, tags: list[str], lang: LangView) -> Iterator[Any]:
    import wandb
    from lightning.pytorch.loggers import WandbLogger

    settings = run.logger.wandb
    wandb_environment(run.paths)
    # The nested config has combo.name, lang.code, task.name; `run` says the same in one flat block (null where a
    # stage has none: a language component belongs to no combo or task), plus the store key of what it makes.
    identity = {"stage": job_type, "combo": None if job_type == "lang" else run.combo.name, "lang": lang.code,
                "task": None if job_type == "lang" else run.task.name, "backbone": run.backbone.id, "seed": run.seed,
                "store_key": key}
    config = run.wandb_config
    if lang.code != run.lang.code:  # the config as the language's own: what its stage 1 read
        config = {**config, "lang": to_plain(lang.conf), "lang_stage": to_plain(lang.lang_stage),
                  "data": {**config["data"], "wiki": to_plain(lang.corpus), "files": None}}
    try:
        wandb_run = wandb.init(
            id=f"{job_type}-{stable_hash([job_type, key], 16)}", resume="allow",
            project=settings.project, entity=settings.entity, group=settings.group, name=name, job_type=job_type,
            mode=settings.mode, dir=run.paths.wandb, tags=list(dict.fromkeys([*settings.tags, *tags])),
            config={**config, "run": identity},
        )
    except wandb.errors.UsageError as err:  # e.g. online mode without a login
        raise UserError(
            f"W&B could not start in {settings.mode} mode: {err}. Log in with `wandb login` (or set WANDB_API_KEY) "
            "for online mode, or run with logger.wandb.mode=offline (the default) and upload later with `wandb sync`."
        ) from None
    logger = WandbLogger(experiment=wandb_run)
    exit_code = 1
    try:
        yield logger
        exit_code = 0
    finally:
        wandb.finish(exit_code=exit_code)


def _run(logger: Any) -> Any:
    """The W&B run behind a stage logger, or None when the stage logs elsewhere (CSV) or nowhere."""
    from lightning.pytorch.loggers import WandbLogger

    return logger.experiment if isinstance(logger, WandbLogger) else None


def log_summary(logger: Any, values: dict[str, Any]) -> None:
    """Final numbers into the W&B run summary (the charts keep the history)."""
    if (run := _run(logger)) is not None:
        run.summary.update(values)


def run_info(logger: Any) -> dict | None:
    """Where a stage's W&B run is (recorded in the result, so the report can log to the sweep's group)."""
    if (run := _run(logger)) is None:
        return None
    return {"project": run.project, "group": run.group, "run_id": run.id, "mode": "offline" if run.offline else "online"}


def _artifact(path: Path) -> Any:
    """A stored component as a W&B artifact: named by its store key, typed by its role, its files as stored."""
    import wandb

    header = ComponentHeader.read(path)
    artifact = wandb.Artifact(path.name, type=f"{header.role}-component", metadata={
        "store_key": path.name, "role": header.role, "kind": header.kind, "name": header.name,
        "num_parameters": header.num_parameters, "spec": header.meta.get("spec"),
    })
    artifact.add_dir(str(path))
    return artifact


def log_component(logger: Any, path: Path) -> None:
    """Record the component the stage trained (now in the store at `path`) as the run's output artifact."""
    if (run := _run(logger)) is not None:
        run.log_artifact(_artifact(path))


def use_components(logger: Any, paths: list[Path]) -> None:
    """Declare the stored components a stage builds on as its inputs, so W&B shows the lineage (a task run uses its
    language component). The artifact is rebuilt from the store: the same files give the same digest, so W&B
    links it to the version the producing run logged. W&B refuses `use_artifact` offline; an offline run keeps
    the keys in its config and in its task component's metadata (spec.lang_component) instead."""
    run = _run(logger)
    if run is None or run.offline:
        return
    for path in paths:
        run.use_artifact(_artifact(path))
