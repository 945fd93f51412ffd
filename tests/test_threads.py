"""Each job its share of the cores (softprompt_xl/runtime/cluster.py): the local_parallel launcher starts its jobs
with max(1, cores // jobs at a time) threads unless the user set OMP_NUM_THREADS, and a job holds torch to what
SLURM or its environment allows. (A real local_parallel sweep logs its jobs' threads: test_pipeline.py.)"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import cli_env
from hydra_plugins.softprompt_xl_launcher.launchers import LocalParallelLauncher
from softprompt_xl.config import PROJECT_DIR
from softprompt_xl.runtime import cluster

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "SLURM_CPUS_PER_TASK")


@pytest.fixture
def no_thread_settings(monkeypatch):
    for name in THREAD_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(cluster, "cores", lambda: 8)


def test_a_job_s_share_is_the_cores_divided_by_the_jobs_at_once_and_a_user_s_setting_wins(no_thread_settings,
                                                                                           monkeypatch):
    assert cluster.share_environment(2) == {"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}
    assert cluster.share_environment(1)["OMP_NUM_THREADS"] == "8"
    assert cluster.share_environment(3)["OMP_NUM_THREADS"] == "2"
    assert cluster.share_environment(16)["OMP_NUM_THREADS"] == "1"  # never none
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cluster.share_environment(2) == {}


def test_a_job_s_threads_are_slurm_s_cpus_else_its_omp_setting(no_thread_settings, monkeypatch):
    assert cluster.job_threads() is None
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cluster.job_threads() == 3
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert cluster.job_threads() == 2


class _Job:
    def done(self) -> bool:
        return True


class _Executor:
    """Records the thread settings each job would start with (submitit's local executor passes os.environ on)."""

    def __init__(self):
        self.seen = []

    def submit(self, *call):
        self.seen.append({name: os.environ.get(name) for name in THREAD_VARS[:2]})
        return _Job()


def test_local_parallel_starts_each_job_with_its_share_and_leaves_the_environment_as_it_was(no_thread_settings,
                                                                                             monkeypatch):
    launcher, executor = LocalParallelLauncher(max_parallel=2), _Executor()
    launcher.submit(executor, [("a",), ("b",), ("c",)])
    assert executor.seen == [{"OMP_NUM_THREADS": "4", "MKL_NUM_THREADS": "4"}] * 3
    assert "OMP_NUM_THREADS" not in os.environ and "MKL_NUM_THREADS" not in os.environ

    executor = _Executor()
    launcher.submit(executor, [("a",)])  # a batch of one job: every core
    assert executor.seen == [{"OMP_NUM_THREADS": "8", "MKL_NUM_THREADS": "8"}]

    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the user's choice, for every job
    executor = _Executor()
    launcher.submit(executor, [("a",), ("b",)])
    assert executor.seen == [{"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": None}] * 2


def test_a_job_holds_torch_to_its_slurm_cpus():
    # torch starts with a thread per core (nothing else set), then the job holds it to its allocation
    code = ("import logging, torch; logging.basicConfig(level=logging.INFO); "
            "from softprompt_xl.runtime.cluster import limit_threads; limit_threads(); print(torch.get_num_threads())")
    env = cli_env({"OMP_NUM_THREADS": None, "MKL_NUM_THREADS": None, "SLURM_CPUS_PER_TASK": "1"})
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_DIR, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["1"] and "Torch threads: 1 (of " in proc.stderr
