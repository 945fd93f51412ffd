"""The records on disk, each written and read by one module: a component's header (component.json), a job's record
(result.json, in the store and in each job directory), and the name of a run. Round trips, the field names and
layout that stored files already have, and damaged files: a component's says what to do, a result's is treated as
missing, so that its run is done again."""

from __future__ import annotations

import json
import logging

import pytest

from conftest import run_cli
from softprompt_xl.errors import UserError
from softprompt_xl.model.component_header import HEADER_FILE, ComponentHeader
from softprompt_xl.pipeline import records
from softprompt_xl.pipeline.keys import key, result_spec
from softprompt_xl.pipeline.records import RESULT_FILE, JobFailure, LangStageResult, Result, job_identity, run_name
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.pipeline.run_spec import RunSpec

HEADER = ComponentHeader(kind="prompt", format_version=1, role="lang", name="sk", config={"kind": "prompt", "length": 4},
                         num_parameters=128, meta={"spec": {"lang": "sk"}, "wall_time_s": 1.5})

RESULT = Result(combo="lp_ta", lang="sk", task="qa", backbone="tiny", seed=1, metrics={"sk": {"f1": 50.0}},
                eval_langs=["sk"], task_component="task-lp_ta-adapter-sk-qa-1", trainable_params={"task": 10}, steps=4,
                best_step=2, validation=[{"step": 2, "f1": 40.0}], train_time_s=3.0,
                lang_component="lang-prompt-sk-1", lang_component_params=128, lang_train_time_s=1.5,
                lang_heldout_loss=2.0, lang_heldout_accuracy=0.5, eval_lang_components={"sk": "lang-prompt-sk-1"},
                spec={"shared": {}, "combo": {}}, wandb=None, wall_time_s=9.0)

# The fields the report and the W&B summary read, in the order the pipeline has always written them.
RESULT_FIELDS = ["combo", "lang", "task", "backbone", "seed", "metrics", "eval_langs", "task_component",
                 "trainable_params", "steps", "best_step", "validation", "train_time_s", "lang_component",
                 "lang_component_params", "lang_train_time_s", "lang_heldout_loss", "lang_heldout_accuracy",
                 "eval_lang_components", "spec", "wandb", "wall_time_s", "status"]


def test_component_header_round_trip_in_the_layout_of_stored_components(tmp_path):
    HEADER.write(tmp_path)
    legacy = {"kind": "prompt", "format_version": 1, "role": "lang", "name": "sk",
              "config": {"kind": "prompt", "length": 4}, "num_parameters": 128,
              "meta": {"spec": {"lang": "sk"}, "wall_time_s": 1.5}}
    # byte for byte what Component.save wrote before the header had a module of its own
    assert (tmp_path / HEADER_FILE).read_text() == json.dumps(legacy, indent=2, sort_keys=True, default=str) + "\n"
    assert ComponentHeader.read(tmp_path) == HEADER and ComponentHeader.exists(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [HEADER_FILE]  # written atomically: no temporary left


@pytest.mark.parametrize("content, says", [
    (None, "No component at"),
    ('{"kind": "prompt", "format_', "is not valid JSON"),
    ('{"kind": "prompt"}', "lacks ['config', 'format_version', 'name', 'num_parameters', 'role']"),
    ("[1, 2]", "lacks everything"),
])
def test_a_missing_or_damaged_component_header_says_what_to_do(tmp_path, content, says):
    if content is not None:
        (tmp_path / HEADER_FILE).write_text(content)
    with pytest.raises(UserError, match="retrain it") as raised:
        ComponentHeader.read(tmp_path)
    assert says in str(raised.value)


def test_component_save_writes_the_header_that_load_reads(tmp_path):
    from softprompt_xl.model.components import component_class

    component = component_class("prompt")("lang", "sk", {"kind": "prompt", "length": 4})
    component.owned_parameters = lambda: {}  # not attached to a backbone: the header is what is tested
    component.save(tmp_path, meta={"steps": 3})
    header = ComponentHeader.read(tmp_path)
    assert (header.kind, header.format_version, header.role, header.name, header.config, header.num_parameters,
            header.meta) == ("prompt", 1, "lang", "sk", {"kind": "prompt", "length": 4}, 0, {"steps": 3})


def test_records_round_trip_with_the_field_names_of_today(tmp_path):
    assert list(RESULT.to_json()) == RESULT_FIELDS
    stage = LangStageResult(combo="lp_ta", lang="sk", task="qa", lang_components=["lang-prompt-sk-1"], wall_time_s=1.0)
    assert list(stage.to_json()) == ["stage", "combo", "lang", "task", "lang_components", "wall_time_s", "status"]
    failed = JobFailure(combo="tp", lang="sk", task="qa", backbone="tiny", seed=0, status="failed", error="boom",
                        overrides="+combo=tp lang=sk", wall_time_s=0.0)
    # what is not known is left out, not written as null; a seed of 0 or a time of 0.0 is known
    assert list(failed.to_json()) == ["combo", "lang", "task", "backbone", "seed", "status", "error", "overrides",
                                      "wall_time_s"]
    interrupted = JobFailure(combo="tp", lang="sk", task="qa", backbone="tiny", seed=1, status="interrupted",
                             error="SIGTERM", wall_time_s=2.0)
    assert "overrides" not in interrupted.to_json() and "diverged" not in interrupted.to_json()
    for record in (RESULT, stage, failed, interrupted):
        records.write(tmp_path / RESULT_FILE, record)
        assert records.read(tmp_path / RESULT_FILE) == record
    assert records.read(tmp_path / "none" / RESULT_FILE) is None


def test_failure_constructors_name_the_job(make_cfg):
    cfg = make_cfg("+combo=tp", "lang=sk", "task=ner", "seed=3")
    failed = JobFailure.failed(job_identity(cfg), "Not run: ...", overrides="+combo=tp lang=sk task=ner")
    assert failed.to_json() == {"combo": "tp", "lang": "sk", "task": "ner", "backbone": "tiny", "seed": 3,
                                "status": "failed", "error": "Not run: ...", "overrides": "+combo=tp lang=sk task=ner"}
    assert JobFailure.interrupted(job_identity(cfg), "SIGUSR2", 5.0).to_json()["status"] == "interrupted"
    assert failed.name() == "tp-sk-ner" and failed.name(" ") == "tp sk ner"
    assert run_name("lp_ta", "sk", "qa") == "lp_ta-sk-qa" == records.cfg_run_name(make_cfg("+combo=lp_ta", "lang=sk"))


@pytest.mark.parametrize("content", [b'{"combo": "lp_ta", "lang": "s', b"", b"[]", b"\xff\xfe",
                                     b'{"combo": "lp_ta", "status": "complete"}'])  # cut off, empty, no object, ...
def test_a_damaged_record_is_named_in_a_warning_and_treated_as_missing(tmp_path, caplog, content):
    path = tmp_path / RESULT_FILE
    path.write_bytes(content)
    with caplog.at_level(logging.WARNING):
        assert records.read(path) is None
    assert f"{path} is damaged" in caplog.text and "treated as missing" in caplog.text


def test_the_store_keeps_a_result_under_its_key_and_passes_over_a_damaged_one(tmp_path, caplog):
    store = Store(tmp_path)
    store.save_result("result-lp_ta-sk-qa-1", RESULT)
    stored = store.read_result("result-lp_ta-sk-qa-1")
    assert stored.key == "result-lp_ta-sk-qa-1" and stored.created and not stored.skipped
    assert list(json.loads(store.result_file(stored.key).read_text())) == RESULT_FIELDS + ["key", "created"]
    store.result_file("result-tp-sk-qa-2").write_text('{"combo": "tp", "la')  # cut off
    with caplog.at_level(logging.WARNING):
        assert store.read_result("result-tp-sk-qa-2") is None
        assert [r.key for r in store.results()] == ["result-lp_ta-sk-qa-1"]
    assert "result-tp-sk-qa-2.json is damaged" in caplog.text
    assert [(r["key"], r["status"]) for r in store.entries()] == [("result-lp_ta-sk-qa-1", "complete")]


def test_the_store_keeps_a_results_predictions_beside_it(tmp_path, caplog):
    store = Store(tmp_path)
    predictions = {"sk": [{"id": "q1", "prediction": "v Nitre", "references": {"answers": ["v Nitre"], "context": "…"}},
                          {"id": 7, "prediction": "", "references": {"answers": ["Eva"], "context": "Eva"}}],
                   "en": [{"id": "q1", "prediction": "in Nitra", "references": {"answers": ["Nitra"], "context": "x"}}]}
    store.save_result("result-lp_ta-sk-qa-1", RESULT, predictions)
    assert store.read_predictions("result-lp_ta-sk-qa-1") == predictions
    assert json.loads(store.result_file("result-lp_ta-sk-qa-1").read_text())["metrics"] == RESULT.metrics  # unchanged
    assert [r.key for r in store.results()] == ["result-lp_ta-sk-qa-1"]  # the predictions are not a result
    first = store.predictions_file("result-lp_ta-sk-qa-1").read_bytes()
    store.save_result("result-lp_ta-sk-qa-1", RESULT, predictions)
    assert store.predictions_file("result-lp_ta-sk-qa-1").read_bytes() == first  # the same bytes
    # A result stored without predictions (before they were kept) has none; damaged ones are named and passed over.
    store.save_result("result-tp-sk-qa-2", RESULT)
    assert store.read_predictions("result-tp-sk-qa-2") is None
    store.predictions_file("result-tp-sk-qa-2").write_bytes(first[:20])
    with caplog.at_level(logging.WARNING):
        assert store.read_predictions("result-tp-sk-qa-2") is None
    assert "result-tp-sk-qa-2.predictions.jsonl.gz is damaged" in caplog.text


def test_a_truncated_result_in_the_store_is_run_again(tmp_path, make_cfg):
    args = ["+combo=zero_shot", "lang=sk", "task=nli", f"paths.root={tmp_path}", "logger=none"]
    path = Store(tmp_path / "store").result_file(key(result_spec(RunSpec.of(make_cfg(*args)))))
    path.parent.mkdir(parents=True)
    path.write_text('{"combo": "zero_shot", "lang": "sk", "task": "nli", "backbone": "ti')  # e.g. a full disk
    proc = run_cli(*args, "-m")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Traceback" not in proc.stdout and f"{path} is damaged" in proc.stdout
    assert "0 finished (skipped), 1 to run" in proc.stdout
    (job,) = (tmp_path / "outputs" / "multirun").glob("*/0_zero_shot-sk-nli")  # the run's name, as ever
    result = records.read(path)
    assert isinstance(result, Result) and result.metrics["sk"] and records.read(job / RESULT_FILE) is not None
