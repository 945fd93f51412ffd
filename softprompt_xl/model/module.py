"""One LightningModule for every combo: it trains whatever the composed model left trainable and evaluates
by greedy generation. It never asks what kind of component it holds."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import lightning as L
import torch
from transformers import get_linear_schedule_with_warmup
from transformers.optimization import Adafactor

from softprompt_xl.model.components.compose import ComposedModel
from softprompt_xl.data.loaders import TaskSplit
from softprompt_xl.data.tasks import Task
from softprompt_xl.errors import UserError

log = logging.getLogger(__name__)

# How validation scores a step (task_stage.val_mode): by greedy generation and the task's primary metric (best =
# highest), or by the teacher-forced loss alone (best = lowest; no generation, so much cheaper).
VAL_MODES = ("generation", "loss")
OPTIMIZERS = ("adafactor", "adamw")  # what build_optimizer builds


def check_val_mode(mode: str) -> None:
    if mode not in VAL_MODES:
        raise UserError(f"task_stage.val_mode={mode} is not a validation mode: use generation (the task's metric on "
                        "generated answers) or loss (the teacher-forced loss alone, much cheaper).")


def build_optimizer(spec: Any, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    lr, wd = float(spec["lr"]), float(spec.get("weight_decay", 0.0))
    if spec["name"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if spec["name"] == "adafactor":  # the paper's prompt optimiser: a fixed lr, no relative step or scaling
        return Adafactor(params, lr=lr, weight_decay=wd, scale_parameter=False, relative_step=False, warmup_init=False)
    raise UserError(f"Unknown optimizer '{spec['name']}'. Valid optimizers: {', '.join(OPTIMIZERS)}.")


class ComboModule(L.LightningModule):
    def __init__(
        self,
        net: ComposedModel,
        trainable: list[torch.nn.Parameter],
        optimizer: Any = None,
        max_steps: int = 0,
        task: Task | None = None,
        val_split: TaskSplit | None = None,
        test_splits: list[TaskSplit] = (),
        select_best: bool = False,
        val_mode: str = "generation",
    ):
        super().__init__()
        check_val_mode(val_mode)
        self.val_mode = val_mode
        self.net = net
        self.trainable = trainable
        self.optimizer_spec = optimizer
        self.max_steps = max_steps
        self.task = task
        self.val_split, self.test_splits = val_split, list(test_splits)
        self.select_best = select_best
        self.predictions: dict[int, dict[int, tuple[str, float]]] = {}  # loader -> record index -> (text, score)
        self.val_history: list[dict] = []  # one entry per validation: step, mode, metrics, loss, size and seconds
        self._val_loss = [0.0, 0]  # summed token losses and target tokens of the validation in progress
        self._val_started = 0.0
        self.test_metrics: dict[str, dict[str, float]] = {}
        self.test_predictions: dict[str, list[str]] = {}  # lang -> prediction per example, in split order
        self.best: dict | None = None  # step, metric, value and a copy of the trainable weights at the best validation
        self.strict_loading = False  # checkpoints hold only the trainable weights (see on_save_checkpoint)

    # --- checkpoints (resume.py) ----------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The frozen backbone is the same on resume: keeping only what trains makes a checkpoint of an mt0-base
        # run a few MB instead of 2 GB. The RNG states make a resumed run draw the same dropout masks.
        trainable = {id(p) for p in self.trainable}
        checkpoint["state_dict"] = {n: p.detach().clone() for n, p in self.named_parameters() if id(p) in trainable}
        checkpoint["softprompt_xl"] = {"val_history": self.val_history, "best": self.best,
                                       "rng": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("softprompt_xl", {})
        self.val_history = state.get("val_history", [])
        self.best = state.get("best")
        if "rng" in state:
            torch.set_rng_state(state["rng"])

    # --- training -----------------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        loss = self.net(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        optimizer = build_optimizer(self.optimizer_spec, self.trainable)
        warmup = int(self.optimizer_spec.get("warmup_steps", 0))
        schedule = get_linear_schedule_with_warmup(optimizer, warmup, max(self.max_steps, 1))  # linear decay
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def on_train_batch_end(self, outputs, batch, batch_idx):
        self.log("train/lr", self.trainer.optimizers[0].param_groups[0]["lr"])

    # --- evaluation ---------------------------------------------------------------------------
    def _evaluate(self, batch, split: TaskSplit, loader: int, prefix: str) -> None:
        loss = self._loss_and_generate(batch, loader)
        self.log(f"{prefix}/{split.lang}/loss", loss, batch_size=batch["input_ids"].shape[0], add_dataloader_idx=False)

    def _loss_and_generate(self, batch, loader: int) -> torch.Tensor:
        """The batch's teacher-forced loss; its answers are kept for scoring (`_score`)."""
        loss, tokens, scores = self.net.loss_and_generate(batch["input_ids"], batch["attention_mask"], batch["labels"],
                                                          self.task.max_answer_length)
        texts = self.net.answers(tokens)
        found = self.predictions.setdefault(loader, {})
        # A record split into windows (a long QA context) has several examples: keep the surest answer.
        for index, text, score in zip(batch["index"].tolist(), texts, scores.tolist()):
            if index not in found or score > found[index][1]:
                found[index] = (text, score)
        return loss

    def _score(self, splits: list[TaskSplit], prefix: str) -> dict[str, dict[str, float]]:
        """Scores per language against the raw gold, and logged as `<prefix>/<lang>/<metric>`."""
        results = {}
        for loader, split in enumerate(splits):
            predictions = self.predictions.pop(loader, {})
            ordered = [predictions[i][0] for i in range(len(split.references))]
            if prefix == "test":
                self.test_predictions[split.lang] = ordered
            results[split.lang] = self.task.score(ordered, split.references, split.lang)
            self.log_dict({f"{prefix}/{split.lang}/{k}": v for k, v in results[split.lang].items()})
        return results

    def on_validation_epoch_start(self):
        self._val_loss, self._val_started = [0.0, 0], time.perf_counter()

    def validation_step(self, batch, batch_idx):
        # The loss of the whole split, per target token (as training's), whatever the batches: both modes record it.
        if self.val_mode == "generation":
            loss = self._loss_and_generate(batch, 0)
        else:
            loss = self.net(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        tokens = int((batch["labels"] != -100).sum())
        self._val_loss[0] += float(loss) * tokens
        self._val_loss[1] += tokens

    def on_validation_epoch_end(self):
        split = self.val_split
        loss = self._val_loss[0] / max(self._val_loss[1], 1)
        entry = {"step": self.global_step, "mode": self.val_mode}
        if self.val_mode == "generation":
            entry.update(self._score([split], "val")[split.lang])
        seconds = time.perf_counter() - self._val_started
        entry.update(loss=loss, examples=len(split.references), inputs=len(split.examples), seconds=round(seconds, 2))
        self.val_history.append(entry)
        self.log_dict({f"val/{split.lang}/loss": loss, "val/seconds": seconds})
        scores = " ".join(f"{k}={v:.2f}" for k, v in entry.items() if k not in ("step", "mode", "examples", "inputs",
                                                                                  "seconds"))
        log.info("Validation at step %d by %s: %d %s examples (%d inputs) in %.2f s; %s", self.global_step,
                 self.val_mode, entry["examples"], split.lang, entry["inputs"], seconds, scores)
        metric = "loss" if self.val_mode == "loss" else self.task.primary_metric
        value = entry[metric]
        if self.select_best and math.isfinite(value) and (
                self.best is None or (value < self.best["value"] if metric == "loss" else value > self.best["value"])):
            self.best = {"step": self.global_step, "metric": metric, "value": value,
                         "weights": [p.detach().clone() for p in self.trainable]}

    def on_fit_end(self):
        if self.select_best and self.best is not None:
            with torch.no_grad():
                for p, saved in zip(self.trainable, self.best["weights"]):
                    p.copy_(saved)
            log.info("Testing with the weights of step %d (best validation %s %.4g)",
                     self.best["step"], self.best["metric"], self.best["value"])

    def test_step(self, batch, batch_idx, dataloader_idx: int = 0):
        self._evaluate(batch, self.test_splits[dataloader_idx], dataloader_idx, "test")

    def on_test_epoch_end(self):
        self.test_metrics = self._score(self.test_splits, "test")


class HeldOutScore(L.LightningModule):
    """A language component on held-out text, by its stage-1 objective (span corruption, or next-token prediction):
    the loss (mean over target tokens) and the token accuracy (the argmax equals the target token), as the authors'
    language components report them (eval_loss and eval_accuracy of their run_mlm-style script)."""

    def __init__(self, net: ComposedModel):
        super().__init__()
        self.net = net
        self.totals = [0.0, 0, 0]  # loss summed over target tokens, tokens right, tokens

    def validation_step(self, batch, batch_idx):
        labels = batch["labels"]
        out = self.net(batch["input_ids"], batch["attention_mask"], labels)
        scored = labels != -100
        tokens = int(scored.sum())
        self.totals[0] += float(out.loss) * tokens
        self.totals[1] += int(((out.logits.argmax(-1) == labels) & scored).sum())
        self.totals[2] += tokens

    def scores(self) -> dict[str, float]:
        loss, right, tokens = self.totals
        if not tokens:
            return {}
        # The perplexity too: how next-token prediction is usually reported (for span corruption, of the targets)
        return {"heldout_loss": loss / tokens, "heldout_perplexity": math.exp(min(loss / tokens, 50.0)),
                "heldout_accuracy": right / tokens}
