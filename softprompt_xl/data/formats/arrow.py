"""Arrow (`arrow`): datasets' own files, read by its arrow builder."""

from __future__ import annotations

from softprompt_xl.data.formats.base import Format


class Arrow(Format):
    name = "arrow"
    builder = "arrow"
    extensions = (".arrow",)
    description = "Arrow (.arrow)"
