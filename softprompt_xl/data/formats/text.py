"""Plain text (`text`), a document per line, read by datasets' text builder: a corpus, not a task's records."""

from __future__ import annotations

from softprompt_xl.data.formats.base import Format


class Text(Format):
    name = "text"
    builder = "text"
