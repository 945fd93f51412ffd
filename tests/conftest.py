"""Shared fixtures: the real config tree composed with Hydra, and the tiny backbone built once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from softprompt_xl.backbone import ensure_tiny_backbone, load_backbone
from softprompt_xl.config import CONF_DIR, PROJECT_DIR, register_resolvers

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
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return compose("train", overrides=[f"paths.root={root}", f"paths.cache={SHARED_CACHE}", *overrides])

    return make


@pytest.fixture(scope="session")
def cfg(make_cfg):
    return make_cfg("+combo=lp_ta", "lang=sk")


@pytest.fixture(scope="session")
def tiny_dir(cfg) -> Path:
    return ensure_tiny_backbone(cfg.backbone.build, cfg.paths)


@pytest.fixture
def tiny(cfg, tiny_dir):
    """A fresh (model, tokenizer) of the tiny backbone, through the same loader as hub models."""
    return load_backbone(cfg.backbone, cfg.paths)


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str | None] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m softprompt_xl.train ARGS` as a user would type it; `.stdout` holds both streams (Hydra logs to stdout)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "SOFTPROMPT_XL_CACHE": str(SHARED_CACHE), **(env or {})}
    full_env = {k: v for k, v in full_env.items() if v is not None}  # None unsets a variable
    return subprocess.run(
        [sys.executable, "-m", "softprompt_xl.train", *args],
        cwd=cwd or PROJECT_DIR, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=timeout,
    )
