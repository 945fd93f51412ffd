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

Local files are read in their native formats, named by the source's `path` (FILE_FORMATS) or, with
`path: auto` and for `data.files`, told from the file's name and content (`builder_for`):
- `json`: JSON Lines, a JSON array of records, or SQuAD-shaped JSON (SQuAD v1.1 / v2.0, MLQA, XQuAD:
  `{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}`), which is flattened into the flat SQuAD
  schema (id, title, context, question, answers {text, answer_start}) as the hub's SQuAD has it; a SQuAD v2.0
  question with `is_impossible` gets no answers (its `plausible_answers` are not answers);
- `csv`, and `tsv` (tab-separated, read with quoting off: XNLI's text holds bare quote characters);
- `conll`: one `token<whitespace>tag` line per token (the tag last, so CoNLL-2003's `token POS chunk NER` too),
  a blank line between sentences, `-DOCSTART-` lines skipped; WikiANN's `xx:` language prefix on tokens is
  removed; tags in IOB1, IOB2 or BIOES, turned into the task's IOB2 ids (tasks/ner.py);
- `parquet`, `arrow`.
A file in none of them is refused, naming the file, what was expected and what it holds.

A malformed local file stops the run with a `UserError` naming the file, the line or record, what is wrong
and how to fix it; `locate` and `check_records` give the same precision to record-level checks.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import gzip
import hashlib
import io
import json
import logging
import os
import re
from typing import Any, Callable, Iterator

import datasets
import pyarrow.compute as pc
from omegaconf import OmegaConf

from softprompt_xl.config import to_plain
from softprompt_xl.errors import UserError
from softprompt_xl.runtime.atomic import disk_full
from softprompt_xl.runtime.hub import hub_reachable
from softprompt_xl.data.tasks.base import FIX, relabel, without_gold_less
from softprompt_xl.data.tasks.ner import is_tag

log = logging.getLogger(__name__)

LOAD_KEYS = ("path", "name", "data_files", "data_dir", "revision")
SPLITS = ("train", "validation", "test")
AUTO = "auto"  # a local source whose format each split's files tell by their name and content
# Local file formats (a source's `path`) -> the datasets builder that reads them (None: read here).
FILE_FORMATS = {"json": "json", "csv": "csv", "tsv": "csv", "conll": None, "parquet": "parquet", "arrow": "arrow",
                "text": "text", AUTO: None}
# File name endings (without .gz) -> format; other names (.tsv, .txt, none) are told by their content.
EXTENSION_FORMATS = (
    (".jsonl", "json"), (".json", "json"), (".csv", "csv"), (".parquet", "parquet"), (".arrow", "arrow"),
    (".conll", "conll"), (".conll03", "conll"), (".iob", "conll"), (".iob1", "conll"), (".iob2", "conll"),
    (".bio", "conll"), (".bioes", "conll"),
)
SQUAD_FEATURES = datasets.Features({
    "id": datasets.Value("string"),
    "title": datasets.Value("string"),
    "context": datasets.Value("string"),
    "question": datasets.Value("string"),
    "answers": {"text": datasets.List(datasets.Value("string")), "answer_start": datasets.List(datasets.Value("int32"))},
})
CONLL_FEATURES = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                                   "ner_tags": datasets.List(datasets.Value("string"))})
CONLL_READER = 1  # bump when the CoNLL reader changes, so files read by an older one are read again
CARVE_SEED = 42  # the paper's authors' seed, when a carve names none
EXPECTED = ("JSON Lines, a JSON array or SQuAD JSON (.json/.jsonl); CSV (.csv); TSV (tab-separated columns, e.g. "
            "XNLI's .tsv); CoNLL (a 'token<TAB or space>tag' line per token, tags O/B-TYPE/I-TYPE, a blank line "
            "between sentences); Parquet (.parquet); Arrow (.arrow)")


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
        needed = SPLITS if _trains(cfg) else ("test",)
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


def builder_for(path: str) -> str:
    """The format of a local file (a key of FILE_FORMATS): by its name (.json/.jsonl -> json, .csv -> csv,
    .parquet, .arrow, .conll/.iob/.bio -> conll; .gz too), else by its content (JSON, CoNLL or TSV: `sniff`;
    a .tsv file is TSV unless it holds CoNLL).
    A file that is not there yet and whose name does not tell is AUTO, told when it is read. Raises UserError
    for a file in none of the formats, naming what was expected and what it holds."""
    lower = path.lower().removesuffix(".gz")
    for ending, fmt in EXTENSION_FORMATS:
        if lower.endswith(ending):
            return fmt
    if not os.path.isfile(path):
        return AUTO
    fmt, found = sniff(path)
    if lower.endswith(".tsv") and fmt != "conll":
        return "tsv"  # the name says TSV; the reader names any line that is not
    if fmt is None:
        raise UserError(f"Cannot tell the format of {path}: it is none of {EXPECTED}. {found} Name the format "
                        "with data.format=... (or `path:` in the source), or convert the file.")
    return fmt


_IDENTIFIER = re.compile(r"\A[^\W\d]\w*\Z")  # a column name such as premise, gold_label, sentence1
_LANGUAGE_PREFIX = re.compile(r"\A([a-z]{2,3}(?:-[a-z]{1,12})*|simple):(?=\S)")  # WikiANN's "en:", "be-x-old:"
_DOCSTART = "-DOCSTART-"


def sniff(path: str) -> tuple[str | None, str]:
    """(format, what the file begins with) from the first 64 KiB of a local file: json when it begins with { or
    [, conll when every line is `token ... tag` with an IOB tag last (or -DOCSTART-, or blank), tsv when every
    line has the same number (at least 2) of tab-separated fields; None when it is none of them."""
    try:
        with _open_text(path) as stream:
            head = stream.read(65536)
            complete = not stream.read(1)
    except UnicodeDecodeError:
        with open(path, "rb") as raw:
            magic = raw.read(4)
        if magic == b"PAR1":
            return "parquet", ""
        return None, "It is not UTF-8 text."
    except OSError as err:
        return None, f"It cannot be read ({err})."
    body = head.lstrip("\ufeff \t\r\n")
    lines = head.lstrip("\ufeff").splitlines()
    if not complete and lines:
        lines = lines[:-1]  # cut off mid-line
    content = [line for line in lines if line.strip()]
    found = f"Its first line is {content[0][:120]!r}." if content else "It holds no text."
    if body[:1] in ("{", "["):
        return "json", found
    if content and all(_conll_line(line) for line in content):
        return "conll", found
    widths = {len(line.split("\t")) for line in content}
    if content and len(widths) == 1 and widths.pop() >= 2:
        return "tsv", found
    return None, found


def _conll_line(line: str) -> bool:
    fields = _conll_fields(line)
    return fields[0] == _DOCSTART or (len(fields) >= 2 and is_tag(fields[-1]))


def _conll_fields(line: str) -> list[str]:
    """A CoNLL line's fields: split at tabs when it has any (a token may hold a space there), else at spaces."""
    line = line.rstrip()
    return line.split("\t") if "\t" in line else line.split()


def _trains(cfg: Any) -> bool:
    combo = OmegaConf.select(cfg, "combo", default=None)
    if combo is None:
        return True
    return bool(OmegaConf.select(combo, "components.task", default=None)) or bool(combo.get("train_backbone"))


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
    """Split `split` of `source` as published: loaded, SQuAD JSON flattened, CoNLL parsed; nothing renamed."""
    selector = (source.get("splits") or {}).get(split, split)
    kwargs = {k: source[k] for k in LOAD_KEYS if source.get(k)}
    fmt = source["path"]
    local = fmt in FILE_FORMATS
    files: list[str] = []
    squad = False
    if local:
        kwargs["data_files"] = _existing_files(source.get("data_files"), selector, what)
        files = _expand(next(iter(kwargs["data_files"].values())))
        for path in files:
            _check_not_empty(path, split, what)
        fmt = _format_of(files, fmt, split, what)
        if fmt == "conll":
            return _slice(_read_conll(files, cache_dir, split, what), selector, what)
        kwargs["path"] = FILE_FORMATS[fmt]
        squad = fmt == "json" and any(_is_squad_json(path) for path in files)
        if squad:
            kwargs["field"] = "data"
    elif not hub_reachable():
        # Without this, datasets retries the unreachable Hub for about a minute before failing.
        datasets.config.HF_HUB_OFFLINE = True
    try:
        if fmt in ("csv", "tsv"):
            kwargs.update(_delimited_options(files[0], fmt, source, task, split, what))
        with _quiet(local):
            dataset = datasets.load_dataset(**kwargs, split=selector, cache_dir=cache_dir)
        if squad:
            dataset = _flatten_squad(dataset, files, split, what)
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
                problem = _diagnose(files, fmt, source)
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


def _slice(dataset: datasets.Dataset, selector: str, what: str) -> datasets.Dataset:
    """`dataset` cut as a split expression such as `train[:10%]` says (for files read here, not by datasets)."""
    if "[" not in selector:
        return dataset
    name = selector.split("[")[0]
    try:
        instructions = datasets.ReadInstruction.from_spec(selector).to_absolute({name: len(dataset)})
    except (ValueError, AssertionError) as err:
        raise UserError(f"The split expression {selector!r} of {what} is not valid: {err}.") from None
    indices = [i for part in instructions for i in range(part.from_, part.to)]
    return dataset.select(indices)


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
    if source["path"] in FILE_FORMATS:
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


def _read_conll(files: list[str], cache_dir: str, split: str, what: str) -> datasets.Dataset:
    """CoNLL files as records {tokens, ner_tags (the tags as written)}, streamed into datasets' cache: a sentence
    at a time is in memory, and the cache is found again while the files are unchanged."""
    stamp = [(os.path.abspath(p), os.path.getsize(p), os.stat(p).st_mtime_ns) for p in files]
    fingerprint = hashlib.sha256(json.dumps([CONLL_READER, stamp]).encode()).hexdigest()[:32]
    try:
        with _quiet(True):
            dataset = datasets.Dataset.from_generator(
                _conll_sentences, features=CONLL_FEATURES, cache_dir=cache_dir, gen_kwargs={"files": files},
                fingerprint=fingerprint)
    except Exception as err:  # noqa: BLE001 - the reader's own UserError comes back wrapped by datasets
        cause = err
        while cause is not None and not isinstance(cause, UserError):
            cause = cause.__cause__ or cause.__context__
        if cause is not None:
            raise UserError(f"Could not read the {split} split of {what}: {cause} {FIX}") from None
        raise
    if len(dataset) == 0:
        raise UserError(f"The {split} split of {what} ({', '.join(files)}) has no sentences. {FIX}")
    return dataset


def _conll_sentences(files: list[str]) -> Iterator[dict]:
    for path in files:
        try:
            yield from _conll_file(path)
        except UnicodeDecodeError as err:
            raise UserError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}).") from None


def _conll_file(path: str) -> Iterator[dict]:
    """The sentences of one CoNLL file, read a line at a time."""
    prefix = _language_prefix(path)
    tokens: list[str] = []
    tags: list[str] = []
    with _open_text(path) as stream:
        for number, line in enumerate(stream, 1):
            fields = _conll_fields(line) if line.strip() else []
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
    with _open_text(path) as stream:
        for line in stream:
            fields = _conll_fields(line) if line.strip() else []
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


def _delimited_options(path: str, fmt: str, source: dict, task: Any, split: str, what: str) -> dict:
    """The csv builder's options for a CSV or TSV file: TSV is read with quoting off and every column as text
    (XNLI's unquoted text holds quote characters; "NA" or "null" are words there, not missing values); a file
    without a header row gets its column names from the source's `column_names` or the task's fields."""
    options: dict[str, Any] = {"sep": "\t", "quoting": csv.QUOTE_NONE, "na_filter": False} if fmt == "tsv" else {}
    header = _header(path, fmt, source)
    if header is None:
        names = source.get("column_names") or (task.columns if task is not None else None)
        width = len(_first_row(path, fmt))
        if not names or len(names) != width:
            raise UserError(
                f"The {split} file of {what} ({path}) has no header row and {width} columns"
                f"{f', but the task has {len(names)} fields ({chr(44).join(names)})' if names else ''}: add a "
                "header row naming the columns, or name them in the source with column_names: [...].")
        options.update(header=None, column_names=list(names))
    else:
        names = header
    if fmt == "tsv":
        options["features"] = datasets.Features({name: datasets.Value("string") for name in names})
    return options


def _first_row(path: str, fmt: str) -> list[str]:
    with _open_text(path) as stream:
        for row in _rows(stream, fmt):
            if row:
                return row
    return []


def _rows(stream: io.TextIOBase, fmt: str):
    if fmt == "tsv":
        return csv.reader(stream, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(stream)


def _header(path: str, fmt: str, source: dict) -> list[str] | None:
    """The column names of a CSV / TSV file's first row, or None when that row is a record: the source's
    `header: true|false` says; else a CSV file has one, and a TSV file has one when every field of its first row
    is a name (premise, gold_label) - XNLI's files have one, some of their copies do not."""
    row = [field.strip().lstrip("\ufeff") for field in _first_row(path, fmt)]
    explicit = source.get("header")
    if explicit is not None:
        return row if explicit else None
    if fmt == "csv":
        return row  # CSV files are written with their header row (pandas, spreadsheets)
    return row if row and all(_IDENTIFIER.match(field) for field in row) else None


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
                    if qa.get("is_impossible") is True:  # SQuAD v2.0: unanswerable, whatever else it lists
                        answers = []
                    out["answers"].append({"text": [a["text"] for a in answers],
                                           "answer_start": [a.get("answer_start", -1) for a in answers]})
        return out

    try:
        questions = articles.map(flatten, batched=True, remove_columns=articles.column_names,
                                 features=SQUAD_FEATURES, desc="Flattening SQuAD JSON")
    except (_Malformed, TypeError, AttributeError):
        problem = next((p for p in (_squad_problem(path) for path in files) if p), None)
        raise UserError(f"Could not read the {split} split of {what}: "
                        f"{problem or 'a question is not in the SQuAD format'}. {FIX}") from None
    texts = questions.data.column("answers").combine_chunks().field("text")
    unanswerable = int(pc.sum(pc.equal(pc.list_value_length(texts), 0)).as_py() or 0)
    if unanswerable:
        log.info("%s %s: %d of %d questions have no answer (SQuAD v2.0 unanswerable); a task that needs an answer "
                 "leaves them out", what, split, unanswerable, len(questions))
    return questions


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


def _diagnose(files: list[str], fmt: str, source: dict) -> str | None:
    """Where the first of `files` that datasets could not read goes wrong, found by reading it ourselves."""
    for path in files:
        if fmt == "json":
            problem = _squad_problem(path) if _is_squad_json(path) else _json_lines_problem(path)
        elif fmt in ("csv", "tsv"):
            problem = _csv_problem(path, fmt, source)
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


def _csv_problem(path: str, fmt: str = "csv", source: dict | None = None) -> str | None:
    kind = "TSV" if fmt == "tsv" else "CSV"
    try:
        with _open_text(path) as stream:
            reader = _rows(stream, fmt)
            header = _header(path, fmt, source or {})
            first = next(reader, None)
            if not first:
                return f"{path} has no header row (the first line names the columns, e.g. text,label)"
            width = len(header) if header is not None else len(first)  # headerless: the first record's width
            start = reader.line_num + 1
            for row in reader:
                if row and len(row) != width:
                    said = f"the header has {width} ({','.join(header)})" if header is not None else f"line 1 has {width}"
                    advice = ("a tab inside a field breaks TSV: remove it" if fmt == "tsv"
                              else "quote fields that contain commas or line breaks")
                    return f"line {start} of {path} has {len(row)} fields but {said}; {advice}"
                start = reader.line_num + 1
    except csv.Error as err:
        return f"line {reader.line_num} of {path} is not valid {kind}: {err}"
    except UnicodeDecodeError as err:
        return f"{path} is not UTF-8 text ({err.reason} at byte {err.start})"
    return None


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


def _locate_in_files(files: list[str], fmt: str, index: int, source: dict) -> str | None:
    remaining = index
    for path in files:
        builder = builder_for(path) if fmt == AUTO else fmt
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
        elif builder in ("csv", "tsv"):
            header = _header(path, builder, source) is not None
            with _open_text(path) as stream:
                reader = _rows(stream, builder)
                if header:
                    next(reader, None)
                start, record = reader.line_num + 1, 0
                for row in reader:
                    if row:  # pandas skips blank lines
                        record += 1
                        if remaining == 0:
                            return f"line {start} of {path} (record {record})"
                        remaining -= 1
                    start = reader.line_num + 1
        elif builder == "conll":
            sentence, first = 0, None
            with _open_text(path) as stream:
                for number, line in enumerate(stream, 1):
                    fields = _conll_fields(line) if line.strip() else []
                    if fields and fields[0] != _DOCSTART:
                        first = first or number
                        continue
                    if first:
                        if remaining == 0:
                            return f"sentence {sentence + 1} (line {first}) of {path}"
                        sentence, first, remaining = sentence + 1, None, remaining - 1
            if first:
                if remaining == 0:
                    return f"sentence {sentence + 1} (line {first}) of {path}"
                remaining -= 1
        elif builder == "parquet":
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(path).metadata.num_rows
            if remaining < rows:
                return f"row {remaining + 1} of {path}"
            remaining -= rows
        else:
            return None
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
