"""The store keys of the everyday command and of the paper's two studies stay what they were: a store filled before a
change to the code must still be found by it (results skipped, components reused). tests/store_keys.json holds the
keys as the code computed them at 9fa8f92, before the typed run spec (pipeline/run_spec.py) replaced the raw config
in pipeline/keys.py: for every run, its task part's key, its result's key and the key of each evaluation language's
component."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import experiment_grid
from softprompt_xl.pipeline import schema
from softprompt_xl.pipeline.keys import key, lang_spec, result_spec, task_spec
from softprompt_xl.pipeline.run_spec import RunSpec

RECORDED = json.loads((Path(__file__).parent / "store_keys.json").read_text())


def keys_of(make_cfg, root: Path, job: list[str]) -> tuple[str, dict] | None:
    cfg = make_cfg(f"paths.root={root}", *job)
    if not schema.has_task_data(cfg, cfg.lang.code):  # Bulgarian QA: not a run
        return None
    run = RunSpec.of(cfg)
    langs = {code: key(spec) if (spec := lang_spec(run, code)) else None
             for code in dict.fromkeys([run.lang.code, *run.eval_langs])}
    return run.name(), {"task": key(task_spec(run)), "result": key(result_spec(run)), "lang": langs}


def test_the_everyday_commands_keys_are_unchanged(make_cfg, tmp_path):
    assert dict([keys_of(make_cfg, tmp_path, ["+combo=lp_ta", "lang=sk"])]) == RECORDED["everyday"]


@pytest.mark.parametrize("experiment", ["paper_v1", "paper_v2"])
def test_a_sample_of_the_papers_runs_keeps_its_keys(make_cfg, tmp_path, experiment):
    # every 13th run, a stride prime to the grid's sides: every combo, language and task turns up (the whole grid:
    # the slow test below)
    jobs = experiment_grid(experiment)
    sample = [found for job in jobs[::13] if (found := keys_of(make_cfg, tmp_path, job))]
    for i in range(3):  # combo, language, task
        assert {name.split("-")[i] for name, _ in sample} == {name.split("-")[i] for name in RECORDED[experiment]}
    assert dict(sample) == {name: RECORDED[experiment][name] for name, _ in sample}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", ["paper_v1", "paper_v2"])
def test_every_run_of_the_papers_keeps_its_keys(make_cfg, tmp_path, experiment):
    found = dict(filter(None, (keys_of(make_cfg, tmp_path, job) for job in experiment_grid(experiment))))
    assert found == RECORDED[experiment]
