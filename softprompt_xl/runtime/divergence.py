"""A training stage whose loss diverges stops with a failure instead of ending "complete" with useless weights.

The rule (`trainer.divergence` in conf/trainer/default.yaml), checked after every training step:
- a loss that is not finite (nan, inf) has diverged at once: the weights it updated are lost;
- a loss that has exploded: the median of the last `window` step losses is above `factor` times the lowest such
  median of the stage so far (the reference never below `floor`). The median ignores a few hard batches (half the
  window must be high), the running minimum is the best the stage has reached, so a run that learnt first and then
  blew up is caught as well as one that blew up at once, and the floor keeps a task learnt to a loss near 0 from
  counting a rise to 0.5 as an explosion. `factor: null` checks only for non-finite losses.

A diverged stage raises `Diverged`: train.run_job records it as a failed result naming the step, the last finite
loss and the learning rate, and the stage's checkpoints are dropped (pipeline/stages.py), so nothing of it is stored and
the same command trains it afresh. The processes of a multi-process run judge the loss of the whole batch (the mean
over processes), so they all stop at the same step.
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from typing import Any

import lightning as L

from softprompt_xl.config import to_plain
from softprompt_xl.errors import UserError


class Diverged(Exception):
    """A training stage stopped because its loss diverged; `record` says where (it goes into result.json)."""

    def __init__(self, message: str, record: dict):
        super().__init__(message)
        self.record = record


class DivergenceRule:
    """The rule above, fed one step loss at a time."""

    def __init__(self, factor: float | None = 100.0, window: int = 10, floor: float = 0.01):
        if factor is not None and not (_number(factor) and factor > 1):
            raise UserError(f"trainer.divergence.factor={factor}: a loss has exploded when it grows past factor x its "
                            "lowest running median, so the factor must be a number above 1 (e.g. 100), or null to "
                            "check only for non-finite losses.")
        if not (_number(window) and int(window) == window >= 1 and _number(floor) and floor > 0):
            raise UserError(f"trainer.divergence.window={window} and floor={floor}: the window is a number of steps "
                            "(at least 1, e.g. 10) and the floor a positive loss (e.g. 0.01).")
        self.factor = None if factor is None else float(factor)
        self.window, self.floor = int(window), float(floor)
        self.recent: deque[float] = deque(maxlen=self.window)
        self.lowest: float | None = None   # lowest running median so far
        self.last_finite: tuple[int, float] | None = None  # (step, loss)

    @classmethod
    def from_config(cls, settings: Any) -> "DivergenceRule | None":
        settings = to_plain(settings)
        if settings is None:
            return None
        unknown = set(settings) - {"factor", "window", "floor"} if isinstance(settings, dict) else {settings}
        if unknown:
            raise UserError(f"trainer.divergence has unknown settings {sorted(unknown)}: it takes factor, window and "
                            "floor (conf/trainer/default.yaml), or null to check nothing.")
        return cls(**settings)

    def check(self, step: int, loss: float) -> str | None:
        """None while the loss is sound; else what is wrong with it, in words."""
        if not math.isfinite(loss):
            return f"the training loss is {loss}"
        self.recent.append(loss)
        self.last_finite = (step, loss)
        if self.factor is None or len(self.recent) < self.window:
            return None
        median = statistics.median(self.recent)
        self.lowest = median if self.lowest is None else min(self.lowest, median)
        reference = max(self.lowest, self.floor)
        if median > self.factor * reference:
            return (f"the training loss exploded: its median over the last {self.window} steps, {median:.4g}, is over "
                    f"{self.factor:g} x the lowest such median of the stage ({reference:.4g})")
        return None

    def state_dict(self) -> dict:
        return {"recent": list(self.recent), "lowest": self.lowest, "last_finite": self.last_finite}

    def load_state_dict(self, state: dict) -> None:
        self.recent = deque(state.get("recent", []), maxlen=self.window)
        self.lowest = state.get("lowest")
        last = state.get("last_finite")
        self.last_finite = tuple(last) if last else None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class DivergenceGuard(L.Callback):
    """Applies the rule to every training step of a stage. `what` names the stage's component in the message,
    `lr_setting` the option that sets its learning rate (what a user lowers)."""

    def __init__(self, settings: Any, stage: str, what: str, lr_setting: str):
        self.rule = DivergenceRule.from_config(settings)
        self.stage, self.what, self.lr_setting = stage, what, lr_setting
        self._lr: float | None = None

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        # The step's own learning rate: by on_train_batch_end the schedule has moved on to the next step's.
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"]) if trainer.optimizers else None

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.rule is None:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        loss = loss.detach().float()
        if trainer.world_size > 1:  # every process judges the same number, so all stop at the same step
            loss = trainer.strategy.reduce(loss, reduce_op="mean")
        step, value = trainer.global_step, float(loss)
        problem = self.rule.check(step, value)
        if problem:
            raise self._diverged(step, trainer.max_steps, value, problem, pl_module)

    def _diverged(self, step: int, max_steps: int, loss: float, problem: str, pl_module: Any) -> Diverged:
        configured = (getattr(pl_module, "optimizer_spec", None) or {}).get("lr")
        last = self.rule.last_finite  # for an exploded (finite) loss: that loss itself
        record = {
            "stage": self.stage, "component": self.what, "step": step, "max_steps": max_steps,
            "loss": loss if math.isfinite(loss) else str(loss),  # JSON has no nan or inf
            "last_finite_loss": last[1] if last else None, "last_finite_step": last[0] if last else None,
            "lr": self._lr, "configured_lr": None if configured is None else float(configured),
        }
        said_last = f"last finite loss {last[1]:.4g} at step {last[0]}" if last else "no finite loss before it"
        said_lr = "; ".join(([f"learning rate {self._lr:g} at this step"] if self._lr is not None else [])
                            + ([f"{float(configured):g} configured"] if configured is not None else []))
        message = (
            f"Training diverged: {self.what} at step {step} of {max_steps}: {problem} ({said_last}"
            f"{'; ' + said_lr if said_lr else ''}). "
            f"Nothing of it was stored and its checkpoints were dropped: lower the learning rate ({self.lr_setting}=...) "
            "or clip the gradients (trainer.gradient_clip_val=1.0) and run again (a failed run is not finished: the "
            "same sweep runs it again). trainer.divergence sets when a loss counts as diverged.")
        return Diverged(message, record)

    def state_dict(self) -> dict:
        # In the checkpoint: a resumed stage judges its losses against the same history as an uninterrupted one.
        return self.rule.state_dict() if self.rule else {}

    def load_state_dict(self, state_dict: dict) -> None:
        if self.rule and state_dict:
            self.rule.load_state_dict(state_dict)

