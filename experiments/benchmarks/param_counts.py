"""Trainable parameters of every combo, on the tiny backbone and on an mt0-base-shaped model.

The mt0-base shape (mT5-base: d_model 768, 12+12 layers, vocab 250,112, untied embeddings) is built from the
architecture in conf/backbone/mt0_base.yaml with random weights, so no download is needed.
Run: python experiments/benchmarks/param_counts.py
"""

from __future__ import annotations

import copy
import tempfile

from hydra import compose, initialize_config_module
from transformers import MT5Config, MT5ForConditionalGeneration

from softprompt_xl.model.backbone import load_backbone
from softprompt_xl.model.components.compose import ComposedModel
from softprompt_xl.config import CONF_MODULE, register_resolvers, to_plain

COMBOS = ["tp", "ta", "tl", "lp_tp", "lp_ta", "lp_tl", "la_tp", "la_ta", "la_tl", "ll_tp", "ll_ta", "ll_tl", "full_ft"]


def counts(make_model, tokenizer, backbone: str, root: str) -> dict[str, tuple[int, int]]:
    out = {}
    for combo in COMBOS:
        with initialize_config_module(CONF_MODULE, version_base="1.3"):
            cfg = compose("train", overrides=[f"+combo={combo}", f"backbone={backbone}", f"paths.root={root}"])
        parts = to_plain(cfg.combo.components)
        net = ComposedModel(make_model(), tokenizer)
        sizes = {role: net.new(role, "x", {**part, "init": "random"}).num_parameters()
                 for role, part in parts.items() if part}
        if cfg.combo.train_backbone:
            sizes["task"] = sum(p.numel() for p in net.backbone.parameters())
        out[combo] = (sizes.get("lang", 0), sizes.get("task", 0))
    return out


def main() -> None:
    register_resolvers()
    with tempfile.TemporaryDirectory() as root:
        with initialize_config_module(CONF_MODULE, version_base="1.3"):
            cfg = compose("train", overrides=[f"paths.root={root}"])
        _, tokenizer = load_backbone(cfg.backbone, cfg.paths)
        tiny = counts(lambda: load_backbone(cfg.backbone, cfg.paths)[0], tokenizer, "tiny", root)
        tiny_total = sum(p.numel() for p in load_backbone(cfg.backbone, cfg.paths)[0].parameters())
        with initialize_config_module(CONF_MODULE, version_base="1.3"):
            architecture = to_plain(compose("train", overrides=["backbone=mt0_base"]).backbone.architecture)
        base_model = MT5ForConditionalGeneration(MT5Config(**architecture))
        total = sum(p.numel() for p in base_model.parameters())
        base = counts(lambda: copy.deepcopy(base_model), tokenizer, "mt0_base", root)
    print(f"backbone sizes: tiny {tiny_total:,} | mt0-base shape {total:,}")
    print("| combo | tiny: language component | tiny: task part | mt0-base: language component | mt0-base: task part |")
    print("|---|---:|---:|---:|---:|")
    for combo in COMBOS:
        print(f"| {combo} | {tiny[combo][0]:,} | {tiny[combo][1]:,} | {base[combo][0]:,} | {base[combo][1]:,} |")
    print("(task part of full_ft = every backbone weight; zero_shot trains nothing)")


if __name__ == "__main__":
    main()
