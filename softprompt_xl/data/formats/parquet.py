"""Parquet (`parquet`), read by datasets' parquet builder."""

from __future__ import annotations

import pyarrow.parquet as pq

from softprompt_xl.data.formats.base import Format, Head


class Parquet(Format):
    name = "parquet"
    builder = "parquet"
    extensions = (".parquet",)
    sniff_order = 3
    description = "Parquet (.parquet)"

    def recognises(self, head: Head) -> bool:
        return head.text is None and head.magic == b"PAR1"

    def locate(self, path: str, index: int, source: dict) -> str | int | None:
        rows = pq.ParquetFile(path).metadata.num_rows
        return f"row {index + 1} of {path}" if index < rows else rows
