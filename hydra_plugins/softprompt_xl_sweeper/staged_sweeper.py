"""The sweep in stages: plan it (softprompt_xl.pipeline.plan), then launch the missing language components as one
batch of jobs and the unfinished runs as the next (softprompt_xl.pipeline.sweep, which the tests drive in-process),
through whatever launcher is configured (local, joblib, submitit/SLURM). No task job then waits for a language
component another job is training, and none is launched whose language component failed in stage 1 (diverged,
say): it is recorded as failed instead, without training that component again, and the sweep's summary lists it;
the next run of the sweep tries the component again."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any, List, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from omegaconf import OmegaConf

log = logging.getLogger("softprompt_xl")


class StagedSweeper(BasicSweeper):
    def sweep(self, arguments: List[str]) -> Any:
        """The sweep; a disk that fills up outside a job (Hydra writing a job's directory, the sweep's own files) is
        said in one paragraph, as a job says it, and ends the sweep with exit code 1."""
        from softprompt_xl.runtime.atomic import disk_full

        try:
            return self._sweep(arguments)
        except Exception as err:
            if (full := disk_full(err)) is None:
                raise
            logging.raiseExceptions = False  # the log files are on that disk too: no traceback for each line
            log.error("%s", full.explain(self.config.paths))
            sys.exit(1)

    def _sweep(self, arguments: List[str]) -> Any:
        from softprompt_xl.errors import UserError
        from softprompt_xl.pipeline.plan import plan_sweep
        from softprompt_xl.pipeline.sweep import launch_in_stages, sweep_jobs

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        jobs = sweep_jobs(arguments, self.params, self.hydra_context.config_loader)
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
        return launch_in_stages(plan, self._launch, _failure, self._record_not_run)

    def _launch(self, job_type: str, jobs: Sequence[Any], index: int) -> Any:
        """One batch of jobs of one type; a launcher of ours names the batch by it (e.g. SLURM job names)."""
        self.launcher.job_type = job_type
        return self.launcher.launch([list(job.overrides) for job in jobs], initial_job_idx=index)

    def _record_not_run(self, job: Any, idx: int, error: str) -> None:
        from omegaconf import open_dict

        from softprompt_xl.pipeline import records
        from softprompt_xl.pipeline.records import RESULT_FILE, JobFailure, job_identity

        overrides = list(job.overrides)
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = idx
        path = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir) / RESULT_FILE
        records.write(path, JobFailure.failed(job_identity(cfg), error, overrides=" ".join(overrides)))


def _failure(returned: Any) -> str | None:
    """Why a stage-1 job failed, or None if it did not (an interrupted one is not failed: its run resumes it)."""
    from hydra.core.utils import JobStatus

    value = returned._return_value  # `.return_value` re-raises the exception of a failed job
    if returned.status == JobStatus.FAILED:
        return f"{type(value).__name__}: {value}"
    if isinstance(value, dict) and value.get("status") == "failed":
        return value.get("error", "failed")
    return None
