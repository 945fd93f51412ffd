"""Regenerate the bundled toy data (softprompt_xl/toy/data/): ``python -m softprompt_xl.toy.make_toy``.

For each language of lexicons/ this writes a Wikipedia-format corpus (``<lang>/wiki.jsonl.gz``, for span
corruption and the tiny model's tokenizer) and train/validation/test splits of the four tasks (generate.py),
so the framework runs and is tested offline through the same ``datasets.load_dataset`` code path that real hub
data takes. Output is deterministic: a rerun writes identical bytes (tests/test_toy_data.py checks the bundled
files are current).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
from pathlib import Path
from typing import Iterable, Sequence

from softprompt_xl.toy.generate import MAKERS, make_wiki
from softprompt_xl.toy.lexicon import LANGUAGES

DEFAULT_OUT = Path(__file__).resolve().parent / "data"


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    _write_gzip(path, "".join(json.dumps(row, ensure_ascii=False, sort_keys=True) + "\n" for row in rows))


def _write_gzip(path: Path, text: str) -> None:
    # Gzipped (datasets reads .jsonl.gz / .csv.gz as they are): plain text would be 3x larger, mostly 3-byte
    # Telugu characters. mtime=0 and no file name in the header keep the bytes reproducible.
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:
        fh.write(text.encode("utf-8"))


def _write_csv(path: Path, rows: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    _write_gzip(path, buffer.getvalue())


def write_all(out: Path = DEFAULT_OUT) -> list[Path]:
    out = Path(out)
    written = []
    for code, lang in LANGUAGES.items():
        path = out / code / "wiki.jsonl.gz"
        _write_jsonl(path, make_wiki(lang))
        written.append(path)
        for task, make in MAKERS.items():
            ext = "csv" if task == "checkworthy" else "jsonl"
            for split, rows in make(lang).items():
                path = out / code / task / f"{split}.{ext}.gz"
                (_write_jsonl if ext == "jsonl" else _write_csv)(path, rows)
                written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory (default: %(default)s)")
    args = parser.parse_args(argv)
    paths = write_all(args.out)
    total = sum(p.stat().st_size for p in paths)
    print(f"wrote {len(paths)} files, {total} bytes, under {args.out}")


if __name__ == "__main__":
    main()