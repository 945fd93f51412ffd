"""The throughput benchmark (experiments/benchmarks/throughput.py) runs on the tiny backbone with the smallest
settings and prints every row with positive figures. Timings are the benchmark's to print, never asserted."""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import pytest

from conftest import SHARED_CACHE
from softprompt_xl.config import PROJECT_DIR

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


def test_throughput_smoke(capsys, tmp_path):
    throughput = load_script()
    out = tmp_path / "figures.json"
    throughput.main(["--backbones", "tiny", "--tasks", "nli", "--kinds", "prompt,adapter,lora", "--repeats", "1",
                     "--steps", "2", "--warmup", "1", "--batch-size", "2", "--eval-examples", "3", "--device", "cpu",
                     "--bf16", "--cache", str(SHARED_CACHE), "--json", str(out)])
    text = capsys.readouterr().out
    training = table_rows(text, "## Training")
    expected = [("span", "sk", "prompt")] + [("task", "nli", k) for k in ("prompt", "adapter", "lora")]
    assert [tuple(r[1:4]) for r in training] == expected
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
    (tmp_path / "bad.csv").write_text("inputs,targets\n1,2\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="header input,target"):
        throughput.read_lengths(tmp_path / "bad.csv")
