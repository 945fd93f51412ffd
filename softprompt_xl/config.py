"""Config helpers shared by every entry point: OmegaConf resolvers, plain conversion, stable hashing."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
CONF_DIR = PACKAGE_DIR / "conf"


def register_resolvers() -> None:
    # Registered at import of every entry point, before Hydra composes, so `paths` can default to the checkout.
    for name, value in (("spxl.project_dir", PROJECT_DIR), ("spxl.package_dir", PACKAGE_DIR)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, lambda value=value: str(value))
    if not OmegaConf.has_resolver("spxl.mul"):  # e.g. GPUs per node = GPUs per process x processes
        OmegaConf.register_new_resolver("spxl.mul", lambda a, b: int(a) * int(b))
    if not OmegaConf.has_resolver("spxl.run_name"):  # the job directory: hydra.sweep.subdir in conf/train.yaml
        from softprompt_xl.study.records import run_name

        OmegaConf.register_new_resolver("spxl.run_name", run_name)


def to_plain(cfg: Any) -> Any:
    """Resolved plain Python (dicts, lists, scalars) from an OmegaConf node; anything else is returned as is."""
    if isinstance(cfg, (DictConfig, ListConfig)):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def stable_hash(obj: Any, length: int = 12) -> str:
    """Hex digest of a JSON-able value that does not depend on key order or the Python process."""
    text = json.dumps(to_plain(obj), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def keep_library_caches_under(paths: Any) -> None:
    """matplotlib (imported by torchmetrics inside Lightning, and by the report) writes a config and font cache
    into HOME; point it under paths.cache like every other file the framework writes (a user's choice wins)."""
    import os

    os.environ.setdefault("MPLCONFIGDIR", str(Path(paths.cache) / "matplotlib"))
