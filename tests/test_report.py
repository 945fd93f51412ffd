"""The report command on a fixture store of known results (two seeds, a missing cell, transfer runs, a failed job,
a run on another backbone that must not be averaged in), its files (Markdown, CSV, LaTeX, PNG), its filters and
messages; and the W&B conventions of a real small sweep, read back from the offline run files."""

from __future__ import annotations

import csv
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAST_OVERRIDES, SHARED_CACHE, run_cli
from softprompt_xl.config import PROJECT_DIR
from softprompt_xl.pipeline import records
from softprompt_xl.pipeline.keys import comparison_spec, key, result_spec
from softprompt_xl.pipeline.records import RESULT_FILE, JobFailure, Result, job_identity
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.pipeline.run_spec import RunSpec
from wandb_files import read_run

TINY_RUNS = [  # (combo, language, seeds, evaluation languages); TA has no Czech run: a missing cell
    ("zero_shot", "en", [1], ["en"]), ("zero_shot", "sk", [1], ["sk"]), ("zero_shot", "cs", [1], ["cs"]),
    ("ta", "en", [1], ["en", "sk", "cs"]), ("ta", "sk", [1], ["sk"]),
    ("lp_ta", "en", [1, 2], ["en", "sk", "cs"]), ("lp_ta", "sk", [1, 2], ["sk"]), ("lp_ta", "cs", [1, 2], ["cs"]),
]


def report(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "SOFTPROMPT_XL_CACHE": str(SHARED_CACHE), **(env or {})}
    return subprocess.run([sys.executable, "-m", "softprompt_xl.report", *args], cwd=cwd or PROJECT_DIR, env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)


def save(store: Store, cfg, metrics: dict) -> Result:
    """A result as the pipeline stores it: its key and comparison spec from the real config."""
    result = Result(combo=cfg.combo.name, lang=cfg.lang.code, task=cfg.task.name, backbone=cfg.backbone.id,
                    seed=cfg.seed, metrics=metrics, eval_langs=list(metrics),
                    trainable_params={"task": 0 if cfg.combo.name == "zero_shot" else 2320},
                    train_time_s=None if cfg.combo.name == "zero_shot" else 10.0 + cfg.seed,
                    lang_component=f"lang-prompt-{cfg.lang.code}-x" if cfg.combo.components.lang else None,
                    lang_component_params=1280 if cfg.combo.components.lang else None,
                    lang_train_time_s=5.0 if cfg.combo.components.lang else None,
                    spec=json.loads(json.dumps(comparison_spec(RunSpec.of(cfg)))), wall_time_s=1.0)
    store.save_result(key(result_spec(RunSpec.of(cfg))), result)
    return result


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory, make_cfg):
    root = tmp_path_factory.mktemp("report")
    store, rng, scores = Store(root / "store"), random.Random(5), {}
    for combo, lang, seeds, targets in TINY_RUNS:
        for seed in seeds:
            cfg = make_cfg(f"+combo={combo}", f"lang={lang}", "task=ner", f"seed={seed}", f"eval_langs=[{','.join(targets)}]")
            metrics = {t: {"span_f1": round(rng.uniform(5, 95), 2), "unparsed": 1.0} for t in targets}
            save(store, cfg, metrics)
            for target, m in metrics.items():
                scores.setdefault((combo, lang, target), []).append(m["span_f1"])
    # The same configuration on another backbone, with a score far off: it must get a table of its own.
    other = make_cfg("+combo=lp_ta", "lang=sk", "task=ner", "seed=1", "backbone=mt0_base")
    save(store, other, {"sk": {"span_f1": 0.5, "unparsed": 0.0}})
    # A job that failed (its result.json in its job directory; the store holds nothing for it).
    failed = make_cfg("+combo=tp", "lang=sk", "task=ner", "seed=1")
    records.write(root / "outputs" / "multirun" / "2026-01-01_00-00-00" / "3_tp-sk-ner" / RESULT_FILE,
                  JobFailure.failed(job_identity(failed), "RuntimeError: boom"))
    return root, scores


def read_csv(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as f:
        return {row[next(iter(row))]: row for row in csv.DictReader(f)}


def test_report_tables_from_a_fixture_store(fixture_root, tmp_path):
    root, scores = fixture_root
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir(), cwd.mkdir()
    proc = report(f"paths.root={root}", env={"HOME": str(home)}, cwd=cwd)
    assert proc.returncode == 0, proc.stdout[-3000:]
    folder = root / "reports" / "all"
    markdown = (folder / "report.md").read_text()
    assert markdown.strip() in proc.stdout  # printed as written

    # Two sections for NER: the tiny backbone's, and the mt0-base run's alone.
    sections = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert len(sections) == 2 and all(s.startswith("ner-") for s in sections)
    tables = {s: read_csv(folder / s / "scores.csv") for s in sections}
    (tiny,) = [t for t in tables.values() if "TA" in t]
    (mt0,) = [t for t in tables.values() if "TA" not in t]
    assert list(mt0) == ["LP+TA"] and float(mt0["LP+TA"]["sk"]) == 0.5
    # Each table named by its backbone's config id; and the configurations of both side by side (its own tests:
    # tests/test_report_backbones.py), the cells those of the two tables.
    assert "## ner on tiny — span_f1" in markdown and "## ner on mt0_base — span_f1" in markdown
    side = read_csv(folder / "ner-backbones.csv")
    assert list(side) == ["zero-shot", "TA", "LP+TA"] and "### ner across backbones (mt0_base, tiny)" in markdown
    assert side["LP+TA"]["mt0_base/sk"] == mt0["LP+TA"]["sk"] and side["TA"]["mt0_base/sk"] == ""
    assert all(side[label][f"tiny/{lang}"] == tiny[label][lang] for label in tiny for lang in ("en", "cs", "sk"))

    # Two seeds: mean and std of exactly those two (the mt0-base score is not averaged in).
    two = scores[("lp_ta", "sk", "sk")]
    assert float(tiny["LP+TA"]["sk"]) == pytest.approx(statistics.fmean(two), abs=1e-3)
    assert float(tiny["LP+TA"]["sk std"]) == pytest.approx(statistics.stdev(two), abs=1e-3)
    assert tiny["LP+TA"]["sk n"] == "2" and tiny["LP+TA"]["seeds"] == "2" and tiny["TA"]["seeds"] == "1"
    assert tiny["TA"]["sk std"] == ""  # one seed: no std
    # The missing cell is empty, and so are the averages that would need it; never a 0.
    assert tiny["TA"]["cs"] == "" and tiny["TA"]["cs n"] == "0" and tiny["TA"]["avg"] == "" and tiny["TA"]["avg low"] == ""
    langs = ["en", "cs", "sk"]
    assert list(tiny["LP+TA"])[2:2 + 3 * len(langs):3] == langs  # high-resource first, then cs, sk
    means = {c: {lang: statistics.fmean(scores[(c, lang, lang)]) for lang in langs} for c in ("zero_shot", "lp_ta")}
    for combo, label in (("zero_shot", "zero-shot"), ("lp_ta", "LP+TA")):
        assert float(tiny[label]["avg"]) == pytest.approx(statistics.fmean(means[combo].values()), abs=1e-3)
        assert float(tiny[label]["avg low"]) == pytest.approx(statistics.fmean([means[combo]["cs"], means[combo]["sk"]]), abs=1e-3)

    # Markdown: the best configuration of each language column in bold, the missing cell as —.
    section = next(s for s, t in tables.items() if t is tiny)
    block = markdown.split(f"![ner]({section}/scores.png)")[0].rsplit("| configuration |", 1)[1]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in block.splitlines()[2:] if line.startswith("|")}
    for i, lang in enumerate(langs, start=1):
        in_lang = {label: float(tiny[label][lang]) for label in tiny if tiny[label][lang]}
        best = max(in_lang, key=in_lang.get)
        assert rows[best][i].startswith("**") and all(not rows[o][i].startswith("**") for o in in_lang if o != best)
    assert rows["TA"][2] == "—"
    assert "ner" in markdown and "no result for TA cs" in markdown
    assert "failed: tp sk ner (seed 1, tiny): failed - RuntimeError: boom" in markdown

    # Transfer matrix: rows trained on, columns tested on; the English runs reach every target.
    transfer = read_csv(folder / section / "transfer-lp_ta.csv")
    assert float(transfer["en"]["sk"]) == pytest.approx(statistics.fmean(scores[("lp_ta", "en", "sk")]), abs=1e-3)
    assert transfer["sk"]["en"] == ""  # never trained on sk, tested on en
    cost = read_csv(folder / section / "cost.csv")
    assert cost["LP+TA"]["task params"] == "2320" and cost["LP+TA"]["language params"] == "1280"
    assert cost["zero-shot"]["task training (s)"] == "0.0" and cost["TA"]["runs"] == "2"

    latex = (folder / section / "scores.tex").read_text()
    assert all(rule in latex for rule in (r"\toprule", r"\midrule", r"\bottomrule")) and r"\textbf{" in latex
    assert latex.count(r"\\") == 1 + len(tiny)  # header and one line per configuration

    from PIL import Image

    pngs = sorted(folder.rglob("*.png"))
    assert {p.name for p in pngs} >= {"scores.png", "transfer-zero_shot.png", "transfer-ta.png", "transfer-lp_ta.png"}
    for png in pngs:
        with Image.open(png) as image:
            image.verify()  # a complete, well-formed PNG
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 150
    # Written at once, nothing left beside it, nothing outside paths.root.
    assert [p.name for p in (root / "reports").iterdir()] == ["all"]
    assert list(home.iterdir()) == [] and list(cwd.iterdir()) == []


def test_report_filters_and_messages(fixture_root, tmp_path):
    root, _ = fixture_root
    only = report(f"paths.root={root}", "backbone=mt0_base")
    assert only.returncode == 0, only.stdout[-3000:]
    folder = root / "reports" / "all-mt0_base"
    assert [p.name for p in folder.iterdir() if p.is_dir()] == ["ner"] and "filters: backbone=mt0_base" in only.stdout

    for args, says in [
        (["task=qa"], "No finished result in the store"),
        (["task=nope"], "Could not find 'task/nope'"),
        (["source=nope"], "Unknown source 'nope'"),
    ]:
        proc = report(f"paths.root={root}", *args)
        assert proc.returncode == 1 and says in proc.stdout and "Traceback" not in proc.stdout, proc.stdout[-3000:]
    empty = report(f"paths.root={tmp_path / 'empty'}")
    assert empty.returncode == 1 and "holds no finished results" in empty.stdout and "python -m softprompt_xl.train" in empty.stdout
    assert not (tmp_path / "empty" / "reports").exists()
    offline = report(f"paths.root={root}", "source=wandb", env={"WANDB_MODE": "offline"})
    assert offline.returncode == 1 and "source=wandb reads results online" in offline.stdout
    no_login = report(f"paths.root={root}", "source=wandb", "logger.wandb.mode=online",
                      env={"WANDB_MODE": "online", "WANDB_API_KEY": "", "HOME": str(tmp_path / "home")})
    assert no_login.returncode == 1 and "Could not read the runs of the W&B project" in no_login.stdout
    assert "wandb login" in no_login.stdout and "Traceback" not in no_login.stdout


def test_report_of_an_experiment_lists_its_missing_runs(tmp_path, make_cfg):
    store = Store(tmp_path / "store")
    done = make_cfg("experiment=paper_v1_toy", "+combo=lp_ta", "lang=sk", "task=ner")
    save(store, done, {"sk": {"span_f1": 50.0}})
    save(store, make_cfg("+combo=lp_ta", "lang=sk", "task=ner"), {"sk": {"span_f1": 10.0}})  # not of the study
    proc = report(f"paths.root={tmp_path}", "experiment=paper_v1_toy", "task=ner")
    assert proc.returncode == 0, proc.stdout[-3000:]
    scores = read_csv(tmp_path / "reports" / "paper_v1_toy-ner" / "ner" / "scores.csv")
    assert list(scores) == ["LP+TA"] and float(scores["LP+TA"]["sk"]) == 50.0
    planned = proc.stdout.split("planned by the experiment, no result yet (")[1].splitlines()[0]
    assert planned.startswith("35)") and "lp_ta en ner" in planned and "lp_ta sk ner" not in planned


def test_wandb_conventions_of_a_small_sweep_and_the_report_in_its_group(tmp_path):
    args = ["+combo=lp_ta,ta", "lang=sk", "task=ner", f"paths.root={tmp_path}", *FAST_OVERRIDES,
            "trainer.log_every_n_steps=1", "logger=wandb", "logger.wandb.mode=offline"]
    proc = run_cli(*args, "-m")
    assert proc.returncode == 0, proc.stdout[-3000:]
    runs = [read_run(p) for p in sorted((tmp_path / "wandb").rglob("offline-run-*/run-*.wandb"))]
    assert sorted(r.job_type for r in runs) == ["eval", "eval", "lang", "task", "task"]
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    assert {r.group for r in runs} == {sweep.name}  # one group: the sweep
    assert {r.project for r in runs} == {"softprompt_xl"}
    components = {p.name for p in (tmp_path / "store" / "components").iterdir() if p.is_dir()}
    (lang_key,) = [c for c in components if c.startswith("lang-prompt-sk-")]
    for run in runs:
        identity = run.config["run"]
        assert identity["stage"] == run.job_type and identity["lang"] == "sk" and identity["backbone"] == "tiny"
        if run.job_type == "lang":
            assert {"prompt", "sk", "tiny"} <= set(run.tags) and identity["combo"] is None
            assert [(a["type"], a["name"]) for a in run.artifacts] == [("lang-component", lang_key)]
            assert run.artifacts[0]["metadata"]["store_key"] == lang_key
            continue
        combo = identity["combo"]
        assert {combo, "sk", "ner", "tiny"} <= set(run.tags) and identity["task"] == "ner"
        assert run.config["combo"]["name"] == combo  # the full config too, for W&B's filters
        if run.job_type == "task":
            (artifact,) = run.artifacts
            assert artifact["type"] == "task-component" and artifact["name"] in components
            assert artifact["metadata"]["store_key"] == artifact["name"] == identity["store_key"]
            # lineage kept offline (W&B refuses use_artifact there): the language component's key
            assert artifact["metadata"]["spec"]["lang_component"] == (lang_key if combo == "lp_ta" else None)
            assert "train/loss" in run.summary and "train/lr" in run.summary and "val/sk/span_f1" in run.summary
        else:
            result = json.loads(run.summary["result"])
            stored = json.loads(Store(tmp_path / "store").result_file(identity["store_key"]).read_text())
            assert result == {k: v for k, v in stored.items() if k not in ("key", "created", "predictions_bytes")}
            # its test predictions beside it, as the job directory has them
            kept = Store(tmp_path / "store").read_predictions(identity["store_key"])
            (job_file,) = [f for f in (tmp_path / "outputs").rglob("predictions_test_sk.jsonl")
                           if f.parent.name.split("_", 1)[1] == f"{combo}-sk-ner"]
            assert kept == {"sk": [json.loads(line) for line in job_file.read_text().splitlines()]} and kept["sk"]
            assert run.summary["test/sk/span_f1"] == stored["metrics"]["sk"]["span_f1"]
            assert result["wandb"]["group"] == sweep.name

    # The report of this sweep, logged to W&B: one run of job_type report, in the sweep's group, with Tables.
    done = report(f"paths.root={tmp_path}", "report.wandb=true")
    assert done.returncode == 0, done.stdout[-3000:]
    assert "| LP+TA |" in done.stdout and "| TA |" in done.stdout
    reports = [r for r in (read_run(p) for p in (tmp_path / "wandb").rglob("offline-run-*/run-*.wandb"))
               if r.job_type == "report"]
    assert len(reports) == 1 and reports[0].group == sweep.name
    summary = reports[0].summary
    assert summary["ner/scores/_type"] == "table-file" and summary["ner/scores/nrows"] == 2
    assert summary["ner/transfer-lp_ta/_type"] == "table-file" and summary["ner/cost/_type"] == "table-file"
    assert {a["type"] for a in reports[0].artifacts} == {"run_table"}


def ner_predictions(task, lang: str, quality: float, seed: int, n: int = 60) -> tuple[dict, list[dict]]:
    """Synthetic predictions of n sentences (the same ids and gold for every run): a fraction `quality` right,
    the rest missing the entity; and the metrics the pipeline would record for them."""
    rng = random.Random(f"{lang}{seed}")
    rows = []
    for i in range(n):
        gold = [("PER", f"Osoba{i}")] + ([("LOC", f"Mesto{i}")] if i % 3 == 0 else [])
        right = rng.random() < quality
        rows.append({"id": f"{lang}-{i}", "prediction": task.target_of(gold) if right else "LOC: Nikde",
                     "references": gold})
    rng.shuffle(rows)  # stored in another order: matched by id
    return task.score([r["prediction"] for r in rows], [r["references"] for r in rows], lang), rows


def test_report_shows_confidence_intervals_and_comparisons(tmp_path, make_cfg):
    """Two seeds of LP+TA and LA+TA with stored predictions: LP+TA clearly better in English, the same predictions
    in Slovak; TA stored without predictions (an older result): no interval, said once."""
    from softprompt_xl.data.tasks import get_task

    store = Store(tmp_path / "store")
    task = get_task(make_cfg("task=ner").task)
    task.target_of = lambda spans: "$$".join(f"{k}: {t}" for k, t in spans)
    quality = {("lp_ta", "en"): 0.95, ("la_ta", "en"): 0.4, ("lp_ta", "sk"): 0.6, ("la_ta", "sk"): 0.6}
    for combo in ("lp_ta", "la_ta"):
        for lang, targets in (("en", ["en", "sk"]), ("sk", ["sk"])):
            for seed in (1, 2):
                cfg = make_cfg(f"+combo={combo}", f"lang={lang}", "task=ner", f"seed={seed}",
                               f"eval_langs=[{','.join(targets)}]")
                found = {t: ner_predictions(task, t, quality[("lp_ta" if t == "sk" else combo, t)], seed) for t in targets}
                result = save(store, cfg, {t: m for t, (m, _) in found.items()})
                store.save_result(result.key or key(result_spec(RunSpec.of(cfg))), result,
                                  {t: rows for t, (_, rows) in found.items()})
    save(store, make_cfg("+combo=ta", "lang=sk", "task=ner", "seed=1"), {"sk": {"span_f1": 50.0}})

    proc = report(f"paths.root={tmp_path}", "report.resamples=300")
    assert proc.returncode == 0, proc.stdout[-3000:]
    folder = tmp_path / "reports" / "all" / "ner"
    scores = read_csv(folder / "scores.csv")
    for label in ("LP+TA", "LA+TA"):
        for lang in ("en", "sk"):
            lo, mean, hi = (float(scores[label][f"{lang}{end}"]) for end in (" lo", "", " hi"))
            assert lo < mean < hi and hi - lo < 40
    assert scores["TA"]["sk lo"] == "" and scores["TA"]["sk"] == "50.0"
    markdown = (tmp_path / "reports" / "all" / "report.md").read_text()
    en = scores["LP+TA"]
    assert f"{float(en['en']):.1f} ± {float(en['en std']):.1f} [{float(en['en lo']):.1f}, {float(en['en hi']):.1f}]" in markdown
    assert "1 result(s) have no stored test predictions" in markdown and "ta sk ner (seed 1)" in markdown
    assert "does not give the stored score" not in markdown
    assert "{\\scriptsize [" in (folder / "scores.tex").read_text()

    assert "LP+TA better in 1 of 2 cells at p<0.05, worse in 0, no difference in 1" in markdown
    compared = read_csv(folder / "compare-lp_ta-la_ta.csv")
    assert compared["en"]["verdict"] == "better" and float(compared["en"]["p"]) < 0.01
    assert float(compared["en"]["difference"]) == pytest.approx(float(scores["LP+TA"]["en"]) - float(scores["LA+TA"]["en"]), abs=1e-3)
    assert float(compared["en"]["lo"]) > 0 and compared["en"]["seeds"] == "1,2"
    assert compared["sk"]["verdict"] == "no difference" and float(compared["sk"]["p"]) == 1.0
    # The transfer matrices too, cell by cell, but only their transfer cells: en -> sk (the same predictions). The
    # diagonal (en -> en, sk -> sk) is the in-language comparison above, not counted again; it stays in the matrices,
    # marked in-language (italic). All of it counted in one line per scope at the top.
    assert "LP+TA better in 0 of 1 transfer cells at p<0.05, worse in 0, no difference in 1" in markdown
    across = read_csv(folder / "compare-transfer-lp_ta-la_ta.csv")
    assert {k: v["verdict"] for k, v in across.items()} == {"en → sk": "no difference"}
    assert float(across["en → sk"]["p"]) == 1.0 and float(across["en → sk"]["difference"]) == 0.0
    matrix = read_csv(folder / "transfer-lp_ta.csv")
    assert float(matrix["en"]["en"]) == float(scores["LP+TA"]["en"]) and float(matrix["sk"]["sk"]) == float(scores["LP+TA"]["sk"])
    block = markdown.split("#### LP+TA: trained on (rows), tested on (columns), span_f1")[1].split("####")[0]
    assert "the diagonal (in italics) is in-language, not transfer" in block
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in block.splitlines()
            if line.startswith("| en") or line.startswith("| sk")}
    assert rows["en"][0].startswith("*") and not rows["en"][1].startswith("*") and rows["sk"][1].startswith("*")
    assert "\\textit{" in (folder / "transfer-lp_ta.tex").read_text()
    brief = markdown.split("## Comparisons in brief")[1].split("\n## ")[0]
    assert "**LP+TA vs LA+TA, in-language, all tasks: LP+TA better in 1 of 2 cells" in brief
    assert "**LP+TA vs LA+TA, transfer, all tasks: LP+TA better in 0 of 1 transfer cells" in brief

    # Transfer from English, and the comparison the other way round.
    proc = report(f"paths.root={tmp_path}", "report.resamples=300", "report.transfer_from=en",
                  "report.compare=[la_ta,lp_ta]", "report.name=transfer")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "LA+TA better in 0 of 2 cells at p<0.05, worse in 1, no difference in 1" in proc.stdout
    transfer = read_csv(tmp_path / "reports" / "transfer" / "ner" / "transfer-lp_ta.csv")
    assert float(transfer["en"]["sk lo"]) < float(transfer["en"]["sk"]) < float(transfer["en"]["sk hi"])
    wrong = report(f"paths.root={tmp_path}", "report.compare=[lp_ta]")
    assert wrong.returncode == 1 and "report.compare=['lp_ta'] names 1 combo(s)" in wrong.stdout


def test_damaged_predictions_are_named_and_their_cell_left_out_of_the_comparison(tmp_path, make_cfg):
    """LP+TA and LA+TA on English, Slovak and Czech NER; LA+TA's Slovak predictions cut short, LP+TA's English ones
    with a line that is no prediction: each named in a warning, its cell without interval and not compared, the
    report made all the same, Czech compared as ever."""
    from softprompt_xl.data.tasks import get_task

    store = Store(tmp_path / "store")
    task = get_task(make_cfg("task=ner").task)
    task.target_of = lambda spans: "$$".join(f"{k}: {t}" for k, t in spans)
    for combo in ("lp_ta", "la_ta"):
        for lang in ("en", "sk", "cs"):
            cfg = make_cfg(f"+combo={combo}", f"lang={lang}", "task=ner", "seed=1")
            metrics, rows = ner_predictions(task, lang, 0.9 if combo == "lp_ta" else 0.3, 1)
            result = save(store, cfg, {lang: metrics})
            store.save_result(key(result_spec(RunSpec.of(cfg))), result, {lang: rows})
    cut = store.predictions_file(key(result_spec(RunSpec.of(make_cfg("+combo=la_ta", "lang=sk", "task=ner",
                                                                     "seed=1")))))
    cut.write_bytes(cut.read_bytes()[:-40])
    garbled = store.predictions_file(key(result_spec(RunSpec.of(make_cfg("+combo=lp_ta", "lang=en", "task=ner",
                                                                         "seed=1")))))
    records.write_predictions(garbled, {"en": [{"id": "en-0", "references": []}]})  # no prediction in it

    proc = report(f"paths.root={tmp_path}", "report.resamples=100")
    assert proc.returncode == 0 and "Traceback" not in proc.stdout, proc.stdout[-3000:]
    assert f"{cut} is damaged (Compressed file ended before the end-of-stream marker was reached)" in proc.stdout
    assert f"{garbled} is damaged (line 1 is not a prediction)" in proc.stdout
    markdown = (tmp_path / "reports" / "all" / "report.md").read_text()
    assert "2 result(s) have no stored test predictions (stored before they were kept, damaged" in markdown
    compared = read_csv(tmp_path / "reports" / "all" / "ner" / "compare-lp_ta-la_ta.csv")
    assert compared["en"]["verdict"] == compared["sk"]["verdict"] == "not compared"
    assert compared["cs"]["verdict"] == "better"


def test_transfer_is_to_another_language(tmp_path, make_cfg):
    """A sweep of in-language runs only (each configuration trained and tested on en, and on sk) has no transfer cell:
    its comparison is the in-language one, and no transfer line repeats it (it printed "2 transfer cells"); the
    transfer matrices keep the diagonal, marked in-language."""
    from omegaconf import OmegaConf

    from softprompt_xl.data.tasks import get_task
    from softprompt_xl.report.comparisons import annotate, brief
    from softprompt_xl.report.tables import build

    store = Store(tmp_path / "store")
    task = get_task(make_cfg("task=ner").task)
    task.target_of = lambda spans: "$$".join(f"{k}: {t}" for k, t in spans)
    for combo, quality in (("lp_ta", 0.9), ("la_ta", 0.5)):
        for lang in ("en", "sk"):
            cfg = make_cfg(f"+combo={combo}", f"lang={lang}", "task=ner", "seed=1")
            metrics, rows = ner_predictions(task, lang, quality, 1)
            result = save(store, cfg, {lang: metrics})
            store.save_result(key(result_spec(RunSpec.of(cfg))), result, {lang: rows})
    sections, _ = build(store.results())
    settings = OmegaConf.create({"confidence": 0.95, "resamples": 100, "seed": 0, "compare": ["lp_ta", "la_ta"],
                                 "alpha": 0.05})
    annotate(sections, lambda r: store.read_predictions(r.key), settings)
    (section,) = sections
    assert [c.scope for c in section.comparisons] == ["cells"]  # no transfer comparison
    assert section.comparisons[0].counts["better"] + section.comparisons[0].counts["no difference"] == 2
    lines = brief(sections, 0.05)
    assert any("in-language, all tasks" in line for line in lines) and not any("transfer" in line for line in lines)
    matrix = next(t for t in section.transfer if t.slug.endswith("transfer-lp_ta"))
    assert matrix.header == ["trained on", "en", "sk"] and matrix.in_language == {(0, 1), (1, 2)}
    assert [[type(v).__name__ for v in row[1:]] for row in matrix.rows] == [["Cell", "NoneType"], ["NoneType", "Cell"]]


@pytest.mark.parametrize("overrides,name", [
    ([], "all"), (["task=ner"], "all-ner"), (["report.transfer_from=en"], "all-transfer_from_en"),
    (["task=ner", "report.compare=[lp_tp,tp]"], "all-ner-compare_lp_tp_vs_tp"),
    (["report.metric=exact_match", "report.compare=[]"], "all-metric_exact_match-compare_none"),
    (["report.transfer_from=en", "report.name=mine"], "mine"), (["report.resamples=10"], "all"),
])
def test_a_report_that_shows_something_else_gets_a_directory_of_its_own(overrides, name):
    """`python -m softprompt_xl.report report.transfer_from=en` wrote over reports/all/, the plain report: the
    settings that change what a report shows name its directory (README "Comparing results")."""
    from hydra import compose, initialize_config_module

    from softprompt_xl.config import CONF_MODULE
    from softprompt_xl.report.report_spec import ReportSpec

    with initialize_config_module(CONF_MODULE, version_base="1.3"):
        cfg = compose("report", overrides=overrides)
    assert ReportSpec.of(cfg, None, overrides).name == name
    assert ReportSpec.of(cfg, "paper_v1", overrides).name == name.replace("all", "paper_v1")
