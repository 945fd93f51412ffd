"""Short pre-training of the tiny backbone, once, when it is built: what mT5 + xP3 did for mT0, in miniature.

A randomly initialised backbone gives a soft prompt or an adapter nothing to steer, so on it no component
learns a task and every score is noise. The tiny backbone therefore learns, like mT0:

- T5 span corruption on the bundled Wikipedia-format corpora of all languages (mT5 on mC4), interleaved with
- the bundled tasks' *train* splits in all languages, in templates that are deliberately not those of
  `conf/task/` (xP3's prompts are not the paper's either), with the same target words.

The aim is a backbone that has the skills but has never seen the evaluation templates, so the zero-shot
baseline stays low and a component has something to steer. The mixture alone taught check-worthiness and
the output formats, but not copying from input to output, which NER alone learns in ~600 steps: hence the
`curriculum` phases before it. Measured on the default: components beat zero-shot far on check-worthiness
and NER; QA (which also needs binding a question to the right person's fact) is not learnt yet.
Validation and test splits are never read here.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from types import SimpleNamespace

import datasets
import torch
from omegaconf import OmegaConf
from torch.utils.data import DataLoader
from transformers import DataCollatorForSeq2Seq, PreTrainedModel, PreTrainedTokenizerBase

from .config import CONF_DIR

log = logging.getLogger(__name__)


def pretrain(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, corpus: list[str], spec: dict,
             toy_data: Path, langs: list[str], cache_dir: str) -> None:
    """Train all of `model`: the `curriculum` phases (if any), then `spec["steps"]` steps interleaving
    span-corruption and task batches."""
    from tqdm.auto import tqdm
    from transformers import get_linear_schedule_with_warmup

    from .data.loaders import span_corruption_loader

    torch.manual_seed(0)
    model.train()
    total = spec["steps"] + sum(phase["steps"] for phase in spec.get("curriculum") or [])
    with tqdm(total=total, desc="Pre-training the tiny backbone (once)") as bar:
        # First the curriculum: single tasks alone, at a constant lr. Copying from the input to the output (what
        # NER needs) appears after a few hundred steps of NER alone, but not within the mixture's budget.
        for phase in spec.get("curriculum") or []:
            batches = _forever(_task_loader(tokenizer, {**spec, "tasks": {t: spec["tasks"][t] for t in phase["tasks"]}},
                                            toy_data, langs, cache_dir))
            optimizer = torch.optim.AdamW(model.parameters(), lr=phase["lr"])
            _train(model, batches, optimizer, None, phase["steps"], bar)
        span_spec = dict(spec["span_corruption"])
        every = int(span_spec.pop("every", 2))  # one step in `every` is span corruption, the others are task steps
        span = SimpleNamespace(**span_spec, batch_size=spec["batch_size"])
        corrupted = _forever(span_corruption_loader(corpus, "bundled corpus (all languages)", tokenizer, span, seed=0))
        tasks = _forever(_task_loader(tokenizer, spec, toy_data, langs, cache_dir)) if spec.get("tasks") else corrupted
        mixed = (next(corrupted if step % every == 0 else tasks) for step in itertools.count())
        optimizer = torch.optim.AdamW(model.parameters(), lr=spec["lr"])
        schedule = get_linear_schedule_with_warmup(optimizer, spec["warmup_steps"], spec["steps"])
        loss = _train(model, mixed, optimizer, schedule, spec["steps"], bar)
    log.info("Pre-trained the tiny backbone for %d steps (last loss %.3f)", total, loss)


def _train(model, batches, optimizer, schedule, steps: int, bar) -> float:
    for _ in range(steps):
        loss = model(**next(batches)).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        optimizer.zero_grad()
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return loss.item()


def _forever(loader: DataLoader):
    return (batch for _ in itertools.count() for batch in loader)


def task_pairs(templates: dict[str, str | None], toy_data: Path, langs: list[str], cache_dir: str) -> tuple[list[str], list[str]]:
    """(inputs, targets) of the bundled train splits of the named tasks in every language; a task's template
    is replaced by the one given (None keeps the template of conf/task/)."""
    from .data.sources import load_split
    from .data.tasks import get_task

    sources, targets = [], []
    datasets.disable_progress_bars()  # two dozen tiny files: their bars would bury the one that matters
    try:
        for name, template in templates.items():
            task_cfg = OmegaConf.load(CONF_DIR / "task" / f"{name}.yaml")
            if template is not None:
                task_cfg.template = template
            task = get_task(task_cfg)
            for lang in langs:
                path = toy_data / lang / name / f"train.{task_cfg.toy.ext}"
                source = {"path": task_cfg.toy.builder, "data_files": {"train": str(path)}}
                records = [r for r in load_split(source, "train", cache_dir, f"{lang} {name}") if task.usable(r)]
                sources += [task.source(r) for r in records]
                targets += [task.target(r) for r in records]
    finally:
        datasets.enable_progress_bars()
    return sources, targets


def _task_loader(tokenizer, spec: dict, toy_data: Path, langs: list[str], cache_dir: str) -> DataLoader:
    """The train splits of the bundled tasks in every language, each task in its pre-training template."""
    sources, targets = task_pairs(spec["tasks"], toy_data, langs, cache_dir)
    encoded = tokenizer(sources, max_length=spec["span_corruption"]["input_length"], truncation=True)
    labels = tokenizer(text_target=targets, max_length=spec["max_target_length"], truncation=True)["input_ids"]
    examples = [{"input_ids": i, "attention_mask": m, "labels": t}
                for i, m, t in zip(encoded["input_ids"], encoded["attention_mask"], labels)]
    log.info("Pre-training tasks: %d examples from %s", len(examples), ", ".join(spec["tasks"]))
    collate = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=-100, return_tensors="pt")
    return DataLoader(examples, batch_size=spec["batch_size"], shuffle=True, collate_fn=collate,
                      generator=torch.Generator().manual_seed(0))
