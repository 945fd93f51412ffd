"""A multirun as the staged sweeper runs it, apart from Hydra's launcher: its command line expanded into jobs
(`sweep_jobs`, as Hydra's basic sweeper expands it), and a plan (pipeline/plan.py) launched in two stages
(`launch_in_stages`): the language components as one batch, then the runs as the next. A run whose language
component failed in stage 1 (diverged, say) is not launched, as it would only train that component again and fail
the same way: it is recorded as not run, so the sweep's summary lists it and the next run of the sweep tries the
component again. The staged sweeper (hydra_plugins/softprompt_xl_sweeper) launches the batches through Hydra's
launcher; the tests, in their own process, with stages.run (tests/conftest.py run_sweep); the report expands an
experiment's grid here to know which results belong to it."""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Sequence, Union

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser

from softprompt_xl.pipeline.plan import LangComponentJob, RunJob, SweepPlan

log = logging.getLogger("softprompt_xl")

Job = Union[LangComponentJob, RunJob]
# One batch of jobs of one type (LangComponentJob.TYPE or RunJob.TYPE), the first numbered `index`: one value per job.
Launch = Callable[[str, Sequence[Job], int], Sequence[Any]]


def sweep_jobs(overrides: Sequence[str], params: Mapping[str, Any] | None = None,
               config_loader: Any = None) -> list[list[str]]:
    """The jobs of `python -m softprompt_xl.train OVERRIDES -m`, each as its overrides: the sweeper's `params`
    (hydra.sweeper.params: an experiment's grid) then the command line's overrides, comma-separated values expanded
    into their product as Hydra's basic sweeper expands them (a key given twice takes the last value, in the first
    one's place). `config_loader`: Hydra's, inside a Hydra app (sweeps over a group's options, such as glob(*))."""
    arguments = [f"{k}={v}" for k, v in (params or {}).items()] + list(overrides)
    parsed = OverridesParser.create(config_loader=config_loader).parse_overrides(arguments)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def launch_in_stages(plan: SweepPlan, launch: Launch, failure: Callable[[Any], str | None],
                     record_not_run: Callable[[RunJob, int, str], None]) -> list[Sequence[Any]]:
    """Launch `plan`: its language-component jobs as one batch, then the runs whose language components did not fail
    as the next, numbered on from the first (`launch`); `failure` says why a stage-1 job failed from what `launch`
    returned for it, or None. A run left out is recorded by `record_not_run(job, number, error)`. Returns what each
    batch returned."""
    returns, index, failed = [], 0, {}
    if plan.lang_jobs:
        log.info("Launching %d job(s): language components", len(plan.lang_jobs))
        results = launch(LangComponentJob.TYPE, plan.lang_jobs, index)
        index += len(plan.lang_jobs)
        returns.append(results)
        failed = {job.key: error for job, r in zip(plan.lang_jobs, results) if (error := failure(r))}
    runs, left_out = plan.runs_after(set(failed))
    if runs:
        log.info("Launching %d job(s): runs", len(runs))
        returns.append(launch(RunJob.TYPE, runs, index))
        index += len(runs)
    for job, keys in left_out:  # recorded as failed, so the sweep's summary lists them and a rerun retries them
        reasons = "; ".join(f"the language {plan.lang_needed[k]} it needs failed in stage 1 of this sweep: "
                            f"{failed[k]}" for k in keys)
        record_not_run(job, index, f"Not run: {reasons}")
        index += 1
    if left_out:
        log.error("Not launched: %d run(s) whose language component failed in stage 1", len(left_out))
    return returns
