"""One report, typed: read once from the report's composed config (conf/report.yaml) and what selecting the results,
logging to W&B and the dashboard read instead of the config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

# Settings that change what a report shows: given on the command line, each adds a part to the default name, so that
# such a report (`report.transfer_from=en`: reports/all-transfer_from_en/) never replaces the plain one.
SHOWN = ("transfer_from", "metric", "compare")


@dataclass(frozen=True)
class ReportSpec:
    name: str  # its directory under paths.reports, and its W&B run's
    experiment: str | None  # only the runs this study plans
    filters: dict[str, str]  # task / backbone / data given: only results of these
    source: str  # store or wandb
    settings: Any  # report: what it shows, its intervals, W&B and the dashboard
    paths: Any
    wandb: Any | None  # logger.wandb: the project of source=wandb and report.wandb (None: logging switched off)

    @classmethod
    def of(cls, cfg: Any, experiment: str | None, overrides: list[str]) -> ReportSpec:
        """`cfg` composed from the command line's `overrides`, `experiment` the experiment it chose (if any)."""
        chosen = {"task": OmegaConf.select(cfg, "task.name"), "backbone": OmegaConf.select(cfg, "backbone.id"),
                  "data": OmegaConf.select(cfg, "data.name")}
        return cls(name=_name(cfg.report, experiment, overrides), experiment=experiment,
                   filters={k: v for k, v in chosen.items() if v}, source=cfg.source, settings=cfg.report,
                   paths=cfg.paths, wandb=cfg.logger.get("wandb"))


def _name(report: Any, experiment: str | None, overrides: list[str]) -> str:
    """report.name, else the experiment (or "all"), the filters given on the command line (not those an experiment
    implies, such as its backbone), then each of SHOWN given there: `transfer_from_en`, `metric_exact_match`,
    `compare_lp_tp_vs_tp` (`compare_none` for [])."""
    given = dict(o.lstrip("+~").split("=", 1) for o in overrides if "=" in o)
    parts = [experiment or "all", *(v for k, v in given.items() if k in ("task", "backbone", "data"))]
    for setting in SHOWN:
        value = report[setting]
        if f"report.{setting}" in given and value is not None:
            shown = ("_vs_".join(map(str, value)) or "none") if setting == "compare" else str(value)
            parts.append(f"{setting}_{shown}")
    return report.name or "-".join(parts)
