"""Components saved by other code, in the two layouts the paper's authors published theirs in, turned into this
framework's components (`ivykopal/<language>_prompt_100k`, `ivykopal/<language>_adapter_100k` on the Hub):

- **prompt** (their `src/prompt_tuning/`, a PEFT-style `save_pretrained`): `adapter_model.bin` (`torch.save` of
  `{"prompt_embeddings": table}`; `adapter_model.safetensors` as PEFT writes it is read the same) and
  `adapter_config.json` (a PromptTuningConfig). The table has num_virtual_tokens x num_transformer_submodules rows
  (2 for a seq2seq model); their forward puts only the first num_virtual_tokens before the input (with fusion
  `none`, as their language prompts were trained), so those rows are the prompt.
- **adapter** (the `adapters` library's `save_adapter`): `adapter_config.json` (`config`, `hidden_size`, `name`,
  ...) and `pytorch_adapter.bin` (or `adapter_model.safetensors`), keyed by the model's parameter names with
  `.adapters.<name>.` in them. Only a config that equals our BottleneckAdapter's (`seq_bn` with some
  reduction_factor and non_linearity, everything else at its default) is taken: anything else would be another
  model under our name.

Anything that does not fit the backbone it is converted onto is refused, naming both shapes."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from softprompt_xl.errors import UserError
from softprompt_xl.model.components import Component
from softprompt_xl.model.components.compose import ComposedModel

PROMPT_LAYOUT, ADAPTER_LAYOUT = "prompt_tuning", "adapters"
CONFIG_FILE = "adapter_config.json"
PROMPT_WEIGHTS = ("adapter_model.bin", "adapter_model.safetensors")
ADAPTER_WEIGHTS = ("pytorch_adapter.bin", "adapter_model.safetensors")


@dataclass(frozen=True)
class Source:
    """A saved component in one of the authors' layouts: where, which layout, its config, its weights file."""

    directory: Path
    layout: str
    config: dict[str, Any]
    weights: Path

    @property
    def kind(self) -> str:
        return "prompt" if self.layout == PROMPT_LAYOUT else "adapter"

    def sha256(self) -> str:
        digest = hashlib.sha256()
        with self.weights.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        return digest.hexdigest()

    def tensors(self) -> dict[str, torch.Tensor]:
        if self.weights.suffix == ".safetensors":
            return load_file(str(self.weights))
        # weights_only: a pickle from the Hub may not run code here
        return torch.load(self.weights, map_location="cpu", weights_only=True)


def find_source(directory: str | Path) -> Source:
    """The saved component in `directory` (or in its one subdirectory that holds one: their scripts save a named
    adapter or prompt into `<output_dir>/<name>/`); a UserError naming what was found otherwise."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"{directory} is not a directory: give a directory holding a saved component, or a Hub name.")
    candidates = [directory, *sorted(p for p in directory.iterdir() if p.is_dir() and not p.name.startswith("."))]
    for candidate in candidates:
        if (candidate / CONFIG_FILE).is_file():
            return _read_source(candidate)
    found = sorted(p.name for p in directory.iterdir())[:12]
    raise UserError(
        f"{directory} holds no component in a known layout: expected {CONFIG_FILE} with {' or '.join(PROMPT_WEIGHTS)} "
        f"(a prompt saved by the authors' prompt tuning, or by PEFT) or with {' or '.join(ADAPTER_WEIGHTS[:1])} (an "
        f"adapter saved by the adapters library's save_adapter), there or in a subdirectory; found {found}.")


def _read_source(directory: Path) -> Source:
    path = directory / CONFIG_FILE
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path} is not valid JSON ({err}); download the component again.") from None
    if not isinstance(config, dict):
        raise UserError(f"{path} holds no JSON object; download the component again.")
    if str(config.get("peft_type", "")).upper() == "PROMPT_TUNING":
        layout, names = PROMPT_LAYOUT, PROMPT_WEIGHTS
    elif isinstance(config.get("config"), dict) and "hidden_size" in config:
        layout, names = ADAPTER_LAYOUT, ADAPTER_WEIGHTS
    else:
        raise UserError(
            f"{path} is in no layout this import reads: neither a prompt-tuning config (peft_type PROMPT_TUNING) nor "
            f"an adapters-library adapter config (config, hidden_size); its fields are {sorted(config)[:12]}.")
    weights = next((directory / n for n in names if (directory / n).is_file()), None)
    if weights is None:
        raise UserError(f"{directory} has the {layout} config {CONFIG_FILE} but no weights file "
                        f"({' or '.join(names)}); download the component again.")
    return Source(directory, layout, config, weights)


def component_config(source: Source) -> dict[str, Any]:
    """The hyperparameters of our component that is the same model as `source` (no optimizer: it is not trained)."""
    config = source.config
    if source.layout == PROMPT_LAYOUT:
        fusion = config.get("fusion") or "none"
        if fusion not in ("none", "avg"):
            raise UserError(
                f"The prompt in {source.directory} was saved with fusion '{fusion}': alone, its forward would put "
                f"{2 * int(config['num_virtual_tokens'])} vectors before the input, not num_virtual_tokens, which "
                "this import cannot express as one prompt. Only fusion 'none' (the authors' language prompts) is read.")
        return {"kind": "prompt", "n_tokens": int(config["num_virtual_tokens"]), "init": "imported"}
    from adapters import AdapterConfig, SeqBnConfig

    saved = AdapterConfig.load(config["config"]).to_dict()
    ours = SeqBnConfig(reduction_factor=saved.get("reduction_factor"), non_linearity=saved.get("non_linearity"))
    different = {k: (saved.get(k), v) for k, v in ours.to_dict().items() if saved.get(k) != v}
    different.update({k: (v, None) for k, v in saved.items() if k not in ours.to_dict()})
    if different:
        shown = ", ".join(f"{k}={a!r} (ours {b!r})" for k, (a, b) in sorted(different.items())[:6])
        raise UserError(
            f"The adapter in {source.directory} has a config our bottleneck adapter (seq_bn: reduction_factor and "
            f"non_linearity, the rest at the adapters library's defaults) cannot express exactly: {shown}. It is "
            "refused rather than run as another model.")
    return {"kind": "adapter", "reduction_factor": saved["reduction_factor"], "non_linearity": saved["non_linearity"]}


def convert(source: Source, net: ComposedModel, role: str, name: str) -> Component:
    """Attach to `net` our component that is `source`, its weights copied in: refused (UserError) when its shapes
    do not fit the backbone (d_model, number of layers, vocabulary)."""
    config = component_config(source)
    backbone = net.backbone.config
    if source.layout == PROMPT_LAYOUT and source.config.get("token_dim") not in (None, backbone.d_model):
        raise UserError(_misfit(source, f"token_dim {source.config['token_dim']}", f"d_model {backbone.d_model}"))
    if source.layout == ADAPTER_LAYOUT and source.config.get("hidden_size") != backbone.d_model:
        raise UserError(_misfit(source, f"hidden_size {source.config.get('hidden_size')}", f"d_model {backbone.d_model}"))
    tensors = source.tensors()
    component = net.new(role, name, config)
    own = component.owned_parameters()
    if source.layout == PROMPT_LAYOUT:
        if set(tensors) != {"prompt_embeddings"}:
            raise UserError(f"{source.weights} holds {sorted(tensors)[:6]}, not the one table 'prompt_embeddings' "
                            "of a saved prompt; download it again.")
        table, n = tensors["prompt_embeddings"], config["n_tokens"]
        if table.dim() != 2 or table.shape[0] < n or table.shape[1] != backbone.d_model:
            raise UserError(_misfit(source, f"a prompt table of shape {tuple(table.shape)} ({n} virtual tokens used)",
                                    f"{n} x d_model = {(n, backbone.d_model)}"))
        mapped = {"embedding": table[:n]}
    else:
        label = source.config.get("name")
        marker = f".adapters.{label}."
        mapped = {k.replace(marker, ".adapters.{adapter}."): v for k, v in tensors.items()}
        missing, unexpected = sorted(set(own) - set(mapped)), sorted(set(mapped) - set(own))
        if missing or unexpected:
            net.remove(role)
            layers = (backbone.num_layers, backbone.num_decoder_layers)
            raise UserError(_misfit(
                source, f"{len(tensors)} adapter weights ({(unexpected or missing)[:2]} has no counterpart)",
                f"{len(own)} adapter weights for {layers[0]} encoder and {layers[1]} decoder layers"))
        for k, v in mapped.items():
            if v.shape != own[k].shape:
                net.remove(role)
                raise UserError(_misfit(source, f"'{k}' of shape {tuple(v.shape)}", f"{tuple(own[k].shape)}"))
    with torch.no_grad():
        for k, param in own.items():
            param.copy_(mapped[k].to(param.dtype))
    return component


def _misfit(source: Source, theirs: str, ours: str) -> str:
    base = source.config.get("base_model_name_or_path") or source.config.get("model_name") or "another backbone"
    return (f"The {source.kind} in {source.directory} does not fit this backbone: it has {theirs}, the backbone needs "
            f"{ours}. It was trained on {base}; import it with that backbone (backbone=mt0_base for the authors' "
            "components).")
