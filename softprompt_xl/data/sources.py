"""Loading one split of a data source with `datasets.load_dataset`, whether a hub dataset or local files.

A source is the keyword arguments of `load_dataset` (path, name, data_files, data_dir, revision) plus:
- `splits`: maps the framework's split names (train / validation / test) to the source's split expressions;
- `carve` (optional): splits the source lacks, cut from another one as the paper's authors did with
  `Dataset.train_test_split`: `{validation: {from: train, test_size: 0.15, seed: 42}}` takes 15 % of train for
  validation and leaves train the other 85 %. Carves apply in the order written, each to what is left of its
  `from` split (`{test: {...}, validation: {...}}`, both from train: test first, then validation from the rest).
  A carved split replaces any file or split expression of the same name;
- `columns` (optional): `{source_column: task_field}`, renames applied right after loading, for datasets whose
  columns are named differently from the task's fields (e.g. `ctu-aic/anli_cs`: evidence -> premise); the task's
  `column_aliases` (conf/task/) then rename the published formats' own names (XNLI's sentence1 -> premise);
- `label_map` (optional): `{source_label: task_label_id}`, applied to the `label` column after the renames.
  A key is matched, without case, against the label's class name (when the column is a `ClassLabel`) and against
  its value written as text, so both `{SUPPORTS: 0}` and `{2: 0}` work; a label mapped to null leaves the record
  out (counted in the log). It is merged over the task's own `label_map` (NLI: entailment / neutral /
  contradiction), which alone is applied to labels written as words;
- `answer_columns` (optional, QA): `{text: column, answer_start: column, question_id: column}`, for QA sets
  published with the answer in flat columns (Mostafa3zazi/Arabic_SQuAD: text, answer_start; uqa/UQA: answer,
  answer_start) instead of SQuAD's `answers` {text: [...], answer_start: [...]}. With `question_id`, rows with the
  same value are one question with all their answers, where first seen (UQA lists a question once per answer);
  without it each row is one question. `answer_start` may be left out (-1: found in the context where needed); a
  row marked `is_impossible` (SQuAD v2.0) adds no answer. Applied after `columns`;
- `tag_map` (optional, NER): `{TYPE: task type or O}`, merged over the task's `tag_map` (default `{MISC: O}`);
- `language` (optional): the value of a `language` column to keep (default: the run's language code), for files
  that hold every language (XNLI-1.0's xnli.dev.tsv); null keeps every row;
- `header` and `column_names` (optional, CSV / TSV): whether the first line names the columns (by default: when
  every field of it is a name such as `premise` or `gold_label`), and the names of a file without that line
  (default: the task's fields, then `label`).
The bundled toy data, a researcher's own files (`data.files=...`) and the hub datasets all go through
`load_split`.

Local files are read in the published formats of `data/formats/` (JSON Lines, SQuAD JSON, CSV, TSV, CoNLL,
Parquet, Arrow), named by the source's `path` (FILE_FORMATS) or, with `path: auto` and for `data.files`, told
from each file's name and content (`builder_for`). A file in none of them is refused, naming the file, what was
expected and what it holds. The task (`data/tasks/`) then gives the records its field names and values.

A malformed local file stops the run with a `UserError` naming the file, the line or record, what is wrong
and how to fix it; `locate` and `check_records` give the same precision to record-level checks.
"""

from __future__ import annotations

import glob
import logging
import os
from typing import Any, Callable

import datasets
from omegaconf import OmegaConf

from softprompt_xl.config import to_plain
from softprompt_xl.data.formats import AUTO, FORMATS, Split, builder_for, format_for
from softprompt_xl.data.formats.base import open_text
from softprompt_xl.data.tasks.base import FIX, relabel, without_gold_less
from softprompt_xl.errors import UserError
from softprompt_xl.runtime.atomic import disk_full
from softprompt_xl.runtime.hub import hub_reachable

log = logging.getLogger(__name__)

LOAD_KEYS = ("path", "name", "data_files", "data_dir", "revision")
SPLITS = ("train", "validation", "test")
# Local file formats (a source's `path`) -> the datasets builder that reads them (None: read by the format itself).
FILE_FORMATS = {**{f.name: f.builder for f in FORMATS}, AUTO: None}
CARVE_SEED = 42  # the paper's authors' seed, when a carve names none


# ---------------------------------------------------------------------------------------------------------------
# Which source a run uses


def task_source(cfg: Any, needed: tuple[str, ...] | None = None) -> Any:
    """The task source of a run: `data.files` turned into a local-file source when it is set, else `data.task`.

    `needed` are the splits the run reads; by default all three for a combo that trains something and only
    `test` for one that does not (zero_shot). Raises UserError when a needed split has no file and is not carved
    (`data.carve`). `data.format` names the files' format where their names and content do not tell it.
    """
    files = to_plain(OmegaConf.select(cfg, "data.files", default=None))
    if not files:
        return cfg.data.task
    if needed is None:
        combo = OmegaConf.select(cfg, "combo", default=None)
        trains = combo is None or bool(OmegaConf.select(combo, "components.task", default=None)
                                       or combo.get("train_backbone"))
        needed = SPLITS if trains else ("test",)
    what = f"{OmegaConf.select(cfg, 'lang.code', default='?')} {OmegaConf.select(cfg, 'task.name', default='?')}"
    return files_source(files, needed, what, to_plain(OmegaConf.select(cfg, "data.format", default=None)),
                        to_plain(OmegaConf.select(cfg, "data.carve", default=None)))


def files_source(files: Any, needed: tuple[str, ...] = SPLITS, what: str = "the task", fmt: str | None = None,
                 carve: dict | None = None) -> dict:
    """A local-file source from `{split: path}`, in format `fmt` or the one the files' names and content tell
    (`builder_for`); `carve` cuts the splits that have no file from another one (see the module's docstring)."""
    example = "data.files={train:/data/train.jsonl,validation:/data/validation.jsonl,test:/data/test.jsonl}"
    if not isinstance(files, dict):
        raise UserError(f"data.files should map splits to files, e.g. '{example}', got {files!r}.")
    unknown = sorted(set(files) - set(SPLITS))
    if unknown:
        raise UserError(f"data.files names unknown split(s) {', '.join(unknown)}: the splits are "
                        f"{', '.join(SPLITS)}, e.g. '{example}'.")
    carved = _carves({"carve": carve}, what)
    missing = [split for split in needed if not files.get(split) and split not in carved]
    if missing:
        raise UserError(
            f"data.files has no file for the {' and '.join(missing)} split(s) of {what}; this run reads "
            f"{', '.join(needed)}. Give all of them, e.g. '{example}', or carve the missing one from another "
            "split: data.carve={validation:{from:train,test_size:0.15,seed:42}}."
        )
    if fmt is not None and fmt not in FILE_FORMATS:
        raise UserError(f"data.format={fmt} is not a format of local files: use one of {', '.join(FILE_FORMATS)}.")
    data_files, formats = {}, {}
    for split, path in files.items():
        if not path:
            continue
        paths = [path] if isinstance(path, str) else list(path)
        data_files[split] = [os.path.abspath(os.path.expanduser(p)) for p in paths]
        for p, full in zip(paths, data_files[split]):
            formats[p] = fmt or builder_for(full)
    kinds = sorted(set(formats.values()) - {AUTO}) or [AUTO]  # AUTO: a file not there yet, told when it is read
    if len(kinds) > 1:
        raise UserError(
            f"data.files mixes formats ({', '.join(f'{os.path.basename(p)}: {b}' for p, b in formats.items())}); "
            "give the splits of one run in one format."
        )
    data_files = {split: paths[0] if len(paths) == 1 else paths for split, paths in data_files.items()}
    source = {"path": kinds[0], "data_files": data_files, "splits": {split: split for split in data_files}}
    if carve:
        source["carve"] = carve
    return source


# ---------------------------------------------------------------------------------------------------------------
# Loading


def load_split(source: Any, split: str, cache_dir: str, what: str, task: Any = None,
               lang: str | None = None) -> datasets.Dataset:
    """Split `split` of `source`; `what` (e.g. "sk qa") names the data in messages.

    With `task` (a `Task`), the records get the task's field names and values (`Task.normalise`: column aliases,
    label ids, NER tag ids, answers). With `lang`, a file with
    a `language` column keeps only that language's rows. Carved splits are cut (`carve`) before records whose
    label is mapped to null are left out, so they are the authors' carve of the data as published.
    """
    source = to_plain(source)
    if not isinstance(source, dict) or not source.get("path"):
        raise UserError(f"No data source is configured for {what}: set one in conf/lang/ or pass data.files=...")
    carves = _carves(source, what)

    def prepared(name: str) -> datasets.Dataset:
        dataset = _adapt(_read(source, name, cache_dir, what, task), source, name, what, task)
        return _only_language(dataset, source, name, what, lang)

    if split in carves or any(spec["from"] == split for spec in carves.values()):
        pieces: dict[str, datasets.Dataset] = {}
        for target, spec in carves.items():
            base = spec["from"]
            whole = pieces[base] if base in pieces else prepared(base)
            try:
                parts = whole.train_test_split(test_size=spec["test_size"], seed=spec["seed"])
            except ValueError as err:
                raise UserError(f"Cannot carve the {target} split of {what} from its {base} split ({len(whole)} "
                                f"records) with test_size={spec['test_size']}: {err}. Fix the source's carve.") from None
            pieces[base], pieces[target] = parts["train"], parts["test"]
            log.info("%s: carved %s (%d records) from %s, leaving %d (test_size=%s, seed=%d)", what, target,
                     len(parts["test"]), base, len(parts["train"]), spec["test_size"], spec["seed"])
        dataset = pieces[split]
    else:
        dataset = prepared(split)
    return without_gold_less(dataset, source, task.label_words() if task is not None else None, split, what)


def _carves(source: dict, what: str) -> dict[str, dict]:
    """The source's `carve`, checked: {target split: {from, test_size, seed}} in the order written."""
    carve = source.get("carve") or {}
    example = "carve: {validation: {from: train, test_size: 0.15, seed: 42}}"
    if not isinstance(carve, dict):
        raise UserError(f"The carve of {what} should map a split to where it is cut from, e.g. '{example}'; "
                        f"got {carve!r}.")
    out = {}
    for target, spec in carve.items():
        problem = None
        if target not in SPLITS:
            problem = f"'{target}' is not a split ({', '.join(SPLITS)})"
        elif not isinstance(spec, dict) or spec.get("from") not in SPLITS or spec.get("from") == target:
            problem = f"{target} needs 'from': another split ({', '.join(s for s in SPLITS if s != target)})"
        elif set(spec) - {"from", "test_size", "seed"}:
            problem = f"{target} has unknown key(s) {', '.join(sorted(set(spec) - {'from', 'test_size', 'seed'}))}"
        else:
            size = spec.get("test_size")
            if isinstance(size, bool) or not (isinstance(size, float) and 0 < size < 1 or isinstance(size, int) and size >= 1):
                problem = f"{target} needs 'test_size': a fraction between 0 and 1 or a number of records, got {size!r}"
            elif not isinstance(spec.get("seed", CARVE_SEED), int):
                problem = f"{target} needs an integer 'seed', got {spec.get('seed')!r}"
        if problem:
            raise UserError(f"The carve of {what} is not valid: {problem}. Write it as '{example}'.")
        out[target] = {"from": spec["from"], "test_size": spec["test_size"], "seed": spec.get("seed", CARVE_SEED)}
    return out


def _read(source: dict, split: str, cache_dir: str, what: str, task: Any = None) -> datasets.Dataset:
    """Split `split` of `source` as published, read in its format (data/formats/); nothing renamed."""
    selector = (source.get("splits") or {}).get(split, split)
    kwargs = {k: source[k] for k in LOAD_KEYS if source.get(k)}
    local = source["path"] in FILE_FORMATS
    files: list[str] = []
    if local:
        kwargs["data_files"] = existing_files(source.get("data_files"), selector, what)
        files = _expand(next(iter(kwargs["data_files"].values())))
        for path in files:
            _check_not_empty(path, split, what)
        fmt = format_for(_format_of(files, kwargs.pop("path"), split, what), files)
    elif not hub_reachable():
        # Without this, datasets retries the unreachable Hub for about a minute before failing.
        datasets.config.HF_HUB_OFFLINE = True
    try:
        if local:
            dataset = fmt.read(Split(files, kwargs, selector, source, task, split, what, cache_dir))
        else:
            dataset = datasets.load_dataset(**kwargs, split=selector, cache_dir=cache_dir)
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - datasets' errors on a bad file are opaque: find the place ourselves
        if (full := disk_full(err, cache_dir)) is not None:  # its cache's disk, not the data, is the problem
            raise full from None
        expected = (FileNotFoundError, ConnectionError, ValueError, RuntimeError, StopIteration, UnicodeDecodeError,
                    datasets.exceptions.DatasetGenerationError)
        if not local and not isinstance(err, expected):
            raise
        detail = str(err.__cause__ or err).strip().splitlines()
        detail = detail[0] if detail else repr(err)
        if local:
            try:
                problem = next((p for p in (format_for(fmt.name, [path]).diagnose(path, source) for path in files)
                                if p), None)
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
    return dataset


def _format_of(files: list[str], fmt: str, split: str, what: str) -> str:
    """The format the split's files are read in: the source's, or for AUTO the one each file tells (all alike)."""
    if fmt != AUTO:
        return fmt
    found = {path: builder_for(path) for path in files}
    kinds = set(found.values())
    if len(kinds) > 1:
        raise UserError(f"The {split} files of {what} are in different formats "
                        f"({', '.join(f'{p}: {k}' for p, k in found.items())}); give one split's files in one format.")
    return kinds.pop()


def existing_files(data_files: Any, selector: str, what: str) -> Any:
    """`{split: files}` of a local source's `data_files` for the split `selector` names; a UserError names a
    split without files, or a file that is not there."""
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
    if source["path"] in FILE_FORMATS:
        return f"{source['path']} files {source.get('data_files')}"
    return source["path"] + (f" ({source['name']})" if source.get("name") else "")


def _check_not_empty(path: str, split: str, what: str) -> None:
    try:
        with open_text(path) as stream:
            empty = not stream.read(65536).strip()
    except (OSError, UnicodeDecodeError):
        return  # not text (Parquet, Arrow) or not readable: the format says what is wrong
    if empty:
        raise UserError(f"The {split} file of {what} is empty: {path}. Put the split's records in it, or point "
                        "the source (conf/lang/<code>.yaml or data.files=...) at the right file.")


# ---------------------------------------------------------------------------------------------------------------
# Renames, then the task's fields and values


def _adapt(dataset: datasets.Dataset, source: dict, split: str, what: str, task: Any = None) -> datasets.Dataset:
    """Records as read -> records with the task's field names and values: the source's `columns` renames, then
    the task's own (`Task.normalise`); without a task, the source's label_map alone."""
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

    def where(data: datasets.Dataset, index: int) -> str:
        return locate(source, split, _row(data, index))

    if task is None:
        return relabel(dataset, source, None, split, what, where)
    return task.normalise(dataset, source, split, what, where)


def _only_language(dataset: datasets.Dataset, source: dict, split: str, what: str, lang: str | None) -> datasets.Dataset:
    """The rows of one language, for a file that holds several in a `language` column (XNLI-1.0's dev/test)."""
    code = source["language"] if "language" in source else lang
    feature = dataset.features.get("language")
    if not code or not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
        return dataset
    present = dataset.unique("language")
    if present == [code]:
        return dataset
    kept = dataset.filter(lambda batch: [value == code for value in batch["language"]], batched=True,
                          desc=f"Keeping language {code}")
    if not len(kept):
        shown = ", ".join(sorted(str(v) for v in present)[:30])
        raise UserError(f"The {split} split of {what} has a 'language' column but no row of language {code!r} "
                        f"(it holds {shown}). Set `language:` in the source to the value the file uses for this "
                        "language, or null to keep every row.")
    log.info("%s %s: kept the %s of %s rows whose language is %s", what, split, f"{len(kept):,}",
             f"{len(dataset):,}", code)
    return kept


# ---------------------------------------------------------------------------------------------------------------
# Where a record is, for messages


def locate(source: Any, split: str, index: int) -> str:
    """Where record `index` (0-based, as read from the split's files, before any rows are kept or carved) of
    `split` of `source` is, in words for a message: "line 17 of /path/train.jsonl", "line 18 of /path/x.csv
    (record 17)", "sentence 3 (line 12) of /path/train.conll", "question 2 (id 'q7') of paragraph 1 of article
    3 of /path/train.json", or for a hub dataset "record 17 of the train split of unimelb-nlp/wikiann (cs)".
    Never raises."""
    try:
        source = to_plain(source)
        selector, files = _split_files(source, split)
        if source.get("path") in FILE_FORMATS and files and "[" not in selector:
            place = _locate_in_files(files, source["path"], index, source)
            if place:
                return place
        return f"record {index + 1} of the {selector} split of {_describe(source)}"
    except Exception:  # noqa: BLE001 - a message helper must not hide the error it is describing
        return f"record {index + 1} of the {split} split"


def _locate_in_files(files: list[str], name: str, index: int, source: dict) -> str | None:
    for path in files:
        fmt = format_for(builder_for(path) if name == AUTO else name, [path])
        place = fmt.locate(path, index, source) if fmt is not None else None
        if not isinstance(place, int):
            return place
        index -= place
    return None


def _row(dataset: datasets.Dataset, index: int) -> int:
    """The row as read of record `index` of `dataset`, which may be a selection (language, carve, gold labels)."""
    indices = getattr(dataset, "_indices", None)  # datasets keeps a selection as indices into the rows as read
    return int(indices.column(0)[index].as_py()) if indices is not None else index


def _origin(source: dict, split: str) -> str:
    """The split whose files hold the records of `split`: for a carved split, the one it was cut from."""
    carve = source.get("carve") or {}
    seen = set()
    while split in carve and split not in seen and isinstance(carve[split], dict):
        seen.add(split)
        split = carve[split].get("from", split)
    return split


def check_records(dataset: datasets.Dataset, check: Callable[[dict], str | None], source: Any, split: str,
                  what: str) -> list[dict]:
    """The records of `dataset`, each checked by `check` (e.g. `Task.check`, which says what is wrong or None).

    The first malformed record stops the run with a UserError naming the file and line (or record) and the problem.
    """
    records = []
    for index, record in enumerate(dataset):
        problem = check(record)
        if problem:
            plain = to_plain(source)
            place = locate(plain, _origin(plain, split) if isinstance(plain, dict) else split, _row(dataset, index))
            raise UserError(f"The {split} split of {what} has a malformed record at {place}: {problem}. {FIX}")
        records.append(record)
    return records
