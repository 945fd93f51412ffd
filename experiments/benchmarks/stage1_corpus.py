"""Stage 1 on a corpus of a real size: peak memory and time to the first training step.

Writes a Wikipedia-schema Parquet corpus (id, url, title, text; shards as `wikimedia/wikipedia` ships them) of a
given size of text, then runs one short language-prompt stage on it as a user would and reports the job's peak
resident memory (its process and children) and the seconds from the command's start to its first training step.

    python experiments/benchmarks/stage1_corpus.py make /tmp/corpus-2g --gb 2
    python experiments/benchmarks/stage1_corpus.py run /tmp/corpus-2g            # this checkout
    python experiments/benchmarks/stage1_corpus.py run toy                       # the same job on the toy corpus
    python experiments/benchmarks/stage1_corpus.py run /tmp/corpus-2g --checkout OTHER --limit-s 330 --limit-gb 12

Run nothing else meanwhile: two torch processes on two cores slow each other many times over.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
# heldout_chunks=0: the same job as before stage 1 scored held-out text (that costs a pass over the selection);
# trainer.progress=bar: the bar, whose first step FIRST_STEP finds, also in the pipe the job writes to (`++`: a
# --checkout from before that setting takes it too, and has the bar anyway)
JOB = ["+combo=lp_ta", "lang=sk", "stage=lang", "lang_stage.max_steps=5", "lang_stage.heldout_chunks=0", "logger=none",
       "++trainer.progress=bar"]
# The words of the generated corpus: those of the bundled Slovak toy corpus (paths.toy_data, in the package).
TOY_CORPUS = PROJECT / "softprompt_xl" / "toy" / "data" / "sk" / "wiki.jsonl.gz"
FIRST_STEP = re.compile(r"\b1/5 \[")  # the progress bar after the first optimiser step


def make(directory: Path, gb: float, shards: int, seed: int = 0) -> None:
    import gzip
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    words = gzip.open(TOY_CORPUS, "rt", encoding="utf-8").read()
    vocabulary = sorted({w for line in words.splitlines() for w in json.loads(line)["text"].split()})
    rng = random.Random(seed)
    # Paragraphs drawn once, documents made of several of them: gigabytes of text in seconds, not hours.
    paragraphs = [" ".join(rng.choices(vocabulary, k=rng.randint(40, 160))) + "." for _ in range(4000)]
    directory.mkdir(parents=True, exist_ok=True)
    target, written, doc = int(gb * 1e9), 0, 0
    per_shard = target // shards
    for shard in range(shards):
        rows, size = [], 0
        while size < per_shard:
            text = "\n\n".join(rng.choices(paragraphs, k=rng.randint(2, 12)))
            rows.append({"id": str(doc), "url": f"https://sk.wikipedia.org/wiki?curid={doc}", "title": f"Článok {doc}",
                         "text": text})
            size += len(text.encode("utf-8"))
            doc += 1
        # Row groups of 1,000 rows, as `datasets` writes the Hub's Parquet files: a reader holds one row group at a
        # time, so a file written as one giant row group costs its whole size in memory whatever the reader.
        pq.write_table(pa.Table.from_pylist(rows), directory / f"train-{shard:05d}-of-{shards:05d}.parquet",
                       row_group_size=1000)
        written += size
        print(f"shard {shard + 1}/{shards}: {len(rows)} documents, {size / 1e9:.2f} GB of text", flush=True)
    print(f"{directory}: {doc} documents, {written / 1e9:.2f} GB of text")


def _rss_gb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"VmRSS:\s+(\d+)", status)  # absent once the process has exited
    return int(found.group(1)) / 1e6 if found else 0.0


def run(corpus: str, checkout: Path, limit_s: float, limit_gb: float, root: Path) -> None:
    args = list(JOB)
    if corpus != "toy":
        files = str(Path(corpus).resolve() / "*.parquet")
        args.append(f"data.wiki={{path:parquet,data_files:{{train:'{files}'}},splits:{{train:train}}}}")
    env = {**os.environ, "PYTHONPATH": str(checkout), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "softprompt_xl.train", *args, f"paths.root={root}"]
    started = time.time()
    proc = subprocess.Popen(command, cwd=checkout, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    first, tail = None, b""
    os.set_blocking(proc.stdout.fileno(), False)
    while proc.poll() is None:
        if time.time() - started > limit_s or _rss_gb(proc.pid) > limit_gb:
            proc.kill()
            break
        chunk = proc.stdout.read() or b""
        tail = (tail + chunk)[-20000:]
        if first is None and FIRST_STEP.search(tail.decode("utf-8", "replace")):
            first = time.time() - started
        time.sleep(0.2)
    proc.wait()
    tail = (tail + (proc.stdout.read() or b""))[-20000:]
    if first is None and FIRST_STEP.search(tail.decode("utf-8", "replace")):
        first = time.time() - started
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6  # kB on Linux
    ended = "killed at a limit" if proc.returncode in (-9, 137) else f"exit {proc.returncode}"
    print(f"corpus {corpus} | checkout {checkout} | {ended} after {time.time() - started:.0f} s | first step "
          f"{'never' if first is None else f'{first:.0f} s'} | peak RSS {peak_gb:.2f} GB")
    if proc.returncode not in (0, -9, 137):
        print(tail.decode("utf-8", "replace")[-3000:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    m = sub.add_parser("make", help="write a Wikipedia-schema Parquet corpus")
    m.add_argument("directory", type=Path)
    m.add_argument("--gb", type=float, default=0.2, help="size of its text in GB")
    m.add_argument("--shards", type=int, default=4)
    r = sub.add_parser("run", help="run a 5-step language-prompt stage on it and measure")
    r.add_argument("corpus", help="a directory written by `make`, or toy")
    r.add_argument("--checkout", type=Path, default=PROJECT, help="the checkout whose code runs (default: this one)")
    r.add_argument("--limit-s", type=float, default=600, help="stop the job after this many seconds")
    r.add_argument("--limit-gb", type=float, default=16, help="stop the job when its memory passes this")
    r.add_argument("--root", type=Path, default=Path("/tmp/stage1-corpus-bench"))
    a = parser.parse_args()
    if a.what == "make":
        make(a.directory, a.gb, a.shards)
    else:
        import shutil

        shutil.rmtree(a.root, ignore_errors=True)
        run(a.corpus, a.checkout.resolve(), a.limit_s, a.limit_gb, a.root)


if __name__ == "__main__":
    main()
