"""The same configuration on several backbones, side by side: per task, one table whose rows are configurations and
whose columns are backbone × language (then the averages), its cells those of each backbone's own score table.

What "the same configuration" is across backbones. A configuration's spec (`spec["combo"]`) holds values its
backbone chose: the learning rates, the prompt length, the LoRA targets and the language stage's budget are
interpolated from the backbone config (`${backbone.lr.adapter}`, `${backbone.prompt_tokens}`,
`${backbone.lora.targets}`), so the LP+TA of `tiny` and the LP+TA of `qwen2_5_0_5b` never have equal specs. Matching whole specs would leave every row with one backbone. So a
configuration is known across backbones by its **natural key**: the combo, the kind of its task part, the kind of its
language part and whether that part was trained or imported (an imported component is another thing than a trained
one, README "Comparing results"). A hyperparameter joins the key only where the researcher varied it on one backbone:
when one backbone holds two LP+TA rows that differ in `component.reduction_factor`, the reduction factor tells them
apart on every backbone, and the other backbone's LP+TA lines up with the row of equal reduction factor (a value
matched on no other backbone is a row of its own). A field that differs only from backbone to backbone is the
backbone's doing, not the configuration's, and is left out.

The columns follow the same rule one level up: a backbone's section (report/tables.py: one per setting) joins the
sections of other backbones with the same task and data; the task budget (from the backbone's budget too) and the
task's config count only where they vary on one backbone. A table is written only where two backbones or more meet.

Its cells are the per-backbone tables' own cells (the same objects: the mean ± std over seeds, and the interval
report/comparisons.py sets on them), so the two never disagree. Each backbone's `avg` (and `avg low`) is taken over
the languages of the whole table: a backbone without a result in a language has no average here, as an average over
fewer languages would not compare with its neighbours' (its own table still averages the languages it has).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from softprompt_xl.config import stable_hash
from softprompt_xl.report.tables import (LOWER_IS_BETTER, Cell, Section, Table, _average, _best, _combo_rank,
                                         _differences, _flat, combo_label, lang_order, languages, mode)


@dataclass
class SideBySide:
    """One task's configurations on several backbones."""

    task: str
    table: Table
    sections: list[Section]  # the backbones' own sections, in the table's column order
    missing: list[str] = field(default_factory=list)  # "LA+TA on tiny_decoder": a configuration one backbone lacks


def configuration_key(combo: dict) -> dict:
    """The natural key of a configuration (`spec["combo"]`): what it is on any backbone."""
    lang = combo.get("lang") or {}
    return {"combo": combo.get("combo"), "task kind": combo.get("kind"), "language kind": lang.get("kind"),
            "language imported": "imported" in lang}


def setting_key(shared: dict) -> dict:
    """The natural key of a setting (`spec["shared"]`) across backbones: the task and the data."""
    return {"task": shared.get("task"), "data": shared.get("data")}


def side_by_side(sections: list[Section]) -> list[SideBySide]:
    """The side-by-side tables of the sections (each task's sections of two backbones or more with the same
    setting); none where the results are of one backbone."""
    resource, found = languages(), []
    for task in dict.fromkeys(s.task for s in sections):
        of_task = [s for s in sections if s.task == task]
        keys = _keys([(s.backbone, s.shared) for s in of_task], setting_key)
        groups: dict[str, list[Section]] = {}
        for section, k in zip(of_task, keys):
            groups.setdefault(stable_hash(k), []).append(section)
        meeting = {g: members for g, members in groups.items() if len({s.backbone for s in members}) > 1}
        group_keys = {stable_hash(k): k for k in keys}
        for g, members in meeting.items():
            differs = _differences(group_keys[g], [group_keys[o] for o in meeting])
            slug = f"{task}-backbones" if len(meeting) == 1 else f"{task}-backbones-{g[:6]}"
            found.append(_table(task, slug, differs, sorted(members, key=lambda s: s.backbone), resource))
    return found


def _keys(specs: list[tuple[str, dict]], natural: Callable[[dict], dict]) -> list[dict]:
    """Per (backbone, spec): its key across backbones, the natural key and each field that varies between specs of
    one backbone with the same natural key (in any backbone): see the module's docstring."""
    flats = [_flat(spec) for _, spec in specs]
    naturals = [stable_hash(natural(spec)) for _, spec in specs]
    by_backbone: dict[tuple[str, str], list[int]] = {}
    for i, (backbone, _) in enumerate(specs):
        by_backbone.setdefault((backbone, naturals[i]), []).append(i)
    varied: dict[str, set[str]] = {}
    for (_, nat), members in by_backbone.items():
        names = set().union(*(flats[i] for i in members))
        varied.setdefault(nat, set()).update(k for k in names if len({repr(flats[i].get(k)) for i in members}) > 1)
    return [{**natural(spec), **{k: flats[i].get(k) for k in sorted(varied[naturals[i]])}}
            for i, (_, spec) in enumerate(specs)]


def _table(task: str, slug: str, differs: str, members: list[Section], resource: dict[str, str]) -> SideBySide:
    first = members[0]
    # Each configuration of each backbone, by its key across backbones; a key is one row.
    where = [(s, i) for s in members for i in range(len(s.configs))]
    keys = _keys([(s.backbone, s.configs[i]) for s, i in where], configuration_key)
    rows_of: dict[str, dict] = {}  # key id -> its key; in the order first seen (column order, then row order)
    cells_of: dict[tuple[str, str], dict[str, Cell]] = {}  # (key id, backbone) -> language -> cell
    for (section, i), k in zip(where, keys):
        key_id = stable_hash(k)
        rows_of.setdefault(key_id, k)
        row = section.scores.rows[i]
        cells_of[(key_id, section.backbone)] = {
            lang: row[2 + j] for j, lang in enumerate(section.langs) if isinstance(row[2 + j], Cell)}
    order = sorted(rows_of, key=lambda k: (_combo_rank(rows_of[k]["combo"]), list(rows_of).index(k)))

    langs = lang_order({lang for s in members for lang in s.langs}, resource)
    low = [lang for lang in langs if resource.get(lang) == "low"]
    averages = ["avg"] + (["avg low"] if low and len(low) < len(langs) else [])
    header = ["configuration"] + [f"{s.backbone}/{c}" for s in members for c in (*langs, *averages)]
    rows, missing = [], []
    for key_id in order:
        k = rows_of[key_id]
        same = [rows_of[o] for o in order if rows_of[o]["combo"] == k["combo"]]
        label = combo_label(k["combo"]) + _differences(k, same, brackets=True)
        row: list[Any] = [label]
        for section in members:
            found = cells_of.get((key_id, section.backbone))
            if found is None:
                missing.append(f"{label} on {section.backbone}")
                found = {}
            row += [found.get(lang) for lang in langs] + [_average(found, langs)]
            row += [_average(found, low)] if len(averages) > 1 else []
        rows.append(row)
    names = ", ".join(s.backbone for s in members)
    table = Table(slug=slug, header=header, rows=rows, best=_best(rows, 1, first.metric in LOWER_IS_BETTER),
                  title=f"{task} across backbones ({names}) — {first.metric}, {mode(first.transfer_from)}{differs}")
    return SideBySide(task=task, table=table, sections=members, missing=missing)
