"""Loading one split of a data source with `datasets.load_dataset`, whether a hub dataset or local files.

A source is the keyword arguments of `load_dataset` (path, name, data_files, data_dir, revision) plus:
- `splits`: maps the framework's split names (train / validation / test) to the source's split expressions;
- `columns` (optional): `{source_column: task_field}`, renames applied right after loading, for datasets whose
  columns are named differently from the task's fields (e.g. `ctu-aic/anli_cs`: evidence -> premise);
- `label_map` (optional): `{source_label: task_label_id}`, applied to the `label` column after the renames.
  A key is matched against the label's class name (when the column is a `ClassLabel`) and against its value
  written as text, so both `{SUPPORTS: 0}` and `{2: 0}` work.
The bundled toy data, a researcher's own files (`data.files=...`) and the hub datasets all go through
`load_split`.

Local files are read in their native formats: JSON Lines, CSV, Parquet, and SQuAD v1.1/v2.0 JSON
(`{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}`), which is flattened into the flat SQuAD
schema (id, title, context, question, answers {text, answer_start}) as the hub's SQuAD has it.

A malformed local file stops the run with a `UserError` naming the file, the line or record, what is wrong
and how to fix it; `locate` and `check_records` give the same precision to record-level checks.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import gzip
import io
import json
import logging
import os
import re
from typing import Any, Callable, Iterator

import datasets
from omegaconf import OmegaConf

from ..config import to_plain
from ..errors import UserError
from ..hub import hub_reachable

log = logging.getLogger(__name__)

LOAD_KEYS = ("path", "name", "data_files", "data_dir", "revision")
FILE_BUILDERS = {"json", "csv", "parquet", "text", "arrow"}
SPLITS = ("train", "validation", "test")
# File name endings -> datasets builder, for data.files=... (longest first, so .jsonl.gz wins over .gz).
EXTENSION_BUILDERS = (
    (".jsonl.gz", "json"), (".json.gz", "json"), (".jsonl", "json"), (".json", "json"),
    (".csv.gz", "csv"), (".csv", "csv"), (".parquet", "parquet"),
)
SQUAD_FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "title": datasets.Value("string"),
    "context": datasets.Value("string"),
    "question": datasets.Value("string"),
    "answers": {"text": datasets.List(datasets.Value("string")), "answer_start": datasets.List(datasets.Value("int32"))},
})
FIX = "Fix or remove it, or point the source (conf/lang/<code>.yaml or data.files=...) at a file in the task's format."


# ---------------------------------------------------------------------------------------------------------------
# Which source a run uses


def task_source(cfg: Any, needed: tuple[str, ...] | None = None) -> Any:
    """The task source of a run: `data.files` turned into a local-file source when it is set, else `data.task`.

    `needed` are the splits the run reads; by default all three for a combo that trains something and only
    `test` for one that does not (zero_shot). Raises UserError when a needed split has no file.
    """
    files = to_plain(OmegaConf.select(cfg, "data.files", default=None))
    if not files:
        return cfg.data.task
    if needed is None:
        needed = SPLITS if _trains(cfg) else ("test",)
    what = f"{OmegaConf.select(cfg, 'lang.code', default='?')} {OmegaConf.select(cfg, 'task.name', default='?')}"
    return files_source(files, needed, what)


def files_source(files: Any, needed: tuple[str, ...] = SPLITS, what: str = "the task") -> dict:
    """A local-file source from `{split: path}`; the builder (json / csv / parquet) is inferred from the names."""
    example = "data.files={train:/data/train.jsonl,validation:/data/validation.jsonl,test:/data/test.jsonl}"
    if not isinstance(files, dict):
        raise UserError(f"data.files should map splits to files, e.g. '{example}', got {files!r}.")
    unknown = sorted(set(files) - set(SPLITS))
    if unknown:
        raise UserError(f"data.files names unknown split(s) {', '.join(unknown)}: the splits are "
                        f"{', '.join(SPLITS)}, e.g. '{example}'.")
    missing = [split for split in needed if not files.get(split)]
    if missing:
        raise UserError(
            f"data.files has no file for the {' and '.join(missing)} split(s) of {what}; this run reads "
            f"{', '.join(needed)}. Give all of them, e.g. '{example}'."
        )
    data_files, builders = {}, {}
    for split, path in files.items():
        if not path:
            continue
        paths = [path] if isinstance(path, str) else list(path)
        data_files[split] = [os.path.abspath(os.path.expanduser(p)) for p in paths]
        for p in paths:
            builders[p] = builder_for(p)
    kinds = sorted(set(builders.values()))
    if len(kinds) > 1:
        raise UserError(
            f"data.files mixes formats ({', '.join(f'{os.path.basename(p)}: {b}' for p, b in builders.items())}); "
            "give the splits of one run in one format."
        )
    data_files = {split: paths[0] if len(paths) == 1 else paths for split, paths in data_files.items()}
    return {"path": kinds[0], "data_files": data_files, "splits": {split: split for split in data_files}}


def builder_for(path: str) -> str:
    """The datasets builder for a file name: .json/.jsonl(.gz) -> json, .csv(.gz) -> csv, .parquet -> parquet."""
    lower = path.lower()
    for ending, builder in EXTENSION_BUILDERS:
        if lower.endswith(ending):
            return builder
    raise UserError(
        f"Cannot tell the format of {path} from its name: use one of "
        f"{', '.join(ending for ending, _ in EXTENSION_BUILDERS)} (JSON Lines or SQuAD JSON, CSV, Parquet)."
    )


def _trains(cfg: Any) -> bool:
    combo = OmegaConf.select(cfg, "combo", default=None)
    if combo is None:
        return True
    return bool(OmegaConf.select(combo, "components.task", default=None)) or bool(combo.get("train_backbone"))


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load_split(source: Any, split: str, cache_dir: str, what: str) -> datasets.Dataset:
    """Split `split` of `source`; `what` (e.g. "sk qa") names the data in messages."""
    source = to_plain(source)
    if not isinstance(source, dict) or not source.get("path"):
        raise UserError(f"No data source is configured for {what}: set one in conf/lang/ or pass data.files=...")
    selector = (source.get("splits") or {}).get(split, split)
    kwargs = {k: source[k] for k in LOAD_KEYS if source.get(k)}
    local = source["path"] in FILE_BUILDERS
    files: list[str] = []
    squad = False
    if local:
        kwargs["data_files"] = _existing_files(source.get("data_files"), selector, what)
        files = _expand(next(iter(kwargs["data_files"].values())))
        for path in files:
            _check_not_empty(path, split, what)
        squad = source["path"] == "json" and any(_is_squad_json(path) for path in files)
        if squad:
            kwargs["field"] = "data"
    elif not hub_reachable():
        # Without this, datasets retries the unreachable Hub for about a minute before failing.
        datasets.config.HF_HUB_OFFLINE = True
    try:
        with _quiet(local):
            dataset = datasets.load_dataset(**kwargs, split=selector, cache_dir=cache_dir)
        if squad:
            dataset = _flatten_squad(dataset, files, split, what)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - datasets' errors on a bad file are opaque: find the place ourselves
        expected = (FileNotFoundError, ConnectionError, ValueError, RuntimeError, StopIteration, UnicodeDecodeError,
                    datasets.exceptions.DatasetGenerationError)
        if not local and not isinstance(err, expected):
            raise
        detail = str(err.__cause__ or err).strip().splitlines()
        detail = detail[0] if detail else repr(err)
        if local:
            try:
                problem = _diagnose(files, source["path"])
            except Exception as failure:  # noqa: BLE001 - e.g. a damaged .gz: say that rather than nothing
                problem = f"{', '.join(files)} cannot be read ({type(failure).__name__}: {failure})"
            if problem:
                raise UserError(f"Could not read the {split} split of {what}: {problem}. {FIX}") from None
            if "corresponds to no data" in detail:
                raise UserError(f"The {split} split of {what} ({', '.join(files)}) has no records. {FIX}") from None
        if "scripts are no longer supported" in detail:
            raise UserError(
                f"Could not load the {split} split of {what} from {_describe(source)}: it is a dataset with a "
                "loading script, which this version of datasets no longer runs. Load the Hub's Parquet export "
                "instead: set revision: refs/convert/parquet and data_dir: <config name> in the source "
                "(conf/lang/<code>.yaml), or download the data and pass data.files=..."
            ) from None
        raise UserError(
            f"Could not load the {split} split of {what} from {_describe(source)}: {detail}. "
            "If it is a hub dataset, run once where the Hub is reachable (it is cached) or download it and point "
            "the source at local files; if it is a local file, check that it is in the task's format."
        ) from None
    if len(dataset) == 0:
        raise UserError(f"The {split} split of {what} from {_describe(source)} has no records. {FIX}")
    return _adapt(dataset, source, split, what)


@contextlib.contextmanager
def _quiet(local: bool) -> Iterator[None]:
    """Silence datasets' own log line about a file it cannot parse: the UserError says it better."""
    logger = logging.getLogger("datasets.packaged_modules.json.json")
    level = logger.level
    if local:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


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


def _expand(files: Any) -> list[str]:
    """The files a data_files entry names, in the order datasets reads them (globs sorted)."""
    patterns = [files] if isinstance(files, str) else list(files)
    return [path for pattern in patterns for path in sorted(glob.glob(pattern))]


def _split_files(source: dict, split: str) -> tuple[str, list[str]]:
    selector = (source.get("splits") or {}).get(split, split)
    data_files = source.get("data_files")
    files = data_files.get(selector.split("[")[0]) if isinstance(data_files, dict) else data_files
    return selector, _expand(files) if files else []


def _describe(source: dict) -> str:
    if source["path"] in FILE_BUILDERS:
        return f"{source['path']} files {source.get('data_files')}"
    return source["path"] + (f" ({source['name']})" if source.get("name") else "")


def _open_text(path: str) -> io.TextIOBase:
    """A text stream of a local file, gunzipped when its name ends in .gz."""
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _check_not_empty(path: str, split: str, what: str) -> None:
    if path.endswith((".parquet", ".arrow")):
        empty = os.path.getsize(path) == 0
    else:
        try:
            with _open_text(path) as stream:
                empty = not stream.read(65536).strip()
        except (OSError, UnicodeDecodeError):
            return  # not readable as text: the loader says what is wrong
    if empty:
        raise UserError(f"The {split} file of {what} is empty: {path}. Put the split's records in it, or point "
                        "the source (conf/lang/<code>.yaml or data.files=...) at the right file.")


_SQUAD_START = re.compile(r'\A\ufeff?\s*\{\s*"(?:data|version)"\s*:')


def _is_squad_json(path: str) -> bool:
    """Whether a .json(l) file is one SQuAD-style JSON document ({"version", "data": [articles]}), not JSON Lines."""
    try:
        with _open_text(path) as stream:
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


def _flatten_squad(articles: datasets.Dataset, files: list[str], split: str, what: str) -> datasets.Dataset:
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
                    out["answers"].append({"text": [a["text"] for a in answers],
                                           "answer_start": [a.get("answer_start", -1) for a in answers]})
        return out

    try:
        return articles.map(flatten, batched=True, remove_columns=articles.column_names, features=SQUAD_FEATURES,
                            desc="Flattening SQuAD JSON")
    except (_Malformed, TypeError, AttributeError):
        problem = next((p for p in (_squad_problem(path) for path in files) if p), None)
        raise UserError(f"Could not read the {split} split of {what}: "
                        f"{problem or 'a question is not in the SQuAD format'}. {FIX}") from None


def _squad_questions(document: Any) -> Iterator[tuple[int, int, int, Any, Any, Any]]:
    """(article, paragraph, question) positions (from 1) with the article, paragraph and question objects."""
    for a, article in enumerate(document.get("data") or [], 1):
        for p, paragraph in enumerate((article.get("paragraphs") if isinstance(article, dict) else None) or [], 1):
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            for q, qa in enumerate(qas or [], 1):
                yield a, p, q, article, paragraph, qa


def _squad_problem(path: str) -> str | None:
    """The first place where a SQuAD JSON file departs from the format, in words, or None."""
    document = _load_json_document(path)
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


def _load_json_document(path: str) -> Any:
    """The parsed JSON document, or a sentence saying where it is not valid JSON."""
    try:
        with _open_text(path) as stream:
            return json.load(stream)
    except json.JSONDecodeError as err:
        return f"line {err.lineno} (column {err.colno}) of {path} is not valid JSON: {err.msg}"
    except UnicodeDecodeError as err:
        return f"{path} is not UTF-8 text ({err.reason} at byte {err.start})"


def _diagnose(files: list[str], builder: str) -> str | None:
    """Where the first of `files` that datasets could not read goes wrong, found by reading it ourselves."""
    for path in files:
        if builder == "json":
            problem = _squad_problem(path) if _is_squad_json(path) else _json_lines_problem(path)
        elif builder == "csv":
            problem = _csv_problem(path)
        else:
            problem = None
        if problem:
            return problem
    return None


_JSON_TYPES = ((bool, "true/false"), ((int, float), "a number"), (str, "a string"), (list, "a list"), (dict, "an object"))


def _json_type(value: Any) -> str | None:
    return next((name for kinds, name in _JSON_TYPES if isinstance(value, kinds)), None)


def _json_lines_problem(path: str) -> str | None:
    if _first_char(path) == "[":  # a JSON array of records: only its syntax can be wrong here
        document = _load_json_document(path)
        return document if isinstance(document, str) else None
    seen: dict[str, tuple[str, int]] = {}  # field -> (JSON type, first line with it)
    try:
        with _open_text(path) as stream:
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


def _first_char(path: str) -> str:
    try:
        with _open_text(path) as stream:
            return stream.read(4096).lstrip("\ufeff \t\r\n")[:1]
    except (OSError, UnicodeDecodeError):
        return ""


def _csv_problem(path: str) -> str | None:
    try:
        with _open_text(path) as stream:
            reader = csv.reader(stream)
            header = next(reader, None)
            if not header:
                return f"{path} has no header row (the first line names the columns, e.g. text,label)"
            start = reader.line_num + 1
            for row in reader:
                if row and len(row) != len(header):
                    return (f"line {start} of {path} has {len(row)} fields but the header has {len(header)} "
                            f"({','.join(header)}); quote fields that contain commas or line breaks")
                start = reader.line_num + 1
    except csv.Error as err:
        return f"line {reader.line_num} of {path} is not valid CSV: {err}"
    except UnicodeDecodeError as err:
        return f"{path} is not UTF-8 text ({err.reason} at byte {err.start})"
    return None


# ---------------------------------------------------------------------------------------------------------------
# Renames and label maps


def _adapt(dataset: datasets.Dataset, source: dict, split: str, what: str) -> datasets.Dataset:
    """Apply the source's `columns` renames and `label_map`, so records carry the task's field names and label ids."""
    columns = source.get("columns") or {}
    if columns:
        absent = [name for name in columns if name not in dataset.column_names]
        if absent:
            raise UserError(
                f"The {split} split of {what} has no column {', '.join(repr(a) for a in absent)} to rename "
                f"(its columns: {', '.join(dataset.column_names)}). Fix the source's 'columns' map."
            )
        clashing = [new for old, new in columns.items() if new in dataset.column_names and new not in columns]
        if clashing:
            dataset = dataset.remove_columns(clashing)  # the renamed column replaces it
        dataset = dataset.rename_columns({old: new for old, new in columns.items() if old != new})
    label_map = source.get("label_map")
    if label_map:
        dataset = _map_labels(dataset, {str(k): int(v) for k, v in label_map.items()}, source, split, what)
    return dataset


def _map_labels(dataset: datasets.Dataset, label_map: dict[str, int], source: dict, split: str, what: str):
    if "label" not in dataset.column_names:
        raise UserError(f"The {split} split of {what} has no 'label' column for the source's label_map "
                        f"(its columns: {', '.join(dataset.column_names)}); rename it with 'columns'.")
    feature = dataset.features["label"]
    names = feature.names if isinstance(feature, datasets.ClassLabel) else None

    def convert(batch: dict, indices: list[int]) -> dict:
        out = []
        for value, index in zip(batch["label"], indices):
            keys = ([names[value]] if names and isinstance(value, int) and 0 <= value < len(names) else []) + [str(value)]
            mapped = next((label_map[k] for k in keys if k in label_map), None)
            if mapped is None:
                raise _Malformed(index, value)
            out.append(mapped)
        return {"label": out}

    features = dataset.features.copy()
    features["label"] = datasets.Value("int64")
    try:
        return dataset.map(convert, batched=True, with_indices=True, features=features, desc="Mapping labels")
    except _Malformed as err:
        index, value = err.args
        raise UserError(
            f"{locate(source, split, index).capitalize()} ({what}) has label {value!r}, which the source's label_map "
            f"does not name (it maps {', '.join(label_map)}). Add it to label_map or fix the record."
        ) from None


# ---------------------------------------------------------------------------------------------------------------
# Where a record is, for messages


def locate(source: Any, split: str, index: int) -> str:
    """Where record `index` (0-based, as loaded) of `split` of `source` is, in words for a message:
    "line 17 of /path/train.jsonl", "line 18 of /path/x.csv (record 17)",
    "question 2 (id 'q7') of paragraph 1 of article 3 of /path/train.json", or for a hub dataset
    "record 17 of the train split of unimelb-nlp/wikiann (cs)". Never raises."""
    try:
        source = to_plain(source)
        selector, files = _split_files(source, split)
        if source.get("path") in FILE_BUILDERS and files and "[" not in selector:
            place = _locate_in_files(files, source["path"], index)
            if place:
                return place
        return f"record {index + 1} of the {selector} split of {_describe(source)}"
    except Exception:  # noqa: BLE001 - a message helper must not hide the error it is describing
        return f"record {index + 1} of the {split} split"


def _locate_in_files(files: list[str], builder: str, index: int) -> str | None:
    remaining = index
    for path in files:
        if builder == "json" and _is_squad_json(path):
            document = _load_json_document(path)
            if isinstance(document, str):
                return None
            for a, p, q, article, _, qa in _squad_questions(document):
                if remaining == 0:
                    title = article.get("title") if isinstance(article, dict) else None
                    qid = qa.get("id") if isinstance(qa, dict) else None
                    return (f"question {q} (id {qid!r}) of paragraph {p} of article {a}"
                            f"{f' ({title!r})' if title else ''} of {path}")
                remaining -= 1
        elif builder == "json" and _first_char(path) == "[":
            document = _load_json_document(path)
            if isinstance(document, str):
                return None
            if remaining < len(document):
                return f"record {remaining + 1} of {path}"
            remaining -= len(document)
        elif builder == "json":
            with _open_text(path) as stream:
                for number, line in enumerate(stream, 1):
                    if line.strip():
                        if remaining == 0:
                            return f"line {number} of {path}"
                        remaining -= 1
        elif builder == "csv":
            with _open_text(path) as stream:
                reader = csv.reader(stream)
                next(reader, None)
                start, record = reader.line_num + 1, 0
                for row in reader:
                    if row:  # pandas skips blank lines
                        record += 1
                        if remaining == 0:
                            return f"line {start} of {path} (record {record})"
                        remaining -= 1
                    start = reader.line_num + 1
        elif builder == "parquet":
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(path).metadata.num_rows
            if remaining < rows:
                return f"row {remaining + 1} of {path}"
            remaining -= rows
        else:
            return None
    return None


def check_records(dataset: datasets.Dataset, check: Callable[[dict], str | None], source: Any, split: str,
                  what: str) -> list[dict]:
    """The records of `dataset`, each checked by `check` (e.g. `Task.check`, which says what is wrong or None).

    The first malformed record stops the run with a UserError naming the file and line (or record) and the problem.
    """
    records = []
    for index, record in enumerate(dataset):
        problem = check(record)
        if problem:
            raise UserError(
                f"The {split} split of {what} has a malformed record at {locate(source, split, index)}: {problem}. "
                f"{FIX}"
            )
        records.append(record)
    return records
