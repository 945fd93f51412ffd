"""Loading one split of a data source with `datasets.load_dataset`, whether a hub dataset or local files.

A source is the keyword arguments of `load_dataset` (path, name, data_files, ...) plus `splits`, which maps
the framework's split names (train / validation / test) to the source's split expressions. The bundled
toy data and a researcher's own files go through exactly this function, like the hub datasets.
"""

from __future__ import annotations

import glob
import logging
from typing import Any

import datasets

from ..config import to_plain
from ..errors import UserError
from ..hub import hub_reachable

log = logging.getLogger(__name__)

LOAD_KEYS = ("path", "name", "data_files", "data_dir", "revision")
FILE_BUILDERS = {"json", "csv", "parquet", "text", "arrow"}


def load_split(source: Any, split: str, cache_dir: str, what: str) -> datasets.Dataset:
    """Split `split` of `source`; `what` (e.g. "sk qa") names the data in messages."""
    source = to_plain(source)
    if not isinstance(source, dict) or not source.get("path"):
        raise UserError(f"No data source is configured for {what}: set one in conf/lang/ or pass data.files=...")
    selector = (source.get("splits") or {}).get(split, split)
    kwargs = {k: source[k] for k in LOAD_KEYS if source.get(k)}
    if source["path"] in FILE_BUILDERS:
        kwargs["data_files"] = _existing_files(source.get("data_files"), selector, what)
    elif not hub_reachable():
        # Without this, datasets retries the unreachable Hub for about a minute before failing.
        datasets.config.HF_HUB_OFFLINE = True
    try:
        return datasets.load_dataset(**kwargs, split=selector, cache_dir=cache_dir)
    except UserError:
        raise
    except (FileNotFoundError, ConnectionError, ValueError, datasets.exceptions.DatasetGenerationError) as err:
        detail = str(err.__cause__ or err).strip().splitlines()
        raise UserError(
            f"Could not load the {split} split of {what} from {_describe(source)}: {detail[0] if detail else err!r}. "
            "If it is a hub dataset, run once where the Hub is reachable (it is cached) or download it and point "
            "the source at local files; if it is a local file, check that it is in the task's format."
        ) from None


def _existing_files(data_files: Any, selector: str, what: str) -> Any:
    base = selector.split("[")[0]
    files = data_files.get(base) if isinstance(data_files, dict) else data_files
    if files is None:
        raise UserError(f"The source of {what} names no file for the '{base}' split: add data_files.{base}.")
    for pattern in [files] if isinstance(files, str) else files:
        if not glob.glob(pattern):
            raise UserError(
                f"Data file not found for {what} ({base} split): {pattern}. Check the path (relative paths are "
                "resolved from the directory you run in), or choose another source with data=... / data.files=..."
            )
    return {base: files}


def _describe(source: dict) -> str:
    if source["path"] in FILE_BUILDERS:
        return f"{source['path']} files {source.get('data_files')}"
    return source["path"] + (f" ({source['name']})" if source.get("name") else "")
