"""Which results a report covers: the complete results of the store (or of a W&B project), narrowed by the
filters; and what is not there: the runs an experiment plans that have no result, and the jobs that failed or
were interrupted (their result.json in the job directories under paths.outputs)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from softprompt_xl.config import stable_hash
from softprompt_xl.errors import UserError
from softprompt_xl.report.report_spec import ReportSpec
from softprompt_xl.pipeline import records
from softprompt_xl.pipeline.records import RESULT_FILE, JobFailure, Result, cfg_run_name
from softprompt_xl.pipeline.storage import Store

log = logging.getLogger(__name__)
RUN_EXAMPLE = "`python -m softprompt_xl.train +combo=lp_ta,ta lang=en,sk -m`"


@dataclass
class Selection:
    results: list[Result]
    filters: dict[str, str]
    source: str  # where the results were read, in words
    missing: list[str] = field(default_factory=list)  # runs an experiment plans that have no result
    failed: list[str] = field(default_factory=list)  # failed or interrupted jobs without a later complete result


def _field(result: Result, name: str) -> Any:
    if name == "data":  # only the comparison spec records the data choice
        return ((result.spec.get("shared") or {}).get("data") or {}).get("name")
    return getattr(result, name)


def select(spec: ReportSpec) -> Selection:
    experiment = spec.experiment
    if spec.source == "store":
        results, where = Store(spec.paths.store).results(), f"store {spec.paths.store}"
    elif spec.source == "wandb":
        results, where = read_wandb(spec.wandb, spec.paths)
    else:
        raise UserError(f"Unknown source '{spec.source}': use source=store (the results under paths.store, the default) "
                        "or source=wandb (the eval runs of the W&B project logger.wandb.project; online only).")
    if not results:
        raise UserError(f"The {where} holds no finished results, so there is nothing to report. Run a sweep first, "
                        f"e.g. {RUN_EXAMPLE}, or point the report at the root that holds the store with paths.root=DIR.")
    chosen = spec.filters
    kept = [r for r in results if all(_field(r, k) == v for k, v in chosen.items())]
    selection = Selection(kept, chosen, where)
    if experiment and kept:  # (composing a study's runs takes seconds: not when the filters left nothing)
        planned = experiment_runs(experiment, chosen.get("task"))
        ids = {p["id"] for p in planned}
        selection.results = [r for r in kept if _run_id(r.spec, r.lang, r.task) in ids]
        present = {_run_id(r.spec, r.lang, r.task) for r in selection.results}
        selection.missing = [p["name"] for p in planned if p["id"] not in present]
    if not selection.results:
        held = {k: sorted({str(_field(r, k)) for r in results}) for k in ("task", "backbone", "data")}
        wanted = " ".join(f"{k}={v}" for k, v in chosen.items()) + (f" experiment={experiment}" if experiment else "")
        raise UserError(f"No finished result in the {where} matches {wanted.strip()}: it holds tasks "
                        f"{', '.join(held['task'])}, backbones {', '.join(held['backbone'])}, data "
                        f"{', '.join(held['data'])}. Change or drop the filter, or run those runs first "
                        "(the same filters on `python -m softprompt_xl.train`).")
    if spec.source == "store":
        selection.failed = failed_jobs(Path(spec.paths.outputs), results, chosen,
                                       selection.missing if experiment else None)
    return selection


def _run_id(spec: dict, lang: str, task: str) -> str:
    """What identifies a run across seeds and evaluation languages: its comparison spec, language and task."""
    return stable_hash([spec, lang, task])


def experiment_runs(experiment: str, task: str | None = None) -> list[dict]:
    """The runs `experiment=<name>` plans (of `task` only, if given): its sweeper parameters expanded as the sweep
    expands them, each job composed from the training config, so the report knows exactly which results belong to
    it, whatever their seed."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    from softprompt_xl.pipeline.keys import comparison_spec
    from softprompt_xl.pipeline.run_spec import RunSpec
    from softprompt_xl.pipeline.sweep import sweep_jobs

    hydra_cfg = HydraConfig.get()
    params = OmegaConf.to_container(hydra_cfg.sweeper.params or {})
    # The report's own paths.* overrides apply to the planned runs too (a relative path or another root).
    base = [f"experiment={experiment}", *(o for o in hydra_cfg.overrides.task if o.startswith("paths."))]
    jobs = [job for job in sweep_jobs([], params)
            if task is None or f"task={task}" in job or not any(o.startswith("task=") for o in job)]
    log.info("experiment=%s plans %d run(s); composing them to match the store's results", experiment, len(jobs))
    planned = []
    for job in jobs:
        run = compose("train", overrides=base + job)
        if task is not None and run.task.name != task:
            continue
        spec = comparison_spec(RunSpec.of(run))
        planned.append({"id": _run_id(json.loads(json.dumps(spec)), run.lang.code, run.task.name),
                        "name": cfg_run_name(run, " ")})
    return planned


def failed_jobs(outputs: Path, results: list[Result], chosen: dict[str, str], only: list[str] | None) -> list[str]:
    """Jobs whose result.json says failed or interrupted, unless a later run of the same one completed; with
    `only` (an experiment's missing runs), just those."""
    done = {(r.combo, r.lang, r.task, r.backbone, r.seed) for r in results}
    found = []
    for path in sorted(outputs.rglob(RESULT_FILE)) if outputs.exists() else []:
        job = records.read(path)
        if not isinstance(job, JobFailure) or any(getattr(job, k) != v for k, v in chosen.items() if k != "data"):
            continue
        if (job.combo, job.lang, job.task, job.backbone, job.seed) in done:
            continue
        name = job.name(" ")
        if only is not None and name not in only:
            continue
        advice = "resumable: run the same command again" if job.status == "interrupted" else job.error
        found.append(f"{name} (seed {job.seed}, {job.backbone}): {job.status} - {advice} [{path.parent}]")
    return found


def read_wandb(settings: Any, paths: Any) -> tuple[list[Result], str]:
    """The results recorded in the summaries of the eval runs of the project logger.wandb (`settings`) names (the
    same records the store holds)."""
    from softprompt_xl.pipeline.tracking import wandb_environment

    if settings is None:
        raise UserError("source=wandb reads the W&B project named in logger.wandb; it was switched off (logger=csv or "
                        "logger=none). Drop that override, or read the local store (source=store, the default).")
    project = f"{settings.entity}/{settings.project}" if settings.entity else settings.project
    advice = (f"source=wandb reads results online: on a machine with network, log in (`wandb login` or WANDB_API_KEY) "
              f"and check logger.wandb.project / logger.wandb.entity (now '{project}'); or read the local store where "
              "it is (source=store, the default; paths.root=DIR), after uploading offline runs with `wandb sync`.")
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        raise UserError(f"WANDB_MODE={os.environ['WANDB_MODE']} keeps W&B offline, but {advice}")
    wandb_environment(paths)
    import wandb

    try:
        runs = list(wandb.Api(timeout=30).runs(project, filters={"jobType": "eval"}))
    except Exception as err:  # noqa: BLE001 - no login, no network, no such project: all end in the same advice
        raise UserError(f"Could not read the runs of the W&B project '{project}' ({type(err).__name__}: "
                        f"{str(err).splitlines()[0] if str(err) else ''}). {advice}") from None
    results = []
    for run in runs:
        try:
            results.append(records.from_json(json.loads(run.summary.get("result"))))
        except (TypeError, ValueError):  # no result in the summary (a run that failed), or not one this reads
            continue
    return [r for r in results if isinstance(r, Result)], f"W&B project {project}"
