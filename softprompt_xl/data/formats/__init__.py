"""The published file formats of local data, by the name a source gives them (its `path`, or data.format=).
`format_for` finds a format by its name; `builder_for` tells a file's format from its name, else its content.

A new format is a module here with a `Format` subclass (base.py: how its files are recognised, read, diagnosed
and located), added to FORMATS.
"""

from __future__ import annotations

import os

from softprompt_xl.data.formats.arrow import Arrow
from softprompt_xl.data.formats.base import Format, Head, Split, open_text
from softprompt_xl.data.formats.conll import Conll
from softprompt_xl.data.formats.delimited import Csv, Tsv
from softprompt_xl.data.formats.jsonl import JsonLines
from softprompt_xl.data.formats.parquet import Parquet
from softprompt_xl.data.formats.squad_json import SquadJson
from softprompt_xl.data.formats.text import Text
from softprompt_xl.errors import UserError

# In the order they are listed to a user; of two with one name, the first that holds a split's files reads them.
FORMATS: tuple[Format, ...] = (SquadJson(), JsonLines(), Csv(), Tsv(), Conll(), Parquet(), Arrow(), Text())
AUTO = "auto"  # a local source whose format each split's files tell by their name and content
EXPECTED = "; ".join(dict.fromkeys(f.description for f in FORMATS if f.description))


def format_for(name: str, files: list[str]) -> Format | None:
    """The format named `name` that `files` are in; None for a name no format has."""
    return next((f for f in FORMATS if f.name == name and f.holds(files)), None)


def builder_for(path: str) -> str:
    """The format of a local file (its name): by its name (.json/.jsonl -> json, .csv -> csv, .parquet, .arrow,
    .conll/.iob/.bio -> conll; .gz too), else by its content (`sniff`); a name two formats claim (.tsv) by its
    content among them, else the first.
    A file that is not there yet and whose name does not tell is AUTO, told when it is read. Raises UserError
    for a file in none of the formats, naming what was expected and what it holds."""
    lower = path.lower().removesuffix(".gz")
    named = list(dict.fromkeys(f.name for f in FORMATS if lower.endswith(f.extensions)))
    if len(named) == 1:
        return named[0]
    if not os.path.isfile(path):
        return AUTO
    fmt, found = sniff(path)
    if named:
        return fmt if fmt in named else named[0]  # the name says which; the reader names any line that is not
    if fmt is None:
        raise UserError(f"Cannot tell the format of {path}: it is none of {EXPECTED}. {found} Name the format "
                        "with data.format=... (or `path:` in the source), or convert the file.")
    return fmt


def sniff(path: str) -> tuple[str | None, str]:
    """(format, what the file begins with) from the first 64 KiB of a local file: the first format whose content
    test it passes (`Format.sniff_order`); None when it is none of them."""
    try:
        with open_text(path) as stream:
            text = stream.read(65536)
            complete = not stream.read(1)
    except UnicodeDecodeError:
        with open(path, "rb") as raw:
            head, found = Head(None, [], raw.read(4)), "It is not UTF-8 text."
    except OSError as err:
        return None, f"It cannot be read ({err})."
    else:
        lines = text.lstrip("\ufeff").splitlines()
        if not complete and lines:
            lines = lines[:-1]  # cut off mid-line
        content = [line for line in lines if line.strip()]
        head = Head(text, content, b"")
        found = f"Its first line is {content[0][:120]!r}." if content else "It holds no text."
    tried = sorted((f for f in FORMATS if f.sniff_order is not None), key=lambda f: f.sniff_order)
    return next((f.name for f in tried if f.recognises(head)), None), found


__all__ = ["AUTO", "EXPECTED", "FORMATS", "Format", "Split", "builder_for", "format_for", "sniff"]
