"""Where trained components, run results and resumable checkpoints live, each named by a key derived from
the configuration that produced it (`keys.py`). The same configuration finds the same entry again; nothing
is looked up by a hand-written path, and nothing is trained twice (a file lock makes concurrent jobs wait).
`python -m softprompt_xl.store` lists it.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import logging
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock

from softprompt_xl.errors import UserError
from softprompt_xl.model.component_header import HEADER_FILE, ComponentHeader
from softprompt_xl.runtime.atomic import atomic_dir
from softprompt_xl.study import records
from softprompt_xl.study.records import Result

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
        return ComponentHeader.exists(component_dir)

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
        (study/imports.py), the latest import if there are several; None if there is none."""
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
        the run is done again."""
        result = records.read(self.result_file(key))
        return result if isinstance(result, Result) else None

    def save_result(self, key: str, result: Result, predictions: records.Predictions | None = None) -> None:
        """The result, and its test predictions beside it (first: a result in the store has its predictions,
        unless it was stored without them)."""
        if predictions is not None:
            records.write_predictions(self.predictions_file(key), predictions)
        records.write(self.result_file(key),
                      dataclasses.replace(result, key=key, created=time.strftime("%Y-%m-%dT%H:%M:%S"), skipped=False))

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
            try:
                header = ComponentHeader.read(path)
            except UserError as err:  # listed as damaged, not a reason to stop listing the rest
                log.warning("%s", err)
                rows.append({"key": path.name, "kind": "?", "role": path.name.split("-")[0], "lang": None,
                             "task": None, "size": _size(path), "created": "?", "status": "damaged"})
                continue
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
