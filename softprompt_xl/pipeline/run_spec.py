"""One run of the grid, typed: read once from its composed config, after pipeline/schema.py has checked it, and what
the keys, the plan, the stages, tracking and the records read instead of the config.

A run sees several languages: its own, and each language it is evaluated on with that language's own component.
Settings that depend on the language (the corpus's path, the task's test data, a prompt's init text) are resolved
for each of them as if the run had been composed with `lang=<code>` (a `LangView`), here and nowhere else. The parts
that stay nodes of the config (backbone, paths, trainer, logger, task, stage settings) are read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from softprompt_xl.config import load_option, stable_hash, to_plain, unknown_language
from softprompt_xl.data.sources import task_source
from softprompt_xl.errors import UserError
from softprompt_xl.pipeline.records import run_name
from softprompt_xl.pipeline.schema import has_task_data, no_test_set


@dataclass(frozen=True)
class LangView:
    """One language as a run sees it: its conf/lang file and the run's language-dependent settings in it."""

    code: str
    name: str
    conf: Any  # conf/lang/<code>
    corpus: Any  # data.wiki: stage 1's corpus
    lang_stage: Any  # stage 1's settings
    test_source: Any | None  # the task's test data (None: the language has none for the task)

    @property
    def prompt_init(self) -> str | None:
        return self.conf.get("prompt_init")


@dataclass(frozen=True)
class Combo:
    """What a combo trains: a language part (stage 1), a task part or the whole backbone (stage 2), or nothing."""

    name: str
    lang: dict | None  # combo.components.lang (the same component in every language)
    task: dict | None  # combo.components.task
    train_backbone: bool
    optimizer: dict | None  # combo.optimizer (of the whole backbone: full_ft)

    @property
    def trains_task_part(self) -> bool:
        return bool(self.task or self.train_backbone)


@dataclass(frozen=True)
class RunSpec:
    """A run: one (combo, language, task) and everything its jobs read."""

    job: str  # conf/train.yaml `job`: run, or lang_component (stage 1 of a sweep)
    stage: str  # all, lang or eval
    combo: Combo
    lang: LangView  # the run's own language
    langs: dict[str, LangView]  # the run's own language and every evaluation language
    eval_langs: tuple[str, ...]  # in order, the run's own first when it is one of them
    unevaluated: tuple[str, ...]  # why each language left out of eval_langs is left out
    task: Any  # conf/task/<name>
    task_source: Any  # the task's data in the run's own language (data.task, or data.files as a source)
    data_name: str
    data_files: dict | None  # data.files: the run's own files instead of data.task
    task_stage: Any
    backbone: Any
    paths: Any
    trainer: Any
    logger: Any
    seed: int
    force: bool
    checkpoint_every: int | None
    wandb_config: dict  # the whole config, resolved: what a W&B run records as its config

    @classmethod
    def of(cls, cfg: DictConfig) -> RunSpec:
        """The spec of the run `cfg` (composed, and checked by pipeline/schema.py)."""
        plain = to_plain(OmegaConf.masked_copy(cfg, [k for k in cfg if k != "hydra"]) if "hydra" in cfg else cfg)
        parts = plain["combo"].get("components") or {}
        combo = Combo(plain["combo"]["name"], parts.get("lang") or None, parts.get("task") or None,
                      bool(plain["combo"].get("train_backbone", False)), plain["combo"].get("optimizer"))
        candidates = _candidate_langs(cfg.lang.code, plain.get("eval_langs"), plain.get("transfer"), combo)
        evaluated = [code for code in candidates if has_task_data(cfg, code)]
        source = task_source(cfg)  # (data.files: each file's format told once, from its name or its content)
        in_language = LanguageViews(cfg, plain, source)
        langs = {code: in_language.view(code) for code in dict.fromkeys([cfg.lang.code, *evaluated])}
        return cls(
            job=cfg.job, stage=cfg.stage, combo=combo, lang=langs[cfg.lang.code], langs=langs,
            eval_langs=tuple(evaluated),
            unevaluated=tuple(no_test_set(code, cfg.task.name) for code in candidates if code not in evaluated),
            task=_read_only(plain["task"]), task_source=source, data_name=plain["data"]["name"],
            data_files=plain["data"].get("files") or None,
            task_stage=_read_only(plain["task_stage"]), backbone=_read_only(plain["backbone"]),
            paths=_read_only(plain["paths"]), trainer=_read_only(plain["trainer"]), logger=_read_only(plain["logger"]),
            seed=int(cfg.seed), force=bool(cfg.force), checkpoint_every=cfg.checkpoint_every_n_steps, wandb_config=plain,
        )

    def name(self, sep: str = "-") -> str:
        """`<combo>-<lang>-<task>` (pipeline/records.run_name)."""
        return run_name(self.combo.name, self.lang.code, self.task.name, sep)

    @property
    def languages_of_stage_1(self) -> list[str]:
        """The languages whose components the run needs: its own, then its evaluation languages'."""
        return list(self.langs) if self.combo.lang else []


def _read_only(node: Any) -> Any:
    """A part of the run's config, resolved and closed to changes: what a stage reads is what was planned."""
    node = OmegaConf.create(to_plain(node))
    OmegaConf.set_readonly(node, True)
    return node


def _candidate_langs(own: str, chosen: Any, transfer: dict | None, combo: Combo) -> list[str]:
    """`eval_langs` (`chosen`), else the run's own language followed by the transfer targets when the run's language
    is a transfer source (for a combo that trains nothing, the first source only), else the run's own language."""
    if chosen:
        return list(dict.fromkeys([chosen] if isinstance(chosen, str) else chosen))
    sources = (transfer or {}).get("sources") or []
    # A combo that trains nothing (zero_shot) is the same model whatever its language: the targets are scored once,
    # by its run in the first source language, not once per source with the same numbers.
    if own in sources and (combo.trains_task_part or own == sources[0]):
        return list(dict.fromkeys([own, *(transfer.get("targets") or [])]))
    return [own]


# What a language's view cannot depend on: the settings of a run that no language-dependent one interpolates. Runs
# alike in everything else share their views of each language (paper_v2: 24 kinds of run, 168 runs).
RUN_ONLY_SETTINGS = ("combo", "eval_langs", "transfer", "stage", "job", "force", "dry_run", "task_stage", "trainer",
                     "logger", "checkpoint_every_n_steps")
VIEWS: dict[tuple[str, str], LangView] = {}  # (a run's digest, language) -> its view, in this process


class LanguageViews:
    """A run's config resolved in another language: at most one copy of the config per run, its `lang` swapped per
    language (a copy per language was most of a paper_v2 plan's time), and each view once per process for the runs
    that share it. A run's `data.files` belong to its own language, so another language reads its task data from
    `data.task`."""

    def __init__(self, cfg: Any, plain: dict, own_source: Any):
        self.own, self.own_source, self.cfg = cfg, own_source, None  # own_source: the run's task_source
        self.digest = stable_hash({k: v for k, v in plain.items() if k not in RUN_ONLY_SETTINGS})

    def view(self, code: str) -> LangView:
        if (self.digest, code) not in VIEWS:
            if len(VIEWS) > 10_000:
                VIEWS.clear()
            VIEWS[self.digest, code] = self.resolve(code)
        return VIEWS[self.digest, code]

    def resolve(self, code: str) -> LangView:
        own = code == self.own.lang.code
        cfg = self.own if own else self._in_language(code)
        test_source = None if not has_task_data(cfg, code) else self.own_source if own else task_source(cfg, ("test",))
        return LangView(code=code, name=cfg.lang.name, conf=_read_only(cfg.lang), corpus=_read_only(cfg.data.wiki),
                        lang_stage=_read_only(cfg.lang_stage),
                        test_source=_read_only(test_source) if test_source is not None else None)

    def _in_language(self, code: str) -> Any:
        """The run's config (a copy, made once) with `lang` that of `code` and no `data.files`."""
        if self.cfg is None:
            self.cfg = OmegaConf.masked_copy(self.own, [k for k in self.own if k != "hydra"])
            OmegaConf.set_struct(self.cfg, False)
            self.cfg.data.files = None
        lang = load_option("lang", code, copy=False)  # assigned below, which copies it
        if lang is None:
            raise UserError(unknown_language(code))
        self.cfg.lang = lang
        return self.cfg
