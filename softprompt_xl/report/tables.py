"""Results into tables: per task a configuration x language table, per task and configuration a source x target
transfer matrix, per task the cost of each configuration.

Results are grouped by the comparison spec each one records (`pipeline/keys.comparison_spec`): a section holds one task
under one setting (backbone, data, task budget), a row one configuration (combo and hyperparameters), a cell one
language - so only seeds are ever averaged, never runs that differ in anything else. A cell without a result
stays empty (None), never 0. A section names its backbone by the config id its results record (`tiny`, `mt0_base`),
not by the weights' identity in the spec (a built directory's hashed name says nothing to a reader);
report/backbones.py sets the sections of several backbones side by side.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from omegaconf import OmegaConf

from softprompt_xl.config import group_options, load_option, stable_hash
from softprompt_xl.errors import UserError
from softprompt_xl.pipeline.records import Result

# Paper order: baselines, task part alone, then language part + task part (prompt, adapter, LoRA).
COMBO_ORDER = ["zero_shot", "ta", "tp", "tl", "la_ta", "la_tp", "la_tl", "lp_ta", "lp_tp", "lp_tl",
               "ll_ta", "ll_tp", "ll_tl", "full_ft"]
LOWER_IS_BETTER = {"unparsed"}


@dataclass
class Cell:
    """One table cell: a score per seed. Shown as mean ± std (std only with two seeds or more)."""

    values: list[float]
    show_n: bool = False  # the cell has fewer seeds than its row: show its count
    runs: list[Result] = field(default_factory=list)  # a score cell's results, one per value (seed)
    lang: str | None = None  # a score cell's evaluation language
    ci: tuple[float, float] | None = None  # bootstrap interval over test examples (report/comparisons.py)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None

    @property
    def n(self) -> int:
        return len(self.values)


@dataclass
class Table:
    slug: str
    title: str
    header: list[str]  # the label column's name, then one per column
    rows: list[list[Any]]  # a label, then per column a Cell, a number, a string, or None (missing)
    best: set[tuple[int, int]] = field(default_factory=set)  # (row, column index into the row) marked best
    # a transfer matrix's diagonal (trained and tested on the same language): in-language, not transfer; shown marked
    in_language: set[tuple[int, int]] = field(default_factory=set)


@dataclass
class Comparison:
    """Two configurations cell by cell (report.compare): a table of differences and its counts."""

    table: Table
    summary: str  # "LP+TA better in 9 of 24 cells at p<0.05, worse in 2, no difference in 13"
    pair: tuple[str, str] = ("", "")  # the two configurations' labels
    scope: str = "cells"  # "cells" (in-language, per language) or "transfer cells" (trained on -> tested on)
    counts: dict[str, int] = field(default_factory=dict)  # better / worse / no difference / not compared


class PValue(float):
    """A p-value: shown with its own precision (a score's one decimal would print 0.0)."""


@dataclass
class Section:
    """One task under one setting: its score table, cost table and transfer matrices."""

    task: str
    slug: str
    metric: str
    setting: str  # one line describing the setting
    scores: Table
    cost: Table
    transfer: list[Table]
    missing: list[str]  # "LP+TA sk": cells of the score table without a result
    comparisons: list[Comparison] = field(default_factory=list)
    backbone: str = ""  # the backbone's config id (ids, joined by "/", should results of one setting record several)
    shared: dict = field(default_factory=dict)  # the setting (spec["shared"]) every result of the section records
    langs: list[str] = field(default_factory=list)  # the score table's language columns, in their order
    configs: list[dict] = field(default_factory=list)  # per score table row, its configuration (spec["combo"])
    transfer_from: str | None = None  # report.transfer_from: what the score table's cells are


def combo_label(combo: str) -> str:
    return {"zero_shot": "zero-shot", "full_ft": "full FT"}.get(combo, combo.upper().replace("_", "+"))


def languages() -> dict[str, str]:
    """code -> resource ("high" / "low") of every configured language, from conf/lang/."""
    return {code: str(load_option("lang", code).get("resource", "high")) for code in group_options("lang")}


def lang_order(codes: set[str], resource: dict[str, str]) -> list[str]:
    # High-resource languages first (English leading, as the transfer source of the paper), then the low ones.
    return sorted(codes, key=lambda c: (resource.get(c) == "low", c != "en", c))


def primary_metric(spec: dict) -> str:
    """The score that selected the best validation step of the task's runs (its task's config is in the spec)."""
    from softprompt_xl.data.tasks import get_task

    return get_task(OmegaConf.create(spec["shared"]["task_config"])).primary_metric


def build(results: list[Result], metric: str | None = None, transfer_from: str | None = None) -> tuple[list[Section], list[str]]:
    """Sections (task x setting) from complete results, and notes on what was set aside."""
    resource, notes = languages(), []
    # One score per (setting, configuration, source, target, seed): the newest result wins (an older one of the
    # same configuration and seed differs only in something the comparison does not see, e.g. edited data).
    points: dict[tuple, tuple[str, float, Result]] = {}
    superseded, lacking = 0, {}
    for result in sorted(results, key=lambda r: r.created or ""):
        spec = result.spec
        task_metric = metric or primary_metric(spec)
        for target, scores in result.metrics.items():
            if task_metric not in scores:
                lacking.setdefault(result.task, set()).update(scores)
                continue
            at = (result.task, stable_hash(spec["shared"]), stable_hash(spec["combo"]), result.lang, target,
                  result.seed)
            superseded += at in points
            points[at] = (task_metric, float(scores[task_metric]), result)
    if not points:
        raise UserError(f"No result has the metric '{metric}' (report.metric): they have "
                        f"{', '.join(sorted(set().union(*lacking.values())))}. Choose one of those, or drop report.metric "
                        "to show each task's primary metric.")
    trained_on = {at[3] for at in points}
    if transfer_from is not None and transfer_from not in trained_on:
        raise UserError(f"report.transfer_from={transfer_from}: no result was trained on '{transfer_from}' (they were "
                        f"trained on {', '.join(sorted(trained_on))}). Choose one of those, or drop it for the "
                        "in-language tables.")
    notes += [f"{task}: no '{metric}' score in some results (they have {', '.join(sorted(names))}); left out"
              for task, names in lacking.items()]
    if superseded:
        notes.append(f"{superseded} score(s) superseded by a newer result of the same configuration and seed")

    by_section: dict[tuple[str, str], dict[tuple, tuple[str, float, Result]]] = {}
    for at, value in points.items():
        by_section.setdefault(at[:2], {})[at] = value
    sections = []
    for task in sorted({t for t, _ in by_section}):
        settings = {s: next(iter(by_section[(task, s)].values()))[2].spec["shared"] for t, s in by_section if t == task}
        names = {s: backbone_name(r for _, _, r in by_section[(task, s)].values()) for s in settings}
        compared = _compared_settings(settings, names)
        for setting_id, shared in sorted(settings.items(), key=lambda kv: (names[kv[0]], str(kv[1].get("backbone")))):
            slug = task if len(settings) == 1 else f"{task}-{setting_id[:6]}"
            sections.append(_section(task, slug, shared, _differences(compared[setting_id], compared.values()),
                                     by_section[(task, setting_id)], transfer_from, resource, names[setting_id]))
    return sections, notes


def backbone_name(results: Any) -> str:
    """The backbone of results as a reader knows it: the config id they record (`tiny`, `qwen2_5_0_5b`)."""
    return "/".join(sorted({r.backbone for r in results})) or "?"


def _compared_settings(settings: dict[str, dict], names: dict[str, str]) -> dict[str, dict]:
    """The settings as a title compares them: where each backbone id names one backbone identity, the id in the
    title says which backbone, and its identity (a hub name and revision, or a built directory's hashed name) would
    only repeat it unreadably in the brackets; where one id names two identities (two revisions, two builds), the
    identity is what tells them apart, so it stays."""
    pairs = {(names[s], stable_hash(shared.get("backbone"))) for s, shared in settings.items()}
    if len(pairs) == len({n for n, _ in pairs}) == len({b for _, b in pairs}):
        return {s: {k: v for k, v in shared.items() if k != "backbone"} for s, shared in settings.items()}
    return settings


def mode(transfer_from: str | None) -> str:
    """What a score table's cells are: in-language scores, or transfer from one language."""
    return ("in-language (trained and tested on each language)" if transfer_from is None
            else f"trained on {transfer_from}, tested on each language")


def _section(task: str, slug: str, shared: dict, differs: str, points: dict, transfer_from: str | None,
             resource: dict[str, str], backbone: str) -> Section:
    metric = next(iter(points.values()))[0]
    configs: dict[str, Result] = {}  # config id -> a result of it
    for (_, _, config, *_), (_, _, result) in points.items():
        configs.setdefault(config, result)
    order = sorted(configs, key=lambda c: (_combo_rank(configs[c].combo), stable_hash(configs[c].spec["combo"])))
    labels = _row_labels({c: configs[c] for c in order})

    def cells(config: str, source_of) -> dict[str, Cell]:
        found: dict[str, Cell] = {}
        for (_, _, c, source, target, _), (_, value, result) in points.items():
            if c == config and source == source_of(target):
                cell = found.setdefault(target, Cell([], lang=target))
                cell.values.append(value)
                cell.runs.append(result)
        return found

    source_of = (lambda target: target) if transfer_from is None else (lambda target: transfer_from)
    row_cells = {c: cells(c, source_of) for c in order}
    langs = lang_order({lang for found in row_cells.values() for lang in found}, resource)
    low = [lang for lang in langs if resource.get(lang) == "low"]
    lower = metric in LOWER_IS_BETTER
    header = ["configuration", "seeds", *langs, "avg"] + (["avg low"] if low and len(low) < len(langs) else [])
    rows, missing = [], []
    for config in order:
        found = row_cells[config]
        seeds = max((cell.n for cell in found.values()), default=0)
        for cell in found.values():
            cell.show_n = cell.n != seeds
        row = [labels[config], seeds, *(found.get(lang) for lang in langs), _average(found, langs)]
        if len(header) > len(row):
            row.append(_average(found, low))
        missing += [f"{labels[config]} {lang}" for lang in langs if lang not in found]
        rows.append(row)
    scores = Table(slug=f"{slug}/scores", header=header, rows=rows, best=_best(rows, 2, lower),
                   title=f"{task} on {backbone} — {metric}, {mode(transfer_from)}{differs}")

    transfer = []
    for config in order:
        matrix: dict[tuple[str, str], Cell] = {}
        for (_, _, c, source, target, _), (_, value, result) in points.items():
            if c == config:
                cell = matrix.setdefault((source, target), Cell([], lang=target))
                cell.values.append(value)
                cell.runs.append(result)
        sources = lang_order({s for s, _ in matrix}, resource)
        targets = lang_order({t for _, t in matrix}, resource)
        combo = configs[config].combo
        name = combo if labels[config] == combo_label(combo) else f"{combo}-{config[:6]}"
        transfer.append(Table(
            slug=f"{slug}/transfer-{name}", title=f"{labels[config]}: trained on (rows), tested on (columns), {metric}"
            + ("; the diagonal (in italics) is in-language, not transfer" if set(sources) & set(targets) else ""),
            header=["trained on", *targets],
            rows=[[s, *(matrix.get((s, t)) for t in targets)] for s in sources],
            in_language={(i, j + 1) for i, s in enumerate(sources) for j, t in enumerate(targets) if s == t}))

    return Section(task=task, slug=slug, metric=metric, setting=_describe(shared, backbone) + differs, scores=scores,
                   cost=_cost(slug, f"{task} on {backbone}", order, labels, points), transfer=transfer, missing=missing,
                   backbone=backbone, shared=shared, langs=langs, configs=[configs[c].spec["combo"] for c in order],
                   transfer_from=transfer_from)


def _cost(slug: str, what: str, order: list[str], labels: dict[str, str], points: dict) -> Table:
    """Trainable parameters and training time per configuration (over its runs: languages and seeds)."""
    runs: dict[str, dict[str, Result]] = {c: {} for c in order}
    for (_, _, config, *_), (_, _, result) in points.items():
        runs[config][result.key] = result
    rows = []
    for config in order:
        results = list(runs[config].values())
        task_params = {sum(r.trainable_params.values()) for r in results}
        lang_params = {r.lang_component_params for r in results if r.lang_component}
        # Nothing trained (zero-shot) took no training time; a time the result lacks is missing, not zero.
        times = [0.0 if sum(r.trainable_params.values()) == 0 else r.train_time_s for r in results]
        lang_times = {r.lang_component: r.lang_train_time_s for r in results if r.lang_component}
        rows.append([labels[config], _one(task_params), _one(lang_params) if lang_params else 0,
                     _cell(times), _cell(list(lang_times.values())) if lang_times else 0.0, len(results)])
    return Table(slug=f"{slug}/cost", title=f"{what} — trainable parameters and training time per configuration",
                 header=["configuration", "task params", "language params", "task training (s)",
                         "language training (s)", "runs"], rows=rows)


def _one(values: set) -> Any:
    """The value when every run agrees, a range when they differ, None when unknown."""
    known = sorted(v for v in values if v is not None)
    if not known or None in values:
        return None
    return known[0] if len(known) == 1 else f"{known[0]:,}–{known[-1]:,}"


def _cell(values: list) -> Cell | float | None:
    if not values or None in values:
        return None
    return 0.0 if not any(values) else Cell([float(v) for v in values])  # nothing trained: 0, not 0.0 ± 0.0


def _average(found: dict[str, Cell], langs: list[str]) -> float | None:
    """Mean of the cell means, only when every language has one: an average over fewer is not comparable."""
    if not langs or any(lang not in found for lang in langs):
        return None
    return statistics.fmean(found[lang].mean for lang in langs)


def _best(rows: list[list], first: int, lower: bool) -> set[tuple[int, int]]:
    best = set()
    for col in range(first, len(rows[0]) if rows else 0):
        values = {i: _value(row[col]) for i, row in enumerate(rows) if _value(row[col]) is not None}
        if len(values) > 1:
            top = (min if lower else max)(values.values())
            best |= {(i, col) for i, v in values.items() if round(v, 6) == round(top, 6)}
    return best


def _value(cell: Any) -> float | None:
    return cell.mean if isinstance(cell, Cell) else cell if isinstance(cell, (int, float)) else None


def _combo_rank(combo: str) -> tuple[int, str]:
    return (COMBO_ORDER.index(combo) if combo in COMBO_ORDER else len(COMBO_ORDER), combo)


def _row_labels(configs: dict[str, Result]) -> dict[str, str]:
    """Paper labels (LP+TA); a combo run with two sets of hyperparameters gets what differs in brackets."""
    labels = {}
    for config, result in configs.items():
        same = [r.spec["combo"] for r in configs.values() if r.combo == result.combo]
        labels[config] = combo_label(result.combo) + _differences(result.spec["combo"], same, brackets=True)
    return labels


def _flat(spec: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(spec, dict):
        return {prefix.rstrip("."): spec}
    return {k: v for key, value in spec.items() for k, v in _flat(value, f"{prefix}{key}.").items()}


def _differences(spec: dict, others: Any, brackets: bool = False, limit: int = 4) -> str:
    """What sets `spec` apart from the others it is shown beside ('' when it is alone)."""
    others = list(others)
    if len(others) < 2:
        return ""
    flat, flats = _flat(spec), [_flat(o) for o in others]
    keys = sorted(k for k in set().union(*flats) if len({repr(f.get(k)) for f in flats}) > 1)
    shown = [f"{k}={str(flat.get(k))[:40]}" for k in keys[:limit]] + (["…"] if len(keys) > limit else [])
    return f" ({', '.join(shown)})" if brackets else f" [{', '.join(shown)}]"


def _describe(shared: dict, backbone: str) -> str:
    stage, weights = shared.get("stage") or {}, shared["backbone"].get("name")
    return (f"backbone {backbone}" + (f" ({weights})" if weights != backbone else "")
            + f", data {shared['data'].get('name')}"
            + (" (own files)" if "files" in shared["data"] else "")
            + f", task stage {stage.get('max_steps')} steps at batch {stage.get('batch_size')}")
