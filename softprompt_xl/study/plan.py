"""The plan of a multirun before anything trains: which language components its runs need (stage 1, each
once, whatever the number of runs sharing it), which runs the store has already finished, which remain.
The staged sweeper (hydra_plugins/softprompt_xl_sweeper) launches the plan; dry_run=true only prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from softprompt_xl.errors import UserError
from softprompt_xl.study.keys import eval_langs, key, lang_spec, result_spec
from softprompt_xl.study.records import cfg_run_name, lang_run_name
from softprompt_xl.study.store import Store


@dataclass
class SweepPlan:
    runs: int = 0
    lang_needed: dict[str, str] = field(default_factory=dict)  # key -> "kind lang"
    lang_jobs: list[list[str]] = field(default_factory=list)   # overrides of the stage=lang jobs
    todo: list[list[str]] = field(default_factory=list)        # overrides of the runs still to do
    needs: list[list[str]] = field(default_factory=list)       # per run of `todo`: keys of its language components
    finished: list[str] = field(default_factory=list)          # "combo lang task" of runs skipped as finished
    lang_keys: list[str] = field(default_factory=list)         # per job of `lang_jobs`: the key it trains

    def describe(self) -> str:
        lines = [
            f"Sweep plan: {self.runs} run(s).",
            f"  stage 1, language components: {len(self.lang_needed)} needed, "
            f"{len(self.lang_needed) - len(self.lang_jobs)} already in the store, {len(self.lang_jobs)} to train"
            + (": " + ", ".join(self.lang_needed[k] for k in self.lang_keys) if self.lang_jobs else ""),
            f"  stage 2, runs: {len(self.finished)} finished (skipped), {len(self.todo)} to run",
        ]
        lines += [f"  skip {run}: finished before (force=true recomputes it)" for run in self.finished]
        return "\n".join(lines)

    def runs_after(self, failed: set[str]) -> tuple[list[list[str]], list[tuple[list[str], list[str]]]]:
        """The runs to launch once stage 1 is done, and those left out, each with the keys of the language
        components it needs that stage 1 failed to train (the run would only train them again and fail the same
        way - after a divergence, at the same step after as many hours)."""
        launch, left_out = [], []
        for job, needs in zip(self.todo, self.needs):
            missing = [k for k in needs if k in failed]
            if missing:
                left_out.append((job, missing))
            else:
                launch.append(job)
        return launch, left_out


def plan_sweep(jobs: list[list[str]], compose: Callable[[list[str]], Any]) -> SweepPlan:
    """`jobs` are the override lists of the sweep's runs; `compose` turns one into its config."""
    plan = SweepPlan(runs=len(jobs))
    store: Store | None = None
    wanted: dict[str, tuple[list[str], str]] = {}
    for job in jobs:
        cfg = compose(job)
        if "combo" not in cfg:
            raise UserError("No combo chosen. Add +combo=NAME (e.g. `python -m softprompt_xl.train +combo=lp_ta "
                            "lang=sk -m`); conf/combo/ lists them.")
        store = Store(cfg.paths.store)
        if store.read_result(key(result_spec(cfg))) and not cfg.force:
            plan.finished.append(cfg_run_name(cfg, " "))
            continue
        plan.todo.append(job)
        plan.needs.append([])
        for code in dict.fromkeys([cfg.lang.code, *eval_langs(cfg)]):
            spec = lang_spec(cfg, code)
            if spec:
                k = key(spec)
                plan.lang_needed.setdefault(k, f"{spec['kind']} {code}")
                plan.needs[-1].append(k)
                wanted.setdefault(k, (job, code))
    for k, (job, code) in wanted.items():
        if store is not None and not store.has(store.component_dir(k)):
            plan.lang_keys.append(k)
            kept = [o for o in job if not o.lstrip("+~").startswith(("lang=", "eval_langs=", "stage=",
                                                                       "hydra.sweep.subdir="))]
            plan.lang_jobs.append(kept + [f"lang={code}", f"eval_langs=[{code}]", "stage=lang",
                                          f"hydra.sweep.subdir=${{hydra.job.num}}_{lang_run_name(k.split('-')[1], code)}"])
    return plan
