"""SQuAD JSON (SQuAD v1.1 / v2.0, MLQA, XQuAD): one document `{"data": [{"title", "paragraphs": [{"context",
"qas": [...]}]}]}`, flattened into the flat SQuAD schema (id, title, context, question, answers {text,
answer_start}) as the hub's SQuAD has it. A SQuAD v2.0 question with `is_impossible` gets no answers (its
`plausible_answers` are not answers). Its files are `json` files, as JSON Lines are: the content tells them apart.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any, Iterator

import datasets
import pyarrow.compute as pc

from softprompt_xl.data.formats.base import Split, open_text
from softprompt_xl.data.formats.jsonl import JsonLines, load_json_document
from softprompt_xl.data.tasks.base import FIX
from softprompt_xl.data.tasks.qa import ANSWERS
from softprompt_xl.errors import UserError

log = logging.getLogger(__name__)

SQUAD_FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "title": datasets.Value("string"),
    "context": datasets.Value("string"),
    "question": datasets.Value("string"),
    "answers": ANSWERS,
})
_SQUAD_START = re.compile(r'\A\ufeff?\s*\{\s*"(?:data|version)"\s*:')


class SquadJson(JsonLines):
    def holds(self, files: list[str]) -> bool:
        return any(_is_squad_json(path) for path in files)

    def options(self, part: Split) -> dict:
        return {"field": "data"}

    def read(self, part: Split) -> datasets.Dataset:
        return _flatten(super().read(part), part)

    def diagnose(self, path: str, source: dict) -> str | None:
        return _problem(path)

    def locate(self, path: str, index: int, source: dict) -> str | int | None:
        document = load_json_document(path)
        if isinstance(document, str):
            return None
        count = 0
        for a, p, q, article, _, qa in _squad_questions(document):
            if count == index:
                title = article.get("title") if isinstance(article, dict) else None
                qid = qa.get("id") if isinstance(qa, dict) else None
                return (f"question {q} (id {qid!r}) of paragraph {p} of article {a}"
                        f"{f' ({title!r})' if title else ''} of {path}")
            count += 1
        return count


def _is_squad_json(path: str) -> bool:
    """Whether a .json(l) file is one SQuAD-style JSON document ({"version", "data": [articles]}), not JSON Lines."""
    try:
        with open_text(path) as stream:
            head = stream.read(65536)
    except (OSError, UnicodeDecodeError):
        return False
    body = head.lstrip("\ufeff \t\r\n")
    if not body.startswith("{"):
        return False
    if _SQUAD_START.match(head):
        return True
    try:  # one complete object on the first line: JSON Lines, unless it is a one-line SQuAD document
        first = json.loads(body.split("\n", 1)[0])
    except ValueError:  # the first line is not a whole object: a pretty-printed (or long) JSON document
        return re.search(r'"data"\s*:\s*\[', head) is not None
    return isinstance(first, dict) and isinstance(first.get("data"), list) and '"paragraphs"' in head


class _Malformed(Exception):
    """Raised inside datasets.map; turned into a UserError with the exact place outside it."""


def _flatten(articles: datasets.Dataset, part: Split) -> datasets.Dataset:
    """SQuAD articles (title, paragraphs[context, qas[id, question, answers[text, answer_start]]]) -> one row per
    question. Files whose `data` already holds flat records are returned as they are."""
    if "paragraphs" not in articles.column_names:
        return articles

    def flatten(batch: dict) -> dict:
        out = {name: [] for name in SQUAD_FEATURES}
        for title, paragraphs in zip(batch.get("title") or [None] * len(batch["paragraphs"]), batch["paragraphs"]):
            for paragraph in paragraphs or []:
                if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                    raise _Malformed()
                for qa in paragraph.get("qas") or []:
                    answers = qa.get("answers") if isinstance(qa, dict) else None
                    if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or not isinstance(answers, list):
                        raise _Malformed()
                    if any(not isinstance(a, dict) or not isinstance(a.get("text"), str) for a in answers):
                        raise _Malformed()
                    out["id"].append(None if qa.get("id") is None else str(qa["id"]))
                    out["title"].append(title)
                    out["context"].append(paragraph["context"])
                    out["question"].append(qa["question"])
                    if qa.get("is_impossible") is True:  # SQuAD v2.0: unanswerable, whatever else it lists
                        answers = []
                    out["answers"].append({"text": [a["text"] for a in answers],
                                           "answer_start": [a.get("answer_start", -1) for a in answers]})
        return out

    try:
        questions = articles.map(flatten, batched=True, remove_columns=articles.column_names,
                                 features=SQUAD_FEATURES, desc="Flattening SQuAD JSON")
    except (_Malformed, TypeError, AttributeError):
        problem = next((p for p in (_problem(path) for path in part.files) if p), None)
        raise UserError(f"Could not read the {part.split} split of {part.what}: "
                        f"{problem or 'a question is not in the SQuAD format'}. {FIX}") from None
    texts = questions.data.column("answers").combine_chunks().field("text")
    unanswerable = int(pc.sum(pc.equal(pc.list_value_length(texts), 0)).as_py() or 0)
    if unanswerable:
        log.info("%s %s: %d of %d questions have no answer (SQuAD v2.0 unanswerable); a task that needs an answer "
                 "leaves them out", part.what, part.split, unanswerable, len(questions))
    return questions


def _problem(path: str) -> str | None:
    """The first place where a SQuAD JSON file departs from the format, in words, or None."""
    document = load_json_document(path)
    if isinstance(document, str):
        return document
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        return f"{path} is not SQuAD JSON: its top level should be an object with a 'data' list of articles"
    for a, article in enumerate(document["data"], 1):
        where = f"article {a} of {path}"
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            return f"{where} has no 'paragraphs' list"
        for p, paragraph in enumerate(article["paragraphs"], 1):
            where = f"paragraph {p} of article {a} ({article.get('title')!r}) of {path}"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                return f"{where} has no 'context' text"
            if not isinstance(paragraph.get("qas"), list):
                return f"{where} has no 'qas' list"
            for q, qa in enumerate(paragraph["qas"], 1):
                here = f"question {q} (id {qa.get('id') if isinstance(qa, dict) else None!r}) in {where}"
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                    return f"{here} has no 'question' text"
                if not isinstance(qa.get("answers"), list):
                    return f"{here} has no 'answers' list"
                for answer in qa["answers"]:
                    if not isinstance(answer, dict) or not isinstance(answer.get("text"), str):
                        return f"{here} has an answer without 'text': {answer!r}"
                    if not isinstance(answer.get("answer_start", 0), int):
                        return f"{here} has an answer whose 'answer_start' is not a number: {answer!r}"
    return None


def _squad_questions(document: Any) -> Iterator[tuple[int, int, int, Any, Any, Any]]:
    """(article, paragraph, question) positions (from 1) with the article, paragraph and question objects."""
    for a, article in enumerate(document.get("data") or [], 1):
        for p, paragraph in enumerate((article.get("paragraphs") if isinstance(article, dict) else None) or [], 1):
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            for q, qa in enumerate(qas or [], 1):
                yield a, p, q, article, paragraph, qa
