"""A damaged store file is a missing store entry: a component's weights or header cut short, a result's test
predictions cut short, a checkpoint that does not load. Each is named in a warning, taken out of the store, and
done again, and the run completes with what an undamaged store gives. (A damaged result.json: test_records.py.)"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from safetensors.torch import save_file

from conftest import FAST_OVERRIDES, run_sweep
from softprompt_xl.model.component_header import HEADER_FILE, WEIGHTS_FILE, damage
from softprompt_xl.runtime.resume import LAST
from softprompt_xl.pipeline import records
from softprompt_xl.pipeline.keys import key, result_spec, task_spec
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.pipeline.run_spec import RunSpec

ARGS = ("lang=sk", *FAST_OVERRIDES)


@pytest.fixture(scope="module")
def finished(make_cfg, tmp_path_factory) -> Path:
    """A store with LP+TA on Slovak QA finished (its language prompt, task adapter, result and predictions);
    each test damages a copy."""
    root = tmp_path_factory.mktemp("finished")
    run_sweep(make_cfg, root, "+combo=lp_ta", *ARGS)
    return root


@pytest.fixture
def damaged(finished, tmp_path) -> Path:
    """A copy of the finished store's root, to damage."""
    copy = tmp_path / "root"
    shutil.copytree(finished / "store", copy / "store")
    return copy


def cut(path: Path, keep: float = 0.5) -> bytes:
    """Cut `path` short, as a full disk or an interrupted copy leaves it; return what it held."""
    whole = path.read_bytes()
    path.write_bytes(whole[:int(len(whole) * keep)])
    return whole


def component(root: Path, prefix: str) -> Path:
    (found,) = [p for p in (root / "store" / "components").glob(f"{prefix}-*") if p.is_dir()]
    return found


def whole_files(root: Path) -> dict[str, bytes]:
    """The store's files but its locks, and but what records when and how long (headers, results)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "store").rglob("*"))
            if p.is_file() and not p.name.endswith((".lock", ".json"))}


@pytest.mark.parametrize("cut_at", [0, 5, 0.5, -1])  # empty, inside the length prefix, in the data, its last byte
def test_a_weights_file_cut_anywhere_is_found_without_loading_it(tmp_path, cut_at):
    import torch

    save_file({"a": torch.randn(64, 8), "b": torch.randn(7)}, str(tmp_path / WEIGHTS_FILE))
    (tmp_path / HEADER_FILE).write_text('{"kind": "prompt", "format_version": 1, "role": "lang", "name": "sk", '
                                        '"config": {}, "num_parameters": 519}')
    assert damage(tmp_path) is None
    whole = (tmp_path / WEIGHTS_FILE).read_bytes()
    end = len(whole) - 1 if cut_at == -1 else int(len(whole) * cut_at) if isinstance(cut_at, float) else cut_at
    (tmp_path / WEIGHTS_FILE).write_bytes(whole[:end])
    assert damage(tmp_path).startswith(f"{tmp_path / WEIGHTS_FILE} is damaged (")


def test_a_cut_language_component_is_removed_and_trained_again(damaged, make_cfg, caplog):
    root = damaged
    lang = component(root, "lang")
    weights = lang / WEIGHTS_FILE
    whole = cut(weights)
    # LP+TP needs the same language prompt: the plan finds it damaged, and its stage-1 job trains it again
    with caplog.at_level(logging.WARNING):
        plan, results = run_sweep(make_cfg, root, "+combo=lp_tp", *ARGS)
    assert f"{weights} is damaged (incomplete metadata, file not fully covered): the component {lang.name} is " \
           "removed from the store, and trained again" in caplog.text
    assert caplog.text.count(f"{weights} is damaged") == 1  # said once, though looked up again by the job
    assert [job.key for job in plan.lang_jobs] == [lang.name]
    assert results["lp_tp-sk-qa"]["status"] == "complete"
    assert damage(lang) is None and weights.read_bytes() == whole  # the same weights as before the damage
    assert not [p for p in lang.parent.iterdir() if p.name.startswith(".")]  # nothing set aside is left


def test_a_task_component_with_a_cut_header_is_trained_again(damaged, finished, make_cfg, caplog):
    root = damaged
    cfg = make_cfg(f"paths.root={root}", "+combo=lp_ta", *ARGS)
    store = Store(root / "store")
    task = store.component_dir(key(task_spec(RunSpec.of(cfg))))
    cut(task / HEADER_FILE)
    result_key = key(result_spec(RunSpec.of(cfg)))
    store.result_file(result_key).unlink()  # the run to do again (its result gone), its task adapter damaged
    with caplog.at_level(logging.WARNING):
        _, results = run_sweep(make_cfg, root, "+combo=lp_ta", *ARGS)
    assert f"{task / HEADER_FILE} is not valid JSON" in caplog.text and "removed from the store, and trained again" \
        in caplog.text
    assert "Task adapter for sk qa: found in the store" not in caplog.text
    assert results["lp_ta-sk-qa"]["status"] == "complete" and damage(task) is None
    before = Store(finished / "store").read_result(result_key)
    assert store.read_result(result_key).metrics == before.metrics
    assert whole_files(root) == whole_files(finished)  # the same adapter (trained from scratch), result, predictions


def test_cut_predictions_make_their_run_evaluated_again(damaged, finished, make_cfg, caplog):
    root = damaged
    cfg = make_cfg(f"paths.root={root}", "+combo=lp_ta", *ARGS)
    store = Store(root / "store")
    result_key = key(result_spec(RunSpec.of(cfg)))
    path = store.predictions_file(result_key)
    whole = cut(path, 0.9)
    caplog.set_level(logging.INFO)
    plan, results = run_sweep(make_cfg, root, "+combo=lp_ta", *ARGS)
    assert f"{path} is damaged ({int(len(whole) * 0.9)} bytes, not the {len(whole)} bytes stored): treated as " \
           "missing, so its run counts as not done" in caplog.text
    assert not plan.finished and len(plan.todo) == 1 and not plan.lang_jobs
    assert "found in the store" in caplog.text  # only evaluated again: the task adapter is whole
    assert results["lp_ta-sk-qa"]["status"] == "complete"
    assert path.read_bytes() == whole and records.read_predictions(path)
    assert store.read_result(result_key).metrics == Store(finished / "store").read_result(result_key).metrics


def test_a_damaged_checkpoint_restarts_its_stage_from_scratch(damaged, finished, make_cfg, caplog):
    root = damaged
    cfg = make_cfg(f"paths.root={root}", "+combo=lp_ta", *ARGS)
    store = Store(root / "store")
    task_key, result_key = key(task_spec(RunSpec.of(cfg))), key(result_spec(RunSpec.of(cfg)))
    task = store.component_dir(task_key)
    shutil.rmtree(task)
    store.result_file(result_key).unlink()
    checkpoints = store.checkpoint_dir(task_key)
    checkpoints.mkdir(parents=True)
    (checkpoints / LAST).write_bytes(b"PK\x03\x04 cut short")
    (checkpoints / f".{LAST}.tmp").write_bytes(b"a save that was killed")
    with caplog.at_level(logging.INFO):
        _, results = run_sweep(make_cfg, root, "+combo=lp_ta", *ARGS)
    assert f"{checkpoints / LAST} is damaged (" in caplog.text and "removed, so the stage restarts from scratch" \
        in caplog.text
    assert "resuming at step" not in caplog.text
    assert results["lp_ta-sk-qa"]["status"] == "complete" and not checkpoints.exists()
    # the same weights as the undamaged store's: trained from scratch, as it was
    assert (task / WEIGHTS_FILE).read_bytes() == (Store(finished / "store").component_dir(task_key) / WEIGHTS_FILE) \
        .read_bytes()
