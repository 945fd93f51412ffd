"""A table as Markdown (best bold, a transfer matrix's in-language diagonal italic), LaTeX (booktabs, best \\textbf,
the diagonal \\textit) and flat rows (CSV, W&B Tables: one numeric column per mean, std and seed count, and per end
of the confidence interval, so the numbers can be read back without parsing "85.3 ± 1.2 [83.0, 87.4]"). A missing
cell is "—" / "--" / empty: never 0."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

from softprompt_xl.report.tables import Cell, PValue, Table

MISSING = "—"


def _text(value: Any, latex: bool = False) -> str:
    if value is None:
        return "--" if latex else MISSING
    if isinstance(value, Cell):
        pm = " $\\pm$ " if latex else " ± "
        text = f"{value.mean:.1f}" + (f"{pm}{value.std:.1f}" if value.std is not None else "")
        if value.ci is not None:  # the interval over test examples, after the spread over seeds
            interval = f"[{value.ci[0]:.1f}, {value.ci[1]:.1f}]"
            text += f" {{\\scriptsize {interval}}}" if latex else f" {interval}"
        return text + (f" ({value.n})" if value.show_n else "")
    if isinstance(value, PValue):
        return ("$<$0.001" if latex else "<0.001") if value < 0.001 else f"{value:.3f}"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.1f}"
    return _escape(str(value)) if latex else str(value)


def markdown(table: Table) -> str:
    lines = ["| " + " | ".join(table.header) + " |", "|" + "---|" + "---:|" * (len(table.header) - 1)]
    for i, row in enumerate(table.rows):
        cells = [f"**{_text(v)}**" if (i, j) in table.best else f"*{_text(v)}*" if (i, j) in table.in_language
                 else _text(v) for j, v in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def latex(table: Table) -> str:
    def line(cells: list[str]) -> str:
        return " & ".join(cells) + r" \\"

    body = [line([f"\\textbf{{{_text(v, True)}}}" if (i, j) in table.best else f"\\textit{{{_text(v, True)}}}"
                  if (i, j) in table.in_language else _text(v, True) for j, v in enumerate(row)])
            for i, row in enumerate(table.rows)]
    return "\n".join([
        f"% {table.title}", "% needs \\usepackage{booktabs}",
        r"\begin{tabular}{l" + "r" * (len(table.header) - 1) + "}", r"\toprule",
        line([_escape(h) for h in table.header]), r"\midrule", *body, r"\bottomrule", r"\end{tabular}", "",
    ])


def flat(table: Table) -> tuple[list[str], list[list[Any]]]:
    """Columns and rows of plain values: a column holding cells becomes `<name>`, `<name> std`, `<name> n`, and
    `<name> lo`, `<name> hi` when one of its cells has a confidence interval."""
    cell_columns = {j for row in table.rows for j, v in enumerate(row) if isinstance(v, Cell)}
    ci_columns = {j for row in table.rows for j, v in enumerate(row) if isinstance(v, Cell) and v.ci is not None}
    columns = []
    for j, name in enumerate(table.header):
        columns += [name, f"{name} std", f"{name} n"] if j in cell_columns else [name]
        columns += [f"{name} lo", f"{name} hi"] if j in ci_columns else []
    rows = []
    for row in table.rows:
        values = []
        for j, v in enumerate(row):
            if j in cell_columns:
                values += [round(v.mean, 4), None if v.std is None else round(v.std, 4), v.n] if isinstance(v, Cell) \
                    else [v, None, 0 if v is None else None]  # missing: no seed; a plain number: no count
                if j in ci_columns:
                    values += [round(e, 4) for e in v.ci] if isinstance(v, Cell) and v.ci else [None, None]
            else:
                values.append(round(v, 4) if isinstance(v, float) else v)
        rows.append(values)
    return columns, rows


def csv_text(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns, rows = flat(table)
    writer.writerow(columns)
    writer.writerows([["" if v is None else v for v in row] for row in rows])
    return out.getvalue()


def _escape(text: str) -> str:
    special = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
               "}": r"\}", "—": "--", "–": "--"}
    return re.sub("|".join(re.escape(c) for c in special), lambda m: special[m.group()], text)
