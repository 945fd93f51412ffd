"""CSV (`csv`), and TSV (`tsv`: tab-separated, read with quoting off, as XNLI's text holds bare quote characters),
both read by datasets' csv builder. A source may say whether the first line names the columns (`header`) and name
the columns of a file without that line (`column_names`; default: the task's fields, then `label`)."""

from __future__ import annotations

import csv
import io
import re

import datasets

from softprompt_xl.data.formats.base import Format, Head, Split, open_text
from softprompt_xl.errors import UserError

_IDENTIFIER = re.compile(r"\A[^\W\d]\w*\Z")  # a column name such as premise, gold_label, sentence1


class Csv(Format):
    name = "csv"
    builder = "csv"
    extensions = (".csv",)
    description = "CSV (.csv)"
    called = "CSV"
    advice = "quote fields that contain commas or line breaks"  # for a row of the wrong width

    def rows(self, stream: io.TextIOBase):
        return csv.reader(stream)

    def header(self, row: list[str]) -> bool:
        """Whether a first row that the source does not say is a header is one."""
        return True  # CSV files are written with their header row (pandas, spreadsheets)

    def options(self, part: Split) -> dict:
        """A file without a header row gets its column names from the source's `column_names` or the task's fields."""
        path, source = part.files[0], part.source
        header = self._header(path, source)
        if header is not None:
            return {}
        names = source.get("column_names") or (part.task.columns if part.task is not None else None)
        width = len(self._first_row(path))
        if not names or len(names) != width:
            raise UserError(
                f"The {part.split} file of {part.what} ({path}) has no header row and {width} columns"
                f"{f', but the task has {len(names)} fields ({chr(44).join(names)})' if names else ''}: add a "
                "header row naming the columns, or name them in the source with column_names: [...].")
        return {"header": None, "column_names": list(names)}

    def diagnose(self, path: str, source: dict) -> str | None:
        try:
            with open_text(path) as stream:
                reader = self.rows(stream)
                header = self._header(path, source)
                first = next(reader, None)
                if not first:
                    return f"{path} has no header row (the first line names the columns, e.g. text,label)"
                width = len(header) if header is not None else len(first)  # headerless: the first record's width
                start = reader.line_num + 1
                for row in reader:
                    if row and len(row) != width:
                        said = f"the header has {width} ({','.join(header)})" if header is not None else f"line 1 has {width}"
                        return f"line {start} of {path} has {len(row)} fields but {said}; {self.advice}"
                    start = reader.line_num + 1
        except csv.Error as err:
            return f"line {reader.line_num} of {path} is not valid {self.called}: {err}"
        except UnicodeDecodeError as err:
            return f"{path} is not UTF-8 text ({err.reason} at byte {err.start})"
        return None

    def locate(self, path: str, index: int, source: dict) -> str | int | None:
        header = self._header(path, source) is not None
        with open_text(path) as stream:
            reader = self.rows(stream)
            if header:
                next(reader, None)
            start, record = reader.line_num + 1, 0
            for row in reader:
                if row:  # pandas skips blank lines
                    if record == index:
                        return f"line {start} of {path} (record {record + 1})"
                    record += 1
                start = reader.line_num + 1
        return record

    def _first_row(self, path: str) -> list[str]:
        with open_text(path) as stream:
            for row in self.rows(stream):
                if row:
                    return row
        return []

    def _header(self, path: str, source: dict) -> list[str] | None:
        """The column names of the file's first row, or None when that row is a record: the source's
        `header: true|false` says, else the format."""
        row = [field.strip().lstrip("\ufeff") for field in self._first_row(path)]
        explicit = source.get("header")
        if explicit is not None:
            return row if explicit else None
        return row if self.header(row) else None


class Tsv(Csv):
    name = "tsv"
    extensions = (".tsv",)
    sniff_order = 2
    description = "TSV (tab-separated columns, e.g. XNLI's .tsv)"
    called = "TSV"
    advice = "a tab inside a field breaks TSV: remove it"

    def recognises(self, head: Head) -> bool:
        """Every line has the same number (at least 2) of tab-separated fields."""
        widths = {len(line.split("\t")) for line in head.lines}
        return len(widths) == 1 and widths.pop() >= 2

    def rows(self, stream: io.TextIOBase):
        return csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE)

    def header(self, row: list[str]) -> bool:
        # XNLI's files have one, some of their copies do not
        return bool(row) and all(_IDENTIFIER.match(field) for field in row)

    def options(self, part: Split) -> dict:
        """Every column as text: "NA" or "null" are words in XNLI, not missing values."""
        options = {"sep": "\t", "quoting": csv.QUOTE_NONE, "na_filter": False, **super().options(part)}
        names = options.get("column_names") or self._header(part.files[0], part.source)
        return {**options, "features": datasets.Features({name: datasets.Value("string") for name in names})}
