"""The configuration checked once (pipeline/schema.py) and the plan of a sweep as two job types (pipeline/plan.py),
in-process on composed configs."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from conftest import experiment_grid
from softprompt_xl.config import check_writable, group_options
from softprompt_xl.errors import UserError
from softprompt_xl.model.component_header import WEIGHTS_FILE, ComponentHeader
from softprompt_xl.pipeline import schema
from softprompt_xl.pipeline.keys import key, lang_spec, result_spec
from softprompt_xl.pipeline.plan import LangComponentJob, RunJob, plan_sweep
from softprompt_xl.pipeline.records import Result
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.pipeline.run_spec import RunSpec


@pytest.mark.parametrize("overrides, message", [
    (["task_stage.max_steps=0"], r"task_stage.max_steps=0: must be a whole number of at least 1, since the combo "
                                 r"trains the task part \(0 would store an untrained part"),
    (["lang_stage.max_steps=-3"], r"lang_stage.max_steps=-3: .* since the combo trains a language component"),
    (["task_stage.batch_size=0"], r"task_stage.batch_size=0: must be a whole number of at least 1\."),
    (["combo.components.task.optimizer.name=sgd"], r"combo.components.task.optimizer.name=sgd is not an optimizer "
                                                   r"the framework has: use one of adafactor, adamw"),
    (["combo.components.lang.optimizer.lr=0"], r"combo.components.lang.optimizer.lr=0: the learning rate must be"),
    (["combo.components.task.kind=bitfit"], r"Unknown component kind 'bitfit'. Valid kinds: adapter, lora, prompt"),
    (["stage=train"], r"stage=train is not one of all, lang, eval"),
    (["seed=abc"], r"seed=abc: must be a whole number of at least 0 \(e.g. seed=1\)"),
    (["seed=-1"], r"seed=-1: must be a whole number"),
    (["job=lang"], r"job=lang is not one of run, lang_component"),
    (["eval_langs=[sk,xx]"], r"Unknown language 'xx': there is no conf/lang/xx.yaml. Known languages: .*sk.*"
                             r"--config-dir DIR"),
    (["transfer.sources=[sk]", "transfer.targets=[yy]"], r"Unknown language 'yy'"),
    (["task_stage.val_mode=bleu"], r"task_stage.val_mode=bleu is not a validation mode"),
    (["task_stage.val_max_examples=0"], r"task_stage.val_max_examples=0"),
    (["trainer.divergence.factor=0.5"], r"trainer.divergence.factor=0.5"),
])
def test_a_setting_no_job_could_run_with_is_refused_by_the_schema(make_cfg, overrides, message):
    with pytest.raises(UserError, match=message):
        schema.check(make_cfg("+combo=lp_ta", "lang=sk", *overrides))


def test_lora_targets_are_checked_against_the_linear_layers_of_the_backbones_blocks(make_cfg):
    schema.check(make_cfg("+combo=lp_tl", "lang=sk", "combo.components.task.targets=[q,k,wi_0,wo]"))
    with pytest.raises(UserError, match=r"targets=\['q', 'query'\]: LoRA adapts .* query is none of tiny's"):
        schema.check(make_cfg("+combo=lp_tl", "lang=sk", "combo.components.task.targets=[q,query]"))
    # A decoder-only backbone's own names, and its own default targets
    cfg = make_cfg("+combo=lp_tl", "lang=sk", "backbone=tiny_decoder")
    assert list(cfg.combo.components.task.targets) == ["q_proj", "v_proj"]
    schema.check(cfg)
    with pytest.raises(UserError, match=r"q is none of tiny_decoder's. Use some of q_proj, k_proj"):
        schema.check(make_cfg("+combo=lp_tl", "lang=sk", "backbone=tiny_decoder", "combo.components.task.targets=[q]"))


def test_what_a_combo_does_not_train_needs_no_steps(make_cfg):
    schema.check(make_cfg("+combo=zero_shot", "lang=sk", "task_stage.max_steps=0", "lang_stage.max_steps=0"))
    schema.check(make_cfg("+combo=ta", "lang=sk", "lang_stage.max_steps=0"))
    with pytest.raises(UserError, match="No combo chosen. Add \\+combo=NAME, one of: .*lp_ta"):
        schema.check(make_cfg("lang=sk"))


def test_an_output_root_that_cannot_be_written_is_refused_in_one_message(tmp_path):
    check_writable(tmp_path / "new" / "root")
    assert (tmp_path / "new" / "root").is_dir() and not list((tmp_path / "new" / "root").iterdir())
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"Cannot write under paths.root=.*file/root \(Not a directory\).*paths.root=DIR .*SOFTPROMPT_XL_ROOT"):
        check_writable(tmp_path / "file" / "root")


def test_the_plan_has_one_language_component_job_per_component_and_one_run_job_per_run(make_cfg, tmp_path):
    base = [f"paths.root={tmp_path}"]
    runs = [[*base, "+combo=lp_ta", "lang=sk", "task=ner"], [*base, "+combo=lp_ta", "lang=sk", "task=qa"],
            [*base, "+combo=lp_tp", "lang=cs", "task=qa", "eval_langs=[cs,sk]"], [*base, "+combo=ta", "lang=sk"]]
    plan = plan_sweep(runs, lambda job: make_cfg(*job))
    prompt_sk, prompt_cs = (key(lang_spec(RunSpec.of(make_cfg(*base, "+combo=lp_ta", f"lang={c}"))))
                            for c in ("sk", "cs"))
    assert [(job.key, job.kind, job.lang) for job in plan.lang_jobs] == [(prompt_sk, "prompt", "sk"),
                                                                         (prompt_cs, "prompt", "cs")]
    assert all(isinstance(job, LangComponentJob) for job in plan.lang_jobs)
    # a stage-1 job says what it is and where it writes; nothing of the run's evaluation languages is left in it
    job = plan.lang_jobs[0]
    assert "job=lang_component" in job.overrides and "lang=sk" in job.overrides
    assert "hydra.sweep.subdir=${hydra.job.num}_lang-prompt-sk" in job.overrides
    assert not any(o.startswith(("eval_langs=", "stage=")) for o in plan.lang_jobs[1].overrides)
    assert [type(r) for r in plan.todo] == [RunJob] * 4
    assert [r.needs for r in plan.todo] == [(prompt_sk,), (prompt_sk,), (prompt_cs, prompt_sk), ()]
    assert "4 needed" not in plan.describe() and "2 to train: prompt sk, prompt cs" in plan.describe()
    # the language-component job, composed, trains exactly the component the runs need
    composed = make_cfg(*job.overrides[:-1])
    assert composed.job == LangComponentJob.TYPE and key(lang_spec(RunSpec.of(composed))) == prompt_sk
    # a run whose language component failed in stage 1 is left out, the others launch
    launch, left_out = plan.runs_after({prompt_cs})
    assert [r.overrides for r in launch] == [tuple(r) for r in (runs[0], runs[1], runs[3])]
    assert left_out == [(plan.todo[2], [prompt_cs])]


def test_the_plan_skips_finished_runs_and_components_the_store_holds(make_cfg, tmp_path):
    run = [f"paths.root={tmp_path}", "+combo=lp_ta", "lang=sk"]
    cfg = make_cfg(*run)
    store = Store(cfg.paths.store)
    stored = store.component_dir(key(lang_spec(RunSpec.of(cfg))))
    stored.mkdir(parents=True)  # a whole component, as the store checks: a header, and weights its index covers
    ComponentHeader(kind="prompt", format_version=1, role="lang", name="sk", config={}, num_parameters=4).write(stored)
    save_file({"prompt": torch.zeros(1, 4)}, str(stored / WEIGHTS_FILE))
    plan = plan_sweep([run], lambda job: make_cfg(*job))
    assert plan.lang_jobs == [] and len(plan.todo) == 1 and "1 needed, 1 already in the store" in plan.describe()
    store.save_result(key(result_spec(RunSpec.of(cfg))), Result(combo="lp_ta", lang="sk", task="qa", backbone="tiny",
                                                                seed=42,
                                                    metrics={}, eval_langs=[], spec={}, wall_time_s=1.0))
    plan = plan_sweep([run], lambda job: make_cfg(*job))
    assert plan.todo == [] and plan.finished == ["lp_ta sk qa"]
    assert len(plan_sweep([[*run, "force=true"]], lambda job: make_cfg(*job)).todo) == 1


def test_one_bad_run_stops_the_whole_plan_before_anything_is_planned(make_cfg, tmp_path):
    runs = [[f"paths.root={tmp_path}", "+combo=lp_ta", f"lang={code}"] for code in ("sk", "cs")]
    runs[1].append("task_stage.max_steps=0")
    with pytest.raises(UserError, match="task_stage.max_steps=0"):
        plan_sweep(runs, lambda job: make_cfg(*job))


# --- the paper's second version (conf/experiment/paper_v2.yaml) ------------------------------------------------


def test_paper_v2_is_six_combos_and_zero_shot_by_six_source_languages_by_four_tasks_to_ten_targets():
    from omegaconf import OmegaConf

    from softprompt_xl.config import CONF_DIR, group_options

    experiment = OmegaConf.load(CONF_DIR / "experiment" / "paper_v2.yaml")
    grid = {k: str(v).split(",") for k, v in experiment.hydra.sweeper.params.items()}
    assert grid == {"+combo": ["ta", "tp", "la_ta", "la_tp", "lp_ta", "lp_tp", "zero_shot"],
                    "lang": ["en", "de", "es", "ar", "ru", "zh"], "task": ["qa", "ner", "nli", "checkworthy"]}
    assert experiment.transfer.sources == grid["lang"]
    assert experiment.transfer.targets == ["bg", "cs", "el", "ml", "ro", "sk", "sl", "sw", "te", "ur"]
    # sixteen languages, each with a file: 16 language prompts and 16 language adapters in stage 1
    assert sorted({*experiment.transfer.sources, *experiment.transfer.targets}) == group_options("lang")


def test_paper_v2_plan_counts_evaluations_and_says_bulgarian_qa_is_not_evaluated(make_cfg, tmp_path):
    base = [f"paths.root={tmp_path}", "experiment=paper_v2"]
    runs = [[*base, "+combo=lp_ta", "lang=en", "task=qa"], [*base, "+combo=ta", "lang=ar", "task=nli"],
            [*base, "+combo=zero_shot", "lang=en", "task=ner"], [*base, "+combo=zero_shot", "lang=de", "task=ner"],
            [*base, "+combo=zero_shot", "lang=bg", "task=qa"]]
    specs = [RunSpec.of(make_cfg(*run)) for run in runs[:4]]
    targets = ["bg", "cs", "el", "ml", "ro", "sk", "sl", "sw", "te", "ur"]
    # a source run: its own language first, then the targets, each with its own component (bg has no QA set)
    assert specs[0].eval_langs == ("en", *targets[1:])
    assert specs[0].unevaluated == ("bg has no qa test set: not evaluated (conf/lang/bg.yaml)",)
    assert specs[1].eval_langs == ("ar", *targets)
    # zero_shot is the same model in every language: the targets are scored once, by the first source's run
    assert (specs[2].eval_langs, specs[3].eval_langs) == (("en", *targets), ("de",))
    plan = plan_sweep(runs, lambda job: make_cfg(*job))
    assert (plan.runs, len(plan.todo), plan.no_data) == (5, 4, ["zero_shot bg qa"])
    assert (plan.evaluations, plan.transfer) == (10 + 11 + 11 + 1, 9 + 10 + 10)
    assert sorted(what for what in plan.lang_needed.values()) == sorted(f"prompt {code}" for code in ["en", *targets[1:]])
    described = plan.describe()
    assert "10 to train: 10 prompts (en, cs, el, ml, ro, sk, sl, sw, te, ur)" in described
    assert "4 to run, 1 not run (no data set for the task)" in described
    assert "evaluations: 33 test sets scored by the runs to run (4 in the run's own language, 29 cross-lingual)" in described
    assert "bg has no qa test set: not evaluated (conf/lang/bg.yaml); in 2 run(s)" in described


def test_paper_v1_runs_keep_their_evaluation_languages(make_cfg, tmp_path):
    # the source's own language first was already paper_v1's order (its targets begin with en): keys unchanged
    run = RunSpec.of(make_cfg(f"paths.root={tmp_path}", "experiment=paper_v1", "+combo=lp_ta", "lang=en"))
    assert run.eval_langs == ("en", "de", "es", "cs", "sk", "te") and run.unevaluated == ()


def test_an_unknown_language_on_the_command_line_lists_the_known_ones_and_how_to_add_one(tmp_path):
    from softprompt_xl.train import unknown_language_named

    assert unknown_language_named(["train", "+combo=lp_ta", "lang=sk,cs", "-m"]) is None
    message = unknown_language_named(["train", "+combo=lp_ta", "lang=sk,xx", "-m"])
    assert message.startswith("Unknown language 'xx': there is no conf/lang/xx.yaml. Known languages: ar, bg, cs")
    assert "A seventeenth language" in message and "--config-dir DIR" in message
    (tmp_path / "lang").mkdir()
    (tmp_path / "lang" / "xx.yaml").write_text("code: xx\n")
    assert unknown_language_named(["train", "--config-dir", str(tmp_path), "lang=xx"]) is None
    assert unknown_language_named(["train", f"hydra.searchpath=[file://{tmp_path}]", "lang=xx"]) is None


# --- every shipped study, planned -------------------------------------------------------------------------
# A language's file feeds the keys of every study that names the language: a change to one (sk's NLI label map of
# ids and letters once made the store key unhashable) must fail here, not in a user's dry run. The default suite
# plans every 13th run of each grid (13 is prime to the grids' sides, so every combo, language and task is in it;
# composing a grid's 168 runs takes half a minute); -m slow plans every run.


@pytest.mark.parametrize("experiment, stride", [
    *((name, 13) for name in group_options("experiment")),
    *(pytest.param(name, 1, marks=pytest.mark.slow) for name in group_options("experiment"))])
def test_every_shipped_experiment_plans(make_cfg, tmp_path, experiment, stride):
    every = experiment_grid(experiment)
    jobs = every[::stride]
    for setting in ("+combo=", "lang=", "task="):
        assert {o for job in jobs for o in job if o.startswith(setting)} == \
            {o for job in every for o in job if o.startswith(setting)}
    plan = plan_sweep(jobs, lambda job: make_cfg(f"paths.root={tmp_path}", *job))
    languages = {o.split("=", 1)[1] for job in jobs for o in job if o.startswith("lang=")}
    tasks = {o.split("=", 1)[1] for job in jobs for o in job if o.startswith("task=")}
    assert tasks == {"qa", "ner", "nli", "checkworthy"} and len(languages) >= 6
    assert plan.runs == len(jobs) == len(plan.todo) + len(plan.no_data)
    # every language component a run needs is planned once: a prompt and an adapter per language that is trained on
    # or evaluated in
    kinds = sorted({what.split()[0] for what in plan.lang_needed.values()})
    assert kinds == ["adapter", "prompt"] and len(plan.lang_jobs) == len(plan.lang_needed)


def test_every_language_and_task_of_the_hub_hashes_into_a_store_key(make_cfg, tmp_path):
    """`data=hub lang=X task=Y` for every shipped language and task: each source (its label map, columns, splits)
    becomes a key, or the run is said to have no data set for the task."""
    jobs = [[f"paths.root={tmp_path}", "data=hub", "+combo=ta", f"lang={code}", f"task={task}"]
            for code in group_options("lang") for task in ("qa", "ner", "nli", "checkworthy")]
    plan = plan_sweep(jobs, lambda job: make_cfg(*job))
    assert plan.runs == 16 * 4 and len(plan.todo) + len(plan.no_data) == plan.runs
    assert plan.no_data == ["ta bg qa"]  # the one pair the paper has no data set for


def test_a_sweep_none_of_whose_runs_has_data_is_refused_and_one_with_nothing_left_says_why(make_cfg, tmp_path):
    from softprompt_xl.pipeline.plan import SweepPlan

    # Bulgarian has no QA set (`qa: null` in conf/lang/bg.yaml): a sweep of nothing else cannot run at all, a mistake
    # said in one paragraph before anything is launched (it ended "every run had finished before", exit code 0).
    with pytest.raises(UserError) as err:
        plan_sweep([["+combo=lp_ta", "lang=bg", "task=qa"], ["+combo=ta", "lang=bg", "task=qa"]],
                   lambda job: make_cfg(f"paths.root={tmp_path}", *job))
    message = str(err.value)
    assert message.startswith("Nothing to run: no run of this command has a data set for its task (lp_ta bg qa, "
                              "ta bg qa), so nothing was launched.")
    assert "bg.yaml has `qa: null`" in message and "data.files=" in message
    # A sweep with nothing left to launch says why in its plan's last line: finished before, or no data set.
    assert SweepPlan(runs=2, finished=["lp_ta sk qa", "ta sk qa"]).describe().endswith(
        "  Nothing to launch: every run of the sweep had finished before.")
    assert SweepPlan(runs=2, finished=["lp_ta sk qa"], no_data=["lp_ta bg qa"]).describe().endswith(
        "  Nothing to launch: 1 run(s) had finished before, and 1 have no data set for their task (lp_ta bg qa).")
    assert "Nothing to launch" not in SweepPlan(runs=1, todo=[RunJob(("+combo=ta",), ())]).describe()


def test_runs_alike_but_for_their_combo_share_their_views_of_each_language(make_cfg, tmp_path, monkeypatch):
    from softprompt_xl.pipeline import run_spec

    jobs = [[f"paths.root={tmp_path}", "experiment=paper_v1_toy", f"+combo={combo}", "lang=en", f"task={task}"]
            for combo in ("lp_ta", "lp_tp", "la_ta") for task in ("qa", "ner")]
    resolved = []
    real = run_spec.LanguageViews.resolve
    monkeypatch.setattr(run_spec.LanguageViews, "resolve", lambda self, code: resolved.append(code) or real(self, code))
    monkeypatch.setattr(run_spec, "VIEWS", {})
    shared = plan_sweep(jobs, lambda job: make_cfg(*job))
    assert len(resolved) == 2 * 6  # two tasks x six evaluation languages, not 6 runs x 6
    # ... and each the view the run would resolve alone
    monkeypatch.setattr(run_spec, "RUN_ONLY_SETTINGS", ())  # nothing shared: every run resolves its own
    alone = plan_sweep(jobs, lambda job: make_cfg(*job))
    assert len(resolved) == 2 * 6 + 6 * 6
    assert [(j.overrides, j.needs) for j in shared.todo] == [(j.overrides, j.needs) for j in alone.todo]
    assert shared.lang_needed == alone.lang_needed


def test_language_components_of_one_kind_and_language_are_told_apart_by_their_keys(make_cfg, tmp_path):
    plan = plan_sweep([[f"paths.root={tmp_path}", "+combo=lp_ta", "lang=sk", f"seed={seed}"] for seed in (1, 2)],
                      lambda job: make_cfg(*job))
    first, second = (job.key for job in plan.lang_jobs)
    assert first != second
    assert f"2 to train: prompt sk ({first}), prompt sk ({second})" in plan.describe()
