"""The config tree: every choice composes to what it promises, and W&B runs always end."""

from __future__ import annotations

import pytest
import wandb
from omegaconf import OmegaConf

from softprompt_xl.config import CONF_DIR
from softprompt_xl.data.sources import FILE_FORMATS
from softprompt_xl.errors import UserError
from softprompt_xl.pipeline import schema
from softprompt_xl.pipeline.tracking import stage_logger
from softprompt_xl.pipeline.run_spec import RunSpec

HUB_BACKBONES = {"mt0_base": "bigscience/mt0-base", "mt5_base": "google/mt5-base", "mt0_small": "bigscience/mt0-small",
                 "mt5_small": "google/mt5-small", "mt0_large": "bigscience/mt0-large"}


@pytest.mark.parametrize("backbone,name", HUB_BACKBONES.items())
def test_hub_backbones_name_their_model_with_the_paper_settings(make_cfg, backbone, name):
    cfg = make_cfg("+combo=lp_ta", f"backbone={backbone}")
    assert (cfg.backbone.id, cfg.backbone.name) == (backbone, name)
    assert cfg.combo.components.lang.n_tokens == 50
    assert cfg.combo.components.lang.optimizer == {"name": "adafactor", "lr": 0.5, "weight_decay": 1e-5}
    assert cfg.combo.components.task.optimizer == {"name": "adamw", "lr": 5e-5, "weight_decay": 0.0}
    assert (cfg.lang_stage.input_length, cfg.lang_stage.max_steps, cfg.task_stage.max_steps) == (256, 100000, 50000)


def test_every_language_part_by_task_part_exists():
    combos = {p.stem for p in (CONF_DIR / "combo").glob("*.yaml")}
    task_only = {f"t{task}" for task in "pal"}
    paired = {f"l{lang}_t{task}" for lang in "pal" for task in "pal"}
    assert combos == task_only | paired | {"zero_shot", "full_ft", "pair"}  # pair: any of them by its kinds


LANGS = sorted(p.stem for p in (CONF_DIR / "lang").glob("*.yaml"))
TASKS = sorted(p.stem for p in (CONF_DIR / "task").glob("*.yaml"))


# The paper's second version (conf/experiment/paper_v2.yaml): QA sets that are a test split only, of languages that
# are only ever transfer targets there (XQuAD, IndicQA), and Bulgarian, for which no QA set exists.
TEST_ONLY = {("el", "qa"), ("ml", "qa"), ("ro", "qa")}
NO_DATA = {("bg", "qa")}


@pytest.mark.parametrize("lang", LANGS)
def test_every_language_names_a_source_for_the_corpus_and_every_task(make_cfg, lang):
    assert {"wiki", "qa", "ner", "nli", "checkworthy"} <= set(TASKS) | {"wiki"}
    cfg = make_cfg("+combo=lp_ta", f"lang={lang}", "task=ner", "data=hub")  # data.task is lang.sources.<task>
    schema.check(cfg)  # every language file composes into a configuration a run could start with
    sources = cfg.lang.sources
    assert set(sources) == {"wiki", *TASKS}
    assert sources.wiki.name == f"20231101.{lang}"
    for task in TASKS:
        if (lang, task) in NO_DATA:  # said by the plan, refused as a run of its own
            assert sources[task] is None
            with pytest.raises(UserError, match=rf"{lang} has no {task} data set: conf/lang/{lang}.yaml names no"):
                schema.check(make_cfg("+combo=lp_ta", f"lang={lang}", f"task={task}", "data=hub"))
            continue
        source = OmegaConf.to_container(sources[task], resolve=True)
        carved = set(source.get("carve") or {})  # splits cut from another one, as the paper's authors did
        splits = {"test"} if (lang, task) in TEST_ONLY else {"train", "validation", "test"}
        if source["path"] in FILE_FORMATS:  # a local file per split, in the root's external/ folder
            assert set(source["data_files"]) | carved == splits
            assert all("/external/" in path for path in source["data_files"].values())
        else:
            assert set(source["splits"]) | carved == splits


@pytest.mark.parametrize("combo,lang_kind,task_kind", [
    ("lp_ta", "prompt", "adapter"), ("la_tp", "adapter", "prompt"), ("ll_tl", "lora", "lora"), ("tl", None, "lora"),
])
def test_combos_pick_their_component_kinds(make_cfg, combo, lang_kind, task_kind):
    parts = make_cfg(f"+combo={combo}").combo.components
    assert (parts.lang.kind if parts.lang else None, parts.task.kind) == (lang_kind, task_kind)


def test_wandb_run_is_finished_even_when_the_stage_fails(cfg, tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        with stage_logger(RunSpec.of(cfg), "task", "lp_ta-sk-qa", "task-lp_ta-sk-qa-0", tmp_path, ["lp_ta"]) as logger:
            assert logger.experiment.name == "lp_ta-sk-qa" and logger.experiment.group == cfg.logger.wandb.group
            raise RuntimeError("boom")
    assert wandb.run is None  # the next job starts a run of its own


# The published config.json of each size (huggingface.co/google/mt5-<size>; bigscience/mt0-<size> shares them).
PUBLISHED_SIZES = {"small": (512, 1024, 8, 6), "base": (768, 2048, 12, 12), "large": (1024, 2816, 24, 16)}


@pytest.mark.parametrize("group", ["mt5_small", "mt0_small", "mt5_base", "mt0_base", "mt0_large"])
def test_each_hub_backbone_config_has_its_published_architecture(make_cfg, group):
    arch = make_cfg(f"backbone={group}").backbone.architecture
    size = PUBLISHED_SIZES[group.split("_")[1]]
    assert (arch.d_model, arch.d_ff, arch.num_layers, arch.num_heads) == size
    assert (arch.num_decoder_layers, arch.d_kv, arch.vocab_size, arch.tie_word_embeddings) == (size[2], 64, 250112, False)


def test_any_lightning_trainer_argument_in_conf_trainer_reaches_every_stages_trainer(make_cfg, tmp_path):
    from softprompt_xl.pipeline.stages import make_trainer

    cfg = make_cfg("+combo=lp_ta", "lang=sk", "+trainer.accumulate_grad_batches=3", "trainer.gradient_clip_val=0.5",
                   "+trainer.limit_val_batches=2")
    schema.check(cfg)
    trainer = make_trainer(RunSpec.of(cfg).trainer, False, tmp_path, 5, name="Stage 2")
    assert (trainer.accumulate_grad_batches, trainer.gradient_clip_val, trainer.limit_val_batches) == (3, 0.5, 2)
    assert trainer.max_steps == 5  # the stage's own budget, not a setting of conf/trainer


@pytest.mark.parametrize("override, message", [
    ("+trainer.acumulate_grad_batches=3", r"trainer.acumulate_grad_batches is neither a lightning.Trainer "
                                          r"argument nor a setting of the framework \(num_workers, progress, .*"
                                          r"Check its spelling"),
    ("+trainer.max_steps=3", r"trainer.max_steps is set by each stage itself: use lang_stage.max_steps / "
                             r"task_stage.max_steps instead. Drop it from trainer."),
    ("+trainer.logger=false", r"trainer.logger is set by each stage itself, so it cannot be configured"),
])
def test_a_trainer_setting_lightning_does_not_take_is_refused_before_anything_runs(make_cfg, override, message):
    with pytest.raises(UserError, match=message):
        schema.check(make_cfg("+combo=lp_ta", "lang=sk", override))
