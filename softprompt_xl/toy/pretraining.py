"""Short pre-training of the tiny backbone, once, when it is built: what mT5 + xP3 did for mT0, in miniature.

A randomly initialised backbone gives a soft prompt or an adapter nothing to steer, so on it no component
learns a task and every score is noise. The tiny backbone therefore learns, like mT0:

- T5 span corruption on the bundled Wikipedia-format corpora of all languages (mT5 on mC4), interleaved with
- fresh records of the bundled tasks in all languages (`generate.fresh_records`: drawn like the bundled
  splits, never equal to one of their records), in templates that are deliberately not those of
  `conf/task/` (xP3's prompts are not the paper's either), with the same target words.

The aim is a backbone that has the skills but has never seen the evaluation templates, so the zero-shot
baseline stays low and a component has something to steer. Fresh records rather than the 400 training
records of a split, and no dropout: on the training records the model memorised answers instead of learning
to find them. The `curriculum` phases come first because copying from input to output (NER) and QA and
NLI are learnt only slowly inside the mixture. Validation and test records are never seen here.
"""

from __future__ import annotations

import itertools
import logging
from types import SimpleNamespace

import torch
from torch.utils.data import DataLoader
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from softprompt_xl.config import load_option
from softprompt_xl.data.layout import TextLayout
from softprompt_xl.errors import UserError

log = logging.getLogger(__name__)


def pretrain(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, corpus: list[str], spec: dict,
             langs: list[str], layout: TextLayout = TextLayout()) -> None:
    """Train all of `model`: the `curriculum` phases (if any), then `spec["steps"]` steps interleaving batches of the
    corpus objective (`span_corruption` for the tiny mT5, `next_token` for the tiny decoder: whichever `spec` names)
    and task batches (as the family reads them: data/layout.py)."""
    from transformers import get_linear_schedule_with_warmup

    from softprompt_xl.data.loaders import corpus_loader
    from softprompt_xl.model.family import family_of_model
    from softprompt_xl.runtime import progress

    family = family_of_model(model)
    objective = "next_token" if "next_token" in spec else "span_corruption"
    torch.manual_seed(0)
    model.train()
    total = spec["steps"] + sum(phase["steps"] for phase in spec.get("curriculum") or [])
    # A bar on a terminal, a line every 30 s in a file (runtime/progress.py; the build's own process has the job's stdout)
    with progress.Loop("Pre-training the tiny backbone (once)", total, progress.resolve("auto")) as bar:
        # First the curriculum: some tasks alone, at a constant lr. Copying from the input to the output (what
        # NER needs) appears after a few hundred steps of NER alone, but not within the mixture's budget.
        for phase in spec.get("curriculum") or []:
            batches = _forever(task_loader(tokenizer, {**spec, "tasks": {t: spec["tasks"][t] for t in phase["tasks"]}},
                                           langs, layout, objective))
            optimizer = torch.optim.AdamW(model.parameters(), lr=phase["lr"])
            _train(model, family, batches, optimizer, None, phase["steps"], bar)
        corpus_spec = dict(spec[objective])
        every = int(corpus_spec.pop("every", 2))  # one step in `every` is on the corpus, the others are task steps
        chunks = SimpleNamespace(**corpus_spec, batch_size=spec["batch_size"])
        corrupted = _forever(corpus_loader(corpus, "bundled corpus (all languages)", tokenizer, chunks, seed=0,
                                           objective=objective))
        tasks = _forever(task_loader(tokenizer, spec, langs, layout, objective)) if spec.get("tasks") else corrupted
        mixed = (next(corrupted if step % every == 0 else tasks) for step in itertools.count())
        optimizer = torch.optim.AdamW(model.parameters(), lr=spec["lr"])
        schedule = get_linear_schedule_with_warmup(optimizer, spec["warmup_steps"], spec["steps"])
        loss = _train(model, family, mixed, optimizer, schedule, spec["steps"], bar)
    log.info("Pre-trained the tiny backbone for %d steps (last loss %.3f)", total, loss)


def _train(model, family, batches, optimizer, schedule, steps: int, bar) -> float:
    for _ in range(steps):
        batch = next(batches)
        loss = family.batch_loss(model, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if schedule is not None:
            schedule.step()
        optimizer.zero_grad()
        bar.step(loss.item(), len(batch["input_ids"]))
    return loss.item()


def _forever(loader: DataLoader):
    return (batch for _ in itertools.count() for batch in loader)


def task_loader(tokenizer, spec: dict, langs: list[str], layout: TextLayout = TextLayout(),
                objective: str = "span_corruption") -> DataLoader:
    """Fresh records of the bundled tasks in every language (see generate.fresh_records), each task in its
    pre-training forms: a template string, or a list of forms {template, target (a format string over the
    record; default: the task's own target), labels (default: the task's)} sharing the records in turn."""
    from softprompt_xl.data.loaders import encode_examples, model_text
    from softprompt_xl.data.tasks import get_task
    from softprompt_xl.toy.generate import fresh_records

    examples = []
    for name, forms in spec["tasks"].items():
        forms = [{"template": forms}] if isinstance(forms, str) else list(forms)
        drawn = {lang: fresh_records(name, lang, spec["records_per_task"]) for lang in langs}  # once, for all forms
        for k, form in enumerate(forms):
            task_cfg = load_option("task", name, package=True)  # the package's, as the backbone's name reads them
            if task_cfg is None:
                raise UserError(f"The tiny backbone's pre-training names the task '{name}', which the package has "
                                f"no conf/task/{name}.yaml for (backbone.build.pretrain.tasks).")
            task_cfg.template = form["template"]
            if form.get("labels"):
                task_cfg.labels = list(form["labels"])
            task = get_task(task_cfg)
            for lang in langs:
                records, _, targets = model_text(task, drawn[lang][k::len(forms)])
                if form.get("target"):
                    targets = [form["target"].format(**r) for r in records]
                examples += encode_examples(task, records, targets, tokenizer, spec[objective]["input_length"],
                                            spec["max_target_length"], True, f"pre-training {lang} {name}", layout)
    examples = [{k: v for k, v in e.items() if k != "index"} for e in examples]  # the collator would batch it
    log.info("Pre-training tasks: %d examples from %s", len(examples), ", ".join(spec["tasks"]))
    return DataLoader(examples, batch_size=spec["batch_size"], shuffle=True, collate_fn=layout.collator(tokenizer),
                      generator=torch.Generator().manual_seed(0))
