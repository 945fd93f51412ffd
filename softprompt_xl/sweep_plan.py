"""The plan of a multirun before anything trains: which language components its runs need (stage 1, each
once, whatever the number of runs sharing it), which runs the store has already finished, which remain.
The staged sweeper (hydra_plugins/softprompt_xl_sweeper) launches the plan; dry_run=true only prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import UserError
from .plan import eval_langs, key, lang_spec, result_spec
from .store import Store


@dataclass
class SweepPlan:
    runs: int = 0
    lang_needed: dict[str, str] = field(default_factory=dict)  # key -> "kind lang"
    lang_jobs: list[list[str]] = field(default_factory=list)   # overrides of the stage=lang jobs
    todo: list[list[str]] = field(default_factory=list)        # overrides of the runs still to do
    finished: list[str] = field(default_factory=list)          # "combo lang task" of runs skipped as finished
    _missing: list[str] = field(default_factory=list)          # keys of the language components to train

    def describe(self) -> str:
        lines = [
            f"Sweep plan: {self.runs} run(s).",
            f"  stage 1, language components: {len(self.lang_needed)} needed, "
            f"{len(self.lang_needed) - len(self.lang_jobs)} already in the store, {len(self.lang_jobs)} to train"
            + (": " + ", ".join(self.lang_needed[k] for k in self._missing) if self.lang_jobs else ""),
            f"  stage 2, runs: {len(self.finished)} finished (skipped), {len(self.todo)} to run",
        ]
        lines += [f"  skip {run}: finished before (force=true recomputes it)" for run in self.finished]
        return "\n".join(lines)


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
        result = store.read_result(key(result_spec(cfg)))
        name = f"{cfg.combo.name} {cfg.lang.code} {cfg.task.name}"
        if result and result.get("status") == "complete" and not cfg.force:
            plan.finished.append(name)
            continue
        plan.todo.append(job)
        for code in dict.fromkeys([cfg.lang.code, *eval_langs(cfg)]):
            spec = lang_spec(cfg, code)
            if spec:
                k = key(spec)
                plan.lang_needed.setdefault(k, f"{spec['kind']} {code}")
                wanted.setdefault(k, (job, code))
    for k, (job, code) in wanted.items():
        if store is not None and not store.has(store.component_dir(k)):
            plan._missing.append(k)
            kept = [o for o in job if not o.lstrip("+~").startswith(("lang=", "eval_langs=", "stage=",
                                                                       "hydra.sweep.subdir="))]
            plan.lang_jobs.append(kept + [f"lang={code}", f"eval_langs=[{code}]", "stage=lang",
                                          f"hydra.sweep.subdir=${{hydra.job.num}}_lang-{k.split('-')[1]}-{code}"])
    return plan
