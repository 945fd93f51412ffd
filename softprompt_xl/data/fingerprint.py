"""What a data source is, as far as a store key is concerned: its settings, plus a digest of the content of its
local files (so that edited data makes new keys, and moved data does not)."""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

from softprompt_xl.config import to_plain


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
    stamps = tuple((p, stat.st_size, stat.st_mtime_ns) for p in paths if (stat := _stat(Path(p))) is not None)
    # Paths are left out: the same data moved elsewhere (another checkout, another root) is the same data.
    return {**{k: v for k, v in source.items() if k != "data_files"}, "content": _content_digest(stamps)}


def _stat(path: Path) -> Any:
    return path.stat() if path.is_file() else None


@functools.lru_cache(maxsize=256)
def _content_digest(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """The digest of the files (path, size, modification time) name, once per process for the same files unchanged:
    every spec of a job, and of every run a sweep plans, fingerprints the same corpus and task files."""
    digest = hashlib.sha256()
    for path, _, _ in stamps:
        _update_with_file(digest, Path(path))
    return digest.hexdigest()[:16]


_WHOLE_FILE_BYTES = 64 << 20


def _update_with_file(digest: Any, path: Path) -> None:
    """A file's bytes into `digest`, read in blocks; a file over 64 MB (a Wikipedia dump's shard) by its size and
    256 blocks spread over it, so that planning a sweep does not read gigabytes of corpus."""
    size = path.stat().st_size
    with open(path, "rb") as stream:
        if size <= _WHOLE_FILE_BYTES:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
            return
        digest.update(f"{size}".encode())
        for i in range(256):
            stream.seek(i * (size - 65536) // 255)
            digest.update(stream.read(65536))
