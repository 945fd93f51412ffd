"""What a job does differently when SLURM runs it through submitit (`hydra/launcher=slurm`).

- Its CPU allocation is respected: torch uses `SLURM_CPUS_PER_TASK` threads, not every core of the node.
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


def limit_threads() -> None:
    cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
    if cpus.isdigit() and int(cpus) > 0:
        import torch

        if torch.get_num_threads() > int(cpus):
            torch.set_num_threads(int(cpus))


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
