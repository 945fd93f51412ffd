"""Where trained components, run results and resumable checkpoints live, each named by a key derived from
the configuration that produced it (`keys.py`). The same configuration finds the same entry again; nothing
is looked up by a hand-written path, and nothing is trained twice (a file lock makes concurrent jobs wait).
`python -m softprompt_xl.store` lists it.

A damaged entry is a missing entry: a component whose header does not read or whose weights file was cut short
(a full disk, an interrupted copy), a result whose record or test predictions were, is named in a warning and
done again; a damaged component is removed when it is looked up, so the store holds only whole ones. (Checkpoints:
runtime/resume.py.)
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

from softprompt_xl.errors import UserError
from softprompt_xl.model.component_header import HEADER_FILE, WEIGHTS_FILE, ComponentHeader, damage
from softprompt_xl.runtime.atomic import atomic_dir
from softprompt_xl.pipeline import records
from softprompt_xl.pipeline.records import Result

log = logging.getLogger(__name__)


class Store:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def component_dir(self, key: str) -> Path:
        return self.root / "components" / key

    def result_file(self, key: str) -> Path:
        return self.root / "results" / f"{key}.json"

    def predictions_file(self, key: str) -> Path:
        return self.root / "results" / f"{key}{records.PREDICTIONS_SUFFIX}"

    def checkpoint_dir(self, key: str) -> Path:
        """Resumable state of a stage in progress; removed when the stage has saved what it produces."""
        return self.root / "checkpoints" / key

    @staticmethod
    def has(component_dir: Path) -> bool:
        """Whether the store holds the component whole. A damaged one (component_header.damage) is named in a
        warning and removed: it counts as missing, and is trained again."""
        if not ComponentHeader.exists(component_dir):
            return False
        if _damage(component_dir, _stamps(component_dir)) is None:
            return True
        _remove_damaged(Path(component_dir))
        return False

    @contextmanager
    def lock(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            yield

    def save_component(self, path: Path, component: Any, spec: dict, meta: dict[str, Any]) -> None:
        """Write atomically: a killed process leaves nothing a later run could take for a finished component."""
        with atomic_dir(path) as tmp:
            component.save(tmp, meta={"spec": spec, "created": time.strftime("%Y-%m-%dT%H:%M:%S"), **meta})

    def find_imported(self, source: str, lang: str, backbone: dict) -> dict | None:
        """The spec of the language component imported from `source` for `lang` on `backbone`
        (pipeline/importing.py), the latest import if there are several; None if there is none."""
        found = []
        for path in (self.root / "components").glob(f"lang-*/{HEADER_FILE}"):
            meta = _header_meta(path, path.stat().st_mtime_ns)
            if meta is None:
                continue
            spec = meta.get("spec") or {}
            imported = spec.get("imported") or {}
            if imported.get("source") == source and spec.get("lang") == lang and spec.get("backbone") == backbone:
                found.append((meta.get("created", ""), spec))
        return copy.deepcopy(max(found, key=lambda f: f[0])[1]) if found else None  # the cached header stays as read

    def read_result(self, key: str) -> Result | None:
        """The finished result under `key`; None if there is none, or a damaged one (said in a warning), so that
        the run is done again. Its test predictions are damaged when their file is not the size the result recorded
        (cut short: checked without reading them, so planning a sweep stays cheap)."""
        result = records.read(self.result_file(key))
        if not isinstance(result, Result):
            return None
        if result.predictions_bytes is not None:
            path = self.predictions_file(key)
            size = path.stat().st_size if path.exists() else None
            if size != result.predictions_bytes:
                log.warning("%s is damaged (%s, not the %d bytes stored): treated as missing, so its run counts as "
                            "not done", path, "missing" if size is None else f"{size} bytes",
                            result.predictions_bytes)
                return None
        return result

    def save_result(self, key: str, result: Result, predictions: records.Predictions | None = None) -> None:
        """The result, and its test predictions beside it (first: a result in the store has its predictions,
        unless it was stored without them, and records their size)."""
        size = None
        if predictions is not None:
            records.write_predictions(self.predictions_file(key), predictions)
            size = self.predictions_file(key).stat().st_size
        records.write(self.result_file(key), dataclasses.replace(
            result, key=key, created=time.strftime("%Y-%m-%dT%H:%M:%S"), skipped=False, predictions_bytes=size))

    def read_predictions(self, key: str) -> records.Predictions | None:
        """The test predictions of the result under `key`; None for a result stored without them."""
        return records.read_predictions(self.predictions_file(key))

    def drop_checkpoints(self, key: str) -> None:
        shutil.rmtree(self.checkpoint_dir(key), ignore_errors=True)

    def results(self) -> list[Result]:
        """Every result the store holds, each with its key (only finished runs write here; a damaged one is left
        out, said in a warning)."""
        found = [(path, records.read(path)) for path in sorted((self.root / "results").glob("*.json"))]
        return [dataclasses.replace(r, key=path.stem) for path, r in found if isinstance(r, Result)]

    def entries(self) -> list[dict]:
        """One row per component, result and unfinished checkpoint."""
        rows = []
        for path in sorted(p.parent for p in (self.root / "components").glob(f"*/{HEADER_FILE}")):
            problem = _damage(path, _stamps(path))
            if problem is not None:  # listed as damaged (a run that needs it removes it), not a reason to stop listing
                log.warning("%s: the component is damaged", problem)
                rows.append({"key": path.name, "kind": "?", "role": path.name.split("-")[0], "lang": None,
                             "task": None, "size": _size(path), "created": "?", "status": "damaged"})
                continue
            header = ComponentHeader.read(path)
            spec = header.meta.get("spec", {})
            rows.append({"key": path.name, "kind": header.kind, "role": header.role, "lang": spec.get("lang"),
                         "task": spec.get("task"), "size": _size(path), "created": header.meta.get("created", "?"),
                         "status": "complete"})
        for result in self.results():
            rows.append({"key": result.key, "kind": result.combo, "role": "result", "lang": result.lang,
                         "task": result.task, "size": self.result_file(result.key).stat().st_size,
                         "created": result.created or "?", "status": result.status})
        for path in sorted(p for p in (self.root / "checkpoints").glob("*") if p.is_dir()):
            rows.append({"key": path.name, "kind": "checkpoint", "role": path.name.split("-")[0], "lang": None,
                         "task": None, "size": _size(path), "status": "in progress (resumable)",
                         "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(path.stat().st_mtime))})
        return rows


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


@functools.lru_cache(maxsize=None)
def _header_meta(header: Path, mtime_ns: int) -> dict | None:
    """A stored component's meta, read once per process: planning a sweep that imports its language components
    looks them up once per run and language. A component is written once, atomically, so its path and mtime
    name its contents; None for a damaged one."""
    try:
        return ComponentHeader.read(header.parent).meta
    except UserError:
        return None


def _stamps(directory: Path) -> tuple:
    """What changes when a component's files do (their mtimes and sizes): the key of its cached check."""
    out = []
    for name in (HEADER_FILE, WEIGHTS_FILE):
        try:
            st = os.stat(Path(directory) / name)
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            out.append(None)
    return tuple(out)


@functools.lru_cache(maxsize=None)
def _damage(directory: Path, stamps: tuple) -> str | None:
    """component_header.damage, once per process for the same files: planning a sweep looks each component up
    once per run and language."""
    return damage(directory)


def _remove_damaged(directory: Path) -> None:
    """Take a damaged component out of the store, saying so. It is first renamed aside (one atomic step, which one
    process of several doing the same wins) and checked again there: a whole one put meanwhile in its place by
    another job goes back; a damaged one is removed."""
    aside = directory.with_name(f".{directory.name}.damaged-{os.getpid()}")
    shutil.rmtree(aside, ignore_errors=True)  # left by an earlier process of this number that was killed
    try:
        os.replace(directory, aside)
    except OSError:  # gone: another process took it
        return
    problem = damage(aside)
    if problem is None:  # whole after all: put back, unless yet another copy is there now
        try:
            os.rename(aside, directory)
        except OSError:
            shutil.rmtree(aside, ignore_errors=True)
        return
    try:
        imported = ComponentHeader.read(aside).meta.get("spec", {}).get("imported")
    except UserError:
        imported = None
    log.warning("%s: the component %s is removed from the store, %s", problem.replace(str(aside), str(directory)),
                directory.name, f"import it again ({imported.get('source')})" if imported else "and trained again")
    shutil.rmtree(aside, ignore_errors=True)
