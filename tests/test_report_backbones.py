"""The report of results on two backbones (tiny and mt0_base, composed from the real config; no model is loaded):
one table per backbone, named by its config id, and a side-by-side table of each configuration on both, whose cells
are the per-backbone tables' own (mean ± std and interval); a configuration one backbone lacks shows an empty cell,
and results of one backbone get no side-by-side table (README "Comparing results")."""

from __future__ import annotations

import csv
import io

import pytest
from omegaconf import OmegaConf

from softprompt_xl.pipeline.keys import key, result_spec
from softprompt_xl.pipeline.run_spec import RunSpec
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.report import render
from softprompt_xl.report.backbones import side_by_side
from softprompt_xl.report.comparisons import annotate
from softprompt_xl.report.results import Selection
from softprompt_xl.report.tables import build
from softprompt_xl.report.write import write_report
from test_report import ner_predictions, save

# (backbone, combo, language, seeds); LA+TA is run on tiny alone, zero-shot on tiny in Slovak alone.
RUNS = [("tiny", "lp_ta", "en", [1, 2]), ("tiny", "lp_ta", "sk", [1, 2]), ("tiny", "la_ta", "en", [1]),
        ("tiny", "la_ta", "sk", [1]), ("tiny", "zero_shot", "sk", [1]),
        ("mt0_base", "lp_ta", "en", [1]), ("mt0_base", "lp_ta", "sk", [1])]
SETTINGS = OmegaConf.create({"confidence": 0.95, "resamples": 60, "seed": 0, "compare": [], "alpha": 0.05})


def rows_of(text: str) -> dict[str, dict[str, str]]:
    return {row["configuration"]: row for row in csv.DictReader(io.StringIO(text))}


@pytest.fixture(scope="module")
def store(tmp_path_factory, make_cfg) -> Store:
    """The results of RUNS with their test predictions (so that cells have intervals), each score its own."""
    from softprompt_xl.data.tasks import get_task

    store = Store(tmp_path_factory.mktemp("backbones") / "store")
    task = get_task(make_cfg("task=ner").task)
    task.target_of = lambda spans: "$$".join(f"{k}: {t}" for k, t in spans)
    for n, (backbone, combo, lang, seeds) in enumerate(RUNS):
        for seed in seeds:
            cfg = make_cfg(f"+combo={combo}", f"lang={lang}", "task=ner", f"seed={seed}", f"backbone={backbone}")
            metrics, rows = ner_predictions(task, lang, 0.3 + 0.08 * n + 0.05 * seed, seed)
            result = save(store, cfg, {lang: metrics})
            store.save_result(key(result_spec(RunSpec.of(cfg))), result, {lang: rows})
    return store


def report(store: Store, folder, backbones=("tiny", "mt0_base")) -> tuple[list, list, str]:
    """The report of the store's results on `backbones`, as the report command makes it, written to `folder`."""
    results = [r for r in store.results() if r.backbone in backbones]
    sections, notes = build(results)
    notes += annotate(sections, lambda r: store.read_predictions(r.key), SETTINGS)
    across = side_by_side(sections)
    selection = Selection(results=results, source="store", filters={}, missing=[], failed=[])
    return sections, across, write_report(folder, "all", selection, sections, notes, 0.05, across)


def test_one_table_per_backbone_and_the_configurations_side_by_side(store, tmp_path):
    sections, across, markdown = report(store, tmp_path / "all")
    # One table per backbone, named by its config id (not the built directory's hashed name).
    by_backbone = {s.backbone: s for s in sections}
    assert sorted(by_backbone) == ["mt0_base", "tiny"]
    for name, section in by_backbone.items():
        assert section.scores.title.startswith(f"ner on {name} — span_f1, in-language")
        assert "backbone.name" not in section.scores.title and f"backbone {name}" in section.setting
    assert "tiny-" not in by_backbone["tiny"].scores.title

    (side,) = across
    table = side.table
    assert table.slug == "ner-backbones" and [s.backbone for s in side.sections] == ["mt0_base", "tiny"]
    assert table.title.startswith("ner across backbones (mt0_base, tiny) — span_f1, in-language")
    assert table.header == ["configuration"] + [f"{b}/{c}" for b in ("mt0_base", "tiny")
                                                for c in ("en", "sk", "avg", "avg low")]
    # The same configuration although its learning rates and prompt length differ with the backbone.
    assert [row[0] for row in table.rows] == ["zero-shot", "LA+TA", "LP+TA"]

    # Every cell is the per-backbone table's: mean, std, seeds and interval (the CSV files as written).
    side_csv = rows_of((tmp_path / "all" / "ner-backbones.csv").read_text())
    assert side_csv == rows_of(render.csv_text(table))
    compared = 0
    for name, section in by_backbone.items():
        own = rows_of((tmp_path / "all" / f"{section.scores.slug}.csv").read_text())
        for label, row in own.items():
            for column in ("en", "sk"):
                for suffix in ("", " std", " n", " lo", " hi"):
                    assert side_csv[label][f"{name}/{column}{suffix}"] == row[f"{column}{suffix}"], (name, label)
                compared += row[column] != ""
            for column in ("avg", "avg low"):  # both backbones' tables have en and sk: the same averages
                assert side_csv[label][f"{name}/{column}"] == row[column]
    assert compared == 7  # every score cell of both tables
    assert side_csv["LP+TA"]["tiny/sk n"] == "2" and side_csv["LP+TA"]["tiny/sk lo"] != ""

    # A configuration one backbone lacks: empty there (— in Markdown), never 0, and named with the missing cells.
    for column in ("en", "sk", "avg", "avg low"):
        assert side_csv["LA+TA"][f"mt0_base/{column}"] == "" and side_csv["zero-shot"][f"mt0_base/{column}"] == ""
    assert side_csv["LA+TA"]["tiny/sk"] != "" and side_csv["zero-shot"]["tiny/en"] == ""
    assert "- ner-backbones: no result for zero-shot on mt0_base, LA+TA on mt0_base" in markdown
    block = markdown.split("## Across backbones")[1].split("\n## ")[0]
    line = next(l for l in block.splitlines() if l.startswith("| LA+TA |"))
    assert line.split("|")[2].strip() == "—"
    lp = side_csv["LP+TA"]
    assert (f"{float(lp['tiny/sk']):.1f} ± {float(lp['tiny/sk std']):.1f} "
            f"[{float(lp['tiny/sk lo']):.1f}, {float(lp['tiny/sk hi']):.1f}]") in block
    assert "### ner across backbones (mt0_base, tiny)" in block
    tex = (tmp_path / "all" / "ner-backbones.tex").read_text()
    assert "mt0\\_base/en" in tex and tex.count(r"\\") == 1 + len(table.rows)


def test_results_of_one_backbone_get_no_side_by_side_table(store, tmp_path):
    sections, across, markdown = report(store, tmp_path / "all", backbones=("tiny",))
    assert across == [] and [s.backbone for s in sections] == ["tiny"]
    assert sections[0].scores.title.startswith("ner on tiny — span_f1")
    assert "Across backbones" not in markdown and not list((tmp_path / "all").glob("*backbones*"))


def test_a_hyperparameter_varied_on_one_backbone_tells_configurations_apart(tmp_path, make_cfg):
    """Two LP+TA on tiny (reduction factor 16 and 8) and one on mt0_base (16, at mt0_base's learning rate): the
    reduction factor is part of the configuration across backbones, the learning rate is not."""
    store = Store(tmp_path / "store")
    for backbone, factor, score in (("tiny", 16, 40.0), ("tiny", 8, 30.0), ("mt0_base", 16, 60.0)):
        cfg = make_cfg("+combo=lp_ta", "lang=sk", "task=ner", "seed=1", f"backbone={backbone}",
                       f"combo.components.task.reduction_factor={factor}")
        save(store, cfg, {"sk": {"span_f1": score}})
    sections, _ = build(store.results())
    (side,) = side_by_side(sections)
    rows = {row[0]: row[1:] for row in side.table.rows}
    assert side.table.header[1:3] == ["mt0_base/sk", "mt0_base/avg"]
    assert sorted(rows) == ["LP+TA (component.reduction_factor=16)", "LP+TA (component.reduction_factor=8)"]
    sixteen, eight = rows["LP+TA (component.reduction_factor=16)"], rows["LP+TA (component.reduction_factor=8)"]
    assert [sixteen[0].mean, sixteen[2].mean] == [60.0, 40.0]
    assert eight[0] is None and eight[1] is None and eight[2].mean == 30.0
    assert side.missing == ["LP+TA (component.reduction_factor=8) on mt0_base"]
