"""Print the in-language score table (configuration x task, per language) of finished runs.

    python experiments/benchmarks/toy_table.py [OUTPUTS_DIR]

OUTPUTS_DIR (default: runs/outputs) is searched for result.json files; each cell is a task's primary
metric (QA F1, NER span F1, NLI accuracy, check-worthiness F1), with the share of unparsed generations
in brackets; the newest run of a (combo, language, task) wins. Produce the runs with e.g.

    python -m softprompt_xl.train +combo=zero_shot,ta,tp,la_ta,la_tp,lp_ta,lp_tp \
        task=qa,ner,nli,checkworthy lang=en,sk logger=none -m
"""

from __future__ import annotations

import sys
from pathlib import Path

from softprompt_xl.study import records
from softprompt_xl.study.records import RESULT_FILE, Result

PRIMARY = {"qa": "f1", "ner": "span_f1", "nli": "accuracy", "checkworthy": "f1"}
ROWS = ["zero_shot", "ta", "tp", "la_ta", "la_tp", "lp_ta", "lp_tp", "full_ft"]


def main(outputs: Path) -> None:
    found: dict[tuple[str, str, str], Result] = {}
    for path in sorted(outputs.rglob(RESULT_FILE), key=lambda p: p.stat().st_mtime):
        result = records.read(path)
        if isinstance(result, Result):  # a finished run (not a failed job, nor a stage=lang one)
            found[(result.combo, result.lang, result.task)] = result
    if not found:
        sys.exit(f"No finished result.json under {outputs}.")
    langs = sorted({lang for _, lang, _ in found})
    tasks = [t for t in PRIMARY if any(task == t for _, _, task in found)]
    columns = [(lang, task) for lang in langs for task in tasks]
    print("| config | " + " | ".join(f"{lang} {task} ({PRIMARY[task]})" for lang, task in columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for combo in [c for c in ROWS if any(k[0] == c for k in found)]:
        cells = []
        for lang, task in columns:
            result = found.get((combo, lang, task))
            if result is None:
                cells.append("")
                continue
            scores = result.metrics[lang]
            cells.append(f"{scores[PRIMARY[task]]:.1f} ({scores.get('unparsed', 0):.0f})")
        print(f"| {combo} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "runs" / "outputs")
