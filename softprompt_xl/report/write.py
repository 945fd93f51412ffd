"""The report on disk: `report.md` (every table, the figures, what is missing or failed), per section the
tables as CSV and LaTeX and the figures as PNG, and per task run on several backbones its side-by-side table
(`<task>-backbones.{csv,tex}`, report/backbones.py). The whole directory is built aside and swapped in by one rename,
so a reader sees the previous report or the new one, never a mix, and no file of an older report lingers."""

from __future__ import annotations

import time
from pathlib import Path

from softprompt_xl.runtime.atomic import atomic_dir
from softprompt_xl.report import plots, render
from softprompt_xl.report.backbones import SideBySide
from softprompt_xl.report.comparisons import brief
from softprompt_xl.report.results import Selection
from softprompt_xl.report.tables import Section


def write_report(folder: Path, name: str, selection: Selection, sections: list[Section], notes: list[str],
                 alpha: float, across: list[SideBySide] = ()) -> str:
    """Write everything under `folder` (replacing an earlier report of the same name); return the Markdown.
    `alpha`: report.alpha, the level the comparisons' counts use; `across`: the side-by-side tables of the
    configurations run on several backbones."""
    filters = " ".join(f"{k}={v}" for k, v in selection.filters.items()) or "none"
    lines = [
        f"# Report `{name}`", "",
        f"{len(selection.results)} finished result(s) from the {selection.source}; filters: {filters}; "
        f"written {time.strftime('%Y-%m-%d %H:%M')}.", "",
        "Cells: mean ± std over seeds (std from two seeds on), then [lo, hi], the bootstrap confidence interval of "
        "that mean over test examples (where the stored predictions allow it); `seeds` = seeds per configuration, "
        "(n) after a cell that has fewer; **bold** = best in the column; — = no result (missing, not zero). `avg` is "
        "the mean over the languages, `avg low` over the low-resource ones; either is missing when one of its "
        "languages is. Comparisons: paired over the same test examples and seeds; p-values are two-sided and not "
        "corrected for the number of cells compared.",
    ]
    if any(section.comparisons for section in sections):
        lines += ["", "## Comparisons in brief", "", *brief(sections, alpha)]
    files: dict[str, bytes | str] = {}
    for section in sections:
        lines += ["", f"## {section.scores.title}", "", f"Setting: {section.setting}.", "",
                  render.markdown(section.scores), "", f"![{section.task}]({section.slug}/scores.png)", "",
                  f"### {section.cost.title}", "", render.markdown(section.cost), "",
                  "### Transfer: trained on (rows) → tested on (columns)"]
        files[f"{section.slug}/scores.png"] = plots.scores_plot(section.scores, section.metric)
        for table in [section.scores, section.cost, *section.transfer]:
            files[f"{table.slug}.csv"] = render.csv_text(table)
            files[f"{table.slug}.tex"] = render.latex(table)
        for table in section.transfer:
            files[f"{table.slug}.png"] = plots.heatmap(table)
            lines += ["", f"#### {table.title}", "", render.markdown(table), "", f"![heatmap]({table.slug}.png)"]
        if section.comparisons:
            lines += ["", "### Comparisons"]
        for comparison in section.comparisons:
            files[f"{comparison.table.slug}.csv"] = render.csv_text(comparison.table)
            files[f"{comparison.table.slug}.tex"] = render.latex(comparison.table)
            lines += ["", f"#### {comparison.table.title}", "", f"**{comparison.summary}**", "",
                      render.markdown(comparison.table)]
    if across:
        lines += ["", "## Across backbones", "",
                  "Each configuration on each backbone, the cells those of the backbones' own tables above. A "
                  "configuration is the same on two backbones when its combo, the kinds of its parts and whether its "
                  "language part was trained or imported agree, and so do the hyperparameters varied on one backbone "
                  "(in brackets); learning rates and budgets the backbone config sets are the backbone's. A backbone's "
                  "`avg` is over every language of the table."]
    for side in across:
        files[f"{side.table.slug}.csv"] = render.csv_text(side.table)
        files[f"{side.table.slug}.tex"] = render.latex(side.table)
        lines += ["", f"### {side.table.title}", "",
                  "Backbones: " + "; ".join(f"{s.backbone} ({s.slug}/)" for s in side.sections) + ".", "",
                  render.markdown(side.table)]
    missing = [f"- {s.slug}: no result for {', '.join(s.missing)}" for s in sections if s.missing]
    missing += [f"- {side.table.slug}: no result for {', '.join(side.missing)}" for side in across if side.missing]
    lines += ["", "## Missing and failed runs", ""]
    lines += missing or ["- every cell of the score tables has a result"]
    if selection.missing:
        lines += [f"- planned by the experiment, no result yet ({len(selection.missing)}): "
                  + ", ".join(selection.missing)]
    lines += [f"- failed: {f}" for f in selection.failed]
    lines += [f"- note: {n}" for n in notes]
    text = "\n".join(lines) + "\n"
    files["report.md"] = text
    with atomic_dir(folder) as tmp:
        for relative, content in files.items():
            path = tmp / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
    return text
