"""Shared fixtures: the real config tree composed with Hydra, and the tiny backbone built once per session."""

from __future__ import annotations

import copy
import gc
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_module

from softprompt_xl.model.backbone import load_backbone
from softprompt_xl.toy import backbone_dir
from softprompt_xl.config import CONF_MODULE, PROJECT_DIR, group_options, register_resolvers

register_resolvers()

# Each process its share of the cores: the suite runs in pytest-xdist workers (`-n logical` in pyproject.toml), the
# everyday command beside them (below), and a CLI test's process in its worker's place. Torch processes that together
# ask for more threads than there are cores spin-wait on each other and run 10-30x slower. A count set by the caller wins.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
THREADS = os.environ.get("OMP_NUM_THREADS") or str(max(1, (os.cpu_count() or 2) // (WORKERS + 1)))
torch.set_num_threads(int(THREADS))


@pytest.fixture(scope="session")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("root")


# One cache for the whole session (tokenised splits, and any backbone a test builds), so each is made once. The
# tiny backbone itself is the one the package ships (the default recipe's): every test runs on what a user runs,
# and nothing is pre-trained. A caller's $SOFTPROMPT_XL_TINY_PRETRAIN_STEPS is dropped: it names another build.
SHARED_CACHE = Path(os.environ.get("SOFTPROMPT_XL_TEST_CACHE") or PROJECT_DIR / "runs" / "test-cache")
os.environ.pop("SOFTPROMPT_XL_TINY_PRETRAIN_STEPS", None)


@pytest.fixture(scope="session")
def make_cfg(root):
    def make(*overrides: str):
        with initialize_config_module(CONF_MODULE, version_base="1.3"):
            return compose("train", overrides=[f"paths.root={root}", f"paths.cache={SHARED_CACHE}", *overrides])

    return make


@pytest.fixture(scope="session")
def cfg(make_cfg):
    return make_cfg("+combo=lp_ta", "lang=sk")


@pytest.fixture(scope="session")
def tiny_dir(cfg) -> Path:
    return backbone_dir(cfg.backbone.build, cfg.paths, create=True)


@pytest.fixture(scope="session")
def tiny_loaded(cfg, tiny_dir):
    """The tiny backbone loaded once, through the same loader as hub models."""
    return load_backbone(cfg.backbone, cfg.paths)


@pytest.fixture
def tiny(tiny_loaded):
    """A fresh (model, tokenizer) of the tiny backbone: a copy of the one loaded once (tests attach components to
    the model; none changes the tokenizer)."""
    model, tokenizer = tiny_loaded
    return copy.deepcopy(model), tokenizer


def cli_env(env: dict[str, str | None] | None = None) -> dict[str, str]:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "SOFTPROMPT_XL_CACHE": str(SHARED_CACHE),
                "OMP_NUM_THREADS": THREADS, "MKL_NUM_THREADS": THREADS, **(env or {})}
    return {k: v for k, v in full_env.items() if v is not None}  # None unsets a variable


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str | None] | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    """`python -m softprompt_xl.train ARGS` as a user would type it; `.stdout` holds both streams (Hydra logs to stdout)."""
    return subprocess.run(
        [sys.executable, "-m", "softprompt_xl.train", *args],
        cwd=cwd or PROJECT_DIR, env=cli_env(env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=timeout,
    )


def start_cli(*args: str, env: dict[str, str | None] | None = None) -> subprocess.Popen:
    """`run_cli` in the background: the test acts on the jobs while the command runs."""
    return subprocess.Popen([sys.executable, "-m", "softprompt_xl.train", *args], cwd=PROJECT_DIR, env=cli_env(env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


# --- the single-node SLURM cluster of .ci/slurm-cluster (tests marked `slurm`) --------------------------------
SLURM_SCRIPT = PROJECT_DIR / ".ci" / "slurm-cluster"
SLURM_DIR = Path(os.environ.get("SOFTPROMPT_XL_SLURM_DIR", "/tmp/softprompt_xl-slurm"))
SLURM_TOOLS = ("sbatch", "srun", "sacct", "squeue", "scancel", "scontrol", "slurmctld", "slurmd", "slurmdbd", "munged",
               "mariadbd")


@pytest.fixture(scope="session")
def slurm():
    """The test cluster: the one `make slurm-up` brought up, or brought up now for this session (and stopped after
    it) when this machine allows. Yields the environment of a sweep on it: SLURM_CONF, and resources the one
    small node can give (no GPU, 1 CPU and 3 GB per job)."""
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"SLURM is not installed here (no {', '.join(missing)}): install it with `.ci/slurm-cluster "
                    "install` (Debian's slurm-wlm slurmdbd munge mariadb-server), then `make slurm-up` as root")
    started = False
    if subprocess.run([SLURM_SCRIPT, "status"], capture_output=True).returncode != 0:
        if os.geteuid() != 0:
            pytest.skip("the test SLURM cluster is not up, and only root can bring it up: `sudo make slurm-up`")
        up = subprocess.run([SLURM_SCRIPT, "up"], capture_output=True, text=True, timeout=600)
        if up.returncode != 0:
            pytest.skip(f"the test SLURM cluster did not come up (`.ci/slurm-cluster up`): {up.stderr.strip()[-800:]}")
        started = True
    conf, before = str(SLURM_DIR / "etc" / "slurm.conf"), os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf  # the tests' own squeue, sacct, scancel
    yield {
        "SLURM_CONF": conf,
        "SOFTPROMPT_XL_SLURM_GPUS_PER_TASK": "0", "SOFTPROMPT_XL_SLURM_CPUS_PER_TASK": "1",
        "SOFTPROMPT_XL_SLURM_MEM_GB": "3", "SOFTPROMPT_XL_SLURM_TIME_MIN": "30",
    }
    if before is None:
        os.environ.pop("SLURM_CONF")
    else:
        os.environ["SLURM_CONF"] = before
    if started:
        subprocess.run([SLURM_SCRIPT, "down"], capture_output=True, timeout=600)


# --- the pipeline in-process: plan, store and stages on a composed config -------------------------------------
# The tests check the pipeline, not the scores: a few steps of each stage, validated on a fixed subset of 8
# records and tested on the first 16 (the everyday command validates and tests on whole splits). One definition
# for every test file.
FAST_OVERRIDES = ("lang_stage.max_steps=4", "task_stage.max_steps=4", "task_stage.val_every_n_steps=2",
                  "task_stage.val_max_examples=8", "data.task.splits.test='test[:16]'", "logger=none")


def run_sweep(make_cfg, root: Path, *overrides: str):
    """The staged sweeper's sweep of `... OVERRIDES -m`, in this process: its jobs (pipeline/sweep.py sweep_jobs), the
    plan (pipeline/plan.py) and its launch in stages (sweep.launch_in_stages), each job run by stages.run on its composed
    config in its directory under ROOT/outputs, instead of by Hydra's launcher. Returns the plan and the results (as
    JSON) by `<combo>-<lang>-<task>` (language-component jobs by `lang-<kind>-<lang>`). A failing job raises (the
    sweep's handling of failures is the CLI's, tested there)."""
    from softprompt_xl.pipeline import stages
    from softprompt_xl.pipeline.plan import LangComponentJob, plan_sweep
    from softprompt_xl.pipeline.records import cfg_run_name, lang_run_name
    from softprompt_xl.pipeline.run_spec import RunSpec
    from softprompt_xl.pipeline.sweep import launch_in_stages, sweep_jobs

    def compose(job: list[str]):
        return make_cfg(f"paths.root={root}", *(o for o in job if not o.startswith("hydra.")))

    results = {}

    def launch(job_type: str, jobs, index: int) -> list[dict]:
        batch = []
        for number, job in enumerate(jobs, index):
            cfg = compose(list(job.overrides))
            name = lang_run_name(job.kind, job.lang) if isinstance(job, LangComponentJob) else cfg_run_name(cfg)
            results[name] = stages.run(RunSpec.of(cfg), root / "outputs" / f"{number}_{name}").to_json()
            batch.append(results[name])
        return batch

    def not_run(job, number: int, error: str) -> None:
        raise AssertionError(f"run_sweep: job {number} not run, but no job fails here: {error}")

    plan = plan_sweep(sweep_jobs(overrides), compose)
    launch_in_stages(plan, launch, lambda result: None, not_run)  # (a failing job raised)
    return plan, results


def experiment_grid(name: str) -> list[list[str]]:
    """The runs of `python -m softprompt_xl.train experiment=NAME -m`: its sweeper params expanded as the staged
    sweeper expands them."""
    from softprompt_xl.pipeline.sweep import sweep_jobs

    with initialize_config_module(CONF_MODULE, version_base="1.3"):
        params = compose("train", overrides=[f"experiment={name}"], return_hydra_config=True).hydra.sweeper.params
    return sweep_jobs([f"experiment={name}"], params)


# The named combos (conf/combo/), each of them once: `pair` names any of them by its two kinds (test_pair_combo.py),
# by default lp_ta again.
ALL_COMBOS = [name for name in group_options("combo") if name != "pair"]


@pytest.fixture(scope="session")
def every_combo(make_cfg, tmp_path_factory):
    """Every combo on Slovak QA, a few steps each, in one store: trained once, asserted on by several tests (the
    store's reuse, reruns and cross-lingual evaluation build on it). Returns (root, plan, results)."""
    root = tmp_path_factory.mktemp("every-combo")
    plan, results = run_sweep(make_cfg, root, "+combo=" + ",".join(ALL_COMBOS), "lang=sk", *FAST_OVERRIDES)
    return root, plan, results


# --- the everyday command, started with the session ------------------------------------------------------------
# `python -m softprompt_xl.train +combo=lp_ta lang=sk -m` at its default budget is the longest test, and a process
# of its own: started as soon as the session has collected its test, it runs beside the other tests, and its test
# runs last (pytest_collection_modifyitems), when the command has finished. Under pytest-xdist the first worker
# starts it, in a directory the controller made (workers inherit its environment), and the worker that gets the
# test waits for its exit code there; the controller, last to finish, removes it (a worker is shut down as soon as
# it has nothing left to run, while another may still wait for the command).
EVERYDAY_ARGS = ("+combo=lp_ta", "lang=sk", "-m")
EVERYDAY_TEST = "test_the_everyday_command_end_to_end"
EVERYDAY_DIR = "SOFTPROMPT_XL_TEST_EVERYDAY_DIR"
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def pytest_configure(config) -> None:
    if not hasattr(config, "workerinput"):  # the controller, or a session without workers
        import tempfile

        os.environ[EVERYDAY_DIR] = tempfile.mkdtemp(prefix="softprompt_xl-everyday-")


def _start_everyday() -> None:
    base = Path(os.environ[EVERYDAY_DIR])
    root, home, cwd = base / "root", base / "home", base / "cwd"
    home.mkdir()
    cwd.mkdir()
    env = {"SOFTPROMPT_XL_ROOT": str(root), "HOME": str(home)}
    # Through sh, which writes the exit code when the command ends: whichever worker runs the test reads it there.
    script = '"$@" > ../stdout.log 2>&1; echo $? > ../rc.tmp && mv ../rc.tmp ../rc'
    proc = subprocess.Popen(["sh", "-c", script, "sh", sys.executable, "-m", "softprompt_xl.train", *EVERYDAY_ARGS],
                            cwd=cwd, env=cli_env(env), start_new_session=True)
    (base / "pgid").write_text(str(proc.pid))


def pytest_collection_finish(session) -> None:
    # The libraries imported by now (half a million objects) are never garbage: frozen, they are left out of every
    # collection, and load_backbone's gc.collect() at each stage scans only what the tests made (0.33 s -> ~0.01 s;
    # a few hundred stages run in the suite).
    gc.freeze()
    if WORKER == "gw0" and any(item.name == EVERYDAY_TEST for item in session.items):  # once per session
        _start_everyday()


# Tests that share an expensive session-scoped fixture run in one worker (`--dist loadgroup`), so it is built once;
# the SLURM tests run one after another, as the one-node cluster runs one sweep's jobs at a time.
SHARED_FIXTURES = ("every_combo", "venv", "mt0_base_shaped", "fixture_root")


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    items.sort(key=lambda item: item.name == EVERYDAY_TEST)  # last: it waits for the command started at collection
    for item in items:
        shared = [name for name in SHARED_FIXTURES if name in getattr(item, "fixturenames", ())]
        if item.get_closest_marker("slurm"):
            shared.insert(0, "slurm")
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))


@pytest.fixture(scope="session")
def everyday_command():
    """The everyday command, run from an empty directory with an empty HOME (SOFTPROMPT_XL_ROOT sets the root):
    a dict of base, root, home, cwd, env, returncode and stdout (both streams)."""
    import time

    base = Path(os.environ[EVERYDAY_DIR])
    deadline = time.time() + 900
    while not (base / "rc").exists():
        assert (base / "pgid").exists(), "the everyday command was not started at collection (conftest.py)"
        assert time.time() < deadline, f"the everyday command has not ended in 15 minutes: {base / 'stdout.log'}"
        time.sleep(0.5)
    return {"base": base, "root": base / "root", "home": base / "home", "cwd": base / "cwd",
            "env": {"SOFTPROMPT_XL_ROOT": str(base / "root"), "HOME": str(base / "home")},
            "returncode": int((base / "rc").read_text()), "stdout": (base / "stdout.log").read_text()}


def pytest_sessionfinish(session) -> None:
    """The controller (or a session without workers) ends last: a command still running then (-x, Ctrl-C) is
    stopped, and its directory removed."""
    if hasattr(session.config, "workerinput") or EVERYDAY_DIR not in os.environ:
        return
    base = Path(os.environ.pop(EVERYDAY_DIR))
    if (base / "pgid").exists() and not (base / "rc").exists():
        try:
            os.killpg(int((base / "pgid").read_text()), signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(base, ignore_errors=True)
