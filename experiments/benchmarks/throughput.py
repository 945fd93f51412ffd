"""Training and generation throughput of the framework against a bare PyTorch loop and the reference pipeline.

    python experiments/benchmarks/throughput.py [--backbones tiny,mt5-small,tiny_decoder]
        [--tasks qa,ner,nli,checkworthy]
        [--kinds prompt,adapter,lora] [--repeats 3] [--lengths TASK=FILE ...] [--group-by-length N] [--json FILE]

For each backbone, the same composed model (a language prompt + a task component, as the `lp_*` combos) trains
on the same batches, in this one process, three ways, interleaved (the order rotates every repeat) and repeated:

- **framework**: the package's own path - `data.loaders.task_loader` (or stage 1's `CorpusStream`),
  `model.module.ComboModule`, `study.stages.make_trainer` with `conf/trainer` settings, the divergence guard and
  checkpointing callbacks of a run, and the logger of `--logger` (default `none`: a run's default is W&B offline);
- **bare**: a plain PyTorch loop on the same model, loader, optimiser and schedule (`configure_optimizers`):
  forward, backward, step - the limit for framework overhead;
- **reference**: the reference pipeline's settings - inputs padded (and truncated) to 256 tokens and labels to 30
  (the tokenizer's truncation: the final </s> kept), fp32, `transformers.Seq2SeqTrainer` (no evaluation, no
  saving, report_to none, its default gradient clipping at 1.0) with the framework's optimiser and schedule passed
  in (`optimizers=`), the same examples in the same order (a sequential sampler).

A decoder-only backbone (model/family.py's causal family: `tiny_decoder`, `qwen2.5-0.5b`, `gemma3-270m`) trains the
same three ways, each as that family is trained:

- **framework**: the same path, with the backbone's `TextLayout` (inputs padded on the left, targets on the right)
  and the causal family's loss (`[prompts ; input ; target]`, the logits of the target positions only);
- **bare**: the plain way to train a causal LM, in a PyTorch loop on the same examples in the same batches, with
  the same optimiser and schedule: each input and its target joined into one sequence, padded on the right, labels
  -100 on the input and the padding, and the model's own loss (`AutoModelForCausalLM(inputs_embeds, attention_mask,
  labels)`: every position's logits, shifted by one). The same loss as the framework's, so fw/bare is the
  framework's overhead less what its loss saves;
- **reference**: those joined sequences padded (and truncated) to 256 + 30 tokens (an input to 256, its target to
  30), fp32, `transformers.Trainer` with the same settings as the seq2seq reference's.

Stages: `span` (stage 1: the language prompt trained by the backbone's stage-1 objective on the toy corpus of
`--lang` - span corruption on T5, next-token prediction on a decoder-only backbone, whose rows say `next_token`)
and `task` (stage 2: the task component of each `--kinds` trained with the language prompt frozen, on each task's
train split). Evaluation by generation: examples/s of greedy decoding of the test split (`--eval-examples`
records of it, the framework's `fixed_subset`) at the task's answer length, through the framework's path
(`trainer.test` of the module: the teacher-forced loss, `generate_scored`, decoding and scoring) and through a
bare `backbone.generate` on the same batches. Every backbone has random weights (the tiny ones are built with
`backbone.build.pretrain.steps=0`), so generation runs to the full answer length.

Backbones: `tiny` (the embedded default's shape and tokenizer), `mt5-small` and `mt0-base`, built with random
weights from the published architecture in conf/backbone/<group>.yaml (`architecture`); the texts are tokenised by
the tiny tokenizer (its ids are valid in the larger vocabulary). Decoder-only: `tiny_decoder` (the embedded
decoder's shape and tokenizer), `qwen2.5-0.5b` and `gemma3-270m` (their published architectures, tokenised by the
tiny decoder's tokenizer, whose pad and EOS ids the model's config is given). A big shape uses its conf/backbone
settings (prompt length 50, inputs 256).

Columns. Measured time: from the end of the last warm-up step to the end of the last step (a CUDA synchronise at
both), so set-up costs (building the Trainer, the first step) are not counted. examples/s = examples trained per
second; tokens/s = their real input + target tokens (no padding, no virtual prompt tokens) per second - the same
tokens in every way, so the ratios of tokens/s equal those of examples/s. Each figure is the median of the repeats,
with min-max after it. fw/bare and fw/ref are ratios of the medians.

With --bf16 (the default on CUDA; on CPU it asks for it, and pays off where the CPU has bf16 matrix units, e.g.
AMX), a second table: the framework and the bare loop in bf16-mixed against fp32, peak memory
(`torch.cuda.max_memory_allocated`; "-" on CPU) and model FLOP utilisation:
    MFU = 6 * (N_enc * T_enc + N_dec * T_dec) / seconds / peak FLOP/s
with N_enc, N_dec the encoder's and decoder's parameters (components included; the embedding table, a lookup,
excluded, the untied output layer counted with the decoder), T_enc the encoder tokens (real tokens plus virtual
prompt tokens) and T_dec the target tokens; a decoder-only backbone's is 6 * N * (T_in + T_target), N all its
parameters but the embedding table (an untied output layer included), T_in the input tokens with the virtual ones.
6N per token is the usual forward + backward count; with a frozen backbone the weight gradients are not computed
(about 4N), so this MFU is the work a full fine-tune would do in the same time, an upper bound on the work actually
done. --peak-tflops (default 989: H100/H200 dense bf16) is used
for both precisions.

`--lengths TASK=FILE` trains TASK on examples of a real dataset's lengths instead of the toy data's: FILE has one
example per line, either JSON Lines `{"input": 212, "target": 9}` or CSV with a header `input,target`, in tokens
of the backbone's tokenizer (</s> included). Each example gets random ordinary token ids of those lengths.
Evaluation uses the same examples (their first `--eval-examples`).

Defaults keep a run under 10 minutes on 2 CPU cores: on CPU the tiny backbones run every stage, task and kind
(batch 16, 8 steps of which 2 warm-up, the reference 4) and the mT5-small shape the adapter on every task (batch
4, 2 steps of which 1 warm-up, 8 evaluation examples; a big decoder shape likewise); on CUDA every shape runs
everything at its configured batch size, 8 steps. Measured: 548 s on 2 shared CPU cores, one torch thread, before the tiny decoder's rows joined
the defaults.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import importlib.util
import json
import logging
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_module
from torch.utils.data import DataLoader, SequentialSampler
from transformers import (AutoConfig, AutoModelForCausalLM, MT5Config, MT5ForConditionalGeneration, Seq2SeqTrainer,
                          Seq2SeqTrainingArguments, Trainer, TrainerCallback, default_data_collator)

from softprompt_xl.config import CONF_MODULE, register_resolvers, to_plain
from softprompt_xl.data.corpus import CorpusPosition, CorpusStream, documents
from softprompt_xl.data.layout import TextLayout
from softprompt_xl.data.loaders import TaskSplit, fixed_subset, own_generator, task_loader
from softprompt_xl.data.objectives import objective_name
from softprompt_xl.data.tasks import get_task
from softprompt_xl.model.backbone import load_backbone
from softprompt_xl.model.components.adapter import init_adapters
from softprompt_xl.model.components.compose import ComposedModel
from softprompt_xl.model.module import ComboModule
from softprompt_xl.runtime.divergence import DivergenceGuard
from softprompt_xl.runtime.resume import Checkpointing
from softprompt_xl.pipeline.stages import Job, make_trainer
from softprompt_xl.pipeline.tracking import stage_logger
from softprompt_xl.pipeline.run_spec import RunSpec

REFERENCE_INPUT, REFERENCE_LABELS = 256, 30
UNCUT = 10**9  # joined() without cutting
# The backbone config groups whose shapes are measured: conf/backbone/<group>.yaml holds the published
# architecture (MT5Config fields; a decoder-only model's config.json fields with its model_type) and the run settings.
SHAPES = {"tiny": "tiny", "mt5-small": "mt5_small", "mt0-base": "mt0_base",
          "tiny_decoder": "tiny_decoder", "qwen2.5-0.5b": "qwen2_5_0_5b", "gemma3-270m": "gemma3_270m"}
TINY = {"tiny", "tiny_decoder"}  # built locally (random weights); their tokenizers serve the big shapes of their family
COMBO = {"prompt": "lp_tp", "adapter": "lp_ta", "lora": "lp_tl"}
TASKS = ("qa", "ner", "nli", "checkworthy")
WAYS = ("framework", "bare", "reference")
# transformers' Trainer needs accelerate, which the package does not: `pip install -e '.[bench]'`.
HAVE_ACCELERATE = importlib.util.find_spec("accelerate") is not None


# --- measurement --------------------------------------------------------------------------------------------
def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


@dataclass
class Clock:
    """End times of the steps of one measurement."""
    device: torch.device
    ends: list[float] = field(default_factory=list)

    def tick(self) -> None:
        sync(self.device)
        self.ends.append(time.perf_counter())

    def seconds(self, warmup: int) -> float:
        return self.ends[-1] - self.ends[warmup - 1]


class LightningClock(L.Callback):
    def __init__(self, clock: Clock):
        self.clock = clock

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.clock.tick()


class HFClock(TrainerCallback):
    def __init__(self, clock: Clock):
        self.clock = clock

    def on_step_end(self, args, state, control, **kwargs):
        self.clock.tick()


@dataclass
class Figures:
    """Repeated measurements of one way: examples/s and tokens/s, peak memory, FLOP/s."""
    examples_per_s: list[float] = field(default_factory=list)
    tokens_per_s: list[float] = field(default_factory=list)
    flops_per_s: list[float] = field(default_factory=list)
    peak_bytes: list[int] = field(default_factory=list)

    def add(self, examples: int, tokens: int, flops: float, seconds: float, peak: int | None) -> None:
        self.examples_per_s.append(examples / seconds)
        self.tokens_per_s.append(tokens / seconds)
        self.flops_per_s.append(flops / seconds)
        if peak is not None:
            self.peak_bytes.append(peak)

    def median(self, what: str = "examples_per_s") -> float:
        values = getattr(self, what)
        return statistics.median(values) if values else float("nan")

    def summary(self) -> dict:
        return {k: {"median": self.median(k), "min": min(v), "max": max(v), "all": v}
                for k, v in vars(self).items() if v}


@contextlib.contextmanager
def peak_memory(device: torch.device):
    found: list[int | None] = [None]
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    yield found
    if device.type == "cuda":
        found[0] = torch.cuda.max_memory_allocated()


# --- the model and the data ---------------------------------------------------------------------------------
def compose_cfg(group: str, kind: str, task: str, args, root: str, precision: str) -> object:
    overrides = [f"+combo={COMBO[kind]}", f"backbone={group}", f"task={task}", f"lang={args.lang}",
                 f"paths.root={root}", f"logger={args.logger}", f"trainer.precision={precision}",
                 f"trainer.accelerator={'gpu' if args.device.type == 'cuda' else 'cpu'}"]
    if args.cache:
        overrides.append(f"paths.cache={args.cache}")
    if group in TINY:
        overrides.append("backbone.build.pretrain.steps=0")  # random weights, as the big shapes: built in seconds
    with initialize_config_module(CONF_MODULE, version_base="1.3"):
        return compose("train", overrides=overrides)


class Backbone:
    """One backbone's frozen weights, built once and copied into every composed model (weights do not move)."""

    def __init__(self, name: str, args, root: str):
        self.name, self.group = name, SHAPES[name]
        cfg = compose_cfg(self.group, "adapter", "qa", args, root, "32-true").backbone
        self.causal = cfg.get("family") == "causal"
        self.layout = TextLayout.of(cfg)
        tiny = "tiny_decoder" if self.causal else "tiny"
        tiny_cfg = compose_cfg(tiny, "adapter", "qa", args, root, "32-true")
        tiny_model, self.tokenizer = load_backbone(tiny_cfg.backbone, tiny_cfg.paths)
        if self.group in TINY:
            self.model = tiny_model
        elif self.causal:
            shape = to_plain(cfg.architecture)
            fields = {k: v for k, v in shape.items() if k != "model_type"}
            # Generation pads with the tokenizer's pad and stops at its EOS: the model's config says the same ids.
            ids = {"pad_token_id": self.tokenizer.pad_token_id, "eos_token_id": self.tokenizer.eos_token_id,
                   "bos_token_id": self.tokenizer.eos_token_id}
            torch.manual_seed(0)
            config = AutoConfig.for_model(shape["model_type"], **{**fields, **ids})
            self.model = AutoModelForCausalLM.from_config(config).float().train()
            init_adapters(self.model, to_plain(cfg.get("adapters_interface")))  # as load_backbone does
        else:
            shape = to_plain(cfg.architecture)
            torch.manual_seed(0)
            self.model = MT5ForConditionalGeneration(MT5Config(**shape)).float().train()
            # As the tiny build does: HF's std-1 untied output layer starts at a loss near 100, not ln(vocab).
            self.model.lm_head.weight.data.normal_(0.0, shape["d_model"] ** -0.5)
        self.model.requires_grad_(False)

    def composed(self, cfg, kind: str | None, task) -> tuple[ComposedModel, list]:
        """[language prompt ; task component of `kind`] on a copy of the backbone's modules sharing its weights;
        `kind` None: stage 1's model (the language prompt alone, trained)."""
        net = ComposedModel(copy.deepcopy(self.model), self.tokenizer)  # components change the modules they join
        net.new("lang", cfg.lang.code, to_plain(cfg.combo.components.lang), init_text=cfg.lang.prompt_init)
        if kind is None:
            return net, net.train_only(["lang"])
        net.new("task", task.name, to_plain(cfg.combo.components.task), init_text=task.prompt_init(cfg.lang.name))
        return net, net.train_only(["task"])


def read_lengths(path: Path) -> list[tuple[int, int]]:
    text = path.read_text(encoding="utf-8").strip().splitlines()
    if not text:
        raise SystemExit(f"--lengths {path}: the file is empty; give one example per line (see --help).")
    try:
        if text[0].lstrip().startswith("{"):
            rows = [json.loads(line) for line in text if line.strip()]
        else:
            rows = list(csv.DictReader(text))
        return [(int(r["input"]), int(r["target"])) for r in rows]
    except (KeyError, ValueError, json.JSONDecodeError) as err:
        raise SystemExit(f"--lengths {path}: each line must be JSON {{\"input\": N, \"target\": M}} or CSV with a "
                         f"header input,target (token counts, </s> included); could not read it: {err}") from None


def synthetic_split(lengths: list[tuple[int, int]], tokenizer, lang: str, max_input: int, max_target: int,
                    layout: TextLayout = TextLayout()) -> TaskSplit:
    """Examples of the given lengths (cut as the framework cuts them) with random ordinary token ids; an input ends
    with </s> as T5's tokenizer writes it, a decoder's input runs on into its target (`layout`)."""
    g = torch.Generator().manual_seed(0)
    low, high = 3, len(tokenizer) - 200  # past pad, </s>, <unk>; below the sentinels
    examples = []
    for i, (n_in, n_out) in enumerate(lengths):
        n_in, n_out = max(1, min(n_in, max_input)), max(1, min(n_out, max_target))
        ids = torch.randint(low, high, (n_in + n_out,), generator=g).tolist()
        inputs = ids[:n_in] if layout.continuation else ids[:n_in - 1] + [tokenizer.eos_token_id]
        labels = ids[n_in:n_in + n_out - 1] + [tokenizer.eos_token_id]
        examples.append({"input_ids": inputs, "attention_mask": [1] * n_in, "labels": labels, "index": i})
    return TaskSplit(examples, [None] * len(examples), lang, list(range(len(examples))))


def fit(ids: list[int], m: int, fill: int | None = None) -> list[int]:
    """`ids` cut to `m` as the tokenizer's truncation cuts (the last token kept), then padded to `m` with `fill`."""
    ids = ids if len(ids) <= m else ids[:m - 1] + ids[-1:]
    return ids if fill is None else ids + [fill] * (m - len(ids))


def reference_rows(examples: list[dict], pad: int, labels_to: int = REFERENCE_LABELS) -> list[dict]:
    """The reference pipeline's inputs: padded to 256 and labels to 30 (truncated keeping the final </s>)."""
    return [{"input_ids": torch.tensor(fit(e["input_ids"], REFERENCE_INPUT, pad)),
             "attention_mask": torch.tensor(fit([1] * len(e["input_ids"]), REFERENCE_INPUT, 0)),
             "labels": torch.tensor(fit(e["labels"], labels_to, -100))} for e in examples]


def joined(examples: list[dict], pad: int, width: int | None = None, input_to: int = REFERENCE_INPUT,
           labels_to: int = REFERENCE_LABELS) -> dict[str, torch.Tensor]:
    """A decoder-only model's batch as it is usually made: each input and its target (cut to `input_to` and
    `labels_to`) joined into one sequence, padded on the right to `width` (default: the longest), labels -100 on the
    input and the padding."""
    rows = [(fit(e["input_ids"], input_to), fit(e["labels"], labels_to)) for e in examples]
    width = width or max(len(i) + len(t) for i, t in rows)
    gaps = [width - len(i) - len(t) for i, t in rows]
    return {"input_ids": torch.tensor([i + t + [pad] * gap for (i, t), gap in zip(rows, gaps)]),
            "attention_mask": torch.tensor([[1] * (len(i) + len(t)) + [0] * gap for (i, t), gap in zip(rows, gaps)]),
            "labels": torch.tensor([[-100] * len(i) + t + [-100] * gap for (i, t), gap in zip(rows, gaps)])}


def reference_joined_rows(examples: list[dict], pad: int, labels_to: int = REFERENCE_LABELS) -> list[dict]:
    """The reference pipeline's decoder-only rows: joined sequences padded to 256 + 30 (`labels_to`)."""
    batch = joined(examples, pad, REFERENCE_INPUT + labels_to, labels_to=labels_to)
    return [{k: v[i] for k, v in batch.items()} for i in range(len(examples))]


def unpadded(batch: dict) -> list[dict]:
    """A collated batch's examples without their padding (on whichever side it is): input ids where the mask is 1,
    labels that are not -100."""
    return [{"input_ids": batch["input_ids"][i][batch["attention_mask"][i].bool()].tolist(),
             "labels": [t for t in batch["labels"][i].tolist() if t != -100]} for i in range(len(batch["input_ids"]))]


class JoinedCausalLM(torch.nn.Module):
    """The composed model trained the plain way on joined batches (`joined`): prompts before the sequence's
    embeddings, the backbone's own loss (every position's logits, shifted by one) on the target tokens. The bare
    loop and the reference of a decoder-only backbone train through it."""

    def __init__(self, net: ComposedModel):
        super().__init__()
        self.net = net

    def forward(self, input_ids, attention_mask, labels):
        embeds, mask = self.net.embed(input_ids, attention_mask)
        virtual = embeds.shape[1] - input_ids.shape[1]
        labels = torch.cat([labels.new_full((labels.shape[0], virtual), -100), labels], dim=1)
        return self.net.backbone(inputs_embeds=embeds, attention_mask=mask, labels=labels)


def real_tokens(batch: dict) -> int:
    return int(batch["attention_mask"].sum()) + int((batch["labels"] != -100).sum())


def flops(net: ComposedModel, batch: dict) -> float:
    """6 * (N_enc * T_enc + N_dec * T_dec), or 6 * N * T for a decoder-only backbone: see the module docstring."""
    virtual = sum(p.shape[1] for c in net.ordered() if (p := c.input_prefix(1)) is not None)
    if not net.backbone.config.is_encoder_decoder:
        # parameters() holds a tied output layer once (as the embedding table, left out) and an untied one apart
        n = sum(p.numel() for p in net.backbone.parameters()) - net.backbone.get_input_embeddings().weight.numel()
        tokens = real_tokens(batch) + virtual * batch["input_ids"].shape[0]
        return 6.0 * n * tokens
    enc = sum(p.numel() for p in net.backbone.encoder.parameters()) - net.backbone.shared.weight.numel()
    dec = (sum(p.numel() for p in net.backbone.decoder.parameters()) - net.backbone.shared.weight.numel()
           + (0 if net.backbone.config.tie_word_embeddings else net.backbone.lm_head.weight.numel()))
    # Adapters and LoRA sit inside the encoder and decoder (counted above); a prompt adds tokens, not weights.
    t_enc = int(batch["attention_mask"].sum()) + virtual * batch["input_ids"].shape[0]
    t_dec = int((batch["labels"] != -100).sum())
    return 6.0 * (enc * t_enc + dec * t_dec)


# --- one row: a stage of one backbone, trained three ways ---------------------------------------------------
@dataclass
class Row:
    backbone: str
    stage: str  # span | task
    task: str  # the task, or the corpus's language for span corruption
    kind: str  # the trained component's kind
    batch: int
    ways: dict[str, Figures] = field(default_factory=dict)
    generation: dict[str, Figures] = field(default_factory=dict)
    answer_tokens: int = 0
    eval_examples: int = 0


class InOrder:
    """A reference trainer fed in the framework's order, so that all three ways train the same batches."""

    def _get_train_sampler(self, *args, **kwargs):
        return SequentialSampler(self.train_dataset)


class SequentialTrainer(InOrder, Seq2SeqTrainer):
    """The seq2seq reference."""


class SequentialCausalTrainer(InOrder, Trainer):
    """The decoder-only reference."""


class Unscored(ComboModule):
    """For examples with made-up tokens (--lengths): everything of the framework's evaluation but the scoring."""

    def _score(self, splits, prefix):
        return {split.lang: {} for split in splits}


class Measure:
    def __init__(self, args, backbone: Backbone, root: str):
        self.args, self.backbone, self.root = args, backbone, root
        self.device = args.device

    def training(self, stage: str, task_name: str, kind: str) -> Row:
        args, b = self.args, self.backbone
        big = b.group not in TINY
        cfg = compose_cfg(b.group, kind, task_name if stage == "task" else "qa", args, self.root, "32-true")
        task = get_task(cfg.task)
        batch = args.batch_size or (4 if big and self.device.type == "cpu" else int(cfg.task_stage.batch_size))
        big_cpu = big and self.device.type == "cpu"
        warmup = args.warmup or (1 if big_cpu else 2)
        steps = max(args.steps or (2 if big_cpu else 8), warmup + 1)
        # The reference's steps take several times as long: fewer of them (a prefix of the same batches).
        reference_steps = max(min(args.reference_steps or warmup + 2, steps), warmup + 1)
        cfg.task_stage.batch_size = cfg.lang_stage.batch_size = batch
        net, trainable = b.composed(cfg, kind if stage == "task" else None, task)
        role = "task" if stage == "task" else "lang"
        optimizer = to_plain(cfg.combo.components[role].optimizer)
        objective = objective_name(cfg.lang_stage, cfg.backbone)  # stage 1's: span_corruption or next_token
        row = Row(b.name, stage if stage == "task" or objective == "span_corruption" else objective,
                  task_name if stage == "task" else cfg.lang.code, kind, batch)
        if stage == "task":
            split = self._split(cfg, task, "train")
            loader = lambda: (task_loader(split, b.tokenizer, batch, 0, steps, cfg.seed, 0, args.group_by_length,
                                          layout=b.layout), [])
        else:
            def loader():
                what = f"{cfg.lang.name} corpus"
                stream = CorpusStream(documents(cfg.data.wiki, "train", Job.of(RunSpec.of(cfg), Path(self.root)).datasets_cache, what),
                                      b.tokenizer, cfg.lang_stage, cfg.seed, steps, 0, 0, 1, what, objective)
                return DataLoader(stream, batch_size=None, num_workers=0, generator=own_generator()), [CorpusPosition(stream)]
        batches = list(loader()[0])
        def work(last: int) -> tuple[int, int, float]:  # examples, real tokens and FLOPs of the timed steps
            timed = batches[warmup:last]
            return (sum(len(x["input_ids"]) for x in timed), sum(real_tokens(x) for x in timed),
                    sum(flops(net, x) for x in timed))
        # The reference pads what the framework's collator padded, without the padding.
        examples = [e for x in batches for e in unpadded(x)]
        # Stage 1's targets are as long as its chunks make them (58 at 256 inputs; a next-token chunk's, all but its
        # first token): not cut to 30.
        labels_to = REFERENCE_LABELS if stage == "task" else max(len(e["labels"]) for e in examples)
        rows = reference_joined_rows if b.causal else reference_rows
        reference = rows(examples, b.tokenizer.pad_token_id, labels_to)
        ways = [("framework", "32-true"), ("bare", "32-true")] + [("reference", "32-true")] * HAVE_ACCELERATE
        if args.bf16:
            ways += [("framework", "bf16-mixed"), ("bare", "bf16-mixed")]
        what = f"{stage} {row.task} {kind} on {b.name}"
        for repeat in range(args.repeats):
            for way, precision in ways[repeat % len(ways):] + ways[:repeat % len(ways)]:
                name = way if precision == "32-true" else f"{way} bf16"
                log(f"{what}: {name}, repeat {repeat + 1} of {args.repeats}")
                clock = Clock(self.device)
                with peak_memory(self.device) as peak:
                    if way == "framework":
                        self._framework(cfg, net, trainable, optimizer, steps, precision, clock, loader, role)
                    elif way == "bare":
                        self._bare(net, trainable, optimizer, steps, precision, clock, loader()[0])
                    else:
                        self._reference(net, trainable, optimizer, reference_steps, batch, clock, reference, cfg.seed)
                last = reference_steps if way == "reference" else steps
                row.ways.setdefault(name, Figures()).add(*work(last), clock.seconds(warmup), peak[0])
        if stage == "task":
            self._generation(cfg, net, task, row)
        del net
        return row

    def _split(self, cfg, task, split: str) -> TaskSplit:
        lengths = self.args.lengths.get(task.name)
        if lengths is None:
            run = RunSpec.of(cfg)
            return Job.of(run, Path(self.root)).split(task, run.task_source, split, cfg.lang.code, self.backbone.tokenizer,
                                                      int(cfg.task_stage.max_input_length))
        return synthetic_split(lengths, self.backbone.tokenizer, cfg.lang.code, int(cfg.task_stage.max_input_length),
                               task.max_answer_length, self.backbone.layout)

    def _module(self, net, trainable, optimizer, steps):
        return ComboModule(net, trainable, optimizer, steps)

    def _framework(self, cfg, net, trainable, optimizer, steps, precision, clock, loader, role) -> None:
        t = copy.deepcopy(cfg.trainer)
        t.precision = precision
        out = Path(self.root) / "framework"
        data, extra = loader()
        guard = DivergenceGuard(cfg.trainer.divergence, role, f"the {role} component", "lr")
        callbacks = [*extra, guard, Checkpointing(out / "checkpoints", cfg.checkpoint_every_n_steps),
                     LightningClock(clock)]
        with stage_logger(RunSpec.of(cfg), role, "benchmark", "benchmark", out, ["benchmark"]) as logger:
            trainer = make_trainer(t, logger, out, steps, callbacks=callbacks)
            trainer.fit(self._module(net, trainable, optimizer, steps), data)

    def _bare(self, net, trainable, optimizer, steps, precision, clock, data) -> None:
        device = self.device
        net.to(device).train()
        setup = self._module(net, trainable, optimizer, steps).configure_optimizers()
        opt, schedule = setup["optimizer"], setup["lr_scheduler"]["scheduler"]
        autocast = (torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16-mixed"
                    else contextlib.nullcontext())
        # A decoder-only model the plain way: the same examples joined, nothing cut (the framework cut them already).
        model = JoinedCausalLM(net) if self.backbone.causal else net
        for batch in data:
            if self.backbone.causal:
                batch = joined(unpadded(batch), self.backbone.tokenizer.pad_token_id, input_to=UNCUT, labels_to=UNCUT)
            with autocast:
                loss = model(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                             batch["labels"].to(device)).loss
            loss.backward()
            opt.step()
            schedule.step()
            opt.zero_grad(set_to_none=True)
            clock.tick()

    def _reference(self, net, trainable, optimizer, steps, batch, clock, rows, seed) -> None:
        setup = self._module(net, trainable, optimizer, steps).configure_optimizers()
        arguments = Seq2SeqTrainingArguments(
            output_dir=str(Path(self.root) / "reference"), per_device_train_batch_size=batch, max_steps=steps,
            eval_strategy="no", save_strategy="no", report_to="none", seed=seed, dataloader_num_workers=0,
            use_cpu=self.device.type == "cpu", dataloader_pin_memory=self.device.type == "cuda")
        trainer_class, model = ((SequentialCausalTrainer, JoinedCausalLM(net)) if self.backbone.causal
                                else (SequentialTrainer, net))
        trainer = trainer_class(model=model, args=arguments, train_dataset=rows, data_collator=default_data_collator,
                                    optimizers=(setup["optimizer"], setup["lr_scheduler"]["scheduler"]),
                                    callbacks=[HFClock(clock)])
        trainer.train()

    # --- evaluation by generation -------------------------------------------------------------------------
    def _generation(self, cfg, net, task, row: Row) -> None:
        args, tokenizer = self.args, self.backbone.tokenizer
        big = self.backbone.group not in TINY
        test = self._split(cfg, task, "test")
        limit = args.eval_examples or (8 if big and self.device.type == "cpu" else None)
        test = fixed_subset(test, limit) if limit and task.name not in args.lengths else \
            TaskSplit(test.examples[:limit] if limit else test.examples, test.references, test.lang, test.ids)
        if task.name in args.lengths:
            test.references = [None] * len(test.examples)
        batch = int(cfg.task_stage.eval_batch_size)
        row.answer_tokens, row.eval_examples = task.max_answer_length, len(test.examples)
        net.train_only([])
        # Every answer exactly the task's answer length in both ways (random weights may stop at once or never).
        net.backbone.generation_config.min_new_tokens = task.max_answer_length
        self._bare_generate(net, test, batch, task.max_answer_length, first_batch_only=True)  # warm-up
        ways = ["framework", "bare"]
        for repeat in range(args.repeats):
            for way in ways[repeat % 2:] + ways[:repeat % 2]:
                log(f"generation {task.name} {row.kind} on {row.backbone}: {way}, repeat {repeat + 1}")
                with peak_memory(self.device) as peak:
                    sync(self.device)
                    started = time.perf_counter()
                    if way == "framework":
                        cls = Unscored if task.name in args.lengths else ComboModule
                        module = cls(net, [], None, 0, task)
                        module.test_splits = [test]
                        out = Path(self.root) / "framework"
                        with stage_logger(RunSpec.of(cfg), "eval", "benchmark", "benchmark", out,
                                          ["benchmark"]) as logger:
                            trainer = make_trainer(cfg.trainer, logger, out, 0, alone=True)
                            trainer.test(module, task_loader(test, tokenizer, batch, 0, layout=self.backbone.layout),
                                         verbose=False)
                    else:
                        self._bare_generate(net, test, batch, task.max_answer_length)
                    sync(self.device)
                    seconds = time.perf_counter() - started
                row.generation.setdefault(way, Figures()).add(len(test.examples), 0, 0.0, seconds, peak[0])

    def _bare_generate(self, net, split, batch, answer, first_batch_only=False) -> None:
        net.to(self.device).eval()
        with torch.no_grad():
            for x in task_loader(split, self.backbone.tokenizer, batch, 0, layout=self.backbone.layout):
                embeds, mask = net.embed(x["input_ids"].to(self.device), x["attention_mask"].to(self.device))
                net.backbone.generate(inputs_embeds=embeds, attention_mask=mask, max_new_tokens=answer,
                                      do_sample=False, num_beams=1)
                if first_batch_only:
                    break


def log(message: str) -> None:
    print(f"[throughput] {message}", file=sys.stderr, flush=True)


# --- output -------------------------------------------------------------------------------------------------
def cell(f: Figures | None, what: str = "examples_per_s") -> str:
    if f is None or not getattr(f, what):
        return "-"
    values = getattr(f, what)
    return f"{f.median(what):.3g} ({min(values):.3g}-{max(values):.3g})" if len(values) > 1 else f"{values[0]:.3g}"


def ratio(a: Figures | None, b: Figures | None) -> str:
    return f"{a.median() / b.median():.2f}" if a and b else "-"


def tables(rows: list[Row], peak_tflops: float) -> str:
    lines = ["## Training (examples/s: median (min-max) of the repeats; tokens/s: median)", "",
             "| backbone | stage | task | kind | batch | framework ex/s | bare ex/s | reference ex/s | framework tok/s "
             "| bare tok/s | reference tok/s | fw/bare | fw/ref |", "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        w = r.ways
        lines.append(f"| {r.backbone} | {r.stage} | {r.task} | {r.kind} | {r.batch} | {cell(w.get('framework'))} | "
                     f"{cell(w.get('bare'))} | {cell(w.get('reference'))} | "
                     + " | ".join(f"{w[k].median('tokens_per_s'):.4g}" if k in w else "-" for k in WAYS)
                     + f" | {ratio(w.get('framework'), w.get('bare'))} | {ratio(w.get('framework'), w.get('reference'))} |")
    generated = [r for r in rows if r.generation]
    if generated:
        lines += ["", "## Evaluation by greedy generation (examples/s: median (min-max))", "",
                  "| backbone | task | kind | answer tokens | examples | framework ex/s | bare generate ex/s | fw/bare |",
                  "|---|---|---|---:|---:|---:|---:|---:|"]
        for r in generated:
            g = r.generation
            lines.append(f"| {r.backbone} | {r.task} | {r.kind} | {r.answer_tokens} | {r.eval_examples} | "
                         f"{cell(g.get('framework'))} | {cell(g.get('bare'))} | {ratio(g.get('framework'), g.get('bare'))} |")
    bf16_rows = [r for r in rows if "framework bf16" in r.ways]
    if bf16_rows:
        lines += ["", f"## bf16-mixed vs fp32 (MFU = 6 (N_enc T_enc + N_dec T_dec) / s / {peak_tflops:g} TFLOP/s)", "",
                  "| backbone | stage | task | kind | framework fp32 ex/s | framework bf16 ex/s | bf16/fp32 | bare bf16 ex/s "
                  "| fw/bare bf16 | peak GiB fp32 | peak GiB bf16 | MFU fp32 | MFU bf16 |",
                  "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for r in bf16_rows:
            w = r.ways
            fp32, bf16 = w["framework"], w["framework bf16"]
            mfu = [f"{100 * f.median('flops_per_s') / (peak_tflops * 1e12):.1f}%" for f in (fp32, bf16)]
            gib = [f"{max(f.peak_bytes) / 2**30:.2f}" if f.peak_bytes else "-" for f in (fp32, bf16)]
            lines.append(f"| {r.backbone} | {r.stage} | {r.task} | {r.kind} | {cell(fp32)} | {cell(bf16)} | "
                         f"{ratio(bf16, fp32)} | {cell(w.get('bare bf16'))} | {ratio(bf16, w.get('bare bf16'))} | "
                         f"{gib[0]} | {gib[1]} | {mfu[0]} | {mfu[1]} |")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--backbones", default="tiny,mt5-small,tiny_decoder",
                        help=f"comma-separated, of {', '.join(SHAPES)}")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--kinds", default=None, help="task component kinds (default: prompt,adapter,lora on tiny and "
                        "on CUDA, adapter for a big shape on CPU)")
    parser.add_argument("--stages", default=None, help="span,task (default: both; task alone for a big shape on CPU)")
    parser.add_argument("--lang", default="sk", help="language of the toy corpus and task data")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--group-by-length", type=int, default=None, metavar="N",
                        help="the framework's task_stage.group_by_length (batches of similar length, in runs of N "
                             "batches); the bare loop trains on the same batches")
    parser.add_argument("--steps", type=int, default=None, help="training steps per measurement, warm-up included "
                        "(default 8; 2 for a big shape on CPU)")
    parser.add_argument("--reference-steps", type=int, default=None, help="the reference's steps, warm-up included "
                        "(default: warm-up + 2, at most --steps)")
    parser.add_argument("--warmup", type=int, default=None, help="steps not timed (default 2; 1 for a big shape on CPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the backbone's (16 tiny, 32 big); 4 "
                        "for a big shape on CPU")
    parser.add_argument("--eval-examples", type=int, default=None, help="test records generated (default: the "
                        "whole split; 8 for a big shape on CPU)")
    parser.add_argument("--lengths", action="append", default=[], metavar="TASK=FILE",
                        help="a real dataset's token lengths for TASK (format above); repeatable")
    parser.add_argument("--logger", default="none", choices=("none", "csv", "wandb"), help="the framework's logger")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="also train in bf16-mixed (default: on CUDA only)")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="peak FLOP/s of the device, for MFU")
    parser.add_argument("--cache", default=None, help="paths.cache (default: the framework's; "
                        "$SOFTPROMPT_XL_CACHE applies as in a run)")
    parser.add_argument("--json", type=Path, default=None, help="also write every measurement here")
    args = parser.parse_args(argv)
    args.device = torch.device("cuda" if args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
                               else "cpu")
    if args.bf16 is None:
        args.bf16 = args.device.type == "cuda"
    unknown = set(args.backbones.split(",")) - set(SHAPES)
    if unknown:
        parser.error(f"unknown backbone {sorted(unknown)}: choose from {', '.join(SHAPES)}")
    lengths = {}
    for spec in args.lengths:
        task, _, path = spec.partition("=")
        if task not in TASKS or not path:
            parser.error(f"--lengths {spec}: write TASK=FILE with TASK one of {', '.join(TASKS)}")
        lengths[task] = read_lengths(Path(path))
    args.lengths = lengths
    return args


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse(argv)
    register_resolvers()
    quiet = ("lightning", "lightning.pytorch", "lightning.fabric", "transformers", "adapters", "softprompt_xl", "datasets")
    levels = {name: logging.getLogger(name).level for name in quiet}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for name in quiet:
                logging.getLogger(name).setLevel(logging.ERROR)
            return measure_all(args)
    finally:  # called in-process (tests/test_benchmarks.py): leave the loggers as they were
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def measure_all(args: argparse.Namespace) -> list[Row]:
    if not HAVE_ACCELERATE:
        log("accelerate is not installed, so the reference (transformers' Trainer needs it) is left out: "
            "pip install -e '.[bench]' for it")
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as root, contextlib.redirect_stdout(sys.stderr):  # progress bars off stdout
        for name in args.backbones.split(","):
            backbone = Backbone(name, args, root)
            big_cpu = backbone.group not in TINY and args.device.type == "cpu"
            kinds = (args.kinds or ("adapter" if big_cpu else "prompt,adapter,lora")).split(",")
            stages = (args.stages or ("task" if big_cpu else "span,task")).split(",")
            measure = Measure(args, backbone, root)
            if "span" in stages:
                rows.append(measure.training("span", args.lang, "prompt"))
            if "task" in stages:
                for task in args.tasks.split(","):
                    for kind in kinds:
                        rows.append(measure.training("task", task, kind))
            del backbone, measure
    text = tables(rows, args.peak_tflops)
    print(text)
    grouping = f"batches grouped by length in runs of {args.group_by_length}" if args.group_by_length else "random batches"
    print(f"\n{args.device.type}, {torch.get_num_threads()} torch threads, {args.repeats} repeats, {grouping}; "
          f"{time.perf_counter() - started:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps({
            "device": args.device.type, "threads": torch.get_num_threads(), "repeats": args.repeats,
            "rows": [{**{k: v for k, v in vars(r).items() if k not in ("ways", "generation")},
                      "ways": {w: f.summary() for w, f in r.ways.items()},
                      "generation": {w: f.summary() for w, f in r.generation.items()}} for r in rows]}, indent=1))
    return rows


if __name__ == "__main__":
    main()
