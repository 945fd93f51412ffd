"""Surviving a kill: periodic checkpoints of a training stage, a clean stop on SIGTERM / SIGUSR1 / SIGUSR2 (what
SLURM and submitit send before a time limit or a preemption), and a data order that continues where it stopped.

A resumed stage ends with the same weights as an uninterrupted one: the checkpoint holds the trainable
weights, optimiser, schedule, validation history, best weights and the RNG states, and the sampler replays
the same per-epoch permutations from the next unseen example.

A checkpoint is written atomically beside its final name (runtime/atomic.py: no copy through the system's temporary
directory, no temporary file left after a failure, a full disk said in one paragraph), and one that cannot be read
(cut short by a copy, say) is named in a warning and removed: the stage starts afresh instead of failing.
"""

from __future__ import annotations

import io
import logging
import shutil
import signal
from pathlib import Path
from typing import Any, Iterator, Sequence

import lightning as L
import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO
from torch.utils.data import Sampler

from softprompt_xl.runtime.atomic import write_bytes

log = logging.getLogger(__name__)

LAST = "last.ckpt"


class Interrupted(Exception):
    """A stage stopped on a signal after saving its checkpoint; the same command resumes it."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.signum = signum


class ResumableSampler(Sampler[int]):
    """`total` indices drawn from a fresh seeded permutation of `n` per epoch, starting after `start` of them:
    the order depends only on the seed, so a resumed stage sees exactly the examples it had not seen yet.

    With `lengths` and `group` > 1, examples of similar length share a batch, so that a batch pads little: each
    run of `group` batches of the permutation is sorted by length, cut into batches, and those batches are shuffled
    (HF's `group_by_length` megabatches, seeded the same way, so resuming is still exact).

    Of several processes training together (`world`), each takes its `rank`-th share of every global batch of
    `batch` indices: together they see the batches one process would."""

    def __init__(self, n: int, total: int, seed: int, start: int = 0, rank: int = 0, world: int = 1, batch: int = 1,
                 lengths: Sequence | None = None, group: int = 0):
        self.n, self.total, self.seed, self.start = n, total, seed, start
        self.rank, self.world, self.batch = rank, world, batch
        self.lengths, self.group = lengths, int(group or 0)

    def epoch_order(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed + epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        if self.lengths is None or self.group <= 1:
            return order
        grouped = []
        for start in range(0, self.n, self.group * self.batch):
            run = sorted(order[start:start + self.group * self.batch], key=lambda i: self.lengths[i], reverse=True)
            batches = [run[i:i + self.batch] for i in range(0, len(run), self.batch)]
            grouped += [i for b in torch.randperm(len(batches), generator=generator).tolist() for i in batches[b]]
        return grouped

    def __iter__(self) -> Iterator[int]:
        share = self.batch // self.world
        for position in range(self.start, self.total):
            epoch, offset = divmod(position, self.n)
            if offset == 0 or position == self.start:
                order = self.epoch_order(epoch)
            if (position % self.batch) // share == self.rank:
                yield order[offset]

    def __len__(self) -> int:
        # The whole stage, not what is left: Lightning restores its batch index within the epoch and ends the
        # epoch at this length; a shorter one would end it early and replay the data from `start`.
        return self.total // self.world


def resume_point(directory: Path) -> tuple[Path | None, int]:
    """The checkpoint to resume from and its global step, or (None, 0): also when the checkpoint is damaged,
    which is then named in a warning and removed with its directory (the stage restarts from scratch)."""
    path = Path(directory) / LAST
    for stale in Path(directory).glob(f".{LAST}.*tmp"):  # a save that was cut off (killed) is never whole
        stale.unlink(missing_ok=True)
    if not path.exists():
        return None, 0
    try:
        return path, int(torch.load(path, map_location="cpu", weights_only=False)["global_step"])
    except Exception as err:  # noqa: BLE001 - whatever a cut-off or garbled file raises (zip, pickle, a key)
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0]  # torch's runs on
        log.warning("%s is damaged (%s): removed, so the stage restarts from scratch", path, reason)
        shutil.rmtree(directory, ignore_errors=True)
        return None, 0


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, writing through runtime/atomic.py: beside the final file, not first into the
    system's temporary directory (which may be small, and is then copied across disks); nothing left behind when
    the write fails; a full disk raised as DiskFull naming the checkpoint and its size."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        write_bytes(path, buffer.getvalue())


class Checkpointing(L.Callback):
    """Saves `last.ckpt` every `every` steps and, on SIGTERM, SIGUSR1 or SIGUSR2, at the end of the current step,
    then stops the stage with `Interrupted` (how the job then ends is cluster.after_interrupt's business)."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)

    def __init__(self, directory: Path, every: int):
        self.directory, self.every = Path(directory), max(int(every), 1)
        self.received: int | None = None
        self._previous: dict = {}

    def _handler(self, signum, frame) -> None:
        self.received = signum

    def setup(self, trainer, pl_module, stage) -> None:
        if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # the default; a strategy's own is left alone
            trainer.strategy.checkpoint_io = AtomicCheckpointIO()

    def on_train_start(self, trainer, pl_module) -> None:
        # Installed after Lightning's own handlers, which would only stop the loop and save nothing.
        self._previous = {s: signal.signal(s, self._handler) for s in self.SIGNALS}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # At a step that validates, the checkpoint waits for the validation: one saved before it would resume
        # after it without running it, and the best weights could differ.
        if self._validates_now(trainer):
            return
        if self._signalled(trainer):
            self.stop(trainer)
        if trainer.global_step % self.every == 0 and trainer.global_step < trainer.max_steps:
            self.save(trainer)

    def on_validation_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or trainer.state.fn != "fit":
            return
        if self._signalled(trainer):
            self.stop(trainer)
        if trainer.global_step < trainer.max_steps:
            self.save(trainer)

    def _signalled(self, trainer) -> bool:
        """Whether any process got a signal (the processes of one run stop at the same step)."""
        if trainer.world_size > 1:
            mine = torch.tensor(int(self.received or 0), device=trainer.strategy.root_device)
            self.received = int(trainer.strategy.reduce(mine, reduce_op="max").item()) or None
        return self.received is not None

    @staticmethod
    def _validates_now(trainer) -> bool:
        every = trainer.val_check_batch if trainer.num_val_batches else None
        return isinstance(every, int) and every > 0 and trainer.global_step % every == 0

    def stop(self, trainer) -> None:
        self.save(trainer)
        name = signal.Signals(self.received).name
        raise Interrupted(f"{name} received: saved a checkpoint at step {trainer.global_step} in "
                          f"{self.directory}; run the same command again to resume from it.", self.received)

    def save(self, trainer) -> None:
        # The optimiser and loops too; written by rank 0, atomically (AtomicCheckpointIO, or Lightning's own).
        trainer.save_checkpoint(self.directory / LAST, weights_only=False)

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore()

    def _restore(self) -> None:
        # Before Lightning's teardown puts back the handlers it found: restored after it (in `teardown`), Lightning's
        # own handler stayed installed once the stage was over, holding its trainer and so the stage's whole model
        # (a second mt0-base in memory while the next stage loads one), and swallowing SIGTERM until the next stage.
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}
