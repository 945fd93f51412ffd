"""`python -m softprompt_xl.train +combo=lp_ta lang=sk -m`: compose the config, run the job, write result.json.

A failing job writes a failed result.json and does not stop the other jobs of a multirun; the multirun
then ends with a list of what failed and a non-zero exit code.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from softprompt_xl.runtime import cluster, distributed
from softprompt_xl.config import CONF_PATH, check_writable, keep_library_caches_under, register_resolvers
from softprompt_xl.errors import UserError
from softprompt_xl.pipeline import records
from softprompt_xl.pipeline.records import RESULT_FILE, JobFailure, LangStageResult, Record, Result, job_identity

log = logging.getLogger("softprompt_xl")
register_resolvers()


def quiet_libraries() -> None:
    """Keep the console to what a researcher needs: progress (bars on a terminal, lines in a file), stage lines, the
    summary, real warnings."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # "adapters available but none are activated": said while a stack is being built, before it is activated.
    logging.getLogger("adapters").setLevel(logging.ERROR)
    logging.getLogger("matplotlib").setLevel(logging.WARNING)  # imported by torchmetrics; its font cache is no news
    import transformers

    transformers.logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
    warnings.filterwarnings("ignore", message=".*defined a `validation_step` but have no `val_dataloader`.*")  # stage 1
    warnings.filterwarnings("ignore", message=".*isinstance\\(treespec, LeafSpec\\).*")  # inside Lightning
    # trainer=ddp: every process validates on the whole split, so the epoch-level values are the same everywhere
    warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
    # said by Lightning on any machine with SLURM installed, also of a job meant to run right here
    warnings.filterwarnings("ignore", message=".*The `srun` command is available on your system but is not used.*")


def summary_line(result: Record) -> str:
    if isinstance(result, LangStageResult):
        return (f"[language components for {result.lang}] {', '.join(result.lang_components) or 'none needed'}"
                f" | {result.wall_time_s:.1f} s")
    if result.skipped:
        return f"[{result.name(' ')}] skipped: finished before ({result.key})"
    metrics = "; ".join(
        f"{lang}: " + " ".join(f"{k}={v:.1f}" for k, v in scores.items()) for lang, scores in result.metrics.items()
    )
    params = ", ".join(f"{part}={n:,}" for part, n in result.trainable_params.items()) or "none"
    return (f"[{result.name(' ')}] {metrics} | trainable: {params} | {result.steps} steps | "
            f"{result.wall_time_s:.1f} s")


def run_job(cfg: DictConfig) -> dict:
    """Run one job and write its result.json (a result, or why there is none); return the record as JSON."""
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    started = time.time()
    from softprompt_xl.pipeline import stages
    from softprompt_xl.pipeline.run_spec import RunSpec
    from softprompt_xl.runtime.divergence import Diverged
    from softprompt_xl.runtime.resume import Interrupted
    from softprompt_xl.runtime.atomic import DiskFull, disk_full

    # What is alive now (the libraries: half a million objects; earlier jobs of the sweep, collected first) is left
    # out of every later collection, so load_backbone's at each stage scans this job's objects only (0.8 s -> ms).
    gc.collect()
    gc.freeze()
    interrupted_by, full = None, None
    try:
        result = stages.run(RunSpec.of(cfg), output_dir)
        if not distributed.is_zero():  # one of several processes of the run: rank 0 records and reports
            return {"rank": distributed.rank(), "status": "complete"}
        log.info("%s", summary_line(result))
    except Interrupted as err:
        log.warning("Job interrupted: %s", err)
        interrupted_by = err.signum
        result = JobFailure.interrupted(job_identity(cfg), str(err), wall_time_s=round(time.time() - started, 1))
    except Exception as err:  # noqa: BLE001 - any failure must be recorded and must not stop the sweep
        overrides = " ".join(HydraConfig.get().overrides.task)
        if (full := disk_full(err)) is not None:  # one paragraph; the job's log file is on that disk too, and
            logging.raiseExceptions = False      # must not add a traceback for each line it cannot take
            err = UserError(full.explain(cfg.paths))
        if isinstance(err, (UserError, Diverged)):  # said in full by its message: no traceback
            message = str(err)
        else:
            message = f"{type(err).__name__}: {err}"
            log.error("%s", traceback.format_exc())
        log.error("Job failed (%s): %s", overrides, message)
        result = JobFailure.failed(job_identity(cfg), message, overrides=overrides,
                                   wall_time_s=round(time.time() - started, 1),
                                   diverged=err.record if isinstance(err, Diverged) else None)
    if distributed.is_zero():
        try:
            records.write(output_dir / RESULT_FILE, result)
        except DiskFull as err:  # no second traceback: said in a line if the job failed for it, else in full
            logging.raiseExceptions = False
            log.error("%s", f"Its record {output_dir / RESULT_FILE} could not be written either (the disk is full)"
                      if full is not None else err.explain(cfg.paths))
    if interrupted_by is not None:
        try:
            cluster.after_interrupt(interrupted_by)  # under SLURM: requeued (or left to SLURM), and exits
        except Exception as err:  # noqa: BLE001 - e.g. submitit's "Job not requeued because: timed-out too many times"
            log.error("Not requeued: %s", err)
            result.error += f" Not requeued: {err}"
            records.write(output_dir / RESULT_FILE, result)
    return result.to_json()


@hydra.main(config_path=CONF_PATH, config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> dict:
    quiet_libraries()
    cluster.limit_threads()
    if HydraConfig.get().mode == RunMode.RUN:  # a sweep of one: checked and planned here, as the sweeper does a multirun's
        try:
            skipped = check_and_plan_single_run(cfg)
        except UserError as err:  # a mistake in the configuration or its data: its paragraph, no traceback
            log.error("%s", err)
            sys.exit(2)
        if skipped:
            records.write(Path(HydraConfig.get().runtime.output_dir) / RESULT_FILE, skipped)
            log.info("%s", summary_line(skipped))
            return skipped.to_json()
    result = run_job(cfg)
    if result["status"] != "complete" and HydraConfig.get().mode != RunMode.MULTIRUN:
        sys.exit(1)
    return result


def check_and_plan_single_run(cfg: DictConfig) -> Result | None:
    """Return the stored result if the run finished before (it is skipped), else None; raise the UserError of a
    configuration no job could run with (planning reads its data sources too: a file in no known format)."""
    from softprompt_xl.pipeline import schema
    from softprompt_xl.pipeline.plan import RunJob, finished_result
    from softprompt_xl.pipeline.run_spec import RunSpec
    from softprompt_xl.pipeline.storage import Store

    schema.check(cfg)
    if cfg.dry_run:  # in a multirun the sweeper has printed the plan and launched nothing
        raise UserError("dry_run=true prints the plan of a sweep: add -m (e.g. `python -m softprompt_xl.train "
                        "+combo=lp_ta lang=sk,cs dry_run=true -m`).")
    done = finished_result(RunSpec.of(cfg), Store(cfg.paths.store)) if cfg.job == RunJob.TYPE and cfg.stage != "lang" \
        else None
    return dataclasses.replace(done, skipped=True) if done else None


class PrepareOutputRoot(Callback):
    """Before Hydra creates the first output directory (it would fail with a traceback per nested call): an
    output root that cannot be written is refused in one paragraph. Then caches that libraries would write into
    the home directory go under paths.cache instead: matplotlib's, which torchmetrics (through Lightning) imports
    whenever it is installed. The jobs, in this process or under submitit, inherit the environment."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        from softprompt_xl.runtime.atomic import disk_full

        try:
            check_writable(config.paths.root)
        except UserError as err:
            log.error("%s", err)
            sys.exit(2)
        except OSError as err:  # the disk is full before the first file
            log.error("%s", disk_full(err, config.paths.root).explain(config.paths))
            sys.exit(2)
        keep_library_caches_under(config.paths)

    on_multirun_start = on_run_start


class ReportFailedJobs(Callback):
    """At the end of a multirun: list the jobs that failed (or left no result) and exit non-zero if any did."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        if config.get("dry_run"):
            return
        sweep_dir = Path(config.hydra.sweep.dir)
        # a job that ran has its .hydra/; one that never started (e.g. cancelled in the queue) only the
        # result.json its launcher wrote for it
        jobs = sorted({p.parent for pattern in ("*/.hydra", f"*/{RESULT_FILE}") for p in sweep_dir.glob(pattern)})
        if not jobs:  # the plan's last line said why ("Nothing to launch: ..."); a sweep none of whose runs can run
            return    # at all (no data set for any) was refused there, with exit code 2
        problems, diverged = [], 0
        for job in jobs:
            result = records.read(job / RESULT_FILE)
            if result is None:  # (a damaged one is named in a warning)
                problems.append(f"  {job.name}: no {RESULT_FILE} (the job died; see {job}/)")
            elif isinstance(result, JobFailure):
                problems.append(f"  {job.name}: {result.error}")
                diverged += result.diverged is not None
        if problems:
            log.error("%d of %d jobs failed%s:\n%s", len(problems), len(jobs),
                      f" ({diverged} of them diverged)" if diverged else "", "\n".join(problems))
            sys.exit(1)
        log.info("All %d jobs complete. Results: %s/*/%s", len(jobs), sweep_dir, RESULT_FILE)


def hydra_flags_last(argv: list[str]) -> list[str]:
    """`... lang=sk,cs -m hydra/launcher=slurm` as well as `... -m`, and `+combo=lp_ta --cfg job paths.root=X` as well
    as `... paths.root=X --cfg job`: Hydra's parser takes the overrides only as one unbroken run of words, so its
    flags, each with its value (`--cfg job`, `-p data`, `--config-dir DIR`), are moved behind them, in their order."""
    from hydra._internal.utils import get_args_parser

    actions = {s: a for a in get_args_parser()._actions for s in a.option_strings}
    words, flags, rest = [], [], list(argv[1:])
    while rest:
        word = rest.pop(0)
        action = actions.get(word.split("=", 1)[0]) if word.startswith("-") else None
        if action is None or word == "--":
            words.append(word)
            continue
        flags.append(word)
        if "=" in word or action.nargs == 0 or not rest:
            continue
        if action.nargs is None or rest[0] in (action.choices or ()):  # --info's value is optional: one of its choices
            flags.append(rest.pop(0))
    return [argv[0], *words, *flags]


def unknown_language_named(argv: list[str]) -> str | None:
    """The message for a `lang=CODE` (or `lang=a,b`) override naming a language with no config file, else None.
    Hydra's own error for it lists the options but not how to add one (config.unknown_language says both). Light:
    before Hydra, nothing that imports torch (matplotlib, under it, would write into HOME before paths are set)."""
    from softprompt_xl.config import CONF_DIR, unknown_language

    if any(a.lstrip("+~").startswith("hydra.searchpath") for a in argv):
        return None  # languages may come from any config source: Hydra's own error names what it searched
    dirs = [CONF_DIR] + [Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a in ("--config-dir", "-cd")]
    dirs += [Path(a.split("=", 1)[1]) for a in argv if a.startswith("--config-dir=")]
    for arg in argv[1:]:
        name, _, value = arg.lstrip("+~").partition("=")
        if name != "lang" or not value or any(c in value for c in "()[]{}$*"):  # sweeps by function: Hydra's to check
            continue
        for code in value.split(","):
            if code and not any((d / "lang" / f"{code}.yaml").is_file() for d in dirs):
                return unknown_language(code)
    return None


def unknown_kind_named(argv: list[str]) -> str | None:
    """The message for a pair's `combo.lang=KIND` or `combo.task=KIND` (or a sweep `combo.task=a,b`) naming a kind
    with no config file, else None: said before Hydra (whose --cfg job --resolve or --help would otherwise end in a
    traceback), as unknown_language_named. Whether each kind has a class is pipeline/schema.py's to check."""
    from softprompt_xl.config import CONF_DIR, is_no_component, unknown_kind

    if any(a.lstrip("+~").startswith("hydra.searchpath") for a in argv):
        return None
    dirs = [CONF_DIR] + [Path(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a in ("--config-dir", "-cd")]
    dirs += [Path(a.split("=", 1)[1]) for a in argv if a.startswith("--config-dir=")]
    for arg in argv[1:]:
        name, _, value = arg.lstrip("+~").partition("=")
        if name not in ("combo.lang", "combo.task") or not value or any(c in value for c in "()[]{}$*"):
            continue
        for kind in value.split(","):
            if kind in ("", "null") or is_no_component(kind):
                continue
            if not any((d / "component" / f"{kind}.yaml").is_file() for d in dirs):
                kinds = sorted({p.stem for d in dirs for p in (d / "component").glob("*.yaml")})
                return unknown_kind(kind, kinds, name)
    return None


if __name__ == "__main__":
    sys.argv = hydra_flags_last(sys.argv)
    if unknown := unknown_language_named(sys.argv) or unknown_kind_named(sys.argv):
        print(unknown, file=sys.stderr)
        sys.exit(2)
    main()
