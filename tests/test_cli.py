"""The command line as a user meets it (bad input, failures inside a sweep, the everyday command, the store's
listing), and, in this process on composed configs, every combo and every task in every language."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

import conftest
from conftest import ALL_COMBOS, FAST_OVERRIDES, run_cli, run_sweep
from softprompt_xl.config import CONF_DIR, PROJECT_DIR
from softprompt_xl.errors import UserError
from softprompt_xl.pipeline.run_spec import RunSpec


def results(sweep_root: Path) -> dict[str, dict]:
    """The runs' results by `<combo>-<lang>-<task>` (the sweep's language-component jobs left out)."""
    found = {f.parent.name.split("_", 1)[1]: json.loads(f.read_text()) for f in sweep_root.rglob("result.json")}
    return {name: result for name, result in found.items() if not name.startswith("lang-")}


@pytest.mark.parametrize("override,group,valid", [("lang=xx", "lang", "sk"), ("task=nope", "task", "qa")])
def test_unknown_choice_fails_with_the_valid_ones(tmp_path, override, group, valid):
    proc = run_cli("+combo=lp_ta", override, f"paths.root={tmp_path}", "-m")
    assert proc.returncode != 0
    if group == "lang":  # said before Hydra composes, with how to add one (train.unknown_language_named)
        assert "Unknown language 'xx'" in proc.stdout and "A seventeenth language" in proc.stdout
    else:  # Hydra's message, as the command prints it
        assert f"Could not find '{group}/" in proc.stdout and "Available options" in proc.stdout
    assert valid in proc.stdout


@pytest.mark.parametrize("override,group,valid", [("+combo=nope", "combo", "lp_ta"), ("backbone=nope", "backbone", "mt0_base")])
def test_other_unknown_choices_get_hydras_message_with_the_valid_ones(make_cfg, override, group, valid):
    # The same composition error as task=nope above, whose command prints it: here without a process of its own.
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException) as err:
        make_cfg(*([override] if group == "combo" else ["+combo=lp_ta", override]))
    assert f"Could not find '{group}/" in str(err.value) and "Available options" in str(err.value)
    assert valid in str(err.value)


def test_an_unknown_experiment_is_named_with_the_known_ones(make_cfg):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException) as err:  # not "No combo chosen": `optional` would skip it silently
        make_cfg("experiment=paper_v9")
    assert "Could not find 'experiment/paper_v9'" in str(err.value) and "paper_v2" in str(err.value)


def test_a_framework_error_in_a_single_runs_plan_is_its_paragraph_alone(tmp_path):
    # Planning reads the run's data sources (their fingerprint is in the key): a file in no known format is refused
    # there, before any job, as the sweeper's plan refuses it with -m.
    bad = tmp_path / "teqquad.txt"
    bad.write_text("Toto je text.\nIný riadok.\n")
    files = f"data.files={{train: {bad}, validation: {bad}, test: {bad}}}"
    proc = run_cli("+combo=ta", "lang=sk", files, f"paths.root={tmp_path}", "logger=none")
    assert proc.returncode == 2, proc.stdout[-3000:]
    assert f"Cannot tell the format of {bad}" in proc.stdout and "Traceback" not in proc.stdout


def test_missing_combo_lists_the_combos(tmp_path):
    proc = run_cli("lang=sk", f"paths.root={tmp_path}", "-m")
    assert proc.returncode == 2
    assert "No combo chosen. Add +combo=NAME" in proc.stdout and "lp_ta" in proc.stdout


def test_hub_backbone_offline_fails_at_once_with_advice(tmp_path):
    started = time.time()
    proc = run_cli("+combo=ta", "backbone=mt0_base", f"paths.root={tmp_path}", "logger=none")
    assert proc.returncode == 1
    assert time.time() - started < 60
    assert "Could not load the backbone 'bigscience/mt0-base'" in proc.stdout
    assert "backbone.name=DIR" in proc.stdout
    assert "Traceback" not in proc.stdout
    result = json.loads(next(tmp_path.rglob("result.json")).read_text())
    assert result["status"] == "failed" and "bigscience/mt0-base" in result["error"]


@pytest.mark.parametrize("name", ["/data/mt0-base", "./mt0-base", "models/bigscience/mt0-base", "EMPTY"])
def test_a_backbone_directory_that_is_none_says_how_to_make_one(make_cfg, tmp_path, name):
    """The README's `backbone=mt0_base backbone.name=/data/mt0-base` where there is no such directory (or one without
    a model): said in one paragraph, never a Hub id error (a name that can only be a path is never sent to the Hub)."""
    from softprompt_xl.model.backbone import load_backbone
    from softprompt_xl.runtime.hub import is_path

    name = str(tmp_path) if name == "EMPTY" else name
    assert is_path(name) and is_path("~/mt0-base") and not is_path("bigscience/mt0-base") and not is_path("mt0-base")
    cfg = make_cfg("+combo=ta", "lang=sk", "backbone=mt0_base", f"backbone.name={name}")
    with pytest.raises(UserError) as err:
        load_backbone(cfg.backbone, cfg.paths)
    message = str(err.value)
    assert message.startswith(f"backbone.name={name}: ")
    assert ("holds no config.json" if name == str(tmp_path) else "does not exist here") in message
    assert "huggingface-cli download bigscience/mt0-base --local-dir DIR" in message and "backbone.name=DIR" in message


def test_a_failing_job_does_not_stop_the_others(tmp_path):
    # Only the English test file exists, so the Slovak job fails on its data and the English one completes.
    good = tmp_path / "data" / "en.jsonl.gz"
    good.parent.mkdir()
    good.write_bytes((CONF_DIR.parent / "toy/data/en/qa/test.jsonl.gz").read_bytes())
    proc = run_cli("+combo=zero_shot", "lang=sk,en", f"paths.root={tmp_path}",
                   f"data.task.data_files.test={tmp_path}/data/${{lang.code}}.jsonl.gz", *FAST_OVERRIDES, "-m")
    assert proc.returncode == 1
    found = results(tmp_path / "outputs")
    assert found["zero_shot-en-qa"]["status"] == "complete"
    assert found["zero_shot-sk-qa"]["status"] == "failed"
    assert "sk.jsonl.gz" in found["zero_shot-sk-qa"]["error"]
    assert "1 of 2 jobs failed" in proc.stdout and "0_zero_shot-sk-qa" in proc.stdout


def test_every_combo_composes_and_runs_a_few_steps(every_combo):
    root, _, found = every_combo
    assert sorted(found) == sorted(["lang-adapter-sk", "lang-lora-sk", "lang-prompt-sk"] + [f"{c}-sk-qa" for c in ALL_COMBOS])
    for name, result in found.items():
        if name.startswith("lang-"):
            continue
        combo = name.split("-")[0]
        assert result["status"] == "complete" and set(result["metrics"]) == {"sk"}
        params = result["trainable_params"]
        if combo == "zero_shot":
            assert params == {} and result["steps"] == 0
        elif combo == "full_ft":
            assert set(params) == {"backbone"} and params["backbone"] > 100_000
        else:
            assert params["task"] > 0 and params.get("lang", 0) == 0  # the language part is frozen
            assert ("lang" in params) == combo.startswith("l")
            assert result["steps"] == 4
    # one language component per kind, trained once and shared by the three combos that use it
    # (test_pipeline.py adds other languages' to this store)
    components = sorted(p.name.rsplit("-", 1)[0] for p in (root / "store" / "components").glob("lang-*-sk-*[!k]"))
    assert components == ["lang-adapter-sk", "lang-lora-sk", "lang-prompt-sk"]
    # each trained task component is in the store too (full_ft keeps no copy of its backbone)
    tasks = sorted(p.name.split("-")[1] for p in (root / "store" / "components").glob("task-*[!k]"))
    assert tasks == sorted(c for c in ALL_COMBOS if c not in ("zero_shot", "full_ft"))


@pytest.mark.e2e
def test_every_task_runs_in_every_language(make_cfg, tmp_path):
    tasks = {"qa": {"exact_match", "f1"}, "ner": {"span_f1", "precision", "recall"}, "nli": {"accuracy"},
             "checkworthy": {"f1", "accuracy"}}
    _, found = run_sweep(make_cfg, tmp_path, "+combo=lp_tp", "task=" + ",".join(tasks), "lang=en,de,es,cs,sk,te",
                         *FAST_OVERRIDES, "lang_stage.max_steps=2", "task_stage.max_steps=2")
    found = {name: result for name, result in found.items() if not name.startswith("lang-")}
    assert len(found) == 4 * 6
    for name, result in found.items():
        _, lang, task = name.split("-")
        assert result["status"] == "complete" and set(result["metrics"][lang]) == tasks[task] | {"unparsed"}


def test_the_everyday_command_end_to_end(everyday_command, tmp_path, make_cfg, caplog):
    """The exact command of the README (`python -m softprompt_xl.train +combo=lp_ta lang=sk -m`, started with the
    session: conftest.everyday_command), run from an empty directory with an empty HOME; the store's listing of what
    it made; a second run finds its language prompt."""
    from softprompt_xl.pipeline import stages

    root, home, cwd = everyday_command["root"], everyday_command["home"], everyday_command["cwd"]
    assert conftest.EVERYDAY_ARGS == ("+combo=lp_ta", "lang=sk", "-m")
    stdout = everyday_command["stdout"]
    assert everyday_command["returncode"] == 0, stdout[-3000:]
    # two jobs: the language prompt (a language-component job, launched first by the sweeper), then the run
    assert sorted(p.parent.name for p in (root / "outputs").rglob("result.json")) == ["0_lang-prompt-sk", "1_lp_ta-sk-qa"]
    result = results(root / "outputs")["lp_ta-sk-qa"]
    assert {k: result[k] for k in ("combo", "lang", "task", "backbone", "seed", "status")} == {
        "combo": "lp_ta", "lang": "sk", "task": "qa", "backbone": "tiny", "seed": 42, "status": "complete"}
    assert set(result["metrics"]["sk"]) == {"exact_match", "f1", "unparsed"}
    # far above the frozen backbone's zero-shot F1 (34.4, README) on any CPU: 89-96 measured across CPUs, thread
    # counts and seeds (README, "Scores on your machine")
    assert result["metrics"]["sk"]["f1"] >= 60
    assert result["machine"]["torch_threads"] >= 1 and result["machine"]["cpu_capability"]  # what made the number
    assert result["trainable_params"]["lang"] == 0 and result["trainable_params"]["task"] > 0
    assert result["steps"] == 300 and result["wall_time_s"] > 0
    assert "[lp_ta sk qa] sk: exact_match=" in stdout  # the summary line
    # stdout is a file, as a SLURM job's: no carriage-return progress bars (Lightning's, datasets'), plain lines
    # instead (runtime/progress.py), at least the one that ends each training stage
    assert "\r" not in stdout and "Generating train split" not in stdout
    assert "Stage 1 (the Slovak language prompt): steps 150/150 done in" in stdout
    assert "Stage 2 (the task adapter on Slovak qa): steps 300/300 done in" in stdout
    # the language prompt is in the store, three offline W&B runs (language, task, evaluation) in paths.wandb
    (component,) = (root / "store" / "components").glob("lang-prompt-sk-*[!k]")
    header = json.loads((component / "component.json").read_text())
    assert header["kind"] == "prompt" and header["role"] == "lang" and (component / "weights.safetensors").exists()
    runs = sorted((root / "wandb").rglob("offline-run-*/run-*.wandb"))
    assert len(runs) == 3
    # nothing written outside paths.root
    assert list(cwd.iterdir()) == [] and list(home.iterdir()) == []

    # `python -m softprompt_xl.store` lists what the command stored: the prompt, the task adapter, the result
    listing = subprocess.run([sys.executable, "-m", "softprompt_xl.store", f"paths.root={root}"],
                             capture_output=True, text=True, cwd=PROJECT_DIR, timeout=120)
    assert listing.returncode == 0, listing.stderr
    lines = listing.stdout.splitlines()
    assert lines[1].split() == ["key", "kind", "role", "lang", "task", "size", "created", "status"]
    rows = {line.split()[0]: line.split() for line in lines[2:]}
    kinds = sorted((r[1], r[2]) for r in rows.values())
    assert kinds == [("adapter", "task"), ("lp_ta", "result"), ("prompt", "lang")]
    assert all(r[-1] == "complete" for r in rows.values())
    assert not (root / "store" / "checkpoints").exists() or not any((root / "store" / "checkpoints").iterdir())

    # a second run (here in this process) reuses the language prompt instead of training it again
    caplog.set_level(logging.INFO)
    again = stages.run(RunSpec.of(make_cfg(f"paths.root={root}", "+combo=lp_ta", "lang=sk", "task_stage.max_steps=4",
                                "logger=none")), tmp_path / "again")
    assert again.status == "complete"
    assert "found in the store" in caplog.text and "Stage 1: training" not in caplog.text


def test_wandb_online_without_a_login_says_how_to_fix_it(make_cfg, tmp_path, monkeypatch):
    from softprompt_xl.pipeline.tracking import stage_logger

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb" / var))  # set here, so that they are unset after the test
    cfg = make_cfg("+combo=zero_shot", "lang=sk", "logger.wandb.mode=online", f"paths.root={tmp_path}")
    with pytest.raises(UserError) as err:  # said as it is, without a traceback (test_hub_backbone_offline_...)
        with stage_logger(RunSpec.of(cfg), "eval", "zero_shot-sk-qa", "result-x", tmp_path, []):
            pass
    assert "W&B could not start in online mode" in str(err.value) and "wandb login" in str(err.value)


def test_the_slurm_launcher_without_sbatch_says_what_to_do(tmp_path):
    proc = run_cli("+combo=zero_shot", "lang=sk", f"paths.root={tmp_path}", *FAST_OVERRIDES, "-m", "hydra/launcher=slurm",
                   env={"PATH": str(Path(sys.executable).parent)})  # python, but no SLURM client
    assert proc.returncode == 2
    assert "sbatch, srun and sacct are not on PATH here" in proc.stdout
    assert "login node" in proc.stdout and "hydra/launcher=local" in proc.stdout and "make slurm-up" in proc.stdout
    assert "Traceback" not in proc.stdout
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("result.json"))


@pytest.mark.skipif(shutil.which("sacct") is None, reason="needs the SLURM client commands (not a cluster)")
def test_the_slurm_launcher_without_a_reachable_cluster_says_what_to_do(tmp_path):
    # A cluster whose accounting database cannot be reached: sacct fails at once (given a SLURM_CONF that does not
    # exist, it retries for a minute first).
    conf = tmp_path / "slurm.conf"
    conf.write_text("ClusterName=nowhere\nSlurmctldHost=localhost\nAccountingStorageType=accounting_storage/slurmdbd\n"
                    "AccountingStorageHost=127.0.0.1\nAccountingStoragePort=1\n")
    proc = run_cli("+combo=zero_shot", "lang=sk", f"paths.root={tmp_path}", *FAST_OVERRIDES, "-m", "hydra/launcher=slurm",
                   env={"SLURM_CONF": str(conf)})
    assert proc.returncode == 2
    assert "sacct fails here" in proc.stdout and "SLURM_CONF" in proc.stdout and "job accounting" in proc.stdout
    assert "Traceback" not in proc.stdout


def test_hydra_flags_may_stand_anywhere_among_the_overrides():
    """Hydra's parser takes the overrides as one unbroken run of words: `-m` and `--cfg job` (with its value) may
    stand among them on the command line all the same (train.hydra_flags_last moves them behind)."""
    from hydra._internal.utils import get_args_parser

    from softprompt_xl.train import hydra_flags_last

    def parse(*words: str):
        return get_args_parser().parse_args(hydra_flags_last(["train", *words])[1:])

    args = parse("+combo=lp_ta", "--cfg", "job", "paths.root=X")
    assert (args.overrides, args.cfg) == (["+combo=lp_ta", "paths.root=X"], "job")
    args = parse("+combo=lp_ta", "lang=sk,cs", "-m", "hydra/launcher=slurm")
    assert (args.overrides, args.multirun) == (["+combo=lp_ta", "lang=sk,cs", "hydra/launcher=slurm"], True)
    args = parse("--config-dir", "my_conf", "+combo=mine", "-c", "job", "-p", "data", "lang=sk", "--resolve")
    assert (args.overrides, args.config_dir, args.cfg, args.package, args.resolve) == (
        ["+combo=mine", "lang=sk"], "my_conf", "job", "data", True)
    args = parse("--info", "defaults", "lang=sk")  # --info's value is optional: taken when it is one of its choices
    assert (args.overrides, args.info) == (["lang=sk"], "defaults")
    assert parse("--info", "lang=sk").overrides == ["lang=sk"]
