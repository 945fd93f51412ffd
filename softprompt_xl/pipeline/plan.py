"""The plan of a multirun before anything trains, as jobs of two types: the language components its runs need
(stage 1, each trained once by a `LangComponentJob`, whatever the number of runs sharing it) and the runs
(`RunJob`) the store has not finished. The staged sweeper (hydra_plugins/softprompt_xl_sweeper) launches the
plan; dry_run=true only prints it. A single run (no -m) is planned the same way, as a sweep of one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from softprompt_xl.errors import UserError
from softprompt_xl.pipeline import schema
from softprompt_xl.pipeline.keys import key, lang_spec, result_spec, task_spec
from softprompt_xl.pipeline.records import Result, cfg_run_name, lang_run_name
from softprompt_xl.pipeline.run_spec import RunSpec
from softprompt_xl.pipeline.storage import Store


@dataclass(frozen=True)
class LangComponentJob:
    """Stage 1: train one language component (`key`): the combo's language part (`kind`) for `lang`."""

    key: str
    kind: str
    lang: str
    overrides: tuple[str, ...]  # those of a run that needs it, with this job's type, language and directory
    backbone: str = ""  # its config id (backbone=...), told when a sweep trains on several

    TYPE = schema.LANG_COMPONENT_JOB  # the `job` setting of conf/train.yaml that makes a job one of these

    @classmethod
    def of(cls, run_overrides: list[str], spec: dict, backbone: str = "") -> "LangComponentJob":
        k, kind, lang = key(spec), spec["kind"], spec["lang"]
        kept = [o for o in run_overrides if not o.lstrip("+~").startswith(("lang=", "job=", "stage=", "eval_langs=",
                                                                                 "hydra.sweep.subdir="))]
        return cls(k, kind, lang, (*kept, f"lang={lang}", f"job={cls.TYPE}",
                                   f"hydra.sweep.subdir=${{hydra.job.num}}_{lang_run_name(kind, lang)}"), backbone)

    def describe(self) -> str:
        return f"{self.kind} {self.lang}"


@dataclass(frozen=True)
class RunJob:
    """Stage 2: one (combo, language, task): its task part trained if the store lacks it, then evaluated."""

    TYPE = schema.RUN_JOB

    overrides: tuple[str, ...]
    needs: tuple[str, ...]  # keys of the language components it uses (its own and its evaluation languages')


@dataclass
class SweepPlan:
    runs: int = 0
    lang_needed: dict[str, str] = field(default_factory=dict)  # key -> "kind lang", of every run still to do
    lang_jobs: list[LangComponentJob] = field(default_factory=list)  # those the store lacks
    todo: list[RunJob] = field(default_factory=list)
    finished: list[str] = field(default_factory=list)  # "combo lang task" of runs skipped as finished
    imported: dict[str, str] = field(default_factory=dict)  # key -> "kind lang from SOURCE", of imported components
    no_data: list[str] = field(default_factory=list)  # "combo lang task" of runs whose language lacks the task's data
    evaluations: int = 0  # test sets the runs to run score (own language and transfer targets)
    transfer: int = 0  # of them, in a language other than the run's own
    not_evaluated: dict[str, int] = field(default_factory=dict)  # why a language is not evaluated -> runs it affects

    def describe(self) -> str:
        lines = [
            f"Sweep plan: {self.runs} run(s).",
            f"  stage 1, language components: {len(self.lang_needed)} needed, "
            f"{len(self.lang_needed) - len(self.lang_jobs)} already in the store, {len(self.lang_jobs)} to train"
            + (": " + self._lang_jobs_by_kind() if self.lang_jobs else ""),
            f"  stage 2, runs: {len(self.finished)} finished (skipped), {len(self.todo)} to run"
            + (f", {len(self.no_data)} not run (no data set for the task)" if self.no_data else ""),
            f"  evaluations: {self.evaluations} test sets scored by the runs to run ({self.evaluations - self.transfer}"
            f" in the run's own language, {self.transfer} cross-lingual)",
        ]
        lines += [f"  {why}; in {count} run(s)" for why, count in self.not_evaluated.items()]
        lines += [f"  found {what}: imported ({k}), not trained" for k, what in self.imported.items()]
        lines += [f"  skip {run}: finished before (force=true recomputes it)" for run in self.finished]
        if not self.todo:
            lines.append(f"  Nothing to launch: {self._nothing_to_launch()}.")
        return "\n".join(lines)

    def _nothing_to_launch(self) -> str:
        if not self.no_data:
            return "every run of the sweep had finished before"
        return (f"{len(self.finished)} run(s) had finished before, and {len(self.no_data)} have no data set for their "
                f"task ({', '.join(self.no_data)})")

    def _lang_jobs_by_kind(self) -> str:
        """"prompt sk, prompt cs", or for many, "16 adapters (en, cs, ...); 16 prompts (en, cs, ...)"."""
        if len(self.lang_jobs) <= 4:
            names = [job.describe() for job in self.lang_jobs]
            if len(set(names)) < len(names):  # one kind and language on several backbones, or with other settings
                several = len({job.backbone for job in self.lang_jobs}) > 1
                names = [f"{name} on {job.backbone} ({job.key})" if several else f"{name} ({job.key})"
                         for name, job in zip(names, self.lang_jobs)]
            return ", ".join(names)
        kinds: dict[str, list[str]] = {}
        for job in self.lang_jobs:
            kinds.setdefault(job.kind, []).append(job.lang)
        return "; ".join(f"{len(langs)} {kind}s ({', '.join(langs)})" for kind, langs in kinds.items())

    def runs_after(self, failed: set[str]) -> tuple[list[RunJob], list[tuple[RunJob, list[str]]]]:
        """The runs to launch once stage 1 is done, and those left out, each with the keys of the language
        components it needs that stage 1 failed to train (the run would only train them again and fail the same
        way - after a divergence, at the same step after as many hours)."""
        launch, left_out = [], []
        for job in self.todo:
            missing = [k for k in job.needs if k in failed]
            if missing:
                left_out.append((job, missing))
            else:
                launch.append(job)
        return launch, left_out


def finished_result(run: RunSpec, store: Store) -> Result | None:
    """The stored result of `run` if it finished before and force=true does not ask to recompute it."""
    result = store.read_result(key(result_spec(run)))
    return result if result and not run.force else None


def no_data_set(runs: list[str]) -> str:
    """The refusal of a sweep none of whose runs (`runs`: "combo lang task") has a data set for its task, in one
    paragraph."""
    nulls = sorted({f"{run.split()[1]}.yaml has `{run.split()[2]}: null`" for run in runs})
    return (f"Nothing to run: no run of this command has a data set for its task ({', '.join(runs)}), so nothing was "
            f"launched. In the languages' files (conf/lang/ or lang/ of --config-dir), {'; '.join(nulls)} under "
            "`sources`. Name a data source there (README \"A seventeenth language\"), give the runs files of your own "
            "with data.files={train:...,validation:...,test:...}, or choose another task or language.")


def not_stored_for_eval(run: RunSpec, store: Store) -> str | None:
    """With stage=eval (evaluate a stored task component, train nothing): why `run` cannot run - the store holds no
    task component for it, or its combo stores none (full_ft) - else None. Asked before anything trains: by the
    plan for every run of a sweep, and by a single run before its stage 1."""
    if run.stage != "eval" or not run.combo.trains_task_part:
        return None
    if not run.combo.task:
        return f"{run.name(' ')} (full_ft does not store its fine-tuned backbone)"
    k = key(task_spec(run))
    return None if store.has(store.component_dir(k)) else f"{run.name(' ')} (no task component {k})"


def nothing_stored_for_eval(store: str, runs: list[str]) -> str:
    """The refusal of stage=eval for `runs` (as not_stored_for_eval names them), in one paragraph."""
    return (f"stage=eval evaluates stored task components and trains nothing, but the store ({store}) has none for "
            f"{len(runs)} run(s) of this command: {'; '.join(runs)}. Nothing was trained or evaluated. Run the same "
            "command without stage=eval to train them first (with their language components), or leave those runs "
            "out; `python -m softprompt_xl.store` lists what the store holds.")


def plan_sweep(jobs: list[list[str]], compose: Callable[[list[str]], Any]) -> SweepPlan:
    """`jobs` are the override lists of the sweep's runs; `compose` turns one into its config. Every run's
    configuration is checked (pipeline/schema.py) before anything is planned: a UserError stops the whole sweep."""
    plan = SweepPlan(runs=len(jobs))
    configs = []
    for job in jobs:
        cfg = compose(job)
        if "combo" in cfg and not schema.has_task_data(cfg, cfg.lang.code):  # Bulgarian QA: said, not refused
            plan.no_data.append(cfg_run_name(cfg, " "))
            why = schema.no_test_set(cfg.lang.code, cfg.task.name)
            plan.not_evaluated[why] = plan.not_evaluated.get(why, 0) + 1
            continue
        configs.append((job, cfg))
    if jobs and not configs:  # nothing of what was asked can run: a mistake, said before anything is launched
        raise UserError(no_data_set(plan.no_data))
    for _, cfg in configs:
        schema.check(cfg)
    wanted: dict[str, LangComponentJob] = {}
    not_stored: dict[str, list[str]] = {}  # stage=eval runs that have nothing stored to evaluate, by store
    for job, cfg in configs:
        run = RunSpec.of(cfg)
        store = Store(run.paths.store)
        if finished_result(run, store):
            plan.finished.append(run.name(" "))
            continue
        if why := not_stored_for_eval(run, store):
            not_stored.setdefault(str(store.root), []).append(why)
            continue
        plan.evaluations += len(run.eval_langs)
        plan.transfer += sum(code != run.lang.code for code in run.eval_langs)
        for why in run.unevaluated:
            plan.not_evaluated[why] = plan.not_evaluated.get(why, 0) + 1
        needs = []
        for code in run.languages_of_stage_1:
            spec = lang_spec(run, code)
            k = key(spec)
            plan.lang_needed.setdefault(k, f"{spec['kind']} {code}")
            needs.append(k)
            if spec.get("imported"):  # keys.lang_spec found it in the store (or said to import it first)
                plan.imported[k] = f"{spec['kind']} {code} from {spec['imported']['source']}"
            if k not in wanted and not store.has(store.component_dir(k)):
                wanted[k] = LangComponentJob.of(job, spec, run.backbone.id)
        plan.todo.append(RunJob(tuple(job), tuple(needs)))
    for store, runs in not_stored.items():  # refused before stage 1 trains anything for them
        raise UserError(nothing_stored_for_eval(store, runs))
    plan.lang_jobs = list(wanted.values())
    return plan
