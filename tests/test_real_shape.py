"""The real backbones' shapes, rehearsed: a model with mt0-base's exact architecture (random weights, built from
the published config numbers in conf/backbone/mt0_base.yaml) runs lp_ta, la_tp, ll_tl and lp_tp end to end
through the CLI with `backbone.name=DIR`, for a few steps each. The components must have the paper's sizes,
a checkpoint must hold only what trains (never the 2.3 GB backbone), and a stage stopped by SIGTERM at this
size must resume. The decoder-only family likewise: models of Qwen2.5-0.5B's and Gemma-3-270m's architectures
(conf/backbone/qwen2_5_0_5b.yaml, gemma3_270m.yaml) run lp_ta, la_tp and ll_tl, each component the size its
architecture's numbers give. Each run's wall time and peak memory are printed (`-s` shows them).

    python -m pytest tests/test_real_shape.py -m slow -s
"""

from __future__ import annotations

import gc
import json
import os
import re
import shutil
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from transformers import (AutoConfig, AutoModelForCausalLM, AutoTokenizer, MT5Config,
                          MT5ForConditionalGeneration)

from conftest import FAST_OVERRIDES, start_cli
from softprompt_xl.config import to_plain
from softprompt_xl.toy import backbone_dir

pytestmark = pytest.mark.slow

# The paper's settings (PAPER.md), which the configs must give on this backbone.
PROMPT_TOKENS, REDUCTION_FACTOR, LORA_R, LORA_TARGETS = 50, 16, 8, ("q", "v")
MT5_BASE_PARAMETERS = 580e6  # mT5-base's size as its paper gives it (rounded)

# The suite's few steps (conftest.FAST_OVERRIDES), then what this size needs instead (a later value wins): fewer
# steps, a short input, small batches, four validation and test examples. This exercises the real shape, not the
# scores. A checkpoint after every step, so every stage leaves one to inspect.
SHORT = [
    "lang=sk", "task=qa", "backbone=mt0_base", *FAST_OVERRIDES,
    "backbone.max_input_length=64", "lang_stage.max_steps=2", "lang_stage.batch_size=2", "lang_stage.heldout_chunks=4",
    "task_stage.max_steps=3", "task_stage.batch_size=2", "task_stage.eval_batch_size=4", "checkpoint_every_n_steps=1",
    "data.task.splits.validation='validation[:4]'", "data.task.splits.test='test[:4]'",
]


@pytest.fixture(scope="session")
def architecture(make_cfg) -> dict:
    return to_plain(make_cfg("backbone=mt0_base").backbone.architecture)


@pytest.fixture(scope="session")
def mt0_base_shaped(architecture, tiny_dir, tmp_path_factory):
    """A directory loadable with from_pretrained: mt0-base's architecture with random weights (safetensors, 2.3 GB),
    and the tiny backbone's tokenizer (its ids are a subset of the model's vocabulary, T5 sentinels included).
    Built once per session, removed after it."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_dir)
    # Generation starts from pad and stops at eos: the model's ids for them must be the tokenizer's.
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id) == (architecture["pad_token_id"], architecture["eos_token_id"])
    assert len(tokenizer) <= architecture["vocab_size"] and "<extra_id_0>" in tokenizer.get_vocab()
    directory = tmp_path_factory.mktemp("mt0-base-shape")
    torch.manual_seed(0)
    model = MT5ForConditionalGeneration(MT5Config(**architecture))
    # HF draws an untied lm_head with std 1 (logits ~30 wide, a first loss of ~40); a trained mT5's is far
    # smaller. The 1/sqrt(d_model) scale keeps the first loss near ln(vocab), as on the real model.
    with torch.no_grad():
        model.lm_head.weight.normal_(0.0, architecture["d_model"] ** -0.5)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    del model
    gc.collect()
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def expected_shapes(architecture: dict) -> dict[str, Counter]:
    """The weight shapes of each component kind on this architecture, with the paper's settings, derived from the
    architecture alone (not from what the libraries create)."""
    d, layers = architecture["d_model"], architecture["num_layers"] + architecture["num_decoder_layers"]
    inner = architecture["num_heads"] * architecture["d_kv"]  # q and v project d_model -> heads * d_kv
    bottleneck = d // REDUCTION_FACTOR
    # Encoder blocks have self-attention; decoder blocks self- and cross-attention, each with its own q and v.
    attentions = architecture["num_layers"] + 2 * architecture["num_decoder_layers"]
    return {
        "prompt": Counter({(PROMPT_TOKENS, d): 1}),
        # Pfeiffer seq_bn after the FFN of every block: down (d -> d/16, bias), ReLU, up (d/16 -> d, bias)
        "adapter": Counter({(bottleneck, d): layers, (bottleneck,): layers, (d, bottleneck): layers, (d,): layers}),
        "lora": Counter({(LORA_R, d): attentions * len(LORA_TARGETS), (inner, LORA_R): attentions * len(LORA_TARGETS)}),
    }


def count(shapes: Counter) -> int:
    return sum(torch.Size(shape).numel() * n for shape, n in shapes.items())


@dataclass
class Run:
    label: str
    returncode: int
    output: str
    wall_s: float
    peak_rss_mb: float
    checkpoints: dict[str, Path] = field(default_factory=dict)  # store key -> a copy of its last.ckpt
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (time, resident MB) every 50 ms
    line_times: list[tuple[float, str]] = field(default_factory=list)  # (time read, line) of its output

    def rss_when(self, text: str) -> float:
        """The process's resident MB when it printed the first line holding `text` (the last sample before)."""
        when = self._time_of(text)
        return [mb for t, mb in self.rss_mb if t <= when][-1]

    def rss_peak_after(self, text: str) -> float:
        """The process's highest resident MB from the first line holding `text` to its end."""
        when = self._time_of(text)
        return max(mb for t, mb in self.rss_mb if t >= when)

    def _time_of(self, text: str) -> float:
        return next(t for t, line in self.line_times if text in line)


def run_measured(label: str, args: list[str], root: Path, stop_at_task_checkpoint: bool = False,
                 shape: str = "mt0-base") -> Run:
    """The CLI as a user runs it, with its own peak RSS (its VmHWM, sampled every 50 ms). Every last.ckpt
    the run writes is copied as soon as it appears (it is removed when its stage finishes); with
    `stop_at_task_checkpoint`, SIGTERM is sent once the task stage has saved one."""
    copies = root / "checkpoint-copies" / label
    copies.mkdir(parents=True)
    started = time.time()
    proc = start_cli(*args, f"paths.root={root}")
    lines: list[tuple[float, str]] = []
    reader = threading.Thread(target=lambda: lines.extend((time.time(), line) for line in proc.stdout),
                              daemon=True)  # the pipe must not fill
    rss: list[tuple[float, float]] = []
    peak_mb = 0.0
    reader.start()
    copied: dict[str, Path] = {}
    signalled = False
    while True:
        # os.wait4, not proc.poll (which would reap the process and lose its rusage)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        for ckpt in (root / "store" / "checkpoints").glob("*/last.ckpt"):
            if ckpt.parent.name not in copied:
                try:
                    shutil.copyfile(ckpt, copies / f"{ckpt.parent.name}.ckpt")  # written by os.replace: whole
                except FileNotFoundError:
                    continue
                copied[ckpt.parent.name] = copies / f"{ckpt.parent.name}.ckpt"
            if stop_at_task_checkpoint and not signalled and ckpt.parent.name.startswith("task-"):
                os.kill(proc.pid, signal.SIGTERM)
                signalled = True
        if time.time() - started > 3600:
            os.kill(proc.pid, signal.SIGKILL)
        resident, high = memory_mb(proc.pid)
        if resident:
            rss.append((time.time(), resident))
            peak_mb = max(peak_mb, high)
        time.sleep(0.05)
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join(timeout=60)
    # The process's own high-water mark (VmHWM), not wait4's ru_maxrss: that one starts from this process's peak (the
    # CLI is started by vfork and exec, and Linux carries the parent's peak over the exec), so after this process
    # had built a 2 GB model every run reported at least this process's peak, whatever its own.
    run = Run(label, proc.returncode, "".join(line for _, line in lines), time.time() - started,
              peak_mb or usage.ru_maxrss / 1024, copied, rss, lines)
    print(f"\n[{shape} shape] {label}: exit {run.returncode}, wall {run.wall_s:.0f} s, peak RSS {run.peak_rss_mb:,.0f} MB")
    return run


def memory_mb(pid: int) -> tuple[float, float]:
    """A running process's resident memory and its peak so far (VmRSS, VmHWM of Linux's /proc), in MB; 0 where they
    cannot be read."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0.0
    found = [re.search(rf"^{field}:\s+(\d+) kB", status, re.M) for field in ("VmRSS", "VmHWM")]
    return tuple(int(m.group(1)) / 1024 if m else 0.0 for m in found)


def stored_shapes(component_dir: Path) -> Counter:
    with safe_open(str(component_dir / "weights.safetensors"), "pt") as weights:
        return Counter(tuple(weights.get_slice(k).get_shape()) for k in weights.keys())


def check_component(component_dir: Path, kind: str, shapes: dict[str, Counter]) -> int:
    header = json.loads((component_dir / "component.json").read_text())
    assert header["kind"] == kind
    assert stored_shapes(component_dir) == shapes[kind], f"{component_dir.name}: not the paper's {kind}"
    assert header["num_parameters"] == count(shapes[kind])
    setting = {"prompt": ("n_tokens", PROMPT_TOKENS), "adapter": ("reduction_factor", REDUCTION_FACTOR),
               "lora": ("r", LORA_R)}[kind]
    assert header["config"][setting[0]] == setting[1]
    return header["num_parameters"]


def check_checkpoint(copy: Path, component_dir: Path, backbone_bytes: int, shape: str = "mt0-base") -> None:
    """A stage's checkpoint holds the component's tensors and nothing of the backbone."""
    ckpt = torch.load(copy, map_location="cpu", weights_only=False)
    held = Counter(tuple(t.shape) for t in ckpt["state_dict"].values())
    assert held == stored_shapes(component_dir), f"{copy.name} holds other tensors than {component_dir.name}'s"
    size = copy.stat().st_size
    print(f"[{shape} shape]   checkpoint {copy.stem[:40]}: {size / 2**20:.1f} MB "
          f"({sum(held.values())} tensors, {count(held):,} values; backbone {backbone_bytes / 2**30:.2f} GB)")
    assert size < backbone_bytes / 50


def result_of(root: Path, combo: str) -> dict:
    (path,) = (root / "store" / "results").glob(f"result-{combo}-sk-qa-*.json")
    return json.loads(path.read_text())


PAIRS = (("lp_ta", "prompt", "adapter"), ("la_tp", "adapter", "prompt"), ("ll_tl", "lora", "lora"))  # combo, kinds


def run_and_check(combo: str, lang_kind: str, task_kind: str, args: list[str], root: Path,
                  shapes: dict[str, Counter], backbone_bytes: int, shape: str = "mt0-base") -> Run:
    """`combo` through the CLI, measured: it completes, its components have the architecture's shapes, only the task
    part trained in stage 2, and both stages saved a checkpoint (step 1 of 2 and of 3) holding only its component."""
    store = root / "store" / "components"
    run = run_measured(combo, [f"+combo={combo}", *args], root, shape=shape)
    assert run.returncode == 0, run.output[-4000:]
    result = result_of(root, combo)
    assert result["status"] == "complete" and result["steps"] == 3 and result["metrics"]["sk"]
    lang_params = check_component(store / result["lang_component"], lang_kind, shapes)
    task_params = check_component(store / result["task_component"], task_kind, shapes)
    assert result["lang_component_params"] == lang_params
    assert result["trainable_params"].get("task") == task_params and not result["trainable_params"].get("lang")
    assert set(run.checkpoints) == {result["lang_component"], result["task_component"]}, run.checkpoints
    for name, copy in run.checkpoints.items():
        check_checkpoint(copy, store / name, backbone_bytes, shape)
    return run


def test_mt0_base_shaped_backbone_runs_every_component_kind_end_to_end(mt0_base_shaped, architecture, tmp_path):
    shapes = expected_shapes(architecture)
    with safe_open(str(mt0_base_shaped / "model.safetensors"), "pt") as weights:
        total = sum(torch.Size(weights.get_slice(k).get_shape()).numel() for k in weights.keys())
    backbone_bytes = (mt0_base_shaped / "model.safetensors").stat().st_size
    print(f"\n[mt0-base shape] backbone: {total:,} parameters, {backbone_bytes / 2**30:.2f} GB; per component "
          + ", ".join(f"{kind} {count(s):,}" for kind, s in shapes.items()))
    assert abs(total - MT5_BASE_PARAMETERS) / MT5_BASE_PARAMETERS < 0.01  # the 580M of mT5-base, not another size

    args = [*SHORT, f"backbone.name={mt0_base_shaped}"]
    store = tmp_path / "store" / "components"
    runs = {combo: run_and_check(combo, lang_kind, task_kind, args, tmp_path, shapes, backbone_bytes)
            for combo, lang_kind, task_kind in PAIRS}

    # lp_tp: the language prompt of lp_ta is found; its task stage is stopped by SIGTERM and resumed.
    stopped = runs["lp_tp (SIGTERM)"] = run_measured("lp_tp (SIGTERM)", ["+combo=lp_tp", *args], tmp_path,
                                                     stop_at_task_checkpoint=True)
    assert stopped.returncode != 0 and "SIGTERM received: saved a checkpoint at step" in stopped.output, \
        stopped.output[-4000:]
    assert "Language prompt for sk: found in the store" in stopped.output
    (left,) = (tmp_path / "store" / "checkpoints").glob("task-*/last.ckpt")
    kept = tmp_path / "stopped.ckpt"
    shutil.copyfile(left, kept)
    resumed = runs["lp_tp (resumed)"] = run_measured("lp_tp (resumed)", ["+combo=lp_tp", *args], tmp_path)
    assert resumed.returncode == 0 and "resuming at step" in resumed.output, resumed.output[-4000:]
    result = result_of(tmp_path, "lp_tp")
    assert result["status"] == "complete" and result["steps"] == 3
    assert result["lang_component"] == result_of(tmp_path, "lp_ta")["lang_component"]
    task_params = check_component(store / result["task_component"], "prompt", shapes)
    assert result["trainable_params"].get("task") == task_params
    check_checkpoint(kept, store / left.parent.name, backbone_bytes)
    assert not any((tmp_path / "store" / "checkpoints").iterdir())  # pruned once the stage finished

    print("[mt0-base shape] summary (wall time, peak RSS of the CLI process):")
    for label, run in runs.items():
        print(f"[mt0-base shape]   {label:<18} {run.wall_s:6.0f} s  {run.peak_rss_mb / 1024:5.2f} GB")
    # One backbone in memory at a time: stage 1's model is gone before stage 2 loads its own (it was not: 5.0 GB).
    for label, run in runs.items():
        assert run.peak_rss_mb * 2**20 < 2 * backbone_bytes, f"{label}: two copies of the backbone in memory?"



# --- decoder-only backbones (model/family.py's causal family) -------------------------------------------------------
# Qwen2.5-0.5B's and Gemma-3-270m's published architectures (conf/backbone/<id>.yaml `architecture`), random weights,
# through the same CLI. Their sizes as the model cards give them: (all parameters, without the embedding table).
DECODERS = {"qwen2_5_0_5b": (0.49e9, 0.36e9), "gemma3_270m": (270e6, 100e6)}
# SHORT on another backbone, in float32 (the configs' bf16-mixed is for a GPU)
DECODER_SHORT = [a for a in SHORT if not a.startswith("backbone=")] + ["trainer.precision=32-true"]


@pytest.fixture(scope="session")
def decoder_tokenizer(make_cfg):
    """The tiny decoder's tokenizer (pad 0, EOS 1, adding no token of its own, as Qwen's and Gemma's add none to a
    continuation), from a build of its recipe without pre-training: the tokenizer is the shipped one's, the build
    takes seconds."""
    cfg = make_cfg("backbone=tiny_decoder", "backbone.build.pretrain.steps=0")
    return AutoTokenizer.from_pretrained(backbone_dir(cfg.backbone.build, cfg.paths, create=True))


def decoder_shaped(architecture: dict, tokenizer, directory: Path) -> Path:
    """A directory loadable with from_pretrained: `architecture` (a config.json's fields, `model_type` among them)
    with random weights, and `tokenizer`. The model's pad and EOS ids are set to the tokenizer's (generation pads with
    one and stops at the other; BOS as the tiny decoder's, its EOS): ids, not shapes."""
    fields = {k: v for k, v in architecture.items() if k != "model_type"}
    assert len(tokenizer) <= fields["vocab_size"]  # every id the tokenizer gives is a row of the embedding table
    ids = {"pad_token_id": tokenizer.pad_token_id, "eos_token_id": tokenizer.eos_token_id,
           "bos_token_id": tokenizer.eos_token_id}
    changed = {k: (fields.get(k), v) for k, v in ids.items() if fields.get(k) != v}
    print(f"\n[{architecture['model_type']} shape] token ids set to the tokenizer's (was, now): {changed}")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(architecture["model_type"], **{**fields, **ids}))
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    del model
    gc.collect()
    return directory


def expected_decoder_shapes(architecture: dict) -> dict[str, Counter]:
    """The weight shapes of each component kind on a decoder-only architecture (Llama-style: q_proj, v_proj in every
    layer's self-attention), with the paper's settings, from the architecture's numbers alone."""
    d, layers = architecture["hidden_size"], architecture["num_hidden_layers"]
    head_dim = architecture.get("head_dim") or d // architecture["num_attention_heads"]
    q_out = architecture["num_attention_heads"] * head_dim  # Gemma 3: 4 x 256 = 1,024, wider than hidden_size (640)
    v_out = architecture["num_key_value_heads"] * head_dim  # grouped-query attention: fewer key/value heads
    bottleneck = d // REDUCTION_FACTOR
    lora = Counter({(LORA_R, d): 2 * layers})  # down-projections of q_proj and v_proj (both read hidden_size)
    lora.update({(q_out, LORA_R): layers})
    lora.update({(v_out, LORA_R): layers})
    return {
        "prompt": Counter({(PROMPT_TOKENS, d): 1}),
        # seq_bn after the FFN of every layer (one stack): down (d -> d/16, bias), ReLU, up (d/16 -> d, bias)
        "adapter": Counter({(bottleneck, d): layers, (bottleneck,): layers, (d, bottleneck): layers, (d,): layers}),
        "lora": lora,
    }


@pytest.mark.parametrize("backbone", list(DECODERS))
def test_decoder_shaped_backbone_runs_every_component_kind_end_to_end(backbone, make_cfg, decoder_tokenizer,
                                                                      tmp_path):
    architecture = to_plain(make_cfg(f"backbone={backbone}").backbone.architecture)
    shape = architecture["model_type"]
    directory = decoder_shaped(architecture, decoder_tokenizer, tmp_path / f"{backbone}-shape")
    shapes = expected_decoder_shapes(architecture)
    with safe_open(str(directory / "model.safetensors"), "pt") as weights:
        sizes = {k: torch.Size(weights.get_slice(k).get_shape()).numel() for k in weights.keys()}
    total, embedding = sum(sizes.values()), architecture["vocab_size"] * architecture["hidden_size"]
    backbone_bytes = (directory / "model.safetensors").stat().st_size
    print(f"[{shape} shape] backbone: {total:,} parameters ({total - embedding:,} without the embedding table), "
          f"{backbone_bytes / 2**30:.2f} GB; per component "
          + ", ".join(f"{kind} {count(s):,}" for kind, s in shapes.items()))
    published, published_body = DECODERS[backbone]
    assert abs(total - published) / published < 0.01 and abs(total - embedding - published_body) / published_body < 0.01
    assert not any("lm_head" in k for k in sizes)  # tied: the output layer is the embedding table, stored once

    args = [*DECODER_SHORT, f"backbone={backbone}", f"backbone.name={directory}"]
    runs = {combo: run_and_check(combo, lang_kind, task_kind, args, tmp_path, shapes, backbone_bytes, shape)
            for combo, lang_kind, task_kind in PAIRS}
    for run in runs.values():
        assert re.search(r"Stage 1: .* by next.token prediction", run.output)  # the causal family's objective

    print(f"[{shape} shape] summary (wall time, peak RSS of the CLI process; its RSS before it loaded a backbone, "
          "and its peak from stage 2's start):")
    for label, run in runs.items():
        before, second = run.rss_when("Stage 1: training"), run.rss_peak_after("Stage 2: training")
        print(f"[{shape} shape]   {label:<18} {run.wall_s:6.0f} s  {run.peak_rss_mb / 1024:5.2f} GB  "
              f"(before loading {before / 1024:.2f} GB, stage 2 and evaluation {second / 1024:.2f} GB)")
        # One backbone in memory at a time: stage 1's is gone when stage 2 has loaded its own. Measured above what the
        # process held before loading any (0.5 GB), not by the whole peak as for mt0-base: with Gemma's 1 GB of
        # weights, the process itself and the logits of a 262k-word vocabulary weigh as much as the backbone.
        assert (second - before) * 2**20 < 2 * backbone_bytes, f"{label}: two copies of the backbone in memory?"
    shutil.rmtree(directory)  # 1-2 GB: not left to pytest's temporary directories
