"""One job of the grid, stage by stage: find (or train) the language component, train the task part,
evaluate by generation, and return the result."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import lightning as L

from .atomic import write_jsonl
from .backbone import backbone_identity, load_backbone
from .components.compose import ComposedModel
from .config import to_plain
from .data.loaders import corpus_texts, prepare_task_split, span_corruption_loader, task_loader
from .data.sources import task_source
from .data.tasks import get_task
from .module import Seq2SeqModule
from .store import Store, source_fingerprint
from .tracking import log_summary, stage_logger

log = logging.getLogger(__name__)


def lang_component_spec(cfg: Any) -> dict:
    """Everything that shapes a trained language component; its store key is a hash of this."""
    component = to_plain(cfg.combo.components.lang)
    return {
        "role": "lang",
        "kind": component["kind"],
        "lang": cfg.lang.code,
        "component": component,
        "backbone": backbone_identity(cfg.backbone, cfg.paths),
        "data": source_fingerprint(cfg.data.wiki),
        "stage": to_plain(cfg.lang_stage),
        "seed": cfg.seed,
    }


def make_trainer(cfg: Any, logger: Any, output_dir: Path, max_steps: int, val_every: int | None = None) -> L.Trainer:
    t = cfg.trainer
    return L.Trainer(
        accelerator=t.accelerator, devices=t.devices, precision=t.precision, gradient_clip_val=t.gradient_clip_val,
        max_steps=max_steps, max_epochs=-1, logger=logger, default_root_dir=output_dir,
        log_every_n_steps=t.log_every_n_steps, enable_checkpointing=False, enable_model_summary=False,
        num_sanity_val_steps=0, val_check_interval=val_every, check_val_every_n_epoch=None if val_every else 1,
    )


def ensure_lang_component(cfg: Any, store: Store, output_dir: Path) -> Path:
    """The store directory of the language component this job needs, trained now only if it is missing."""
    spec = lang_component_spec(cfg)
    path = store.component_path(spec)
    if store.has(path):
        log.info("Language %s for %s: found in the store (%s)", spec["kind"], spec["lang"], path.name)
        return path
    with store.lock(path):  # parallel jobs needing the same component wait here instead of training it again
        if store.has(path):
            log.info("Language %s for %s: trained meanwhile by another job (%s)", spec["kind"], spec["lang"], path.name)
            return path
        train_lang_component(cfg, store, spec, path, output_dir)
    return path


def train_lang_component(cfg: Any, store: Store, spec: dict, path: Path, output_dir: Path) -> None:
    """Stage 1: T5 span corruption on the language's corpus, training only the language component."""
    started = time.time()
    stage = cfg.lang_stage
    log.info("Stage 1: training the %s language %s by span corruption (%d steps)", cfg.lang.name, spec["kind"], stage.max_steps)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model, tokenizer = load_backbone(cfg.backbone, cfg.paths)
    net = ComposedModel(model, tokenizer)
    component = net.new("lang", cfg.lang.code, spec["component"], init_text=cfg.lang.prompt_init)
    trainable = net.train_only(["lang"])
    texts = corpus_texts(cfg.data.wiki, cfg.lang.code, _datasets_cache(cfg), stage.max_documents)
    loader = span_corruption_loader(texts, f"{cfg.lang.name} corpus", tokenizer, stage, cfg.seed, cfg.trainer.num_workers)
    module = Seq2SeqModule(net, trainable, spec["component"]["optimizer"], stage.max_steps)
    name = f"lang-{spec['kind']}-{cfg.lang.code}"
    with stage_logger(cfg, "lang", name, output_dir, [spec["kind"], cfg.lang.code]) as logger:
        trainer = make_trainer(cfg, logger, output_dir, stage.max_steps)
        trainer.fit(module, loader)
    loss = trainer.callback_metrics.get("train/loss")
    store.save(path, component, spec, {
        "steps": trainer.global_step, "final_train_loss": None if loss is None else float(loss),
        "wall_time_s": round(time.time() - started, 1), "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    })
    log.info("Stage 1 done in %.0f s: saved %s", time.time() - started, path)


def run(cfg: Any, output_dir: Path) -> dict:
    """Train and evaluate one (combo, language, task); return the result record."""
    started = time.time()
    combo, task = cfg.combo, get_task(cfg.task)
    store = Store(cfg.paths.store)
    lang_path = ensure_lang_component(cfg, store, output_dir) if combo.components.lang else None

    L.seed_everything(cfg.seed, workers=True, verbose=False)
    model, tokenizer = load_backbone(cfg.backbone, cfg.paths)
    net = ComposedModel(model, tokenizer)
    if lang_path:
        net.load(lang_path)
    task_part = to_plain(combo.components.task)
    if task_part:
        net.new("task", task.name, task_part, init_text=task.prompt_init(cfg.lang.name))
        trained, optimizer = f"the task {task_part['kind']}", task_part["optimizer"]
        trainable = net.train_only(["task"])
    elif combo.train_backbone:
        trained, optimizer = "the whole backbone", to_plain(combo.optimizer)
        trainable = net.train_only(["backbone"])
    else:  # zero_shot
        trained, optimizer = None, None
        trainable = net.train_only([])

    stage = cfg.task_stage
    source = task_source(cfg)

    def load(split: str):
        return prepare_task_split(task, source, split, cfg.lang.code, tokenizer, stage.max_input_length,
                                  _datasets_cache(cfg), Path(cfg.paths.cache) / "tokenized")

    test = load("test")
    train, val = (load("train"), load("validation")) if trainable else (None, None)
    module = Seq2SeqModule(net, trainable, optimizer, stage.max_steps, task, val, [test], stage.select_best)
    name = f"{combo.name}-{cfg.lang.code}-{task.name}"
    workers = cfg.trainer.num_workers
    with stage_logger(cfg, "task", name, output_dir, [combo.name, cfg.lang.code, task.name, cfg.backbone.id]) as logger:
        trainer = make_trainer(cfg, logger, output_dir, stage.max_steps, min(stage.val_every_n_steps, stage.max_steps))
        if trainable:
            log.info("Stage 2: training %s on %s %s (%d steps)", trained, cfg.lang.name, task.name, stage.max_steps)
            trainer.fit(module, task_loader(train, tokenizer, stage.batch_size, True, workers),
                        task_loader(val, tokenizer, stage.eval_batch_size, False, workers))
        trainer.test(module, task_loader(test, tokenizer, stage.eval_batch_size, False, workers), verbose=False)
        log_summary(logger, {f"test/{lang}/{k}": v for lang, m in module.test_metrics.items() for k, v in m.items()})
    write_jsonl(output_dir / f"predictions_test_{test.lang}.jsonl", [
        {"id": i, "prediction": p, "references": r}
        for i, p, r in zip(test.ids, module.test_predictions[test.lang], test.references)
    ])

    return {
        "combo": combo.name,
        "lang": cfg.lang.code,
        "task": task.name,
        "backbone": cfg.backbone.id,
        "seed": cfg.seed,
        "metrics": module.test_metrics,
        "trainable_params": net.parameter_counts(),
        "steps": trainer.global_step,
        "best_step": module.best["step"] if module.best else None,
        "validation": module.val_history,
        "lang_component": lang_path.name if lang_path else None,
        "wall_time_s": round(time.time() - started, 1),
        "status": "complete",
    }


def _datasets_cache(cfg: Any) -> str:
    return str(Path(cfg.paths.hf_cache) / "datasets")
