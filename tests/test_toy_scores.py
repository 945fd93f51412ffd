"""The embedded defaults show meaningful numbers: every paper configuration beats the zero-shot backbone on every
task, in-language, within the default step budget, on the tiny mT5 and on the tiny decoder. Slow (28 jobs per
backbone, ~8 and ~12 min on 2 cores, on the shipped backbones): `pytest -m slow`."""

from __future__ import annotations

import pytest

from conftest import run_cli
from softprompt_xl.config import load_option
from softprompt_xl.data.tasks import get_task
from test_cli import results

PAPER_CONFIGS = ["ta", "tp", "la_ta", "la_tp", "lp_ta", "lp_tp"]
TASKS = ["qa", "ner", "nli", "checkworthy"]
MARGIN = 10.0  # points above zero-shot: "clearly above", not noise


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["tiny", "tiny_decoder"])
def test_every_paper_configuration_beats_zero_shot_on_every_task(tmp_path, backbone):
    proc = run_cli("+combo=zero_shot," + ",".join(PAPER_CONFIGS), "task=" + ",".join(TASKS), "lang=sk",
                   f"backbone={backbone}", "logger=none", f"paths.root={tmp_path}", "-m", timeout=3600)
    assert proc.returncode == 0, proc.stdout[-3000:]
    found = results(tmp_path / "outputs")
    assert len(found) == 4 * 7
    for task in TASKS:
        metric = get_task(load_option("task", task)).primary_metric  # the score that selects the best step
        baseline = found[f"zero_shot-sk-{task}"]["metrics"]["sk"][metric]
        for combo in PAPER_CONFIGS:
            score = found[f"{combo}-sk-{task}"]["metrics"]["sk"][metric]
            assert score >= baseline + MARGIN, f"{combo} {task}: {score:.1f} vs zero-shot {baseline:.1f}"
