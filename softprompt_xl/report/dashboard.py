"""`report.dashboard=true`: a sweep's comparison laid out in the W&B UI, as a W&B Report built with W&B's own library
for its UI (wandb-workspaces), instead of the default workspace's one line chart per key.

    python -m softprompt_xl.report report.dashboard=true                             # writes <report>/dashboard.json
    python -m softprompt_xl.report.dashboard push runs/reports/all/dashboard.json    # online: saves it in W&B

The report command builds the dashboard's whole specification - blocks of headings and panel grids, each grid with
one run set (its W&B filters: the runs' group and job type, and their `run.task` / `run.lang`) and its panels (type,
keys, grouping) - from what the sweep's runs really logged: the store's results say which runs belong to the report
(an eval run per result, the task and language runs that made its components), the runs' own files under
paths.wandb (report/run_files.py) which keys each of them logged. A key no run logged is not drawn. The
specification is plain JSON, written atomically into the report directory; offline that is all (it says how to push
it), online the same command saves it. `push` turns it into wandb_workspaces objects (`to_report`, which needs no
network) and saves them; the saved report's id is kept in dashboard.json, and a later report of the same name
carries it over, so the next push updates the same W&B report instead of adding one (failing that, the report is
found in the project by its title).

Why a Report and not a saved workspace view: a workspace view filters its runs once for all its panels, while each
grid of a Report has run sets of its own, so every panel reads exactly the runs it describes (the eval runs trained
on Slovak, the task runs of NER, the report's own run).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from softprompt_xl.errors import UserError
from softprompt_xl.report.report_spec import ReportSpec
from softprompt_xl.report.run_files import LoggedRun, logged_runs
from softprompt_xl.report.tables import Cell, Section, lang_order, languages
from softprompt_xl.report.wandb_io import ReportRun
from softprompt_xl.runtime.atomic import write_json
from softprompt_xl.pipeline.records import Result

log = logging.getLogger(__name__)

FILE = "dashboard.json"
VERSION = 1
CONFIGURATION = "config.run.combo"  # what every score, curve and cost panel groups its runs by
STAGE1_CONFIGURATION = "config.combo.components.lang.kind"  # a language run's configuration: the component's kind
PUSH = "python -m softprompt_xl.report.dashboard push"
OFFLINE_MODES = ("offline", "disabled", "dryrun")


# --- the specification -------------------------------------------------------------------------------------------


def _filters(groups: set[str], job_type: str, **run: Any) -> list[dict]:
    """A run set's filters: the runs' W&B groups, their job type, and fields of their flat `run` config block."""
    found = sorted(groups)
    out = [{"key": "Group", "op": "=", "value": found[0]} if len(found) == 1 else
           {"key": "Group", "op": "in", "value": found}, {"key": "JobType", "op": "=", "value": job_type}]
    for name, value in run.items():
        if value is not None:
            out.append({"key": f"config.run.{name}", "op": "in" if isinstance(value, list) else "=", "value": value})
    return out


def _grid(title: str, filters: list[dict], panels: list[dict]) -> dict:
    return {"type": "grid", "title": title, "runset": {"name": title, "filters": filters}, "panels": panels}


def _bar(title: str, metrics: list[str], groupby: str | None = CONFIGURATION) -> dict:
    """Bars of summary values, one per configuration (mean over its runs: seeds, languages; stddev as error bar)."""
    return {"type": "bar", "title": title, "metrics": metrics, "groupby": groupby, "aggregate": "mean",
            "range": "stddev"}


def _line(title: str, x: str, y: list[str], groupby: str | None = CONFIGURATION) -> dict:
    """Curves of history values, one per configuration (the mean over its seeds, their stddev as a band)."""
    return {"type": "line", "title": title, "x": x, "y": y, "groupby": groupby, "aggregate": "mean", "range": "stddev"}


def _table(title: str, key: str) -> dict:
    return {"type": "table", "title": title, "key": key}


def _heading(text: str, level: int) -> dict:
    return {"type": "heading", "level": level, "text": text}


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _logged(runs: list[LoggedRun], history: bool = False) -> set[str]:
    return set().union(*((run.history if history else run.summary) for run in runs))


def _from_result(result: Result) -> LoggedRun:
    """The eval run of a result whose run file is not here (logged online on another machine): its summary holds
    `test/<lang>/<metric>` for every score the result records (stages.py logs exactly those)."""
    run = LoggedRun(run_id=result.wandb["run_id"], project=result.wandb["project"], group=result.wandb["group"],
                    job_type="eval", name=result.name())
    run.config["run"] = {"stage": "eval", "combo": result.combo, "lang": result.lang, "task": result.task,
                         "backbone": result.backbone, "seed": result.seed, "store_key": result.key}
    run.summary = {f"test/{lang}/{metric}": None for lang, scores in result.metrics.items() for metric in scores}
    return run


def _section_keys(section: Section) -> set[str]:
    """The store keys of a section's results (every cell of its transfer matrices: each result of it is in one)."""
    return {r.key for table in section.transfer for row in table.rows for cell in row[1:] if isinstance(cell, Cell)
            for r in cell.runs if r.key}


def check(results: list[Result], project: str | None = None) -> None:
    """A dashboard lays out W&B runs: refuse results none of which was logged to W&B (to the project)."""
    if not any(r.wandb and (project is None or r.wandb.get("project") == project) for r in results):
        raise UserError(f"report.dashboard=true lays out the W&B runs of the sweep, but none of the {len(results)} "
                        "result(s) was logged to W&B" + (f" project '{project}'" if project else "") + " (their runs had "
                        "logger=csv or logger=none). Run the sweep with W&B (logger=wandb, the default), or leave "
                        "report.dashboard=false.")


def build(name: str, project: str, entity: str | None, sections: list[Section], results: list[Result],
          runs: list[LoggedRun], report: ReportRun | None = None, wandb_dir: str | None = None) -> dict:
    """The dashboard of a report (`name`, its sections and results) from the runs W&B logged (`runs`, read from the
    run files). Every grid's run set is filtered to the groups of exactly the runs it shows."""
    resource = languages()
    made = {"eval": {r.key for r in results if r.key}, "task": {r.task_component for r in results if r.task_component},
            "lang": {k for r in results for k in [r.lang_component, *r.eval_lang_components.values()] if k}}
    mine = {job: [run for run in runs if run.job_type == job and run.project == project
                  and run.identity.get("store_key") in keys] for job, keys in made.items()}
    found = {run.identity.get("store_key") for run in mine["eval"]}
    mine["eval"] += [_from_result(r) for r in results if r.key not in found and r.wandb]
    if not mine["eval"]:
        check(results, project)
    notes: list[str] = []
    report_run = next((run for run in runs if report and run.run_id == report.run_id and run.project == project), None)
    if report is not None and report_run is None:
        notes.append(f"the report's W&B run ({report.run_id}) has no run file under {wandb_dir}: no table panels")
    tables = {k for k, kind in (report_run.summary if report_run else {}).items() if kind == "table-file"}
    images = {k for k, kind in (report_run.summary if report_run else {}).items() if kind == "image-file"}

    def report_grid(title: str, panels: list[dict]) -> list[dict]:
        if not panels or report_run is None:
            return []
        return [_grid(title, [*_filters({report_run.group}, "report"), {"key": "Name", "op": "=",
                                                                          "value": report_run.name}], panels)]

    groups = {job: sorted({run.group for run in found_runs}) for job, found_runs in mine.items()}
    blocks: list[dict] = [_text(
        f"The {len(results)} result(s) of report `{name}` and the W&B runs that made them: eval runs (job type eval) "
        f"in group(s) {', '.join(groups['eval'])}. Bars and curves group the runs by configuration (`run.combo`): the "
        "mean over seeds, their standard deviation as the error bar or band. The confidence intervals over test "
        "examples (95% bootstrap) are the `lo` / `hi` columns of the report's tables, from its run "
        f"({report_run.name if report_run else 'not logged'}). Transfer is a source tested on another language; a "
        "matrix's diagonal is in-language.")]
    for section in sections:
        task, metric, several = section.task, section.metric, sum(s.task == section.task for s in sections) > 1
        keys = _section_keys(section)
        pick = (lambda run: run.identity.get("store_key") in keys) if several else \
            (lambda run: run.identity.get("task") == task)
        evals = [run for run in mine["eval"] if pick(run)]
        only = sorted(keys) if several else None  # two settings of one task: the exact runs, by store key
        blocks += [_heading(f"{section.slug}: {metric}", 2), _text(f"Setting: {section.setting}.")]
        blocks.append(_heading("Scores by configuration and language, and transfer from each", 3))
        for lang in lang_order({run.identity.get("lang") for run in evals}, resource):
            these = [run for run in evals if run.identity.get("lang") == lang]
            logged = _logged(these)
            own = f"test/{lang}/{metric}"
            targets = lang_order({k.split("/")[1] for k in logged if k.count("/") == 2 and k.startswith("test/")
                                  and k.endswith(f"/{metric}")} - {lang}, resource)
            panels = ([_bar(f"{task} {metric}: trained and tested on {lang}", [own])] if own in logged else []) + (
                [_bar(f"{task} {metric}: trained on {lang}, tested on another language (transfer)",
                      [f"test/{t}/{metric}" for t in targets])] if targets else [])
            if panels:
                blocks.append(_grid(f"{section.slug} eval runs trained on {lang}", _filters(
                    {run.group for run in these}, "eval", task=task, lang=lang, store_key=only), panels))
        blocks += report_grid(f"{section.slug} scores with their intervals (report run)",
                              [_table(f"{task}: {section.scores.title}", section.scores.slug)]
                              if section.scores.slug in tables else [])
        matrices = [t for t in section.transfer if t.slug in tables]
        if matrices:
            blocks += [_heading("Transfer matrices: trained on (rows), tested on (columns)", 3),
                       _text("Each configuration's matrix from the report's run; its diagonal is in-language, the "
                             "other cells transfer (the bars above show each source's transfer cells).")]
            blocks += report_grid(f"{section.slug} transfer matrices (report run)", [
                *(_table(t.title, t.slug) for t in matrices),
                *({"type": "media", "title": f"{t.slug} heatmap", "keys": [f"{t.slug}-figure"]}
                  for t in matrices if f"{t.slug}-figure" in images)])
        compared = [c.table for c in section.comparisons if c.table.slug in tables]
        if compared:
            blocks += [_heading("Paired comparisons", 3), *(_text(
                f"{c.pair[0]} vs {c.pair[1]}, {'in-language' if c.scope == 'cells' else 'transfer'}: {c.summary}")
                for c in section.comparisons)]
            blocks += report_grid(f"{section.slug} comparisons (report run)", [_table(t.title, t.slug) for t in compared])

        task_keys = {r.task_component for r in results if r.key in keys and r.task_component}
        trained = [run for run in mine["task"] if run.identity.get("store_key") in task_keys]
        curves = []
        for lang in lang_order({run.identity.get("lang") for run in trained}, resource):
            these = [run for run in trained if run.identity.get("lang") == lang]
            history = _logged(these, history=True)
            x = "trainer/global_step" if "trainer/global_step" in history else "Step"
            ys = sorted(k for k in history if k == "train/loss" or k.startswith(f"val/{lang}/"))
            if ys:
                curves.append(_grid(f"{section.slug} stage 2 on {lang}", _filters(
                    {run.group for run in these}, "task", task=task, lang=lang,
                    store_key=sorted(run.identity["store_key"] for run in these) if several else None),
                    [_line(f"{task} on {lang}: {y}", x, [y]) for y in ys]))
        if curves:
            blocks += [_heading("Learning curves, stage 2 (the task part)", 3), *curves]
        costs = sorted(k for k in _logged(trained) if k.startswith("trainable_params/") or k == "train_time_s")
        cost_panels = [_bar(f"{task}: {k}", [k]) for k in costs]
        if cost_panels or section.cost.slug in tables:
            blocks.append(_heading("Cost: trainable parameters and training time", 3))
        if cost_panels:
            blocks.append(_grid(f"{section.slug} task runs", _filters(
                {run.group for run in trained}, "task", task=task,
                store_key=sorted(run.identity["store_key"] for run in trained) if several else None), cost_panels))
        blocks += report_grid(f"{section.slug} cost (report run)", [_table(section.cost.title, section.cost.slug)]
                              if section.cost.slug in tables else [])

    stage1 = []
    for lang in lang_order({run.identity.get("lang") for run in mine["lang"]}, resource):
        these = [run for run in mine["lang"] if run.identity.get("lang") == lang]
        history = _logged(these, history=True)
        kinds = [((run.config.get("combo") or {}).get("components") or {}).get("lang") or {} for run in these]
        by = STAGE1_CONFIGURATION if all("kind" in k for k in kinds) else None
        x = "trainer/global_step" if "trainer/global_step" in history else "Step"
        panels = [_line(f"stage 1 on {lang}: train/loss", x, ["train/loss"], by)] if "train/loss" in history else []
        panels += [_bar(f"stage 1 on {lang}: {k}", [k], by) for k in sorted(_logged(these)) if k.startswith("lang/")]
        if panels:
            stage1.append(_grid(f"stage 1 on {lang}", _filters({run.group for run in these}, "lang", lang=lang), panels))
    if stage1:
        blocks += [_heading("Stage 1: the language components", 2),
                   _text("Grouped by the component's kind (prompt, adapter, LoRA); the held-out scores are the "
                         "span-corruption loss and token accuracy on the corpus's held-out documents."), *stage1]

    grids = [b for b in blocks if b["type"] == "grid"]
    return {
        "version": VERSION, "title": f"{name}: configurations, transfer and cost ({project})"[:128],
        "description": f"softprompt_xl report '{name}': scores by configuration and language, transfer, learning "
                       "curves and cost, every panel reading the sweep's own runs.",
        "project": project, "entity": entity, "report": name, "groups": groups,
        "report_run": None if report_run is None else {"id": report_run.run_id, "name": report_run.name,
                                                        "group": report_run.group},
        "wandb_dir": wandb_dir, "made_from": {"results": len(results), "runs": {k: len(v) for k, v in mine.items()},
                                              "grids": len(grids), "panels": sum(len(g["panels"]) for g in grids)},
        "notes": notes, "pushed": None, "blocks": blocks,
    }


def grids(spec: dict) -> list[dict]:
    return [block for block in spec["blocks"] if block["type"] == "grid"]


def panel_keys(panel: dict) -> list[str]:
    """The W&B keys a panel reads (summary keys of bars, history keys of curves, a table's or an image's key)."""
    kind = panel["type"]
    return list(panel["metrics"] if kind == "bar" else panel["y"] if kind == "line" else
                [panel["key"]] if kind == "table" else panel["keys"])


# --- the report command's part -----------------------------------------------------------------------------------


def previous_push(folder: Path) -> dict | None:
    """What an earlier dashboard.json of this report recorded of its push (read before the report is rewritten)."""
    try:
        return json.loads((folder / FILE).read_text(encoding="utf-8")).get("pushed")
    except (OSError, ValueError, AttributeError):
        return None


def make_dashboard(spec: ReportSpec, sections: list[Section], results: list[Result], folder: Path,
                   report: ReportRun, pushed: dict | None = None) -> Path:
    """Build the dashboard from the runs under paths.wandb, write dashboard.json into the report's folder, and save it
    in W&B when logging is online."""
    made = {k for r in results for k in [r.key, r.task_component, r.lang_component, *r.eval_lang_components.values()]}
    runs = logged_runs(spec.paths.wandb, lambda run: run.run_id == report.run_id  # the rest of a file is read only for
                       or (run.identity.get("store_key") in made))              # the runs the report shows
    board = build(spec.name, report.project, spec.wandb.entity, sections, results, runs, report, str(spec.paths.wandb))
    if pushed and pushed.get("project") == board["project"] and (not board["entity"] or pushed.get("entity") == board["entity"]):
        board["pushed"] = pushed  # the W&B report saved from this report's dashboard before: the next push updates it
    path = folder / FILE
    write_json(path, board)
    made = board["made_from"]
    log.info("Dashboard written to %s: %d panels in %d grids, from %d eval, %d task and %d language run(s) of group(s) "
             "%s", path, made["panels"], made["grids"], made["runs"]["eval"], made["runs"]["task"], made["runs"]["lang"],
             ", ".join(sorted(set().union(*map(set, board["groups"].values())))))
    if str(report.mode).lower() in OFFLINE_MODES or os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES:
        log.info("W&B is offline: to see the dashboard in W&B, on a machine with network log in (`wandb login`), "
                 "upload the runs (`cd %s && wandb sync --yes`), then save it: `%s %s`", spec.paths.wandb, PUSH, path)
    else:
        log.info("Dashboard saved in W&B: %s", push(path))
    return path


# --- wandb_workspaces objects, and the push ------------------------------------------------------------------------


def _filter(item: dict) -> Any:
    from wandb_workspaces import expr

    key = expr.Config(item["key"][len("config."):]) if item["key"].startswith("config.") else expr.Metric(item["key"])
    return key.isin(list(item["value"])) if item["op"] == "in" else key == item["value"]


def _groupby(name: str | None) -> Any:
    import wandb_workspaces.reports.v2 as wr

    if name is None:
        return None
    return wr.Config(name[len("config."):]) if name.startswith("config.") else name


def _panel(panel: dict, at: tuple[int, int, int, int]) -> Any:
    import wandb_workspaces.reports.v2 as wr

    layout = wr.Layout(x=at[0], y=at[1], w=at[2], h=at[3])
    kind = panel["type"]
    if kind == "bar":
        return wr.BarPlot(title=panel["title"], metrics=list(panel["metrics"]), orientation="v",
                          groupby=_groupby(panel["groupby"]), groupby_aggfunc=panel["aggregate"],
                          groupby_rangefunc=panel["range"], layout=layout)
    if kind == "line":
        return wr.LinePlot(title=panel["title"], x=panel["x"], y=list(panel["y"]), groupby=_groupby(panel["groupby"]),
                           groupby_aggfunc=panel["aggregate"], groupby_rangefunc=panel["range"], layout=layout)
    if kind == "table":
        return wr.WeavePanelSummaryTable(table_name=panel["key"], layout=layout)
    if kind == "media":
        return wr.MediaBrowser(title=panel["title"], media_keys=list(panel["keys"]), layout=layout)
    raise ValueError(f"dashboard.json: unknown panel type {kind!r}")


def _layout(panels: list[dict]) -> list[tuple[int, int, int, int]]:
    """Charts three to a row (W&B's grid is 24 wide), tables across the whole width, images two to a row."""
    out, x, y, row_h = [], 0, 0, 0
    for panel in panels:
        w, h = {"table": (24, 10), "media": (12, 8)}.get(panel["type"], (8, 6))
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        out.append((x, y, w, h))
        x, row_h = x + w, max(row_h, h)
    return out


def to_report(spec: dict, entity: str = "") -> Any:
    """The specification as a wandb_workspaces Report, not saved. With an entity, its run sets name the project to
    read (saving looks the project up on the server); with none (""), nothing here needs the network, so the whole
    view can be serialised offline (`report._to_model()`), as the tests do."""
    import wandb_workspaces.reports.v2 as wr

    if spec.get("version") != VERSION:
        raise UserError(f"dashboard.json has version {spec.get('version')!r}; this softprompt_xl writes version "
                        f"{VERSION}. Write it again with `python -m softprompt_xl.report report.dashboard=true`.")
    blocks = []
    for block in spec["blocks"]:
        if block["type"] == "heading":
            blocks.append({1: wr.H1, 2: wr.H2, 3: wr.H3}[block["level"]](text=block["text"]))
        elif block["type"] == "text":
            blocks.append(wr.P(text=block["text"]))
        elif block["type"] == "grid":
            runset = wr.Runset(entity=entity, project=spec["project"], name=block["runset"]["name"],
                               filters=[_filter(f) for f in block["runset"]["filters"]])
            blocks.append(wr.PanelGrid(runsets=[runset], panels=[
                _panel(p, at) for p, at in zip(block["panels"], _layout(block["panels"]))]))
    return wr.Report(project=spec["project"], entity=entity, title=spec["title"], description=spec["description"],
                     blocks=blocks, width="fluid")


def _advice(spec: dict, path: Path) -> str:
    where = spec.get("wandb_dir") or "paths.wandb"
    return (f"The dashboard is saved in the W&B project '{spec['project']}' on the W&B server, which takes the network "
            "and a login: on a machine with network, `wandb login` (or set WANDB_API_KEY), upload the sweep's runs "
            f"first (`cd {where} && wandb sync --yes`: the report's run sets look the project up), then `{PUSH} {path}` "
            f"(`--entity TEAM` for a team's project). Meanwhile {path} is the dashboard's whole specification (its "
            "panels, the keys they read and their run filters), to read as it is.")


def _existing(api: Any, spec: dict, entity: str) -> Any:
    """The W&B report saved from this dashboard before: by the URL recorded at its push, else by its title."""
    import wandb_workspaces.reports.v2 as wr

    pushed = spec.get("pushed") or {}
    if pushed.get("url") and pushed.get("entity") == entity and pushed.get("project") == spec["project"]:
        return wr.Report.from_url(pushed["url"])
    for found in api.reports(f"{entity}/{spec['project']}"):
        if getattr(found, "display_name", None) == spec["title"] and getattr(found, "url", None):
            return wr.Report.from_url(found.url)
    return None


def push(path: str | Path, entity: str | None = None) -> str:
    """Save the dashboard of `path` (a dashboard.json) as a W&B report - the same one as its last push, updated - and
    record its id and URL in the file. Returns the URL."""
    path = Path(path)
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UserError(f"Could not read the dashboard specification {path} ({err}). Write it with `python -m "
                        "softprompt_xl.report report.dashboard=true` (it goes into the report's directory, "
                        "e.g. runs/reports/all/dashboard.json).") from None
    if (mode := os.environ.get("WANDB_MODE", "").lower()) in OFFLINE_MODES:
        raise UserError(f"WANDB_MODE={mode} keeps W&B offline, so the dashboard is not pushed. {_advice(spec, path)}")
    import wandb

    try:
        api = wandb.Api(timeout=30)
        entity = entity or spec.get("entity") or api.default_entity
        report = _existing(api, spec, entity)
        fresh = to_report(spec, entity)
        if report is None:
            report = fresh
        else:
            report.title, report.description, report.blocks, report.width = (
                fresh.title, fresh.description, fresh.blocks, fresh.width)
        report.save()
        url = report.url
    except UserError:
        raise
    except Exception as err:  # noqa: BLE001 - no login, no network, no such project: all end in the same advice
        first = str(err).splitlines()[0] if str(err) else ""
        raise UserError(f"Could not save the dashboard in W&B ({type(err).__name__}: {first}). "
                        f"{_advice(spec, path)}") from None
    spec["pushed"] = {"entity": entity, "project": spec["project"], "id": report.id, "url": url,
                      "at": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_json(path, spec)
    return url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m softprompt_xl.report.dashboard", description=(
        "Save a dashboard specification (dashboard.json, written by `python -m softprompt_xl.report "
        "report.dashboard=true`) as a W&B report, updating the one an earlier push saved."))
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("push", help="save it in W&B (online, logged in)")
    send.add_argument("path", type=Path, help="the dashboard.json, e.g. runs/reports/all/dashboard.json")
    send.add_argument("--entity", default=None, help="the W&B entity (user or team); default: the file's, else yours")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        print(f"Dashboard saved in W&B: {push(args.path, args.entity)}", flush=True)
    except UserError as err:
        print(f"Error: {err}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
