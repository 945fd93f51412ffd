"""What a stage shows while it runs (runtime/progress.py): bars on a terminal, plain lines at an interval in a file,
from rank zero only, and never a change to a store key."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

import datasets
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import TQDMProgressBar
from torch.utils.data import DataLoader

from softprompt_xl.errors import UserError
from softprompt_xl.runtime import progress
from softprompt_xl.runtime.progress import Lines, Loop, ProgressLines
from softprompt_xl.pipeline import schema
from softprompt_xl.pipeline.keys import key, lang_spec, result_spec, task_spec
from softprompt_xl.pipeline.stages import make_trainer
from softprompt_xl.pipeline.run_spec import RunSpec

EVERYDAY = ("+combo=lp_ta", "lang=sk")


class Clock:
    """A clock the test moves."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Tiny(L.LightningModule):
    """Batches as the package's loaders give them (a mapping with `input_ids`); each step moves `clock` on."""

    def __init__(self, clock: Clock | None = None, step_s: float = 0.0):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.clock, self.step_s, self.losses = clock, step_s, []

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch["input_ids"]).pow(2).mean()
        self.losses.append(float(loss.detach()))
        if self.clock is not None:
            self.clock.now += self.step_s
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def batches(n: int, size: int = 2) -> DataLoader:
    data = [{"input_ids": row} for row in torch.randn(n * size, 4, generator=torch.Generator().manual_seed(0))]
    return DataLoader(data, batch_size=size)


def fit(callbacks: list, module: Tiny, steps: int, **options) -> L.Trainer:
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_model_summary=False,
                        accelerator="cpu", callbacks=callbacks, **{"enable_progress_bar": False, **options})
    trainer.fit(module, batches(steps))
    return trainer


def test_lines_come_at_the_interval_with_stage_steps_loss_rate_and_time_left():
    clock, written = Clock(), []
    module = Tiny(clock, step_s=7.0)  # 7 s a step, a line every 30 s: after steps 5 and 10, and one at the end
    fit([ProgressLines("Stage 2 (the task adapter on Slovak qa)", 30, written.append, clock)], module, 12)
    assert len(written) == 3, written
    assert not any("\r" in line or "\n" in line for line in written)
    first, second, last = written
    # 5 steps of 2 examples in 35 s; 7 steps left at 7 s each
    assert first.startswith("Stage 2 (the task adapter on Slovak qa): step 5/12 (42%), loss ")
    assert first.endswith(", 0.286 examples/s (0.143 steps/s), 49 s left")
    loss = float(re.search(r"loss ([\d.e-]+)", first).group(1))
    assert loss == pytest.approx(sum(module.losses[:5]) / 5, rel=1e-3)  # the mean of the steps since the last line
    assert second.startswith("Stage 2 (the task adapter on Slovak qa): step 10/12 (83%)") and second.endswith("14 s left")
    assert re.fullmatch(r"Stage 2 \(the task adapter on Slovak qa\): steps 12/12 done in 1m 24s \(0\.143 steps/s\), "
                        r"loss [\d.e-]+", last)


class Validated(Tiny):
    """Each validation batch takes `val_s` seconds."""

    def __init__(self, clock: Clock, step_s: float, val_s: float):
        super().__init__(clock, step_s)
        self.val_s = val_s

    def validation_step(self, batch, batch_idx):
        self.clock.now += self.val_s


def test_a_long_validation_says_where_it_is_and_is_not_counted_as_training():
    clock, written = Clock(), []
    module = Validated(clock, step_s=1.0, val_s=20.0)  # validations of 2 batches (40 s) after steps 2 and 4
    trainer = L.Trainer(max_steps=4, logger=False, enable_checkpointing=False, enable_model_summary=False,
                        enable_progress_bar=False, accelerator="cpu", num_sanity_val_steps=0, val_check_interval=2,
                        check_val_every_n_epoch=None,
                        callbacks=[ProgressLines("Stage 2", 30, written.append, clock)])
    trainer.fit(module, batches(4), batches(2))
    assert written[0] == "Stage 2, validation: batch 2/2 (100%), 0.1 examples/s (0.05 batches/s), 0 s left"
    # step 3 at 43 s, 40 of them validating: 3 steps (6 examples) in 3 s; 1 step left at 43 s / 3 steps
    assert re.fullmatch(r"Stage 2: step 3/4 \(75%\), loss [\d.e-]+, 2 examples/s \(1 steps/s\), 14 s left", written[1])
    assert written[2].startswith("Stage 2, validation: batch 2/2")
    assert written[3].startswith("Stage 2: steps 4/4 done in 1m 24s")


def test_lines_leave_validation_time_out_of_the_rate_and_in_the_time_left():
    clock, written = Clock(), []
    lines = Lines("Stage 1", 100, 30, write=written.append, clock=clock)
    clock.now = 20.0
    lines.update(10, examples=80)
    lines.pause(10.0)  # a validation of 10 s inside the 40 s
    clock.now = 40.0
    lines.update(20, examples=80, loss=2.0)
    (line,) = written
    # 20 steps and 160 examples in 30 s of training; 80 steps left at 40 s / 20 steps
    assert line == "Stage 1: step 20/100 (20%), loss 2, 5.33 examples/s (0.667 steps/s), 2m 40s left"


def test_an_evaluation_counts_batches():
    clock, written = Clock(), []
    lines = Lines("Test (sk qa, 1000 examples)", 10, 30, unit="batch", write=written.append, clock=clock)
    clock.now = 30.0
    lines.update(4)
    assert written == ["Test (sk qa, 1000 examples): batch 4/10 (40%), 0.133 batches/s, 45 s left"]


def test_a_stage_stopped_early_says_so_and_a_resumed_one_counts_from_where_it_resumed():
    clock, written = Clock(), []
    lines = Lines("Stage 2", 300, 30, unit="step", done=100, write=written.append, clock=clock)
    clock.now = 10.0
    lines.update(150)
    lines.end()
    assert written == ["Stage 2: stopped at step 150/300 after 10 s (5 steps/s)"]


def test_only_rank_zero_writes():
    clock, written = Clock(), []
    callback = ProgressLines("Stage 2", 10.0, written.append, clock)
    trainer = SimpleNamespace(is_global_zero=False, max_steps=10, global_step=1, world_size=2, num_val_batches=[3])
    batch = {"input_ids": torch.zeros(2, 3)}  # this process's share of the step's batch

    def one_step():
        callback.on_train_start(trainer, None)
        clock.now += 10
        trainer.global_step = 2
        callback.on_train_batch_end(trainer, None, {"loss": torch.tensor(1.0)}, batch, 0)
        callback.on_validation_start(trainer, None)
        callback.on_validation_batch_end(trainer, None, None, batch, 0)
        callback.on_validation_end(trainer, None)
        callback.on_train_end(trainer, None)

    one_step()
    assert written == []
    trainer.is_global_zero, trainer.global_step = True, 1
    one_step()
    # the examples of both processes (2 x 2 in 10 s), from step 1 (where it started) to 2
    assert written[0] == "Stage 2: step 2/10 (20%), loss 1, 0.4 examples/s (0.1 steps/s), 1m 20s left"
    assert written[1].startswith("Stage 2: stopped at step 2/10 after 10 s")


@pytest.mark.parametrize("setting, terminal, shown", [
    ("auto", True, "bar"), ("auto", False, "lines"), ("bar", False, "bar"), ("lines", True, "lines"),
    ("none", True, "none")])
def test_the_setting_picks_bar_lines_or_nothing(make_cfg, tmp_path, monkeypatch, setting, terminal, shown):
    monkeypatch.setattr(progress, "stdout_is_terminal", lambda: terminal)
    cfg = make_cfg(*EVERYDAY, f"trainer.progress={setting}", "trainer.accelerator=cpu")
    trainer = make_trainer(cfg.trainer, False, tmp_path, 5, name="Stage 2")
    lines = [c for c in trainer.callbacks if isinstance(c, ProgressLines)]
    assert isinstance(trainer.progress_bar_callback, TQDMProgressBar) == (shown == "bar")
    assert len(lines) == (shown == "lines")


def test_bars_write_carriage_returns_and_lines_do_not(make_cfg, tmp_path, capfd, caplog, monkeypatch):
    """What `... > log 2>&1` holds: with the bar (a terminal's default), '\\r' updates; with lines, none."""
    monkeypatch.setattr(progress, "stdout_is_terminal", lambda: True)  # auto on a terminal
    cfg = make_cfg(*EVERYDAY, "trainer.accelerator=cpu")
    make_trainer(cfg.trainer, False, tmp_path, 4, name="Stage 2").fit(Tiny(), batches(4))
    assert "\r" in capfd.readouterr().out
    caplog.set_level(logging.INFO, logger=progress.__name__)
    cfg = make_cfg(*EVERYDAY, "trainer.accelerator=cpu", "trainer.progress=lines")
    make_trainer(cfg.trainer, False, tmp_path, 4, name="Stage 2").fit(Tiny(), batches(4))
    out = capfd.readouterr()
    assert "\r" not in out.out + out.err
    assert "Stage 2: steps 4/4 done in" in caplog.text


def test_library_bars_follow_the_mode(monkeypatch):
    import huggingface_hub.utils
    import transformers

    monkeypatch.setattr(progress, "_libraries_quiet", progress._libraries_quiet)  # restored after the test
    was = (datasets.is_progress_bar_enabled(), not huggingface_hub.utils.are_progress_bars_disabled(),
           transformers.utils.logging.is_progress_bar_enabled())
    try:
        progress.library_bars("lines")
        assert not datasets.is_progress_bar_enabled() and huggingface_hub.utils.are_progress_bars_disabled()
        assert not transformers.utils.logging.is_progress_bar_enabled()
        progress.library_bars("bar")
        assert datasets.is_progress_bar_enabled() and not huggingface_hub.utils.are_progress_bars_disabled()
        assert transformers.utils.logging.is_progress_bar_enabled()
    finally:
        (datasets.enable_progress_bars if was[0] else datasets.disable_progress_bars)()
        (huggingface_hub.utils.enable_progress_bars if was[1] else huggingface_hub.utils.disable_progress_bars)()
        (transformers.utils.logging.enable_progress_bar if was[2] else transformers.utils.logging.disable_progress_bar)()


def test_a_plain_loop_writes_lines_or_a_bar(caplog, capfd):
    caplog.set_level(logging.INFO, logger=progress.__name__)
    with Loop("Pre-training the tiny backbone (once)", 3, "lines") as shown:
        for _ in range(3):
            shown.step(1.5, 32)
    assert "Pre-training the tiny backbone (once): steps 3/3 done in" in caplog.text and "loss 1.5" in caplog.text
    with Loop("Pre-training", 3, "bar") as shown:
        for _ in range(3):
            shown.step(1.5, 32)
    assert "\r" in capfd.readouterr().err  # tqdm's bar


@pytest.mark.parametrize("override, message", [("trainer.progress=sometimes", "trainer.progress=sometimes is not one of"),
                                               ("trainer.progress_every_s=0", "trainer.progress_every_s=0")])
def test_a_wrong_setting_is_refused_before_anything_runs(make_cfg, override, message):
    with pytest.raises(UserError, match=re.escape(message)):
        schema.check(make_cfg(*EVERYDAY, override))


def test_the_setting_changes_no_store_key(make_cfg):
    """A display setting: the everyday command's components and result keep their keys whatever it is."""
    def keys(*overrides):
        cfg = make_cfg(*EVERYDAY, *overrides)
        return key(lang_spec(RunSpec.of(cfg))), key(task_spec(RunSpec.of(cfg))), key(result_spec(RunSpec.of(cfg)))

    assert keys() == keys("trainer.progress=none", "trainer.progress_every_s=5") == keys("trainer.progress=bar")
    assert keys()[0] != keys("lang_stage.max_steps=7")[0]  # (a setting that matters does change them)
