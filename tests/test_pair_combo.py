"""Any language kind x any task kind by name (conf/combo/pair.yaml): `+combo=pair combo.lang=KIND combo.task=KIND`.

A pairing of the first three kinds is the combo file of the same pairing, store keys included, so the store finds
what was trained either way; a sweep over kinds is one multirun; a kind that is not one is refused before anything is
planned, with the list of kinds; `none` leaves a role empty. The kinds are read from conf/component/ and the
registry, never listed here."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from softprompt_xl.config import CONF_DIR, LEGACY_LETTERS, group_options, kinds_help, pair_name, to_plain
from softprompt_xl.errors import UserError
from softprompt_xl.model.components import REGISTRY
from softprompt_xl.pipeline import schema
from softprompt_xl.pipeline.keys import key, lang_spec, result_spec, task_spec
from softprompt_xl.pipeline.plan import plan_sweep
from softprompt_xl.pipeline.run_spec import RunSpec
from softprompt_xl.pipeline.sweep import sweep_jobs
from softprompt_xl.train import unknown_kind_named

KINDS = group_options("component")  # prompt, adapter, lora today; every kind with a config file
RECORDED = json.loads((Path(__file__).parent / "store_keys.json").read_text())


def kinds_of(make_cfg, combo: str) -> tuple[str, str]:
    """The (language, task) kinds of a named combo, `none` for a role it leaves empty."""
    parts = make_cfg(f"+combo={combo}").combo.components
    return tuple(parts[role].kind if parts.get(role) else "none" for role in ("lang", "task"))


# Every named combo that is a language part x a task part (all but full_ft, which trains the backbone).
NAMED = [c for c in group_options("combo") if c not in ("pair", "full_ft")]


def keys(cfg) -> dict:
    """The store keys a run reads and writes: its language components' (own and evaluation languages'), its task
    part's and its result's."""
    run = RunSpec.of(cfg)
    return {"lang": {code: key(spec) if (spec := lang_spec(run, code)) else None for code in run.langs},
            "task": key(task_spec(run)), "result": key(result_spec(run))}


def test_the_named_combos_are_the_pairings_of_the_first_three_kinds(make_cfg):
    # what the equivalence below ranges over: each named combo is one pairing (or zero_shot, none x none)
    pairs = {kinds_of(make_cfg, combo): combo for combo in NAMED}
    assert len(pairs) == len(NAMED) == 14 - 1
    legacy = [*LEGACY_LETTERS, "none"]
    assert set(pairs) == {(lang, task) for lang in legacy for task in legacy} - {("adapter", "none"),
                                                                               ("prompt", "none"), ("lora", "none")}
    assert all(pair_name(*kinds) == combo for kinds, combo in pairs.items())


@pytest.mark.parametrize("combo", NAMED)
def test_a_pair_is_the_named_combo_of_its_kinds_with_the_same_store_keys(make_cfg, tmp_path, combo):
    lang, task = kinds_of(make_cfg, combo)
    common = (f"paths.root={tmp_path}", "lang=sk", "eval_langs=[sk,cs]")
    named = make_cfg(f"+combo={combo}", *common)
    pair = make_cfg("+combo=pair", f"combo.lang={lang}", f"combo.task={task}", *common)
    schema.check(pair)
    assert pair.combo.name == combo
    for field in ("components", "train_backbone"):
        assert to_plain(pair.combo[field]) == to_plain(named.combo[field]), field
    assert "optimizer" not in pair.combo and "optimizer" not in named.combo
    assert keys(pair) == keys(named)


def test_the_default_pair_is_the_everyday_command_with_its_recorded_keys(make_cfg, tmp_path):
    # `+combo=pair lang=sk` (prompt x adapter) finds what `+combo=lp_ta lang=sk` stored before pairs existed
    run = RunSpec.of(make_cfg(f"paths.root={tmp_path}", "+combo=pair", "lang=sk"))
    found = {"lang": {"sk": key(lang_spec(run))}, "task": key(task_spec(run)), "result": key(result_spec(run))}
    assert {run.name(): found} == RECORDED["everyday"]


def test_a_pairs_components_resolve_against_the_runs_backbone(make_cfg):
    # interpolations in conf/component/<kind>.yaml are the run's: the decoder's LoRA targets and learning rates
    for backbone in ("tiny", "tiny_decoder", "mt0_base"):
        named = make_cfg("+combo=ll_tp", f"backbone={backbone}")
        pair = make_cfg("+combo=pair", "combo.lang=lora", "combo.task=prompt", f"backbone={backbone}")
        assert to_plain(pair.combo.components) == to_plain(named.combo.components)
        assert list(pair.combo.components.lang.targets) == list(pair.backbone.lora.targets)
        assert pair.combo.components.task.optimizer.lr == pair.backbone.lr.prompt
        assert pair.combo.components.task.n_tokens == pair.backbone.prompt_tokens
    # shown resolved by `--cfg job --resolve` (OmegaConf.to_yaml(resolve=True)), as written by `--cfg job`
    cfg = make_cfg("+combo=pair", "combo.task=lora")
    shown = OmegaConf.to_yaml(cfg.combo, resolve=True)
    assert "name: lp_tl" in shown and "kind: lora" in shown and "- q\n" in shown and "${" not in shown
    assert "${spxl.component:task," in OmegaConf.to_yaml(cfg.combo)


def test_a_hyperparameter_of_a_pair_is_tuned_with_the_same_keys_as_the_named_combos_override(make_cfg, tmp_path):
    common = (f"paths.root={tmp_path}", "lang=sk")
    named = make_cfg("+combo=lp_tl", "combo.components.task.r=16", "combo.components.lang.optimizer.lr=0.1", *common)
    pair = make_cfg("+combo=pair", "combo.task=lora", "+combo.tune.task.r=16", "+combo.tune.lang.optimizer.lr=0.1",
                    *common)
    schema.check(pair)
    assert pair.combo.components.task.r == 16 and pair.combo.components.task.alpha == 16  # the rest is the kind's
    assert pair.combo.components.lang.optimizer == {"name": "adafactor", "lr": 0.1, "weight_decay": 1e-5}
    assert keys(pair) == keys(named) and keys(pair) != keys(make_cfg("+combo=lp_tl", *common))


@pytest.mark.parametrize("overrides, message", [
    (["+combo.tune.task.rank=16"], r"combo.tune.task.rank: the adapter has no such hyperparameter. Its "
                                   r"hyperparameters: reduction_factor, non_linearity, optimizer.name"),
    (["combo.lang=none", "+combo.tune.lang.n_tokens=5"], r"combo.tune.lang sets n_tokens, but combo.lang=none"),
    # `++` replaces the component (Hydra cannot merge into an interpolation): refused, and told the way that works
    (["combo.task=lora", "++combo.components.task.r=16"], r"combo.components.task was set by an override, but a "
                                                          r"pair's components follow .* \+combo.tune.task.NAME=VALUE"),
])
def test_a_tuning_that_cannot_apply_is_refused(make_cfg, overrides, message):
    with pytest.raises(UserError, match=message):
        schema.check(make_cfg("+combo=pair", "lang=sk", *overrides))


def test_a_sweep_over_kinds_is_one_multirun_sharing_its_language_component(make_cfg, tmp_path):
    jobs = sweep_jobs(["+combo=pair", "combo.lang=prompt", "combo.task=adapter,lora", "lang=sk"])
    assert len(jobs) == 2
    plan = plan_sweep(jobs, lambda job: make_cfg(f"paths.root={tmp_path}", *job))
    assert plan.runs == 2 and len(plan.todo) == 2
    assert [job.describe() for job in plan.lang_jobs] == ["prompt sk"]  # trained once, used by both runs
    assert plan.todo[0].needs == plan.todo[1].needs == (plan.lang_jobs[0].key,)
    # the stage-1 job is composed from a run's overrides: it keeps the pair's kinds
    assert {"+combo=pair", "combo.lang=prompt", "job=lang_component"} <= set(plan.lang_jobs[0].overrides)
    names = [make_cfg(*job.overrides).combo.name for job in plan.todo]
    assert names == ["lp_ta", "lp_tl"]


def test_every_kind_by_every_kind_plans_as_one_sweep(make_cfg, tmp_path):
    kinds = ",".join(["none", *KINDS])
    jobs = sweep_jobs(["+combo=pair", f"combo.lang={kinds}", f"combo.task={kinds}", "lang=sk"])
    plan = plan_sweep(jobs, lambda job: make_cfg(f"paths.root={tmp_path}", *job))
    assert plan.runs == len(plan.todo) == (len(KINDS) + 1) ** 2
    assert sorted(job.describe() for job in plan.lang_jobs) == sorted(f"{kind} sk" for kind in KINDS)
    names = {make_cfg(*job.overrides).combo.name for job in plan.todo}
    # the named combos, and a language part alone (lp, la, ll: evaluated with nothing trained in stage 2)
    assert names == set(NAMED) | {f"l{LEGACY_LETTERS.get(kind, kind)}" for kind in KINDS}


def test_none_leaves_the_language_part_or_the_task_part_empty(make_cfg, tmp_path):
    cfg = make_cfg("+combo=pair", "combo.lang=none", "combo.task=lora", "lang=sk", "lang_stage.max_steps=0")
    schema.check(cfg)  # no language component: stage 1's budget is not needed
    assert cfg.combo.name == "tl" and cfg.combo.components.lang is None
    assert RunSpec.of(cfg).languages_of_stage_1 == []
    both = make_cfg("+combo=pair", "combo.lang=none", "combo.task=none", "task_stage.max_steps=0",
                    "lang_stage.max_steps=0")
    schema.check(both)
    assert both.combo.name == "zero_shot" and not RunSpec.of(both).combo.trains_task_part
    alone = make_cfg("+combo=pair", "combo.lang=adapter", "combo.task=none", "task_stage.max_steps=0")
    schema.check(alone)  # a language adapter, nothing trained in stage 2
    assert alone.combo.name == "la" and RunSpec.of(alone).combo.task is None
    null = make_cfg("+combo=pair", "combo.lang=null")  # Hydra's null is none too
    assert null.combo.name == "ta" and null.combo.components.lang is None


def test_pair_names_follow_from_the_kinds():
    assert pair_name("prompt", "adapter") == "lp_ta" and pair_name("none", "lora") == "tl"
    assert pair_name(None, "none") == "zero_shot" and pair_name("lora", "none") == "ll"
    # a kind added later (conf/component/<kind>.yaml + a registered class) goes by its name
    assert pair_name("prefix", "ia3") == "lprefix_tia3" and pair_name("madx", "prompt") == "lmadx_tp"
    assert pair_name("none", "dora") == "tdora"
    assert all(re.fullmatch(r"[a-z0-9_]+", pair_name(a, b)) for a in [*KINDS, "none"] for b in [*KINDS, "none"])


def test_a_kind_that_is_not_one_is_refused_with_the_list_of_kinds(make_cfg, tmp_path, monkeypatch):
    listed = f"Valid kinds: {', '.join(sorted(set(KINDS) & set(REGISTRY)))}, or none"
    with pytest.raises(UserError, match=rf"^combo.task=bitfit is not a component kind. {listed} \(no component"):
        schema.check(make_cfg("+combo=pair", "combo.task=bitfit"))
    with pytest.raises(UserError, match=rf"^combo.lang=Prompt is not a component kind. {listed}"):
        schema.check(make_cfg("+combo=pair", "combo.lang=Prompt"))
    # in a sweep: refused before anything is planned or launched
    jobs = sweep_jobs(["+combo=pair", "combo.task=adapter,bitfit", "lang=sk"])
    with pytest.raises(UserError, match="combo.task=bitfit is not a component kind"):
        plan_sweep(jobs, lambda job: make_cfg(f"paths.root={tmp_path}", *job))
    # a kind with a config file but no registered class is not one either: the list is the registry's too
    monkeypatch.setattr(schema, "REGISTRY", {k: v for k, v in REGISTRY.items() if k != "lora"})
    with pytest.raises(UserError, match=r"combo.task=lora is not a component kind. Valid kinds: adapter, prompt, or"):
        schema.check(make_cfg("+combo=pair", "combo.task=lora"))


def test_the_command_line_is_told_an_unknown_kind_before_hydra_composes():
    # (python -m softprompt_xl.train: also for --cfg job --resolve and --help, which never reach the schema)
    told = unknown_kind_named(["train", "+combo=pair", "combo.lang=prompt", "combo.task=adapter,ia3", "-m"])
    assert told.startswith(f"combo.task=ia3 is not a component kind. Valid kinds: {', '.join(KINDS)}, or none")
    assert unknown_kind_named(["train", "+combo=pair", f"combo.lang={','.join(KINDS)}", "combo.task=none"]) is None
    assert unknown_kind_named(["train", "+combo=pair", "combo.task=null"]) is None


def test_the_help_and_the_readme_list_every_kind_with_its_hyperparameters(make_cfg):
    from hydra import compose, initialize_config_module

    with initialize_config_module("softprompt_xl.conf", version_base="1.3"):
        cfg = compose("train", overrides=["backbone=mt0_base"], return_hydra_config=True)
        template = cfg.hydra.help.template  # what `--help backbone=mt0_base` prints, the kinds' values on mt0-base
    readme = Path(CONF_DIR.parent.parent / "README.md").read_text(encoding="utf-8")
    combos = readme[readme.index("\n## Combos"):readme.index("\n## Configuration")]
    for kind in KINDS:
        written = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "component" / f"{kind}.yaml"))
        names = [name for name, _ in _flat(written) if name != "kind"]
        line = re.search(rf"^  {kind}: .*\n      (.*)$", template, re.M)
        assert line, template
        assert [part.split("=")[0] for part in line.group(1).split("; ")] == names
        row = re.search(rf"^\| `{kind}` \|.*$", combos, re.M)
        assert row and all(f"`{name}" in row.group(0) for name in names if not name.startswith("optimizer.")), kind
    assert "n_tokens=50 (backbone.prompt_tokens)" in template and "optimizer.lr=0.5 (backbone.lr.prompt)" in template
    assert "$" not in kinds_help(make_cfg("+combo=lp_ta"))


def _flat(value, prefix=""):
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _flat(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), value)]
