"""Behaviour of the components and of their composition on the tiny backbone."""

from __future__ import annotations

import copy
import itertools


import pytest
import torch

from softprompt_xl.model.components.compose import ComposedModel
from softprompt_xl.model.components.lora import LoRAHost
from softprompt_xl.config import to_plain
from softprompt_xl.errors import UserError
from softprompt_xl.model.module import build_optimizer

KINDS = ("prompt", "adapter", "lora")


@pytest.fixture(scope="session")
def composed_component_cfgs(make_cfg):
    return {kind: to_plain(make_cfg(f"+combo=t{kind[0]}").combo.components.task) for kind in KINDS}


@pytest.fixture
def component_cfgs(composed_component_cfgs):
    """The task component of each kind as its combo configures it (composed once; each test gets its own copy)."""
    return copy.deepcopy(composed_component_cfgs)


@pytest.fixture
def batch(tiny):
    _, tokenizer = tiny
    enc = tokenizer(["question: Kde býva Eva? context: Eva býva v Nitre.", "question: Who? context: Ana lives here."],
                    return_tensors="pt", padding=True)
    labels = tokenizer(text_target=["v Nitre", "Ana"], return_tensors="pt", padding=True).input_ids
    labels[labels == tokenizer.pad_token_id] = -100
    return enc.input_ids, enc.attention_mask, labels


def perturb(component):
    """Give a component non-trivial weights (LoRA's up matrix starts at zero)."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in component.owned_parameters().values():
            p.add_(torch.randn_like(p) * 0.05)


def snapshot(net):
    return {name: p.detach().clone() for name, p in net.named_parameters()}


@pytest.mark.parametrize("lang_kind,task_kind", [(None, t) for t in KINDS] + list(itertools.product(KINDS, KINDS)))
def test_a_step_changes_only_the_task_component(tiny, batch, component_cfgs, lang_kind, task_kind):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    if lang_kind:
        perturb(net.new("lang", "sk", component_cfgs[lang_kind], "Generate the output in Slovak:"))
    task = net.new("task", "qa", component_cfgs[task_kind], "Answer the question in Slovak language:")
    check_only_the_task_component_trains(net, task, batch)


def check_only_the_task_component_trains(net, task, batch) -> None:
    """Two optimiser steps with only `task` trainable (LoRA's down matrix only gets gradient once its up matrix is
    non-zero): every task tensor changed, every other tensor of `net` is bit-identical (tests/test_decoder.py too)."""
    trainable = net.train_only(["task"])
    assert {id(p) for p in trainable} == {id(p) for p in task.owned_parameters().values()}
    before = snapshot(net)
    optimizer = build_optimizer({"name": "adamw", "lr": 1e-2}, trainable)
    for _ in range(2):
        optimizer.zero_grad()
        net(*batch).loss.backward()
        optimizer.step()
    task_ids = {id(p) for p in task.owned_parameters().values()}
    assert len(before) == len(list(net.named_parameters()))
    for name, p in net.named_parameters():
        if id(p) in task_ids:
            assert not torch.equal(before[name], p), f"task parameter {name} did not train"
        else:
            assert torch.equal(before[name], p), f"{name} changed but is not the task component's"


def test_loss_goes_down_when_training_a_task_adapter(tiny, batch, component_cfgs):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    net.new("task", "qa", component_cfgs["adapter"])
    optimizer = build_optimizer({"name": "adamw", "lr": 1e-2}, net.train_only(["task"]))
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = net(*batch).loss
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


def test_full_fine_tuning_trains_every_backbone_weight(tiny):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    trainable = net.train_only(["backbone"])
    assert len(trainable) == len(list(model.parameters()))
    assert net.parameter_counts() == {"backbone": sum(p.numel() for p in model.parameters())}


def test_greedy_generation_stops_as_soon_as_every_answer_of_the_batch_has_ended(tiny, batch):
    """Evaluation decodes up to the task's max answer length; a batch whose answers have all ended (</s>) must not
    run the decoder further. The lm head is forced to one token to make every answer end (or never end)."""
    model, tokenizer = tiny
    model.eval()
    assert (model.generation_config.eos_token_id, model.generation_config.pad_token_id) == (
        tokenizer.eos_token_id, tokenizer.pad_token_id)
    net = ComposedModel(model, tokenizer)
    input_ids, mask, _ = batch
    decoder_steps = []
    model.get_decoder().register_forward_pre_hook(lambda module, args: decoder_steps.append(1))

    def decode_with_only(token: int) -> torch.Tensor:
        decoder_steps.clear()
        force = model.lm_head.register_forward_hook(
            lambda module, args, logits: torch.full_like(logits, -1e4).index_fill(-1, torch.tensor([token]), 1e4))
        try:
            return net.generate(input_ids, mask, max_new_tokens=10)
        finally:
            force.remove()

    ended = decode_with_only(tokenizer.eos_token_id)
    assert len(decoder_steps) == 1 and ended[:, 1:].eq(tokenizer.eos_token_id).all()
    word = tokenizer.convert_tokens_to_ids(tokenizer.tokenize("Nitre")[0])
    assert decode_with_only(word).shape[1] == 1 + 10 and len(decoder_steps) == 10  # the control: never ends


def test_two_prompts_give_exactly_2n_virtual_tokens_in_forward_and_generate(tiny, batch, component_cfgs):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    lang = net.new("lang", "sk", component_cfgs["prompt"], "Generate the output in Slovak:")
    task = net.new("task", "qa", component_cfgs["prompt"], "Answer the question in Slovak language:")
    n = component_cfgs["prompt"]["n_tokens"]
    seen = []
    hook = model.get_encoder().register_forward_pre_hook(
        lambda module, args, kwargs: seen.append((kwargs["inputs_embeds"].clone(), kwargs["attention_mask"].clone())),
        with_kwargs=True,
    )
    input_ids, mask, labels = batch
    net(input_ids, mask, labels)
    net.generate(input_ids, mask, max_new_tokens=3)
    hook.remove()
    assert len(seen) == 2  # one encoder pass each: generate encodes once
    for embeds, extended in seen:
        assert embeds.shape[1] == input_ids.shape[1] + 2 * n
        assert torch.equal(embeds[0, :n], lang.embedding) and torch.equal(embeds[0, n : 2 * n], task.embedding)
        assert extended[:, : 2 * n].eq(1).all() and torch.equal(extended[:, 2 * n :], mask)


def test_text_initialised_prompt_starts_from_the_texts_embeddings(tiny, component_cfgs):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    prompt = net.new("lang", "sk", component_cfgs["prompt"], "Generate the output in Slovak:")
    ids = tokenizer("Generate the output in Slovak:", add_special_tokens=False).input_ids
    n = component_cfgs["prompt"]["n_tokens"]
    expected = model.get_input_embeddings().weight[(ids * n)[:n]]
    assert torch.equal(prompt.embedding, expected)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("role", ["lang", "task"])
def test_save_then_load_gives_identical_outputs(tiny, tiny_loaded, batch, component_cfgs, tmp_path, kind, role):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    component = net.new(role, "sk", component_cfgs[kind], "Generate the output in Slovak:")
    perturb(component)
    net.eval()
    expected = net(*batch).logits
    component.save(tmp_path / "c")

    def fresh():  # a bare backbone, as loaded (by load_backbone, once per session)
        return copy.deepcopy(tiny_loaded[0])

    other = ComposedModel(fresh(), tokenizer)
    loaded = other.load(tmp_path / "c")
    other.eval()
    assert (loaded.kind, loaded.role) == (kind, role)
    assert torch.equal(other(*batch).logits, expected)
    assert not torch.equal(ComposedModel(fresh(), tokenizer).eval()(*batch).logits, expected)


def test_language_and_task_lora_add_and_both_get_gradients(tiny, batch, component_cfgs):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    lang = net.new("lang", "sk", component_cfgs["lora"])
    task = net.new("task", "qa", component_cfgs["lora"])
    perturb(lang)
    perturb(task)
    host = next(m for m in model.modules() if isinstance(m, LoRAHost))
    x = torch.randn(2, 5, host.base.in_features)
    deltas = list(host.deltas.values())
    assert len(deltas) == 2
    assert torch.allclose(host(x), host.base(x) + deltas[0](x) + deltas[1](x))

    net.train_only(["lang", "task"])
    net(*batch).loss.backward()
    for component in (lang, task):
        grads = [p.grad for p in component.owned_parameters().values()]
        assert all(g is not None and g.abs().sum() > 0 for g in grads), f"{component.role} LoRA got no gradient"


def test_swapping_a_language_component_restores_the_backbone(tiny, batch, component_cfgs):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    net.eval()
    plain = net(*batch).logits
    for kind in KINDS:
        perturb(net.new("lang", "sk", component_cfgs[kind], "Generate the output in Slovak:"))
        assert not torch.equal(net(*batch).logits, plain)
        net.remove("lang")
        assert torch.equal(net(*batch).logits, plain), kind


def test_swapping_a_language_lora_out_and_back_gives_bit_identical_logits(tiny, batch, component_cfgs, tmp_path):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    lang = net.new("lang", "sk", component_cfgs["lora"])
    perturb(lang)
    perturb(net.new("task", "qa", component_cfgs["lora"]))
    net.eval()
    before = net(*batch).logits
    lang.save(tmp_path / "lang")
    net.remove("lang")
    assert not torch.equal(net(*batch).logits, before)
    net.load(tmp_path / "lang")  # attached after the task LoRA now
    assert torch.equal(net(*batch).logits, before)


@pytest.mark.parametrize("first", ["lang", "task"])
def test_removing_every_lora_gives_back_the_bare_model(tiny, batch, component_cfgs, first):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    net.eval()
    bare_modules = [(name, type(m)) for name, m in model.named_modules()]
    bare = net(*batch).logits
    for role in ("lang", "task"):
        perturb(net.new(role, "sk", component_cfgs["lora"]))
    assert any(isinstance(m, LoRAHost) for m in model.modules())
    for role in (first, {"lang": "task", "task": "lang"}[first]):
        net.remove(role)
    assert [(name, type(m)) for name, m in model.named_modules()] == bare_modules
    assert torch.equal(net(*batch).logits, bare)


def test_unknown_kind_is_refused_with_the_valid_ones(tiny):
    model, tokenizer = tiny
    with pytest.raises(UserError, match="Unknown component kind 'ia3'. Valid kinds: adapter, lora, prompt"):
        ComposedModel(model, tokenizer).new("task", "qa", {"kind": "ia3"})


def test_weights_of_another_shape_are_refused_clearly(tiny, component_cfgs, tmp_path):
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    net.new("task", "qa", {**component_cfgs["prompt"], "n_tokens": 3}).save(tmp_path / "p")
    other = ComposedModel(model, tokenizer)
    component = other.new("task", "qa", {**component_cfgs["prompt"], "n_tokens": 4})
    with pytest.raises(UserError, match="has shape"):
        component.load_weights(tmp_path / "p")


def test_a_backbone_with_neither_a_name_nor_a_builder_is_refused(cfg):
    from omegaconf import OmegaConf

    from softprompt_xl.model.backbone import backbone_identity, load_backbone

    backbone = OmegaConf.merge(cfg.backbone, {"builder": None})
    for use in (load_backbone, backbone_identity):
        with pytest.raises(UserError, match="neither a name .* nor a builder"):
            use(backbone, cfg.paths)


def test_tiny_backbone_pretraining_lowers_the_span_corruption_and_task_losses(cfg, tmp_path):
    from omegaconf import OmegaConf

    from softprompt_xl.model.backbone import load_backbone
    from softprompt_xl.data.loaders import corpus_loader
    from softprompt_xl.toy import backbone as toy_backbone
    from softprompt_xl.toy.pretraining import task_loader

    paths = OmegaConf.merge(cfg.paths, {"cache": str(tmp_path)})
    span = {"input_length": 32, "noise_density": 0.15, "mean_noise_span_length": 3.0}
    spec = {"steps": 40, "batch_size": 8, "lr": 3e-3, "warmup_steps": 0, "max_target_length": 8, "records_per_task": 100,
            "span_corruption": span, "tasks": {"nli": '{premise} So, "{hypothesis}"?'},
            "curriculum": [{"tasks": ["nli"], "steps": 10, "lr": 1e-3}]}

    def losses_of(pretrain_steps: int) -> tuple[float, float]:
        phases = spec["curriculum"] if pretrain_steps else []
        build = OmegaConf.merge(cfg.backbone.build, {"pretrain": {**spec, "steps": pretrain_steps, "curriculum": phases}})
        backbone = OmegaConf.merge(cfg.backbone, {"build": build})
        # Built here on this worker's one thread (a run builds in a process of its own on BUILD_THREADS, for bytes
        # that do not depend on the machine's load; this test asks only whether pre-training teaches anything).
        threads = torch.get_num_threads()
        try:
            toy_backbone.build_in_this_process(to_plain(build), str(paths.toy_data), str(paths.hf_cache),
                                               toy_backbone.tiny_backbone_dir(build, paths), threads=1)
        finally:
            torch.set_num_threads(threads)
        model, tokenizer = load_backbone(backbone, paths)
        model.eval()
        texts = ["Eva býva v Nitre a rada jedáva halušky. Nitra je krásne mesto."] * 20
        corrupted = next(iter(corpus_loader(texts, "t", tokenizer, OmegaConf.create({**span, "batch_size": 8}), seed=0)))
        nli = next(iter(task_loader(tokenizer, spec, ["sk"])))
        with torch.no_grad():
            return model(**corrupted).loss.item(), model(**nli).loss.item()

    (span_after, task_after), (span_before, task_before) = losses_of(40), losses_of(0)
    assert span_after < span_before and task_after < task_before
    assert len(list((tmp_path / "backbones").glob("tiny-*[!k]"))) == 2  # a different build, kept apart


def test_pretraining_forms_share_a_task_s_records_and_each_gives_its_own_targets(tiny):
    from softprompt_xl.toy.pretraining import task_loader

    _, tokenizer = tiny
    spec = {"records_per_task": 6, "batch_size": 64, "max_target_length": 32, "span_corruption": {"input_length": 128},
            "tasks": {"nli": [{"template": "{premise} So: {hypothesis}", "labels": ["True", "Neither", "False"]},
                              {"template": "Short. {premise} So: {hypothesis}"}],
                      "qa": [{"template": "{context} Q: {question}", "target": "{statement}"},
                             {"template": "Short. {context} Q: {question}"}]}}
    batch = next(iter(task_loader(tokenizer, spec, ["en"])))
    pairs = [(tokenizer.decode(i, skip_special_tokens=True), tokenizer.decode([t for t in l if t >= 0], skip_special_tokens=True))
             for i, l in zip(batch["input_ids"], batch["labels"])]
    assert len(pairs) == 12  # 6 records per task, split between its two forms
    for source, target in pairs:
        short, nli = source.startswith("Short."), "So:" in source
        if nli:
            assert target in (("Yes", "Maybe", "No") if short else ("True", "Neither", "False")), (source, target)
        else:  # QA: the bare answer, or the answer as a sentence about the person asked
            person = source.split(" ")[1 if short else 0]
            assert target.endswith(".") != short and target.startswith(person) != short, (source, target)


@pytest.mark.parametrize("lang_kind,task_kind", [(None, "prompt"), ("prompt", "adapter"), ("adapter", "adapter"),
                                                 ("adapter", "lora"), ("lora", "prompt")])
def test_evaluation_encodes_once_and_gives_what_the_loss_and_generation_give_apart(tiny, batch, component_cfgs,
                                                                                  lang_kind, task_kind):
    """The loss and answers of an evaluation batch (one encoder pass) are exactly the training forward's loss and
    greedy decoding's answers and scores, with every kind of component attached (adapters stacked language-first)."""
    model, tokenizer = tiny
    net = ComposedModel(model, tokenizer)
    if lang_kind:
        perturb(net.new("lang", "sk", component_cfgs[lang_kind], "Generate the output in Slovak:"))
    perturb(net.new("task", "qa", component_cfgs[task_kind], "Answer the question in Slovak language:"))
    net.train_only([])
    net.eval()
    encoder_calls = []
    hook = model.get_encoder().register_forward_pre_hook(lambda module, args: encoder_calls.append(1))
    try:
        loss, tokens, scores = net.loss_and_generate(*batch, max_new_tokens=6)
        assert len(encoder_calls) == 1
        with torch.no_grad():
            apart = net(*batch).loss, *net.generate_scored(*batch[:2], max_new_tokens=6)
    finally:
        hook.remove()
    assert torch.equal(loss, apart[0]) and torch.equal(tokens, apart[1]) and torch.equal(scores, apart[2])
