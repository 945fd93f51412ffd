"""`python -m softprompt_xl.report paths.root=DIR [task=qa] [backbone=...] [data=...] [experiment=...]`: the report
of the finished results, written to paths.reports/<name>/ and printed as Markdown. A Hydra app on conf/report.yaml,
whose filters are the training config's own groups, so a value is checked (and listed) as in training."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from softprompt_xl.config import CONF_PATH, keep_library_caches_under, register_resolvers
from softprompt_xl.errors import UserError
from softprompt_xl.report.report_spec import ReportSpec

log = logging.getLogger("softprompt_xl")
register_resolvers()


def make_report(spec: ReportSpec) -> str:
    keep_library_caches_under(spec.paths)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # "generated new fontManager" is not news to a user
    from softprompt_xl.report.results import select
    from softprompt_xl.report.tables import build
    from softprompt_xl.report.write import write_report

    from softprompt_xl.report.backbones import side_by_side
    from softprompt_xl.report.comparisons import annotate
    from softprompt_xl.pipeline.storage import Store

    settings = spec.settings
    selection = select(spec)
    sections, notes = build(selection.results, settings.metric, settings.transfer_from)
    store = Store(spec.paths.store) if spec.source == "store" else None  # W&B summaries hold no predictions
    notes += annotate(sections, lambda r: store.read_predictions(r.key) if store and r.key else None, settings)
    across = side_by_side(sections)  # holds the sections' own cells: after annotate, they carry their intervals
    folder = Path(spec.paths.reports) / spec.name
    if settings.dashboard:  # before the folder is written anew: the W&B report its dashboard was saved as
        from softprompt_xl.report.dashboard import check, previous_push

        check(selection.results)
        pushed = previous_push(folder)
    markdown = write_report(folder, spec.name, selection, sections, notes, float(settings.alpha), across)
    print(markdown, flush=True)
    log.info("Report written to %s (report.md, and per task CSV, LaTeX and PNG)", folder)
    if settings.wandb or settings.dashboard:  # the dashboard shows the tables of the report's W&B run
        from softprompt_xl.report.wandb_io import log_report

        run = log_report(spec, sections, selection.results, folder,
                         why="report.wandb=true" if settings.wandb else "report.dashboard=true", across=across)
        log.info("Report logged to %s", run)
    if settings.dashboard:
        from softprompt_xl.report.dashboard import make_dashboard

        make_dashboard(spec, sections, selection.results, folder, run, pushed)
    return str(folder)


@hydra.main(config_path=CONF_PATH, config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    try:
        make_report(ReportSpec.of(cfg, hydra_cfg.runtime.choices.get("experiment"), list(hydra_cfg.overrides.task)))
    except UserError as err:
        log.error("%s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()
