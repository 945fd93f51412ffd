"""Checks for the bundled toy datasets produced by ``softprompt_xl.data.make_toy``."""

from __future__ import annotations

import gzip
import itertools
import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from softprompt_xl.data import make_toy

TOY = Path(make_toy.__file__).resolve().parent / "toy"
LANGS = ("en", "de", "es", "cs", "sk", "te")
SPLITS = {"train": 400, "validation": 50, "test": 100}
EXPECTED_FILES = sorted(
    [f"{lang}/wiki.jsonl.gz" for lang in LANGS] + [f"{lang}/qa/{split}.jsonl.gz" for lang in LANGS for split in SPLITS]
)


def _text(path: Path) -> str:
    return gzip.decompress(path.read_bytes()).decode("utf-8")


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@lru_cache(maxsize=None)
def _rows(rel: str) -> tuple[dict, ...]:
    text = _text(TOY / rel)
    return tuple(json.loads(line) for line in text.splitlines())


def _qa(lang: str, split: str) -> tuple[dict, ...]:
    return _rows(f"{lang}/qa/{split}.jsonl.gz")


def _fact_of(lang: str, question: str) -> str:
    templates = make_toy.LANGUAGES[lang].questions
    matches = {
        fact
        for fact, by_gender in templates.items()
        for template in by_gender.values()
        if re.fullmatch(re.escape(template).replace(re.escape("{name}"), r"\S+"), question)
    }
    assert len(matches) == 1, question
    return matches.pop()


def test_committed_files_match_regeneration(tmp_path):
    # Byte equality proves both determinism and that the committed files are
    # in sync with the generator source.
    make_toy.main(["--out", str(tmp_path)])
    assert _listing(TOY) == EXPECTED_FILES
    assert _listing(tmp_path) == EXPECTED_FILES
    for rel in EXPECTED_FILES:
        # Compared decompressed: another zlib build may compress the same text to other bytes.
        assert _text(tmp_path / rel) == _text(TOY / rel), f"{rel} is stale: rerun make_toy"


def test_files_are_plain_utf8_jsonl():
    for rel in EXPECTED_FILES:
        raw = gzip.decompress((TOY / rel).read_bytes())
        assert b"\r" not in raw and raw.endswith(b"\n"), rel
        raw.decode("utf-8")


@pytest.mark.parametrize("lang", LANGS)
def test_wiki_schema(lang):
    rows = _rows(f"{lang}/wiki.jsonl.gz")
    assert len(rows) == make_toy.WIKI_SIZE
    for row in rows:
        assert set(row) == {"id", "url", "title", "text"}
        assert all(isinstance(v, str) and v for v in row.values())
        paragraphs = row["text"].split("\n")
        assert all(p.strip() == p and p for p in paragraphs)
        assert 3 <= row["text"].count(".") <= 8
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({r["title"] for r in rows}) == len(rows)


@pytest.mark.parametrize("lang", LANGS)
def test_qa_schema_sizes_and_spans(lang):
    ids = set()
    for split, size in SPLITS.items():
        rows = _qa(lang, split)
        assert len(rows) == size
        for row in rows:
            assert set(row) == {"id", "title", "context", "question", "answers"}
            assert all(isinstance(row[k], str) and row[k] for k in ("id", "title", "context", "question"))
            answers = row["answers"]
            assert set(answers) == {"text", "answer_start"}
            texts, starts = answers["text"], answers["answer_start"]
            assert isinstance(texts, list) and isinstance(starts, list)
            assert 1 <= len(texts) == len(starts)
            for text, start in zip(texts, starts):
                assert isinstance(text, str) and type(start) is int
                assert row["context"][start:start + len(text)] == text, row["id"]
                assert 1 <= len(text.split()) <= 3
            assert len(row["context"]) <= make_toy.MAX_CONTEXT_CHARS
            ids.add(row["id"])
    assert len(ids) == sum(SPLITS.values())


@pytest.mark.parametrize("lang", LANGS)
def test_qa_splits_are_disjoint_and_balanced(lang):
    seen = set()
    for split in SPLITS:
        rows = _qa(lang, split)
        keys = {(r["context"], r["question"]) for r in rows}
        assert len(keys) == len(rows) and not keys & seen
        seen |= keys
        # Fact types are cycled evenly: each question template gets its share.
        counts = Counter(_fact_of(lang, r["question"]) for r in rows)
        assert set(counts) == set(make_toy.FACTS)
        assert max(counts.values()) - min(counts.values()) <= 1
        multi = sum(len(r["answers"]["text"]) > 1 for r in rows)
        if split == "train":
            assert multi == 0
        else:
            assert 0.05 * len(rows) <= multi <= 0.15 * len(rows)


@pytest.mark.parametrize("lang", LANGS)
def test_wiki_covers_qa_answers(lang):
    # The tokenizer and pre-training corpus should have seen every answer.
    wiki = "\n".join(r["text"] for r in _rows(f"{lang}/wiki.jsonl.gz"))
    answers = {t for split in SPLITS for r in _qa(lang, split) for t in r["answers"]["text"]}
    assert not {a for a in answers if a not in wiki}


def test_telugu_is_in_telugu_script():
    for rel in ("te/wiki.jsonl.gz", "te/qa/train.jsonl.gz"):
        text = "".join(r.get("text", "") + r.get("context", "") + r.get("question", "") for r in _rows(rel))
        letters = [c for c in text if c.isalpha()]
        telugu = sum("\u0c00" <= c <= "\u0c7f" for c in letters)
        assert telugu / len(letters) > 0.5, rel


def test_languages_have_distinct_text():
    vocab = {}
    for lang in LANGS:
        text = " ".join(r["text"] for r in _rows(f"{lang}/wiki.jsonl.gz"))
        vocab[lang] = set(re.findall(r"\w+", text.lower())) - set(re.findall(r"\d+", text))
    for a, b in itertools.combinations(LANGS, 2):
        overlap = len(vocab[a] & vocab[b]) / len(vocab[a] | vocab[b])
        assert overlap < 0.2, (a, b, overlap)
