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


@pytest.fixture(scope="session")
def make_cfg(root):
    def make(*overrides: str):
        with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
            return compose("train", overrides=[f"paths.root={root}", *overrides])

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


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m softprompt_xl.train ARGS` as a user would type it; `.stdout` holds both streams (Hydra logs to stdout)."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "softprompt_xl.train", *args],
        cwd=cwd or PROJECT_DIR, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=timeout,
    )
