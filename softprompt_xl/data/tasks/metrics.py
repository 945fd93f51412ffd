"""Scores as plain functions of strings, independent of models and tokenizers.

Accuracy, binary F1 and entity-span F1 (micro, over (type, text) pairs) are the usual definitions.
QA exact match and F1 equal those of the official scripts on every input, so that scores compare with the
literature: the SQuAD v1.1 script (evaluate-v1.1.py) for English, the MLQA script (mlqa_evaluation_v1.py)
for the other languages it defines, and MLQA's rules without article removal for every other language.
`QA_RULES` is the table; no other normalisation is done (no Unicode normalisation: the scripts do none).

Each metric also comes as per-example sufficient statistics (`ExampleStats`): numbers per example whose column
sums determine the corpus-level score (SQuAD: EM and F1 per example; span F1: matched, predicted and gold spans
per sentence; accuracy: correct per example). Resampling examples is then summing rows, so the report's bootstrap
and randomisation tests are exact for F1-like corpus metrics, and fast.
"""

from __future__ import annotations

import collections
import re
import string
import unicodedata
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

_ASCII_PUNCTUATION = frozenset(string.punctuation)


def _squad_punctuation(ch: str) -> bool:
    return ch in _ASCII_PUNCTUATION


def _mlqa_punctuation(ch: str) -> bool:
    # MLQA's PUNCT set: every character of a Unicode P* category, plus string.punctuation (which adds the
    # symbols $ + < = > ^ ` | ~ of categories S*). A test checks this against the set built as MLQA builds it.
    return ch in _ASCII_PUNCTUATION or unicodedata.category(ch).startswith("P")


def _mixed_segmentation(text: str) -> list[str]:
    """MLQA's Chinese tokens: every character in U+4E00..U+9FA5 (exactly that range) and every punctuation
    character is a token of its own; the text between them is split at white space."""
    tokens, run = [], ""
    for ch in text:
        if "\u4e00" <= ch <= "\u9fa5" or _mlqa_punctuation(ch):
            tokens.extend(run.split())
            tokens.append(ch)
            run = ""
        else:
            run += ch
    tokens.extend(run.split())
    return tokens


@dataclass(frozen=True)
class AnswerRules:
    """How a language's answers are normalised before comparison, in the official scripts' order: lower-case,
    delete punctuation, replace articles by a space, tokenise, join the tokens by single spaces."""

    is_punctuation: Callable[[str], bool]
    articles: re.Pattern | None = None
    tokenize: Callable[[str], list[str]] = str.split


def _mlqa(articles: str | None = None, tokenize: Callable[[str], list[str]] = str.split) -> AnswerRules:
    return AnswerRules(_mlqa_punctuation, re.compile(articles) if articles else None, tokenize)


SQUAD_V1_1 = AnswerRules(_squad_punctuation, re.compile(r"\b(a|an|the)\b"))
MLQA_OTHER_LANGUAGES = _mlqa()  # a language MLQA does not define: its punctuation and tokens, no articles
QA_RULES: dict[str, AnswerRules] = {
    "en": SQUAD_V1_1,  # SQuAD's script, not MLQA's English (which also deletes non-ASCII punctuation)
    "es": _mlqa(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "de": _mlqa(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "vi": _mlqa(r"\b(của|là|cái|chiếc|những)\b"),
    # As published: the first branch can never match (^ after text), so every ال goes, inside words too.
    "ar": _mlqa(r"\sال^|ال"),
    "hi": _mlqa(),
    "zh": _mlqa(tokenize=_mixed_segmentation),
}


def qa_rules(lang: str | None) -> AnswerRules:
    return QA_RULES.get(lang, MLQA_OTHER_LANGUAGES) if lang is not None else MLQA_OTHER_LANGUAGES


def normalize_answer(text: str, lang: str | None = "en") -> str:
    """`text` as `lang`'s official script compares it (None: MLQA's rules without articles)."""
    rules = qa_rules(lang)
    text = "".join(ch for ch in text.lower() if not rules.is_punctuation(ch))
    if rules.articles is not None:
        text = rules.articles.sub(" ", text)
    return " ".join(rules.tokenize(text))


def exact_match(prediction: str, gold: str, lang: str = "en") -> float:
    return float(normalize_answer(prediction, lang) == normalize_answer(gold, lang))


def token_f1(prediction: str, gold: str, lang: str = "en") -> float:
    pred_tokens = normalize_answer(prediction, lang).split()
    gold_tokens = normalize_answer(gold, lang).split()
    overlap = sum((collections.Counter(pred_tokens) & collections.Counter(gold_tokens)).values())
    if overlap == 0:  # two empty answers included: the official scripts give them F1 0 (and exact match 1)
        return 0.0
    precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
    return (2 * precision * recall) / (precision + recall)  # the scripts' expression, for equal floats


def squad(predictions: list[str], references: list[list[str]], lang: str = "en") -> dict[str, float]:
    """Exact match and F1 in percent, each the best over an example's gold answers, averaged over examples
    (summed in example order, then scaled, as the official scripts do)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not predictions:
        return {"exact_match": 0.0, "f1": 0.0}
    if not all(references):
        raise ValueError(f"example {[bool(r) for r in references].index(False)} has no gold answer to score against")
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


@dataclass(frozen=True)
class ExampleStats:
    """Per-example statistics of a set of predictions: `values[i]` those of example i (columns `columns`), and
    `metrics`, which maps summed statistics (an array whose last axis is the columns; any leading axes, e.g. one
    row per bootstrap resample) to each metric's value (arrays of the leading shape). The task's score is
    `metrics` of the column sums of all examples (`score()`)."""

    columns: tuple[str, ...]
    values: np.ndarray  # (examples, columns), float64
    metrics: Callable[[np.ndarray], dict[str, np.ndarray]]

    def score(self) -> dict[str, float]:
        return {name: float(v) for name, v in self.metrics(self.values.sum(axis=0)).items()}

    def take(self, rows: np.ndarray) -> "ExampleStats":
        return ExampleStats(self.columns, self.values[rows], self.metrics)


def _percent(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    """100 * part / whole, 0 where whole is 0 (an empty set of examples scores 0, as the functions above do)."""
    return np.where(whole > 0, 100.0 * part / np.where(whole > 0, whole, 1), 0.0)


def _f1(matched: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """2PR / (P + R) from counts = 2 matched / (predicted + gold); 0 without a match."""
    return np.where(matched > 0, 200.0 * matched / np.maximum(predicted + gold, 1), 0.0)


def example_stats(columns: dict[str, list[float]], metrics: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]]
                  ) -> ExampleStats:
    """Statistics from named per-example columns, and `metrics` written over named sums."""
    names = tuple(columns)
    values = np.array([columns[n] for n in names], dtype=np.float64).T.reshape(-1, len(names))
    return ExampleStats(names, values, lambda sums: metrics({n: sums[..., j] for j, n in enumerate(names)}))


def squad_stats(predictions: list[str], references: list[list[str]], lang: str = "en") -> ExampleStats:
    """`squad`'s exact match and F1, per example (the best over its gold answers)."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not all(references):
        raise ValueError(f"example {[bool(r) for r in references].index(False)} has no gold answer to score against")
    return example_stats(
        {"examples": [1.0] * len(predictions),
         "exact_match": [max(exact_match(p, g, lang) for g in golds) for p, golds in zip(predictions, references)],
         "f1": [max(token_f1(p, g, lang) for g in golds) for p, golds in zip(predictions, references)]},
        lambda s: {"exact_match": _percent(s["exact_match"], s["examples"]), "f1": _percent(s["f1"], s["examples"])})


def classification_stats(predictions: list, references: list, positive: Any = None) -> ExampleStats:
    """`accuracy` (and `binary_f1` of `positive`, unless None) per example."""
    columns = {"examples": [1.0] * len(references), "correct": [float(p == r) for p, r in zip(predictions, references)]}
    if positive is not None:
        columns |= {"tp": [float(p == positive and r == positive) for p, r in zip(predictions, references)],
                    "predicted": [float(p == positive) for p in predictions],
                    "gold": [float(r == positive) for r in references]}

    def metrics(s):
        out = {"accuracy": _percent(s["correct"], s["examples"])}
        if positive is not None:
            out["f1"] = _f1(s["tp"], s["predicted"], s["gold"])
        return out

    return example_stats(columns, metrics)


def span_stats(predictions: list[list[tuple[str, str]]], references: list[list[tuple[str, str]]]) -> ExampleStats:
    """`span_f1`'s matched, predicted and gold entities per sentence (micro F1 is a function of their sums)."""
    return example_stats(
        {"matched": [sum((collections.Counter(p) & collections.Counter(r)).values()) for p, r in zip(predictions, references)],
         "predicted": [len(p) for p in predictions], "gold": [len(r) for r in references]},
        lambda s: {"span_f1": _f1(s["matched"], s["predicted"], s["gold"]),
                   "precision": _percent(s["matched"], s["predicted"]), "recall": _percent(s["matched"], s["gold"])})


def with_rate(stats: ExampleStats, name: str, flags: list[bool]) -> ExampleStats:
    """`stats` plus a percentage of examples flagged (e.g. `unparsed`), as its own column."""
    n, values = len(flags), stats.values
    count = np.ones((n, 1)) if "examples" not in stats.columns else np.zeros((n, 0))
    columns = stats.columns + (("examples",) if count.shape[1] else ()) + (name,)
    inner, width = stats.metrics, len(stats.columns)
    at_n, at_flag = columns.index("examples"), len(columns) - 1

    def metrics(sums):
        return {**inner(sums[..., :width]), name: _percent(sums[..., at_flag], sums[..., at_n])}

    return ExampleStats(columns, np.hstack([values.reshape(n, width), count, np.array(flags, dtype=np.float64)[:, None]]),
                        metrics)
