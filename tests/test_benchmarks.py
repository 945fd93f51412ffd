"""The throughput benchmark (experiments/benchmarks/throughput.py) runs on the tiny backbones (mT5's and the
decoder-only one) with the smallest settings and prints every row with positive figures. Timings are the benchmark's
to print, never asserted."""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import pytest
import torch

from conftest import SHARED_CACHE
from softprompt_xl.config import PROJECT_DIR
from softprompt_xl.data.layout import TextLayout

SCRIPT = PROJECT_DIR / "experiments" / "benchmarks" / "throughput.py"


def load_script():
    spec = importlib.util.spec_from_file_location("throughput", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def table_rows(text: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table under `header`."""
    section = text.split(header, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("| ")][1:]  # without the column names
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines]


def leading_number(cell: str) -> float:
    return float(re.match(r"[0-9.e+-]+", cell).group())


@pytest.mark.parametrize("backbone,stage1", [("tiny", "span"), ("tiny_decoder", "next_token")])
def test_throughput_smoke(capsys, tmp_path, backbone, stage1):
    """Each family's tiny backbone (T5's; the decoder-only one, trained its own way: model/family.py)."""
    throughput = load_script()
    out = tmp_path / "figures.json"
    throughput.main(["--backbones", backbone, "--tasks", "nli", "--kinds", "prompt,adapter,lora", "--repeats", "1",
                     "--steps", "2", "--warmup", "1", "--batch-size", "2", "--eval-examples", "3", "--device", "cpu",
                     "--bf16", "--cache", str(SHARED_CACHE), "--json", str(out)])
    text = capsys.readouterr().out
    training = table_rows(text, "## Training")
    expected = [(stage1, "sk", "prompt")] + [("task", "nli", k) for k in ("prompt", "adapter", "lora")]
    assert [tuple(r[:4]) for r in training] == [(backbone, *e) for e in expected]
    ways = [5, 6, 7] if throughput.HAVE_ACCELERATE else [5, 6]  # framework, bare (, reference) examples/s
    for row in training:
        assert all(leading_number(row[i]) > 0 for i in ways), row
        assert all(leading_number(row[i + 3]) > 0 for i in ways), row  # tokens/s
        assert leading_number(row[11]) > 0  # fw/bare
    generation = table_rows(text, "## Evaluation by greedy generation")
    assert [tuple(r[1:3]) for r in generation] == [e[1:] for e in expected[1:]]
    for row in generation:
        assert row[3:5] == ["3", "3"]  # NLI's answer length; 3 examples
        assert leading_number(row[5]) > 0 and leading_number(row[6]) > 0
    bf16 = table_rows(text, "## bf16-mixed vs fp32")  # --bf16 on CPU: the table a GPU run prints, without its memory
    assert [tuple(r[1:4]) for r in bf16] == expected
    for row in bf16:
        assert all(leading_number(row[i]) > 0 for i in (4, 5, 6, 7, 8)), row  # fp32, bf16, ratio, bare bf16, fw/bare
        assert row[9:11] == ["-", "-"] and all(cell.endswith("%") for cell in row[11:13]), row  # no CUDA memory; MFU
    assert len(json.loads(out.read_text())["rows"]) == len(expected)


def test_lengths_file(tmp_path, tiny_loaded):
    """--lengths: examples of the given lengths, cut to the framework's limits, each ending with </s>."""
    throughput = load_script()
    path = tmp_path / "qa.jsonl"
    path.write_text('{"input": 40, "target": 3}\n{"input": 300, "target": 50}\n', encoding="utf-8")
    tokenizer = tiny_loaded[1]
    split = throughput.synthetic_split(throughput.read_lengths(path), tokenizer, "sk", 128, 30)
    assert [(len(e["input_ids"]), len(e["labels"])) for e in split.examples] == [(40, 3), (128, 30)]
    assert all(e["input_ids"][-1] == e["labels"][-1] == tokenizer.eos_token_id for e in split.examples)
    # A decoder-only backbone's input runs on into its target: no </s> of its own.
    causal = throughput.synthetic_split(throughput.read_lengths(path), tokenizer, "sk", 128, 30,
                                        TextLayout(continuation=True))
    assert [(len(e["input_ids"]), len(e["labels"])) for e in causal.examples] == [(40, 3), (128, 30)]
    assert all(e["input_ids"][-1] != e["labels"][-1] == tokenizer.eos_token_id for e in causal.examples)
    (tmp_path / "bad.csv").write_text("inputs,targets\n1,2\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="header input,target"):
        throughput.read_lengths(tmp_path / "bad.csv")


def test_the_decoder_bare_loop_trains_the_frameworks_loss(make_cfg, tmp_path):
    """A decoder-only backbone's bare loop (each input and its target joined, padded on the right, the model's own
    loss) computes the framework's loss (inputs padded on the left, positions from the mask, the target's logits
    alone) on the same examples, with every component kind: fw/bare compares two ways of one computation."""
    throughput = load_script()
    args = throughput.parse(["--backbones", "tiny_decoder", "--device", "cpu", "--cache", str(SHARED_CACHE)])
    root = str(tmp_path)
    backbone = throughput.Backbone("tiny_decoder", args, root)
    for kind in ("prompt", "adapter", "lora"):
        cfg = throughput.compose_cfg("tiny_decoder", kind, "qa", args, root, "32-true")
        task = throughput.get_task(cfg.task)
        net, trainable = backbone.composed(cfg, kind, task)
        torch.manual_seed(0)
        with torch.no_grad():  # components that change the output (a LoRA starts at zero)
            for p in trainable:
                p.add_(torch.randn_like(p) * 0.05)
        net.eval()
        split = throughput.Measure(args, backbone, root)._split(cfg, task, "train")
        batch = next(iter(throughput.task_loader(split, backbone.tokenizer, 8, steps=1, layout=backbone.layout)))
        assert batch["attention_mask"].sum(1).unique().numel() > 1  # inputs of several lengths: padding between
        framework = net(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        joined = throughput.joined(throughput.unpadded(batch), backbone.tokenizer.pad_token_id,
                                   input_to=throughput.UNCUT, labels_to=throughput.UNCUT)
        bare = throughput.JoinedCausalLM(net)(joined["input_ids"], joined["attention_mask"], joined["labels"]).loss
        assert torch.allclose(framework, bare, rtol=1e-5), (kind, float(framework), float(bare))
