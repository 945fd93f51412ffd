"""The pipeline (pipeline/): the store and its keys, skipping finished runs, stages in order under a parallel
launcher, resume after SIGKILL, SIGTERM and SIGUSR1, cross-lingual evaluation with swapped language components,
evaluation-only runs, the sweep plan, and every experiment config. The plan, the store and the stages run in this
process on composed configs; a subprocess only where only one shows it (parallel jobs, signals, the CLI's dry run)."""

from __future__ import annotations

import json
import logging
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import FAST_OVERRIDES, cli_env, run_cli, run_sweep
from softprompt_xl.config import CONF_DIR, PROJECT_DIR
from softprompt_xl.errors import UserError
from softprompt_xl.runtime import cluster
from softprompt_xl.pipeline import stages
from softprompt_xl.pipeline.plan import plan_sweep
from softprompt_xl.pipeline.sweep import sweep_jobs
from softprompt_xl.pipeline.run_spec import RunSpec


def stored(root: Path, pattern: str) -> list[Path]:
    return sorted(p for p in (root / "store" / "components").glob(pattern) if p.is_dir())


def the_result(root: Path, name: str) -> dict:
    (path,) = [p for p in (root / "store" / "results").glob(f"result-{name}-*.json")]
    return json.loads(path.read_text())


def test_rerun_skips_finished_runs_and_force_recomputes(every_combo, make_cfg, caplog, tmp_path):
    root, first, _ = every_combo
    assert "stage 2, runs: 0 finished (skipped), 14 to run" in first.describe()
    created = the_result(root, "tp-sk-qa")["created"]

    again = plan_sweep(sweep_jobs(["+combo=tp,lp_tp", "lang=sk", *FAST_OVERRIDES]),
                       lambda job: make_cfg(f"paths.root={root}", *job))
    described = again.describe()
    assert "2 finished (skipped), 0 to run" in described
    assert "skip tp sk qa: finished before" in described and "skip lp_tp sk qa: finished before" in described
    assert not again.todo and not again.lang_jobs  # the staged sweeper launches nothing else

    time.sleep(1.1)  # `created` has a resolution of one second
    caplog.set_level(logging.INFO)
    forced = stages.run(RunSpec.of(make_cfg(f"paths.root={root}", "+combo=tp", "lang=sk", *FAST_OVERRIDES,
                                            "force=true")), tmp_path)
    assert forced.status == "complete" and "Stage 2: training" in caplog.text
    assert the_result(root, "tp-sk-qa")["created"] != created


@pytest.mark.e2e
def test_language_components_train_once_before_parallel_task_jobs(tmp_path):
    # local_parallel runs the jobs of a batch as parallel processes (two at a time): two task jobs, side by side,
    # need the same prompt. No thread count is set, so each job gets its share of the cores (runtime/cluster.py).
    proc = run_cli("+combo=lp_ta,lp_tp", "lang=sk", f"paths.root={tmp_path}", *FAST_OVERRIDES,
                   "hydra/launcher=local_parallel", "hydra.launcher.timeout_min=20", "-m", timeout=1200,
                   env={"OMP_NUM_THREADS": None, "MKL_NUM_THREADS": None})
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "1 needed, 0 already in the store, 1 to train: prompt sk" in proc.stdout
    job_logs = {p.parent.name: p.read_text() for p in (tmp_path / "outputs").rglob("*.log")}
    logs = "".join(job_logs.values())
    assert logs.count("Stage 1: training") == 1  # in the language-component job, before the task jobs started
    assert logs.count("Language prompt for sk: found in the store") == 2
    assert len(stored(tmp_path, "lang-prompt-sk-*")) == 1
    cores = cluster.cores()
    threads = {name: re.findall(r"Torch threads: (\d+) ", log) for name, log in job_logs.items()}
    assert threads == {"0_lang-prompt-sk": [str(cores)],  # alone in its batch: every core
                       "1_lp_ta-sk-qa": [str(max(1, cores // 2))], "2_lp_tp-sk-qa": [str(max(1, cores // 2))]}


# Blocks of 4 batches in stage 1: a resumed stream refills the block of its checkpoint and crosses into the next
# ones. A checkpoint every 5 steps (stage 2 is stopped three times: after its first, second and third); stage 2
# validates every 10 steps on a fixed subset, and is tested on the first 16 records.
RESUMABLE = ["+combo=lp_tp", "lang=sk", "lang_stage.max_steps=16", "lang_stage.shuffle_batches=4",
             "task_stage.max_steps=30", "task_stage.val_every_n_steps=10", "task_stage.val_max_examples=8",
             "data.task.splits.test='test[:16]'", "checkpoint_every_n_steps=5", "logger=none"]


def _checkpoint(root: Path, stage: str) -> tuple[int, int] | None:
    """Which last.ckpt of `stage` is there now (each is written anew, by os.replace), or None."""
    for path in (root / "store" / "checkpoints").glob(f"{stage}-*/last.ckpt"):
        try:
            status = path.stat()
        except FileNotFoundError:
            continue
        return status.st_ino, status.st_mtime_ns
    return None


def _run_until_checkpoint(args: list[str], root: Path, name: str, stage: str = "task") -> subprocess.Popen:
    """`python -m softprompt_xl.train ARGS` in the background (its output in ROOT/NAME.log), until its `stage`
    has saved a checkpoint other than the one already there."""
    before = _checkpoint(root, stage)
    proc = subprocess.Popen([sys.executable, "-m", "softprompt_xl.train", *args, f"hydra.run.dir={root}/outputs/{name}"],
                            cwd=PROJECT_DIR, env=cli_env(), stdout=(root / f"{name}.log").open("w"),
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    while _checkpoint(root, stage) in (None, before):
        assert proc.poll() is None, (root / f"{name}.log").read_text()[-3000:]
        assert time.time() < deadline
        time.sleep(0.05)
    return proc


def _weights(root: Path, role: str = "task") -> dict:
    (component,) = stored(root, f"{role}-*")
    return load_file(component / "weights.safetensors")


def _assert_same(expected: dict, resumed: dict) -> None:
    assert expected.keys() == resumed.keys()
    for name in expected:  # same data order, masks, RNG and optimiser state: the same weights
        assert (expected[name] - resumed[name]).abs().max().item() < 1e-5, name


@pytest.mark.e2e
def test_killed_and_signalled_stages_resume_and_end_as_uninterrupted_ones(make_cfg, tmp_path, caplog):
    """One run, stopped four times: SIGKILL in stage 1; SIGKILL, SIGTERM and SIGUSR1 in stage 2. Each stop is a
    `python -m softprompt_xl.train` of its own; each resume, the same configuration in this process or the next
    command. The components end as those of a run never stopped."""
    caplog.set_level(logging.INFO)
    whole, root = tmp_path / "whole", tmp_path / "killed"
    root.mkdir()
    assert stages.run(RunSpec.of(make_cfg(f"paths.root={whole}", *RESUMABLE)), whole / "outputs").status == "complete"
    args = [*RESUMABLE, f"paths.root={root}"]

    # SIGKILL in stage 1: nothing half-finished passes for done; stage 1 resumes to the same component
    proc = _run_until_checkpoint(args, root, "lang-killed", stage="lang")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not stored(root, "lang-*") and not list((root / "store" / "results").glob("*.json"))
    assert stages.run(RunSpec.of(make_cfg(f"paths.root={root}", *RESUMABLE, "stage=lang")),
                      root / "outputs" / "lang").status == "complete"
    assert "resuming at step" in caplog.text
    _assert_same(_weights(whole, "lang"), _weights(root, "lang"))

    # SIGKILL in stage 2
    proc = _run_until_checkpoint(args, root, "task-killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((root / "store" / "results").glob("*.json"))  # nothing half-finished passes for done

    # SIGTERM, then SIGUSR1 (as SLURM sends before a time limit): a checkpoint saved, and an exit for a requeue.
    # Each stopped command resumed the one before; the requeued stage continues the same W&B run.
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        name = signum.name
        proc = _run_until_checkpoint([*args[:-2], "logger=wandb", args[-1]], root, name)
        proc.send_signal(signum)
        proc.wait(timeout=300)
        out = (root / f"{name}.log").read_text()
        assert proc.returncode != 0
        assert "resuming at step" in out and f"{name} received: saved a checkpoint at step" in out, out[-3000:]
        result = json.loads((root / "outputs" / name / "result.json").read_text())
        assert result["status"] == "interrupted"
        assert list((root / "store" / "checkpoints").glob("task-*/last.ckpt"))
    task_runs = [p.name for p in (root / "wandb").rglob("offline-run-*/run-task-*.wandb")]
    assert len(task_runs) == 2 and task_runs[0] == task_runs[1]

    caplog.clear()
    again = stages.run(RunSpec.of(make_cfg(f"paths.root={root}", *RESUMABLE)), root / "outputs" / "again")
    assert again.status == "complete" and "resuming at step" in caplog.text
    _assert_same(_weights(whole), _weights(root))
    a, b = the_result(whole, "lp_tp-sk-qa"), the_result(root, "lp_tp-sk-qa")
    assert a["metrics"] == b["metrics"] and a["best_step"] == b["best_step"]
    assert not any((root / "store" / "checkpoints").iterdir())  # pruned once finished
    # the language component is scored on the corpus's held-out documents, and the runs that use it say how it scored
    (component,) = stored(root, "lang-*")
    meta = json.loads((component / "component.json").read_text())["meta"]
    assert meta["heldout_chunks"] > 0 and 0 < meta["heldout_accuracy"] < 1 and meta["heldout_loss"] > 0
    assert (b["lang_heldout_loss"], b["lang_heldout_accuracy"]) == (meta["heldout_loss"], meta["heldout_accuracy"])


def test_cross_lingual_evaluation_swaps_in_each_targets_component_and_eval_only_reuses(every_combo, make_cfg, caplog,
                                                                                      tmp_path):
    root = every_combo[0]  # lp_ta's task adapter for sk and the sk prompt are there; cs and es prompts are not
    args = ["+combo=lp_ta", "lang=sk", *FAST_OVERRIDES]
    fresh = plan_sweep(sweep_jobs([*args, "eval_langs=[sk,cs]"]), lambda job: make_cfg(f"paths.root={tmp_path}", *job))
    assert "2 needed, 0 already in the store, 2 to train" in fresh.describe()
    plan, found = run_sweep(make_cfg, root, *args, "eval_langs=[sk,cs]")
    assert "2 needed, 1 already in the store, 1 to train: prompt cs" in plan.describe()
    result = found["lp_ta-sk-qa"]
    assert set(result["metrics"]) == {"sk", "cs"}
    (sk,), (cs,) = stored(root, "lang-prompt-sk-*"), stored(root, "lang-prompt-cs-*")
    assert result["eval_lang_components"] == {"sk": sk.name, "cs": cs.name}

    # evaluating the same task adapter on another target trains nothing
    caplog.set_level(logging.INFO)
    caplog.clear()
    more = stages.run(RunSpec.of(make_cfg(f"paths.root={root}", *args, "eval_langs=[es]", "stage=eval")),
                      tmp_path / "more")
    assert more.status == "complete"
    assert "Stage 2: training" not in caplog.text and "Task adapter for sk qa: found in the store" in caplog.text
    (es,) = stored(root, "lang-prompt-es-*")  # the target's prompt, trained because it was missing
    results = [json.loads(p.read_text()) for p in (root / "store" / "results").glob("result-lp_ta-sk-qa-*.json")]
    # each evaluation is a result of its own (("sk",): the run of every_combo)
    assert sorted(tuple(r["metrics"]) for r in results) == [("es",), ("sk",), ("sk", "cs")]


def test_eval_only_without_a_trained_component_says_what_to_do(make_cfg, tmp_path):
    """stage=eval trains nothing: with no stored task component a sweep is refused in its plan, before stage 1 (the
    README's `+combo=ll_tl lang=en stage=eval eval_langs=[sk] -m` trained two language LoRAs first), and so is a
    single run, before its language components."""
    args = ["+combo=ll_tl,full_ft,zero_shot", "lang=en", "stage=eval", "eval_langs=[sk]", *FAST_OVERRIDES]
    with pytest.raises(UserError) as err:
        plan_sweep(sweep_jobs(args), lambda job: make_cfg(f"paths.root={tmp_path}", *job))
    message = str(err.value)
    assert message.startswith("stage=eval evaluates stored task components and trains nothing, but the store")
    assert "2 run(s) of this command: ll_tl en qa (no task component task-ll_tl-lora-en-qa-" in message
    assert "full_ft en qa (full_ft does not store its fine-tuned backbone)" in message  # zero_shot needs nothing
    assert "without stage=eval" in message
    with pytest.raises(UserError) as err:
        stages.run(RunSpec.of(make_cfg(f"paths.root={tmp_path}", "+combo=lp_tp", "lang=sk", *FAST_OVERRIDES,
                                       "stage=eval")), tmp_path)
    assert "stage=eval evaluates stored task components" in str(err.value) and "without stage=eval" in str(err.value)
    assert not (tmp_path / "store" / "components").exists()  # the language prompt was not trained first


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
    from softprompt_xl.pipeline.keys import key, lang_spec, result_spec, task_spec

    def keys(*overrides: str) -> tuple[str, str, str]:  # of the language component, the task part and the result
        run = RunSpec.of(make_cfg("+combo=lp_ta", "lang=sk", *overrides))
        return key(lang_spec(run)), key(task_spec(run)), key(result_spec(run))

    base = keys()
    assert keys() == base  # same config, same keys
    longer_lang = keys("lang_stage.max_steps=7")
    # a task component trained with another language component is another component
    assert longer_lang[0] != base[0] and longer_lang[1] != base[1]
    assert keys("seed=1")[1] != base[1] and keys("combo.components.task.optimizer.lr=0.1")[1] != base[1]
    # what does not shape the weights does not change the key; evaluation languages change only the result's
    assert keys("checkpoint_every_n_steps=3") == base
    wider = keys("eval_langs=[sk,cs]")
    assert wider[:2] == base[:2] and wider[2] != base[2]
    assert key(lang_spec(RunSpec.of(make_cfg("+combo=lp_ta", "lang=sk", "eval_langs=[sk,cs]")), "cs")).startswith(
        "lang-prompt-cs-")
