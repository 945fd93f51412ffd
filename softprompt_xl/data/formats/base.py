"""The protocol of a published file format: how a file in it is recognised, read, diagnosed and located.

A format is one module of this package and one line in its registry (`__init__.py`); the source module
(`data/sources.py`) chooses the source, the format reads its files, the task (`data/tasks/`) turns the records
into its fields and values.
"""

from __future__ import annotations

import gzip
import io
from dataclasses import dataclass
from typing import Any, ClassVar

import datasets

from softprompt_xl.errors import UserError


@dataclass(frozen=True)
class Head:
    """The beginning of a local file, as the formats' content tests see it."""

    text: str | None  # the first 64 KiB as text; None when it is not UTF-8
    lines: list[str]  # its non-blank lines, less one cut off mid-line
    magic: bytes  # the first four bytes of a file that is not text


@dataclass(frozen=True)
class Split:
    """One split of a local source, as a format is asked to read it."""

    files: list[str]  # its files, globs expanded, in the order datasets reads them
    load: dict  # the source's arguments for load_dataset (data_files as written, name, data_dir, revision)
    selector: str  # the source's split expression, e.g. train[:10%]
    source: dict
    task: Any  # the run's task, or None
    split: str  # the framework's split name and `what` the data is, for messages
    what: str
    cache_dir: str


class Format:
    name: ClassVar[str]  # the source's `path` (and data.format=); SQuAD JSON and JSON Lines share `json`
    builder: ClassVar[str | None] = None  # the datasets builder that reads it; None: `read` reads it here
    # File name endings (without .gz) that tell it; an ending two formats claim (.tsv: TSV, and CoNLL as WikiANN's
    # copies are named) leaves the choice between them to the content.
    extensions: ClassVar[tuple[str, ...]] = ()
    # When its content test is tried on a file whose name tells nothing, lowest first: a test that another
    # format's files pass too comes after that format's (TSV's tab count after CoNLL's tags). None: it has none.
    sniff_order: ClassVar[int | None] = None
    description: ClassVar[str | None] = None  # what is expected, in the message for a file in no format

    def recognises(self, head: Head) -> bool:
        return False

    def holds(self, files: list[str]) -> bool:
        """Whether `files` are in this format rather than another of the same name (SQuAD JSON, JSON Lines)."""
        return True

    def options(self, part: Split) -> dict:
        """The builder's own arguments for these files."""
        return {}

    def read(self, part: Split) -> datasets.Dataset:
        """The split's records as published, nothing renamed. A UserError says what is wrong; any other error
        is turned into one by `diagnose`."""
        return datasets.load_dataset(self.builder, **part.load, **self.options(part), split=part.selector,
                                     cache_dir=part.cache_dir)

    def diagnose(self, path: str, source: dict) -> str | None:
        """Where a file the builder could not read departs from the format, in words, or None."""
        return None

    def locate(self, path: str, index: int, source: dict) -> str | int | None:
        """Where record `index` (0-based) of the file is, in words; how many records it holds when fewer; None
        when that cannot be told."""
        return None


def open_text(path: str) -> io.TextIOBase:
    """A text stream of a local file, gunzipped when its name ends in .gz."""
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def cut(dataset: datasets.Dataset, selector: str, what: str) -> datasets.Dataset:
    """`dataset` cut as a split expression such as `train[:10%]` says, for a format read here, not by datasets."""
    if "[" not in selector:
        return dataset
    name = selector.split("[")[0]
    try:
        instructions = datasets.ReadInstruction.from_spec(selector).to_absolute({name: len(dataset)})
    except (ValueError, AssertionError) as err:
        raise UserError(f"The split expression {selector!r} of {what} is not valid: {err}.") from None
    indices = [i for part in instructions for i in range(part.from_, part.to)]
    return dataset.select(indices)
