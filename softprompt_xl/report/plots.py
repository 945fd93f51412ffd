"""PNG figures of the tables: per task the scores by language (one bar group per configuration, std as error
bar), per configuration the transfer matrix as a heatmap (its in-language diagonal outlined). A missing score is a gap (bar)
or a grey "—" square (heatmap), never a 0. Drawn on matplotlib Figures without pyplot: no display, no global state between figures."""

from __future__ import annotations

import io
import math

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from softprompt_xl.report.tables import Cell, Table


def _png(fig: Figure) -> bytes:
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=120, bbox_inches="tight")
    return out.getvalue()


def scores_plot(table: Table, metric: str) -> bytes:
    """Languages on the x axis, one bar per configuration within each language's group."""
    first = table.header.index("seeds") + 1
    langs = [h for h in table.header[first:] if not h.startswith("avg")]
    fig = Figure(figsize=(max(5.0, 1.1 * len(langs) * max(1, len(table.rows)) / 3 + 2), 3.6))
    ax = fig.add_subplot()
    width = 0.8 / max(1, len(table.rows))
    for i, row in enumerate(table.rows):
        cells = row[first:first + len(langs)]
        xs = [j + (i - (len(table.rows) - 1) / 2) * width for j in range(len(langs))]
        means = [c.mean if isinstance(c, Cell) else math.nan for c in cells]
        stds = [(c.std or 0.0) if isinstance(c, Cell) else 0.0 for c in cells]
        ax.bar(xs, means, width, yerr=stds, capsize=2, label=str(row[0]))
        for x, mean in zip(xs, means):
            if math.isnan(mean):  # say it is missing, so a gap is not read as a score of 0
                ax.text(x, 0, "—", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(langs)), langs)
    ax.set_ylabel(metric)
    ax.set_title(table.title, fontsize=9)
    ax.legend(fontsize=7, ncols=min(4, max(1, len(table.rows))), loc="upper center", bbox_to_anchor=(0.5, -0.12))
    return _png(fig)


def heatmap(table: Table) -> bytes:
    """Rows: the language trained on; columns: the language tested on; colour 0-100 (scores are percentages)."""
    targets, rows = table.header[1:], table.rows
    values = [[c.mean if isinstance(c, Cell) else math.nan for c in row[1:]] for row in rows]
    fig = Figure(figsize=(1.0 + 0.75 * len(targets), 1.0 + 0.6 * len(rows)))
    ax = fig.add_subplot()
    ax.set_facecolor("#dddddd")  # NaN (missing) is not drawn: the grey background shows through
    image = ax.imshow(values, cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(j, i, "—" if math.isnan(v) else f"{v:.1f}", ha="center", va="center", fontsize=8,
                    color="black" if math.isnan(v) or v > 60 else "white")
    for i, j in table.in_language:  # the diagonal: trained and tested on one language, in-language, not transfer
        ax.add_patch(Rectangle((j - 1.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5, linestyle="--"))
    ax.set_xticks(range(len(targets)), targets)
    ax.set_yticks(range(len(rows)), [str(r[0]) for r in rows])
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title(table.title, fontsize=8)
    fig.colorbar(image, ax=ax)
    return _png(fig)
