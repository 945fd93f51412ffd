"""The task datasets as they are published: each format written by the test as the dataset ships it, then read
along the path a run reads it (`load_split` with the run's task and language, then `check_records`), once through
`data.files=...` and once through a language's source (conf/lang/<code>.yaml), with the format told by the file
or named by the source."""

from __future__ import annotations

import json
import logging

import datasets
import pytest
from omegaconf import OmegaConf
from seqeval.metrics.sequence_labeling import get_entities

from softprompt_xl.data.sources import builder_for, check_records, load_split, task_source
from softprompt_xl.data.tasks import get_task
from softprompt_xl.errors import UserError


@pytest.fixture
def cache(tmp_path):
    return str(tmp_path / "cache")


def run_records(cfg, split, cache):
    """The records a run with `cfg` trains or scores on, read as `loaders._tokenize_split` reads them."""
    task = get_task(cfg.task)
    source = task_source(cfg)
    what = f"{cfg.lang.code} {task.name}"
    raw = load_split(source, split, cache, what, task, cfg.lang.code)
    return [r for r in check_records(raw, task.check, source, split, what) if task.usable(r)]


def with_files(make_cfg, task, lang, files, *extra):
    spec = ",".join(f"{split}:{path}" for split, path in files.items())
    combo = "+combo=lp_ta" if set(files) == {"train", "validation", "test"} else "+combo=zero_shot"
    return make_cfg(combo, f"task={task}", f"lang={lang}", f"data.files={{{spec}}}", *extra)


def with_source(make_cfg, task, lang, source_yaml):
    """A run whose language source for `task` is `source_yaml`, as written in conf/lang/<lang>.yaml."""
    cfg = make_cfg("+combo=lp_ta", f"task={task}", f"lang={lang}", "data=hub")
    cfg.lang.sources[task] = OmegaConf.create(source_yaml)
    return cfg


def spans(task, record):
    return task.reference(record)


# --- NER: CoNLL ------------------------------------------------------------------------------------------------

# CoNLL-2003 as published (eng.train): `token POS chunk NER`, IOB1 (I- begins an entity; B- only between two
# adjacent entities of one type), -DOCSTART- lines, MISC among the types.
CONLL2003 = """-DOCSTART- -X- -X- O

EU NNP I-NP I-ORG
rejects VBZ I-VP O
German JJ I-NP I-MISC
call NN I-NP O
to TO I-VP O
boycott VB I-VP O
British JJ I-NP I-MISC
lamb NN I-NP O
. . O O

Peter NNP I-NP I-PER
Blackburn NNP I-NP I-PER

-DOCSTART- -X- -X- O

Flights NNS I-NP O
link VBP I-VP O
Prague NNP I-NP I-LOC
Berlin NNP I-NP B-LOC
Vienna NNP I-NP B-LOC
and CC O O
the DT I-NP O
European NNP I-NP I-ORG
Union NNP I-NP I-ORG
. . O O
"""
CONLL2003_SPANS = [[("ORG", "EU")], [("PER", "Peter Blackburn")],
                   [("LOC", "Prague"), ("LOC", "Berlin"), ("LOC", "Vienna"), ("ORG", "European Union")]]

# WikiANN as split by Rahimi et al. (the files the hub's WikiANN was built from): `xx:token<TAB>tag`, IOB2.
WIKIANN_RAW = ("sk:Jana\tB-PER\nsk:Nováková\tI-PER\nsk:žije\tO\nsk:v\tO\nsk:Bratislave\tB-LOC\nsk:.\tO\n\n"
               "sk:Slovenská\tB-ORG\nsk:sporiteľňa\tI-ORG\nsk:sídli\tO\nsk:v\tO\nsk:meste\tO\nsk:Bratislava\tB-LOC\n\n"
               "sk:http://sk.wikipedia.org\tO\nsk:Košice\tB-LOC\n")
WIKIANN_SPANS = [[("PER", "Jana Nováková"), ("LOC", "Bratislave")],
                 [("ORG", "Slovenská sporiteľňa"), ("LOC", "Bratislava")], [("LOC", "Košice")]]


def conll_splits(tmp_path, text, name):
    paths = {}
    for split in ("train", "validation", "test"):
        paths[split] = tmp_path / f"{split}{name}"
        paths[split].write_text(text, encoding="utf-8")
    return paths


def test_conll2003_iob1_with_docstart_and_misc_through_data_files(tmp_path, cache, make_cfg, caplog):
    files = conll_splits(tmp_path, CONLL2003, ".txt")  # .txt: the content tells it is CoNLL
    cfg = with_files(make_cfg, "ner", "en", files)
    assert task_source(cfg)["path"] == "conll"
    task = get_task(cfg.task)
    with caplog.at_level(logging.INFO, logger="softprompt_xl.data"):
        records = run_records(cfg, "train", cache)
    assert [r["tokens"][:2] for r in records] == [["EU", "rejects"], ["Peter", "Blackburn"], ["Flights", "link"]]
    assert [spans(task, r) for r in records] == CONLL2003_SPANS
    assert "dropped 2 MISC entities (tag_map MISC: O)" in caplog.text
    # an independent reading of the same tags (seqeval's chunker, which reads IOB1 too), MISC left out
    tags = [[line.split()[-1] for line in block.splitlines()]
            for block in CONLL2003.split("\n\n") if block.strip() and "-DOCSTART-" not in block]
    for record, original in zip(records, tags):
        expected = [(kind, " ".join(record["tokens"][s:e + 1])) for kind, s, e in get_entities(original) if kind != "MISC"]
        assert spans(task, record) == expected


def test_conll_through_a_language_source_that_names_the_format_and_maps_misc(tmp_path, cache, make_cfg, caplog):
    files = conll_splits(tmp_path, CONLL2003, ".data")
    cfg = with_source(make_cfg, "ner", "en", f"""
        path: conll
        data_files: {{train: {files['train']}, validation: {files['validation']}, test: {files['test']}}}
        tag_map: {{MISC: LOC}}
    """)
    task = get_task(cfg.task)
    with caplog.at_level(logging.INFO, logger="softprompt_xl.data"):
        records = run_records(cfg, "test", cache)
    assert spans(task, records[0]) == [("ORG", "EU"), ("LOC", "German"), ("LOC", "British")]
    assert "renamed 2 MISC entities to LOC" in caplog.text


@pytest.mark.parametrize("separator", ["\t", " "])
def test_wikiann_two_column_iob2_tab_or_space_with_its_language_prefix(tmp_path, cache, make_cfg, separator):
    text = WIKIANN_RAW.replace("\t", separator)
    files = conll_splits(tmp_path, text, "")  # the split files have no extension: train, dev, test
    cfg = with_files(make_cfg, "ner", "sk", files)
    task = get_task(cfg.task)
    records = run_records(cfg, "validation", cache)
    assert records[0]["tokens"] == ["Jana", "Nováková", "žije", "v", "Bratislave", "."]
    assert records[2]["tokens"] == ["http://sk.wikipedia.org", "Košice"]  # only the prefix goes
    assert [spans(task, r) for r in records] == WIKIANN_SPANS
    assert records[0]["ner_tags"] == [1, 2, 0, 0, 5, 0]  # the task's (WikiANN's) ids


def test_conll_without_a_language_prefix_keeps_tokens_with_colons(tmp_path, cache, make_cfg):
    files = conll_splits(tmp_path, "re:\tO\nPraha\tB-LOC\n\nen:passant\tO\n", ".conll")
    records = run_records(with_files(make_cfg, "ner", "cs", files), "train", cache)
    assert [r["tokens"] for r in records] == [["re:", "Praha"], ["en:passant"]]


def test_a_gzipped_conll_file_is_read(tmp_path, cache, make_cfg):
    import gzip

    files = {}
    for split in ("train", "validation", "test"):
        files[split] = tmp_path / f"{split}.iob2.gz"
        with gzip.open(files[split], "wt", encoding="utf-8") as f:
            f.write(WIKIANN_RAW)
    task = get_task(make_cfg("task=ner").task)
    assert [spans(task, r) for r in run_records(with_files(make_cfg, "ner", "sk", files), "test", cache)] == WIKIANN_SPANS


def test_a_changed_conll_file_is_read_again(tmp_path, cache, make_cfg):
    files = conll_splits(tmp_path, WIKIANN_RAW, ".conll")
    cfg = with_files(make_cfg, "ner", "sk", files)
    assert len(run_records(cfg, "train", cache)) == 3
    files["train"].write_text(WIKIANN_RAW + "\nsk:Nitra\tB-LOC\n", encoding="utf-8")
    assert len(run_records(cfg, "train", cache)) == 4


# --- NER: WikiANN's hub schema ----------------------------------------------------------------------------------


def test_wikiann_hub_schema_with_spans_and_no_tag_ids(tmp_path, cache, make_cfg):
    rows = [
        {"tokens": ["Jana", "Nováková", "žije", "v", "Bratislave"], "langs": ["sk"] * 5,
         "spans": ["PER: Jana Nováková", "LOC: Bratislave"]},
        {"tokens": ["Jan", "a", "Jan", "Novák"], "langs": ["sk"] * 4, "spans": ["PER: Jan", "PER: Jan Novák"]},
        {"tokens": ["Prší", "."], "langs": ["sk"] * 2, "spans": ["None"]},
    ]
    files = {}
    for split in ("train", "validation", "test"):
        files[split] = tmp_path / f"{split}.parquet"
        datasets.Dataset.from_list(rows).to_parquet(str(files[split]))
    for cfg in (with_files(make_cfg, "ner", "sk", files),
                with_source(make_cfg, "ner", "sk", f"{{path: parquet, data_files: {{test: {files['test']}}}}}")):
        task = get_task(cfg.task)
        records = run_records(cfg, "test", cache)
        assert [r["ner_tags"] for r in records] == [[1, 2, 0, 0, 5], [1, 0, 1, 2], [0, 0]]
        assert [spans(task, r) for r in records] == [[("PER", "Jana Nováková"), ("LOC", "Bratislave")],
                                                     [("PER", "Jan"), ("PER", "Jan Novák")], []]


def test_wikiann_tag_ids_and_string_tags_in_json_lines(tmp_path, cache, make_cfg):
    rows = [{"tokens": ["Eva", "Malá", "žije", "v", "Nitre"], "ner_tags": [1, 2, 0, 0, 5]}]
    words = [{"tokens": ["Eva", "Malá", "žije", "v", "Nitre"], "ner_tags": ["B-PER", "I-PER", "O", "O", "B-LOC"]}]
    for name, content in (("ids", rows), ("words", words)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in content), encoding="utf-8")
        records = run_records(with_files(make_cfg, "ner", "sk", {"test": path}), "test", cache)
        assert records[0]["ner_tags"] == [1, 2, 0, 0, 5]


def test_a_hub_tag_set_of_other_names_is_mapped_by_name(tmp_path, cache, make_cfg):
    # The hub's conll2003 schema: ClassLabel ids in its own order, with MISC
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    features = datasets.Features({"tokens": datasets.List(datasets.Value("string")),
                                  "ner_tags": datasets.List(datasets.ClassLabel(names=names))})
    path = tmp_path / "test.parquet"
    datasets.Dataset.from_dict({"tokens": [["German", "call", "in", "Bonn"]], "ner_tags": [[7, 0, 0, 5]]},
                               features=features).to_parquet(str(path))
    task = get_task(make_cfg("task=ner").task)
    records = run_records(with_files(make_cfg, "ner", "de", {"test": path}), "test", cache)
    assert spans(task, records[0]) == [("LOC", "Bonn")]


# --- NLI: XNLI TSV, CSV, JSON Lines ----------------------------------------------------------------------------

XNLI_COLUMNS = ("language gold_label sentence1_binary_parse sentence2_binary_parse sentence1_parse sentence2_parse "
                "sentence1 sentence2 promptID pairID genre label1 label2 label3 label4 label5 sentence1_tokenized "
                "sentence2_tokenized match").split()


def xnli_row(language, gold, premise, hypothesis, pair):
    values = {"language": language, "gold_label": gold, "sentence1_binary_parse": "", "sentence2_binary_parse": "",
              "sentence1_parse": "", "sentence2_parse": "", "sentence1": premise, "sentence2": hypothesis,
              "promptID": str(pair // 3), "pairID": str(pair), "genre": "facetoface", "label1": gold,
              "label2": gold, "label3": gold, "label4": gold, "label5": gold,
              "sentence1_tokenized": premise, "sentence2_tokenized": hypothesis, "match": "True"}
    return "\t".join(values[c] for c in XNLI_COLUMNS)


# XNLI-1.0's xnli.dev.tsv: every language in one file; text unquoted, with bare quote characters.
XNLI_DEV = "\n".join(["\t".join(XNLI_COLUMNS),
                      xnli_row("en", "neutral", 'He said, "Mom, I\'m home.', "He called his mother.", 1),
                      xnli_row("de", "neutral", 'Und er sagte: "Mama, ich bin daheim.', "Er rief seine Mutter.", 1),
                      xnli_row("es", "entailment", "Y él dijo: Mamá, estoy en casa.", "Él habló.", 2),
                      xnli_row("de", "contradiction", "Er sagte kein Wort.", 'Er sagte "Hallo".', 3),
                      xnli_row("de", "entailment", "Sie kam um 5 Uhr.", "NA", 4)]) + "\n"
XNLI_DEV_DE = [('Und er sagte: "Mama, ich bin daheim.', "Er rief seine Mutter.", 1),
               ("Er sagte kein Wort.", 'Er sagte "Hallo".', 2), ("Sie kam um 5 Uhr.", "NA", 0)]

# XNLI-MT-1.0's multinli.train.<lang>.tsv: premise, hypo, label ("contradictory" for contradiction).
XNLI_MT = ('premise\thypo\tlabel\n'
           'Konzeptionell cremeabschöpfung hat zwei "Dimensionen.\tProdukt und Geographie sind es.\tneutral\n'
           'Du weißt, während der Saison.\tDu verlierst die Dinge.\tentailment\n'
           'Eine unserer Nummern wird "Ihre Anweisungen.\tEin Mitglied meines Teams wird gehen.\tcontradictory\n')


def nli_tuples(records):
    return [(r["premise"], r["hypothesis"], r["label"]) for r in records]


def test_xnli_dev_tsv_keeps_the_run_language_renames_columns_and_maps_label_words(tmp_path, cache, make_cfg, caplog):
    dev, test, train = tmp_path / "xnli.dev.tsv", tmp_path / "xnli.test.tsv", tmp_path / "multinli.train.de.tsv"
    dev.write_text(XNLI_DEV, encoding="utf-8")
    test.write_text(XNLI_DEV, encoding="utf-8")
    train.write_text(XNLI_MT, encoding="utf-8")
    cfg = with_files(make_cfg, "nli", "de", {"train": train, "validation": dev, "test": test})
    assert task_source(cfg)["path"] == "tsv"
    with caplog.at_level(logging.INFO, logger="softprompt_xl.data"):
        assert nli_tuples(run_records(cfg, "validation", cache)) == XNLI_DEV_DE
    assert "kept the 3 of 5 rows whose language is de" in caplog.text
    assert nli_tuples(run_records(cfg, "train", cache)) == [
        ('Konzeptionell cremeabschöpfung hat zwei "Dimensionen.', "Produkt und Geographie sind es.", 1),
        ("Du weißt, während der Saison.", "Du verlierst die Dinge.", 0),
        ('Eine unserer Nummern wird "Ihre Anweisungen.', "Ein Mitglied meines Teams wird gehen.", 2)]
    # the same files through a language source; the file's language column may use another code
    cfg = with_source(make_cfg, "nli", "de", f"""
        path: tsv
        data_files: {{train: {train}, validation: {dev}, test: {test}}}
    """)
    assert nli_tuples(run_records(cfg, "test", cache)) == XNLI_DEV_DE
    cfg = with_source(make_cfg, "nli", "de", f"{{path: tsv, data_files: {{test: {test}}}, language: es}}")
    assert nli_tuples(run_records(cfg, "test", cache)) == [("Y él dijo: Mamá, estoy en casa.", "Él habló.", 0)]


def test_a_language_the_file_does_not_hold_is_refused_with_the_ones_it_holds(tmp_path, cache, make_cfg):
    path = tmp_path / "xnli.test.tsv"
    path.write_text(XNLI_DEV, encoding="utf-8")
    with pytest.raises(UserError, match=r"no row of language 'sk' \(it holds de, en, es\).*Set `language:`"):
        run_records(with_files(make_cfg, "nli", "sk", {"test": path}), "test", cache)


def test_headerless_tsv_takes_the_task_fields_in_order(tmp_path, cache, make_cfg):
    path = tmp_path / "test.tsv"
    path.write_text('Anna má "psa.\tAnna má zviera.\tentailment\nPeter býva v Nitre.\tPeter býva v Košiciach.\t'
                    'contradiction\nEva rada pláva.\tEva je učiteľka.\tneutral\n', encoding="utf-8")
    expected = [('Anna má "psa.', "Anna má zviera.", 0), ("Peter býva v Nitre.", "Peter býva v Košiciach.", 2),
                ("Eva rada pláva.", "Eva je učiteľka.", 1)]
    assert nli_tuples(run_records(with_files(make_cfg, "nli", "sk", {"test": path}), "test", cache)) == expected
    # a source may name the columns of its own file
    path.write_text("\n".join(f"{label}\t{h}\t{p}" for p, h, label in expected) + "\n", encoding="utf-8")
    cfg = with_source(make_cfg, "nli", "sk", f"""
        {{path: tsv, data_files: {{test: {path}}}, header: false, column_names: [label, hypothesis, premise]}}
    """)
    assert nli_tuples(run_records(cfg, "test", cache)) == expected


def test_headerless_tsv_of_another_width_is_refused(tmp_path, cache, make_cfg):
    path = tmp_path / "test.tsv"
    path.write_text("a b\tc d\te f\tentailment\n", encoding="utf-8")
    with pytest.raises(UserError, match=r"no header row and 4 columns, but the task has 3 fields \(premise,"
                                        r"hypothesis,label\).*column_names"):
        run_records(with_files(make_cfg, "nli", "sk", {"test": path}), "test", cache)


@pytest.mark.parametrize("labels", [["entailment", "contradiction", "neutral"], ["Entailment", "CONTRADICTION", "Neutral"],
                                    [0, 2, 1]])
def test_csv_and_json_lines_with_string_or_integer_labels(tmp_path, cache, make_cfg, labels):
    pairs = [("Anna, ktorá má psa, je doma.", "Anna má zviera."), ("Peter býva v Nitre.", "Peter býva v Košiciach."),
             ("Eva rada pláva.", "Eva je učiteľka.")]
    csv_path, jsonl_path = tmp_path / "test.csv", tmp_path / "test.jsonl"
    csv_path.write_text("premise,hypothesis,label\n" + "".join(f'"{p}","{h}",{label}\n' for (p, h), label in zip(pairs, labels)),
                        encoding="utf-8")
    jsonl_path.write_text("".join(json.dumps({"premise": p, "hypothesis": h, "label": label}, ensure_ascii=False) + "\n"
                                  for (p, h), label in zip(pairs, labels)), encoding="utf-8")
    expected = [(p, h, label) for (p, h), label in zip(pairs, [0, 2, 1])]
    for path in (csv_path, jsonl_path):
        assert nli_tuples(run_records(with_files(make_cfg, "nli", "sk", {"test": path}), "test", cache)) == expected


def test_a_label_word_the_map_does_not_name_is_refused_at_its_line(tmp_path, cache, make_cfg):
    path = tmp_path / "test.tsv"
    path.write_text("premise\thypo\tlabel\na\tb\tentailment\nc\td\tmaybe\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"Line 3 of {path} \(record 2\) \(sk nli\) has label 'maybe', which is neither "
                                        r"a label word of the task's label_map nor a label id.*label_map in the source"):
        run_records(with_files(make_cfg, "nli", "sk", {"test": path}), "test", cache)
    # a source's label_map adds the word
    cfg = with_source(make_cfg, "nli", "sk", f"{{path: tsv, data_files: {{test: {path}}}, label_map: {{maybe: 1}}}}")
    assert [r["label"] for r in run_records(cfg, "test", cache)] == [0, 1]


def test_pairs_without_a_gold_label_are_left_out_and_counted(tmp_path, cache, make_cfg, caplog):
    path = tmp_path / "dev_matched.jsonl"  # MultiNLI / SNLI JSON Lines: gold_label "-" when annotators disagreed
    rows = [{"sentence1": "a", "sentence2": "b", "gold_label": "neutral"},
            {"sentence1": "c", "sentence2": "d", "gold_label": "-"},
            {"sentence1": "e", "sentence2": "f", "gold_label": "contradiction"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="softprompt_xl.data"):
        records = run_records(with_files(make_cfg, "nli", "en", {"test": path}), "test", cache)
    assert nli_tuples(records) == [("a", "b", 1), ("e", "f", 2)]
    assert "left out 1 of 3 records without a gold label" in caplog.text


def test_a_tsv_line_with_an_extra_tab_is_named(tmp_path, cache, make_cfg):
    path = tmp_path / "test.tsv"
    path.write_text("premise\thypo\tlabel\na\tb\tneutral\nc\td\te\tneutral\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"line 3 of {path} has 4 fields but the header has 3 \(premise,hypo,label\)"):
        run_records(with_files(make_cfg, "nli", "sk", {"test": path}), "test", cache)


# --- QA: SQuAD v1.1 / v2.0, MLQA / XQuAD, flat JSON Lines ------------------------------------------------------

SQUAD_V2 = {"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [{
    "qas": [
        {"question": "In what country is Normandy located?", "id": "56ddde6b9a695914005b9628",
         "answers": [{"text": "France", "answer_start": 159}, {"text": "France", "answer_start": 159}],
         "is_impossible": False},
        {"plausible_answers": [{"text": "Normans", "answer_start": 4}], "question": "Who gave their name to Normandy "
         "in the 1000's and 1100's", "id": "5ad39d53604f3c001a3fe8d1", "answers": [], "is_impossible": True},
        {"question": "What is France a region of?", "id": "5ad39d53604f3c001a3fe8d2",
         "answers": [{"text": "Europe", "answer_start": 0}], "is_impossible": True},
    ],
    "context": "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy, a region "
               "in France. They were descended from Norse raiders and pirates from Denmark, Iceland and Norway."}]}]}

# MLQA's and XQuAD's files: SQuAD-shaped, "data" first.
MLQA = {"data": [{"title": "Stadtbahn", "paragraphs": [{
    "context": "Die Stadtbahn Karlsruhe verbindet seit 1992 die Stadt mit dem Umland.",
    "qas": [{"question": "Seit wann verbindet die Stadtbahn die Stadt mit dem Umland?",
             "answers": [{"text": "1992", "answer_start": 39}], "id": "a5c8c4b4e1f1e4f0a1d2"}]}]}],
    "version": "1.0"}


# SQuAD v1.1's dev-v1.1.json: "data" first, three answers per dev question (duplicates kept).
SQUAD_V11 = {"data": [{"title": "Super_Bowl_50", "paragraphs": [{
    "context": "Super Bowl 50 was an American football game. The American Football Conference (AFC) champion Denver "
               "Broncos defeated the National Football Conference (NFC) champion Carolina Panthers 24-10.",
    "qas": [{"answers": [{"answer_start": 93, "text": "Denver Broncos"}, {"answer_start": 93, "text": "Denver Broncos"},
                         {"answer_start": 93, "text": "Denver Broncos"}],
             "question": "Which NFL team represented the AFC at Super Bowl 50?", "id": "56be4db0acb8001400a502ec"}]}]}],
    "version": "1.1"}


def test_squad_v11_json_through_data_files_and_a_language_source(tmp_path, cache, make_cfg):
    files = {}
    for split in ("train", "validation", "test"):
        files[split] = tmp_path / f"{split}-v1.1.json"
        files[split].write_text(json.dumps(SQUAD_V11), encoding="utf-8")
    for cfg in (with_files(make_cfg, "qa", "en", files),
                with_source(make_cfg, "qa", "en", f"{{path: json, data_files: {{test: {files['test']}}}}}")):
        records = run_records(cfg, "test", cache)
        assert [(r["id"], r["answers"]["text"], r["answers"]["answer_start"]) for r in records] == [
            ("56be4db0acb8001400a502ec", ["Denver Broncos"] * 3, [93] * 3)]
        assert get_task(cfg.task).target(records[0]) == records[0]["context"][93:107] == "Denver Broncos"


def test_squad_v2_unanswerable_questions_are_counted_and_left_out(tmp_path, cache, make_cfg, caplog):
    files = {}
    for split in ("train", "validation", "test"):
        files[split] = tmp_path / f"{split}-v2.0.json"
        files[split].write_text(json.dumps(SQUAD_V2), encoding="utf-8")
    for cfg in (with_files(make_cfg, "qa", "en", files),
                with_source(make_cfg, "qa", "en", f"{{path: json, data_files: {{test: {files['test']}}}}}")):
        raw = load_split(task_source(cfg), "test", cache, "en qa", get_task(cfg.task), "en")
        assert [r["answers"]["text"] for r in raw] == [["France", "France"], [], []]  # plausible answers are not answers
        with caplog.at_level(logging.INFO, logger="softprompt_xl.data"):
            records = run_records(cfg, "test", cache)
        assert [r["id"] for r in records] == ["56ddde6b9a695914005b9628"]
        assert records[0]["answers"] == {"text": ["France", "France"], "answer_start": [159, 159]}
    assert "2 of 3 questions have no answer (SQuAD v2.0 unanswerable)" in caplog.text


def test_mlqa_and_xquad_json_is_read_as_squad(tmp_path, cache, make_cfg):
    path = tmp_path / "dev-context-de-question-de.json"
    path.write_text(json.dumps(MLQA, ensure_ascii=False), encoding="utf-8")
    xquad = tmp_path / "xquad.de.json"
    xquad.write_text(json.dumps({"data": MLQA["data"], "version": "1.1"}, ensure_ascii=False, indent=1), encoding="utf-8")
    for test in (path, xquad):
        records = run_records(with_files(make_cfg, "qa", "de", {"test": test}), "test", cache)
        assert [(r["question"], r["answers"]["text"], r["answers"]["answer_start"], r["title"]) for r in records] == [
            ("Seit wann verbindet die Stadtbahn die Stadt mit dem Umland?", ["1992"], [39], "Stadtbahn")]
        assert records[0]["context"][39:43] == "1992"


def test_flat_qa_json_lines(tmp_path, cache, make_cfg):
    rows = [{"id": "1", "title": "T", "context": "Eva býva v Nitre.", "question": "Kde býva Eva?",
             "answers": {"text": ["v Nitre"], "answer_start": [9]}},
            {"id": "2", "title": "T", "context": "Eva býva v Nitre.", "question": "Kto?", "answers": {"text": [], "answer_start": []}}]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    for cfg in (with_files(make_cfg, "qa", "sk", {"test": path}),
                with_source(make_cfg, "qa", "sk", f"{{path: json, data_files: {{test: {path}}}}}")):
        assert [r["id"] for r in run_records(cfg, "test", cache)] == ["1"]


# --- carved splits ---------------------------------------------------------------------------------------------


def nli_rows(n):
    return [{"id": f"p{i}", "premise": f"Veta {i}.", "hypothesis": f"Iná veta {i}.", "label": i % 3} for i in range(n)]


def write_rows(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_a_carved_validation_split_is_the_authors_train_test_split(tmp_path, cache, make_cfg):
    rows = nli_rows(47)
    train, test = write_rows(tmp_path / "train.jsonl", rows), write_rows(tmp_path / "test.jsonl", nli_rows(5))
    reference = datasets.Dataset.from_list(rows).train_test_split(test_size=0.15, seed=42)  # the authors' call
    carve = "{validation: {from: train, test_size: 0.15, seed: 42}}"
    for cfg in (with_files(make_cfg, "nli", "sk", {"train": train, "test": test}, f"data.carve={carve}"),
                with_source(make_cfg, "nli", "sk", f"""
                    path: json
                    data_files: {{train: {train}, test: {test}}}
                    carve: {carve}
                """)):
        carved_train = [r["id"] for r in run_records(cfg, "train", cache)]
        carved_validation = [r["id"] for r in run_records(cfg, "validation", cache)]
        assert carved_train == list(reference["train"]["id"]) and carved_validation == list(reference["test"]["id"])
        assert len(carved_validation) == 8 and not set(carved_train) & set(carved_validation)
        assert sorted(carved_train + carved_validation) == sorted(r["id"] for r in rows)
        assert [r["id"] for r in run_records(cfg, "test", cache)] == [f"p{i}" for i in range(5)]  # not carved
        assert [r["id"] for r in run_records(cfg, "validation", cache)] == carved_validation  # the same every time


def test_carves_apply_in_order_test_first_then_validation_from_the_rest(tmp_path, cache, make_cfg):
    rows = nli_rows(60)  # Arabic SQuAD in the authors' code: train only; 15 % of it -> test, 15 % of the rest -> validation
    train = write_rows(tmp_path / "train.jsonl", rows)
    first = datasets.Dataset.from_list(rows).train_test_split(test_size=0.15, seed=42)
    second = first["train"].train_test_split(test_size=0.15, seed=42)
    cfg = with_source(make_cfg, "nli", "sk", f"""
        path: json
        data_files: {{train: {train}}}
        carve:
          test: {{from: train, test_size: 0.15, seed: 42}}
          validation: {{from: train, test_size: 0.15, seed: 42}}
    """)
    got = {split: [r["id"] for r in run_records(cfg, split, cache)] for split in ("train", "validation", "test")}
    assert got == {"train": list(second["train"]["id"]), "validation": list(second["test"]["id"]),
                   "test": list(first["test"]["id"])}
    assert sum(map(len, got.values())) == 60 and len(set().union(*map(set, got.values()))) == 60


def test_a_malformed_record_of_a_carved_split_is_named_at_its_line_in_the_file(tmp_path, cache, make_cfg):
    rows = nli_rows(20)
    reference = datasets.Dataset.from_list(rows).train_test_split(test_size=0.15, seed=42)
    bad = reference["test"]["id"][1]
    rows[int(bad[1:])]["premise"] = None
    train = write_rows(tmp_path / "train.jsonl", rows)
    cfg = with_files(make_cfg, "nli", "sk", {"train": train, "test": train},
                     "data.carve={validation:{from:train,test_size:0.15,seed:42}}")
    with pytest.raises(UserError, match=rf"validation split of sk nli has a malformed record at line "
                                        rf"{int(bad[1:]) + 1} of {train}: missing field 'premise'"):
        run_records(cfg, "validation", cache)


@pytest.mark.parametrize("carve,problem", [
    ("{dev: {from: train, test_size: 0.15}}", "'dev' is not a split"),
    ("{validation: {from: validation, test_size: 0.15}}", "validation needs 'from': another split"),
    ("{validation: {from: train, test_size: 1.5}}", "validation needs 'test_size': a fraction between 0 and 1"),
    ("{validation: {from: train, test_size: 0.15, sed: 1}}", "validation has unknown key\\(s\\) sed"),
])
def test_a_carve_that_is_not_valid_is_refused(tmp_path, cache, make_cfg, carve, problem):
    train = write_rows(tmp_path / "train.jsonl", nli_rows(10))
    cfg = with_source(make_cfg, "nli", "sk", f"{{path: json, data_files: {{train: {train}}}, carve: {carve}}}")
    with pytest.raises(UserError, match=rf"The carve of sk nli is not valid: {problem}.*validation: \{{from: train"):
        run_records(cfg, "train", cache)


def test_the_paper_sources_carve_what_their_datasets_lack(make_cfg):
    for lang in ("en", "de", "es"):
        source = OmegaConf.to_container(make_cfg(f"lang={lang}", "task=qa", "data=hub").data.task, resolve=True)
        assert source["carve"] == {"validation": {"from": "train", "test_size": 0.15, "seed": 42}}
        assert source["splits"] == {"train": "train", "test": "validation"}


# --- refusals --------------------------------------------------------------------------------------------------


def test_a_conll_line_without_a_tag_is_named(tmp_path, cache, make_cfg):
    path = tmp_path / "test.conll"
    path.write_text("Praha\tB-LOC\nje\tO\n\nkrásna\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"line 4 of {path} is not CoNLL: expected a token and its tag last.*"
                                        r"found 'krásna'"):
        run_records(with_files(make_cfg, "ner", "sk", {"test": path}), "test", cache)


def test_an_entity_type_outside_the_task_and_its_map_is_refused_at_its_sentence(tmp_path, cache, make_cfg):
    path = tmp_path / "test.conll"
    path.write_text("Praha\tB-LOC\n\nv\tO\nroku\tB-DATE\n1990\tI-DATE\n", encoding="utf-8")
    with pytest.raises(UserError, match=rf"Sentence 2 \(line 3\) of {path} \(sk ner\): entity type 'DATE' is not one "
                                        r"of the task's types \(LOC, ORG, PER\); map it with tag_map, e.g. "
                                        r"tag_map: \{DATE: O\}"):
        run_records(with_files(make_cfg, "ner", "sk", {"test": path}), "test", cache)
    records = run_records(with_files(make_cfg, "ner", "sk", {"test": path}, "+task.tag_map.DATE=O"), "test", cache)
    assert [r["ner_tags"] for r in records] == [[5], [0, 0, 0]]


def test_a_tsv_named_file_holding_conll_is_read_as_conll(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text(WIKIANN_RAW, encoding="utf-8")
    assert builder_for(str(path)) == "conll"
    path.write_text(XNLI_MT, encoding="utf-8")
    assert builder_for(str(path)) == "tsv"


def test_published_files_reach_the_model_inputs_along_the_run_path(tmp_path, cache, make_cfg, tiny_dir):
    from transformers import AutoTokenizer

    from softprompt_xl.data.loaders import prepare_task_split

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_dir))
    conll = conll_splits(tmp_path, CONLL2003, ".conll")
    xnli = tmp_path / "xnli.test.tsv"
    xnli.write_text(XNLI_DEV, encoding="utf-8")
    for cfg, expected in ((with_files(make_cfg, "ner", "en", conll), [
                              "ORG: EU", "PER: Peter Blackburn",
                              "LOC: Prague$$LOC: Berlin$$LOC: Vienna$$ORG: European Union"]),
                          (with_files(make_cfg, "nli", "de", {"test": xnli}), ["Maybe", "No", "Yes"])):
        task = get_task(cfg.task)
        split = prepare_task_split(task, task_source(cfg), "test", cfg.lang.code, tokenizer, 256, cache)
        labels = [tokenizer.decode(e["labels"], skip_special_tokens=True) for e in split.examples]
        assert labels == expected


def test_data_format_names_the_format_of_files_whose_name_does_not_tell(tmp_path, cache, make_cfg):
    path = tmp_path / "test.data"
    path.write_text(XNLI_MT, encoding="utf-8")
    cfg = with_files(make_cfg, "nli", "de", {"test": path}, "data.format=tsv")
    assert task_source(cfg)["path"] == "tsv"
    assert [r["label"] for r in run_records(cfg, "test", cache)] == [1, 0, 2]
    with pytest.raises(UserError, match=r"data.format=xml is not a format of local files: use one of json, csv, tsv, conll"):
        task_source(with_files(make_cfg, "nli", "de", {"test": path}, "data.format=xml"))


@pytest.mark.parametrize("name,task", [("test.conll", "ner"), ("test.tsv", "nli")])
def test_a_file_that_is_not_utf8_is_named(tmp_path, cache, make_cfg, name, task):
    path = tmp_path / name
    path.write_bytes("Košice\tB-LOC\n".encode("cp1250") if task == "ner" else "premise\thypo\tlabel\nKošice\tx\tneutral\n".encode("cp1250"))
    with pytest.raises(UserError, match=rf"{path} is not UTF-8 text"):
        run_records(with_files(make_cfg, task, "sk", {"test": path}), "test", cache)


# --- the second version's sources (conf/lang/<code>.yaml of experiment=paper_v2), on local copies -------------------


def lang_file_source(make_cfg, lang, task, **local):
    """A run on `lang`'s own source for `task` as conf/lang/<lang>.yaml writes it (splits, carve, columns,
    answer_columns, label_map), with the hub dataset replaced by local files in its published format (`local`)."""
    cfg = make_cfg("+combo=lp_ta", f"task={task}", f"lang={lang}", "data=hub")
    source = OmegaConf.to_container(cfg.lang.sources[task])
    for hub_only in ("name", "revision", "data_dir"):
        source.pop(hub_only, None)
    cfg.lang.sources[task] = OmegaConf.create({**source, **local})
    return cfg


def test_arabic_squad_rows_become_questions_carved_as_the_authors_did(tmp_path, cache, make_cfg):
    # Mostafa3zazi/Arabic_SQuAD: one parquet split, the answer in flat columns text / answer_start
    rows = [{"index": i, "question": f"سؤال {i}؟", "context": f"النص رقم {i} هنا.", "text": f"رقم {i}",
             "answer_start": 5, "c_id": i // 3} for i in range(40)]
    path = tmp_path / "train.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    cfg = lang_file_source(make_cfg, "ar", "qa", path="parquet", data_files={"train": str(path)})
    got = {split: run_records(cfg, split, cache) for split in ("train", "validation", "test")}
    first = datasets.Dataset.from_list(rows).train_test_split(test_size=0.15, seed=42)  # the authors' two calls
    second = first["train"].train_test_split(test_size=0.15, seed=42)
    assert [r["id"] for r in got["test"]] == list(first["test"]["index"])
    assert [r["id"] for r in got["validation"]] == list(second["test"]["index"])
    assert [r["id"] for r in got["train"]] == list(second["train"]["index"])
    task = get_task(cfg.task)
    record = got["test"][0]
    assert record["answers"] == {"text": [f"رقم {record['id']}"], "answer_start": [5]}
    assert task.target(record) == record["context"][5:5 + len(task.target(record))]


def test_uqa_answers_are_gathered_by_question_and_unanswerable_questions_left_out(tmp_path, cache, make_cfg):
    # uqa/UQA: one row per gold answer (validation: several rows of one id), is_impossible with a blank answer
    def row(qid, answer, start, impossible=False):
        return {"id": qid, "title": "T", "context": "لاہور پنجاب کا دارالحکومت ہے۔", "question": f"سوال {qid}",
                "is_impossible": impossible, "answer": answer, "answer_start": start}

    validation = [row("a", "لاہور", 0), row("b", "پنجاب", 6), row("a", "لاہور", 0), row("c", "", -1, True),
                  row("b", "پنجاب کا", 6)]
    train = [row(f"t{i}", "لاہور", 0) for i in range(20)]
    paths = {}
    for split, rows in (("train", train), ("validation", validation)):
        paths[split] = str(tmp_path / f"{split}.parquet")
        datasets.Dataset.from_list(rows).to_parquet(paths[split])
    cfg = lang_file_source(make_cfg, "ur", "qa", path="parquet", data_files=paths)
    test = run_records(cfg, "test", cache)  # UQA's validation split is the test split
    assert [(r["id"], r["answers"]["text"]) for r in test] == [("a", ["لاہور", "لاہور"]), ("b", ["پنجاب", "پنجاب کا"])]
    task = get_task(cfg.task)
    assert [task.reference(r)["answers"] for r in test] == [["لاہور", "لاہور"], ["پنجاب", "پنجاب کا"]]
    assert len(run_records(cfg, "validation", cache)) == 3  # 15 % of train, after gathering


def test_chinese_and_slovenian_squad_keep_answerable_questions_only(tmp_path, cache, make_cfg):
    # ChineseSquad squad_1.1/*-zh.json: SQuAD v1.1 JSON; a question with no answer, one with a blank one
    squad = {"version": "1.1", "data": [{"title": "北京", "paragraphs": [{"context": "北京是中国的首都。", "qas": [
        {"id": "z1", "question": "中国的首都是哪里？", "answers": [{"text": "北京", "answer_start": 0}]},
        {"id": "z2", "question": "上海在哪里？", "answers": []},
        {"id": "z3", "question": "人口多少？", "answers": [{"text": " ", "answer_start": -1}]}]}]}]}
    path = tmp_path / "dev-v1.1-zh.json"
    path.write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
    cfg = lang_file_source(make_cfg, "zh", "qa", data_files={"train": str(path), "test": str(path)})
    assert [r["id"] for r in run_records(cfg, "test", cache)] == ["z1"]
    # SlovenianSQuAD squad2-slo-mt-*.json: `data` holds flat SQuAD v2.0 records, read as they are
    flat = {"version": "v2.0", "data": [
        {"id": "s1", "title": "T", "context": "Ljubljana je glavno mesto.", "question": "Kaj je glavno mesto?",
         "answers": {"text": ["Ljubljana"], "answer_start": [0]}},
        {"id": "s2", "title": "T", "context": "Ljubljana je glavno mesto.", "question": "Kje je Maribor?",
         "answers": {"text": [], "answer_start": []}}]}
    path = tmp_path / "squad2-slo-mt-dev.json"
    path.write_text(json.dumps(flat, ensure_ascii=False), encoding="utf-8")
    cfg = lang_file_source(make_cfg, "sl", "qa", data_files={"train": str(path), "test": str(path)})
    assert [(r["id"], r["answers"]["text"]) for r in run_records(cfg, "test", cache)] == [("s1", ["Ljubljana"])]


def test_kenswquad_answers_without_a_start_are_found_in_the_context(tmp_path, cache, make_cfg, tiny):
    # lightblue/KenSwQuAD: answers {text} only; a context longer than the input is cut into windows in training
    context = " ".join(f"neno{i}" for i in range(300)) + " Nairobi ni mji mkuu wa Kenya."
    rows = [{"Story_ID": str(i), "context": context, "question": "Mji mkuu wa Kenya ni upi?",
             "answers": {"text": ["Nairobi"]}} for i in range(20)]
    path = tmp_path / "train.parquet"
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    cfg = lang_file_source(make_cfg, "sw", "qa", path="parquet", data_files={"train": str(path)})
    test = run_records(cfg, "test", cache)
    assert len(test) == 3 and all(get_task(cfg.task).target(r) == "Nairobi" for r in test)
    _, tokenizer = tiny
    windows = get_task(cfg.task).encode(test[:1], tokenizer, 64, True, "sw qa")
    assert windows and all("Nairobi" in tokenizer.decode(ids) for _, ids in windows)


def test_ronli_labels_are_remapped_and_reasoning_pairs_left_out(tmp_path, cache, make_cfg):
    # RoNLI's JSON files: a JSON array of {sentence1, sentence2, label}; 0 contradiction, 1 entailment,
    # 2 reasoning, 3 neutral (kinit-sk/adapter-prompt-evaluation src/tasks/tasks.py: {0: 2, 1: 0, 2: -1, 3: 1})
    rows = [{"guid": f"r{i}", "sentence1": f"Propoziția {i}.", "sentence2": f"Alta {i}.", "label": i % 4}
            for i in range(8)]
    path = tmp_path / "test.json"
    path.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    cfg = lang_file_source(make_cfg, "ro", "nli", data_files={"train": str(path), "validation": str(path),
                                                              "test": str(path)})
    records = run_records(cfg, "test", cache)
    assert [(r["guid"], r["label"]) for r in records] == [("r0", 2), ("r1", 0), ("r3", 1), ("r4", 2), ("r5", 0),
                                                          ("r7", 1)]
    assert records[0]["premise"] == "Propoziția 0." and records[0]["hypothesis"] == "Alta 0."


@pytest.mark.parametrize("labels", [[0, 1, 2, 2], ["e", "n", "c", "c"], ["entailment", "neutral", "contradiction", "contradiction"]])
def test_sk_anli_hub_csv_with_anli_columns_and_label_ids_letters_or_words(tmp_path, cache, make_cfg, labels):
    # ivykopal/anli_sk: train/validation/test.csv with ANLI's columns (uid, premise, hypothesis, label, reason)
    rows = [("u1", "Anna, ktorá má psa, je doma.", "Anna má zviera.", "Pes je zviera."),
            ("u2", "Peter býva v Nitre.", "Peter je učiteľ.", "Nevieme, čo robí."),
            ("u3", "Eva rada pláva, povedala.", "Eva nepláva.", "Pláva rada."),
            ("u4", "Dom je \"starý\", vraví.", "Dom je nový.", "Je starý.")]
    paths = {}
    for split in ("train", "validation", "test"):
        paths[split] = str(tmp_path / f"{split}.csv")
        datasets.Dataset.from_list([{"uid": u, "premise": p, "hypothesis": h, "label": label, "reason": r}
                                    for (u, p, h, r), label in zip(rows, labels)]).to_csv(paths[split], index=False)
    cfg = lang_file_source(make_cfg, "sk", "nli", path="csv", data_files=paths)
    records = run_records(cfg, "test", cache)
    assert [(r["premise"], r["hypothesis"], r["label"]) for r in records] == [(p, h, label) for (_, p, h, _), label
                                                                               in zip(rows, [0, 1, 2, 2])]


def test_si_nli_label_words_and_its_labelled_validation_split_as_the_test_split(tmp_path, cache, make_cfg):
    # cjvt/si_nli (public): label written as a word; its test split has none (SloBENCH keeps them)
    words = ["entailment", "neutral", "contradiction"]
    labelled = [{"pair_id": f"p{i}", "premise": "Ana ima psa.", "hypothesis": "Ana ima žival.", "label": words[i % 3]}
                for i in range(20)]
    paths = {}
    for split, rows in (("train", labelled), ("validation", labelled[:6])):
        paths[split] = str(tmp_path / f"{split}.parquet")
        datasets.Dataset.from_list(rows).to_parquet(paths[split])
    cfg = lang_file_source(make_cfg, "sl", "nli", path="parquet", data_files=paths)
    assert [r["label"] for r in run_records(cfg, "test", cache)] == [0, 1, 2, 0, 1, 2]
    assert len(run_records(cfg, "validation", cache)) == 3  # carved from train, as its test split is validation
