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
from softprompt_xl.study import records
from softprompt_xl.study.keys import comparison_spec, key, result_spec
from softprompt_xl.study.records import RESULT_FILE, JobFailure, Result
from softprompt_xl.study.store import Store
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
                    spec=json.loads(json.dumps(comparison_spec(cfg))), wall_time_s=1.0)
    store.save_result(key(result_spec(cfg)), result)
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
                  JobFailure.failed(failed, "RuntimeError: boom"))
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
    planned = proc.stdout.split("planned by the experiment, no result yet (")[1]
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
            assert result == {k: v for k, v in stored.items() if k not in ("key", "created")}
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
