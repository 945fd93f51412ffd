"""JSON Lines (a JSON object per line) or a JSON array of records: `json`, read by datasets' json builder."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Any, Iterator

import datasets

from softprompt_xl.data.formats.base import Format, Head, Split, open_text


class JsonLines(Format):
    name = "json"
    builder = "json"
    extensions = (".jsonl", ".json")
    sniff_order = 0
    description = "JSON Lines, a JSON array or SQuAD JSON (.json/.jsonl)"

    def recognises(self, head: Head) -> bool:
        return head.text is not None and head.text.lstrip("\ufeff \t\r\n")[:1] in ("{", "[")

    def read(self, part: Split) -> datasets.Dataset:
        with _quiet():
            return super().read(part)

    def diagnose(self, path: str, source: dict) -> str | None:
        if _first_char(path) == "[":  # a JSON array of records: only its syntax can be wrong here
            document = load_json_document(path)
            return document if isinstance(document, str) else None
        seen: dict[str, tuple[str, int]] = {}  # field -> (JSON type, first line with it)
        try:
            with open_text(path) as stream:
                for number, line in enumerate(stream, 1):
                    if not line.strip():
                        continue
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as err:
                        return f"line {number} (column {err.colno}) of {path} is not valid JSON: {err.msg}"
                    if not isinstance(record, dict):
                        return f"line {number} of {path} is {_json_type(record) or 'null'}, not a JSON object (one record per line)"
                    for field, value in record.items():
                        kind = _json_type(value)
                        if kind is None:
                            continue
                        if field in seen and seen[field][0] != kind:
                            return (f"line {number} of {path}: field '{field}' is {kind} here but {seen[field][0]} on "
                                    f"line {seen[field][1]}; one field must have one type in all records")
                        seen.setdefault(field, (kind, number))
        except UnicodeDecodeError as err:
            return f"{path} is not UTF-8 text ({err.reason} at byte {err.start})"
        return None

    def locate(self, path: str, index: int, source: dict) -> str | int | None:
        if _first_char(path) == "[":
            document = load_json_document(path)
            if isinstance(document, str):
                return None
            return f"record {index + 1} of {path}" if index < len(document) else len(document)
        count = 0
        with open_text(path) as stream:
            for number, line in enumerate(stream, 1):
                if line.strip():
                    if count == index:
                        return f"line {number} of {path}"
                    count += 1
        return count


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence datasets' own log line about a file it cannot parse: the UserError says it better."""
    logger = logging.getLogger("datasets.packaged_modules.json.json")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_json_document(path: str) -> Any:
    """The parsed JSON document, or a sentence saying where it is not valid JSON."""
    try:
        with open_text(path) as stream:
            return json.load(stream)
    except json.JSONDecodeError as err:
        return f"line {err.lineno} (column {err.colno}) of {path} is not valid JSON: {err.msg}"
    except UnicodeDecodeError as err:
        return f"{path} is not UTF-8 text ({err.reason} at byte {err.start})"


def _first_char(path: str) -> str:
    try:
        with open_text(path) as stream:
            return stream.read(4096).lstrip("\ufeff \t\r\n")[:1]
    except (OSError, UnicodeDecodeError):
        return ""


_JSON_TYPES = ((bool, "true/false"), ((int, float), "a number"), (str, "a string"), (list, "a list"), (dict, "an object"))


def _json_type(value: Any) -> str | None:
    return next((name for kinds, name in _JSON_TYPES if isinstance(value, kinds)), None)
