"""The frozen backbone, of either family (model/family.py: encoder-decoder or decoder-only): a Hugging Face model and
tokenizer by name, or one built locally by the function its config names as `builder` (the embedded tiny ones:
softprompt_xl.toy.backbone_dir, which builds them into the cache), then loaded with `from_pretrained`, so tests on
them go through the same code as mt0-base or Qwen2.5."""

from __future__ import annotations

import gc
import logging
import os
from pathlib import Path
from typing import Any

import torch
from hydra.utils import get_method
from transformers import AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from softprompt_xl.config import load_option, to_plain
from softprompt_xl.errors import UserError
from softprompt_xl.model.components.adapter import init_adapters
from softprompt_xl.model.family import family_of
from softprompt_xl.runtime.hub import is_path, load_local_first

log = logging.getLogger(__name__)

def load_backbone(backbone_cfg: Any, paths: Any) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model (float32, train mode, ready for the adapters library) and tokenizer (padded on its family's side) for
    `backbone_cfg`; builds a tiny one first if needed."""
    # The model of a stage that has finished (stage 1 before stage 2) is held only by reference cycles (trainer <->
    # module) until a collection: without one first, two mt0-base copies were in memory at once.
    gc.collect()
    location = backbone_cfg.name or str(built_dir(backbone_cfg, paths, create=True))
    if backbone_cfg.name and is_path(location):  # a directory, which the Hub's loader would take for a bad model id
        location = os.path.expanduser(location)
        if not (Path(location) / "config.json").is_file():
            raise UserError(no_model_directory(backbone_cfg, location))
    kwargs = {"cache_dir": paths.hf_cache}
    if backbone_cfg.get("revision") and not Path(location).is_dir():
        kwargs["revision"] = backbone_cfg.revision
    try:
        tokenizer = load_local_first(AutoTokenizer.from_pretrained, location, **kwargs)
        model = load_local_first(family_of(backbone_cfg).auto_class.from_pretrained, location, dtype=torch.float32,
                                 **kwargs)
    except OSError as err:
        if Path(location).is_dir():
            raise UserError(f"Could not load the backbone from the directory {location} (backbone.name): it holds no "
                            f"model that transformers can load ({str(err).splitlines()[0]}). A downloaded model's "
                            "directory holds its config.json, its weights and its tokenizer files.") from None
        raise UserError(
            f"Could not load the backbone '{location}': it is not a local directory, not in the Hugging Face "
            f"cache ({paths.hf_cache}), and the Hub could not be reached to fetch it. Either run where the Hub "
            f"is reachable once (the download is cached), or download the model elsewhere "
            f"(e.g. `huggingface-cli download {location} --local-dir DIR`), copy DIR here and run with "
            f"backbone.name=DIR; paths.hf_cache=DIR reuses an existing cache. (Detail: {str(err).splitlines()[0]})"
        ) from None
    model.train()  # from_pretrained returns eval mode, which would silently switch dropout off in training
    tokenizer.padding_side = family_of(backbone_cfg).padding_side
    if tokenizer.pad_token is None:  # Llama 3's: padding is masked everywhere, so its EOS serves
        tokenizer.pad_token = tokenizer.eos_token
    init_adapters(model, to_plain(backbone_cfg.get("adapters_interface")))
    return model, tokenizer


def no_model_directory(backbone_cfg: Any, location: str) -> str:
    """What a backbone.name that can only be a directory, and is no model's directory here, is told."""
    option = load_option("backbone", str(backbone_cfg.get("id")), copy=False) if backbone_cfg.get("id") else None
    hub_name = option.get("name") if option is not None else None
    what = ("holds no config.json: it is not a downloaded model" if Path(location).is_dir() else
            "is a file, not a directory" if Path(location).exists() else "does not exist here")
    return (f"backbone.name={backbone_cfg.name}: {location} {what}. backbone.name is a Hugging Face model name "
            f"(such as {hub_name or 'bigscience/mt0-base'}) or the directory of a downloaded model (its config.json, "
            f"weights and tokenizer files). To make one, on a machine with network run `huggingface-cli download "
            f"{hub_name or 'MODEL'} --local-dir DIR`, copy DIR to this machine and run with backbone.name=DIR (an "
            f"absolute path, or one relative to the directory the command starts in)"
            + (f"; without backbone.name, backbone={backbone_cfg.id} loads {hub_name} from the Hugging Face cache "
               f"(paths.hf_cache) or the Hub." if hub_name else "."))


def backbone_identity(backbone_cfg: Any, paths: Any) -> dict:
    """What identifies the backbone's weights, for keys of components trained on it."""
    if backbone_cfg.name:
        return {"name": backbone_cfg.name, "revision": backbone_cfg.get("revision")}
    return {"name": built_dir(backbone_cfg, paths, create=False).name}  # planning a sweep must not build it


def built_dir(backbone_cfg: Any, paths: Any, create: bool) -> Path:
    """Directory of a backbone without a hub name, from its `builder`: a dotted path to a function
    (build, paths, create) -> Path, named outside `build` so that naming it leaves the directory's name alone."""
    if not backbone_cfg.get("builder"):
        raise UserError(f"Backbone '{backbone_cfg.get('id')}' has neither a name (a Hugging Face model or a "
                        "directory) nor a builder: set backbone.name.")
    return get_method(backbone_cfg.builder)(backbone_cfg.build, paths, create=create)
