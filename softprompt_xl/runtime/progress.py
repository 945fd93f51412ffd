"""What a stage says while it runs: progress bars on a terminal, a plain line now and then in a file.

A SLURM job's log (or `... > log 2>&1`) is a file: there, a progress bar is a carriage return per step, so a
100k-step stage writes hundreds of MB that no editor opens and `tail -f` shows as one endless line. The rule
(`trainer.progress` in conf/trainer/default.yaml):

- `auto` (default): `bar` when stdout is a terminal, `lines` when it is not (a file, a pipe, a SLURM job);
- `bar`: Lightning's progress bars in training, validation and testing, and those of `datasets`;
- `lines`: no bar anywhere (Lightning's, `datasets`', Hugging Face downloads', the tiny backbone's pre-training);
  instead a line every `trainer.progress_every_s` seconds (30) and one when a stage's training ends, logged like
  every other line (so also in the job's log file), e.g.
  `Stage 2 (the task adapter on Slovak qa): step 171/300 (57%), loss 1.306, 92.5 examples/s (5.78 steps/s), 23 s left`,
  and as `Stage 2 (...), validation: batch 12/32 ...` or `Test (sk qa, 1000 examples): batch ...` during an
  evaluation that lasts longer than that;
- `none`: neither; the stage, validation and summary lines alone.

Only rank zero of a multi-process run writes. The setting changes what is printed, never what is trained: it is
in no store key (pipeline/keys.py reads no trainer setting).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import lightning as L

from softprompt_xl.errors import UserError

log = logging.getLogger(__name__)

MODES = ("auto", "bar", "lines", "none")
DEFAULT_EVERY_S = 30.0


def check(mode: Any, every_s: Any) -> None:
    """Refuse a `trainer.progress` or `trainer.progress_every_s` no job could use."""
    if mode not in MODES:
        raise UserError(f"trainer.progress={mode} is not one of {', '.join(MODES)}: auto shows progress bars on a "
                        "terminal and a plain line every trainer.progress_every_s seconds in a file (a SLURM log); "
                        "bar and lines choose one whatever the output is; none shows neither.")
    if isinstance(every_s, bool) or not isinstance(every_s, (int, float)) or not every_s > 0:
        raise UserError(f"trainer.progress_every_s={every_s}: the seconds between two progress lines, a number "
                        "above 0 (e.g. 30).")


def stdout_is_terminal() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):  # replaced by an object without isatty, or closed
        return False


def resolve(mode: str) -> str:
    """`bar`, `lines` or `none`: what `mode` means for this process's stdout."""
    check(mode, DEFAULT_EVERY_S)
    if mode == "auto":
        return "bar" if stdout_is_terminal() else "lines"
    return mode


def settings(trainer: Any) -> tuple[str, float]:
    """(resolved mode, seconds between lines) of conf/trainer `trainer`, checked (a config of one's own without
    them: auto, 30 s)."""
    mode, every_s = trainer.get("progress", "auto"), trainer.get("progress_every_s", DEFAULT_EVERY_S)
    check(mode, every_s)
    return resolve(mode), float(every_s)


_libraries_quiet = False  # whether library_bars switched the libraries' bars off in this process


def library_bars(mode: str) -> None:
    """Switch the progress bars of `datasets` (Generating / Map / Saving the dataset), Hugging Face downloads and
    transformers off unless `mode` is `bar` (then back on, if this switched them off: a user's own setting of theirs,
    such as $HF_HUB_DISABLE_PROGRESS_BARS, is left alone). One call per job, before it loads anything."""
    global _libraries_quiet
    import datasets
    import huggingface_hub.utils
    import transformers

    if mode != "bar":
        datasets.disable_progress_bars()
        huggingface_hub.utils.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
        _libraries_quiet = True
    elif _libraries_quiet:
        datasets.enable_progress_bars()
        huggingface_hub.utils.enable_progress_bars()
        transformers.utils.logging.enable_progress_bar()
        _libraries_quiet = False


def trainer_options(mode: str, every_s: float, name: str) -> dict:
    """The lightning.Trainer arguments for `mode`: Lightning's bar, or no bar and (lines) a `ProgressLines` for the
    stage `name`. `callbacks` is to be added to the trainer's own."""
    return {"enable_progress_bar": mode == "bar",
            "callbacks": [ProgressLines(name, every_s)] if mode == "lines" else []}


def duration(seconds: float) -> str:
    """`45 s`, `3m 10s`, `2h 05m`: a time left or taken, to the precision a reader needs."""
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def _rate(count: float, seconds: float) -> str:
    value = count / seconds if seconds > 0 else math.inf
    return "?" if not math.isfinite(value) else f"{value:.3g}" if value < 100 else f"{value:.0f}"


def batch_size(batch: Any) -> int | None:
    """Examples in a batch of this package's loaders (a mapping of tensors with `input_ids`: a dict, transformers'
    BatchEncoding), else None."""
    ids = batch.get("input_ids") if isinstance(batch, Mapping) else None
    return int(ids.shape[0]) if hasattr(ids, "shape") and len(ids.shape) else None


class Lines:
    """A plain progress line every `every_s` seconds for a loop of `total` steps (None: unknown), and on `end`:
    `<name>: <unit> 120/300 (40%), loss 1.234, 85.3 examples/s (5.33 steps/s), 34 s left`. The rates are those
    since the previous line, minus `pause`d time (a validation inside training); the time left is the remaining
    steps at the average pace since the start, pauses included (they recur)."""

    def __init__(self, name: str, total: int | None, every_s: float = DEFAULT_EVERY_S, unit: str = "step",
                 done: int = 0, write: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
        self.name, self.total, self.every_s, self.unit = name, total, every_s, unit
        self.units = "batches" if unit == "batch" else f"{unit}s"
        self.write = write or (lambda line: log.info("%s", line))
        self.clock = clock
        self.started = self.last = clock()
        self.first = self.done = self.done_at_last = done
        self.examples = 0  # since the last line; 0 if the batches' sizes are unknown
        self.paused = 0.0  # seconds not spent on this loop since the last line
        self.losses = None  # sum of the step losses since the last line (a tensor: no device sync per step)
        self.steps_with_loss = 0
        self.loss: float | None = None  # the mean loss of the last line's steps

    def update(self, done: int, examples: int | None = None, loss: Any = None) -> None:
        """`done` steps so far; the step just done had `examples` examples and loss `loss`."""
        self.done = done
        if examples:
            self.examples += examples
        if loss is not None:
            loss = loss.detach() if hasattr(loss, "detach") else float(loss)
            self.losses = loss if self.losses is None else self.losses + loss
            self.steps_with_loss += 1
        if self.clock() - self.last >= self.every_s:
            self.line()

    def pause(self, seconds: float) -> None:
        self.paused += seconds

    def line(self) -> None:
        now = self.clock()
        working = now - self.last - self.paused
        steps = self.done - self.done_at_last
        parts = [f"{self.unit} {self.done}/{self.total} ({100 * self.done / self.total:.0f}%)" if self.total
                 else f"{self.unit} {self.done}"]
        loss = self._loss()
        if loss is not None:
            parts.append(f"loss {loss:.4g}")
        unit_rate = f"{_rate(steps, working)} {self.units}/s"
        parts.append(f"{_rate(self.examples, working)} examples/s ({unit_rate})" if self.examples else unit_rate)
        if self.total:
            pace = (now - self.started) / max(self.done - self.first, 1e-9)
            parts.append(f"{duration((self.total - self.done) * pace)} left" if self.done > self.first else "? left")
        self.write(f"{self.name}: {', '.join(parts)}")
        self.last, self.done_at_last, self.examples, self.paused = now, self.done, 0, 0.0
        self.loss, self.losses, self.steps_with_loss = loss, None, 0

    def _loss(self) -> float | None:
        """The mean loss of the steps since the last line (none: that of the last line)."""
        return float(self.losses) / self.steps_with_loss if self.steps_with_loss else self.loss

    def end(self) -> None:
        """One last line: the totals of the loop (`stopped at` one that ended early: a signal, a divergence)."""
        taken = self.clock() - self.started
        steps = self.done - self.first
        if self.total and self.done < self.total:
            what = f"stopped at {self.unit} {self.done}/{self.total} after"
        else:
            what = f"{self.units} {self.done}/{self.total} done in" if self.total else f"{self.done} {self.units} done in"
        loss = self._loss()
        loss = "" if loss is None else f", loss {loss:.4g}"
        self.write(f"{self.name}: {what} {duration(taken)} ({_rate(steps, taken)} {self.units}/s){loss}")


class Loop:
    """The progress of a plain loop (not Lightning's: the tiny backbone's pre-training) in `mode`: a tqdm bar,
    `Lines`, or nothing. `step(loss, examples)` after each step; a context manager (the last line on exit)."""

    def __init__(self, name: str, total: int, mode: str, every_s: float = DEFAULT_EVERY_S):
        self.bar = self.lines = None
        if mode == "bar":
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=name)
        elif mode == "lines":
            self.lines = Lines(name, total, every_s)

    def step(self, loss: float | None = None, examples: int | None = None) -> None:
        if self.bar is not None:
            self.bar.update()
            if loss is not None:
                self.bar.set_postfix(loss=f"{loss:.3f}")
        elif self.lines is not None:
            self.lines.update(self.lines.done + 1, examples, loss)

    def __enter__(self) -> Loop:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.lines is not None and error is None:
            self.lines.end()


class ProgressLines(L.Callback):
    """Lightning's progress bar as plain lines (`Lines`), on rank zero only: training by optimiser step (of
    `max_steps`), validation and testing by batch (a long evaluation on a real test set says where it is too)."""

    def __init__(self, name: str, every_s: float = DEFAULT_EVERY_S, write: Callable[[str], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.name, self.every_s, self.write, self.clock = name, every_s, write, clock
        self.train: Lines | None = None
        self.eval: Lines | None = None
        self.eval_started = 0.0

    def _lines(self, name: str, total: int | None, unit: str, done: int = 0) -> Lines:
        return Lines(name, total, self.every_s, unit, done, self.write, self.clock)

    # --- training ---------------------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
            self.train = self._lines(self.name, total, "step", trainer.global_step)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.train is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        size = batch_size(batch)
        self.train.update(trainer.global_step, size * trainer.world_size if size else None, loss)

    def on_train_end(self, trainer, pl_module) -> None:
        if self.train is not None:
            self.train.end()
            self.train = None

    # --- validation and testing -------------------------------------------------------------------------------
    def _eval_start(self, trainer, what: str, totals: Any) -> None:
        if trainer.is_global_zero:
            total = sum(int(n) for n in totals if math.isfinite(n)) if totals else None
            # inside training, the validation of the stage; alone, the trainer's name says what it evaluates
            name = f"{self.name}, {what}" if self.train is not None else self.name
            self.eval = self._lines(name, total or None, "batch")
            self.eval_started = self.clock()

    def _eval_batch(self, batch: Any) -> None:
        if self.eval is not None:
            self.eval.update(self.eval.done + 1, batch_size(batch))

    def _eval_end(self) -> None:
        self.eval = None
        if self.train is not None:  # a validation inside training: not training time
            self.train.pause(self.clock() - self.eval_started)

    def on_validation_start(self, trainer, pl_module) -> None:
        self._eval_start(trainer, "validation", trainer.num_val_batches)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._eval_batch(batch)

    def on_validation_end(self, trainer, pl_module) -> None:
        self._eval_end()

    def on_test_start(self, trainer, pl_module) -> None:
        self._eval_start(trainer, "test", trainer.num_test_batches)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self._eval_batch(batch)

    def on_test_end(self, trainer, pl_module) -> None:
        self._eval_end()
