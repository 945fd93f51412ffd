"""Confidence intervals on the score cells, and paired comparisons of two configurations (report.compare), from
the test predictions the store keeps beside each result: the task rescores them per example
(`task.example_stats`), and report/resampling.py resamples those statistics.

Examples are matched by their id (the n-th occurrence of an id with the n-th, should a test set repeat one), so a
cell's seeds and two configurations are compared on exactly the same examples. A cell one of whose results has
no predictions (stored before they were kept, or read from W&B) gets no interval and no comparison.
"""

from __future__ import annotations

import json
from typing import Any, Callable

from omegaconf import OmegaConf

from softprompt_xl.config import stable_hash
from softprompt_xl.data.tasks import get_task
from softprompt_xl.data.tasks.metrics import ExampleStats
from softprompt_xl.errors import UserError
from softprompt_xl.report.resampling import Settings, interval, paired
from softprompt_xl.report.tables import LOWER_IS_BETTER, Cell, Comparison, PValue, Section, Table, combo_label
from softprompt_xl.pipeline.records import Predictions, Result

TOLERANCE = 1e-6  # a rescored score further than this from the stored one is reported


class Rescorer:
    """Per-example statistics of each (result, evaluation language), from its predictions, computed once."""

    def __init__(self, read: Callable[[Result], Predictions | None]):
        self.read = read
        self._predictions: dict[int, Predictions | None] = {}
        self._stats: dict[tuple[int, str], tuple[list[tuple[str, int]], ExampleStats] | None] = {}
        self._tasks: dict[str, Any] = {}
        self.without: set[str] = set()  # results without predictions (their names)
        self.mismatched: list[str] = []

    def stats(self, result: Result, lang: str) -> tuple[list[tuple[str, int]], ExampleStats] | None:
        at = (id(result), lang)
        if at not in self._stats:
            if id(result) not in self._predictions:
                self._predictions[id(result)] = self.read(result)
            rows = (self._predictions[id(result)] or {}).get(lang)
            if rows is None:
                self.without.add(f"{result.name(' ')} (seed {result.seed})")
                self._stats[at] = None
            else:
                spec = result.spec["shared"]["task_config"]
                task = self._tasks.setdefault(stable_hash(spec), get_task(OmegaConf.create(spec)))
                seen: dict[str, int] = {}
                keys = []
                for row in rows:
                    name = json.dumps(row["id"])
                    keys.append((name, seen.get(name, 0)))
                    seen[name] = seen.get(name, 0) + 1
                stats = task.example_stats([r["prediction"] for r in rows], [r["references"] for r in rows], lang)
                self._stats[at] = (keys, stats)
                for metric, value in stats.score().items():
                    stored = result.metrics.get(lang, {}).get(metric)
                    if stored is not None and abs(stored - value) > TOLERANCE:
                        self.mismatched.append(f"{result.name(' ')} seed {result.seed} {lang} {metric}: "
                                               f"stored {stored:.4f}, rescored {value:.4f}")
        return self._stats[at]

    def aligned(self, runs: list[Result], lang: str) -> list[ExampleStats] | None:
        """The statistics of `runs` on `lang`, rows matched by example id; None if one has no predictions or
        they share no example."""
        found = [self.stats(r, lang) for r in runs]
        if not found or any(f is None for f in found):
            return None
        common = set(found[0][0]).intersection(*(set(keys) for keys, _ in found[1:]))
        order = [k for k in found[0][0] if k in common]
        if not order:
            return None
        out = []
        for keys, stats in found:
            row = {k: i for i, k in enumerate(keys)}
            out.append(stats.take([row[k] for k in order]))
        return out


def annotate(sections: list[Section], read: Callable[[Result], Predictions | None], report: Any) -> list[str]:
    """Set the interval of every score and transfer cell, and each section's comparisons; return notes."""
    settings = Settings(float(report.confidence), int(report.resamples), int(report.seed))
    if settings.resamples <= 0:
        return ["report.resamples=0: no confidence intervals, no comparisons"]
    pair = list(report.compare or [])
    if len(pair) not in (0, 2):
        raise UserError(f"report.compare={pair} names {len(pair)} combo(s): it takes two, the configuration "
                        "compared and the one it is compared against (e.g. report.compare=[lp_ta,la_ta]), or [] for "
                        "no comparison.")
    rescorer = Rescorer(read)
    for section in sections:
        for table in [section.scores, *section.transfer]:
            for cell in (v for row in table.rows for v in row if isinstance(v, Cell) and v.lang):
                runs = rescorer.aligned(cell.runs, cell.lang)
                if runs is not None and section.metric in runs[0].metrics(runs[0].values.sum(axis=0)):
                    found = interval(runs, section.metric, settings)
                    cell.ci = (found.lo, found.hi)
        if pair:
            section.comparisons = _compare(section, pair, rescorer, settings, float(report.alpha))
    notes = []
    if pair and not any(s.comparisons for s in sections):
        notes.append(f"report.compare={','.join(pair)}: no section has results of both, so nothing is compared")
    if rescorer.without:
        notes.append(f"{len(rescorer.without)} result(s) have no stored test predictions (stored before they were "
                     "kept, damaged - named in a warning -, or read from W&B): their cells have no confidence interval "
                     "and are not compared - "
                     + ", ".join(sorted(rescorer.without)[:8]) + (", …" if len(rescorer.without) > 8 else ""))
    notes += [f"rescoring the stored predictions does not give the stored score: {m}" for m in rescorer.mismatched[:8]]
    return notes


def _combo(row: list) -> str | None:
    return next((v.runs[0].combo for v in row[1:] if isinstance(v, Cell) and v.runs), None)


def _seed_pairs(a: Cell, b: Cell) -> tuple[list[Result], list[Result], str]:
    """Runs paired by seed value where both cells have it; otherwise in seed order, as many as the fewer."""
    by_a, by_b = {r.seed: r for r in a.runs}, {r.seed: r for r in b.runs}
    common = sorted(set(by_a) & set(by_b))
    if common:
        return [by_a[s] for s in common], [by_b[s] for s in common], ",".join(map(str, common))
    ra, rb = sorted(a.runs, key=lambda r: r.seed), sorted(b.runs, key=lambda r: r.seed)
    n = min(len(ra), len(rb))
    return ra[:n], rb[:n], " ".join(f"{x.seed}/{y.seed}" for x, y in zip(ra[:n], rb[:n]))


def _compare(section: Section, pair: list[str], rescorer: Rescorer, settings: Settings, alpha: float) -> list[Comparison]:
    """`pair` cell by cell: in the score table (per language, each pair of rows of the two combos), and in their
    transfer matrices (per trained-on -> tested-on cell, tested on another language)."""
    table, metric = section.scores, section.metric
    langs = [(j, h) for j, h in enumerate(table.header) if j >= 2 and not h.startswith("avg")]
    rows_a = [row for row in table.rows if _combo(row) == pair[0]]
    rows_b = [row for row in table.rows if _combo(row) == pair[1]]
    out = []
    for row_a in rows_a:
        for row_b in rows_b:
            label_a, label_b = str(row_a[0]), str(row_b[0])
            name = "-".join(p if label == combo_label(p) else f"{p}{i}" for p, label, i in
                            ((pair[0], label_a, rows_a.index(row_a)), (pair[1], label_b, rows_b.index(row_b))))
            cells = [(lang, row_a[j], row_b[j]) for j, lang in langs]
            out.append(_comparison(cells, metric, label_a, label_b, rescorer, settings, alpha,
                                   slug=f"{section.slug}/compare-{name}", what=f"{metric} per language"))
    matrices = {_combo(t.rows[0]) if t.rows else None: t for t in section.transfer}
    a, b = matrices.get(pair[0]), matrices.get(pair[1])
    if a is not None and b is not None:
        # Transfer is to another language: the diagonal (trained and tested on one language) is the in-language
        # comparison above, not a transfer cell; a sweep without any has no transfer comparison.
        cell_b = {(row[0], target): v for row in b.rows for target, v in zip(b.header[1:], row[1:])}
        crossing = [(f"{row[0]} → {target}", v, cell_b.get((row[0], target))) for row in a.rows
                    for target, v in zip(a.header[1:], row[1:]) if isinstance(v, Cell) and target != row[0]]
        if crossing:
            label_a, label_b = combo_label(pair[0]), combo_label(pair[1])
            out.append(_comparison(crossing, metric, label_a, label_b, rescorer, settings, alpha,
                                   cells_are="transfer cells", slug=f"{section.slug}/compare-transfer-{pair[0]}-{pair[1]}",
                                   what=f"transfer, {metric} trained on → tested on another language"))
    return out


def _comparison(cells: list[tuple[str, Any, Any]], metric: str, label_a: str, label_b: str, rescorer: Rescorer,
                settings: Settings, alpha: float, slug: str, what: str, cells_are: str = "cells") -> Comparison:
    """(name, cell of a, cell of b) compared one by one, each on its runs' test examples in the cell's language."""
    lower = metric in LOWER_IS_BETTER
    lines, counts = [], {"better": 0, "worse": 0, "no difference": 0, "not compared": 0}
    for name, a, b in cells:
        runs = None
        if isinstance(a, Cell) and isinstance(b, Cell):
            runs_a, runs_b, seeds = _seed_pairs(a, b)
            runs = rescorer.aligned([*runs_a, *runs_b], a.lang)
        if runs is None:
            counts["not compared"] += 1
            lines.append([name, None, None, None, None, None, None, "not compared", ""])
            continue
        k = len(runs) // 2
        found = paired(runs[:k], runs[k:], metric, settings)
        ahead = found.difference < 0 if lower else found.difference > 0
        verdict = "no difference" if found.p >= alpha else "better" if ahead else "worse"
        counts[verdict] += 1
        mean = lambda rs: sum(r.score()[metric] for r in rs) / len(rs)  # noqa: E731
        lines.append([name, mean(runs[:k]), mean(runs[k:]), found.difference, found.lo, found.hi,
                      PValue(found.p), verdict, seeds])
    title = (f"{label_a} vs {label_b}: {what}, difference with its {100 * settings.confidence:g}% paired bootstrap "
             "interval and approximate-randomisation p (two-sided, not corrected for multiple comparisons)")
    header = ["language" if cells_are == "cells" else "trained on → tested on", label_a, label_b, "difference", "lo",
              "hi", "p", "verdict", "seeds"]
    return Comparison(table=Table(slug=slug, title=title, header=header, rows=lines), pair=(label_a, label_b),
                      summary=_summary(label_a, counts, cells_are, alpha), scope=cells_are, counts=counts)


def _summary(label: str, counts: dict[str, int], cells_are: str, alpha: float) -> str:
    tested = counts["better"] + counts["worse"] + counts["no difference"]
    return (f"{label} better in {counts['better']} of {tested} {cells_are} at p<{alpha:g}, worse in "
            f"{counts['worse']}, no difference in {counts['no difference']}"
            + (f" ({counts['not compared']} cell(s) not compared: no predictions on one side)"
               if counts["not compared"] else ""))


def brief(sections: list[Section], alpha: float) -> list[str]:
    """Every section's comparisons in one line per pair and scope, counted over all tasks, then per task."""
    totals: dict[tuple[tuple[str, str], str], dict[str, int]] = {}
    for section in sections:
        for c in section.comparisons:
            total = totals.setdefault((c.pair, c.scope), dict.fromkeys(c.counts, 0))
            for k, v in c.counts.items():
                total[k] += v
    lines = [f"- **{a} vs {b}, {'in-language' if scope == 'cells' else 'transfer'}, all tasks: "
             f"{_summary(a, counts, scope, alpha)}**" for ((a, b), scope), counts in totals.items()]
    return lines + [f"- {section.task}: {c.summary}" for section in sections for c in section.comparisons]
