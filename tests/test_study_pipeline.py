"""The study pipeline: the store and its keys, skipping finished runs, stages in order under a parallel
launcher, resume after SIGKILL and SIGTERM, cross-lingual evaluation with swapped language components,
evaluation-only runs, the sweep plan, and every experiment config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import SHARED_CACHE, run_cli
from softprompt_xl.config import CONF_DIR, PROJECT_DIR

FAST = ["lang_stage.max_steps=4", "task_stage.max_steps=4", "task_stage.val_every_n_steps=2", "logger=none"]


def stored(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in (root / "store" / "components").glob(pattern) if p.is_dir())


def the_result(root: Path, name: str) -> dict:
    (path,) = [p for p in (root / "store" / "results").glob(f"result-{name}-*.json")]
    return json.loads(path.read_text())


def test_rerun_skips_finished_runs_and_force_recomputes(tmp_path):
    args = ["+combo=tp,lp_tp", "lang=sk", f"paths.root={tmp_path}", *FAST, "-m"]
    first = run_cli(*args)
    assert first.returncode == 0, first.stdout[-3000:]
    assert "stage 2, runs: 0 finished (skipped), 2 to run" in first.stdout
    created = the_result(tmp_path, "tp-sk-qa")["created"]

    started = time.time()
    again = run_cli(*args)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "2 finished (skipped), 0 to run" in again.stdout
    assert "skip tp sk qa: finished before" in again.stdout and "skip lp_tp sk qa: finished before" in again.stdout
    assert "Stage 2: training" not in again.stdout and "Launching" not in again.stdout
    print(f"rerun of a finished 2-run sweep: {time.time() - started:.1f} s")

    time.sleep(1.1)  # `created` has a resolution of one second
    forced = run_cli("+combo=tp", "lang=sk", f"paths.root={tmp_path}", *FAST, "force=true", "-m")
    assert forced.returncode == 0, forced.stdout[-3000:]
    assert "Stage 2: training" in forced.stdout
    assert the_result(tmp_path, "tp-sk-qa")["created"] != created


def test_store_lists_what_it_holds(tmp_path):
    proc = run_cli("+combo=lp_ta", "lang=sk", f"paths.root={tmp_path}", *FAST, "-m")
    assert proc.returncode == 0, proc.stdout[-3000:]
    listing = subprocess.run([sys.executable, "-m", "softprompt_xl.store", f"paths.root={tmp_path}"],
                             capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[1].split() == ["key", "kind", "role", "lang", "task", "size", "created", "status"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    kinds = sorted((r[1], r[2]) for r in rows.values())
    assert kinds == [("adapter", "task"), ("lp_ta", "result"), ("prompt", "lang")]
    assert all(r[-1] == "complete" for r in rows.values())
    assert not (tmp_path / "store" / "checkpoints").exists() or not any((tmp_path / "store" / "checkpoints").iterdir())


def test_language_components_train_once_before_parallel_task_jobs(tmp_path):
    # local_parallel runs the jobs of a batch as parallel processes (two at a time): three task jobs need the
    # same prompt.
    proc = run_cli("+combo=lp_ta,lp_tp,lp_tl", "lang=sk", f"paths.root={tmp_path}", *FAST,
                   "hydra/launcher=local_parallel", "hydra.launcher.timeout_min=20", "-m", timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 needed, 0 already in the store, 1 to train: prompt sk" in proc.stdout
    logs = "".join(p.read_text() for p in (tmp_path / "outputs").rglob("*.log"))
    assert logs.count("Stage 1: training") == 1  # in the stage=lang job, before the task jobs started
    assert logs.count("Language prompt for sk: found in the store") == 3
    assert len(stored(tmp_path, "lang-prompt-sk-*")) == 1


def _run_until_checkpoint(args: list[str], root: Path, stage: str = "task") -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SOFTPROMPT_XL_CACHE": str(SHARED_CACHE)}
    proc = subprocess.Popen([sys.executable, "-m", "softprompt_xl.train", *args], cwd=PROJECT_DIR, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while not list((root / "store" / "checkpoints").glob(f"{stage}-*/last.ckpt")):
        assert proc.poll() is None, proc.stdout.read()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    return proc


RESUMABLE = ["+combo=lp_tp", "lang=sk", "lang_stage.max_steps=4", "task_stage.max_steps=40",
             "task_stage.val_every_n_steps=10", "checkpoint_every_n_steps=5", "logger=none"]


def _weights(root: Path, role: str = "task") -> dict:
    (component,) = stored(root, f"{role}-*")
    return load_file(component / "weights.safetensors")


def _assert_same(expected: dict, resumed: dict) -> None:
    assert expected.keys() == resumed.keys()
    for name in expected:  # same data order, masks, RNG and optimiser state: the same weights
        assert (expected[name] - resumed[name]).abs().max().item() < 1e-5, name


def test_a_killed_run_resumes_and_ends_as_an_uninterrupted_one(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_cli(*RESUMABLE, f"paths.root={whole}").returncode == 0
    proc = _run_until_checkpoint([*RESUMABLE, f"paths.root={killed}"], killed)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((killed / "store" / "results").glob("*.json"))  # nothing half-finished passes for done
    again = run_cli(*RESUMABLE, f"paths.root={killed}")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "resuming at step" in again.stdout
    _assert_same(_weights(whole), _weights(killed))
    a, b = the_result(whole, "lp_tp-sk-qa"), the_result(killed, "lp_tp-sk-qa")
    assert a["metrics"] == b["metrics"] and a["best_step"] == b["best_step"]
    assert not any((killed / "store" / "checkpoints").iterdir())  # pruned once finished


def test_a_language_stage_killed_by_sigkill_resumes_to_the_same_component(tmp_path):
    # blocks of 4 batches: the resumed stream refills the block of its checkpoint and crosses into the next ones
    args = ["+combo=lp_tp", "lang=sk", "lang_stage.max_steps=30", "lang_stage.shuffle_batches=4", "checkpoint_every_n_steps=5", "task_stage.max_steps=2",
            "task_stage.val_every_n_steps=2", "logger=none"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run_cli(*args, f"paths.root={whole}").returncode == 0
    proc = _run_until_checkpoint([*args, f"paths.root={killed}"], killed, stage="lang")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    again = run_cli(*args, f"paths.root={killed}")
    assert again.returncode == 0 and "resuming at step" in again.stdout
    _assert_same(_weights(whole, "lang"), _weights(killed, "lang"))
    # the component is scored on the corpus's held-out documents, and the runs that use it say how it scored
    (component,) = stored(killed, "lang-*")
    meta = json.loads((component / "component.json").read_text())["meta"]
    assert meta["heldout_chunks"] > 0 and 0 < meta["heldout_accuracy"] < 1 and meta["heldout_loss"] > 0
    result = the_result(killed, "lp_tp-sk-qa")
    assert (result["lang_heldout_loss"], result["lang_heldout_accuracy"]) == (meta["heldout_loss"], meta["heldout_accuracy"])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_a_signal_saves_a_checkpoint_and_exits_for_a_requeue(tmp_path, signum):
    args = [*RESUMABLE[:-1], "logger=wandb", f"paths.root={tmp_path}"]
    proc = _run_until_checkpoint(args, tmp_path)
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode != 0
    assert f"{signum.name} received: saved a checkpoint at step" in out
    result = json.loads(next((tmp_path / "outputs").rglob("result.json")).read_text())
    assert result["status"] == "interrupted"
    assert list((tmp_path / "store" / "checkpoints").glob("task-*/last.ckpt"))
    again = run_cli(*args)
    assert again.returncode == 0 and "resuming at step" in again.stdout
    # the requeued stage continues the same W&B run: two offline segments of one run id
    task_runs = [p.name for p in (tmp_path / "wandb").rglob("offline-run-*/run-task-*.wandb")]
    assert len(task_runs) == 2 and task_runs[0] == task_runs[1]


def test_cross_lingual_evaluation_swaps_in_each_targets_component_and_eval_only_reuses(tmp_path):
    args = ["+combo=lp_ta", "lang=sk", f"paths.root={tmp_path}", *FAST]
    proc = run_cli(*args, "eval_langs=[sk,cs]", "-m")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "2 needed, 0 already in the store, 2 to train" in proc.stdout
    result = the_result(tmp_path, "lp_ta-sk-qa")
    assert set(result["metrics"]) == {"sk", "cs"}
    (sk,), (cs,) = stored(tmp_path, "lang-prompt-sk-*"), stored(tmp_path, "lang-prompt-cs-*")
    assert result["eval_lang_components"] == {"sk": sk.name, "cs": cs.name}

    # evaluating the same task adapter on another target trains nothing
    more = run_cli(*args, "eval_langs=[es]", "stage=eval")
    assert more.returncode == 0, more.stdout[-3000:]
    assert "Stage 2: training" not in more.stdout and "Task adapter for sk qa: found in the store" in more.stdout
    (es,) = stored(tmp_path, "lang-prompt-es-*")  # the target's prompt, trained because it was missing
    results = [json.loads(p.read_text()) for p in (tmp_path / "store" / "results").glob("*.json")]
    assert sorted(tuple(r["metrics"]) for r in results) == [("es",), ("sk", "cs")]


def test_eval_only_without_a_trained_component_says_what_to_do(tmp_path):
    proc = run_cli("+combo=tp", "lang=sk", f"paths.root={tmp_path}", *FAST, "stage=eval")
    assert proc.returncode == 1
    assert "stage=eval evaluates a stored task component" in proc.stdout and "without stage=eval" in proc.stdout


def test_dry_run_plans_the_paper_grid_without_training(tmp_path):
    proc = run_cli("experiment=paper_v1", f"paths.root={tmp_path}", "dry_run=true", "-m", timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Sweep plan: 144 run(s)." in proc.stdout
    assert "stage 1, language components: 12 needed, 0 already in the store, 12 to train" in proc.stdout
    assert "0 finished (skipped), 144 to run" in proc.stdout
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_every_experiment_config_composes(make_cfg, experiment):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    assert params and "+combo" in params and "lang" in params and "task" in params
    for combo in params["+combo"].split(","):
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            run = compose("train", overrides=[f"experiment={experiment}", f"+combo={combo}"])
        assert run.combo.name == combo


def test_keys_follow_the_configuration(make_cfg):
    from softprompt_xl.study.keys import key, lang_spec, result_spec, task_spec

    base = make_cfg("+combo=lp_ta", "lang=sk")
    assert key(task_spec(base)) == key(task_spec(make_cfg("+combo=lp_ta", "lang=sk")))  # same config, same key
    longer_lang = make_cfg("+combo=lp_ta", "lang=sk", "lang_stage.max_steps=7")
    assert key(lang_spec(longer_lang)) != key(lang_spec(base))
    # a task component trained with another language component is another component
    assert key(task_spec(longer_lang)) != key(task_spec(base))
    assert key(task_spec(make_cfg("+combo=lp_ta", "lang=sk", "seed=1"))) != key(task_spec(base))
    assert key(task_spec(make_cfg("+combo=lp_ta", "lang=sk", "combo.components.task.optimizer.lr=0.1"))) != key(task_spec(base))
    # what does not shape the weights does not change the key; evaluation languages change only the result's
    assert key(task_spec(make_cfg("+combo=lp_ta", "lang=sk", "checkpoint_every_n_steps=3"))) == key(task_spec(base))
    wider = make_cfg("+combo=lp_ta", "lang=sk", "eval_langs=[sk,cs]")
    assert key(task_spec(wider)) == key(task_spec(base)) and key(result_spec(wider)) != key(result_spec(base))
    assert key(lang_spec(base, "cs")).startswith("lang-prompt-cs-")
