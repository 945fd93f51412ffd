"""CoNLL (`conll`): one `token<whitespace>tag` line per token (the tag last, so CoNLL-2003's `token POS chunk NER`
too), a blank line between sentences, `-DOCSTART-` lines skipped; WikiANN's `xx:` language prefix on tokens is
removed. Read here into records {tokens, ner_tags (the tags as written)}; the NER task turns the tags, in IOB1, IOB2
or BIOES, into its IOB2 ids (tasks/ner.py)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from typing import Iterator

import datasets

from softprompt_xl.data.formats.base import Format, Head, Split, cut, open_text
from softprompt_xl.data.tasks.base import FIX
from softprompt_xl.data.tasks.ner import is_tag
from softprompt_xl.errors import UserError

log = logging.getLogger(__name__)

FEATURES = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                              "ner_tags": datasets.List(datasets.Value("string"))})
READER = 1  # bump when the reader changes, so files read by an older one are read again
_LANGUAGE_PREFIX = re.compile(r"\A([a-z]{2,3}(?:-[a-z]{1,12})*|simple):(?=\S)")  # WikiANN's "en:", "be-x-old:"
_DOCSTART = "-DOCSTART-"


class Conll(Format):
    name = "conll"
    extensions = (".conll", ".conll03", ".iob", ".iob1", ".iob2", ".bio", ".bioes", ".tsv")  # .tsv: WikiANN's copies
    sniff_order = 1
    description = ("CoNLL (a 'token<TAB or space>tag' line per token, tags O/B-TYPE/I-TYPE, a blank line "
                   "between sentences)")

    def recognises(self, head: Head) -> bool:
        """Every line is `token ... tag` with an IOB tag last, or -DOCSTART-."""
        return bool(head.lines) and all(_conll_line(line) for line in head.lines)

    def read(self, part: Split) -> datasets.Dataset:
        """Streamed into datasets' cache: a sentence at a time is in memory, and the cache is found again while
        the files are unchanged."""
        files = part.files
        stamp = [(os.path.abspath(p), os.path.getsize(p), os.stat(p).st_mtime_ns) for p in files]
        fingerprint = hashlib.sha256(json.dumps([READER, stamp]).encode()).hexdigest()[:32]
        try:
            dataset = datasets.Dataset.from_generator(_sentences, features=FEATURES, cache_dir=part.cache_dir,
                                                      gen_kwargs={"files": files}, fingerprint=fingerprint)
        except Exception as err:  # noqa: BLE001 - the reader's own UserError comes back wrapped by datasets
            cause = err
            while cause is not None and not isinstance(cause, UserError):
                cause = cause.__cause__ or cause.__context__
            if cause is not None:
                raise UserError(f"Could not read the {part.split} split of {part.what}: {cause} {FIX}") from None
            raise
        if len(dataset) == 0:
            raise UserError(f"The {part.split} split of {part.what} ({', '.join(files)}) has no sentences. {FIX}")
        return cut(dataset, part.selector, part.what)

    def locate(self, path: str, index: int, source: dict) -> str | int | None:
        sentence, first = 0, None
        with open_text(path) as stream:
            for number, line in enumerate(stream, 1):
                fields = _fields(line) if line.strip() else []
                if fields and fields[0] != _DOCSTART:
                    first = first or number
                    continue
                if first:
                    if sentence == index:
                        return f"sentence {sentence + 1} (line {first}) of {path}"
                    sentence, first = sentence + 1, None
        if first:
            if sentence == index:
                return f"sentence {sentence + 1} (line {first}) of {path}"
            sentence += 1
        return sentence


def _conll_line(line: str) -> bool:
    fields = _fields(line)
    return fields[0] == _DOCSTART or (len(fields) >= 2 and is_tag(fields[-1]))


def _fields(line: str) -> list[str]:
    """A CoNLL line's fields: split at tabs when it has any (a token may hold a space there), else at spaces."""
    line = line.rstrip()
    return line.split("\t") if "\t" in line else line.split()


def _sentences(files: list[str]) -> Iterator[dict]:
    for path in files:
        try:
            yield from _file(path)
        except UnicodeDecodeError as err:
            raise UserError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}).") from None


def _file(path: str) -> Iterator[dict]:
    """The sentences of one CoNLL file, read a line at a time."""
    prefix = _language_prefix(path)
    tokens: list[str] = []
    tags: list[str] = []
    with open_text(path) as stream:
        for number, line in enumerate(stream, 1):
            fields = _fields(line) if line.strip() else []
            if not fields or fields[0] == _DOCSTART:
                if tokens:
                    yield {"tokens": tokens, "ner_tags": tags}
                    tokens, tags = [], []
                continue
            if len(fields) < 2 or not is_tag(fields[-1]):
                raise UserError(
                    f"line {number} of {path} is not CoNLL: expected a token and its tag last, separated by a "
                    f"tab or spaces (e.g. 'Praha<TAB>B-LOC' or CoNLL-2003's 'EU NNP B-NP B-ORG'), with an IOB tag "
                    f"(O, B-TYPE, I-TYPE; or BIOES), found {line.rstrip()[:120]!r}.")
            token = fields[0]
            if prefix and token.startswith(prefix):
                token = token[len(prefix):]
            tokens.append(token)
            tags.append(fields[-1])
    if tokens:
        yield {"tokens": tokens, "ner_tags": tags}


def _language_prefix(path: str) -> str | None:
    """WikiANN's split files (Rahimi et al.) write every token as `xx:token`: the `xx:` of a file whose first
    hundred tokens all carry the same one, else None."""
    seen, checked = set(), 0
    with open_text(path) as stream:
        for line in stream:
            fields = _fields(line) if line.strip() else []
            if not fields or fields[0] == _DOCSTART:
                continue
            match = _LANGUAGE_PREFIX.match(fields[0])
            seen.add(match.group(0) if match else None)
            checked += 1
            if len(seen) > 1 or None in seen or checked >= 100:
                break
    prefix = seen.pop() if len(seen) == 1 else None
    if prefix:
        log.info("%s: WikiANN's language prefix %r is removed from its tokens", path, prefix)
    return prefix
