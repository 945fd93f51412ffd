"""A full disk: every write of the store fails whole (no temporary file left, nothing finished damaged), and is said
in one paragraph - where, how much is free, what the write needed, how to fix it - with no traceback. Simulated with
a write that raises ENOSPC, and for real on a small tmpfs where this runs as root."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import lightning as L
import pytest
import torch
from safetensors.torch import load_file
from torch.utils.data import DataLoader

from conftest import FAST_OVERRIDES, run_cli
from test_resume import Tiny  # the same tiny module the checkpoint tests train
from softprompt_xl.errors import UserError
from softprompt_xl.model.component_header import WEIGHTS_FILE, damage
from softprompt_xl.runtime import atomic
from softprompt_xl.runtime.atomic import DiskFull, atomic_dir, disk_full, write_json
from softprompt_xl.runtime.resume import LAST, Checkpointing, resume_point
from softprompt_xl.pipeline import stages
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.pipeline.run_spec import RunSpec

PATHS = {"root": "/data/runs", "store": "/data/runs/store", "cache": "/scratch/cache",
         "hf_cache": "/scratch/cache/huggingface", "outputs": "/data/runs/outputs", "wandb": "/data/runs/wandb"}


def temporaries(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.endswith(".tmp") or ".tmp." in p.name]


@pytest.fixture
def full_disk(monkeypatch):
    """Every write through a file object fails as on a full disk (os.fsync: after the bytes are handed over)."""
    def fsync(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", fsync)


def test_a_file_written_on_a_full_disk_leaves_the_old_one_and_no_temporary(tmp_path, full_disk):
    path = tmp_path / "results" / "r.json"
    path.parent.mkdir()
    path.write_text('{"old": true}')
    with pytest.raises(DiskFull) as raised:
        write_json(path, {"new": list(range(1000))})
    assert path.read_text() == '{"old": true}' and not temporaries(tmp_path)
    err = raised.value
    assert isinstance(err, UserError) and err.path == path and err.needed > 4000
    text = str(err)
    assert text.startswith(f"The disk is full: writing {path} (") and "are free" in text
    assert "Free space there (that file alone needs" in text and "run the same command again" in text


def test_a_directory_written_on_a_full_disk_leaves_nothing(tmp_path, monkeypatch):
    final = tmp_path / "components" / "lang-prompt-sk-1"

    with pytest.raises(DiskFull) as raised:
        with atomic_dir(final) as tmp:
            (tmp / "weights.safetensors").write_bytes(b"x")
            # as safetensors says it: its own error type, with the system's words
            raise RuntimeError("Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "
                               "\"No space left on device\" })")
    assert raised.value.path == final and not final.exists() and list(final.parent.iterdir()) == []


def test_the_paragraph_names_the_setting_that_holds_the_file():
    err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    store_file = disk_full(err, "/data/runs/store/results/r.json", 2048).explain(PATHS)
    assert store_file.startswith("The disk under paths.root (/data/runs) is full: writing "
                                 "/data/runs/store/results/r.json (2.0 KB) failed")
    assert "point paths.root at a disk with room (paths.root=DIR or $SOFTPROMPT_XL_ROOT)" in store_file
    cache = disk_full(err, "/scratch/cache/huggingface/datasets/x.arrow").explain(PATHS)
    assert cache.startswith("The disk under paths.cache (/scratch/cache) is full") and "$SOFTPROMPT_XL_CACHE" in cache
    # a library's own error, without errno or path, found in the chain: the root's disk; a quota said as a quota
    assert disk_full(RuntimeError("something else")) is None
    chained = RuntimeError("saving failed")
    chained.__cause__ = OSError("Not enough disk space. Needed: Unknown size")
    assert disk_full(chained).explain(PATHS).startswith("The disk under paths.root (/data/runs) is full")
    quota = disk_full(OSError(errno.EDQUOT, os.strerror(errno.EDQUOT), "/data/runs/store/x")).explain(PATHS)
    assert quota.startswith("Your disk quota under paths.root (/data/runs) is used up: writing /data/runs/store/x")


def fit(directory: Path, steps: int) -> None:
    trainer = L.Trainer(max_steps=steps, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[Checkpointing(directory, 1)], accelerator="cpu")
    trainer.fit(Tiny(), DataLoader(torch.randn(8, 4), batch_size=2))


def test_a_checkpoint_that_finds_the_disk_full_keeps_the_last_one_and_no_temporary(tmp_path, monkeypatch):
    fit(tmp_path, 3)  # checkpoints at steps 1 and 2
    before = (tmp_path / LAST).read_bytes()
    assert resume_point(tmp_path)[1] == 2 and [p.name for p in tmp_path.iterdir()] == [LAST]
    monkeypatch.setattr(atomic.os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space")))
    with pytest.raises(DiskFull) as raised:
        fit(tmp_path, 3)
    assert raised.value.path == tmp_path / LAST and raised.value.needed == pytest.approx(len(before), rel=0.1)
    assert (tmp_path / LAST).read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [LAST]


def test_a_checkpoint_cut_short_is_named_and_removed(tmp_path, caplog):
    fit(tmp_path, 3)
    whole = (tmp_path / LAST).read_bytes()
    (tmp_path / LAST).write_bytes(whole[:len(whole) // 2])
    assert resume_point(tmp_path) == (None, 0)
    assert f"{tmp_path / LAST} is damaged (" in caplog.text and "the stage restarts from scratch" in caplog.text
    assert not tmp_path.exists()


# --- for real: a small tmpfs (root only) -----------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """Mount a tmpfs of the size asked for at tmp_path/disk (remounted with `size=` to make room); unmounted after."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")

    def mount(size: str, remount: bool = False) -> Path:
        options = f"{'remount,' if remount else ''}size={size}"
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, f"spxl-{uuid.uuid4().hex[:8]}", str(disk)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        return disk

    yield mount
    subprocess.run(["umount", str(disk)], capture_output=True)


@pytest.mark.e2e
def test_a_sweep_on_a_full_disk_says_so_in_a_paragraph_and_a_rerun_with_room_finishes(small_disk, make_cfg, tmp_path):
    """Room for stage 1 and one checkpoint of stage 2, not for the next (a checkpoint is replaced atomically: the
    new one is written whole beside the old): the job fails in one paragraph, leaves no temporary file and damages
    nothing; with room, the same command resumes stage 2 and ends as a run that never ran out of space."""
    root = small_disk("420k")
    args = ["+combo=lp_ta", "lang=sk", f"paths.root={root}", *FAST_OVERRIDES, "checkpoint_every_n_steps=1"]
    proc = run_cli(*args, "-m")
    out = proc.stdout
    assert proc.returncode == 1, out[-3000:]
    assert "Traceback" not in out and "Logging error" not in out, out[-5000:]
    assert f"The disk under paths.root ({root}) is full: writing {root}/store/checkpoints/" in out, out[-3000:]
    assert "are free" in out and "point paths.root at a disk with room" in out
    assert not temporaries(root)
    (lang,) = [p for p in (root / "store" / "components").iterdir() if p.is_dir()]
    assert damage(lang) is None
    assert list((root / "store" / "checkpoints").glob(f"task-*/{LAST}"))  # the one that fitted, whole

    small_disk("20m", remount=True)
    again = run_cli(*args, "-m")
    assert again.returncode == 0, again.stdout[-3000:]
    assert "1 already in the store, 0 to train" in again.stdout and "resuming at step" in again.stdout
    assert not temporaries(root) and not any((root / "store" / "checkpoints").iterdir())
    (result,) = (root / "store" / "results").glob("*.json")
    whole = stages.run(RunSpec.of(make_cfg(f"paths.root={tmp_path / 'roomy'}", *args[:2], *FAST_OVERRIDES,
                                "checkpoint_every_n_steps=1")), tmp_path / "roomy" / "outputs")
    assert json.loads(result.read_text())["metrics"] == whole.metrics
    (task,) = (root / "store" / "components").glob("task-*")
    expected = load_file(Store(tmp_path / "roomy" / "store").component_dir(whole.task_component) / WEIGHTS_FILE)
    resumed = load_file(task / WEIGHTS_FILE)
    assert all((expected[k] - resumed[k]).abs().max().item() < 1e-5 for k in expected) and expected.keys() == resumed.keys()


def test_files_written_whole_get_the_modes_the_umask_gives(tmp_path):
    # tempfile's private 0600/0700 would keep a store shared by a group from its other members
    from softprompt_xl.runtime.atomic import atomic_dir, write_text

    old = os.umask(0o002)
    try:
        write_text(tmp_path / "result.json", "{}")
        with atomic_dir(tmp_path / "component") as d:
            (d / "x").write_text("")
    finally:
        os.umask(old)
    assert (tmp_path / "result.json").stat().st_mode & 0o777 == 0o664
    assert (tmp_path / "component").stat().st_mode & 0o777 == 0o775


def test_an_output_root_on_a_full_disk_is_said_as_a_full_disk(tmp_path, monkeypatch):
    # Hydra writes the job's config before main: the root's check writes some bytes, so that a disk with inodes
    # but no room left is found there and said as full (train.PrepareOutputRoot), not as a permission problem
    import errno as errnos

    from softprompt_xl.config import check_writable
    from softprompt_xl.runtime.atomic import disk_full

    def no_room(self, data):
        raise OSError(errnos.ENOSPC, "No space left on device") if data else AssertionError("an empty probe")

    monkeypatch.setattr(Path, "write_bytes", no_room)
    with pytest.raises(OSError) as err:
        check_writable(tmp_path / "root")
    assert err.value.errno == errnos.ENOSPC and not list((tmp_path / "root").iterdir())
    assert disk_full(err.value, tmp_path / "root").explain({"root": str(tmp_path / "root")}).startswith(
        f"The disk under paths.root ({tmp_path / 'root'}) is full")
