"""report.dashboard=true on a real offline sweep of the toy (LP+TA and TA, English and Slovak, two seeds, English also
tested on Slovak): the dashboard's specification holds the score, transfer, table, learning-curve and cost panels,
every run set filtered to the sweep's group and job type, every panel reading keys that the sweep's own W&B run files
hold (read back with tests/wandb_files.py, independently of the package's reader); it becomes wandb_workspaces objects
without the network; the push refuses offline and without a login in one paragraph; a second report keeps the
dashboard's identity (its report run, the W&B report a push saved). Saving to a W&B server is not tested here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FAST_OVERRIDES, cli_env, run_sweep
from softprompt_xl.config import PROJECT_DIR
from wandb_files import read_run

# one sweep for all the tests of this file, in one worker; a minute and a half of end-to-end work: -m e2e (CI runs it)
pytestmark = [pytest.mark.xdist_group("dashboard"), pytest.mark.e2e]

GROUP = "dashboard-toy"
SWEEP = ("+combo=lp_ta,ta", "lang=en,sk", "seed=1,2", "task=ner", "transfer.sources=[en]", "transfer.targets=[sk]",
         *(o for o in FAST_OVERRIDES if not o.startswith("logger=")), "trainer.log_every_n_steps=1", "logger=wandb",
         "logger.wandb.mode=offline", f"logger.wandb.group={GROUP}")
REPORT = ("report.dashboard=true", "report.compare=[lp_ta,ta]", "report.resamples=50", "report.name=toy")
PUSHED = {"entity": "team", "project": "softprompt_xl", "id": "Vmlldzo0", "url": "https://wandb.ai/team/r--Vmlldzo0"}


def command(module: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=PROJECT_DIR, env=cli_env(env),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=600)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, make_cfg):
    """The sweep (in this process, as the staged sweeper runs it), its report with the dashboard, then - after a
    push would have recorded the W&B report it saved - the same report again. Returns the root, the two runs of the
    report command and the first dashboard.json."""
    root = tmp_path_factory.mktemp("dashboard")
    run_sweep(make_cfg, root, *SWEEP)
    first = command("softprompt_xl.report", f"paths.root={root}", *REPORT, env={"WANDB_MODE": None})
    assert first.returncode == 0, first.stdout[-3000:]
    path = root / "reports" / "toy" / "dashboard.json"
    spec = json.loads(path.read_text())
    path.write_text(json.dumps({**spec, "pushed": PUSHED}))  # what a push writes back
    again = command("softprompt_xl.report", f"paths.root={root}", *REPORT, "report.resamples=0", env={"WANDB_MODE": None})
    assert again.returncode == 0, again.stdout[-3000:]
    return root, first, again, spec


def runs_of(root: Path) -> list:
    return [read_run(p) for p in sorted((root / "wandb").rglob("run-*.wandb"))]


def selected(runs: list, filters: list[dict]) -> list:
    """The runs a run set's filters select, as W&B would: run attributes, and fields of the flat `run` config."""
    def value(run, key: str):
        if key.startswith("config.run."):
            return (run.config.get("run") or {}).get(key.split(".", 2)[2])
        return {"Group": run.group, "JobType": run.job_type, "Name": run.name}[key]

    return [run for run in runs if all(value(run, f["key"]) in f["value"] if f["op"] == "in"
                                       else value(run, f["key"]) == f["value"] for f in filters)]


def test_the_dashboard_of_a_toy_sweep_draws_what_its_runs_logged(sweep):
    from softprompt_xl.report.dashboard import panel_keys

    root, first, _, spec = sweep
    path = root / "reports" / "toy" / "dashboard.json"
    assert f"python -m softprompt_xl.report.dashboard push {path}" in first.stdout  # offline: how to push it
    assert "wandb sync --yes" in first.stdout and "Dashboard written to" in first.stdout
    runs = [r for r in runs_of(root) if r.project == "softprompt_xl"]
    assert sorted({r.job_type for r in runs}) == ["eval", "lang", "report", "task"] and {r.group for r in runs} == {GROUP}
    assert spec["project"] == "softprompt_xl" and spec["groups"] == {"eval": [GROUP], "task": [GROUP], "lang": [GROUP]}
    assert spec["made_from"]["runs"] == {"eval": 8, "task": 8, "lang": 4} and spec["pushed"] is None
    grids = [b for b in spec["blocks"] if b["type"] == "grid"]
    assert spec["made_from"]["grids"] == len(grids) and spec["made_from"]["panels"] == sum(len(g["panels"]) for g in grids)
    assert (len(grids), spec["made_from"]["panels"]) == (11, 36)  # as the README says

    # Every run set reads runs of the sweep's group and of one job type, and every panel a key those runs logged.
    shown = {}
    for grid in grids:
        filters = grid["runset"]["filters"]
        assert filters[0] == {"key": "Group", "op": "=", "value": GROUP} and filters[1]["key"] == "JobType"
        these = selected(runs, filters)
        assert these and {r.job_type for r in these} == {filters[1]["value"]}, grid["title"]
        for panel in grid["panels"]:
            for key in panel_keys(panel):  # bars: a summary value; curves: a history key; tables, images: a file
                assert any(key in r.summary if panel["type"] == "bar" else key in r.history if panel["type"] == "line"
                           else r.summary.get(f"{key}/_type") in ("table-file", "image-file") for r in these), \
                    (grid["title"], panel, key)
            shown.setdefault((filters[1]["value"], tuple((f["key"], str(f["value"])) for f in filters[2:])), []).append(panel)

    def panels(job_type: str, **run) -> list[dict]:
        return shown[(job_type, tuple((f"config.run.{k}", v) for k, v in run.items()))]

    # Scores: per trained-on language the primary metric by configuration (2 configs x 2 seeds in each); transfer:
    # English runs tested on Slovak, and only another language (Slovak runs were tested on Slovak alone).
    for lang in ("en", "sk"):
        bars = panels("eval", task="ner", lang=lang)
        assert bars[0]["metrics"] == [f"test/{lang}/span_f1"] and bars[0]["groupby"] == "config.run.combo"
        assert (bars[0]["aggregate"], bars[0]["range"]) == ("mean", "stddev")
    assert [p["metrics"] for p in panels("eval", task="ner", lang="en")] == [["test/en/span_f1"], ["test/sk/span_f1"]]
    assert len(panels("eval", task="ner", lang="sk")) == 1
    assert len(selected(runs, next(g for g in grids if g["title"] == "ner eval runs trained on en")["runset"]["filters"])) == 4
    # The report's tables (with their confidence intervals, the transfer matrices, the comparisons, the cost) and
    # its heatmaps, from its one run of job type report.
    report = [p for g in grids if g["runset"]["filters"][1]["value"] == "report" for p in g["panels"]]
    assert [p["key"] for p in report if p["type"] == "table"] == [
        "ner/scores", "ner/transfer-ta", "ner/transfer-lp_ta", "ner/compare-lp_ta-ta", "ner/compare-transfer-lp_ta-ta",
        "ner/cost"]
    assert sorted(k for p in report if p["type"] == "media" for k in p["keys"]) == [
        "ner/transfer-lp_ta-figure", "ner/transfer-ta-figure"]
    assert {(r.name, r.run_id) for r in runs if r.job_type == "report"} == {("report-toy", spec["report_run"]["id"])}
    # Learning curves, stage 2 per language and stage 1, grouped by configuration; the cost by configuration.
    for lang in ("en", "sk"):
        curves = panels("task", task="ner", lang=lang)
        assert {p["y"][0] for p in curves} >= {"train/loss", f"val/{lang}/span_f1", f"val/{lang}/loss"}
        assert all(p["type"] == "line" and p["groupby"] == "config.run.combo" and len(p["y"]) == 1 for p in curves)
        assert not any(p["y"][0].startswith("val/seconds") for p in curves)
        stage1 = panels("lang", lang=lang)
        assert stage1[0]["y"] == ["train/loss"] and stage1[0]["groupby"] == "config.combo.components.lang.kind"
    assert {p["metrics"][0] for p in panels("task", task="ner")} == {"train_time_s", "trainable_params/task",
                                                                     "trainable_params/lang"}
    # Nothing drawn that no run logged: no QA panel, no test of a language no run was tested on.
    drawn = json.dumps(spec["blocks"])
    assert "test/de/" not in drawn and "/f1" not in drawn and "exact_match" not in drawn


def test_the_dashboard_becomes_wandb_workspaces_objects_without_the_network(sweep):
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    from softprompt_xl.report.dashboard import grids, panel_keys, to_report

    spec = sweep[3]
    report = to_report(spec)  # no entity: nothing asks the server
    assert isinstance(report, wr.Report) and report.title == spec["title"] and report.project == "softprompt_xl"
    built = [b for b in report.blocks if isinstance(b, wr.PanelGrid)]
    assert len(built) == len(grids(spec))
    kinds = {"bar": wr.BarPlot, "line": wr.LinePlot, "table": wr.WeavePanelSummaryTable, "media": wr.MediaBrowser}
    for grid, block in zip(grids(spec), built):
        (runset,) = block.runsets
        assert runset.project == "softprompt_xl" and runset.name == grid["runset"]["name"]
        # the run set's filters, as W&B's v2 filter format, are the spec's
        v2 = expr.filters_tree_to_v2(expr.expr_to_filters(runset.filters))["filters"]
        assert [(f["key"]["section"], f["key"]["name"], f["op"], f["value"]) for f in v2] == [
            ("config", f["key"][7:], "IN" if f["op"] == "in" else "=", f["value"]) if f["key"].startswith("config.")
            else ("run", {"Group": "group", "JobType": "jobType", "Name": "displayName"}[f["key"]],
                  "IN" if f["op"] == "in" else "=", f["value"]) for f in grid["runset"]["filters"]]
        for panel, built_panel in zip(grid["panels"], block.panels):
            assert isinstance(built_panel, kinds[panel["type"]])
            keys = {wr.BarPlot: lambda p: p.metrics, wr.LinePlot: lambda p: p.y,
                    wr.WeavePanelSummaryTable: lambda p: [p.table_name], wr.MediaBrowser: lambda p: p.media_keys}
            assert list(keys[type(built_panel)](built_panel)) == panel_keys(panel)
            if panel["type"] in ("bar", "line"):
                assert built_panel.groupby == wr.Config(panel["groupby"][len("config."):])
                assert (built_panel.groupby_aggfunc, built_panel.groupby_rangefunc) == ("mean", "stddev")
    # The whole view as W&B would store it, serialised offline: bars grouped by run.combo (config run.value.combo).
    view = json.loads(report._to_model().model_dump_json(by_alias=True, exclude_none=True))
    bars = [p for b in view["spec"]["blocks"] if b.get("type") == "panel-grid"
            for p in b["metadata"]["panelBankSectionConfig"]["panels"] if p["viewType"] == "Bar Chart"]
    assert bars and {p["config"]["groupBy"] for p in bars} >= {"run.value.combo"}
    named = to_report(spec, "team")  # with an entity the run sets name it (saving would look the project up)
    assert {rs.entity for b in named.blocks if isinstance(b, wr.PanelGrid) for rs in b.runsets} == {"team"}


def test_the_push_says_what_to_do_offline_and_without_a_login(sweep, tmp_path, monkeypatch):
    from softprompt_xl.errors import UserError
    from softprompt_xl.report.dashboard import push

    root = sweep[0]
    path = root / "reports" / "toy" / "dashboard.json"
    before = path.read_text()
    offline = command("softprompt_xl.report.dashboard", "push", str(path), env={"WANDB_MODE": "offline"})
    assert offline.returncode == 1 and "Traceback" not in offline.stdout, offline.stdout
    said = " ".join(offline.stdout.split())
    assert "WANDB_MODE=offline keeps W&B offline, so the dashboard is not pushed" in said
    assert "`wandb login`" in said and f"cd {root / 'wandb'} && wandb sync --yes" in said
    assert f"python -m softprompt_xl.report.dashboard push {path}" in said
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(UserError) as no_login:
        push(path)
    assert "Could not save the dashboard in W&B (UsageError: No API key configured" in str(no_login.value)
    assert "`wandb login` (or set WANDB_API_KEY)" in str(no_login.value)
    assert path.read_text() == before  # nothing recorded


def test_a_sweep_without_wandb_runs_has_no_dashboard(sweep):
    import dataclasses

    from softprompt_xl.errors import UserError
    from softprompt_xl.report.dashboard import check
    from softprompt_xl.pipeline.storage import Store

    results = Store(sweep[0] / "store").results()
    check(results)  # the sweep's: logged to W&B
    with pytest.raises(UserError) as refused:  # as a sweep run with logger=csv or logger=none stores them
        check([dataclasses.replace(r, wandb=None) for r in results])
    assert "none of the 8 result(s) was logged to W&B" in str(refused.value) and "logger=wandb" in str(refused.value)


def test_the_same_report_again_updates_the_same_dashboard(sweep):
    root, _, again, first = sweep
    path = root / "reports" / "toy" / "dashboard.json"
    spec = json.loads(path.read_text())
    assert spec["pushed"] == PUSHED  # carried over: the next push updates that W&B report
    assert spec["title"] == first["title"] and spec["report_run"] == first["report_run"]
    # One report run, logged twice (resumed by its id), not a second run beside the first.
    reports = [r for r in runs_of(root) if r.job_type == "report"]
    assert len(reports) == 2 and {r.run_id for r in reports} == {first["report_run"]["id"]}
    assert "Dashboard written to" in again.stdout
