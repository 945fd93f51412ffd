"""What a job does differently when a scheduler runs it: SLURM through submitit (`hydra/launcher=slurm`), or
several at once on this machine (`hydra/launcher=local_parallel`).

- It uses its share of the cores, and no more (`job_threads`, the one rule): torch processes that together ask for
  more threads than there are cores spin-wait on each other and run 10-30x slower. Under SLURM its allocation,
  `SLURM_CPUS_PER_TASK`, not every core of the node; beside other local jobs the share the launcher gave it
  (`share_environment`); a thread count the user set (`OMP_NUM_THREADS`) is kept. (DataLoader workers run one
  thread each: torch sets it in every worker.)
- Lightning does not requeue on its own (its SLURM auto-requeue would save a second kind of checkpoint and call
  `scontrol requeue` behind submitit's back): one mechanism, submitit's, owns requeueing.
- A signal during training makes the stage save its checkpoint at the end of the current step (resume.py); then
  `after_interrupt` decides how the job ends. On submitit's signal (USR2, sent `signal_delay_s` before the time
  limit, or at a preemption) it hands over to submitit, which requeues the job with the same pickled call unless
  it has already timed out `max_num_timeout` times; the requeued job runs the same overrides into the same job
  directory, finds its checkpoint under the same store key and continues the same W&B run. On any other signal
  (SIGTERM: scancel, a preemption, the time limit itself) the job exits without a result, so that the sweep sees
  what SLURM says about it (cancelled, requeued, timed out) instead of a "successful" interrupted job.
Outside a submitit SLURM job none of this applies: the interrupted job ends with status "interrupted".
"""

from __future__ import annotations

import logging
import os
import signal
import sys

log = logging.getLogger(__name__)


def in_submitit_slurm_job() -> bool:
    return os.environ.get("SUBMITIT_EXECUTOR") == "slurm"


def submitit_signal() -> signal.Signals:
    """The signal submitit checkpoints and requeues on (USR2 unless $SUBMITIT_PREEMPT_SIGNAL says otherwise)."""
    return signal.Signals["SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")]


def cores() -> int:
    """The cores this process may run on: its CPU affinity (a container's or taskset's share), not the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def share_environment(jobs_at_once: int) -> dict[str, str]:
    """The environment that gives a job started beside `jobs_at_once - 1` others on this machine its share of the
    cores, max(1, cores // jobs_at_once) threads, read by torch (OpenMP, MKL) when it starts; nothing when the user
    set OMP_NUM_THREADS, which every job then keeps."""
    if os.environ.get("OMP_NUM_THREADS"):
        return {}
    share = str(max(1, cores() // max(1, jobs_at_once)))
    return {"OMP_NUM_THREADS": share, "MKL_NUM_THREADS": share}


def job_threads() -> int | None:
    """The torch threads this job may use at most: SLURM's CPUs for the task, else OMP_NUM_THREADS (the user's, or
    the share a launcher gave it: share_environment), else None (no limit: torch's default, a thread per core)."""
    for name in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def limit_threads() -> None:
    """Hold torch to `job_threads`, and say how many threads the job uses (in its log)."""
    import torch

    limit = job_threads()
    if limit is not None and torch.get_num_threads() > limit:
        torch.set_num_threads(limit)
    log.info("Torch threads: %d (of %d cores here)", torch.get_num_threads(), cores())


def machine() -> dict:
    """Where a number was computed, for the records that keep it (a result, a component's header): the same run gives
    other scores on another CPU (its vector instructions choose torch's kernels) and with another thread count (the
    order in which sums are reduced), so a score is only comparable with the machine that made it."""
    import platform

    import torch

    return {"torch_threads": torch.get_num_threads(), "cpu": _cpu_model() or platform.processor() or None,
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None}


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), None)
    except OSError:  # not Linux
        return None


def lightning_plugins() -> list:
    """Plugins for every Trainer: SLURM's task layout (ranks, nodes) detected, its auto-requeue switched off."""
    from lightning.pytorch.plugins.environments import SLURMEnvironment

    return [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else []


def after_interrupt(signum: int) -> None:
    """Called once an interrupted job has saved its checkpoint and written its result.json (see the module)."""
    if not in_submitit_slurm_job():
        return
    handler = signal.getsignal(signum)
    if signum == submitit_signal() and callable(handler):
        log.info("Handing over to submitit to requeue the job; it resumes from the checkpoint.")
        handler(signum, None)  # requeues and exits, or raises "Job not requeued because: ..."
    log.info("Exiting without a result: SLURM decides what becomes of the job.")
    sys.exit(128 + signum)
