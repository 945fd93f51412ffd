"""A run that diverges says so: the rule (non-finite, exploded by a factor, a noisy healthy loss left alone), the
processes of one run stopping together, and a sweep in which a stage-1 and a stage-2 stage diverge while another
run completes: failed results naming step, loss and learning rate, nothing stored, the rest of the sweep goes on."""

from __future__ import annotations

import json
import math
import random
from types import SimpleNamespace

import pytest
import torch

from conftest import FAST_OVERRIDES, run_cli
from softprompt_xl.runtime.divergence import Diverged, DivergenceGuard, DivergenceRule
from softprompt_xl.errors import UserError


def first_alarm(rule: DivergenceRule, losses: list[float]) -> int | None:
    """The step (1-based, as Lightning's global_step after it) at which the rule first fires, or None."""
    for step, loss in enumerate(losses, 1):
        if rule.check(step, loss):
            return step
    return None


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_non_finite_loss_diverges_at_once(bad):
    rule = DivergenceRule()
    assert first_alarm(rule, [5.0, 4.0, 3.5, bad, 3.0]) == 4
    assert rule.last_finite == (3, 3.5)  # what the message names


def test_an_exploded_loss_diverges_once_half_the_window_is_high():
    rule = DivergenceRule(factor=100, window=10, floor=0.01)
    healthy = [3.0 * 0.98 ** t for t in range(40)]  # down to ~1.35
    exploded = healthy + [500.0] * 20
    step = first_alarm(rule, exploded)
    # The median of 10 exceeds 100 x the lowest median only once at least 5 of the last 10 losses are high.
    assert step is not None and 41 + 4 <= step <= 41 + 5
    # A few outlier batches (4 in a window of 10) never move the median.
    spikes = healthy + [500.0] * 4 + healthy[-10:]
    assert first_alarm(DivergenceRule(factor=100, window=10, floor=0.01), spikes) is None


def test_a_noisy_decreasing_loss_does_not_diverge():
    random.seed(0)
    losses = []
    for t in range(3000):
        loss = (4.0 * math.exp(-t / 300) + 0.02) * math.exp(random.gauss(0, 0.5))  # log-normal noise
        if random.random() < 0.03:
            loss *= 300  # a rare very hard batch
        losses.append(loss)
    assert first_alarm(DivergenceRule(), losses) is None


def test_the_floor_keeps_a_learnt_task_from_counting_as_exploded():
    learnt = [0.0005] * 30 + [0.2] * 30  # 400 x its best, but a loss of 0.2 is no explosion
    assert first_alarm(DivergenceRule(factor=100, window=10, floor=0.01), learnt) is None
    assert first_alarm(DivergenceRule(factor=100, window=10, floor=0.001), learnt) is not None


def test_factor_null_checks_only_non_finite_losses():
    assert first_alarm(DivergenceRule(factor=None), [1.0] * 20 + [1e9] * 20) is None
    assert first_alarm(DivergenceRule(factor=None), [1.0, math.nan]) == 2


@pytest.mark.parametrize("settings,said", [
    ({"factor": 0.5}, "factor must be a number above 1"), ({"factor": "x"}, "factor must be a number above 1"), ({"window": 0}, "at least 1"), ({"floor": 0}, "positive loss"),
    ({"factr": 10}, "unknown settings ['factr']"),
])
def test_bad_divergence_settings_are_refused_with_the_fix(settings, said):
    with pytest.raises(UserError) as err:
        DivergenceRule.from_config(settings)
    assert said in str(err.value) and "trainer.divergence" in str(err.value)


def test_the_processes_of_one_run_stop_at_the_same_step():
    """Each process sees only its share of the batch; the guard judges their mean, so a nan on one stops both."""
    shares: dict[int, float] = {}
    strategy = SimpleNamespace(reduce=lambda t, reduce_op: torch.tensor(sum(shares.values()) / len(shares)))
    optimizer = SimpleNamespace(param_groups=[{"lr": 0.5}])
    guards = [DivergenceGuard({"factor": 100, "window": 10, "floor": 0.01}, "task", "stage 2 (x)", "lr") for _ in (0, 1)]
    module = SimpleNamespace(optimizer_spec={"lr": 0.5})
    stopped = {}
    for step in range(1, 6):
        shares.update({0: 2.0, 1: math.nan if step == 3 else 2.0})  # only rank 1's share is non-finite
        for rank, guard in enumerate(guards):
            trainer = SimpleNamespace(world_size=2, strategy=strategy, global_step=step, max_steps=5,
                                      optimizers=[optimizer])
            guard.on_train_batch_start(trainer, module, None, step - 1)
            try:
                guard.on_train_batch_end(trainer, module, {"loss": torch.tensor(shares[rank])}, None, step - 1)
            except Diverged as err:
                stopped.setdefault(rank, err.record)
        if stopped:
            break
    assert set(stopped) == {0, 1} and stopped[0]["step"] == stopped[1]["step"] == 3
    assert stopped[0]["loss"] == "nan" and stopped[0]["last_finite_loss"] == 2.0 and stopped[0]["lr"] == 0.5


def test_a_sweep_reports_diverged_runs_and_goes_on(tmp_path, make_cfg):
    """ta trains at the tiny backbone's adapter lr and completes; tp's task prompt and lp_ta's language prompt get
    a prompt lr of 1e30: tp diverges in stage 2, the Slovak prompt in stage 1, and lp_ta is then not launched."""
    args = ["+combo=ta,tp,lp_ta", "lang=sk", f"paths.root={tmp_path}", "backbone.lr.prompt=1e30", *FAST_OVERRIDES,
            "checkpoint_every_n_steps=1", "task_stage.val_mode=loss", "-m"]
    proc = run_cli(*args)
    assert proc.returncode == 1, proc.stdout[-3000:]
    assert "3 of 4 jobs failed (2 of them diverged)" in proc.stdout
    found = {f.parent.name.split("_", 1)[1]: json.loads(f.read_text()) for f in (tmp_path / "outputs").rglob("result.json")}
    assert found["ta-sk-qa"]["status"] == "complete"
    for name, stage in (("lang-prompt-sk", "lang"), ("tp-sk-qa", "task")):
        result = found[name]
        record = result["diverged"]
        assert result["status"] == "failed" and record["stage"] == stage and record["loss"] == "nan"
        assert record["last_finite_step"] == record["step"] - 1 and math.isfinite(record["last_finite_loss"])
        assert record["configured_lr"] == 1e30 and 0 < record["lr"] <= 1e30
        assert f"at step {record['step']} of 4: the training loss is nan" in result["error"]
        assert f"last finite loss {record['last_finite_loss']:.4g}" in result["error"] and "learning rate" in result["error"]
    assert "Training diverged: stage 2 (the task prompt on Slovak qa)" in found["tp-sk-qa"]["error"]
    lp_ta = found["lp_ta-sk-qa"]
    assert lp_ta["status"] == "failed" and lp_ta["error"].startswith("Not run: the language prompt sk it needs failed")
    assert "Stage 1: training" not in proc.stdout.split("job(s): runs")[-1]  # not trained twice
    # Nothing of the diverged stages is stored: one component (ta's), one result, no checkpoints left.
    store = tmp_path / "store"
    assert [p.name.split("-")[:2] for p in (store / "components").iterdir() if p.is_dir()] == [["task", "ta"]]
    assert [p.name.split("-")[1] for p in (store / "results").glob("*.json")] == ["ta"]  # (and its predictions)
    assert not [p for p in (store / "checkpoints").glob("*") if p.is_dir()]
    # The completed run validated on its fixed subset, by loss, and was tested on its whole test split (the 16
    # records FAST_OVERRIDES gives it, not cut to validation's 8).
    ta = found["ta-sk-qa"]
    assert [(v["step"], v["mode"], v["examples"]) for v in ta["validation"]] == [(2, "loss", 8), (4, "loss", 8)]
    assert ta["best_step"] == min(ta["validation"], key=lambda v: v["loss"])["step"]
    predictions = next((tmp_path / "outputs").rglob("1_ta-sk-qa/predictions_test_sk.jsonl"))
    assert len(predictions.read_text().splitlines()) == 16

    # A failed run is not finished: the same sweep plans it (and the language prompt) again.
    from softprompt_xl.pipeline.plan import plan_sweep
    from softprompt_xl.pipeline.sweep import sweep_jobs

    again = plan_sweep(sweep_jobs(args[:-1]), lambda job: make_cfg(*job)).describe()
    assert "1 to train: prompt sk" in again and "1 finished (skipped), 2 to run" in again, again
