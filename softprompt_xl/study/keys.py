"""What a run needs and what identifies it: the specs whose hashes are the store keys.

A spec holds everything that shapes a trained component or a result (backbone, kind, role, language, task,
data source, hyperparameters, seed, and for a task component the key of the language component it was
trained with); the same configuration gives the same key, any change that matters gives a new one.
"""

from __future__ import annotations

from typing import Any

from omegaconf import OmegaConf

from softprompt_xl.model.backbone import backbone_identity
from softprompt_xl.config import load_option, stable_hash, to_plain, unknown_language
from softprompt_xl.data.sources import task_source
from softprompt_xl.errors import UserError
from softprompt_xl.study.schema import has_task_data, no_test_set, trains_task_part
from softprompt_xl.study.store import Store
from softprompt_xl.data.fingerprint import source_fingerprint

# `lang_stage.source=import:NAME`: the language component is one imported into the store
# (`python -m softprompt_xl.store import NAME`), not trained; NAME may hold {language} (the language's name in
# lower case, as the authors name theirs), {code} and {kind}; `import:authors` is the paper's authors' published
# set, for every language and both kinds (quoting braces on a command line is error-prone).
IMPORT_PREFIX = "import:"
AUTHORS = "ivykopal/{language}_{kind}_100k"


def with_lang(cfg: Any, code: str) -> Any:
    """`cfg` as if it had been composed with `lang=<code>`: the language's own sources and prompt wording (a
    run's `data.files` belongs to its own language, so it is dropped)."""
    if code == cfg.lang.code:
        return cfg
    lang = load_option("lang", code, copy=False)  # assigned below, which copies it
    if lang is None:
        raise UserError(unknown_language(code))
    # Hydra's own node (a sweep's job config carries it) is what a language's spec never reads and most of the copy.
    other = OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]) if "hydra" in cfg else cfg.copy()
    OmegaConf.set_struct(other, False)
    other.lang = lang
    other.data.files = None
    return other


def lang_spec(cfg: Any, code: str | None = None) -> dict | None:
    """Spec of the language component the combo needs for language `code` (default: the run's); None if none."""
    component = to_plain(cfg.combo.components.lang)
    if not component:
        return None
    cfg = with_lang(cfg, code or cfg.lang.code)
    if cfg.lang_stage.get("source"):
        return _imported_lang_spec(cfg, component["kind"], cfg.lang_stage.source)
    # How much held-out text scores it does not change what is trained.
    stage = {k: v for k, v in _stage_settings(cfg.lang_stage).items() if k != "heldout_chunks"}
    return {**_lang_component(cfg, component), "data": source_fingerprint(cfg.data.wiki), "stage": stage,
            "seed": cfg.seed}


def lang_spec_inputs(cfg: Any) -> str:
    """A digest of all that `lang_spec(cfg, code)` reads of a run's config besides `code` (keep it in step with
    lang_spec and with_lang): runs with the same digest have the same language spec for every language, so a plan
    computes each once (paper_v2's 96 runs with a language part ask for 1,056 specs, of 32 languages x kinds),
    instead of copying the run's config for each. The run's language is in it because the run's config resolves
    interpolations of `lang` (a prompt's init text, the corpus's path) with it."""
    return stable_hash([cfg.lang.code, cfg.seed, *(to_plain(node) for node in (
        cfg.combo.components.get("lang"), cfg.lang_stage, cfg.data.wiki, cfg.backbone, cfg.paths))])


def imported_spec(cfg: Any, component: dict, source: str, layout: str, sha256: str) -> dict:
    """Spec of a language component imported from `source` (a Hub name or a directory) for `cfg`'s language and
    backbone: what it is and where its weights came from (their digest), instead of how it was trained."""
    return {**_lang_component(cfg, component), "imported": {"source": source, "layout": layout, "sha256": sha256}}


def _lang_component(cfg: Any, component: dict) -> dict:
    """What any language component's spec starts with, trained or imported."""
    return {"role": "lang", "kind": component["kind"], "lang": cfg.lang.code, "component": component,
            "backbone": backbone_identity(cfg.backbone, cfg.paths)}


def import_source(cfg: Any, kind: str, setting: str) -> str:
    """The name `lang_stage.source` gives the language component of `cfg`'s language."""
    if not setting.startswith(IMPORT_PREFIX):
        raise UserError(f"lang_stage.source={setting} is not understood: it is null (train the language component) or "
                        f"{IMPORT_PREFIX}NAME, NAME a component imported with `python -m softprompt_xl.store import "
                        "NAME`, e.g. lang_stage.source=import:ivykopal/slovak_prompt_100k, or import:authors for the "
                        f"authors' published components of every language ({AUTHORS}).")
    name = setting[len(IMPORT_PREFIX):]
    return (AUTHORS if name == "authors" else name).format(language=cfg.lang.name.lower(), code=cfg.lang.code,
                                                           kind=kind)


def _imported_lang_spec(cfg: Any, kind: str, setting: str) -> dict:
    source = import_source(cfg, kind, setting)
    store = Store(cfg.paths.store)
    backbone = backbone_identity(cfg.backbone, cfg.paths)
    spec = store.find_imported(source, cfg.lang.code, backbone)
    if spec is None:
        raise UserError(
            f"The {cfg.lang.name} language {kind} is to be the imported {source} (lang_stage.source), but the store "
            f"{store.root} holds no import of it for {cfg.lang.code} on this backbone. Import it first: `python -m "
            f"softprompt_xl.store import {source} lang={cfg.lang.code} backbone={cfg.backbone.id} "
            f"paths.root={cfg.paths.root}` (or drop lang_stage.source to train one).")
    if spec["kind"] != kind:
        raise UserError(f"The imported {source} is a {spec['kind']}, but the combo's language part is a {kind}: choose "
                        f"a combo with a language {spec['kind']}, or import a {kind}.")
    return spec


def task_spec(cfg: Any) -> dict:
    """Spec of what stage 2 trains (a task component, the whole backbone, or nothing for zero_shot)."""
    lang = lang_spec(cfg)
    return {
        "role": "task",
        "combo": cfg.combo.name,
        "kind": (to_plain(cfg.combo.components.task) or {}).get("kind"),
        "component": to_plain(cfg.combo.components.task),
        "train_backbone": bool(cfg.combo.get("train_backbone", False)),
        "optimizer": to_plain(cfg.combo.get("optimizer")),
        "lang": cfg.lang.code,
        "task": cfg.task.name,
        "task_config": to_plain(cfg.task),
        "lang_component": key(lang) if lang else None,
        "backbone": backbone_identity(cfg.backbone, cfg.paths),
        "data": source_fingerprint(task_source(cfg)),
        "stage": _stage_settings(cfg.task_stage),
        "seed": cfg.seed,
    }


def eval_langs(cfg: Any) -> list[str]:
    """The languages a run is evaluated on: `eval_langs`, else its own language followed by the transfer targets
    when the run's language is a transfer source (for a combo that trains nothing, the first source only), else
    its own language. A language
    with no data set for the run's task (`sources.<task>: null` in its conf/lang file: Bulgarian QA) is left out
    (`unevaluated` names it)."""
    return [code for code in _candidate_langs(cfg) if has_task_data(cfg, code)]


def unevaluated(cfg: Any) -> list[str]:
    """Why each language `eval_langs` leaves out is left out, one line each (the plan and the run say them)."""
    return [no_test_set(code, cfg.task.name) for code in _candidate_langs(cfg) if not has_task_data(cfg, code)]


def _candidate_langs(cfg: Any) -> list[str]:
    chosen = to_plain(cfg.get("eval_langs"))
    if chosen:
        return list(dict.fromkeys([chosen] if isinstance(chosen, str) else chosen))
    transfer = to_plain(cfg.get("transfer")) or {}
    sources = transfer.get("sources") or []
    # A combo that trains nothing (zero_shot) is the same model whatever its language: the targets are scored once,
    # by its run in the first source language, not once per source with the same numbers.
    if cfg.lang.code in sources and (trains_task_part(cfg.combo) or cfg.lang.code == sources[0]):
        return list(dict.fromkeys([cfg.lang.code, *(transfer.get("targets") or [])]))
    return [cfg.lang.code]


# Stage settings added after keys were in use: in a key only when set, so the components and results trained
# before they existed keep their keys (unset, they change nothing). lang_stage.source, when set, makes the spec
# an imported one (imported_spec) instead.
LATER_STAGE_SETTINGS = ("group_by_length", "source")


def _stage_settings(stage: Any) -> dict:
    settings = to_plain(stage)
    return {k: v for k, v in settings.items() if not (k in LATER_STAGE_SETTINGS and v is None)}


def result_spec(cfg: Any, lang_specs: dict[str, dict | None] | None = None) -> dict:
    """Spec of a run's result: what was trained, and the languages it was evaluated on with which components
    (`lang_specs`: those of its evaluation languages, when the caller has them already)."""
    if lang_specs is None:
        lang_specs = {code: lang_spec(cfg, code) for code in eval_langs(cfg)}
    return {
        "role": "result",
        "combo": cfg.combo.name,
        "lang": cfg.lang.code,
        "task": cfg.task.name,
        "trained": key(task_spec(cfg)),
        "eval": {code: (key(spec) if spec else None) for code, spec in lang_specs.items()},
        "max_answer_length": cfg.task.max_answer_length,
    }


def comparison_spec(cfg: Any) -> dict:
    """What runs must share for their numbers to be averaged or set side by side, in two parts: `shared` by every
    configuration of one comparison (backbone, data, task, task-stage budget) and `combo`, what makes one
    configuration (its components, their hyperparameters, the language stage). The language, the seed and the
    evaluation languages are left out: they are a table's columns, what is averaged over, and a transfer
    matrix's columns. Recorded in each result; the report groups by it (softprompt_xl/report/)."""
    task, lang = task_spec(cfg), lang_spec(cfg)
    # The data choice, not each language's files: those differ along a table's columns by design. Files a run
    # brings itself (data.files) are other data, so their content counts.
    data = {"name": cfg.data.name}
    if to_plain(cfg.data.get("files")):
        data["files"] = task["data"]
    return {
        "shared": {"backbone": task["backbone"], "data": data, "task": task["task"], "task_config": task["task_config"],
                   "stage": task["stage"]},
        "combo": {**{k: task[k] for k in ("combo", "kind", "component", "train_backbone", "optimizer")},
                  "lang": {k: lang[k] for k in ("kind", "component", "stage", "imported") if k in lang} if lang else None},
    }


def key(spec: dict) -> str:
    """The store key of a spec: readable fields, then a hash of everything."""
    readable = "-".join(str(spec[k]) for k in ("role", "combo", "kind", "lang", "task") if isinstance(spec.get(k), str))
    return f"{readable}-{stable_hash(spec)}"
