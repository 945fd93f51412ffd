"""The launchers behind `hydra/launcher=slurm` and `hydra/launcher=local_parallel` (conf/hydra/launcher/):
hydra-submitit-launcher's, with what a sweep of many jobs needs on top.

- Every job is waited for. Upstream raises at the first job that ended without a result (cancelled, killed,
  out of memory, not requeued after too many time-outs), leaving the sweep's other jobs and its later stage
  behind; here such a job is recorded as failed in its own result.json (with the scheduler's state and its
  log) and the sweep goes on, to end with the list of failed jobs and exit code 1 (train.ReportFailedJobs).
- `slurm` first checks that sbatch, srun and sacct work here, and says what to do when they do not: without
  job accounting sacct cannot tell that a killed job is gone, and the sweep would wait for it forever.
- `local_parallel` runs at most `max_parallel` jobs at a time (submitit's local executor starts them all), each
  with its share of the cores (softprompt_xl/runtime/cluster.py).

A requeued SLURM job (pre-timeout signal, preemption) runs the same pickled call again: same overrides, same
job directory, same store keys, so it resumes from its checkpoint (softprompt_xl/runtime/cluster.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator, Sequence

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
from hydra_plugins.hydra_submitit_launcher.submitit_launcher import BaseSubmititLauncher
from omegaconf import OmegaConf, open_dict

log = logging.getLogger("softprompt_xl")


class _WaitForEveryJob(BaseSubmititLauncher):
    job_type: str | None = None  # of the batch being launched: the staged sweeper sets it (softprompt_xl.pipeline.plan)

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        assert self.config is not None and len(job_overrides) > 0
        self.check_environment()
        executor = self._executor(self.job_type)
        log.info("Submitit '%s' sweep output dir: %s", self._EXECUTOR, self.config.hydra.sweep.dir)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        calls = []
        for idx, overrides in enumerate(job_overrides, initial_job_idx):
            log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
            calls.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
        jobs = self.submit(executor, calls)
        return [self._outcome(job, call[0], call[2]) for job, call in zip(jobs, calls)]

    def check_environment(self) -> None:
        """Stop with a clear message before submitting anything if the scheduler cannot be used from here."""

    def submit(self, executor: Any, calls: list[tuple]) -> list:
        raise NotImplementedError

    def _executor(self, job_type: str | None) -> Any:
        import submitit

        from softprompt_xl.pipeline.plan import LangComponentJob

        params = dict(self.params)
        init = {"folder": params.pop("submitit_folder")}
        if "max_num_timeout" in params:
            init[f"{self._EXECUTOR}_max_num_timeout"] = params.pop("max_num_timeout")
        if job_type == LangComponentJob.TYPE and params.get("name"):  # tells the sweep's stages apart in squeue
            params["name"] = f"{params['name']}-lang"
        executor = submitit.AutoExecutor(cluster=self._EXECUTOR, **init)
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        executor.update_parameters(**{k if k in shared else f"{self._EXECUTOR}_{k}": v for k, v in params.items()})
        return executor

    def _outcome(self, job: Any, overrides: list[str], idx: int) -> JobReturn:
        try:
            returned = job.results()[0]
        except Exception as err:  # noqa: BLE001 - the job ended without returning: record it, wait for the others
            return self._failed(job, overrides, idx, err)
        if returned.status == JobStatus.FAILED:  # raised outside what train.run_job records (e.g. in a signal handler)
            error = returned._return_value
            self._record(overrides, idx, f"{self._EXECUTOR} job {job.job_id}: {type(error).__name__}: {error}")
        return returned

    def _failed(self, job: Any, overrides: list[str], idx: int, err: Exception) -> JobReturn:
        try:
            state = job.state
        except Exception:  # noqa: BLE001
            state = "UNKNOWN"
        # A job that raised inside submitit (e.g. "Job not requeued because: timed-out too many times") has a
        # trace between two rulers: its last line says why. One that was killed has only the scheduler's state.
        parts = str(err).split("-" * 22)
        said = [line.strip() for line in parts[1].splitlines() if line.strip()][-1:] if len(parts) > 2 else []
        reason = (f"{self._EXECUTOR} job {job.job_id} ended {state} without a result"
                  + "".join(f" ({line})" for line in said) + f"; its log: {job.paths.stderr}")
        log.error("Job #%d (%s): %s", idx, " ".join(filter_overrides(overrides)), reason)
        self._record(overrides, idx, reason)
        return JobReturn(overrides=list(overrides), status=JobStatus.FAILED, _return_value=RuntimeError(reason))

    def _record(self, overrides: list[str], idx: int, reason: str) -> None:
        """Into the job's result.json, so that the sweep's summary lists it: a job that never started has no
        directory yet, and one that was interrupted keeps what it said (e.g. where its checkpoint is)."""
        from softprompt_xl.pipeline import records
        from softprompt_xl.pipeline.records import RESULT_FILE, JobFailure, job_identity

        assert self.hydra_context is not None and self.config is not None
        cfg = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(cfg.hydra.job):
            cfg.hydra.job.num = idx
        path = Path(str(cfg.hydra.sweep.dir)) / str(cfg.hydra.sweep.subdir) / RESULT_FILE
        said = records.read(path)
        if said is not None and not isinstance(said, JobFailure):  # it finished its work; only its exit went wrong
            return
        command = " ".join(filter_overrides(overrides))
        if said is None:
            records.write(path, JobFailure.failed(job_identity(cfg), reason, overrides=command))
        else:
            records.write(path, replace(said, error=f"{said.error} ({reason})" if said.error else reason,
                                        overrides=command))


class SlurmLauncher(_WaitForEveryJob):
    """`hydra/launcher=slurm`: one SLURM job array per stage of the sweep (conf/hydra/launcher/slurm.yaml)."""

    _EXECUTOR = "slurm"
    _checked = False

    def check_environment(self) -> None:
        if self._checked:
            return
        missing = [tool for tool in ("sbatch", "srun", "sacct") if shutil.which(tool) is None]
        if missing:
            _stop(
                f"hydra/launcher=slurm submits the sweep's jobs with sbatch and follows them with sacct, but "
                f"{_words(missing)} {'is' if len(missing) == 1 else 'are'} not on PATH here: this machine is "
                "not a SLURM login node, or the SLURM client is not loaded. Run the same command on the cluster's "
                "login node (after e.g. `module load slurm`), or run here without SLURM: hydra/launcher=local "
                "(one job after another) or hydra/launcher=local_parallel (several at once). To try SLURM on this "
                "machine, `make slurm-up` starts a single-node cluster (as root; see the README).")
        try:
            probe = subprocess.run(["sacct", "-n", "-X", "-j", "1", "-o", "JobID"], capture_output=True, text=True,
                                   timeout=60)
            problem = probe.stderr.strip().splitlines()[-1] if probe.returncode else ""
        except subprocess.TimeoutExpired:
            problem = "sacct did not answer within 60 s"
        if problem:
            _stop(
                f"hydra/launcher=slurm follows its jobs with sacct, but sacct fails here ({problem}). Either the "
                "SLURM client cannot reach the cluster (is SLURM_CONF right?), or the cluster keeps no job "
                "accounting (slurmdbd): without it a job that is killed can never be seen to have failed, and "
                "the sweep would wait for it forever. Fix the client configuration or ask the cluster's admins "
                "for accounting, or run with hydra/launcher=local or hydra/launcher=local_parallel.")
        limit_s, delay_s = 60 * int(self.params["timeout_min"]), int(self.params.get("signal_delay_s", 0))
        if delay_s > limit_s - 120:
            _stop(
                f"hydra.launcher.signal_delay_s={delay_s} leaves a job too little of its time limit "
                f"(timeout_min={limit_s // 60}, {limit_s} s) before it is signalled to checkpoint and be requeued "
                "(and SLURM may send the signal up to a minute early): it would be requeued before doing any "
                "work. Make the limit longer (hydra.launcher.timeout_min) or the delay shorter "
                "(hydra.launcher.signal_delay_s; it needs only the time of one training step or validation).")
        self._checked = True

    def submit(self, executor: Any, calls: list[tuple]) -> list:
        return executor.map_array(self, *zip(*calls))  # one array; at most array_parallelism run at once


class LocalParallelLauncher(_WaitForEveryJob):
    """`hydra/launcher=local_parallel`: the jobs as processes on this machine, `max_parallel` at a time."""

    _EXECUTOR = "local"

    def __init__(self, max_parallel: int = 2, **params: Any) -> None:
        super().__init__(**params)
        self.max_parallel = max(1, int(max_parallel))

    def submit(self, executor: Any, calls: list[tuple]) -> list:
        from softprompt_xl.runtime.cluster import share_environment

        # Each job its share of the cores, set in the environment it starts with (submitit's local executor passes
        # this process's on): torch jobs that together ask for more threads than there are cores run 10-30x slower.
        # A batch smaller than max_parallel shares the cores among fewer jobs.
        at_once = min(self.max_parallel, len(calls))
        share = share_environment(at_once)
        if share:
            log.info("Torch threads per job: %s (%d job(s) at a time)", share["OMP_NUM_THREADS"], at_once)
        jobs: list = []
        with _environment(share):
            for call in calls:
                while sum(not job.done() for job in jobs) >= self.max_parallel:
                    time.sleep(1)
                jobs.append(executor.submit(self, *call))
        return jobs


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """`values` in os.environ while the block runs (what a process started in it inherits), then as before."""
    before = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _stop(message: str) -> None:
    log.error("%s", message)
    sys.exit(2)


def _words(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
