"""QA exact match and F1 against independent re-implementations of the two official scoring scripts.

The references below are written from the published rules of
- SQuAD v1.1's evaluate-v1.1.py: lower-case; delete every character of `string.punctuation`; replace the
  articles a/an/the (\\b-delimited) by a space; white-space tokens; F1 0 when no token is shared (two empty
  answers too), exact match of the normalised strings; each question's best over its gold answers;
  100 * sum / number of questions.
- MLQA's mlqa_evaluation_v1.py: the same, except that its punctuation is every character of a Unicode P*
  category plus `string.punctuation`, the articles are per language (en, es, vi, de, ar; none for hi, zh),
  and zh is segmented into single CJK characters (U+4E00..U+9FA5) and white-space tokens of the rest.
  For a language MLQA does not define, its rules without article removal.
They are deliberately shaped unlike softprompt_xl/data/tasks/metrics.py (str.translate, a set of all code points built
as MLQA builds it, padding CJK characters with spaces), so a shared mistake is unlikely.
"""

from __future__ import annotations

import random
import re
import string
import sys
import unicodedata
from collections import Counter

import pytest

from softprompt_xl.data.tasks import metrics

# --- the references -------------------------------------------------------------------------------------------
_SQUAD_DELETE = str.maketrans("", "", string.punctuation)


def squad_normalize(s: str) -> str:
    s = s.lower().translate(_SQUAD_DELETE)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


MLQA_PUNCT = {chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")}
MLQA_PUNCT |= set(string.punctuation)
_MLQA_DELETE = dict.fromkeys(map(ord, MLQA_PUNCT))
MLQA_ARTICLES = {
    "en": r"\b(a|an|the)\b",
    "es": r"\b(un|una|unos|unas|el|la|los|las)\b",
    "vi": r"\b(của|là|cái|chiếc|những)\b",
    "de": r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b",
    "ar": "\\sال^|ال",
}


def mlqa_normalize(s: str, lang: str) -> str:
    s = s.lower().translate(_MLQA_DELETE)
    if lang in MLQA_ARTICLES:
        s = re.sub(MLQA_ARTICLES[lang], " ", s)
    if lang == "zh":
        s = "".join(f" {c} " if "\u4e00" <= c <= "\u9fa5" or c in MLQA_PUNCT else c for c in s)
    return " ".join(t for t in s.split() if t.strip())


def reference_normalize(s: str, lang: str) -> str:
    return squad_normalize(s) if lang == "en" else mlqa_normalize(s, lang)


def reference_scores(prediction: str, gold: str, lang: str) -> tuple[bool, float]:
    p, g = reference_normalize(prediction, lang), reference_normalize(gold, lang)
    p_tokens, g_tokens = p.split(), g.split()
    same = sum((Counter(p_tokens) & Counter(g_tokens)).values())
    if same == 0:
        return p == g, 0
    precision, recall = 1.0 * same / len(p_tokens), 1.0 * same / len(g_tokens)
    return p == g, (2 * precision * recall) / (precision + recall)


def reference_corpus(predictions: list[str], references: list[list[str]], lang: str) -> dict[str, float]:
    em = f1 = 0
    for prediction, golds in zip(predictions, references):
        em += max(reference_scores(prediction, g, lang)[0] for g in golds)
        f1 += max(reference_scores(prediction, g, lang)[1] for g in golds)
    return {"exact_match": 100.0 * em / len(predictions), "f1": 100.0 * f1 / len(predictions)}


# --- random answers --------------------------------------------------------------------------------------------
WORDS = {
    "en": ["the", "The", "a", "A", "an", "AN", "then", "anthem", "cat", "U.S.", "US", "u.s", "1,000", "1000", "$5", "5",
           "don't", "dont", "e-mail", "New", "York", "Beyoncé", "naïve", "İstanbul", "ß", "x+y", "a<b", "a=b", "2^3",
           "a|b", "~5", "`x`", "café", "cafe\u0301", "\u212b", "Å", "«Paris»", "“quoted”", "‘it’s’", "well-known"],
    "es": ["el", "El", "la", "LA", "los", "las", "un", "una", "unos", "unas", "elefante", "lasaña", "¿Qué?", "¡Hola!",
           "año", "España", "«Madrid»", "1.000", "el-niño"],
    "de": ["der", "Die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "eines", "einer", "Derby",
           "Straße", "„Berlin“", "München", "dessen", "Einheit", "z.B.", "U-Bahn"],
    "vi": ["của", "Của", "là", "LÀ", "cái", "chiếc", "những", "Những", "Việt", "Nam", "Hà", "Nội", "cáiđó", "người",
           "ngu\u031b\u0300o\u031bi", "cu\u0309a"],  # decomposed: no Unicode normalisation,
    "ar": ["الكتاب", "ال", "كتاب", "القاهرة", "مصر", "،", "؟", "السلام", "بالمدرسة", "وال"],
    "hi": ["भारत", "की", "राजधानी", "दिल्ली", "।", "हिन्दी", "the", "a"],
    "zh": ["中国", "北京大学", "，", "。", "、", "「", "」", "《书》", "abc", "Deep", "Learning", "2019年", "㐀", "鿿", "龥",
           "一", "ｖｓ", "！", "（注）"],
    "sk": ["Bratislava", "v", "Prahe", "«Bratislave»!", "Žltá", "ŽABA.", "the", "a", "1,000", "$5"],
    "cs": ["Praha", "Česká", "republika", "„Brno“", "the", "el"],
    "te": ["హైదరాబాద్‌లో", "తెలుగు", "భాష", "।", "the"],
    "bg": ["София", "България", "—", "„Пловдив“", "der"],
}
PUNCTUATION = list(string.punctuation) + list("「」、。¿¡«»—–…•‘’“”„‹›·・〈〉【】《》！？，：；（）؟،।॥")
SPACES = [" ", "  ", "\t", "\n", "\u00a0", "\u3000", "\u2009", "\x1c", "\u200b", ""]  # \u200b is not white space
LANGS = sorted(WORDS)


def random_answer(rng: random.Random, lang: str) -> str:
    if rng.random() < 0.06:
        return rng.choice(["", " ", ".", "the", "!!", "。"])
    parts = []
    for _ in range(rng.randint(1, 6)):
        roll = rng.random()
        if roll < 0.6:
            word = rng.choice(WORDS[lang])
        elif roll < 0.75:
            word = rng.choice(WORDS[rng.choice(LANGS)])
        else:
            word = rng.choice(PUNCTUATION)
        if rng.random() < 0.1:
            word = word.upper()
        if rng.random() < 0.15:  # punctuation inside or around a word
            cut = rng.randint(0, len(word))
            word = word[:cut] + rng.choice(PUNCTUATION) + word[cut:]
        parts.append(word)
        parts.append(rng.choice(SPACES[:-1]) if rng.random() < 0.8 else rng.choice(SPACES))
    return "".join(parts[:-1]) if rng.random() < 0.7 else "".join(parts)


def vary(rng: random.Random, answer: str) -> str:
    """A prediction near a gold answer, so that exact matches and partial overlaps are common."""
    roll = rng.random()
    if roll < 0.25:
        return answer
    if roll < 0.45:
        return "".join(ch for ch in answer if rng.random() < 0.85)
    if roll < 0.6:
        return answer.swapcase()
    words = answer.split()
    rng.shuffle(words)
    return " ".join(words[: rng.randint(0, len(words))])


def random_cases(lang: str, n: int, seed: int) -> list[tuple[str, list[str]]]:
    rng = random.Random(f"{seed}-{lang}")
    cases = []
    for _ in range(n):
        golds = [random_answer(rng, lang) for _ in range(rng.randint(1, 3))]
        prediction = vary(rng, rng.choice(golds)) if rng.random() < 0.7 else random_answer(rng, lang)
        cases.append((prediction, golds))
    return cases


# --- the comparison --------------------------------------------------------------------------------------------
N_CASES = 3000


@pytest.mark.parametrize("lang", LANGS)
def test_qa_scores_equal_the_official_scripts_on_random_answers(lang):
    cases = random_cases(lang, N_CASES, seed=13)
    unequal, exact, partial = [], 0, 0
    for prediction, golds in cases:
        for gold in golds:
            em, f1 = reference_scores(prediction, gold, lang)
            ours = (metrics.exact_match(prediction, gold, lang), metrics.token_f1(prediction, gold, lang))
            if ours != (float(em), float(f1)) or type(ours[0]) is not float:
                unequal.append((prediction, gold, ours, (em, f1)))
            exact += em
            partial += 0 < f1 < 1
    predictions, references = [c[0] for c in cases], [c[1] for c in cases]
    ours, theirs = metrics.squad(predictions, references, lang), reference_corpus(predictions, references, lang)
    script = "SQuAD v1.1" if lang == "en" else f"MLQA ({lang})"
    pairs = sum(len(golds) for _, golds in cases)
    print(f"{script}: {pairs - len(unequal)}/{pairs} answer pairs equal ({exact} exact matches, {partial} partial F1); "
          f"corpus of {len(cases)} questions: ours {ours}, reference {theirs}")
    assert not unequal, f"{len(unequal)} of {pairs} differ, e.g. {unequal[:3]}"
    assert ours == theirs  # equal floats, not approximately: the same sums in the same order
    assert exact > N_CASES / 20 and partial > N_CASES / 20  # the cases exercise more than empty overlaps


def test_the_references_reproduce_the_scripts_documented_behaviour():
    """The references themselves, on cases whose official result follows directly from the scripts' rules."""
    assert squad_normalize("U.S.") == squad_normalize("US") == "us"
    assert squad_normalize("«Paris»") == "«paris»"  # SQuAD deletes ASCII punctuation only
    assert mlqa_normalize("«Paris»", "es") == "paris"
    assert mlqa_normalize("中国，北京 abc", "zh") == "中 国 北 京 abc"
    assert mlqa_normalize("الكتاب", "ar") == "كتاب"
    assert reference_scores("", "", "en") == (True, 0)
    assert squad_normalize("cafe\u0301") != squad_normalize("café")  # no Unicode normalisation
    assert len(MLQA_PUNCT) > 800 and "$" in MLQA_PUNCT and "。" in MLQA_PUNCT and "a" not in MLQA_PUNCT


def test_mlqa_punctuation_is_the_published_set():
    """metrics' per-character test equals MLQA's PUNCT set on every code point."""
    rules = metrics.qa_rules("sk")
    differ = [i for i in range(sys.maxunicode + 1) if rules.is_punctuation(chr(i)) != (chr(i) in MLQA_PUNCT)]
    assert not differ, [hex(i) for i in differ[:10]]


@pytest.mark.parametrize("prediction,gold,lang,em,f1", [
    ("U.S.", "US", "en", 1.0, 1.0),            # punctuation inside a word is deleted, not replaced by a space
    ("1,000", "1000", "en", 1.0, 1.0),
    ("$5", "5", "en", 1.0, 1.0),               # ASCII symbols are in string.punctuation
    ("don't", "dont", "en", 1.0, 1.0),
    ("«Paris»", "Paris", "en", 0.0, 0.0),     # SQuAD v1.1 keeps non-ASCII punctuation
    ("«Paris»", "Paris", "sk", 1.0, 1.0),     # MLQA removes it
    ("", "", "en", 1.0, 0.0),                  # the official scripts' treatment of two empty answers
    ("the", "a", "en", 1.0, 0.0),              # both normalise to nothing
    ("El gato", "gato", "es", 1.0, 1.0),
    ("El gato", "gato", "sk", 0.0, 2 / 3),     # no articles for a language MLQA does not define
    ("die Katze", "Katze", "de", 1.0, 1.0),
    ("中国", "中", "zh", 0.0, 2 / 3),          # mixed segmentation: one token per character
])
def test_known_cases(prediction, gold, lang, em, f1):
    assert metrics.exact_match(prediction, gold, lang) == em
    assert metrics.token_f1(prediction, gold, lang) == pytest.approx(f1)
    assert reference_scores(prediction, gold, lang) == (bool(em), pytest.approx(f1))


def test_rules_table_names_the_mlqa_languages():
    assert metrics.qa_rules("en") is metrics.SQUAD_V1_1
    assert {"es", "de", "vi", "ar", "hi", "zh"} <= set(metrics.QA_RULES)
    assert metrics.qa_rules("te") is metrics.qa_rules("bg") is metrics.qa_rules(None) is metrics.MLQA_OTHER_LANGUAGES
