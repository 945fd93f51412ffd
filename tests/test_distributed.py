"""One run on several processes (trainer=ddp): each process gets its share of every batch, two CPU processes
(gloo) under torchrun train one run with one result, one set of components and one W&B run per stage, and
DDP asked for without an outside launcher gets a message saying how to start it. (On SLURM: test_slurm.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import FAST_OVERRIDES, PROJECT_DIR, cli_env
from softprompt_xl.errors import UserError
from softprompt_xl.runtime.resume import ResumableSampler
from softprompt_xl.pipeline.run_spec import RunSpec


def test_two_processes_share_out_the_batches_of_one():
    one = list(ResumableSampler(10, 40, seed=3, start=8, batch=4))  # a resumed stage: from the third batch on
    halves = [list(ResumableSampler(10, 40, seed=3, start=8, rank=r, world=2, batch=4)) for r in (0, 1)]
    rebuilt = [i for b in range(len(one) // 4) for half in halves for i in half[2 * b:2 * b + 2]]
    assert rebuilt == one  # batch by batch: rank 0 the first half, rank 1 the second
    assert len(ResumableSampler(10, 40, seed=3, rank=1, world=2, batch=4)) == 20  # the whole stage, per process


def test_a_run_trains_on_two_cpu_processes_under_torchrun(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "softprompt_xl.train",
         "+combo=lp_tp", "lang=sk", f"paths.root={tmp_path}", *FAST_OVERRIDES, "trainer=ddp", "trainer.accelerator=cpu",
         "logger=wandb"],
        cwd=PROJECT_DIR, env=cli_env({"OMP_NUM_THREADS": "1"}), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Distributed run: 2 processes (rank 0 here, gloo)" in proc.stdout
    assert proc.stdout.count("[lp_tp sk qa] sk: exact_match=") == 1  # rank 0 reports
    # the language prompt trained by both processes in the run, then loaded by both from the store
    components = sorted(p.name.split("-")[0] for p in (tmp_path / "store" / "components").glob("*[!k]") if p.is_dir())
    assert components == ["lang", "task"]
    (result,) = [json.loads(p.read_text()) for p in (tmp_path / "store" / "results").glob("*.json")]
    assert result["status"] == "complete" and result["steps"] == 4 and set(result["metrics"]) == {"sk"}
    assert [json.loads(p.read_text())["status"] for p in (tmp_path / "outputs").rglob("result.json")] == ["complete"]
    assert len(list((tmp_path / "wandb").rglob("offline-run-*/run-*.wandb"))) == 3  # lang, task, eval: rank 0's


def test_ddp_without_an_outside_launcher_says_how_to_start_it(make_cfg, tmp_path):
    from softprompt_xl.pipeline import stages

    with pytest.raises(UserError) as err:  # said as it is, without a traceback (test_cli.py's failing single runs)
        stages.run(RunSpec.of(make_cfg(f"paths.root={tmp_path}", "+combo=tp", "lang=sk", *FAST_OVERRIDES,
                                       "trainer=ddp")), tmp_path)
    message = str(err.value)
    assert "trainer=ddp trains on trainer.devices=2 processes" in message
    assert "hydra/launcher=slurm" in message and "torchrun --nproc-per-node=2" in message
