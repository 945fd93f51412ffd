"""Atomic writes: a reader (or a later run) sees the old file or the whole new one, never half of it, and a write
that fails (a full disk, a kill) leaves no temporary file behind.

A full disk is said in one paragraph (`DiskFull`): where, how much is free, how much the write needed when that
is known, and the fix. The writes here raise it themselves; `disk_full` finds it in any other error (a library's
OSError with ENOSPC or EDQUOT, or its own words for it), for the job's and the sweep's handlers."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping

from softprompt_xl.errors import UserError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
# How errors that carry no errno say it: the system's words (safetensors and pyarrow pass them on), and datasets'
# own check before it writes a cache.
NO_SPACE_WORDS = (os.strerror(errno.ENOSPC), os.strerror(errno.EDQUOT), "Not enough disk space")
# The path settings (conf/paths) a full disk may be under, the root first: what a user moves to fix it.
PATH_SETTINGS = ("root", "cache", "hf_cache", "store", "outputs", "wandb", "reports")


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.1f} {unit}" if unit != "B" and n < 10 else f"{n:.0f} {unit}"
        n /= 1024
    raise AssertionError


class DiskFull(UserError):
    """A write that found its disk full (or its quota used up). `path`: what was being written, when known;
    `needed`: its size in bytes, when known. `explain(paths)` says it with the setting that holds the path."""

    def __init__(self, path: str | Path | None = None, needed: int | None = None, quota: bool = False):
        self.path, self.needed, self.quota = (None if path is None else Path(path)), needed, quota
        super().__init__(self.explain())

    def __reduce__(self):  # pickled (a job's exception crossing processes) by its parts, not its message
        return type(self), (self.path, self.needed, self.quota)

    def explain(self, paths: Mapping[str, Any] | None = None) -> str:
        """The paragraph; with `paths` (conf/paths) it names the setting whose directory holds the file."""
        setting, where = _setting(self.path, paths)
        free = None if self.quota else _free(where or self.path)
        text = ("Your disk quota" if self.quota else "The disk") + (f" under {setting} ({where})" if setting else "") \
            + (" is used up" if self.quota else " is full")
        if self.path is not None:
            text += f": writing {self.path}" + (f" ({size_text(self.needed)})" if self.needed else "") + " failed"
        if free is not None:
            text += f"; {size_text(free[0])} of its {size_text(free[1])} are free now"
        text += ". Nothing finished is damaged: what the store holds is written whole or not at all. Free space there" \
            + (f" (that file alone needs {size_text(self.needed)})" if self.needed else "")
        if setting:
            env = {"paths.root": " or $SOFTPROMPT_XL_ROOT", "paths.cache": " or $SOFTPROMPT_XL_CACHE"}.get(setting, "")
            text += f", or point {setting} at a disk with room ({setting}=DIR{env})"
        return text + ", then run the same command again: it goes on from what the store holds."


def _setting(path: Path | None, paths: Mapping[str, Any] | None) -> tuple[str | None, Path | None]:
    """The path setting (as `paths.<name>`) whose directory holds `path` - the outermost of those that do, the root
    when it does - and that directory; the root when `path` is unknown; (None, None) without settings."""
    if not paths:
        return None, None
    dirs = {name: Path(str(paths[name])).absolute() for name in PATH_SETTINGS if paths.get(name) is not None}
    if path is None:
        return ("paths.root", dirs["root"]) if "root" in dirs else (None, None)
    path = Path(path).absolute()
    holding = [name for name, d in dirs.items() if path == d or d in path.parents]
    if not holding:
        return None, None
    name = min(holding, key=lambda n: len(dirs[n].parts))  # the outermost: the one set (hf_cache follows cache)
    return f"paths.{name}", dirs[name]


def _free(path: Path | None) -> tuple[int, int] | None:
    """(free, total) bytes of the disk `path` is on (its nearest existing directory), or None."""
    if path is None:
        return None
    for directory in [Path(path).absolute(), *Path(path).absolute().parents]:
        try:
            usage = shutil.disk_usage(directory)
            return usage.free, usage.total
        except OSError:
            continue
    return None


def no_space(err: BaseException | None) -> BaseException | None:
    """The error in `err`'s chain (itself, its cause, the error it was raised in) that says a disk is full or a
    quota used up, else None."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, DiskFull) or (isinstance(err, OSError) and err.errno in NO_SPACE) \
                or any(words in str(err) for words in NO_SPACE_WORDS):
            return err
        err = err.__cause__ or err.__context__
    return None


def disk_full(err: BaseException, path: str | Path | None = None, needed: int | None = None) -> DiskFull | None:
    """`err` as a DiskFull if a full disk is behind it (`path` and `needed`: what was being written, when the error
    does not name it), else None."""
    found = no_space(err)
    if found is None or isinstance(found, DiskFull):
        return found
    named = getattr(found, "filename2", None) or getattr(found, "filename", None)  # a move's is its destination
    quota = getattr(found, "errno", None) == errno.EDQUOT or os.strerror(errno.EDQUOT) in str(found)
    return DiskFull(path if path is not None else named, needed, quota)


@contextmanager
def naming_a_full_disk(path: str | Path, needed: int | None = None) -> Iterator[None]:
    """Within the block, a full disk raises DiskFull naming `path` (and `needed` bytes), not a bare error."""
    try:
        yield
    except Exception as err:
        if (full := disk_full(err, path, needed)) is None or full is err:
            raise
        raise full from err


def write_json(path: str | Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def write_jsonl(path: str | Path, rows: list[dict]) -> None:
    write_text(path, "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows))


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    with naming_a_full_disk(path, len(data)):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, _usual_mode(0o666))
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _usual_mode(mode: int) -> int:
    """`mode` under the process's umask: what open() or mkdir() would have given the file. tempfile makes its files
    private (0600, 0700), which would keep a store shared by a group on a cluster from its other members."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


@contextmanager
def atomic_dir(final: str | Path) -> Iterator[Path]:
    """Yield a temporary directory beside `final`; it becomes `final` by one rename only if the block succeeds."""
    final = Path(final)
    with naming_a_full_disk(final):
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
        try:
            tmp.chmod(_usual_mode(0o777))
            try:
                yield tmp
            except DiskFull as err:  # a file inside (write_bytes): named by the directory, which needs more
                raise DiskFull(final, None, err.quota) from err
            if final.exists():  # an older copy (e.g. force=true): swap it out, then drop it
                old = final.with_name(f".{final.name}.old")
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
