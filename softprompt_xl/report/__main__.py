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

log = logging.getLogger("softprompt_xl")
register_resolvers()


# Settings that change what a report shows: given on the command line, each adds a part to the default name, so that
# such a report (`report.transfer_from=en`: reports/all-transfer_from_en/) never replaces the plain one.
SHOWN = ("transfer_from", "metric", "compare")


def report_name(cfg: DictConfig, experiment: str | None, overrides: list[str] | None = None) -> str:
    """report.name, else the experiment (or "all"), the filters given on the command line (`overrides`, by default
    the app's; not those an experiment implies, such as its backbone), then each of SHOWN given there:
    `transfer_from_en`, `metric_exact_match`, `compare_lp_tp_vs_tp` (`compare_none` for [])."""
    overrides = HydraConfig.get().overrides.task if overrides is None else overrides
    given = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
    parts = [experiment or "all", *(v for k, v in given.items() if k in ("task", "backbone", "data"))]
    for setting in SHOWN:
        value = cfg.report[setting]
        if f"report.{setting}" in given and value is not None:
            shown = ("_vs_".join(map(str, value)) or "none") if setting == "compare" else str(value)
            parts.append(f"{setting}_{shown}")
    return cfg.report.name or "-".join(parts)


def make_report(cfg: DictConfig, experiment: str | None) -> str:
    keep_library_caches_under(cfg.paths)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # "generated new fontManager" is not news to a user
    from softprompt_xl.report.results import select
    from softprompt_xl.report.tables import build
    from softprompt_xl.report.write import write_report

    from softprompt_xl.report.comparisons import annotate
    from softprompt_xl.study.store import Store

    selection = select(cfg, experiment)
    sections, notes = build(selection.results, cfg.report.metric, cfg.report.transfer_from)
    store = Store(cfg.paths.store) if cfg.source == "store" else None  # W&B summaries hold no predictions
    notes += annotate(sections, lambda r: store.read_predictions(r.key) if store and r.key else None, cfg.report)
    name = report_name(cfg, experiment)
    folder = Path(cfg.paths.reports) / name
    if cfg.report.dashboard:  # before the folder is written anew: the W&B report its dashboard was saved as
        from softprompt_xl.report.dashboard import check, previous_push

        check(selection.results)
        pushed = previous_push(folder)
    markdown = write_report(folder, name, selection, sections, notes, float(cfg.report.alpha))
    print(markdown, flush=True)
    log.info("Report written to %s (report.md, and per task CSV, LaTeX and PNG)", folder)
    if cfg.report.wandb or cfg.report.dashboard:  # the dashboard shows the tables of the report's W&B run
        from softprompt_xl.report.wandb_io import log_report

        run = log_report(cfg, name, sections, selection.results, folder,
                         why="report.wandb=true" if cfg.report.wandb else "report.dashboard=true")
        log.info("Report logged to %s", run)
    if cfg.report.dashboard:
        from softprompt_xl.report.dashboard import make_dashboard

        make_dashboard(cfg, name, sections, selection.results, folder, run, pushed)
    return str(folder)


@hydra.main(config_path=CONF_PATH, config_name="report", version_base="1.3")
def main(cfg: DictConfig) -> None:
    experiment = HydraConfig.get().runtime.choices.get("experiment")
    try:
        make_report(cfg, experiment)
    except UserError as err:
        log.error("%s", err)
        sys.exit(1)


if __name__ == "__main__":
    main()
