"""The sweep in stages: plan it (softprompt_xl.sweep_plan), then launch the missing language components as one
batch of jobs and the unfinished runs as the next, through whatever launcher is configured (local, joblib,
submitit/SLURM). No task job then waits for a language component another job is training."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, List

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

log = logging.getLogger("softprompt_xl")


class StagedSweeper(BasicSweeper):
    def sweep(self, arguments: List[str]) -> Any:
        from softprompt_xl.errors import UserError
        from softprompt_xl.sweep_plan import plan_sweep

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        overrides = parser.parse_overrides(self._parse_config() + list(arguments))
        jobs = [job for batch in self.split_arguments(overrides, None) for job in batch]
        self.overrides, self.batch_index = [], 0  # the batches are ours, not BasicSweeper's

        def compose(job: list[str]):
            return self.hydra_context.config_loader.load_sweep_config(self.config, job)

        try:
            plan = plan_sweep(jobs, compose)
        except UserError as err:  # a sweep-wide mistake: say it once, before any job repeats it
            log.error("%s", err)
            sys.exit(2)
        log.info("%s", plan.describe())
        if self.config.get("dry_run"):
            return []

        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        returns, index = [], 0
        for stage, batch in (("language components", plan.lang_jobs), ("runs", plan.todo)):
            if not batch:
                continue
            log.info("Launching %d job(s): %s", len(batch), stage)
            results = self.launcher.launch(batch, initial_job_idx=index)
            index += len(batch)
            returns.append(results)
        return returns
