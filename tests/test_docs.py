"""Every command the documentation shows (README.md, experiments/README.md, experiments/benchmarks/README.md) does
what it says.

`COMMANDS` names each shell command the three files show, in ```bash blocks and in inline code, and how a test
covers it; `test_the_list_is_the_commands_the_docs_show` fails on a command the docs show that the list lacks, and on
one the list keeps that the docs no longer show, so that docs and tests cannot drift apart. This package's commands
run here as a user types them (split as the shell splits them), in a temporary paths.root, as dry runs where they
would train (`dry_run=true`, and `-m` for a single run: planned as a sweep of one) and on a small store of results
for the report: all in one process (tests/run_commands.py), which imports torch once for them all. A command that
needs the network, SLURM or a GPU is planned there at least; one whose work takes minutes has a test elsewhere named
in the list; the tools of others (pip, W&B, SLURM's commands) are named as such and not run.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass

import pytest

from conftest import cli_env
from softprompt_xl.config import CONF_DIR, PROJECT_DIR

pytestmark = pytest.mark.xdist_group("docs")  # the batch of commands runs once, in one worker

DOCS = ("README.md", "experiments/README.md", "experiments/benchmarks/README.md", "experiments/slurm.md")
# The first word of an inline code span that makes it a shell command (`make DIR --gb N`, a subcommand of a
# benchmark script, is one by its looks: the list says what it is).
PROGRAMS = ("python", "pip", "make", "bash", "torchrun", "huggingface-cli", "wandb", "squeue", "sacct", "tail", "cd",
            "eval", "export", ".ci/run", ".ci/slurm-cluster")


@dataclass(frozen=True)
class Run:
    """Run in the batch: `args` (default: the documented command itself; a dry run where it would train), with
    {root} (an empty paths.root), {store} (a root whose store holds a few results), {dir} (a scratch directory) and
    {user} (a directory with a config directory of one's own, my_conf/) filled in. Its exit code must be `rc` and its
    output hold each of `expect`."""

    args: str | None = None
    rc: int = 0
    expect: tuple[str, ...] = ()
    cwd: str | None = None


@dataclass(frozen=True)
class Dry:
    """The documented training command as a dry run (`dry_run=true`; `-m` added to a single run), in {root};
    `also` appended where the whole command would plan too long for the default suite (its full plan is `full`: a
    test of test_plan.py, or this file's slow test)."""

    expect: tuple[str, ...] = ()
    rc: int = 0
    also: str = ""


@dataclass(frozen=True)
class Elsewhere:
    """Covered by this test (file::name), which must exist."""

    test: str


@dataclass(frozen=True)
class Make:
    """A target of the Makefile: `make -n TARGET` shows its commands (run nothing), which must hold `shows`."""

    target: str
    shows: str


@dataclass(frozen=True)
class Shell:
    """A shell script of the repository: it exists, is read by `bash -n` without an error."""

    path: str


@dataclass(frozen=True)
class Extra:
    """`pip install -e '.[NAME]'`: pyproject.toml has the extra."""

    name: str


@dataclass(frozen=True)
class Throughput:
    """A command line of experiments/benchmarks/throughput.py: its arguments parse (its run is test_benchmarks.py's)."""

    args: str


@dataclass(frozen=True)
class NotRun:
    """Not run by a test, and why (another tool's command, the network, a cluster)."""

    why: str


HUB = "the Hub's command: needs the network"
ENV = "a shell setting: test_every_environment_variable_the_docs_name_is_read"
SLOW_OR_CLUSTER = "the test suite itself: what each selection runs is test_the_test_commands_select_what_the_docs_say"

COMMANDS: dict[str, list] = {
    # --- README.md --------------------------------------------------------------------------------------------
    "pip install -e .": [Elsewhere("tests/test_install.py::test_the_installed_package_runs_from_an_empty_directory")],
    "pip install .": [Elsewhere("tests/test_install.py::test_the_installed_package_runs_from_an_empty_directory")],
    "pip install -e '.[test]'": [Extra("test")],
    "python -m softprompt_xl.train +combo=lp_ta lang=sk -m": [
        Dry(("Sweep plan: 1 run(s).", "1 to train: prompt sk")),
        Elsewhere("tests/test_cli.py::test_the_everyday_command_end_to_end")],
    "python -m pytest": [NotRun(SLOW_OR_CLUSTER)],
    "python -m pytest -m slow": [NotRun(SLOW_OR_CLUSTER)],
    "python -m pytest -m e2e": [NotRun(SLOW_OR_CLUSTER)],
    "python -m pytest -m slurm": [NotRun(SLOW_OR_CLUSTER)],
    "python -m pytest -m ''": [NotRun(SLOW_OR_CLUSTER)],
    "python -m pytest tests/test_real_shape.py -m slow -s": [NotRun(SLOW_OR_CLUSTER)],
    "python -m pytest tests/test_real_shape.py -m slow -s -k decoder": [NotRun(SLOW_OR_CLUSTER)],
    "make demo": [Make("demo", "python -m softprompt_xl.train +combo=lp_ta lang=sk -m")],
    "make test": [Make("test", "python -m pytest")],
    "make test-all": [Make("test-all", "python -m pytest -m ''")],
    "make test-slurm": [Make("test-slurm", "python -m pytest -m slurm")],
    "make test-e2e": [Make("test-e2e", "python -m pytest -m e2e")],
    "make slurm-up": [Make("slurm-up", ".ci/slurm-cluster up"), Shell(".ci/slurm-cluster")],
    "make slurm-down": [Make("slurm-down", ".ci/slurm-cluster down"), Shell(".ci/slurm-cluster")],
    ".ci/slurm-cluster install": [Shell(".ci/slurm-cluster")],
    "eval \"$(.ci/slurm-cluster env)\"": [Shell(".ci/slurm-cluster")],
    ".ci/run": [Shell(".ci/run")],
    "python -m softprompt_xl.train +combo=lp_ta lang=sk seed=42,1,2 logger=none -m": [
        Dry(("Sweep plan: 3 run(s).", "3 needed, 0 already in the store, 3 to train"))],
    "python -m softprompt_xl.train +combo=ta,tp,la_ta,la_tp,lp_ta,lp_tp lang=en,sk -m": [
        Dry(("Sweep plan: 12 run(s).", "4 needed, 0 already in the store, 4 to train"))],
    "python -m softprompt_xl.train +combo=lp_ta --cfg job": [
        Run("python -m softprompt_xl.train +combo=lp_ta --cfg job paths.root={root}",  # an override after --cfg job
            expect=("name: lp_ta", "root: {root}"))],
    "python -m softprompt_xl.train --help": [
        Run(expect=("+combo=pair combo.lang=KIND combo.task=KIND", "  prompt: Soft prompt", "n_tokens=10 "
                    "(backbone.prompt_tokens)", "reduction_factor=16", "r=8; alpha=16", "combo: full_ft, la_ta"))],
    "python -m softprompt_xl.train +combo=pair combo.lang=prompt combo.task=adapter,lora lang=sk -m": [
        Dry(("Sweep plan: 2 run(s).", "1 needed, 0 already in the store, 1 to train: prompt sk", "2 to run")),
        Elsewhere("tests/test_pair_combo.py::test_a_sweep_over_kinds_is_one_multirun_sharing_its_language_component")],
    "python -m softprompt_xl.train +combo=pair combo.lang=none,prompt,adapter,lora "
    "combo.task=none,prompt,adapter,lora lang=sk -m": [
        Dry(("Sweep plan: 16 run(s).", "3 needed, 0 already in the store, 3 to train")),
        Elsewhere("tests/test_pair_combo.py::test_every_kind_by_every_kind_plans_as_one_sweep")],
    "python -m softprompt_xl.train +combo=pair combo.lang=adapter combo.task=lora --cfg job --resolve -p combo": [
        Run(expect=("name: la_tl", "kind: adapter", "kind: lora", "reduction_factor: 16"))],
    "python -m softprompt_xl.train --config-dir my_conf +combo=mine lang=sk -m": [
        Run("python -m softprompt_xl.train --config-dir my_conf +combo=mine lang=sk -m paths.root={root} dry_run=true",
            expect=("Sweep plan: 1 run(s).",), cwd="{user}")],
    "python -m softprompt_xl.train +combo=zero_shot": [Dry(("Sweep plan: 1 run(s).", "0 needed"))],
    "python -m softprompt_xl.train +combo=zero_shot,ta,tp,tl,la_ta,la_tp,la_tl,lp_ta,lp_tp,lp_tl,ll_ta,ll_tp,ll_tl,full_ft "
    "task=qa,ner,nli,checkworthy lang=sk backbone=tiny_decoder logger=none -m": [
        Dry(("Sweep plan: 56 run(s).", "3 needed, 0 already in the store, 3 to train")),
        Elsewhere("tests/test_decoder_pipeline.py::test_every_combo_runs_on_the_tiny_decoder")],
    "python -m softprompt_xl.train +combo=lp_ta lang=sk backbone=tiny_decoder -m": [
        Dry(("Sweep plan: 1 run(s).", "1 to train: prompt sk")),
        Elsewhere("tests/test_decoder_pipeline.py::test_every_combo_runs_on_the_tiny_decoder")],
    "python -m softprompt_xl.train experiment=paper_v2 backbone=qwen2_5_0_5b dry_run=true -m": [
        Dry(("Sweep plan: 7 run(s).", "bg has no qa test set: not evaluated"), also="task=qa lang=en"),
        Elsewhere("tests/test_decoder_pipeline.py::test_the_paper_grid_plans_on_every_decoder_backbone")],
    "python -m softprompt_xl.train +combo=lp_ta lang=sk backbone=tiny,tiny_decoder -m": [
        Dry(("Sweep plan: 2 run(s).", "prompt sk on tiny (", "prompt sk on tiny_decoder (")),
        Elsewhere("tests/test_decoder_pipeline.py::test_one_configuration_on_two_backbones_is_reported_side_by_side")],
    "python -m softprompt_xl.toy.backbone --ship": [
        Elsewhere("tests/test_shipped_backbone.py::test_ship_puts_the_rebuilt_backbone_in_place_of_the_old_one"),
        Elsewhere("tests/test_shipped_backbone.py::test_the_shipped_backbone_is_byte_identical_to_a_build_from_scratch")],
    "python -m softprompt_xl.toy.backbone --ship backbone=tiny_decoder": [
        Elsewhere("tests/test_shipped_backbone.py::test_the_shipped_backbone_is_byte_identical_to_a_build_from_scratch")],
    "python -m softprompt_xl.toy.make_toy": [Elsewhere("tests/test_toy_data.py::test_committed_files_match_regeneration")],
    "huggingface-cli download bigscience/mt0-base --local-dir /data/mt0-base": [NotRun(HUB)],
    "huggingface-cli download ivykopal/slovak_prompt_100k --local-dir DIR": [NotRun(HUB)],
    "python -m softprompt_xl.train +combo=lp_ta lang=sk backbone=mt0_base backbone.name=/data/mt0-base -m": [
        Dry(("Sweep plan: 1 run(s).",)),  # planned without the model; loading it says what is missing:
        Elsewhere("tests/test_cli.py::test_a_backbone_directory_that_is_none_says_how_to_make_one")],
    "python -m softprompt_xl.store import ivykopal/slovak_prompt_100k backbone=mt0_base": [
        Run("python -m softprompt_xl.store import ivykopal/slovak_prompt_100k backbone=mt0_base paths.root={root}", rc=1,
            expect=("huggingface-cli download ivykopal/slovak_prompt_100k --local-dir DIR",
                    "softprompt_xl.store import DIR --as ivykopal/slovak_prompt_100k")),  # offline here
        Elsewhere("tests/test_import.py::test_a_run_with_an_imported_component_skips_stage_1_and_its_keys_say_imported")],
    # {dir}/slovak_prompt_100k: a prompt saved in the authors' layout, for the tiny backbone (the language from its name)
    "python -m softprompt_xl.store import NAME_OR_DIR": [
        Run("python -m softprompt_xl.store import {dir}/slovak_prompt_100k paths.root={dir}/imported",
            expect=("{dir}/slovak_prompt_100k (sk) imported into the store {dir}/imported/store: lang-prompt-sk-",)),
        Elsewhere("tests/test_import.py::test_prompt_import_uses_the_first_virtual_tokens_and_computes_what_theirs_did")],
    "python -m softprompt_xl.store import DIR --as ivykopal/slovak_prompt_100k": [
        Run("python -m softprompt_xl.store import {dir}/slovak_prompt_100k --as ivykopal/slovak_prompt_100k "
            "paths.root={dir}/imported-as",
            expect=("ivykopal/slovak_prompt_100k (sk) imported into the store",
                    "Use it in runs with lang_stage.source=import:ivykopal/slovak_prompt_100k"))],
    # a run whose import is not in the store stops before anything trains, with the import command to run
    "python -m softprompt_xl.train +combo=lp_ta lang=sk backbone=mt0_base "
    "lang_stage.source=import:ivykopal/slovak_prompt_100k -m": [
        Dry(("Import it first: `python -m softprompt_xl.store import ivykopal/slovak_prompt_100k",), rc=2)],
    "python -m softprompt_xl.train +combo=lp_ta,la_ta lang=sk,cs backbone=mt0_base lang_stage.source=import:authors -m": [
        Dry(("Import it first: `python -m softprompt_xl.store import ivykopal/",), rc=2)],
    "python -m softprompt_xl.report": [Run("python -m softprompt_xl.report paths.root={store}",
                                           expect=("Report written to {store}/reports/all ",))],
    "python -m softprompt_xl.report paths.root=DIR task=ner": [
        Run("python -m softprompt_xl.report paths.root={store} task=ner",
            expect=("Report written to {store}/reports/all-ner ",))],
    "python -m softprompt_xl.report experiment=paper_v1_toy": [
        Run("python -m softprompt_xl.report experiment=paper_v1_toy --cfg job",
            expect=("project: softprompt_xl-paper_v1_toy\n",)),  # composed; the report of an experiment:
        Elsewhere("tests/test_report.py::test_report_of_an_experiment_lists_its_missing_runs")],
    "python -m softprompt_xl.report report.transfer_from=en": [
        Run("python -m softprompt_xl.report paths.root={store} report.transfer_from=en",
            expect=("Report written to {store}/reports/all-transfer_from_en ",))],
    "python -m softprompt_xl.report report.compare=[lp_tp,tp]": [
        Run("python -m softprompt_xl.report paths.root={store} report.compare=[lp_tp,tp]",
            expect=("Report written to {store}/reports/all-compare_lp_tp_vs_tp ",))],
    "python -m softprompt_xl.report report.dashboard=true": [  # on a real offline sweep with W&B runs
        Elsewhere("tests/test_dashboard.py::test_the_dashboard_of_a_toy_sweep_draws_what_its_runs_logged")],
    "python -m softprompt_xl.report.dashboard push runs/reports/all/dashboard.json": [
        Elsewhere("tests/test_dashboard.py::test_the_push_says_what_to_do_offline_and_without_a_login"),
        NotRun("its save: W&B's server, needs an account and the network")],
    "python -m softprompt_xl.store paths.root=DIR": [
        Run("python -m softprompt_xl.store paths.root={store}", expect=("key", "kind", "role", "result"))],
    "python -m softprompt_xl.store": [Run("python -m softprompt_xl.store", expect=("{root}/store is empty",))],
    "python -m softprompt_xl.train experiment=paper_v1 dry_run=true -m": [  # the English runs need all 12 components
        Dry(("Sweep plan: 6 run(s).", "12 needed, 0 already in the store, 12 to train"), also="task=checkworthy lang=en"),
        Elsewhere("tests/test_plan.py::test_every_shipped_experiment_plans")],
    "python -m softprompt_xl.train +combo=lp_ta,la_ta lang=sk,cs -m hydra/launcher=slurm": [
        Dry(("Sweep plan: 4 run(s).", "4 needed")),  # planned on a machine without SLURM; submitted by the test:
        Elsewhere("tests/test_slurm.py::test_a_sweep_runs_on_slurm_language_components_first")],
    "torchrun --nproc-per-node=2 -m softprompt_xl.train +combo=lp_ta lang=sk trainer=ddp": [
        Run("python -m softprompt_xl.train +combo=lp_ta lang=sk trainer=ddp paths.root={root} dry_run=true -m",
            expect=("Sweep plan: 1 run(s).",)),
        Elsewhere("tests/test_distributed.py::test_a_run_trains_on_two_cpu_processes_under_torchrun")],
    "squeue --me -o \"%.12i %.20j %.8T %.10M %R\"": [NotRun("SLURM's command")],
    "sacct -X -o JobID,JobName,State,Elapsed,MaxRSS -j <array id>": [NotRun("SLURM's command")],
    "tail -f runs/outputs/multirun/<time>/<n>_<combo>-<lang>-<task>/train.log": [
        Elsewhere("tests/test_cli.py::test_a_failing_job_does_not_stop_the_others")],  # the job directories' names
    "export SOFTPROMPT_XL_SLURM_PARTITION=gpu": [NotRun(ENV)],
    "export SOFTPROMPT_XL_SLURM_GPUS_PER_TASK=0 SOFTPROMPT_XL_SLURM_CPUS_PER_TASK=1 SOFTPROMPT_XL_SLURM_MEM_GB=3": [
        NotRun(ENV)],
    "wandb sync": [NotRun("W&B's command: needs an account and the network")],
    "wandb login": [NotRun("W&B's command: needs an account and the network")],
    "wandb sync --dry-run": [NotRun("W&B's command")],
    "wandb sync runs/wandb/wandb/offline-run-*": [NotRun("W&B's command: needs an account and the network")],
    "cd runs/wandb": [NotRun("the shell's")],
    "wandb sync --yes": [NotRun("W&B's command: needs an account and the network")],
    # --- experiments/README.md --------------------------------------------------------------------------------
    "python -m softprompt_xl.train experiment=paper_v1 -m": [
        Dry(("Sweep plan: 6 run(s).",), also="task=checkworthy lang=en"),
        Elsewhere("tests/test_plan.py::test_every_shipped_experiment_plans")],
    "python -m softprompt_xl.report experiment=paper_v1": [
        Run("python -m softprompt_xl.report experiment=paper_v1 --cfg job",
            expect=("project: softprompt_xl-paper_v1\n",)),  # composed; the report of an experiment:
        Elsewhere("tests/test_report.py::test_report_of_an_experiment_lists_its_missing_runs")],
    "python -m softprompt_xl.train experiment=paper_v1_toy -m": [
        Dry(("Sweep plan: 6 run(s).",), also="task=checkworthy lang=en"),
        Elsewhere("tests/test_plan.py::test_every_shipped_experiment_plans")],
    "python -m softprompt_xl.train experiment=paper_v2 dry_run=true -m": [
        Dry(("Sweep plan: 7 run(s).", "bg has no qa test set: not evaluated"), also="task=qa lang=en"),
        Elsewhere("tests/test_plan.py::test_every_shipped_experiment_plans")],
    "python -m softprompt_xl.train experiment=paper_v2 -m": [
        Dry(("Sweep plan: 7 run(s).",), also="task=qa lang=en"),
        Elsewhere("tests/test_plan.py::test_every_shipped_experiment_plans")],
    "python -m softprompt_xl.report experiment=paper_v2": [
        Run("python -m softprompt_xl.report experiment=paper_v2 --cfg job",
            expect=("project: softprompt_xl-paper_v2\n",)),  # composed; the report of an experiment:
        Elsewhere("tests/test_report.py::test_report_of_an_experiment_lists_its_missing_runs")],
    "python -m softprompt_xl.train experiment=paper_v2_toy -m": [
        Dry(("Sweep plan: 7 run(s).",), also="task=qa lang=en"),  # planned without building its backbone
        Elsewhere("tests/test_plan.py::test_every_shipped_experiment_plans")],
    "python -m softprompt_xl.report experiment=paper_v2_toy": [
        Run("python -m softprompt_xl.report experiment=paper_v2_toy --cfg job",
            expect=("project: softprompt_xl-paper_v2_toy\n",)),  # composed; the report of an experiment:
        Elsewhere("tests/test_report.py::test_report_of_an_experiment_lists_its_missing_runs")],
    "python -m softprompt_xl.store import ivykopal/slovak_prompt_100k": [
        Run("python -m softprompt_xl.store import ivykopal/slovak_prompt_100k paths.root={root}", rc=1,
            expect=("huggingface-cli download ivykopal/slovak_prompt_100k --local-dir DIR",))],
    "python -m softprompt_xl.train +combo=zero_shot,tp,ta,la_ta,la_tp,lp_ta,lp_tp task=qa,ner,nli,checkworthy "
    "lang=sk,en logger=none -m": [Dry(("Sweep plan: 56 run(s).", "4 needed"))],
    # --- experiments/slurm.md ---------------------------------------------------------------------------------
    "huggingface-cli download bigscience/mt0-base --local-dir /shared/models/mt0-base": [NotRun(HUB)],
    "export SOFTPROMPT_XL_ROOT=/shared/softprompt_xl": [NotRun(ENV)],
    "export SOFTPROMPT_XL_SLURM_PARTITION=gpu SOFTPROMPT_XL_SLURM_ACCOUNT=myproject": [NotRun(ENV)],
    "export SOFTPROMPT_XL_SLURM_TIME_MIN=1440 SOFTPROMPT_XL_SLURM_MEM_GB=32 SOFTPROMPT_XL_SLURM_CPUS_PER_TASK=8": [
        NotRun(ENV)],
    # a backbone directory is named, not read, by a plan: the grid plans without mt0-base on disk
    "python -m softprompt_xl.train experiment=paper_v1 backbone.name=/shared/models/mt0-base dry_run=true -m": [
        Dry(("Sweep plan: 6 run(s).", "12 needed, 0 already in the store, 12 to train"), also="task=checkworthy lang=en")],
    "tmux new -s grid": [NotRun("tmux's")],
    "python -m softprompt_xl.train experiment=paper_v1 backbone.name=/shared/models/mt0-base "
    "logger.wandb.mode=online -m hydra/launcher=slurm": [
        Dry(("Sweep plan: 6 run(s).",), also="task=checkworthy lang=en"),  # planned here; submitted by the test:
        Elsewhere("tests/test_slurm.py::test_a_sweep_runs_on_slurm_language_components_first")],
    "squeue --me -o \"%.14i %.20j %.8T %.10M %.6D %R\"": [NotRun("SLURM's command")],
    "tail -f $SOFTPROMPT_XL_ROOT/outputs/multirun/<time>/<n>_lp_ta-sk-qa/train.log": [
        Elsewhere("tests/test_cli.py::test_a_failing_job_does_not_stop_the_others")],  # the job directories' names
    ".ci/slurm-cluster": [Shell(".ci/slurm-cluster")],
    # --- experiments/benchmarks/README.md -----------------------------------------------------------------------
    "python experiments/benchmarks/param_counts.py": [
        Elsewhere("tests/test_real_shape.py::test_mt0_base_shaped_backbone_runs_every_component_kind_end_to_end")],
    "python experiments/benchmarks/tokenize_cache.py --task qa --lang sk [--repeat 200]": [
        Run("python experiments/benchmarks/tokenize_cache.py --task qa --lang sk --repeat 2",
            expect=("cold: ", "warm: ", "for 800 records"))],
    "python experiments/benchmarks/stage1_corpus.py make DIR --gb 2": [
        Run("python experiments/benchmarks/stage1_corpus.py make {dir}/corpus --gb 0.0005 --shards 1",
            expect=("{dir}/corpus: ",))],
    "make DIR --gb N": [  # stage1_corpus.py's subcommand, as above
        Run("python experiments/benchmarks/stage1_corpus.py make {dir}/corpus-n --gb 0.0005 --shards 1",
            expect=("{dir}/corpus-n: ",))],
    "python experiments/benchmarks/throughput.py [--backbones tiny,mt5-small]": [
        Throughput("--backbones tiny,mt5-small"), Elsewhere("tests/test_benchmarks.py::test_throughput_smoke")],
    "python experiments/benchmarks/throughput.py": [
        Throughput(""), Elsewhere("tests/test_benchmarks.py::test_throughput_smoke")],
    "python experiments/benchmarks/throughput.py --backbones tiny,tiny_decoder": [
        Throughput("--backbones tiny,tiny_decoder"), Elsewhere("tests/test_benchmarks.py::test_throughput_smoke")],
    "python experiments/benchmarks/throughput.py --backbones mt0-base --kinds prompt,adapter,lora --stages span,task "
    "--steps 6": [Throughput("--backbones mt0-base --kinds prompt,adapter,lora --stages span,task --steps 6")],
    "python experiments/benchmarks/throughput.py --lengths qa=squad_lengths.csv --json figures.json": [
        Throughput("--lengths qa=squad_lengths.csv --json figures.json"),
        Elsewhere("tests/test_benchmarks.py::test_lengths_file")],
    "pip install -e '.[bench]'": [Extra("bench")],
    "pip install --no-compile -e .": [NotRun("pip's own option (first_run.sh times it)")],
    "pip install --dry-run -e .": [NotRun("pip's own option")],
    "bash experiments/benchmarks/first_run.sh": [Shell("experiments/benchmarks/first_run.sh")],
    "bash experiments/benchmarks/time_main_command.sh": [Shell("experiments/benchmarks/time_main_command.sh")],
    "bash experiments/benchmarks/parallel_jobs.sh [overrides]": [Shell("experiments/benchmarks/parallel_jobs.sh")],
    "bash experiments/benchmarks/parallel_jobs.sh": [Shell("experiments/benchmarks/parallel_jobs.sh")],
}

# Parts of command lines the docs show in their prose (overrides, or a command's tail), each run with what it needs
# around it; `test_the_fragments_are_in_the_docs` checks the docs still show them.
FRAGMENTS: dict[str, list] = {
    # Stage 1's corpus from local Parquet files (README "Stage 1's corpus"): the source gets the files.
    "lang.sources.wiki.path=parquet ++lang.sources.wiki.data_files.train='/data/wiki-sk/*.parquet'": [
        Run("python -m softprompt_xl.train +combo=lp_ta lang=sk data=hub lang.sources.wiki.path=parquet "
            "++lang.sources.wiki.data_files.train='/data/wiki-sk/*.parquet' --cfg job -p data.wiki",
            expect=("path: parquet", "train: /data/wiki-sk/*.parquet", "heldout: train[5%:]")),
        Run("python -m softprompt_xl.train +combo=lp_ta lang=sk data=hub stage=lang lang.sources.wiki.path=parquet "
            "++lang.sources.wiki.data_files.train='/data/wiki-sk/*.parquet' paths.root={root} dry_run=true -m",
            expect=("Sweep plan: 1 run(s).",))],
    # README "Configuration": the common overrides, together
    "`seed=1`, `task_stage.max_steps=1000`, `lang_stage.max_steps=500`, `trainer.precision=bf16-mixed`, "
    "`trainer.accelerator=gpu`, `combo.components.task.r=16` (LoRA rank), `combo.components.task.optimizer.lr=1e-3`": [
        Run("python -m softprompt_xl.train +combo=ll_tl seed=1 task_stage.max_steps=1000 lang_stage.max_steps=500 "
            "trainer.precision=bf16-mixed trainer.accelerator=gpu combo.components.task.r=16 "
            "combo.components.task.optimizer.lr=1e-3 --cfg job",
            expect=("seed: 1", "precision: bf16-mixed", "accelerator: gpu", "r: 16", "lr: 0.001"))],
    # README "Sweeps on SLURM": several GPUs for one run
    "`... trainer=ddp trainer.devices=4 -m hydra/launcher=slurm`": [
        Run("python -m softprompt_xl.train +combo=lp_ta lang=sk trainer=ddp trainer.devices=4 -m hydra/launcher=slurm "
            "paths.root={root} dry_run=true", expect=("Sweep plan: 1 run(s).",)),
        Elsewhere("tests/test_slurm.py::test_trainer_ddp_trains_one_run_on_two_slurm_tasks")],
    # experiments/README: paper_v1_toy with the LoRA combos: 6 more language components (18 in all), 48 more runs
    "`'+combo=ta,tp,la_ta,la_tp,lp_ta,lp_tp,ll_ta,ll_tp'`": [
        Run("python -m softprompt_xl.train experiment=paper_v1_toy '+combo=ta,tp,la_ta,la_tp,lp_ta,lp_tp,ll_ta,ll_tp' "
            "task=nli lang=en paths.root={root} dry_run=true -m",  # the English runs' transfer needs all 18
            expect=("Sweep plan: 8 run(s).", "18 needed, 0 already in the store, 18 to train"))],
    # README "A seventeenth language": its example file, as a language of one's own (--config-dir), whose QA is null
    "`softprompt_xl/conf/lang/hr.yaml`": [
        Run("python -m softprompt_xl.train --config-dir {dir}/hr +combo=lp_ta lang=hr task=ner,nli,checkworthy data=hub "
            "paths.root={root} dry_run=true -m", expect=("Sweep plan: 3 run(s).",)),
        Run("python -m softprompt_xl.train --config-dir {dir}/hr +combo=lp_ta lang=hr task=qa data=hub paths.root={root} "
            "-m", rc=2, expect=("Nothing to run: no run of this command has a data set for its task (lp_ta hr qa)",
                                "hr.yaml has `qa: null`")),
        Run("python -m softprompt_xl.train --config-dir {dir}/hr +combo=lp_ta lang=hr task=qa,ner data=hub "
            "paths.root={root} dry_run=true -m", expect=("1 to run, 1 not run (no data set for the task)",))],
}


def normalized(text: str) -> str:
    return " ".join(text.split())


def shown_commands() -> dict[str, list[str]]:
    """Each shell command the docs show -> the docs that show it: every line of a ```bash block (its comment cut
    off), every inline code span that starts with a program (PROGRAMS), each part of a `&&` chain apart."""
    found: dict[str, list[str]] = {}
    for doc in DOCS:
        text = (PROJECT_DIR / doc).read_text(encoding="utf-8")
        blocks = [re.sub(r"\\\n\s*", " ", block) for block in re.findall(r"```bash\n(.*?)```", text, re.S)]  # a \ goes on
        lines = [line for block in blocks for line in block.splitlines()]
        lines = [re.sub(r"\s+#.*$", "", line) for line in lines if line.strip() and not line.lstrip().startswith("#")]
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        spans = [normalized(s) for s in re.findall(r"`([^`]+)`", prose)]
        # `wandb` alone is a logger's name, `.ci/run` a script
        lines += [s for s in spans if s.split()[0] in PROGRAMS and (len(s.split()) > 1 or "/" in s)]
        for line in lines:
            for command in (normalized(part) for part in line.split(" && ")):
                found.setdefault(command, [])
                if doc not in found[command]:
                    found[command].append(doc)
    return found


def test_the_list_is_the_commands_the_docs_show():
    shown = shown_commands()
    missing = {c: docs for c, docs in shown.items() if c not in COMMANDS}
    assert not missing, ("commands the docs show that tests/test_docs.py's COMMANDS does not list (add each, with the "
                         f"test that covers it): {json.dumps(missing, indent=1, ensure_ascii=False)}")
    stale = [c for c in COMMANDS if c not in shown]
    assert not stale, f"COMMANDS lists commands the docs no longer show (remove them): {stale}"


def test_the_fragments_are_in_the_docs():
    text = normalized(" ".join((PROJECT_DIR / doc).read_text(encoding="utf-8") for doc in DOCS))
    assert [f for f in FRAGMENTS if normalized(f) not in text] == []


def test_every_test_named_as_covering_a_command_exists():
    for command, ways in [*COMMANDS.items(), *FRAGMENTS.items()]:
        for way in ways:
            if isinstance(way, Elsewhere):
                path, name = way.test.split("::")
                assert re.search(rf"^def {name}\(", (PROJECT_DIR / path).read_text(), re.M), (command, way.test)


# --- the batch: every Run and Dry, in one process -------------------------------------------------------------


def dry_args(command: str, way: Dry) -> str:
    args = f"{command} paths.root={{root}} {way.also}".strip()
    args += "" if "dry_run=true" in args else " dry_run=true"
    return args if "-m" in shlex.split(args)[3:] else f"{args} -m"  # after `python -m softprompt_xl.train`


def batch_items() -> list[tuple[str, int, Run]]:
    items = []
    for command, ways in [*COMMANDS.items(), *FRAGMENTS.items()]:
        for i, way in enumerate(ways):
            if isinstance(way, Dry):
                items.append((command, i, Run(dry_args(command, way), way.rc, way.expect)))
            elif isinstance(way, Run):
                items.append((command, i, Run(way.args or command, way.rc, way.expect, way.cwd)))
    return items


def readme_yaml_example(name: str) -> str:
    """The ```yaml block the README shows right after naming `name`."""
    text = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    return re.search(re.escape(name) + r"[^`]*?```yaml\n(.*?)```", text, re.S).group(1)


@pytest.fixture(scope="module")
def places(tmp_path_factory, make_cfg, tiny_loaded) -> dict[str, str]:
    """The directories the commands' placeholders stand for, made."""
    import torch

    from softprompt_xl.pipeline.storage import Store
    from test_import import save_authors_prompt
    from test_report import save

    base = tmp_path_factory.mktemp("docs")
    places = {name: base / name for name in ("root", "store", "dir", "user")}
    for path in places.values():
        path.mkdir()
    # a store of a few results (the report's fixture has more): English runs evaluated on sk too, for transfer
    store = Store(places["store"] / "store")
    for combo, lang, targets in [("lp_ta", "en", ["en", "sk"]), ("lp_ta", "sk", ["sk"]), ("la_ta", "en", ["en", "sk"]),
                                 ("la_ta", "sk", ["sk"]), ("ta", "en", ["en", "sk"])]:
        cfg = make_cfg(f"+combo={combo}", f"lang={lang}", "task=ner", f"eval_langs=[{','.join(targets)}]")
        save(store, cfg, {t: {"span_f1": 50.0 + len(combo) + len(t), "unparsed": 1.0} for t in targets})
    # README "Starting from the authors' components": a language prompt as their code saves it, 10 virtual tokens
    save_authors_prompt(places["dir"] / "slovak_prompt_100k", torch.randn(20, tiny_loaded[0].config.d_model), 10)
    # README "Configuration": my_conf/combo/mine.yaml, a combo of one's own
    (places["user"] / "my_conf" / "combo").mkdir(parents=True)
    mine = (CONF_DIR / "combo" / "lp_ta.yaml").read_text().replace("name: lp_ta", "name: mine")
    (places["user"] / "my_conf" / "combo" / "mine.yaml").write_text(mine)
    # README "A seventeenth language": hr.yaml as shown
    (places["dir"] / "hr" / "lang").mkdir(parents=True)
    (places["dir"] / "hr" / "lang" / "hr.yaml").write_text(readme_yaml_example("`softprompt_xl/conf/lang/hr.yaml`"))
    return {name: str(path) for name, path in places.items()}


@pytest.fixture(scope="module")
def batch(places, tmp_path_factory) -> dict[tuple[str, int], dict]:
    """Each Run and Dry of the lists, run in one process: (command, index of the way) -> returncode, output."""
    items = batch_items()
    commands = [{"argv": shlex.split(run.args.format(**places)), "cwd": run.cwd and run.cwd.format(**places)}
                for _, _, run in items]
    base = tmp_path_factory.mktemp("batch")
    (base / "commands.json").write_text(json.dumps(commands))
    subprocess.run([sys.executable, str(PROJECT_DIR / "tests" / "run_commands.py"), str(base / "commands.json"),
                    str(base / "out.json")], cwd=PROJECT_DIR, check=True, timeout=900,
                   env=cli_env({"SOFTPROMPT_XL_ROOT": places["root"]}))
    results = json.loads((base / "out.json").read_text())
    return {(command, i): result for (command, i, _), result in zip(items, results)}


def way_ids(table: dict[str, list]) -> list:
    return [pytest.param(command, i, id=f"{normalized(command)[:90]} [{i}]")
            for command, ways in table.items() for i, way in enumerate(ways) if isinstance(way, (Run, Dry))]


@pytest.mark.parametrize("command,index", way_ids(COMMANDS) + way_ids(FRAGMENTS))
def test_a_documented_command_does_what_the_docs_say(batch, places, command, index):
    way = (COMMANDS.get(command) or FRAGMENTS[command])[index]
    result = batch[(command, index)]
    output = result["output"]
    assert result["returncode"] == way.rc, output[-3000:]
    for expected in way.expect:
        assert expected.format(**places) in output, output[-3000:]
    assert "Traceback" not in output, output[-3000:]


# --- what is checked without running ----------------------------------------------------------------------------


def ways_of(kind: type) -> list:
    return [pytest.param(way, id=normalized(command)[:90]) for command, ways in [*COMMANDS.items(), *FRAGMENTS.items()]
            for way in ways if isinstance(way, kind)]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize("way", ways_of(Make))
def test_a_make_target_runs_what_the_docs_say(way):
    shown = subprocess.run(["make", "-n", way.target], cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and way.shows in shown.stdout.splitlines(), shown.stdout + shown.stderr


@pytest.mark.parametrize("way", ways_of(Shell))
def test_a_documented_script_is_there_and_parses(way):
    path = PROJECT_DIR / way.path
    assert path.is_file()
    checked = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_the_documented_extras_exist():
    extras = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert [way.name for way in ways_of_plain(Extra) if way.name not in extras] == []


def ways_of_plain(kind: type) -> list:
    return [way for ways in [*COMMANDS.values(), *FRAGMENTS.values()] for way in ways if isinstance(way, kind)]


def test_the_documented_throughput_command_lines_parse(tmp_path, monkeypatch):
    from test_benchmarks import load_script

    throughput = load_script()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "squad_lengths.csv").write_text("input,target\n40,3\n")  # --lengths qa=squad_lengths.csv reads it
    for way in ways_of_plain(Throughput):
        throughput.parse(shlex.split(way.args))


def test_the_test_commands_select_what_the_docs_say():
    """README "Tests": the default suite leaves the e2e, slow and SLURM tests out (pyproject.toml's addopts); `-m e2e`,
    `-m slow` and `-m slurm` replace that selection; `make test-all` selects everything (`-m ''`); CI runs the e2e
    tests after the default suite."""
    pytest_ini = tomllib.loads((PROJECT_DIR / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "-m 'not slow and not slurm and not e2e'" in pytest_ini["addopts"]
    makefile = (PROJECT_DIR / "Makefile").read_text()
    assert re.search(r"^test-e2e:.*\n\tpython -m pytest -m e2e$", makefile, re.M)
    assert "python -m pytest -m e2e" in (PROJECT_DIR / ".ci" / "run").read_text()
    e2e = sorted(p.name for p in (PROJECT_DIR / "tests").glob("test_*.py") if "pytest.mark.e2e" in p.read_text()
                 and p.name != "test_docs.py")
    # README: 4 tests, and the dashboard's file
    assert e2e == ["test_cli.py", "test_dashboard.py", "test_decoder_pipeline.py", "test_disk_full.py",
                   "test_pipeline.py"]
    assert re.search(r"^test-all:.*\n\tpython -m pytest -m ''$", makefile, re.M)
    assert re.search(r"^test-slurm:.*\n\tpython -m pytest -m slurm$", makefile, re.M)
    assert re.search(r"^test:.*\n\tpython -m pytest$", makefile, re.M)
    assert "pytestmark = pytest.mark.slow" in (PROJECT_DIR / "tests" / "test_real_shape.py").read_text()
    slow = [p.name for p in (PROJECT_DIR / "tests").glob("test_*.py") if "pytest.mark.slow" in p.read_text()
            and p.name != "test_docs.py"]
    # README: 3 end-to-end tests, every run of the shipped experiments planned, the store keys of every paper run
    assert sorted(slow) == ["test_plan.py", "test_real_shape.py", "test_shipped_backbone.py", "test_store_keys.py",
                            "test_toy_scores.py"]


def test_every_environment_variable_the_docs_name_is_read():
    text = " ".join((PROJECT_DIR / doc).read_text(encoding="utf-8") for doc in DOCS)
    named = sorted(set(re.findall(r"\bSOFTPROMPT_XL_[A-Z_]*[A-Z]\b", text)))
    code = " ".join(p.read_text(encoding="utf-8") for folder in ("softprompt_xl", "hydra_plugins", ".ci")
                    for p in (PROJECT_DIR / folder).rglob("*") if p.is_file() and p.suffix in (".py", ".yaml", "")
                    and "built" not in p.parts and "data" not in p.parts)
    assert named and [name for name in named if name not in code] == []
