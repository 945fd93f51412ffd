"""`report.wandb=true`: the report's tables as W&B Tables and its figures as images, in one run of job_type
`report` placed in the group of the sweep its results come from, so the sweep's runs and its report sit together."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from softprompt_xl.errors import UserError
from softprompt_xl.study.tracking import wandb_environment
from softprompt_xl.report.render import flat
from softprompt_xl.report.tables import Section
from softprompt_xl.study.records import Result

log = logging.getLogger(__name__)


def log_report(cfg: Any, name: str, sections: list[Section], results: list[Result], folder: Path) -> str:
    """Log the report; returns where it went, in words."""
    settings = cfg.logger.get("wandb")
    if settings is None:
        raise UserError("report.wandb=true logs to the W&B project named in logger.wandb, which was switched off "
                        "(logger=csv or logger=none). Drop that override, or leave report.wandb=false.")
    runs = [r.wandb for r in results if r.wandb]
    groups, projects = sorted({r["group"] for r in runs}), sorted({r["project"] for r in runs})
    group = cfg.report.group or (groups[0] if len(groups) == 1 else f"report-{name}")
    if not cfg.report.group and len(groups) != 1:
        log.info("The results come from %s W&B group(s); logging the report to group '%s' (report.group=NAME "
                 "chooses)", len(groups) or "no", group)
    project = projects[0] if len(projects) == 1 else settings.project
    wandb_environment(cfg.paths)
    import wandb

    try:
        run = wandb.init(project=project, entity=settings.entity, group=group, job_type="report", name=f"report-{name}",
                         mode=settings.mode, dir=cfg.paths.wandb, tags=["report", *sorted({s.task for s in sections})],
                         config={"report": OmegaConf.to_container(cfg.report), "source": cfg.source,
                                 "results": len(results)})
    except wandb.errors.UsageError as err:
        raise UserError(f"W&B could not start in {settings.mode} mode: {err}. Log in with `wandb login` (or set "
                        "WANDB_API_KEY) for online mode, or use logger.wandb.mode=offline and `wandb sync` later.") from None
    try:
        for section in sections:
            for table in [section.scores, section.cost, *section.transfer, *(c.table for c in section.comparisons)]:
                columns, rows = flat(table)
                # mixed: a parameter count is a number, or a range as text when runs differ
                run.log({table.slug: wandb.Table(columns=columns, data=rows, allow_mixed_types=True)})
            for png in sorted((folder / section.slug).glob("*.png")):
                run.log({f"{section.slug}/{png.stem}-figure": wandb.Image(str(png))})
        run.summary["report_dir"] = str(folder)
    finally:
        run.finish()
    return f"W&B project {project}, group {group} ({settings.mode})"
