"""Trainable parameters of every combo, on the tiny backbones and on models of the published architectures.

Encoder-decoder: the tiny mT5 and the mt0-base shape (mT5-base: d_model 768, 12+12 layers, vocab 250,112, untied
embeddings). Decoder-only (model/family.py's causal family): the tiny decoder and the shapes of Qwen2.5-0.5B,
Qwen3-0.6B, Gemma-3-270m and BLOOMZ-560m. Each big shape is built from the `architecture` in conf/backbone/<id>.yaml
(a config.json's fields, `model_type` among them) with random weights, so no download is needed; each combo is
counted on a fresh copy of it, with the components of that backbone's configuration (prompt length, LoRA targets,
the adapters interface of a model the adapters library does not know).
Run: python experiments/benchmarks/param_counts.py [--backbones mt0_base,qwen2_5_0_5b,...]
"""

from __future__ import annotations

import argparse
import copy
import gc
import logging
import tempfile

import torch
from hydra import compose, initialize_config_module
from transformers import AutoConfig, AutoModelForCausalLM, MT5Config, MT5ForConditionalGeneration

from softprompt_xl.config import CONF_MODULE, register_resolvers, to_plain
from softprompt_xl.model.backbone import load_backbone
from softprompt_xl.model.components.adapter import init_adapters
from softprompt_xl.model.components.compose import ComposedModel

COMBOS = ["tp", "ta", "tl", "lp_tp", "lp_ta", "lp_tl", "la_tp", "la_ta", "la_tl", "ll_tp", "ll_ta", "ll_tl", "full_ft"]
SEQ2SEQ = ["mt0_base"]  # built with the tiny mT5's tokenizer
DECODERS = ["qwen2_5_0_5b", "qwen3_0_6b", "gemma3_270m", "bloomz_560m"]  # with the tiny decoder's


def config(root: str, *overrides: str):
    with initialize_config_module(CONF_MODULE, version_base="1.3"):
        return compose("train", overrides=[f"paths.root={root}", *overrides])


def counts(make_model, tokenizer, backbone: str, root: str) -> dict[str, tuple[int, int]]:
    out = {}
    for combo in COMBOS:
        cfg = config(root, f"+combo={combo}", f"backbone={backbone}")
        parts = to_plain(cfg.combo.components)
        net = ComposedModel(make_model(), tokenizer)
        sizes = {role: net.new(role, "x", {**part, "init": "random"}).num_parameters()
                 for role, part in parts.items() if part}
        if cfg.combo.train_backbone:
            sizes["task"] = sum(p.numel() for p in net.backbone.parameters())
        out[combo] = (sizes.get("lang", 0), sizes.get("task", 0))
        del net
        gc.collect()  # a composed model is held by reference cycles: without this, every copy stayed (18 GB)
    return out


def shaped(backbone: str, root: str) -> torch.nn.Module:
    """A model of `backbone`'s published architecture with random weights, ready for the adapters library as
    load_backbone makes a loaded one (its config's adapters_interface)."""
    cfg = config(root, f"backbone={backbone}").backbone
    architecture = to_plain(cfg.architecture)
    torch.manual_seed(0)
    if cfg.get("family") == "causal":
        fields = {k: v for k, v in architecture.items() if k != "model_type"}
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(architecture["model_type"], **fields))
    else:
        model = MT5ForConditionalGeneration(MT5Config(**architecture))
    init_adapters(model, to_plain(cfg.get("adapters_interface")))
    return model


def table(columns: dict[str, tuple[int, dict]]) -> list[str]:
    """A Markdown table: one row per combo, a language and a task column per backbone."""
    names = list(columns)
    lines = [f"backbone sizes: " + " | ".join(f"{name} {total:,}" for name, (total, _) in columns.items()),
             "| combo | " + " | ".join(f"{n}: language component | {n}: task part" for n in names) + " |",
             "|---|" + "---:|---:|" * len(names)]
    for combo in COMBOS:
        lines.append(f"| {combo} | " + " | ".join(f"{columns[n][1][combo][0]:,} | {columns[n][1][combo][1]:,}"
                                                  for n in names) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", default=",".join(SEQ2SEQ + DECODERS),
                        help=f"big shapes to count beside the tiny backbones, of {', '.join(SEQ2SEQ + DECODERS)}")
    chosen = [b for b in parser.parse_args(argv).backbones.split(",") if b]
    unknown = set(chosen) - set(SEQ2SEQ + DECODERS)
    if unknown:
        parser.error(f"unknown backbone {sorted(unknown)}: choose from {', '.join(SEQ2SEQ + DECODERS)}")
    register_resolvers()
    logging.getLogger("adapters").setLevel(logging.ERROR)  # "adapters available but none are activated", per combo
    families: dict[str, dict[str, tuple[int, dict]]] = {"seq2seq": {}, "causal": {}}
    with tempfile.TemporaryDirectory() as root:
        for tiny, family, big in (("tiny", "seq2seq", SEQ2SEQ), ("tiny_decoder", "causal", DECODERS)):
            # The tiny decoder with random weights (pre-training changes no count): a build of seconds, its tokenizer
            # the shipped one's.
            cfg = config(root, f"backbone={tiny}", *(["backbone.build.pretrain.steps=0"] * (tiny == "tiny_decoder")))
            model, tokenizer = load_backbone(cfg.backbone, cfg.paths)
            families[family][tiny] = (sum(p.numel() for p in model.parameters()),
                                      counts(lambda: copy.deepcopy(model), tokenizer, tiny, root))
            for backbone in (b for b in big if b in chosen):
                base = shaped(backbone, root)
                families[family][backbone] = (sum(p.numel() for p in base.parameters()),
                                              counts(lambda: copy.deepcopy(base), tokenizer, backbone, root))
                del base
                gc.collect()
    print("\n".join(table(families["seq2seq"])))
    print()
    print("\n".join(table(families["causal"])))
    print("(task part of full_ft = every backbone weight, a tied output layer once; zero_shot trains nothing)")


if __name__ == "__main__":
    main()
