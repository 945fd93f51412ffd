"""`python -m softprompt_xl.store import`: the authors' published language components, in exactly the layouts their
code saved them in, become components of this framework that compute what the originals computed; runs with
`lang_stage.source=import:NAME` use them instead of training stage 1, and their keys say so."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import adapters
import pytest
import torch
from adapters import SeqBnConfig

from conftest import FAST_OVERRIDES, PROJECT_DIR, cli_env, run_sweep
from softprompt_xl.errors import UserError
from softprompt_xl.model.components.compose import ComposedModel
from softprompt_xl.pipeline.importing import import_component
from softprompt_xl.pipeline.keys import key, lang_spec, result_spec
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.pipeline.run_spec import RunSpec

PROMPT_NAME = "ivykopal/slovak_prompt_100k"


def save_authors_prompt(directory, table: torch.Tensor, n: int, adapter_name: str = "slovak_prompt"):
    """What their PeftModel.save_pretrained writes for a prompt named `adapter_name` (src/prompt_tuning/): a
    subdirectory of that name (any name but "default") with torch.save({"prompt_embeddings": table}) and the
    PromptTuningConfig's fields as JSON (indent 2, sorted keys, ensure_ascii off), inference_mode set true."""
    out = directory / adapter_name
    out.mkdir(parents=True)
    torch.save({"prompt_embeddings": table}, out / "adapter_model.bin")
    config = {"auto_mapping": None, "base_model_name_or_path": "bigscience/mt0-base", "revision": None,
              "task_type": "SEQ_2_SEQ_LM", "inference_mode": True, "num_virtual_tokens": n,
              "token_dim": table.shape[1], "num_transformer_submodules": 2, "num_layers": 12,
              "prompt_tuning_init": "TEXT", "prompt_tuning_init_text": "Generate the output in Slovak:",
              "partial_prompt_tuning_init_text": None, "partial_embedding": False, "fixed_size": 0,
              "num_attention_heads": 12, "tokenizer_name_or_path": "bigscience/mt0-base", "peft_type": "PROMPT_TUNING",
              "task_prompt": False, "fusion": "none", "encoder_hidden_size": table.shape[1]}
    (out / "adapter_config.json").write_text(json.dumps(config, ensure_ascii=False, indent=2, sort_keys=True))
    return out


def adapter_source(model, directory, config=None):
    """A language adapter saved by the adapters library itself, as the authors' run.py trained one
    (`--adapter_config seq_bn`, named after the dataset): random weights, so that a wrong mapping shows."""
    model = copy.deepcopy(model)
    adapters.init(model)
    model.add_adapter("wikipedia", config=config or "seq_bn")
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".adapters.wikipedia." in name:
                p.copy_(torch.randn(p.shape, generator=generator) * 0.05)
    model.set_active_adapters("wikipedia")
    directory.parent.mkdir(parents=True, exist_ok=True)
    model.save_adapter(str(directory), "wikipedia")
    return model.eval()


def batch(tokenizer):
    enc = tokenizer(["Amelia lives in Bristol.", "Kde žije Amelia?"], return_tensors="pt", padding=True)
    labels = tokenizer(["Bristol", "v Bristole"], return_tensors="pt", padding=True).input_ids
    return enc.input_ids, enc.attention_mask, labels


def test_prompt_import_uses_the_first_virtual_tokens_and_computes_what_theirs_did(make_cfg, tmp_path, tiny):
    model, tokenizer = tiny
    cfg = make_cfg("lang=sk", f"paths.root={tmp_path / 'root'}")
    d, n = model.config.d_model, 6
    table = torch.randn(2 * n, d, generator=torch.Generator().manual_seed(1)) * 0.5  # 2 submodules: 2n rows saved
    save_authors_prompt(tmp_path / "src", table, n)
    k, existed = import_component(cfg.backbone, cfg.paths, cfg.lang.code, tmp_path / "src", PROMPT_NAME)
    assert not existed and k.startswith("lang-prompt-sk-")
    assert import_component(cfg.backbone, cfg.paths, cfg.lang.code, tmp_path / "src", PROMPT_NAME) == (k, True)

    store = Store(cfg.paths.store)
    from softprompt_xl.model.component_header import ComponentHeader

    header = ComponentHeader.read(store.component_dir(k))
    provenance = header.meta["imported"]
    assert provenance["layout"] == "prompt_tuning" and provenance["source"] == PROMPT_NAME
    assert provenance["config"]["num_virtual_tokens"] == n and len(provenance["sha256"]) == 64
    assert header.meta["spec"]["imported"]["sha256"] == provenance["sha256"]

    net = ComposedModel(model, tokenizer)
    net.load(store.component_dir(k))
    net.eval()
    assert torch.equal(net.components["lang"].embedding.detach(), table[:n])
    # Their forward: the first num_virtual_tokens rows before the input embeddings, the mask extended by ones.
    ids, mask, labels = batch(tokenizer)
    embeds = model.get_input_embeddings()(ids)
    reference = model(inputs_embeds=torch.cat([table[:n].expand(2, -1, -1), embeds], 1),
                      attention_mask=torch.cat([torch.ones(2, n, dtype=mask.dtype), mask], 1), labels=labels)
    ours = net(ids, mask, labels)
    assert torch.allclose(ours.logits, reference.logits, atol=1e-6)


def test_adapter_import_gives_the_adapters_librarys_own_outputs(make_cfg, tmp_path, tiny):
    model, tokenizer = tiny
    cfg = make_cfg("lang=sk", f"paths.root={tmp_path / 'root'}")
    source_model = adapter_source(model, tmp_path / "src" / "wikipedia")
    k, _ = import_component(cfg.backbone, cfg.paths, cfg.lang.code, tmp_path / "src", "ivykopal/slovak_adapter_100k")
    assert k.startswith("lang-adapter-sk-")

    net = ComposedModel(copy.deepcopy(tiny[0]), tokenizer)
    component = net.load(Store(cfg.paths.store).component_dir(k))
    assert component.config == {"kind": "adapter", "reduction_factor": 16, "non_linearity": "relu"}
    theirs = {n.replace(".adapters.wikipedia.", ".adapters.{adapter}."): p
              for n, p in source_model.named_parameters() if ".adapters.wikipedia." in n}
    own = component.owned_parameters()
    assert set(own) == set(theirs) and all(torch.equal(own[n], theirs[n]) for n in own)
    net.eval()
    ids, mask, labels = batch(tokenizer)
    with torch.no_grad():
        reference = source_model(input_ids=ids, attention_mask=mask, labels=labels).logits
        plain = tiny[0].eval()(input_ids=ids, attention_mask=mask, labels=labels).logits
        ours = net(ids, mask, labels).logits
    assert not torch.allclose(plain, reference, atol=1e-3)  # the adapter does change the outputs
    assert torch.allclose(ours, reference, atol=1e-6)


def test_a_component_that_does_not_fit_the_backbone_is_refused_naming_both_shapes(make_cfg, tmp_path, tiny):
    cfg = make_cfg("lang=sk", f"paths.root={tmp_path / 'root'}")
    save_authors_prompt(tmp_path / "prompt", torch.zeros(100, 768), 50)  # mt0-base's
    with pytest.raises(UserError, match=r"token_dim 768.*d_model 128.*bigscience/mt0-base"):
        import_component(cfg.backbone, cfg.paths, cfg.lang.code, tmp_path / "prompt", PROMPT_NAME)

    from transformers import MT5Config, MT5ForConditionalGeneration

    other = MT5ForConditionalGeneration(MT5Config(vocab_size=64, d_model=128, d_ff=64, num_layers=2,
                                                  num_decoder_layers=2, num_heads=2, d_kv=16))
    adapter_source(other, tmp_path / "adapter")  # d_model fits, the number of layers does not
    with pytest.raises(UserError, match=r"has 16 adapter weights.*needs 24 adapter weights for 3 encoder and 3 decoder layers"):
        import_component(cfg.backbone, cfg.paths, cfg.lang.code, tmp_path / "adapter", "ivykopal/slovak_adapter_100k")
    assert not list((tmp_path / "root" / "store").glob("components/lang-*/component.json"))


def test_unknown_layouts_and_configs_our_adapter_cannot_express_are_refused(make_cfg, tmp_path, tiny):
    cfg = make_cfg("lang=sk", f"paths.root={tmp_path / 'root'}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "model.safetensors").write_bytes(b"x")
    with pytest.raises(UserError, match=r"no component in a known layout.*model.safetensors"):
        import_component(cfg.backbone, cfg.paths, cfg.lang.code, tmp_path / "empty", "x")
    (tmp_path / "lora").mkdir()
    (tmp_path / "lora" / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    with pytest.raises(UserError, match=r"in no layout this import reads.*peft_type"):
        import_component(cfg.backbone, cfg.paths, cfg.lang.code, tmp_path / "lora", "x")
    adapter_source(tiny[0], tmp_path / "lnafter", SeqBnConfig(ln_after=True))
    with pytest.raises(UserError, match=r"cannot express exactly: ln_after=True"):
        import_component(cfg.backbone, cfg.paths, cfg.lang.code, tmp_path / "lnafter", "x")


def test_an_offline_hub_name_says_what_to_download_where(tmp_path):
    done = subprocess.run([sys.executable, "-m", "softprompt_xl.store", "import", PROMPT_NAME,
                           f"paths.root={tmp_path}"], cwd=PROJECT_DIR, env=cli_env({"HF_HUB_OFFLINE": "1"}),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"huggingface-cli download {PROMPT_NAME} --local-dir DIR" in done.stderr
    assert f"softprompt_xl.store import DIR --as {PROMPT_NAME}" in done.stderr


@pytest.mark.parametrize("given", ["/no/such/slovak_prompt_100k", "./slovak_prompt_100k", "runs/x/slovak_prompt_100k"])
def test_a_path_with_no_directory_there_is_said_to_be_one_not_sent_to_the_hub(given):
    from softprompt_xl.store import import_main

    with pytest.raises(UserError, match=r"There is no directory .*slovak_prompt_100k .* to import\. Give the directory"):
        import_main([given])


def test_a_run_with_an_imported_component_skips_stage_1_and_its_keys_say_imported(make_cfg, tmp_path, tiny):
    root = tmp_path / "root"
    source = ("lang_stage.source=import:authors",)
    with pytest.raises(UserError, match=r"Import it first: `python -m softprompt_xl.store import "
                                        r"ivykopal/slovak_prompt_100k lang=sk backbone=tiny"):
        lang_spec(RunSpec.of(make_cfg("+combo=lp_ta", "lang=sk", f"paths.root={root}", *source)))
    save_authors_prompt(tmp_path / "src", torch.randn(20, tiny[0].config.d_model), 10)
    target = make_cfg("lang=sk", f"paths.root={root}")
    k, _ = import_component(target.backbone, target.paths, "sk", tmp_path / "src", PROMPT_NAME)

    cfg = make_cfg("+combo=lp_ta", "lang=sk", f"paths.root={root}", *source, *FAST_OVERRIDES)
    trained = make_cfg("+combo=lp_ta", "lang=sk", f"paths.root={root}", *FAST_OVERRIDES)
    spec = lang_spec(RunSpec.of(cfg))
    assert key(spec) == k and spec["imported"]["source"] == PROMPT_NAME and "stage" not in spec
    assert key(result_spec(RunSpec.of(cfg))) != key(result_spec(RunSpec.of(trained)))
    plan, results = run_sweep(make_cfg, root, "+combo=lp_ta", "lang=sk", *source, *FAST_OVERRIDES)
    assert plan.lang_jobs == [] and list(plan.imported) == [k] and "imported" in plan.describe()
    (result,) = results.values()
    assert result["lang_component"] == k and result["eval_lang_components"] == {"sk": k}
    assert result["spec"]["combo"]["lang"]["imported"]["source"] == PROMPT_NAME
