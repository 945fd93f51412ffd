"""`report.wandb=true`: the report's tables as W&B Tables and its figures as images, in one run of job_type
`report` placed in the group of the sweep its results come from, so the sweep's runs and its report sit together.
The run's id is made of the project, group and report name: the same report logged again updates its run (W&B
resumes it), and the dashboard (report/dashboard.py) shows its tables by that run's name."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from softprompt_xl.config import stable_hash
from softprompt_xl.errors import UserError
from softprompt_xl.pipeline.tracking import wandb_environment
from softprompt_xl.report.backbones import SideBySide
from softprompt_xl.report.render import flat
from softprompt_xl.report.report_spec import ReportSpec
from softprompt_xl.report.tables import Section
from softprompt_xl.pipeline.records import Result

log = logging.getLogger(__name__)


@dataclass
class ReportRun:
    """The W&B run a report is logged to: one per project, group and report name, so that logging the same report
    again (after more runs finished) updates that run instead of adding another beside it."""

    project: str
    entity: str | None
    group: str
    name: str  # its display name, report-<report name>
    run_id: str
    mode: str

    def __str__(self) -> str:
        return f"W&B project {self.project}, group {self.group} ({self.mode})"


def report_run(spec: ReportSpec, results: list[Result], why: str = "report.wandb=true") -> ReportRun:
    """Where the report of `results` goes: the project and group of the sweep they come from (report.group chooses)."""
    settings, name = spec.wandb, spec.name
    if settings is None:
        raise UserError(f"{why} logs to the W&B project named in logger.wandb, which was switched off "
                        f"(logger=csv or logger=none). Drop that override, or leave {why.split('=')[0]}=false.")
    runs = [r.wandb for r in results if r.wandb]
    groups, projects = sorted({r["group"] for r in runs}), sorted({r["project"] for r in runs})
    group = spec.settings.group or (groups[0] if len(groups) == 1 else f"report-{name}")
    if not spec.settings.group and len(groups) != 1:
        log.info("The results come from %s W&B group(s); logging the report to group '%s' (report.group=NAME "
                 "chooses)", len(groups) or "no", group)
    project = projects[0] if len(projects) == 1 else settings.project
    return ReportRun(project=project, entity=settings.entity, group=group, name=f"report-{name}", mode=settings.mode,
                     run_id=f"report-{stable_hash([settings.entity, project, group, name], 16)}")


def log_report(spec: ReportSpec, sections: list[Section], results: list[Result], folder: Path,
               why: str = "report.wandb=true", across: list[SideBySide] = ()) -> ReportRun:
    """Log the report (`across`: its side-by-side tables of several backbones); returns the run it went to."""
    where = report_run(spec, results, why)
    project, group, settings = where.project, where.group, spec.wandb
    wandb_environment(spec.paths)
    import wandb

    try:
        run = wandb.init(id=where.run_id, resume="allow", project=project, entity=settings.entity, group=group,
                         job_type="report", name=where.name,
                         mode=settings.mode, dir=spec.paths.wandb, tags=["report", *sorted({s.task for s in sections})],
                         config={"report": OmegaConf.to_container(spec.settings), "source": spec.source,
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
        for side in across:
            columns, rows = flat(side.table)
            run.log({side.table.slug: wandb.Table(columns=columns, data=rows, allow_mixed_types=True)})
        run.summary["report_dir"] = str(folder)
    finally:
        run.finish()
    return where
