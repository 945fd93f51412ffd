"""What a configuration must hold, checked once before anything is planned or trained.

A sweep checks every one of its runs here before its first job starts (hydra_plugins/softprompt_xl_sweeper), a
single run before it starts (train.py), so a mistake in a 150-run sweep is refused in seconds with one
paragraph, instead of failing in every job, or after hours in the stage that first reads the setting.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from softprompt_xl.config import (component_kinds, flat_settings, group_options, has_option, is_no_component,
                                  load_option, to_plain, unknown_kind, unknown_language)
from softprompt_xl.data.loaders import check_subset_size
from softprompt_xl.data.objectives import check_objective
from softprompt_xl.data.tasks import get_task
from softprompt_xl.errors import UserError
from softprompt_xl.model.components import REGISTRY, ROLES, component_class
from softprompt_xl.model.module import OPTIMIZERS, check_val_mode
from softprompt_xl.runtime import progress
from softprompt_xl.runtime.divergence import DivergenceRule
from softprompt_xl.runtime.trainer_settings import trainer_arguments

# What a job does (`job`): a run trains what the store lacks for one (combo, language, task) and evaluates it;
# a language-component job (stage 1 of a sweep, launched by the staged sweeper) trains one language component.
RUN_JOB, LANG_COMPONENT_JOB = "run", "lang_component"  # pipeline/plan.py: RunJob, LangComponentJob
JOBS = (RUN_JOB, LANG_COMPONENT_JOB)
# What a run does (`stage`): all = train what is missing, then evaluate; lang = only the language components it
# needs (its own and its evaluation languages'); eval = evaluate a stored task component, training nothing.
STAGES = ("all", "lang", "eval")


def check(cfg: Any) -> None:
    """Raise a UserError naming the first setting of `cfg` that no job could run with, and how to fix it."""
    if "combo" not in cfg:
        raise UserError(f"No combo chosen. Add +combo=NAME, one of: {', '.join(group_options('combo'))} (e.g. "
                        "`python -m softprompt_xl.train +combo=lp_ta lang=sk -m`).")
    seed = cfg.get("seed")
    if not (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0):
        raise UserError(f"seed={seed}: must be a whole number of at least 0 (e.g. seed=1); it seeds the components' "
                        "initialisation, the data order and dropout, and is part of every store key. Several seeds are "
                        "one sweep: seed=1,2,3 -m.")
    _one_of("job", cfg.job, JOBS)
    _one_of("stage", cfg.stage, STAGES)
    combo = cfg.combo
    if is_pair(combo):  # before its components are read: they follow from its kinds
        _pair(combo)
    for role in ROLES:
        if combo.components.get(role):
            _component(f"combo.components.{role}", to_plain(combo.components[role]), cfg.backbone)
    if combo.get("train_backbone"):
        _optimizer("combo.optimizer", to_plain(combo.optimizer))
    get_task(cfg.task)  # an unknown task kind
    trains_task = trains_task_part(combo)
    _at_least_one("task_stage.max_steps", cfg.task_stage.max_steps, trains_task,
                  "trains the task part" if trains_task else "")
    _at_least_one("lang_stage.max_steps", cfg.lang_stage.max_steps, bool(combo.components.get("lang")),
                  "trains a language component")
    for name in ("batch_size", "eval_batch_size", "val_every_n_steps", "max_input_length"):
        _at_least_one(f"task_stage.{name}", cfg.task_stage[name], True, "")
    _at_least_one("lang_stage.batch_size", cfg.lang_stage.batch_size, True, "")
    if cfg.lang_stage.get("objective") is not None:
        check_objective(cfg.lang_stage.objective)
    grouping = cfg.task_stage.get("group_by_length")
    if grouping is not None:
        _at_least_one("task_stage.group_by_length", grouping, True, "")  # or null: batches drawn at random
    check_val_mode(cfg.task_stage.val_mode)
    check_subset_size(cfg.task_stage.val_max_examples)
    DivergenceRule.from_config(cfg.trainer.divergence)
    progress.settings(cfg.trainer)  # trainer.progress, trainer.progress_every_s
    trainer_arguments(cfg.trainer)  # the rest: lightning.Trainer's arguments
    # every language the run is trained or evaluated on has a config (conf/lang/<code>.yaml)
    for code in dict.fromkeys([*_codes(cfg.get("eval_langs")), *(to_plain(cfg.transfer.sources) or []),
                               *(to_plain(cfg.transfer.targets) or [])]):
        if not has_option("lang", str(code)):
            raise UserError(unknown_language(code))
    if not has_task_data(cfg, cfg.lang.code):
        raise UserError(f"{cfg.lang.code} has no {cfg.task.name} data set: conf/lang/{cfg.lang.code}.yaml names no "
                        f"sources.{cfg.task.name}. Choose another task or language, name a source there, or give "
                        "the run files of your own with data.files={train:...,validation:...,test:...}.")


def _one_of(setting: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UserError(f"{setting}={value} is not one of {', '.join(allowed)}: see the comment on `{setting}` in "
                        "conf/train.yaml.")


def _component(where: str, component: dict, backbone: Any) -> None:
    component_class(component.get("kind"))
    _optimizer(f"{where}.optimizer", component.get("optimizer") or {})
    if component["kind"] == "lora":
        layers = to_plain(backbone.lora.layers)
        unknown = sorted(set(component.get("targets") or []) - set(layers))
        if unknown or not component.get("targets"):
            raise UserError(f"{where}.targets={component.get('targets')}: LoRA adapts linear layers of the backbone's "
                            f"blocks by name; {', '.join(unknown) or 'an empty list'} is none of {backbone.id}'s. Use "
                            f"some of {', '.join(layers)} (its default: {to_plain(backbone.lora.targets)}).")


def is_pair(combo: Any) -> bool:
    """Whether the combo is a language kind x a task kind by name (conf/combo/pair.yaml: combo.lang, combo.task)."""
    return all(role in combo for role in ROLES)


def valid_kinds() -> list[str]:
    """The kinds a pair may name: a config (conf/component/<kind>.yaml) and a registered class."""
    return sorted(set(component_kinds()) & set(REGISTRY))


def _pair(combo: Any) -> None:
    """A pair's kinds are kinds (or none), its components still the ones they give, and its tuning names
    hyperparameters of theirs: checked on the config as written, before a component is resolved."""
    raw = OmegaConf.to_container(combo, resolve=False)
    tune = raw.get("tune") or {}
    for role in ROLES:
        kind = raw[role]
        if not is_no_component(kind) and str(kind) not in valid_kinds():
            raise UserError(unknown_kind(kind, valid_kinds(), f"combo.{role}"))
        if not (isinstance(raw["components"].get(role), str) and "spxl.component:" in raw["components"][role]):
            raise UserError(f"combo.components.{role} was set by an override, but a pair's components follow from "
                            f"its kinds (combo.{role}={kind}): change a hyperparameter of its {role} part with "
                            f"+combo.tune.{role}.NAME=VALUE (e.g. +combo.tune.task.r=16), not with "
                            f"combo.components.{role}.NAME.")
        given = [name for name, _ in flat_settings(tune.get(role) or {})]
        if given and is_no_component(kind):
            raise UserError(f"combo.tune.{role} sets {', '.join(given)}, but combo.{role}={kind}: there is no {role} "
                            "component to tune. Name its kind, or drop the setting.")
        written = load_option("component", str(kind), copy=False) if given else None
        known = [name for name, _ in flat_settings(OmegaConf.to_container(written))] if written is not None else []
        unknown = [name for name in given if name not in known or name == "kind"]
        if unknown:
            raise UserError(f"combo.tune.{role}.{unknown[0]}: the {kind} has no such hyperparameter. Its "
                            f"hyperparameters: {', '.join(n for n in known if n != 'kind')} "
                            f"(conf/component/{kind}.yaml; `python -m softprompt_xl.train --help` lists every kind's).")


def _optimizer(where: str, optimizer: dict) -> None:
    if optimizer.get("name") not in OPTIMIZERS:
        raise UserError(f"{where}.name={optimizer.get('name')} is not an optimizer the framework has: use one of "
                        f"{', '.join(OPTIMIZERS)}.")
    try:
        lr = float(optimizer.get("lr"))
    except (TypeError, ValueError):
        lr = float("nan")
    if not lr > 0:
        raise UserError(f"{where}.lr={optimizer.get('lr')}: the learning rate must be a positive number.")


def _at_least_one(setting: str, value: Any, needed: bool, why: str) -> None:
    if needed and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        raise UserError(f"{setting}={value}: must be a whole number of at least 1"
                        + (f", since the combo {why} (0 would store an untrained part as if it were finished)"
                           if why else "") + ".")


def _codes(value: Any) -> list[str]:
    value = to_plain(value)
    return [] if not value else [value] if isinstance(value, str) else list(value)


def trains_task_part(combo: Any) -> bool:
    """Whether stage 2 trains anything for the combo: a task component, or the whole backbone (full_ft)."""
    return bool(combo.components.get("task") or combo.get("train_backbone"))


def has_task_data(cfg: Any, code: str) -> bool:
    """Whether language `code` has a data set for the run's task: its conf/lang file names one
    (`sources.<task>`, not null), or for the run's own language, files were given (`data.files`)."""
    if code == cfg.lang.code and to_plain(OmegaConf.select(cfg, "data.files", default=None)):
        return True
    lang = cfg.lang if code == cfg.lang.code else load_option("lang", code, copy=False)
    return lang is None or OmegaConf.select(lang, f"sources.{cfg.task.name}", default=None) is not None


def no_test_set(code: str, task: str) -> str:
    return f"{code} has no {task} test set: not evaluated (conf/lang/{code}.yaml)"
