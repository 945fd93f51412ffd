"""Shared fixtures: the real config tree composed with Hydra, and the tiny backbone built once per session."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from softprompt_xl.model.backbone import load_backbone
from softprompt_xl.toy import backbone_dir
from softprompt_xl.config import CONF_MODULE, PROJECT_DIR, register_resolvers

register_resolvers()


@pytest.fixture(scope="session")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("root")


# One cache for the whole session, so the tiny backbone (with its pre-training) is built once, not per test.
SHARED_CACHE = Path(os.environ.get("SOFTPROMPT_XL_TEST_CACHE") or PROJECT_DIR / "runs" / "test-cache")
# The default suite tests the pipeline, not the scores: a short pre-training keeps it within minutes. The
# slow score test (test_toy_scores.py) runs with the real default (see FULL_PRETRAINING).
SHORT_PRETRAINING = "40"
os.environ["SOFTPROMPT_XL_TINY_PRETRAIN_STEPS"] = SHORT_PRETRAINING
FULL_PRETRAINING = {"SOFTPROMPT_XL_TINY_PRETRAIN_STEPS": None}


@pytest.fixture(scope="session")
def make_cfg(root):
    def make(*overrides: str):
        with initialize_config_module(CONF_MODULE, version_base="1.3"):
            return compose("train", overrides=[f"paths.root={root}", f"paths.cache={SHARED_CACHE}", *overrides])

    return make


@pytest.fixture(scope="session")
def cfg(make_cfg):
    return make_cfg("+combo=lp_ta", "lang=sk")


@pytest.fixture(scope="session")
def tiny_dir(cfg) -> Path:
    return backbone_dir(cfg.backbone.build, cfg.paths, create=True)


@pytest.fixture
def tiny(cfg, tiny_dir):
    """A fresh (model, tokenizer) of the tiny backbone, through the same loader as hub models."""
    return load_backbone(cfg.backbone, cfg.paths)


def cli_env(env: dict[str, str | None] | None = None) -> dict[str, str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "SOFTPROMPT_XL_CACHE": str(SHARED_CACHE), **(env or {})}
    return {k: v for k, v in full_env.items() if v is not None}  # None unsets a variable


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str | None] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m softprompt_xl.train ARGS` as a user would type it; `.stdout` holds both streams (Hydra logs to stdout)."""
    return subprocess.run(
        [sys.executable, "-m", "softprompt_xl.train", *args],
        cwd=cwd or PROJECT_DIR, env=cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=timeout,
    )


def start_cli(*args: str, env: dict[str, str | None] | None = None) -> subprocess.Popen:
    """`run_cli` in the background: the test acts on the jobs while the command runs."""
    return subprocess.Popen([sys.executable, "-m", "softprompt_xl.train", *args], cwd=PROJECT_DIR, env=cli_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# --- the single-node SLURM cluster of .ci/slurm-cluster (tests marked `slurm`) --------------------------------
SLURM_SCRIPT = PROJECT_DIR / ".ci" / "slurm-cluster"
SLURM_DIR = Path(os.environ.get("SOFTPROMPT_XL_SLURM_DIR", "/tmp/softprompt_xl-slurm"))
SLURM_TOOLS = ("sbatch", "srun", "sacct", "squeue", "scancel", "scontrol", "slurmctld", "slurmd", "slurmdbd", "munged",
               "mariadbd")


@pytest.fixture(scope="session")
def slurm():
    """The test cluster: the one `make slurm-up` brought up, or brought up now for this session (and stopped after
    it) when this machine allows. Yields the environment of a sweep on it: SLURM_CONF, and resources the one
    small node can give (no GPU, 1 CPU and 3 GB per job)."""
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SLURM is not installed here (no {', '.join(missing)}): install it with `.ci/slurm-cluster "
                    "install` (Debian's slurm-wlm slurmdbd munge mariadb-server), then `make slurm-up` as root")
    started = False
    if subprocess.run([SLURM_SCRIPT, "status"], capture_output=True).returncode != 0:
        if os.geteuid() != 0:
            pytest.skip("the test SLURM cluster is not up, and only root can bring it up: `sudo make slurm-up`")
        up = subprocess.run([SLURM_SCRIPT, "up"], capture_output=True, text=True, timeout=600)
        if up.returncode != 0:
            pytest.skip(f"the test SLURM cluster did not come up (`.ci/slurm-cluster up`): {up.stderr.strip()[-800:]}")
        started = True
    conf, before = str(SLURM_DIR / "etc" / "slurm.conf"), os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf  # the tests' own squeue, sacct, scancel
    yield {
        "SLURM_CONF": conf,
        "SOFTPROMPT_XL_SLURM_GPUS_PER_TASK": "0", "SOFTPROMPT_XL_SLURM_CPUS_PER_TASK": "1",
        "SOFTPROMPT_XL_SLURM_MEM_GB": "3", "SOFTPROMPT_XL_SLURM_TIME_MIN": "30",
    }
    if before is None:
        os.environ.pop("SLURM_CONF")
    else:
        os.environ["SLURM_CONF"] = before
    if started:
        subprocess.run([SLURM_SCRIPT, "down"], capture_output=True, timeout=600)
