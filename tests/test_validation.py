"""What validation during training costs: a fixed subset of the validation split (task_stage.val_max_examples)
and validation by loss instead of generation (task_stage.val_mode). The test split stays whole (test_divergence.py
checks it on a completed run of a sweep)."""

from __future__ import annotations

import random

import pytest

from softprompt_xl.data.loaders import TaskSplit, fixed_subset
from softprompt_xl.data.tasks import get_task
from softprompt_xl.errors import UserError
from softprompt_xl.model.module import ComboModule


def split_of(n: int, windows: dict[int, int] | None = None, ids: list | None = None) -> TaskSplit:
    """n records, record i with windows.get(i, 1) inputs, each input naming its record in `index` and `input_ids`."""
    windows = windows or {}
    examples = [{"input_ids": [i, w], "labels": [1], "index": i} for i in range(n) for w in range(windows.get(i, 1))]
    return TaskSplit(examples, [f"gold {i}" for i in range(n)], "sk", ids if ids is not None else [f"q{i}" for i in range(n)])


def test_the_subset_has_the_requested_size_and_keeps_records_whole():
    whole = split_of(200, windows={3: 3, 10: 2, 150: 4})
    part = fixed_subset(whole, 40)
    assert len(part.references) == len(part.ids) == 40
    kept = [int(i[1:]) for i in part.ids]
    assert kept == sorted(kept) and len(set(kept)) == 40  # split order, no repeats
    assert part.references == [f"gold {i}" for i in kept]
    # every input of a kept record, re-indexed to the record's place in the subset
    expected = [(position, e["input_ids"]) for position, i in enumerate(kept) for e in whole.examples if e["index"] == i]
    assert [(e["index"], e["input_ids"]) for e in part.examples] == expected


def test_the_subset_depends_on_the_split_alone():
    whole = split_of(500)
    assert fixed_subset(whole, 50).ids == fixed_subset(whole, 50).ids
    random.seed(1)  # the run's seed plays no part
    assert fixed_subset(whole, 50).ids == fixed_subset(split_of(500), 50).ids
    # the same records whatever their order in the file
    order = list(range(500))
    random.shuffle(order)
    shuffled = split_of(500, ids=[f"q{i}" for i in order])
    assert sorted(fixed_subset(shuffled, 50).ids) == sorted(fixed_subset(whole, 50).ids)
    # nested: a smaller subset lies inside a larger one; not simply the first records
    assert set(fixed_subset(whole, 20).ids) < set(fixed_subset(whole, 50).ids)
    assert fixed_subset(whole, 50).ids != whole.ids[:50]


def test_no_cap_or_a_cap_above_the_split_keeps_it_whole():
    whole = split_of(30)
    assert fixed_subset(whole, None) is whole and fixed_subset(whole, 30) is whole and fixed_subset(whole, 1000) is whole


@pytest.mark.parametrize("bad", [0, -5, "1000", 2.5, True])
def test_a_bad_cap_is_refused_with_the_fix(bad):
    with pytest.raises(UserError, match=r"task_stage.val_max_examples=.*null for the whole validation split"):
        fixed_subset(split_of(10), bad)


def test_an_unknown_validation_mode_is_refused():
    with pytest.raises(UserError, match=r"task_stage.val_mode=bleu is not a validation mode: use generation .* or loss"):
        ComboModule(None, [], val_mode="bleu")


def test_validation_by_loss_never_generates_and_keeps_the_lowest_loss(make_cfg, tiny, tmp_path, monkeypatch):
    """Stage 2 in-process: a validation at every step on 7 records, by loss; the best step is the lowest loss."""
    from softprompt_xl.model import family
    from softprompt_xl.model.components.compose import ComposedModel
    from softprompt_xl.pipeline.run_spec import RunSpec
    from softprompt_xl.pipeline.stages import Job, TaskStage, train_task_part

    cfg = make_cfg(f"paths.root={tmp_path}", "+combo=ta", "lang=sk", "logger=none", "task_stage.max_steps=4", "task_stage.val_every_n_steps=1",
                   "task_stage.val_mode=loss", "task_stage.val_max_examples=7", "combo.components.task.optimizer.lr=0.05")

    def no_generation(*args, **kwargs):
        raise AssertionError("validation by loss generated")

    monkeypatch.setattr(family, "_greedy", no_generation)  # every way to generate goes through it, in either family
    model, tokenizer = tiny
    run = RunSpec.of(cfg)
    info = train_task_part(Job.of(run, tmp_path), TaskStage.of(run, get_task(run.task)), ComposedModel(model, tokenizer))
    history = info["validation"]
    assert [(v["step"], v["mode"], v["examples"]) for v in history] == [(s, "loss", 7) for s in (1, 2, 3, 4)]
    assert all(v["seconds"] >= 0 and v["inputs"] >= 7 and "f1" not in v for v in history)
    losses = [v["loss"] for v in history]
    assert len(set(losses)) == 4  # the weights changed between validations
    assert info["best_step"] == history[losses.index(min(losses))]["step"]
