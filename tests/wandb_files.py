"""Read an offline W&B run file (`run-<id>.wandb`) back into wandb's own protobuf records.

wandb 0.31 no longer ships a Python reader (`wandb.sdk.internal.datastore` is gone; wandb-core reads the file in
Go), so this unframes the file as the old datastore did - a LevelDB-style log of 32 KiB blocks, a 7-byte file
header ":W&B" + magic + version, then chunks of (crc32, length, type) + data - and parses every record with
`wandb.proto.wandb_internal_pb2.Record`. The CRC of every chunk is checked, so a misread fails loudly.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK, HEADER = 32768, 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:HEADER])
    assert ident == b":W&B" and magic == 0xBEE1 and version == 0, f"{path} is not a W&B run file"
    found, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        if BLOCK - pos % BLOCK < HEADER:  # too little room left in the block for a chunk header: zero padding
            pos += BLOCK - pos % BLOCK
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos:pos + HEADER])
        if (checksum, length, kind) == (0, 0, 0):  # end of what was written into this block
            pos += BLOCK - pos % BLOCK
            continue
        chunk = data[pos + HEADER:pos + HEADER + length]
        assert zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF == checksum, f"{path}: bad checksum at byte {pos}"
        pos += HEADER + length
        pending = chunk if kind in (FULL, FIRST) else pending + chunk
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            found.append(record)
    return found


@dataclass
class Run:
    """What a run file says about its run: identity, config and summary (last value per key), the keys of its
    history, artifacts."""

    run_id: str = ""
    project: str = ""
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    history: set[str] = field(default_factory=set)  # every key a history row holds (a table's: its name)
    artifacts: list[dict] = field(default_factory=list)  # name, type, metadata


def read_run(path: Path) -> Run:
    run = Run()
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.run_id, run.project, run.group, run.job_type, run.tags, run.name = (
                r.run_id, r.project, r.run_group, r.job_type, list(r.tags), r.display_name)
            run.config.update({item.key: json.loads(item.value_json) for item in r.config.update})
        elif kind == "config":
            run.config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "summary":
            run.summary.update({item.key or "/".join(item.nested_key): json.loads(item.value_json)
                                for item in record.summary.update})
        elif kind == "history":
            run.history.update(item.key or item.nested_key[0] for item in record.history.item)
        elif kind == "artifact":
            a = record.artifact
            run.artifacts.append({"name": a.name, "type": a.type, "metadata": json.loads(a.metadata or "{}")})
    return run
