"""Scores as plain functions of strings, independent of models and tokenizers.

SQuAD exact match and F1 follow the official v1.1 rules (normalise, then compare tokens; the best over
all gold answers), with a normalisation that works beyond English: Unicode punctuation of every script
is removed, combining marks (Telugu vowel signs) are kept, and articles are removed for English only.
"""

from __future__ import annotations

import collections
import re
import unicodedata

_EN_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str, lang: str = "en") -> str:
    text = unicodedata.normalize("NFC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    if lang == "en":
        text = _EN_ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str, lang: str = "en") -> float:
    return float(normalize_answer(prediction, lang) == normalize_answer(gold, lang))


def token_f1(prediction: str, gold: str, lang: str = "en") -> float:
    pred_tokens = normalize_answer(prediction, lang).split()
    gold_tokens = normalize_answer(gold, lang).split()
    if not pred_tokens or not gold_tokens:
        return float(pred_tokens == gold_tokens)
    common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad(predictions: list[str], references: list[list[str]], lang: str = "en") -> dict[str, float]:
    """Exact match and F1 in percent, each the best over an example's gold answers, averaged over examples."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    em = sum(max(exact_match(p, g, lang) for g in golds) for p, golds in zip(predictions, references))
    f1 = sum(max(token_f1(p, g, lang) for g in golds) for p, golds in zip(predictions, references))
    return {"exact_match": 100.0 * em / len(predictions), "f1": 100.0 * f1 / len(predictions)}
