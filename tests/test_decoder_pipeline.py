"""The study on the decoder-only family, through the pipeline: every combo on the shipped tiny decoder (stage 1 by
next-token prediction, stage 2, evaluation), the paper's grid planned on every decoder backbone of the hub, one
configuration on two backbones reported side by side, and a hub decoder offline refused in one paragraph. The
model-level rules (2n virtual tokens, left padding, peft's prompt tuning, frozen tensors, LoRA sums) are
tests/test_decoder.py's."""

from __future__ import annotations

import math

import pytest

from conftest import FAST_OVERRIDES, experiment_grid, run_sweep
from softprompt_xl.config import group_options
from softprompt_xl.errors import UserError
from softprompt_xl.model.component_header import ComponentHeader
from softprompt_xl.pipeline.plan import plan_sweep

DECODERS = ("qwen2_5_0_5b", "qwen3_0_6b", "gemma3_270m", "bloomz_560m")
COMBOS = [name for name in group_options("combo") if name != "pair"]  # pair: any of them by its kinds


def _check(result: dict, combo: str) -> None:
    assert result["status"] == "complete" and result["backbone"] == "tiny_decoder", result
    assert set(result["metrics"]["sk"]) == {"exact_match", "f1", "unparsed"}
    trained = result["trainable_params"]
    if combo.startswith("l"):  # a language component: frozen in stage 2, trained in stage 1 and scored held out
        assert trained["lang"] == 0 and result["lang_component"] and result["lang_heldout_loss"] > 0
    if combo == "full_ft":
        assert trained["backbone"] > 1_000_000 and result["task_component"] is None
    elif combo == "zero_shot":
        assert result["steps"] == 0 and not any(trained.values())
    else:
        assert trained["task"] > 0 and result["steps"] == 4


def test_a_language_adapter_and_a_task_lora_run_on_the_tiny_decoder(make_cfg, tmp_path):
    """The default suite's run on the decoder family: one stage-1 adapter by next-token prediction, then a task LoRA
    on its q_proj and v_proj, evaluated by generation."""
    plan, results = run_sweep(make_cfg, tmp_path, "+combo=la_tl", "lang=sk", "backbone=tiny_decoder", *FAST_OVERRIDES)
    assert [job.describe() for job in plan.lang_jobs] == ["adapter sk"]
    result = results["la_tl-sk-qa"]
    _check(result, "la_tl")
    assert result["lang_component"].startswith("lang-adapter-sk-")
    # held out by next-token prediction: loss, perplexity and token accuracy, as span corruption's
    meta = ComponentHeader.read(tmp_path / "store" / "components" / result["lang_component"]).meta
    assert meta["heldout_perplexity"] == pytest.approx(math.exp(meta["heldout_loss"]))
    assert 0 <= meta["heldout_accuracy"] < 1 and meta["heldout_chunks"] > 0


@pytest.mark.e2e
def test_every_combo_runs_on_the_tiny_decoder(make_cfg, tmp_path):
    """The 12 language x task pairs, the task-only kinds, zero_shot and full_ft on the shipped tiny decoder."""
    assert len(COMBOS) == 14
    plan, results = run_sweep(make_cfg, tmp_path, f"+combo={','.join(COMBOS)}", "lang=sk", "backbone=tiny_decoder",
                              *FAST_OVERRIDES)
    assert sorted(job.describe() for job in plan.lang_jobs) == ["adapter sk", "lora sk", "prompt sk"]
    for combo in COMBOS:
        _check(results[f"{combo}-sk-qa"], combo)


@pytest.mark.parametrize("backbone", DECODERS)
def test_the_paper_grid_plans_on_every_decoder_backbone(make_cfg, tmp_path, backbone):
    """`experiment=paper_v2 backbone=<decoder> dry_run=true -m`: every 13th run of the grid (every combo, language
    and task among them) planned on the decoder, with keys of that backbone."""
    jobs = [[*job, f"backbone={backbone}"] for job in experiment_grid("paper_v2")[::13]]
    plan = plan_sweep(jobs, lambda job: make_cfg(f"paths.root={tmp_path}", "experiment=paper_v2", *job))
    assert plan.runs == len(jobs) == len(plan.todo) + len(plan.no_data)
    assert {job.backbone for job in plan.lang_jobs} == {backbone}
    cfg = make_cfg("experiment=paper_v2", f"backbone={backbone}", "+combo=lp_tl")
    assert cfg.backbone.family == "causal" and cfg.backbone.lang_objective == "next_token"
    assert list(cfg.combo.components.task.targets) == list(cfg.backbone.lora.targets)


@pytest.mark.e2e
def test_one_configuration_on_two_backbones_is_reported_side_by_side(make_cfg, tmp_path):
    """The README's `+combo=lp_ta lang=sk backbone=tiny,tiny_decoder -m`, then the report: a table per backbone
    and the configuration side by side."""
    from hydra import compose, initialize_config_module

    from softprompt_xl.config import CONF_MODULE
    from softprompt_xl.report.__main__ import make_report
    from softprompt_xl.report.report_spec import ReportSpec

    plan, results = run_sweep(make_cfg, tmp_path, "+combo=lp_ta", "lang=sk", "backbone=tiny,tiny_decoder",
                              *FAST_OVERRIDES)
    assert sorted(job.backbone for job in plan.lang_jobs) == ["tiny", "tiny_decoder"]
    assert len({job.key for job in plan.lang_jobs}) == 2
    overrides = [f"paths.root={tmp_path}"]
    with initialize_config_module(CONF_MODULE, version_base="1.3"):
        folder = make_report(ReportSpec.of(compose("report", overrides=overrides), None, overrides))
    side_by_side = list((tmp_path / "reports").rglob("qa-backbones.csv"))
    assert side_by_side, sorted(p.name for p in (tmp_path / "reports").rglob("*"))
    text = side_by_side[0].read_text()
    assert "tiny/" in text and "tiny_decoder/" in text, folder


def test_a_hub_decoder_offline_fails_at_once_with_advice(make_cfg, tmp_path):
    from softprompt_xl.model.backbone import load_backbone

    cfg = make_cfg("+combo=lp_ta", "lang=sk", "backbone=qwen2_5_0_5b")
    with pytest.raises(UserError) as err:
        load_backbone(cfg.backbone, cfg.paths)
    message = str(err.value)
    assert "Could not load the backbone 'Qwen/Qwen2.5-0.5B'" in message and "backbone.name=DIR" in message
    assert "huggingface-cli download Qwen/Qwen2.5-0.5B --local-dir DIR" in message
