"""Sweeps on a real SLURM cluster (the single-node one of .ci/slurm-cluster), through hydra/launcher=slurm: the
sweep completes with its stages in order, a cancelled job is reported failed and the sweep ends, the pre-timeout
signal checkpoints and requeues a job that then ends exactly as an uninterrupted one, a job that has timed out
too often is not requeued, and a failing job does not stop the others.

Marked `slurm`: `python -m pytest -m slurm` (`make test-slurm`), as root or with the cluster up (`make slurm-up`).
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import FAST_OVERRIDES, run_cli, start_cli
from softprompt_xl.config import CONF_DIR

pytestmark = pytest.mark.slurm

ON_SLURM = ["hydra/launcher=slurm", "-m"]
RESUMABLE = ["+combo=tp", "lang=sk", "task_stage.max_steps=40", "task_stage.val_every_n_steps=10",
             "checkpoint_every_n_steps=5", "logger=wandb"]


def job_ids(root: Path) -> list[str]:
    """The SLURM jobs of the sweeps under `root` (an array's tasks as <array>_<index>), in submission order."""
    pickles = (root / "outputs").glob("multirun/*/.submitit/*/*_submitted.pkl")
    ids = {p.name.removesuffix("_submitted.pkl") for p in pickles}
    return sorted(ids, key=lambda job: tuple(int(part) for part in job.split("_")))


def accounting(ids: list[str], *options: str) -> list[dict]:
    """sacct's records of the jobs (one per job, or per run of a job with --duplicates)."""
    fields = "JobID,JobName,State,Start,End,ReqMem,AllocCPUS"
    which = ["-j", ",".join(ids)] if ids else []  # no ids: every job that the options select
    out = subprocess.run(["sacct", "-X", "--parsable2", "-o", fields, *which, *options],
                         capture_output=True, text=True, check=True).stdout
    return [dict(zip(fields.split(","), line.split("|"))) for line in out.splitlines()[1:]]


def final_states(ids: list[str], *options: str) -> list[str]:
    """The jobs' states once they have ended (the sweep may see a job's result a moment before its process exits)."""
    deadline = time.time() + 60
    while any(r["State"] in ("PENDING", "RUNNING", "COMPLETING", "REQUEUED") for r in accounting(ids)):
        assert time.time() < deadline, accounting(ids)
        time.sleep(1)
    return [r["State"] for r in accounting(ids, *options)]


def results(root: Path) -> dict[str, dict]:
    """The result.json of each job directory of the sweeps under `root`, by directory name."""
    return {p.parent.name: json.loads(p.read_text()) for p in (root / "outputs").glob("multirun/*/*/result.json")}


def wait_for(condition, what: str, proc: subprocess.Popen, limit: float = 600) -> None:
    deadline = time.time() + limit
    while not condition():
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended while waiting for {what}:\n{proc.stdout.read()[-3000:]}")
        assert time.time() < deadline, f"no {what} within {limit} s"
        time.sleep(0.2)


def release_requeued(job: str, proc: subprocess.Popen) -> None:
    """A requeued job waits about two minutes (its BeginTime) before it may start again; the test cluster's admin
    lets it start in a few seconds (not at once: a job started again within the second of its requeue has its
    credential revoked, and fails)."""
    def waiting() -> bool:
        return subprocess.run(["squeue", "-h", "-j", job, "-o", "%r"], capture_output=True, text=True).stdout.strip() \
            == "BeginTime"
    wait_for(waiting, f"job {job} back in the queue", proc, limit=120)
    subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now+5"], check=True)


def the_result(root: Path) -> dict:
    (path,) = (root / "store" / "results").glob("*.json")
    return json.loads(path.read_text())


def task_weights(root: Path) -> dict:
    (component,) = (root / "store" / "components").glob("task-*[!k]")
    return load_file(component / "weights.safetensors")


def test_a_sweep_runs_on_slurm_language_components_first(slurm, tmp_path):
    started = time.time()
    proc = run_cli("+combo=lp_ta,la_ta", "lang=sk,cs", f"paths.root={tmp_path}", *FAST_OVERRIDES, *ON_SLURM, env=slurm,
                   timeout=1800)
    print(f"4-run sweep on SLURM (8 jobs): {time.time() - started:.1f} s")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "All 8 jobs complete" in proc.stdout

    # the four results in the store, complete
    stored = [json.loads(p.read_text()) for p in (tmp_path / "store" / "results").glob("*.json")]
    assert sorted((r["combo"], r["lang"], r["status"]) for r in stored) == [
        ("la_ta", "cs", "complete"), ("la_ta", "sk", "complete"), ("lp_ta", "cs", "complete"), ("lp_ta", "sk", "complete")]

    # two job arrays: the four language components, then the four runs, submitted once all four were stored
    jobs = accounting(job_ids(tmp_path))
    lang = [j for j in jobs if j["JobName"] == "softprompt_xl-lang"]
    runs = [j for j in jobs if j["JobName"] == "softprompt_xl"]
    assert len(lang) == 4 and len(runs) == 4 and final_states(job_ids(tmp_path)) == ["COMPLETED"] * 8
    assert max(j["End"] for j in lang) <= min(j["Start"] for j in runs)  # no run sat waiting for a component
    logs = {p.parent.name: p.read_text() for p in (tmp_path / "outputs").rglob("train.log")}
    assert sum(log.count("Stage 1: training") for name, log in logs.items() if name.split("_", 1)[1].startswith("lang-")) == 4
    assert all("found in the store" in log and "Stage 1: training" not in log
               for name, log in logs.items() if not name.split("_", 1)[1].startswith("lang-"))

    # the resources asked for: 1 CPU and 3 GB per job (with mem_gb set, two jobs share the 2-CPU node)
    assert {(j["AllocCPUS"], j["ReqMem"]) for j in jobs} == {("1", "3G")}
    # ... and so the node ran two jobs at once: two of this sweep's, or (under xdist, where another test's jobs hold
    # one of the two CPUs) one of this sweep's beside another test's
    ours = {j["JobID"] for j in jobs}
    cluster = [j for j in accounting([], "--allusers", "--starttime", time.strftime("%Y-%m-%dT%H:%M:%S",
                                                                                 time.localtime(started)))
               if j["Start"] != "Unknown" and j["End"] != "Unknown"]
    assert any(a["JobID"] in ours and a["JobID"] != b["JobID"] and a["Start"] < b["End"] and b["Start"] < a["End"]
               for a in cluster for b in cluster), cluster


def test_a_cancelled_job_is_reported_failed_and_the_sweep_ends(slurm, tmp_path):
    proc = start_cli("+combo=tp", "lang=sk,cs", f"paths.root={tmp_path}", *FAST_OVERRIDES, "task_stage.max_steps=200",
                     "task_stage.val_every_n_steps=100", *ON_SLURM, env=slurm)
    sk_log = lambda: next(iter((tmp_path / "outputs").glob("multirun/*/0_tp-sk-qa/train.log")), None)  # noqa: E731
    wait_for(lambda: sk_log() is not None and "Stage 2: training" in sk_log().read_text(), "training in job #0", proc)
    sk_job = job_ids(tmp_path)[0]
    subprocess.run(["scancel", sk_job], check=True)  # as a user would
    out, _ = proc.communicate(timeout=900)  # ends: the sweep does not wait forever for the cancelled job

    assert proc.returncode == 1, out[-3000:]
    assert "1 of 2 jobs failed" in out and "0_tp-sk-qa" in out and f"slurm job {sk_job} ended CANCELLED" in out
    found = results(tmp_path)
    assert found["1_tp-cs-qa"]["status"] == "complete"  # the other job finished
    assert found["0_tp-sk-qa"]["status"] != "complete" and "CANCELLED" in found["0_tp-sk-qa"]["error"]
    assert final_states([sk_job])[0].startswith("CANCELLED")
    assert [r["lang"] for r in map(json.loads, map(Path.read_text, (tmp_path / "store" / "results").glob("*.json")))] == ["cs"]


def test_the_pre_timeout_signal_requeues_a_job_that_ends_as_an_uninterrupted_one(slurm, tmp_path):
    whole, requeued = tmp_path / "whole", tmp_path / "requeued"
    reference = start_cli(*RESUMABLE, f"paths.root={whole}", *ON_SLURM, env=slurm)
    proc = start_cli(*RESUMABLE, f"paths.root={requeued}", "hydra.launcher.max_num_timeout=1", *ON_SLURM, env=slurm)
    wait_for(lambda: any((requeued / "store" / "checkpoints").glob("task-*/last.ckpt")), "a checkpoint", proc)
    (job,) = job_ids(requeued)
    # What SLURM sends signal_delay_s before the time limit (--signal=USR2@...), as submitit's job._interrupt does.
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    release_requeued(job, proc)
    out, _ = proc.communicate(timeout=900)
    reference_out, _ = reference.communicate(timeout=900)

    assert reference.returncode == 0, reference_out[-3000:]
    assert proc.returncode == 0, out[-3000:]
    (log,) = (requeued / "outputs").glob("multirun/*/0_tp-sk-qa/train.log")
    text = log.read_text()
    assert "SIGUSR2 received: saved a checkpoint at step" in text and f"Requeued job {job}" in text
    assert "resuming at step" in text
    assert final_states([job], "--duplicates") == ["REQUEUED", "COMPLETED"]
    # the same job directory, the same store key, the same W&B run: the result of an uninterrupted run
    a, b = the_result(whole), the_result(requeued)
    assert a["metrics"] == b["metrics"] and a["best_step"] == b["best_step"] and b["steps"] == 40
    expected, resumed = task_weights(whole), task_weights(requeued)
    assert expected.keys() == resumed.keys()
    assert all((expected[k] - resumed[k]).abs().max().item() < 1e-5 for k in expected)
    runs = [p.name for p in (requeued / "wandb").rglob("offline-run-*/run-task-*.wandb")]
    assert len(runs) == 2 and runs[0] == runs[1]
    assert not any((requeued / "store" / "checkpoints").iterdir())


def test_a_job_that_timed_out_too_often_is_not_requeued_and_the_same_command_resumes_it(slurm, tmp_path):
    # A 5-minute limit makes submitit count any signal as the time limit's (it counts one when a job ran past
    # min(80% of its limit, limit - 10 min)); max_num_timeout=0 allows no requeue after one.
    args = [*RESUMABLE, f"paths.root={tmp_path}", "logger=none", *ON_SLURM]
    proc = start_cli(*args, "hydra.launcher.timeout_min=5", "hydra.launcher.signal_delay_s=60",
                     "hydra.launcher.max_num_timeout=0", env=slurm)
    wait_for(lambda: any((tmp_path / "store" / "checkpoints").glob("task-*/last.ckpt")), "a checkpoint", proc)
    (job,) = job_ids(tmp_path)
    subprocess.run(["scancel", "--signal=USR2", job], check=True)
    out, _ = proc.communicate(timeout=900)

    assert proc.returncode == 1, out[-3000:]
    assert "1 of 1 jobs failed" in out and "timed-out too many times" in out
    (result,) = results(tmp_path).values()
    assert result["status"] == "interrupted" and "Not requeued" in result["error"]
    assert final_states([job], "--duplicates") == ["COMPLETED"]  # never requeued

    again = run_cli(*args, env=slurm)
    assert again.returncode == 0, again.stdout[-3000:]
    (log,) = [p for p in (tmp_path / "outputs").rglob("train.log") if "resuming at step" in p.read_text()]
    assert the_result(tmp_path)["steps"] == 40


def test_a_failing_job_does_not_stop_the_others_on_slurm(slurm, tmp_path):
    # Only the English test file exists, so the Slovak job fails on its data and the English one completes.
    good = tmp_path / "data" / "en.jsonl.gz"
    good.parent.mkdir()
    good.write_bytes((CONF_DIR.parent / "toy/data/en/qa/test.jsonl.gz").read_bytes())
    proc = run_cli("+combo=zero_shot", "lang=sk,en", f"paths.root={tmp_path}",
                   f"data.task.data_files.test={tmp_path}/data/${{lang.code}}.jsonl.gz", *FAST_OVERRIDES, *ON_SLURM, env=slurm)
    assert proc.returncode == 1
    found = results(tmp_path)
    assert found["1_zero_shot-en-qa"]["status"] == "complete"
    assert found["0_zero_shot-sk-qa"]["status"] == "failed" and "sk.jsonl.gz" in found["0_zero_shot-sk-qa"]["error"]
    assert "1 of 2 jobs failed" in proc.stdout and "0_zero_shot-sk-qa" in proc.stdout
    assert final_states(job_ids(tmp_path)) == ["COMPLETED"] * 2  # it failed inside the job (and said so), not killed



def test_trainer_ddp_trains_one_run_on_two_slurm_tasks(slurm, tmp_path):
    proc = run_cli("+combo=lp_tp", "lang=sk", f"paths.root={tmp_path}", *FAST_OVERRIDES, "trainer=ddp", "trainer.accelerator=cpu",
                   *ON_SLURM, env=slurm)
    assert proc.returncode == 0, proc.stdout[-3000:]
    ids = job_ids(tmp_path)
    assert len(ids) == 2  # the language prompt, then the run: each on two tasks of one node (Lightning's ranks)
    steps = subprocess.run(["sacct", "--parsable2", "-n", "-o", "JobID,NTasks", "-j", ",".join(ids)],
                           capture_output=True, text=True, check=True).stdout.split()
    assert sorted(line for line in steps if line.split("|")[0].endswith(".0")) == [f"{i}.0|2" for i in ids]
    logs = "".join(p.read_text() for p in (tmp_path / "outputs").rglob("train.log"))
    assert logs.count("Distributed run: 2 processes (rank 0 here, gloo)") == 2
    (result,) = [json.loads(p.read_text()) for p in (tmp_path / "store" / "results").glob("*.json")]
    assert result["status"] == "complete" and result["steps"] == 4
