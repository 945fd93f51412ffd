"""Scores as plain functions of strings, independent of models and tokenizers.

Accuracy, binary F1 and entity-span F1 (micro, over (type, text) pairs) are the usual definitions.
SQuAD exact match and F1 follow the official v1.1 rules (normalise, then compare tokens; the best over
all gold answers), with a normalisation that works beyond English: Unicode punctuation of every script
is removed, combining marks (Telugu vowel signs) are kept, and articles are removed for English only.
"""

from __future__ import annotations

import collections
import re
import unicodedata
from typing import Any

_EN_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str, lang: str | None = "en") -> str:
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


def accuracy(predictions: list, references: list) -> float:
    """Percent of predictions equal to their reference (an unparsed prediction, None, is wrong)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    return 100.0 * sum(p == r for p, r in zip(predictions, references)) / len(references) if references else 0.0


def binary_f1(predictions: list, references: list, positive: Any) -> float:
    """F1 in percent of the class `positive` (an unparsed prediction counts as not positive)."""
    tp = sum(p == positive and r == positive for p, r in zip(predictions, references))
    fp = sum(p == positive and r != positive for p, r in zip(predictions, references))
    fn = sum(p != positive and r == positive for p, r in zip(predictions, references))
    return 100.0 * 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def iob2_spans(tokens: list[str], tags: list[str]) -> list[tuple[str, str]]:
    """(type, text) of each entity in IOB2 tags; an I- tag without its B- starts a new entity (as seqeval does)."""
    spans, current = [], None
    for token, tag in zip(tokens, tags):
        prefix, _, kind = tag.partition("-")
        if prefix == "I" and current and current[0] == kind:
            current[1].append(token)
            continue
        if current:
            spans.append((current[0], " ".join(current[1])))
        current = (kind, [token]) if prefix in ("B", "I") else None
    if current:
        spans.append((current[0], " ".join(current[1])))
    return spans


def span_f1(predictions: list[list[tuple[str, str]]], references: list[list[tuple[str, str]]]) -> dict[str, float]:
    """Micro precision, recall and F1 in percent over (type, text) entities, matched within each sentence."""
    matched = predicted = gold = 0
    for pred, ref in zip(predictions, references):
        matched += sum((collections.Counter(pred) & collections.Counter(ref)).values())
        predicted += len(pred)
        gold += len(ref)
    precision = 100.0 * matched / predicted if predicted else 0.0
    recall = 100.0 * matched / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if matched else 0.0
    return {"span_f1": f1, "precision": precision, "recall": recall}
