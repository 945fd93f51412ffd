"""Batches grouped by length (task_stage.group_by_length): every example still once per epoch, less padding, the
same batches when resumed or shared out over processes, and the store key unchanged while it is unset."""

from __future__ import annotations

import random

import pytest

from conftest import FAST_OVERRIDES
from softprompt_xl.runtime.resume import ResumableSampler
from softprompt_xl.pipeline.run_spec import RunSpec

N, BATCH = 203, 8  # not a multiple of the batch: batches cross epochs
LENGTHS = [(random.Random(i).randint(5, 200), random.Random(-i).randint(1, 30)) for i in range(N)]


def batches(sampler) -> list[list[int]]:
    order = list(sampler)
    return [order[i:i + BATCH] for i in range(0, len(order), BATCH)]


def padded_tokens(groups: list[list[int]]) -> int:
    return sum(len(b) * (max(LENGTHS[i][0] for i in b) + max(LENGTHS[i][1] for i in b)) for b in groups)


def test_grouped_batches_see_every_example_once_per_epoch_and_pad_less():
    total = 3 * N
    grouped = list(ResumableSampler(N, total, seed=7, batch=BATCH, lengths=LENGTHS, group=10))
    plain = list(ResumableSampler(N, total, seed=7, batch=BATCH))
    for epoch in range(3):
        assert sorted(grouped[epoch * N:(epoch + 1) * N]) == list(range(N))
    assert padded_tokens(batches(grouped)) < 0.75 * padded_tokens(batches(plain))
    # no lengths, or a group of one batch: the random batches of before, example for example
    assert list(ResumableSampler(N, total, seed=7, batch=BATCH, lengths=LENGTHS, group=1)) == plain
    assert list(ResumableSampler(N, total, seed=7, batch=BATCH, lengths=None, group=10)) == plain
    assert list(ResumableSampler(N, total, seed=8, batch=BATCH, lengths=LENGTHS, group=10)) != grouped  # seeded


def test_grouped_batches_resume_exactly_and_share_out_over_processes():
    whole = list(ResumableSampler(N, 2 * N, seed=3, batch=BATCH, lengths=LENGTHS, group=5))
    start = 25 * BATCH  # resumed at step 25, in the first epoch's grouped order
    assert list(ResumableSampler(N, 2 * N, seed=3, start=start, batch=BATCH, lengths=LENGTHS, group=5)) == whole[start:]
    later = 30 * BATCH  # in the second epoch
    assert list(ResumableSampler(N, 2 * N, seed=3, start=later, batch=BATCH, lengths=LENGTHS, group=5)) == whole[later:]
    halves = [list(ResumableSampler(N, 2 * N, seed=3, rank=r, world=2, batch=BATCH, lengths=LENGTHS, group=5))
              for r in (0, 1)]
    half = BATCH // 2
    rebuilt = [i for b in range(len(whole) // BATCH) for h in halves for i in h[half * b:half * (b + 1)]]
    assert rebuilt == whole[:len(rebuilt)]


def test_the_setting_enters_the_store_key_only_when_set(make_cfg):
    from softprompt_xl.errors import UserError
    from softprompt_xl.pipeline import schema
    from softprompt_xl.pipeline.keys import key, result_spec, task_spec

    base = make_cfg("+combo=lp_ta", "lang=sk")
    assert "group_by_length" not in task_spec(RunSpec.of(base))["stage"]  # unset: the keys of before
    grouped = make_cfg("+combo=lp_ta", "lang=sk", "task_stage.group_by_length=50")
    grouped_run, base_run = RunSpec.of(grouped), RunSpec.of(base)
    assert key(task_spec(grouped_run)) != key(task_spec(base_run))
    assert key(result_spec(grouped_run)) != key(result_spec(base_run))
    schema.check(grouped)
    with pytest.raises(UserError, match=r"task_stage.group_by_length=0: must be a whole number of at least 1"):
        schema.check(make_cfg("+combo=lp_ta", "lang=sk", "task_stage.group_by_length=0"))


def test_a_run_trains_on_grouped_batches(make_cfg, monkeypatch, tmp_path):
    from softprompt_xl.pipeline import stages

    groups = []
    order = ResumableSampler.epoch_order
    monkeypatch.setattr(ResumableSampler, "epoch_order", lambda self, epoch: groups.append(self.group) or order(self, epoch))
    cfg = make_cfg(f"paths.root={tmp_path}", "+combo=tp", "lang=sk", *FAST_OVERRIDES, "task_stage.group_by_length=3")
    assert stages.run(RunSpec.of(cfg), tmp_path / "out").status == "complete"
    assert groups and set(groups) == {3}
