"""Where trained components live: one directory per component, named by a key derived from the configuration
that produced it. The same configuration finds the same component again; it is never looked up by a
hand-written path, and never trained twice (a file lock makes concurrent jobs wait for the first)."""

from __future__ import annotations

import hashlib
import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

from .atomic import atomic_dir
from .components import Component
from .config import stable_hash, to_plain

log = logging.getLogger(__name__)


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def component_path(self, spec: dict) -> Path:
        """Directory for the component described by `spec` (role, kind, lang, ... - everything that matters)."""
        readable = "-".join(str(spec[k]) for k in ("role", "kind", "lang", "task") if spec.get(k))
        return self.root / "components" / f"{readable}-{stable_hash(spec)}"

    @staticmethod
    def has(path: Path) -> bool:
        return (path / "component.json").exists()

    @contextmanager
    def lock(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            yield

    def save(self, path: Path, component: Component, spec: dict, meta: dict[str, Any]) -> None:
        """Write atomically: a killed process leaves nothing a later run could take for a finished component."""
        with atomic_dir(path) as tmp:
            component.save(tmp, meta={"spec": spec, **meta})


def source_fingerprint(source: Any) -> dict:
    """A data source as it matters for a key: its spec, plus the content digest of local files."""
    source = to_plain(source) or {}
    files = source.get("data_files")
    if not files:
        return source
    paths = sorted(
        str(p) for v in (files.values() if isinstance(files, dict) else [files])
        for p in ([v] if isinstance(v, str) else v)
    )
    digest = hashlib.sha256()
    for p in paths:
        if Path(p).is_file():
            digest.update(Path(p).read_bytes())
    # Paths are left out: the same data moved elsewhere (another checkout, another root) is the same data.
    return {**{k: v for k, v in source.items() if k != "data_files"}, "content": digest.hexdigest()[:16]}
