"""`result.json`, the record of what one job came to, and the name of a run. The one place that writes and reads
the record, for the pipeline (stages.py), the job's entry point and its launchers, the sweep plan, the store, the
report and the tests alike.

A record is one of three:
- `Result`: a finished run, its scores on every evaluation language and what it cost. The store keeps it under
  the run's key (with `key` and `created`); the job directory holds the same one (with `skipped` when the store
  had it already). The eval run's W&B summary holds it too (`result`), so the report reads either source.
- `LangStageResult`: a stage=lang job, the language components it made sure of (job directory only).
- `JobFailure`: a job that failed, was interrupted (resumable), or was not run (job directory only).

The JSON field names are the dataclass fields; the report and the W&B summary read them, so they do not change.
A record that cannot be read (cut off by a full disk, edited by hand) is named in a warning and treated as missing:
the run it belonged to is run again, rather than every sweep over it stopping with a traceback. So are damaged
predictions (below): the store finds them cut short by their size, the report by reading them.

A result's test predictions (every evaluation language: id, prediction, references per example) are kept beside
it in a file of their own (`write_predictions`, gzipped JSON Lines), not in result.json: that stays small, and
the same in the W&B summary. The report rescores them for confidence intervals and paired tests; a result
written before they were kept has none.
"""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar, Union

from omegaconf import OmegaConf

from softprompt_xl.runtime.atomic import write_bytes, write_json

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"
PREDICTIONS_SUFFIX = ".predictions.jsonl.gz"  # beside a stored result: <key>.json, <key>.predictions.jsonl.gz

# evaluation language -> one row per test example: {"id", "prediction", "references"} (the job directory's
# predictions_test_<lang>.jsonl rows)
Predictions = dict[str, list[dict]]


def run_name(combo: Any, lang: Any, task: Any, sep: str = "-") -> str:
    """A run's name, `<combo>-<lang>-<task>`: its job directory (conf/train.yaml hydra.sweep.subdir, through the
    `spxl.run_name` resolver) and its W&B runs are named so; `sep=" "` in what is said to a person
    ("skip lp_ta sk qa")."""
    return sep.join(str(part) for part in (combo, lang, task))


# conf/train.yaml names each job's directory `${spxl.run_name:...}` (hydra.sweep.subdir): the resolver is registered
# here, by the run name's owner, on import, so every process that names job directories has it (train.py, the staged
# sweeper and the launchers import this module); config.py, under every layer, imports nothing of the study.
if not OmegaConf.has_resolver("spxl.run_name"):
    OmegaConf.register_new_resolver("spxl.run_name", run_name)


def cfg_run_name(cfg: Any, sep: str = "-") -> str:
    return run_name(cfg.combo.name, cfg.lang.code, cfg.task.name, sep)


def lang_run_name(kind: str, lang: str) -> str:
    """The name of a stage-1 job (its job directory) and its W&B run: `lang-<kind>-<lang>`."""
    return f"lang-{kind}-{lang}"


class _Record:
    # Fields left out of the JSON while they hold their default (None, False): absent from a record that has none.
    _optional: ClassVar[tuple[str, ...]] = ()

    def to_json(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]
        return {k: v for k, v in data.items() if not (k in self._optional and (v is None or v is False))}

    def name(self, sep: str = "-") -> str:
        return run_name(self.combo, self.lang, self.task, sep)  # type: ignore[attr-defined]


@dataclass(kw_only=True)
class Result(_Record):
    combo: str
    lang: str
    task: str
    backbone: str
    seed: int
    metrics: dict[str, dict[str, float]]  # evaluation language -> metric -> score
    eval_langs: list[str]
    # what stage 2 trained (stages.train_task_part): the task component's key, parameters, steps, validations
    task_component: str | None = None
    trainable_params: dict[str, int] = field(default_factory=dict)
    steps: int = 0
    best_step: int | None = None
    validation: list[dict] = field(default_factory=list)
    train_time_s: float | None = None
    # the run's language component (its key) and its stage-1 cost, shared by every run that uses it
    lang_component: str | None = None
    lang_component_params: int | None = None
    lang_train_time_s: float | None = None
    lang_heldout_loss: float | None = None
    lang_heldout_accuracy: float | None = None
    eval_lang_components: dict[str, str | None] = field(default_factory=dict)  # evaluation language -> its key
    spec: dict  # keys.comparison_spec: what the report groups by
    wandb: dict | None = None  # where the eval run is (tracking.run_info)
    wall_time_s: float
    status: str = "complete"
    key: str | None = None  # the store's key, and when the store took it
    created: str | None = None
    skipped: bool = False  # in a job directory: found finished in the store, not run again
    # in the store: the size of its test predictions' file, so that one cut short is found without reading it
    predictions_bytes: int | None = None
    # where the evaluation ran (runtime/cluster.machine: threads, CPU, its kernels' instruction set): scores of the
    # same run differ between CPUs and thread counts by a few points on the tiny backbone
    machine: dict | None = None
    _optional: ClassVar[tuple[str, ...]] = ("key", "created", "skipped", "predictions_bytes", "machine")


@dataclass(kw_only=True)
class LangStageResult(_Record):
    stage: str = "lang"
    combo: str
    lang: str
    task: str
    lang_components: list[str]  # the keys of the language components the run needs, all in the store now
    wall_time_s: float
    status: str = "complete"


@dataclass(kw_only=True)
class JobFailure(_Record):
    # None only in a record a launcher wrote before this one named its job
    combo: str | None = None
    lang: str | None = None
    task: str | None = None
    backbone: str | None = None
    seed: int | None = None
    status: str  # "failed", or "interrupted" (resumable: the same command continues it)
    error: str
    overrides: str | None = None
    wall_time_s: float | None = None
    diverged: dict | None = None  # where the loss diverged (runtime/divergence.py)
    _optional: ClassVar[tuple[str, ...]] = ("combo", "lang", "task", "backbone", "seed", "overrides", "wall_time_s",
                                            "diverged")

    @classmethod
    def failed(cls, identity: dict, error: str, **details: Any) -> "JobFailure":
        """A job (`identity`: job_identity of its config) that failed, or one that was not run at all (the reason in
        `error`)."""
        return cls(**identity, status="failed", error=error, **details)

    @classmethod
    def interrupted(cls, identity: dict, error: str, wall_time_s: float) -> "JobFailure":
        return cls(**identity, status="interrupted", error=error, wall_time_s=wall_time_s)


Record = Union[Result, LangStageResult, JobFailure]


def job_identity(cfg: Any) -> dict:
    """Which job a composed config is, as a record names it: read from the raw config, since a job can fail before
    its config has been checked (a launcher records one that never started)."""
    return {"combo": cfg.combo.name, "lang": cfg.lang.code, "task": cfg.task.name, "backbone": cfg.backbone.id,
            "seed": cfg.seed}


def from_json(data: Any) -> Record:
    """The record a JSON object holds; ValueError if it is none of them (fields it does not know are dropped)."""
    if not isinstance(data, dict):
        raise ValueError(f"a JSON object was expected, not {type(data).__name__}")
    cls = JobFailure if data.get("status") != "complete" else LangStageResult if data.get("stage") == "lang" else Result
    known = {f.name for f in fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError as err:  # a field missing
        raise ValueError(str(err).replace("__init__()", cls.__name__)) from None


def write(path: str | Path, record: Record) -> None:
    """Atomically: a reader sees the old record or the whole new one."""
    write_json(path, record.to_json())


def read(path: str | Path) -> Record | None:
    """The record in `path`; None when there is none, or when it is damaged (said in a warning)."""
    path = Path(path)
    try:
        return from_json(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        return None
    except (ValueError, UnicodeDecodeError) as err:  # json.JSONDecodeError is a ValueError
        log.warning("%s is damaged (%s): treated as missing, so its run counts as not done", path, err)
        return None


def write_predictions(path: str | Path, predictions: Predictions) -> None:
    """Atomically, one JSON line per example with its language (`lang`); mtime 0 so equal predictions give
    equal bytes."""
    text = "".join(json.dumps({"lang": lang, **row}, ensure_ascii=False, default=str) + "\n"
                   for lang, rows in predictions.items() for row in rows)
    write_bytes(path, gzip.compress(text.encode("utf-8"), mtime=0))


def read_predictions(path: str | Path) -> Predictions | None:
    """The predictions in `path`; None when there are none, or when the file is damaged (said in a warning)."""
    path = Path(path)
    try:
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
        out: Predictions = {}
        for number, line in enumerate(lines, 1):
            row = json.loads(line)
            if not isinstance(row, dict) or not {"lang", "id", "prediction", "references"} <= set(row):
                raise ValueError(f"line {number} is not a prediction")
            out.setdefault(row.pop("lang"), []).append(row)
        return out
    except FileNotFoundError:
        return None
    except (OSError, EOFError, ValueError) as err:  # gzip.BadGzipFile is an OSError, a cut-off stream an EOFError
        log.warning("%s is damaged (%s): its result is reported without confidence intervals and left out of "
                    "comparisons", path, err)
        return None
