"""Checks for the bundled toy datasets produced by ``softprompt_xl.toy.make_toy`` (generators: toy/generate.py)."""

from __future__ import annotations

import gzip
import itertools
import json
import re
from collections import Counter
from functools import lru_cache
from pathlib import Path

import pytest

from softprompt_xl.toy import generate, make_toy

TOY = Path(make_toy.__file__).resolve().parent / "data"
LANGS = tuple(generate.LANGUAGES)  # every lexicon of toy/lexicons/
# The Unicode range most letters of each language's text fall in: a lexicon in the wrong script (or a Latin
# transliteration) fails test_text_is_in_its_script.
SCRIPTS = {
    # Latin, with Latin-1 and Extended-A/B
    **dict.fromkeys(("en", "de", "es", "cs", "sk", "ro", "sl", "sw"), ("\u0041", "\u024f")),
    "te": ("\u0c00", "\u0c7f"),  # Telugu
    "ar": ("\u0600", "\u06ff"),  # Arabic (Urdu's own letters are in this block too)
    "ur": ("\u0600", "\u06ff"),
    "ru": ("\u0400", "\u04ff"),  # Cyrillic
    "bg": ("\u0400", "\u04ff"),
    "el": ("\u0370", "\u03ff"),  # Greek and Coptic
    "ml": ("\u0d00", "\u0d7f"),  # Malayalam
    "zh": ("\u4e00", "\u9fff"),  # CJK Unified Ideographs
}
# Each language's share of the bundle: today 44-56 KB of gzipped files (Telugu, 3-byte UTF-8, the largest).
LANG_BUDGET = 100_000
SPLITS = {"train": 400, "validation": 50, "test": 100}
TASK_FILES = {"qa": "jsonl.gz", "ner": "jsonl.gz", "nli": "jsonl.gz", "checkworthy": "csv.gz"}
EXPECTED_FILES = sorted(
    [f"{lang}/wiki.jsonl.gz" for lang in LANGS]
    + [f"{lang}/{task}/{split}.{ext}" for lang in LANGS for task, ext in TASK_FILES.items() for split in SPLITS]
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
    templates = generate.LANGUAGES[lang].questions
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


def test_all_toy_data_is_small():
    # Per language, so the budget grows with the languages (16 in the paper's v2: 1.6 MB in all) but not per file.
    sizes = Counter()
    for rel in EXPECTED_FILES:
        sizes[rel.split("/")[0]] += (TOY / rel).stat().st_size
    assert set(sizes) == set(LANGS) and max(sizes.values()) < LANG_BUDGET, sizes


def test_files_are_plain_utf8_jsonl():
    for rel in EXPECTED_FILES:
        raw = gzip.decompress((TOY / rel).read_bytes())
        assert b"\r" not in raw and raw.endswith(b"\n"), rel
        raw.decode("utf-8")


@pytest.mark.parametrize("lang", LANGS)
def test_wiki_schema(lang):
    rows = _rows(f"{lang}/wiki.jsonl.gz")
    assert len(rows) == generate.WIKI_SIZE
    for row in rows:
        assert set(row) == {"id", "url", "title", "text"}
        assert all(isinstance(v, str) and v for v in row.values())
        paragraphs = row["text"].split("\n")
        assert all(p.strip() == p and p for p in paragraphs)
        assert 3 <= row["text"].count(generate.LANGUAGES[lang].full_stop) <= 8
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
            assert len(row["context"]) <= generate.MAX_CONTEXT_CHARS
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
        assert set(counts) == set(generate.FACTS)
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


@pytest.mark.parametrize("lang", LANGS)
def test_text_is_in_its_script(lang):
    low, high = SCRIPTS[lang]
    for rel in (f"{lang}/wiki.jsonl.gz", f"{lang}/qa/train.jsonl.gz"):
        text = "".join(r.get("text", "") + r.get("context", "") + r.get("question", "") for r in _rows(rel))
        letters = [c for c in text if c.isalpha()]
        assert sum(low <= c <= high for c in letters) / len(letters) > 0.9, rel


def test_urdu_and_arabic_use_their_own_letters():
    # Urdu writes ی ک ہ where Arabic writes ي ك ه: a lexicon typed with the other language's keyboard
    # would look right and tokenize wrong.
    own = {"ur": set("یکہ"), "ar": set("يكه")}
    for lang, other in (("ur", "ar"), ("ar", "ur")):
        text = "".join(r["text"] for r in _rows(f"{lang}/wiki.jsonl.gz"))
        assert own[lang] <= set(text) and not own[other] & set(text), lang


def test_chinese_is_written_without_spaces_and_ner_tokens_are_characters():
    from softprompt_xl.data.tasks.ner import spans_to_tags

    for rel in ("zh/wiki.jsonl.gz", "zh/qa/train.jsonl.gz", "zh/nli/train.jsonl.gz"):
        for row in _rows(rel):
            assert not any(" " in row.get(k, "") for k in ("text", "context", "question", "premise", "hypothesis"))
    for split in SPLITS:
        for row in _rows(f"zh/ner/{split}.jsonl.gz"):
            assert all(len(token) == 1 and not token.isspace() for token in row["tokens"]), row
            # WikiANN writes an entity as its tokens joined by spaces ("PER: 王 晓 燕"); the task reads the
            # tags back from such spans, and each span is a run of the sentence's characters.
            assert spans_to_tags(row["tokens"], row["spans"]) == [generate.NER_TAGS[t] for t in row["ner_tags"]]
            sentence = "".join(row["tokens"])
            assert all(span.partition(": ")[2].replace(" ", "") in sentence for span in row["spans"]), row


def test_languages_have_distinct_text():
    vocab = {}
    for lang in LANGS:
        text = " ".join(r["text"] for r in _rows(f"{lang}/wiki.jsonl.gz"))
        vocab[lang] = set(re.findall(r"\w+", text.lower())) - set(re.findall(r"\d+", text))
    for a, b in itertools.combinations(LANGS, 2):
        overlap = len(vocab[a] & vocab[b]) / len(vocab[a] | vocab[b])
        assert overlap < 0.2, (a, b, overlap)


def _csv_rows(rel: str) -> list[dict]:
    import csv
    import io

    return list(csv.DictReader(io.StringIO(_text(TOY / rel))))


@pytest.mark.parametrize("lang", LANGS)
def test_ner_tags_are_wikiann_iob2_and_match_the_spans(lang):
    from softprompt_xl.data.tasks.metrics import iob2_spans

    types = Counter()
    for split, size in SPLITS.items():
        rows = _rows(f"{lang}/ner/{split}.jsonl.gz")
        assert len(rows) == size
        for row in rows:
            assert set(row) == {"tokens", "ner_tags", "langs", "spans"}
            assert len(row["tokens"]) == len(row["ner_tags"]) == len(row["langs"])
            tags = [generate.NER_TAGS[t] for t in row["ner_tags"]]
            spans = iob2_spans(row["tokens"], tags)
            assert [f"{kind}: {text}" for kind, text in spans] == row["spans"], row
            # WikiANN tags the name alone: not "في" / "میں" around a place, nor the article before a Greek name.
            language = generate.LANGUAGES[lang]
            for kind, text in spans:
                assert not set(text.split(" ")) & set(language.adpositions), row
                assert not any(a and text.lower().startswith(a) for a in language.name_article.values()), row
            types.update(kind for kind, _ in spans)
    assert set(types) == {"PER", "ORG", "LOC"}


def _denial(lang: str, fact: str, gender: str) -> str:
    """The words of a denied clause that do not depend on the value (the longest side of its slot)."""
    return max(generate.LANGUAGES[lang].negated[fact][gender].split("{v}"), key=len).strip()


@pytest.mark.parametrize("lang", LANGS)
def test_nli_labels_are_balanced_and_entailments_are_in_the_premise(lang):
    for split, size in SPLITS.items():
        rows = _rows(f"{lang}/nli/{split}.jsonl.gz")
        assert len(rows) == size
        counts = Counter(row["label"] for row in rows)
        assert set(counts) == {0, 1, 2} and max(counts.values()) - min(counts.values()) <= 1
        for row in rows:
            assert row["premise"] != row["hypothesis"]
            if row["label"] == 0:  # the hypothesis restates one clause of the premise: its last word is there
                stop = generate.LANGUAGES[lang].full_stop
                words = row["hypothesis"].removesuffix(stop).split(" ")
                last = words[-1] if generate.LANGUAGES[lang].word_sep else words[-1][-2:]  # zh: no spaces
                assert len(words) > 1 or not generate.LANGUAGES[lang].word_sep
                assert last in row["premise"], row
            if row["label"] == 2:  # it denies a clause of the premise: in its own words, a denial
                assert any(_denial(lang, fact, g) in row["hypothesis"] for fact in generate.FACTS for g in "fm"), row


@pytest.mark.parametrize("lang", LANGS)
def test_checkworthy_is_multiclaim_style_csv_and_splits_are_disjoint(lang):
    texts = set()
    for split, size in SPLITS.items():
        rows = _csv_rows(f"{lang}/checkworthy/{split}.csv.gz")
        assert len(rows) == size and set(rows[0]) == {"id", "text", "label"}
        assert Counter(row["label"] for row in rows) == {"0": size // 2, "1": size // 2}
        split_texts = {row["text"] for row in rows}
        assert len(split_texts) == size and not split_texts & texts
        texts |= split_texts


_RECORD_KEY = {"qa": lambda r: (r["context"], r["question"]), "ner": lambda r: tuple(r["tokens"]),
               "nli": lambda r: (r["premise"], r["hypothesis"]), "checkworthy": lambda r: r["text"]}


@pytest.mark.parametrize("task", TASK_FILES)
def test_fresh_pretraining_records_are_reproducible_and_never_a_bundled_record(task):
    key = _RECORD_KEY[task]
    for lang in ("en", "te", "el", "ur", "zh"):  # and a name article (el), full stops of their own (ur, zh)
        fresh = generate.fresh_records(task, lang, 300)
        assert fresh == generate.fresh_records(task, lang, 300) and len({key(r) for r in fresh}) == 300
        rows = [r for split in SPLITS for r in (_csv_rows(f"{lang}/{task}/{split}.csv.gz") if task == "checkworthy"
                                                  else _rows(f"{lang}/{task}/{split}.jsonl.gz"))]
        assert not {key(r) for r in fresh} & {key(r) for r in rows}
        assert set(fresh[0]) - {"statement"} == set(rows[0])  # a QA record's answer as a sentence is extra
