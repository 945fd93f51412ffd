"""One job of the grid, stage by stage: find (or train) the language components (stage 1), find (or train) the
task part (stage 2), evaluate the composed model on every evaluation language with that language's component
swapped in (evaluation), and store the result. Each stage is a function of the `Job` and its own inputs (a
`LangStage`, `TaskStage` or `EvalStage`, read from the run's spec); `run` chains them. Whatever the store already
holds is reused; whether a run is finished is the plan's question (pipeline/plan.py), asked before the job starts."""

from __future__ import annotations

import functools
import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable
from typing import Any

import lightning as L
from torch.utils.data import DataLoader

from softprompt_xl.runtime import cluster, distributed, progress
from softprompt_xl.runtime.atomic import write_jsonl
from softprompt_xl.model.backbone import load_backbone
from softprompt_xl.model.components.compose import ComposedModel
from softprompt_xl.data.corpus import CorpusPosition, CorpusStream, documents, heldout_batches
from softprompt_xl.data.layout import TextLayout
from softprompt_xl.data.objectives import OBJECTIVES, objective_name
from softprompt_xl.data.loaders import fixed_subset, own_generator, prepare_task_split, task_loader
from softprompt_xl.data.tasks import Task, get_task
from softprompt_xl.runtime.divergence import Diverged, DivergenceGuard
from softprompt_xl.errors import UserError
from softprompt_xl.model.component_header import ComponentHeader
from softprompt_xl.model.module import HeldOutScore, ComboModule
from softprompt_xl.pipeline.keys import comparison_spec, key, lang_spec, result_spec, task_spec
from softprompt_xl.runtime.resume import Checkpointing, resume_point
from softprompt_xl.runtime.trainer_settings import trainer_arguments
from softprompt_xl.pipeline.plan import LangComponentJob, not_stored_for_eval, nothing_stored_for_eval
from softprompt_xl.pipeline.records import LangStageResult, Predictions, Result, lang_run_name, run_name
from softprompt_xl.pipeline.run_spec import LangView, RunSpec
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.pipeline.tracking import log_component, log_summary, run_info, stage_logger, use_components

log = logging.getLogger(__name__)


def make_trainer(t: Any, logger: Any, output_dir: Path, max_steps: int, val_every: int | None = None,
                 callbacks: list | None = None, alone: bool = False, name: str = "") -> L.Trainer:
    """A trainer with the settings `t` (conf/trainer: every Lightning Trainer argument it sets,
    runtime/trainer_settings.py) on the configured devices (every process of a multi-process run takes part), or
    with `alone` on this process's one device when the run has several (evaluation, which rank 0 does by itself).
    Its progress (`t.progress`: a bar on a terminal, lines in a file, runtime/progress.py) is named `name`."""
    shown = progress.trainer_options(*progress.settings(t), name)
    given = trainer_arguments(t)
    if alone and distributed.world_size() > 1:
        from lightning.pytorch.plugins.environments import LightningEnvironment

        given.update(devices=1, strategy="auto", num_nodes=1)
        plugins = [LightningEnvironment()]
    else:
        plugins = cluster.lightning_plugins()
    return L.Trainer(
        **given, plugins=plugins, max_steps=max_steps, max_epochs=-1, logger=logger, default_root_dir=output_dir,
        enable_checkpointing=False, enable_model_summary=False,
        num_sanity_val_steps=0, val_check_interval=val_every, check_val_every_n_epoch=None if val_every else 1,
        # The training loader shares each batch out itself (data/loaders.py); every process validates on the
        # whole split, so that all pick the same best step.
        use_distributed_sampler=False, callbacks=[*(callbacks or []), *shown["callbacks"]],
        enable_progress_bar=shown["enable_progress_bar"],
    )


@dataclass(frozen=True)
class Job:
    """What the stages of one job share: where it stores and writes, the backbone, the trainer settings and the
    seed. The stages get this and their own inputs (a `LangStage`, `TaskStage` or `EvalStage`)."""

    store: Store
    output_dir: Path
    backbone: Any  # conf/backbone
    paths: Any  # conf/paths
    trainer: Any  # conf/trainer
    seed: int
    checkpoint_every: int | None

    @classmethod
    def of(cls, run: RunSpec, output_dir: Path) -> Job:
        return cls(Store(run.paths.store), output_dir, run.backbone, run.paths, run.trainer, run.seed,
                   run.checkpoint_every)

    @property
    def datasets_cache(self) -> str:
        return str(Path(self.paths.hf_cache) / "datasets")

    @property
    def layout(self) -> TextLayout:
        """How the backbone's family reads a task example (data/layout.py)."""
        return TextLayout.of(self.backbone)

    def split(self, task: Task, source: Any, split: str, lang: str, tokenizer: Any, max_input_length: int):
        return prepare_task_split(task, source, split, lang, tokenizer, max_input_length, self.datasets_cache,
                                  Path(self.paths.cache) / "tokenized", self.layout)

    def loader(self, split: Any, tokenizer: Any, batch_size: int, **training: Any) -> DataLoader:
        """Batches of a task split for this backbone (data/loaders.py task_loader; `training`: its steps, seed...)."""
        return task_loader(split, tokenizer, batch_size, self.trainer.num_workers, layout=self.layout, **training)


@dataclass(frozen=True)
class LangStage:
    """Stage 1 for one language: the component it trains (`spec`), on which corpus, with which settings."""

    spec: dict
    lang: LangView
    settings: Any  # lang_stage
    corpus: Any  # data.wiki
    eval_batch_size: int  # of the held-out scoring
    track: Callable[..., Any]  # opens the stage's logger: tracking.stage_logger, the run's config as the language's

    @classmethod
    def of(cls, run: RunSpec, code: str) -> LangStage:
        lang = run.langs[code]
        return cls(lang_spec(run, code), lang, lang.lang_stage, lang.corpus, int(run.task_stage.eval_batch_size),
                   functools.partial(stage_logger, run, lang=lang))


@dataclass(frozen=True)
class TaskStage:
    """Stage 2 of a run: what it trains (a task component, the whole backbone, or nothing), on which data."""

    spec: dict
    task: Task
    lang: LangView  # the run's
    settings: Any  # task_stage
    source: Any  # the task's data source (data.task, or data.files as a source)
    part: dict | None  # combo.components.task
    backbone_optimizer: dict | None  # combo.optimizer, when the combo trains the whole backbone (full_ft)
    combo: str  # its name
    eval_only: bool  # stage=eval: a stored component or nothing
    force: bool
    track: Callable[..., Any]

    @classmethod
    def of(cls, run: RunSpec, task: Task) -> TaskStage:
        combo = run.combo
        return cls(task_spec(run), task, run.lang, run.task_stage, run.task_source, combo.task,
                   combo.optimizer if combo.train_backbone else None, combo.name, run.stage == "eval", run.force,
                   functools.partial(stage_logger, run))

    def run_name(self, sep: str = "-") -> str:
        return run_name(self.combo, self.lang.code, self.task.name, sep)

    def tags(self, job: Job) -> list[str]:
        return [self.combo, self.lang.code, self.task.name, job.backbone.id]


@dataclass(frozen=True)
class EvalLanguage:
    """One evaluation language: its test data, and its language component (None: the combo has none)."""

    code: str
    source: Any
    component: Path | None


@dataclass(frozen=True)
class EvalStage:
    """Evaluation of a composed model: the task's test split in each evaluation language, scored by generation with
    that language's component in place of the run's own."""

    task: Task
    langs: tuple[EvalLanguage, ...]
    own_component: Path | None  # the language component the model carries (the run's own), restored after each
    settings: Any  # task_stage: input length, batch size

    @classmethod
    def of(cls, run: RunSpec, task: Task, lang_components: dict[str, Path]) -> EvalStage:
        return cls(task, tuple(EvalLanguage(code, run.langs[code].test_source, lang_components.get(code))
                               for code in run.eval_langs), lang_components.get(run.lang.code), run.task_stage)


@dataclass
class Evaluation:
    """What evaluation gives: the task's metrics and the test predictions by language, and which language component
    scored each language (its store directory's name, None where the combo has none)."""

    metrics: dict[str, dict]
    predictions: Predictions
    components: dict[str, str | None]


def ensure_lang_component(job: Job, stage: LangStage) -> Path:
    """The store directory of the language component `stage` trains, trained now only if it is missing."""
    spec, store = stage.spec, job.store
    path = store.component_dir(key(spec))
    if distributed.agreed(store.has(path)):
        log.info("Language %s for %s: found in the store (%s)", spec["kind"], spec["lang"], path.name)
        return path
    # Parallel jobs needing the same component wait here instead of training it again (the processes of one
    # multi-process run follow their rank 0).
    with store.lock(path) if distributed.is_zero() else nullcontext():
        if distributed.agreed(store.has(path)):
            log.info("Language %s for %s: trained meanwhile by another job (%s)", spec["kind"], spec["lang"], path.name)
            return path
        train_lang_component(job, stage, path)
    return path


def train_lang_component(job: Job, stage: LangStage, path: Path) -> None:
    """Stage 1: the backbone family's objective (T5: span corruption; decoder-only: next-token prediction) on the
    language's corpus, training only the language component."""
    started = time.time()
    spec, lang, settings, store, name = stage.spec, stage.lang, stage.settings, job.store, path.name
    checkpoints = store.checkpoint_dir(name)
    resume_from, start = resume_point(checkpoints)
    objective = objective_name(settings, job.backbone)
    log.info("Stage 1: training the %s language %s by %s (%d steps%s)", lang.name, spec["kind"],
             OBJECTIVES[objective], settings.max_steps, f", resuming at step {start}" if resume_from else "")
    L.seed_everything(job.seed, workers=True, verbose=False)
    model, tokenizer = load_backbone(job.backbone, job.paths)
    net = ComposedModel(model, tokenizer, job.layout.stop)
    component = net.new("lang", lang.code, spec["component"], init_text=lang.prompt_init)
    trainable = net.train_only(["lang"])
    what = f"{lang.name} corpus"
    stream = CorpusStream(documents(stage.corpus, "train", job.datasets_cache, what), tokenizer, settings, job.seed,
                          settings.max_steps, start, distributed.rank(), distributed.world_size(), what, objective)
    # One worker at most: the stream is one sequence (a worker tokenises ahead while the model trains).
    loader = DataLoader(stream, batch_size=None, num_workers=min(int(job.trainer.num_workers), 1),
                        generator=own_generator())
    module = ComboModule(net, trainable, spec["component"]["optimizer"], settings.max_steps)
    stage_name = f"stage 1 (the {lang.name} language {spec['kind']})"
    guard = DivergenceGuard(job.trainer.divergence, "lang", stage_name, "combo.components.lang.optimizer.lr")
    callbacks = [CorpusPosition(stream), guard, Checkpointing(checkpoints, job.checkpoint_every)]
    tags = [spec["kind"], lang.code, job.backbone.id]
    with stage.track("lang", lang_run_name(spec["kind"], lang.code), name, job.output_dir, tags) as logger:
        trainer = make_trainer(job.trainer, logger, job.output_dir, settings.max_steps, callbacks=callbacks,
                               name=stage_name[:1].upper() + stage_name[1:])
        fit(trainer, module, store, name, logger, loader, ckpt_path=resume_from)
        loss = trainer.callback_metrics.get("train/loss")
        if distributed.is_zero():
            heldout = _heldout_scores(job, stage, net, tokenizer, logger)
            log_summary(logger, {f"lang/{k}": v for k, v in heldout.items()})
            store.save_component(path, component, spec, {
                "steps": trainer.global_step, "final_train_loss": None if loss is None else float(loss),
                **heldout, "wall_time_s": round(time.time() - started, 1), "machine": cluster.machine(),
            })
            log_component(logger, path)  # inside the run: the stage that trained it is the artifact's producer
            store.drop_checkpoints(name)
    distributed.barrier()  # the others load it from the store next
    log.info("Stage 1 done in %.0f s: saved %s", time.time() - started, path)


def _heldout_scores(job: Job, stage: LangStage, net: ComposedModel, tokenizer: Any, logger: Any) -> dict:
    """Loss and token accuracy by the stage-1 objective of the trained language component on the corpus's held-out
    documents (`splits.heldout` of the corpus source), at most `lang_stage.heldout_chunks` chunks of them."""
    settings, what = stage.settings, f"{stage.lang.name} corpus"
    docs = documents(stage.corpus, "heldout", job.datasets_cache, what) if settings.heldout_chunks else None
    if docs is None:
        log.info("Stage 1: no held-out score (the corpus source has no splits.heldout, or heldout_chunks is 0)")
        return {}
    started = time.time()
    objective = objective_name(settings, job.backbone)
    batches = heldout_batches(docs, tokenizer, settings, job.seed, int(settings.heldout_chunks), stage.eval_batch_size,
                              objective)
    if not batches:
        log.warning("Stage 1: the held-out documents of the %s fill no chunk; no held-out score", what)
        return {}
    scorer = HeldOutScore(net)
    net.eval()
    make_trainer(job.trainer, logger, job.output_dir, 0, alone=True,
                 name=f"Stage 1 held-out score ({stage.lang.name} corpus)").validate(
        scorer, DataLoader(batches, batch_size=None), verbose=False)
    scores = {**scorer.scores(), "heldout_chunks": sum(len(b["input_ids"]) for b in batches)}
    log.info("Stage 1: held-out %s on %d chunks: loss %.3f (perplexity %.1f), token accuracy %.3f (%.0f s)",
             OBJECTIVES[objective], scores["heldout_chunks"], scores["heldout_loss"], scores["heldout_perplexity"],
             scores["heldout_accuracy"], time.time() - started)
    return scores


def run(spec: RunSpec, output_dir: Path) -> Result | LangStageResult | None:
    """Do the job `spec` describes (checked by pipeline/schema.py and planned by pipeline/plan.py before it started):
    train one language component, or train (or find) and evaluate one (combo, language, task), storing and
    returning its result record (None on the other processes of a multi-process run: rank 0 records)."""
    distributed.start(spec.trainer)
    progress.library_bars(progress.settings(spec.trainer)[0])  # datasets' bars: none in a file (a SLURM log)
    job = Job.of(spec, output_dir)
    if spec.job == LangComponentJob.TYPE:
        return run_lang_stage(spec, job, [spec.lang.code])
    if spec.stage == "lang":
        return run_lang_stage(spec, job, list(spec.eval_langs))
    result_key = key(result_spec(spec))
    started = time.time()
    task = get_task(spec.task)
    if why := not_stored_for_eval(spec, job.store):  # stage=eval: said before a language component is trained
        raise UserError(nothing_stored_for_eval(str(job.store.root), [why]))
    for why in spec.unevaluated:  # e.g. a transfer target with no test set for the task: the result lacks it
        log.info("%s", why)
    # The language components of the run and of its evaluation languages (trained now if missing).
    lang_paths = {code: ensure_lang_component(job, LangStage.of(spec, code)) for code in spec.languages_of_stage_1}
    lang_path = lang_paths.get(spec.lang.code)
    L.seed_everything(job.seed, workers=True, verbose=False)
    model, tokenizer = load_backbone(job.backbone, job.paths)
    net = ComposedModel(model, tokenizer, job.layout.stop)
    if lang_path:
        net.load(lang_path)
    task_stage = TaskStage.of(spec, task)
    trained = train_task_part(job, task_stage, net, lang_path)
    if not distributed.is_zero():  # rank 0 evaluates and stores the result
        return None

    with task_stage.track("eval", f"eval-{task_stage.run_name()}", result_key, output_dir,
                          task_stage.tags(job)) as logger:
        if trained["task_component"]:
            use_components(logger, [job.store.component_dir(trained["task_component"])])
        evaluation = evaluate(job, EvalStage.of(spec, task, lang_paths), net, logger)
        use_components(logger, [job.store.component_dir(k) for k in dict.fromkeys(evaluation.components.values())
                                if k])
        result = Result(
            combo=spec.combo.name, lang=spec.lang.code, task=task.name, backbone=spec.backbone.id, seed=job.seed,
            metrics=evaluation.metrics, eval_langs=list(evaluation.metrics), **trained,
            lang_component=lang_path.name if lang_path else None, **_lang_component_cost(lang_path),
            eval_lang_components=evaluation.components,
            spec=comparison_spec(spec),  # what the report groups by: never averaged with a different setting
            wandb=run_info(logger), wall_time_s=round(time.time() - started, 1), machine=cluster.machine(),
        )
        # The final numbers, and the whole result (so `report source=wandb` reads what the store would hold).
        log_summary(logger, {**{f"test/{lang}/{k}": v for lang, m in evaluation.metrics.items() for k, v in m.items()},
                             "result": json.dumps(result.to_json(), default=str)})
    job.store.save_result(result_key, result, evaluation.predictions)
    return result


def evaluate(job: Job, stage: EvalStage, net: ComposedModel, logger: Any) -> Evaluation:
    """Evaluation: the test split of each evaluation language scored on `net` (composed: backbone, the run's
    language component, the task part), with the language's own component swapped in for the run's; each
    language's predictions are also written to the job directory as they come (predictions_test_<lang>.jsonl)."""
    task, settings, tokenizer = stage.task, stage.settings, net.tokenizer
    module = ComboModule(net, [], None, 0, task)
    done = Evaluation({}, {}, {})
    for lang in stage.langs:
        swapped = lang.component is not None and lang.component != stage.own_component
        if swapped:
            net.remove("lang")
            net.load(lang.component)
        done.components[lang.code] = lang.component.name if lang.component else None
        test = job.split(task, lang.source, "test", lang.code, tokenizer, settings.max_input_length)
        module.test_splits = [test]
        trainer = make_trainer(job.trainer, logger, job.output_dir, 0, alone=True,
                               name=f"Test ({lang.code} {task.name}, {len(test.references)} examples)")
        trainer.test(module, job.loader(test, tokenizer, settings.eval_batch_size), verbose=False)
        done.metrics.update(module.test_metrics)
        predicted = module.test_predictions[lang.code]
        done.predictions[lang.code] = [{"id": i, "prediction": p, "references": r}
                                       for i, p, r in zip(test.ids, predicted, test.references)]
        write_jsonl(job.output_dir / f"predictions_test_{lang.code}.jsonl", done.predictions[lang.code])
        if swapped:
            net.remove("lang")
            net.load(stage.own_component)
    return done


def _lang_component_cost(lang_path: Path | None) -> dict:
    """Size and stage-1 training time of the language component (trained once, shared by many runs)."""
    if lang_path is None:
        return {"lang_component_params": None, "lang_train_time_s": None, "lang_heldout_loss": None,
                "lang_heldout_accuracy": None}
    header = ComponentHeader.read(lang_path)
    meta = header.meta
    return {"lang_component_params": header.num_parameters, "lang_train_time_s": meta.get("wall_time_s"),
            "lang_heldout_loss": meta.get("heldout_loss"), "lang_heldout_accuracy": meta.get("heldout_accuracy")}


def run_lang_stage(spec: RunSpec, job: Job, codes: list[str]) -> LangStageResult:
    """Only language components: a stage-1 job's one, or with stage=lang those a run needs (its evaluation
    languages')."""
    started = time.time()
    paths = [ensure_lang_component(job, LangStage.of(spec, code)) for code in codes] if spec.combo.lang else []
    return LangStageResult(combo=spec.combo.name, lang=spec.lang.code, task=spec.task.name,
                           lang_components=[p.name for p in paths], wall_time_s=round(time.time() - started, 1))


def train_task_part(job: Job, stage: TaskStage, net: ComposedModel, lang_path: Path | None = None) -> dict:
    """Stage 2: attach the task component (trained now, or from the store) or train the whole backbone
    (full_ft) or nothing (zero_shot). Returns what the result records about it."""
    store, task, task_part, lang, settings = job.store, stage.task, stage.part, stage.lang, stage.settings
    task_key = key(stage.spec)
    path = store.component_dir(task_key)
    info = {"task_component": task_key if task_part else None, "trainable_params": {}, "steps": 0,
            "best_step": None, "validation": []}
    # force=true recomputes a stored task component, but not with stage=eval: that re-evaluates it, training nothing
    if task_part and distributed.agreed(store.has(path)) and (not stage.force or stage.eval_only):
        log.info("Task %s for %s %s: found in the store (%s)", task_part["kind"], lang.code, task.name, path.name)
        net.load(path)
        meta = ComponentHeader.read(path).meta
        net.train_only([])
        return {**info, **{k: meta.get(k) for k in ("trainable_params", "steps", "best_step", "validation")},
                "train_time_s": meta.get("wall_time_s")}
    if stage.eval_only and (task_part or stage.backbone_optimizer):
        raise UserError(
            f"stage=eval evaluates a stored task component, but the store ({store.root}) holds none for "
            f"{stage.run_name(' ')} with this configuration (key {task_key})"
            + (" - full_ft does not store its fine-tuned backbone" if stage.backbone_optimizer else "")
            + ". Run the same command without stage=eval to train it first.")
    if task_part:
        component = net.new("task", task.name, task_part, init_text=task.prompt_init(lang.name))
        what, optimizer, trainable = f"the task {task_part['kind']}", task_part["optimizer"], net.train_only(["task"])
        lr_setting = "combo.components.task.optimizer.lr"
    elif stage.backbone_optimizer:
        component, what, optimizer = None, "the whole backbone", stage.backbone_optimizer
        trainable, lr_setting = net.train_only(["backbone"]), "combo.optimizer.lr"
    else:  # zero_shot
        net.train_only([])
        return {**info, "trainable_params": net.parameter_counts()}

    started = time.time()
    tokenizer = net.tokenizer
    checkpoints = store.checkpoint_dir(task_key)
    resume_from, start = resume_point(checkpoints)
    train, whole_val = distributed.zero_first(lambda: tuple(
        job.split(task, stage.source, split, lang.code, tokenizer, settings.max_input_length)
        for split in ("train", "validation")))
    val = fixed_subset(whole_val, settings.val_max_examples)
    if val is not whole_val:
        log.info("Validating on %d of the %d %s %s validation examples (task_stage.val_max_examples; the same ones "
                 "in every run), by %s", len(val.references), len(whole_val.references), lang.code, task.name,
                 settings.val_mode)
    module = ComboModule(net, trainable, optimizer, settings.max_steps, task, val, [], settings.select_best,
                           settings.val_mode)
    stage_name = f"stage 2 ({what} on {lang.name} {task.name})"
    guard = DivergenceGuard(job.trainer.divergence, "task", stage_name, lr_setting)
    callbacks = [guard, Checkpointing(checkpoints, job.checkpoint_every)]
    with stage.track("task", stage.run_name(), task_key, job.output_dir, stage.tags(job)) as logger:
        use_components(logger, [lang_path] if lang_path else [])
        trainer = make_trainer(job.trainer, logger, job.output_dir, settings.max_steps,
                               min(settings.val_every_n_steps, settings.max_steps), callbacks,
                               name=stage_name[:1].upper() + stage_name[1:])
        log.info("Stage 2: training %s on %s %s (%d steps%s)", what, lang.name, task.name, settings.max_steps,
                 f", resuming at step {start}" if resume_from else "")
        fit(trainer, module, store, task_key, logger,
            job.loader(train, tokenizer, settings.batch_size, steps=settings.max_steps, seed=job.seed, start_step=start,
                       group_by_length=settings.get("group_by_length")),
            job.loader(val, tokenizer, settings.eval_batch_size), ckpt_path=resume_from)
        info = {**info, "trainable_params": net.parameter_counts(), "steps": trainer.global_step,
                "best_step": module.best["step"] if module.best else None, "validation": module.val_history,
                "train_time_s": round(time.time() - started, 1)}
        net.train_only([])
        log_summary(logger, {"best_step": info["best_step"], "train_time_s": info["train_time_s"],
                             **{f"trainable_params/{part}": n for part, n in info["trainable_params"].items()}})
        if distributed.is_zero():
            if component is not None:
                meta = {**info, "wall_time_s": info["train_time_s"], "machine": cluster.machine()}
                store.save_component(path, component, stage.spec, meta)
                log_component(logger, path)
            store.drop_checkpoints(task_key)
    distributed.barrier()
    return info


def fit(trainer: L.Trainer, module: ComboModule, store: Store, key: str, logger: Any, *loaders: Any,
        ckpt_path: Path | None) -> None:
    """Train a stage. One whose loss diverged (divergence.py) leaves nothing in the store: no component, and no
    checkpoints either - resumed, they would replay the same steps into the same divergence - so the same command
    (or one with a lower learning rate, which is another key anyway) trains the stage afresh."""
    try:
        trainer.fit(module, *loaders, ckpt_path=ckpt_path)
    except Diverged as err:
        log_summary(logger, {"diverged": err.record})
        if distributed.is_zero():
            store.drop_checkpoints(key)
        raise
