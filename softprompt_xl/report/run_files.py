"""The W&B runs of a root read back from W&B's own run files (`run-<id>.wandb` under paths.wandb), so that the
dashboard (report/dashboard.py) draws only keys the runs really logged. Offline runs write these files, and so do
online ones (the file is W&B's local transaction log), so the sweeps run from this root are all found, uploaded or not.

wandb 0.31 ships no Python reader (wandb-core reads the file in Go), so this unframes it as W&B's old datastore did:
a LevelDB-style log of 32 KiB blocks after a 7-byte header (":W&B", magic, version), chunks of (crc32, length, type)
+ data, each record a `wandb.proto.wandb_internal_pb2.Record`. A file that does not read (cut short by a killed
process, another version's format) is named in a warning and its readable records kept, never a traceback.
"""

from __future__ import annotations

import json
import logging
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger(__name__)

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class Unreadable(ValueError):
    pass


def _records(path: Path) -> Iterator[Any]:
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if len(data) < HEADER or struct.unpack("<4sHB", data[:HEADER]) != (b":W&B", 0xBEE1, 0):
        raise Unreadable("not a W&B run file (no ':W&B' header of version 0)")
    pending, pos = b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # too little room left in the block for a chunk header: zero padding
            pos += BLOCK - pos % BLOCK
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if (checksum, length, kind) == (0, 0, 0):  # the end of what was written into this block
            pos += BLOCK - pos % BLOCK
            continue
        chunk = data[pos + HEADER:pos + HEADER + length]
        if len(chunk) < length or zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF != checksum:
            raise Unreadable(f"a damaged record at byte {pos}")
        pos += HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


@dataclass
class LoggedRun:
    """What W&B holds of one run: identity, config (top-level keys), and the keys of its summary and history (the
    top-level key: `test/sk/f1`, `ner/scores`), with the type of a media value (`table-file`, `image-file`)."""

    run_id: str
    project: str = ""
    entity: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, str | None] = field(default_factory=dict)  # key -> its media type, None for a number/text
    history: set[str] = field(default_factory=set)
    files: list[str] = field(default_factory=list)

    @property
    def identity(self) -> dict[str, Any]:
        """The flat `run` block of the config (stage, combo, lang, task, backbone, seed, store_key)."""
        return self.config.get("run") or {}

    def merge(self, other: "LoggedRun") -> None:
        """Another file of the same run (a resumed stage continues its run id in a new file)."""
        for name in ("project", "entity", "group", "job_type", "name"):
            setattr(self, name, getattr(other, name) or getattr(self, name))
        self.config.update(other.config)
        self.summary.update(other.summary)
        self.history |= other.history
        self.files += other.files


def _key(item: Any) -> str:
    return item.key or (item.nested_key[0] if item.nested_key else "")


def read_run(path: Path, wanted: Callable[[LoggedRun], bool] | None = None) -> LoggedRun | None:
    """The run of one run file; None when `wanted` (asked as soon as the run's identity and first config are read,
    before its history) says it is not wanted."""
    from google.protobuf.message import DecodeError

    run = LoggedRun(run_id="", files=[str(path)])
    try:
        for record in _records(path):
            kind = record.WhichOneof("record_type")
            if kind == "run":
                r = record.run
                run.run_id, run.project, run.entity, run.group, run.job_type, run.name = (
                    r.run_id, r.project, r.entity, r.run_group, r.job_type, r.display_name)
                run.config.update({item.key: json.loads(item.value_json) for item in r.config.update})
                if wanted is not None and not wanted(run):
                    return None
            elif kind == "config":
                run.config.update({item.key: json.loads(item.value_json) for item in record.config.update})
            elif kind == "summary":
                for item in record.summary.update:
                    key = _key(item)
                    if key and not key.startswith("_"):
                        media = json.loads(item.value_json) if list(item.nested_key[1:]) == ["_type"] else None
                        run.summary[key] = media or run.summary.get(key)
            elif kind == "history":
                run.history |= {k for k in map(_key, record.history.item) if k and not k.startswith("_")}
    except (Unreadable, DecodeError, ValueError, OSError) as err:
        log.warning("W&B run file %s does not read to its end (%s): using what it holds before that", path, err)
    return run


def logged_runs(wandb_dir: str | Path, wanted: Callable[[LoggedRun], bool] | None = None) -> list[LoggedRun]:
    """The runs with a run file under `wandb_dir` (paths.wandb) - those `wanted`, if given, is true of - the files of
    a resumed run merged by its id."""
    runs: dict[str, LoggedRun] = {}
    for path in sorted(Path(wandb_dir).rglob("run-*.wandb")):
        run = read_run(path, wanted)
        if run is None or not run.run_id:
            continue
        if (project_run := f"{run.project}/{run.run_id}") in runs:
            runs[project_run].merge(run)
        else:
            runs[project_run] = run
    return list(runs.values())
