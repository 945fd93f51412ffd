"""What a run needs and what identifies it: the specs whose hashes are the store keys.

A spec holds everything that shapes a trained component or a result (backbone, kind, role, language, task,
data source, hyperparameters, seed, and for a task component the key of the language component it was
trained with); the same configuration gives the same key, any change that matters gives a new one.
"""

from __future__ import annotations

from typing import Any

from softprompt_xl.model.backbone import backbone_identity
from softprompt_xl.config import stable_hash, to_plain
from softprompt_xl.errors import UserError
from softprompt_xl.pipeline.run_spec import LangView, RunSpec
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.data.fingerprint import source_fingerprint

# `lang_stage.source=import:NAME`: the language component is one imported into the store
# (`python -m softprompt_xl.store import NAME`), not trained; NAME may hold {language} (the language's name in
# lower case, as the authors name theirs), {code} and {kind}; `import:authors` is the paper's authors' published
# set, for every language and both kinds (quoting braces on a command line is error-prone).
IMPORT_PREFIX = "import:"
AUTHORS = "ivykopal/{language}_{kind}_100k"


def lang_spec(run: RunSpec, code: str | None = None) -> dict | None:
    """Spec of the language component the combo needs for language `code` (default: the run's); None if none."""
    lang, component = run.langs[code or run.lang.code], run.combo.lang
    if not component:
        return None
    if lang.lang_stage.get("source"):
        return _imported_lang_spec(run, lang, lang.lang_stage.source)
    # How much held-out text scores it does not change what is trained.
    stage = {k: v for k, v in _stage_settings(lang.lang_stage).items() if k != "heldout_chunks"}
    return {**_lang_component(lang.code, component, run.backbone, run.paths),
            "data": source_fingerprint(lang.corpus), "stage": stage, "seed": run.seed}


def imported_spec(code: str, component: dict, backbone: Any, paths: Any, source: str, layout: str,
                  sha256: str) -> dict:
    """Spec of a language component imported from `source` (a Hub name or a directory) for language `code` and the
    backbone: what it is and where its weights came from (their digest), instead of how it was trained."""
    return {**_lang_component(code, component, backbone, paths),
            "imported": {"source": source, "layout": layout, "sha256": sha256}}


def _lang_component(code: str, component: dict, backbone: Any, paths: Any) -> dict:
    """What any language component's spec starts with, trained or imported."""
    return {"role": "lang", "kind": component["kind"], "lang": code, "component": component,
            "backbone": backbone_identity(backbone, paths)}


def import_source(lang: Any, kind: str, setting: str) -> str:
    """The name `lang_stage.source` gives the language component of language `lang` (its conf/lang node)."""
    if not setting.startswith(IMPORT_PREFIX):
        raise UserError(f"lang_stage.source={setting} is not understood: it is null (train the language component) or "
                        f"{IMPORT_PREFIX}NAME, NAME a component imported with `python -m softprompt_xl.store import "
                        "NAME`, e.g. lang_stage.source=import:ivykopal/slovak_prompt_100k, or import:authors for the "
                        f"authors' published components of every language ({AUTHORS}).")
    name = setting[len(IMPORT_PREFIX):]
    return (AUTHORS if name == "authors" else name).format(language=lang.name.lower(), code=lang.code, kind=kind)


def _imported_lang_spec(run: RunSpec, lang: LangView, setting: str) -> dict:
    kind = run.combo.lang["kind"]
    source = import_source(lang, kind, setting)
    store = Store(run.paths.store)
    spec = store.find_imported(source, lang.code, backbone_identity(run.backbone, run.paths))
    if spec is None:
        raise UserError(
            f"The {lang.name} language {kind} is to be the imported {source} (lang_stage.source), but the store "
            f"{store.root} holds no import of it for {lang.code} on this backbone. Import it first: `python -m "
            f"softprompt_xl.store import {source} lang={lang.code} backbone={run.backbone.id} "
            f"paths.root={run.paths.root}` (or drop lang_stage.source to train one).")
    if spec["kind"] != kind:
        raise UserError(f"The imported {source} is a {spec['kind']}, but the combo's language part is a {kind}: choose "
                        f"a combo with a language {spec['kind']}, or import a {kind}.")
    return spec


def task_spec(run: RunSpec) -> dict:
    """Spec of what stage 2 trains (a task component, the whole backbone, or nothing for zero_shot)."""
    lang = lang_spec(run)
    return {
        "role": "task",
        "combo": run.combo.name,
        "kind": (run.combo.task or {}).get("kind"),
        "component": run.combo.task,
        "train_backbone": run.combo.train_backbone,
        "optimizer": run.combo.optimizer,
        "lang": run.lang.code,
        "task": run.task.name,
        "task_config": to_plain(run.task),
        "lang_component": key(lang) if lang else None,
        "backbone": backbone_identity(run.backbone, run.paths),
        "data": source_fingerprint(run.task_source),
        "stage": _stage_settings(run.task_stage),
        "seed": run.seed,
    }


# Stage settings added after keys were in use: in a key only when set, so the components and results trained
# before they existed keep their keys (unset, they change nothing). lang_stage.source, when set, makes the spec
# an imported one (imported_spec) instead.
LATER_STAGE_SETTINGS = ("group_by_length", "source", "objective")


def _stage_settings(stage: Any) -> dict:
    settings = to_plain(stage)
    return {k: v for k, v in settings.items() if not (k in LATER_STAGE_SETTINGS and v is None)}


def result_spec(run: RunSpec) -> dict:
    """Spec of a run's result: what was trained, and the languages it was evaluated on with which components."""
    return {
        "role": "result",
        "combo": run.combo.name,
        "lang": run.lang.code,
        "task": run.task.name,
        "trained": key(task_spec(run)),
        "eval": {code: (key(spec) if (spec := lang_spec(run, code)) else None) for code in run.eval_langs},
        "max_answer_length": run.task.max_answer_length,
    }


def comparison_spec(run: RunSpec) -> dict:
    """What runs must share for their numbers to be averaged or set side by side, in two parts: `shared` by every
    configuration of one comparison (backbone, data, task, task-stage budget) and `combo`, what makes one
    configuration (its components, their hyperparameters, the language stage). The language, the seed and the
    evaluation languages are left out: they are a table's columns, what is averaged over, and a transfer
    matrix's columns. Recorded in each result; the report groups by it (softprompt_xl/report/)."""
    task, lang = task_spec(run), lang_spec(run)
    # The data choice, not each language's files: those differ along a table's columns by design. Files a run
    # brings itself (data.files) are other data, so their content counts.
    data = {"name": run.data_name}
    if run.data_files:
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
