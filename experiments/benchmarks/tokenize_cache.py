"""Tokenisation time of one (task, language) split, cold (nothing cached) and warm (the cached split reused).

    python experiments/benchmarks/tokenize_cache.py [--task qa] [--lang sk] [--repeat 1]

`--repeat N` writes the bundled train split N times into one local file first (in a temporary directory), so
the figures can be read at a realistic size (SQuAD's train split has ~88k records). Uses the tiny backbone's
tokenizer (built under runs/cache if missing).
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

from hydra import compose, initialize_config_module

from softprompt_xl.model.backbone import load_backbone
from softprompt_xl.config import CONF_MODULE, register_resolvers
from softprompt_xl.data.loaders import prepare_task_split
from softprompt_xl.data.sources import task_source
from softprompt_xl.data.tasks import get_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="qa")
    parser.add_argument("--lang", default="sk")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    register_resolvers()
    with tempfile.TemporaryDirectory() as tmp, initialize_config_module(CONF_MODULE, version_base="1.3"):
        cfg = compose("train", overrides=["+combo=ta", f"task={args.task}", f"lang={args.lang}"])
        _, tokenizer = load_backbone(cfg.backbone, cfg.paths)
        task, source = get_task(cfg.task), task_source(cfg)
        if args.repeat > 1:
            original = Path(source.data_files.train)
            lines = gzip.decompress(original.read_bytes()).decode("utf-8")
            if args.task == "checkworthy":  # CSV: one header
                header, body = lines.split("\n", 1)
                lines = header + "\n" + body * args.repeat
            else:
                lines = lines * args.repeat
            big = Path(tmp) / original.name
            big.write_bytes(gzip.compress(lines.encode("utf-8")))
            source = {"path": task.settings.toy.builder, "data_files": {"train": str(big)}}
        for label in ("cold", "warm"):
            started = time.perf_counter()
            split = prepare_task_split(task, source, "train", args.lang, tokenizer, int(cfg.task_stage.max_input_length),
                                       str(Path(tmp) / "datasets"), Path(tmp) / "tokenized")
            print(f"{label}: {time.perf_counter() - started:.2f} s for {len(split.references)} records "
                  f"({len(split.examples)} model inputs), {args.task} {args.lang} train")


if __name__ == "__main__":
    main()
