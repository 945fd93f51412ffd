"""Data sources: native local formats (SQuAD JSON, JSON Lines, CSV), data.files=..., and clear messages for bad files."""

from __future__ import annotations

import gzip
import json

import pytest
from omegaconf import OmegaConf

from softprompt_xl.data.sources import builder_for, check_records, files_source, load_split, locate, task_source
from softprompt_xl.data.tasks import get_task
from softprompt_xl.errors import UserError

SQUAD = {"version": "1.1", "data": [
    {"title": "Bratislava", "paragraphs": [
        {"context": "Bratislava leží na Dunaji.", "qas": [
            {"id": "q1", "question": "Kde leží Bratislava?", "answers": [{"text": "na Dunaji", "answer_start": 16}]},
            {"id": "q2", "question": "Čo leží na Dunaji?", "answers": [{"text": "Bratislava", "answer_start": 0},
                                                                        {"text": "Bratislava", "answer_start": 0}]},
        ]},
        {"context": "Je to hlavné mesto.", "qas": [
            {"id": "q3", "question": "Čo je to?", "answers": [{"text": "hlavné mesto", "answer_start": 6}]},
        ]},
    ]},
    {"title": "Košice", "paragraphs": [
        {"context": "Košice sú na východe.", "qas": [
            {"id": "q4", "question": "Kde sú Košice?", "answers": [{"text": "na východe", "answer_start": 10}]},
        ]},
    ]},
]}

NLI = [{"premise": "Anna má psa.", "hypothesis": "Anna má zviera.", "label": 0},
       {"premise": "Peter býva v Nitre.", "hypothesis": "Peter býva v Košiciach.", "label": 2},
       {"premise": "Eva rada pláva.", "hypothesis": "Eva je učiteľka.", "label": 1}]


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def write_jsonl(path, records, gz=False):
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def nli_task(make_cfg):
    return get_task(make_cfg("task=nli").task)


# --- SQuAD JSON ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("indent", [None, 2])
def test_squad_json_is_flattened_into_one_record_per_question(tmp_path, cache, indent):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False, indent=indent), encoding="utf-8")
    data = load_split({"path": "json", "data_files": {"train": str(path)}}, "train", cache, "sk qa")
    assert data.column_names == ["id", "title", "context", "question", "answers"]
    assert [r["id"] for r in data] == ["q1", "q2", "q3", "q4"]
    assert data[1] == {"id": "q2", "title": "Bratislava", "context": "Bratislava leží na Dunaji.",
                       "question": "Čo leží na Dunaji?",
                       "answers": {"text": ["Bratislava", "Bratislava"], "answer_start": [0, 0]}}
    assert data[3]["title"] == "Košice" and data[3]["answers"]["text"] == ["na východe"]


def test_flattened_squad_json_fits_the_qa_task(tmp_path, cache, make_cfg):
    path = tmp_path / "test.json.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(SQUAD, f, ensure_ascii=False)
    source = {"path": "json", "data_files": {"test": str(path)}}
    task = get_task(make_cfg("task=qa").task)
    records = check_records(load_split(source, "test", cache, "sk qa"), task.check, source, "test", "sk qa")
    assert [task.target(r) for r in records] == ["na Dunaji", "Bratislava", "hlavné mesto", "na východe"]
    assert records[1]["answers"]["text"] == ["Bratislava", "Bratislava"]


def test_squad_json_with_a_malformed_question_names_article_and_question(tmp_path, cache):
    broken = json.loads(json.dumps(SQUAD))
    del broken["data"][1]["paragraphs"][0]["qas"][0]["question"]
    path = tmp_path / "train.json"
    path.write_text(json.dumps(broken, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_split({"path": "json", "data_files": {"train": str(path)}}, "train", cache, "sk qa")
    assert "question 1 (id 'q4')" in str(err.value) and "article 2" in str(err.value)
    assert str(path) in str(err.value) and "'question'" in str(err.value)


def test_squad_json_that_is_not_valid_json_names_line_and_column(tmp_path, cache):
    path = tmp_path / "train.json"
    text = json.dumps(SQUAD, ensure_ascii=False, indent=2).splitlines()
    text[4] = text[4].rstrip(",")  # drop the comma after the title: the next line (6) is where JSON breaks
    path.write_text("\n".join(text), encoding="utf-8")
    with pytest.raises(UserError) as err:
        load_split({"path": "json", "data_files": {"train": str(path)}}, "train", cache, "sk qa")
    assert "line 6 (column" in str(err.value) and str(path) in str(err.value) and "not valid JSON" in str(err.value)


def test_locate_finds_a_question_in_squad_json(tmp_path):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(SQUAD, ensure_ascii=False), encoding="utf-8")
    place = locate({"path": "json", "data_files": {"validation": str(path)}}, "validation", 2)
    assert place == f"question 1 (id 'q3') of paragraph 2 of article 1 ('Bratislava') of {path}"


# --- data.files ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name,builder", [
    ("a.json", "json"), ("a.jsonl", "json"), ("a.jsonl.gz", "json"), ("a.JSON.gz", "json"),
    ("a.csv", "csv"), ("a.csv.gz", "csv"), ("a.parquet", "parquet"),
])
def test_the_builder_is_inferred_from_the_file_name(name, builder):
    assert builder_for(name) == builder


def test_a_file_in_none_of_the_formats_is_refused_naming_file_expected_and_found(tmp_path, cache):
    path = tmp_path / "data.txt"
    path.write_text("Just some prose, a sentence per line.\nAnd another one.\n", encoding="utf-8")
    with pytest.raises(UserError) as err:
        builder_for(str(path))
    message = str(err.value)
    assert f"Cannot tell the format of {path}" in message
    assert "JSON Lines" in message and "CoNLL" in message and "TSV" in message  # what was expected
    assert "'Just some prose, a sentence per line.'" in message  # what was found
    assert "data.format=" in message  # the fix
    # the same refusal through data.files and through a source that leaves the format to the content
    with pytest.raises(UserError, match=rf"Cannot tell the format of {path}"):
        files_source({"test": str(path)}, ("test",))
    with pytest.raises(UserError, match=rf"Cannot tell the format of {path}"):
        load_split({"path": "auto", "data_files": {"test": str(path)}}, "test", cache, "sk ner")


def test_a_name_that_does_not_tell_is_left_to_the_content_when_the_file_is_read(tmp_path, cache):
    assert builder_for(str(tmp_path / "later.txt")) == "auto"
    with pytest.raises(UserError, match=r"Data file not found for sk ner \(test split\): .*later\.txt"):
        load_split(files_source({"test": str(tmp_path / "later.txt")}, ("test",)), "test", cache, "sk ner")


def test_data_files_is_a_declared_key_and_becomes_the_task_source(make_cfg, tmp_path):
    assert make_cfg().data.files is None and make_cfg("data=hub").data.files is None
    files = {s: str(tmp_path / f"{s}.csv") for s in ("train", "validation", "test")}
    cfg = make_cfg("+combo=lp_ta", "task=checkworthy", "data=hub",
                   f"data.files={{train:{files['train']},validation:{files['validation']},test:{files['test']}}}")
    assert task_source(cfg) == {"path": "csv", "data_files": files, "splits": {s: s for s in files}}
    assert OmegaConf.to_container(task_source(make_cfg("+combo=lp_ta"))) == OmegaConf.to_container(
        make_cfg("+combo=lp_ta").data.task)


def test_data_files_relative_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    source = files_source({"train": "d/train.jsonl", "validation": "d/dev.jsonl", "test": "d/test.jsonl"})
    assert source["data_files"]["validation"] == str(tmp_path / "d/dev.jsonl")


def test_data_files_needs_every_split_a_trained_combo_reads(make_cfg):
    cfg = make_cfg("+combo=lp_ta", "data.files={train:a.jsonl,test:c.jsonl}")
    with pytest.raises(UserError, match=r"no file for the validation split.*reads train, validation, test.*"
                                        r"data\.files=\{train:"):
        task_source(cfg)
    # zero_shot reads only the test split
    assert list(task_source(make_cfg("+combo=zero_shot", "data.files={test:c.jsonl}"))["data_files"]) == ["test"]


def test_data_files_refuses_unknown_splits_mixed_formats_and_a_plain_path():
    with pytest.raises(UserError, match="unknown split.*dev"):
        files_source({"train": "a.jsonl", "dev": "b.jsonl", "test": "c.jsonl"}, ("test",))
    with pytest.raises(UserError, match="mixes formats"):
        files_source({"train": "a.jsonl", "validation": "b.csv", "test": "c.jsonl"})
    with pytest.raises(UserError, match="should map splits to files"):
        files_source("a.jsonl")


def test_data_files_are_loaded_in_their_native_format(tmp_path, cache, make_cfg):
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.csv").write_text("id,text,label\n1,\"Vláda zvýšila dane o 5 %, tvrdí politik.\",1\n"
                                               "2,Dobré ráno.,0\n", encoding="utf-8")
    cfg = make_cfg("+combo=ta", "task=checkworthy", "lang=sk", "data.files={train:%s/train.csv,validation:%s/"
                   "validation.csv,test:%s/test.csv}" % (tmp_path, tmp_path, tmp_path))
    data = load_split(task_source(cfg), "validation", cache, "sk checkworthy")
    assert data["text"] == ["Vláda zvýšila dane o 5 %, tvrdí politik.", "Dobré ráno."] and data["label"] == [1, 0]


# --- malformed files -------------------------------------------------------------------------------------------


def test_a_bad_json_line_is_named_by_file_and_line(tmp_path, cache):
    path = tmp_path / "train.jsonl.gz"
    lines = [json.dumps(r, ensure_ascii=False) for r in NLI * 3]
    lines[4] = lines[4].replace('"label"', 'label')  # an unquoted key on line 6 (after a blank line)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.write("\n".join(lines[:2]) + "\n\n" + "\n".join(lines[2:]) + "\n")
    with pytest.raises(UserError) as err:
        load_split({"path": "json", "data_files": {"train": str(path)}}, "train", cache, "sk nli")
    message = str(err.value)
    assert "line 6 (column" in message and str(path) in message and "not valid JSON" in message
    assert "Fix or remove it" in message


def test_a_json_line_that_is_not_an_object_is_named(tmp_path, cache):
    path = write_jsonl(tmp_path / "train.jsonl", NLI)
    path.write_text(path.read_text(encoding="utf-8") + '["a", "list"]\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"line 4 of .*train\.jsonl is a list, not a JSON object"):
        load_split({"path": "json", "data_files": {"train": str(path)}}, "train", cache, "sk nli")


@pytest.mark.parametrize("name,content", [("train.jsonl", ""), ("train.jsonl.gz", "\n\n"), ("train.csv", ""),
                                          ("train.json", "   \n")])
def test_an_empty_file_is_named(tmp_path, cache, name, content):
    path = tmp_path / name
    if name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(UserError, match=rf"The train file of sk nli is empty: {path}\."):
        load_split({"path": builder_for(name), "data_files": {"train": str(path)}}, "train", cache, "sk nli")


def test_a_csv_with_only_a_header_has_no_records(tmp_path, cache):
    path = tmp_path / "test.csv"
    path.write_text("text,label\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"test split of sk checkworthy \({path}\) has no records"):
        load_split({"path": "csv", "data_files": {"test": str(path)}}, "test", cache, "sk checkworthy")


def test_a_csv_row_with_extra_fields_is_named_by_line(tmp_path, cache):
    path = tmp_path / "test.csv"
    path.write_text("text,label\nA claim.,1\n\"A claim, quoted\",0\nAnother, unquoted,1\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"line 4 of {path} has 3 fields but the header has 2 \(text,label\)"):
        load_split({"path": "csv", "data_files": {"test": str(path)}}, "test", cache, "sk checkworthy")


def test_a_missing_field_is_named_by_file_and_line(tmp_path, cache, make_cfg):
    records = [dict(r) for r in NLI]
    del records[2]["hypothesis"]
    path = write_jsonl(tmp_path / "validation.jsonl", records)
    source = {"path": "json", "data_files": {"validation": str(path)}}
    data = load_split(source, "validation", cache, "sk nli")
    with pytest.raises(UserError) as err:
        check_records(data, nli_task(make_cfg).check, source, "validation", "sk nli")
    assert f"malformed record at line 3 of {path}: missing field 'hypothesis'" in str(err.value)


def test_a_label_out_of_range_is_named_by_file_and_record(tmp_path, cache, make_cfg):
    path = tmp_path / "train.csv"
    path.write_text("text,label\nFirst claim.,1\n\nSecond claim.,0\n\"Third,\nclaim.\",0\nFourth claim.,2\n",
                    encoding="utf-8")
    source = {"path": "csv", "data_files": {"train": str(path)}}
    data = load_split(source, "train", cache, "sk checkworthy")
    task = get_task(make_cfg("task=checkworthy").task)
    with pytest.raises(UserError) as err:
        check_records(data, task.check, source, "train", "sk checkworthy")
    assert f"line 7 of {path} (record 4): label 2 is out of range" in str(err.value)


def test_a_field_with_two_types_is_named_by_line(tmp_path, cache, make_cfg):
    records = [dict(r) for r in NLI] + [{"premise": "x", "hypothesis": "y", "label": "neutral"}]
    path = write_jsonl(tmp_path / "train.jsonl", records)
    source = {"path": "json", "data_files": {"train": str(path)}}
    with pytest.raises(UserError) as err:  # datasets either cannot build one column type, or the task check objects
        check_records(load_split(source, "train", cache, "sk nli"), nli_task(make_cfg).check, source, "train", "sk nli")
    assert f"line 4 of {path}" in str(err.value) and "label" in str(err.value)


def test_a_missing_file_says_which_and_how_to_fix(tmp_path, cache):
    with pytest.raises(UserError, match=r"Data file not found for sk qa \(test split\): .*nowhere\.json\. Check the path"):
        load_split({"path": "json", "data_files": {"test": str(tmp_path / "nowhere.json")}}, "test", cache, "sk qa")


def test_a_missing_local_source_of_data_hub_names_the_expected_file(make_cfg, cache):
    cfg = make_cfg("+combo=lp_ta", "data=hub", "lang=sk", "task=checkworthy")
    with pytest.raises(UserError, match=r"Data file not found for sk checkworthy \(train split\): "
                                        r".*external/multiclaim/sk/train\.csv"):
        load_split(task_source(cfg), "train", cache, "sk checkworthy")


def test_no_source_at_all_is_a_clear_message(cache):
    with pytest.raises(UserError, match="No data source is configured for te ner"):
        load_split(None, "train", cache, "te ner")


# --- column renames and label maps -----------------------------------------------------------------------------


def test_columns_and_label_map_adapt_a_source_to_the_task(tmp_path, cache, make_cfg):
    records = [{"evidence": r["premise"], "claim": r["hypothesis"], "label": 2 - r["label"]} for r in NLI]
    path = write_jsonl(tmp_path / "test.jsonl", records)
    source = {"path": "json", "data_files": {"test": str(path)}, "columns": {"evidence": "premise", "claim": "hypothesis"},
              "label_map": {0: 2, 1: 1, 2: 0}}
    data = load_split(source, "test", cache, "cs nli")
    assert [(r["premise"], r["hypothesis"], r["label"]) for r in data] == [
        (r["premise"], r["hypothesis"], r["label"]) for r in NLI]
    check_records(data, nli_task(make_cfg).check, source, "test", "cs nli")


def test_label_map_matches_label_words_and_names_an_unmapped_label(tmp_path, cache):
    records = [{"premise": "a", "hypothesis": "b", "label": word} for word in ("entailment", "neutral", "contradiction")]
    path = write_jsonl(tmp_path / "test.jsonl", records + [{"premise": "a", "hypothesis": "b", "label": "unsure"}])
    source = {"path": "json", "data_files": {"test": str(path)},
              "label_map": {"entailment": 0, "neutral": 1, "contradiction": 2}}
    with pytest.raises(UserError, match=rf"Line 4 of {path} \(cs nli\) has label 'unsure', which the source's label_map"):
        load_split(source, "test", cache, "cs nli")
    path = write_jsonl(tmp_path / "test.jsonl", records)
    assert load_split(source, "test", cache, "cs nli")["label"] == [0, 1, 2]


def test_a_rename_of_a_missing_column_lists_the_columns(tmp_path, cache):
    path = write_jsonl(tmp_path / "test.jsonl", NLI)
    source = {"path": "json", "data_files": {"test": str(path)}, "columns": {"evidence": "premise"}}
    with pytest.raises(UserError, match=r"no column 'evidence' to rename \(its columns: .*premise"):
        load_split(source, "test", cache, "cs nli")


def test_locate_names_records_of_hub_sources():
    source = {"path": "unimelb-nlp/wikiann", "name": "cs", "splits": {"test": "test"}}
    assert locate(source, "test", 16) == "record 17 of the test split of unimelb-nlp/wikiann (cs)"


def test_locate_counts_lines_across_files_and_skips_blank_ones(tmp_path):
    first = write_jsonl(tmp_path / "a.jsonl", NLI[:2])
    second = tmp_path / "b.jsonl"
    second.write_text("\n" + json.dumps(NLI[2]) + "\n", encoding="utf-8")
    source = {"path": "json", "data_files": {"train": [str(first), str(second)]}}
    assert locate(source, "train", 1) == f"line 2 of {first}"
    assert locate(source, "train", 2) == f"line 2 of {second}"
