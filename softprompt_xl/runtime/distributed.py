"""One run on several processes (`trainer=ddp`): one process per device, started from outside — by SLURM (the job's
tasks: `hydra/launcher=slurm` asks for `trainer.devices` tasks per node) or by torchrun on one machine.

Every process runs the whole job; Lightning's DDP keeps their trainable weights identical. Around the training,
rank 0 alone writes (the store, result.json, predictions, W&B) and evaluates, and the processes agree before
each decision ("is this component in the store?") on rank 0's answer, so that they enter the same trainings
in the same order. The process group is opened at the start of the job for that and Lightning reuses it (NCCL
on GPUs, gloo on CPUs); the agreements go through a gloo group of their own, whatever the device.
Outside such a layout (one process) every function here is a no-op.
"""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any, Callable, TypeVar

import torch
import torch.distributed as dist

from softprompt_xl.errors import UserError

log = logging.getLogger(__name__)
T = TypeVar("T")
_control: Any = None  # the gloo group of the agreements


def layout() -> tuple[int, int]:
    """(global rank, world size) of this process as its launcher started it."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    for environment in (SLURMEnvironment, TorchElasticEnvironment):
        if environment.detect():
            env = environment()
            return env.global_rank(), env.world_size()
    return 0, 1


def start(trainer_cfg: Any) -> None:
    """Open the process group of a multi-process job (or say how to start one when a run asks for several
    devices in a single process)."""
    rank, world = layout()
    devices = trainer_cfg.devices
    if world == 1:
        if str(trainer_cfg.get("strategy", "auto")).startswith("ddp") and devices not in (1, "1"):
            raise UserError(
                f"trainer=ddp trains on trainer.devices={devices} processes, one per device, started from outside "
                "this command: on SLURM add hydra/launcher=slurm (it asks for trainer.devices tasks per node and "
                f"GPUs for each); on one machine run a single run under torchrun: `torchrun --nproc-per-node={devices} "
                "-m softprompt_xl.train +combo=... trainer=ddp` (no -m). For one device, drop trainer=ddp.")
        return
    if dist.is_initialized():
        return
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    env = SLURMEnvironment() if SLURMEnvironment.detect() else TorchElasticEnvironment()
    os.environ["MASTER_ADDR"], os.environ["MASTER_PORT"] = env.main_address, str(env.main_port)
    gpu = torch.cuda.is_available() and str(trainer_cfg.accelerator) in ("auto", "gpu", "cuda")
    backend = "nccl" if gpu else "gloo"  # what Lightning's DDP would choose
    # Long enough for rank 0 to wait for a store lock held by another job while the others wait for its answer.
    timeout = datetime.timedelta(hours=2)
    dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout)
    global _control
    _control = dist.new_group(backend="gloo", timeout=timeout) if gpu else dist.group.WORLD
    if rank != 0:  # one voice in the job's log
        logging.getLogger("softprompt_xl").setLevel(logging.WARNING)
    log.info("Distributed run: %d processes (rank %d here, %s)", world, rank, backend)


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_zero() -> bool:
    return rank() == 0


def agreed(value: T) -> T:
    """Rank 0's `value`, on every process."""
    if not dist.is_initialized():
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0, group=_control)
    return box[0]


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier(group=_control)


def zero_first(make: Callable[[], T]) -> T:
    """`make()` on rank 0, then on the others (which then find what rank 0 cached, e.g. tokenised splits)."""
    if is_zero():
        made = make()
    barrier()
    if not is_zero():
        made = make()
    return made
