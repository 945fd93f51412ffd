"""Components on decoder-only backbones (model/family.py's causal family), on tiny random models built here from
transformers configs (Qwen2, BLOOM, GPT-NeoX) with a tokenizer trained here as the tiny decoder's is: a soft prompt
against peft's prompt tuning, [lang ; task ; input] in forward and generate, left padding, the loss on the target
only, every kind pair trained and reloaded, LoRA by hand, bottleneck adapters through the adapters library (natively,
through a backbone config's interface, and refused clearly where neither serves), and the score of an answer cut at
the stop text."""

from __future__ import annotations

import copy
import itertools

import pytest
import torch
import torch.nn.functional as F
from peft import PromptTuningConfig, TaskType, get_peft_model
from transformers import (BloomConfig, BloomForCausalLM, GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast,
                          Qwen2Config, Qwen2ForCausalLM)

from softprompt_xl.config import load_option, to_plain
from softprompt_xl.data.layout import TextLayout
from softprompt_xl.errors import UserError
from softprompt_xl.model.components.adapter import init_adapters
from softprompt_xl.model.components.compose import ComposedModel
from softprompt_xl.model.components.lora import LoRAHost
from softprompt_xl.model.module import build_optimizer
from softprompt_xl.toy.backbone import train_decoder_tokenizer
from test_components import check_only_the_task_component_trains

KINDS = ("prompt", "adapter", "lora")
N = 4  # virtual tokens per prompt
CORPUS = ["Eva lives in Nitra and works in Bratislava.", "Ana lives in Madrid, near the old river.",
          "Tomas lives in Prague. He likes the old town.", "The river flows through the old town of Nitra."]
QA = [  # (input, target): inputs of different lengths, the first two of one length each (an unpadded batch)
    ("Q: Who lives in Madrid? A:", "Ana"),
    ("Q: Who lives in Prague? A:", "Tomas"),
    ("Eva lives in Nitra. Q: Where does Eva live? A:", "Nitra"),
    ("Q: Where? A:", "in Madrid"),
]
# The tiny decoder's layout: its tokenizer marks word boundaries itself, so a target follows "A:" with no separator.
LAYOUT = TextLayout.of(load_option("backbone", "tiny_decoder"))
LORA_TARGETS = list(load_option("backbone", "tiny_decoder").lora.targets)  # [q_proj, v_proj]


def cfg_of(kind: str, targets: list[str] = LORA_TARGETS) -> dict:
    """A component of `kind` as conf/component/ configures it, sized for the tiny models."""
    return {"prompt": {"kind": "prompt", "n_tokens": N, "init": "text"},
            "adapter": {"kind": "adapter", "reduction_factor": 4, "non_linearity": "relu"},
            "lora": {"kind": "lora", "r": 4, "alpha": 8, "dropout": 0.0, "targets": targets}}[kind]


@pytest.fixture(scope="module")
def tokenizer():
    texts = CORPUS + [f"{q} {a}" for q, a in QA]
    tokenizer = train_decoder_tokenizer(iter(texts * 4), 200)
    tokenizer.padding_side = "left"
    return tokenizer


def examples(tokenizer, pairs=QA, layout=LAYOUT) -> list[dict]:
    targets = layout.target_ids(tokenizer, [t for _, t in pairs])
    return [{"input_ids": tokenizer(q).input_ids, "labels": t} for (q, _), t in zip(pairs, targets)]


def collate(tokenizer, pairs=QA, layout=LAYOUT) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch = layout.collator(tokenizer)(examples(tokenizer, pairs, layout))
    return batch["input_ids"], batch["attention_mask"], batch["labels"]


def pretrained(model, tokenizer):
    """A few steps of next-token prediction on the texts, so that greedy answers are words and end with EOS (a random
    model repeats one token): what generation is compared on means something."""
    torch.manual_seed(0)
    texts = [tokenizer(t).input_ids + [tokenizer.eos_token_id] for t in CORPUS + [f"{q} {a}" for q, a in QA]]
    width = max(map(len, texts))
    ids = torch.tensor([t + [tokenizer.pad_token_id] * (width - len(t)) for t in texts])
    labels = torch.tensor([t + [-100] * (width - len(t)) for t in texts])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(60):
        optimizer.zero_grad()
        model(input_ids=ids, attention_mask=(labels != -100).long(), labels=labels).loss.backward()
        optimizer.step()
    return model.eval()


def special_ids(tokenizer) -> dict:
    return {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id,
            "eos_token_id": tokenizer.eos_token_id, "bos_token_id": tokenizer.eos_token_id}


def tiny_qwen(tokenizer):
    torch.manual_seed(0)
    config = Qwen2Config(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=True,
                         **special_ids(tokenizer))
    return pretrained(Qwen2ForCausalLM(config), tokenizer)


@pytest.fixture(scope="module")
def bare_qwen(tokenizer):
    """A tiny Qwen2 (the adapters library supports it), pre-trained briefly; never attached to (tests copy it)."""
    return tiny_qwen(tokenizer)


@pytest.fixture(scope="module")
def bare_bloom(tokenizer):
    """A tiny BLOOM (ALiBi: no position ids; the adapters library knows it only through an interface)."""
    torch.manual_seed(0)
    config = BloomConfig(hidden_size=32, n_layer=2, n_head=4, **special_ids(tokenizer))
    return pretrained(BloomForCausalLM(config), tokenizer)


@pytest.fixture(scope="module")
def bare_neox(tokenizer):
    """A tiny GPT-NeoX: the adapters library does not support it, and no interface is given."""
    torch.manual_seed(0)
    config = GPTNeoXConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                           max_position_embeddings=256, **special_ids(tokenizer))
    return GPTNeoXForCausalLM(config).eval()


BLOOM_INTERFACE = to_plain(load_option("backbone", "bloomz_560m").adapters_interface)
BLOOM_LORA_TARGETS = list(load_option("backbone", "bloomz_560m").lora.targets)  # [query_key_value]


def composed(bare, tokenizer, interface: dict | None = None) -> ComposedModel:
    """A fresh composed model on a copy of `bare`, made ready for adapters as load_backbone makes it."""
    model = copy.deepcopy(bare)
    init_adapters(model, interface)
    return ComposedModel(model, tokenizer).eval()


def perturb(component, scale: float = 0.05, seed: int = 1):
    """Non-trivial weights (LoRA's up matrix and an adapter's up projection start at or near zero)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in component.owned_parameters().values():
            p.add_(torch.randn(p.shape, generator=generator) * scale)
    return component


def snapshot(net) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in net.named_parameters()}


# --- 1. one soft prompt is peft's prompt tuning ----------------------------------------------------------------------
def test_one_soft_prompt_gives_peft_prompt_tuning_s_logits_loss_and_generations(tokenizer, bare_qwen):
    net = composed(bare_qwen, tokenizer)
    prompt = perturb(net.new("task", "qa", cfg_of("prompt"), "Answer the question:"), scale=0.3)
    reference = get_peft_model(copy.deepcopy(bare_qwen),
                               PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=N)).eval()
    with torch.no_grad():
        reference.prompt_encoder["default"].embedding.weight.copy_(prompt.embedding)

    input_ids, mask, labels = collate(tokenizer, QA[:2])
    assert mask.all() and (labels != -100).all(), "the batch must be unpadded (peft's forward has no position ids)"
    width, target_width = input_ids.shape[1], labels.shape[1]

    def final_states(model):  # the last hidden states of every position, caught on the final norm
        caught = []
        hook = model.get_decoder().norm.register_forward_hook(lambda module, args, output: caught.append(output))
        return caught, hook

    ours_states, hook = final_states(net.backbone)
    with torch.no_grad():
        ours = net(input_ids, mask, labels)
    hook.remove()
    theirs_states, hook = final_states(reference.get_base_model())
    joined = torch.cat([input_ids, labels], dim=1)
    with torch.no_grad():
        theirs = reference(input_ids=joined, attention_mask=torch.ones_like(joined),
                           labels=torch.cat([torch.full_like(input_ids, -100), labels], dim=1))
    hook.remove()
    # The logits of every input and target position (our forward computes the lm head on the target's positions
    # only: the others from the final hidden states through the same head), the returned logits aligned with the
    # labels, and the loss.
    lm_head = net.backbone.get_output_embeddings()
    with torch.no_grad():
        all_ours = lm_head(ours_states[0][:, N:])
        all_theirs = lm_head(theirs_states[0][:, N:])
    assert all_ours.shape[1] == width + target_width
    differences = {
        "logits of the input and target positions": (all_ours - all_theirs).abs().max().item(),
        "logits predicting the targets": (ours.logits - theirs.logits[:, N + width - 1:-1]).abs().max().item(),
        "loss": (ours.loss - theirs.loss).abs().item(),
    }
    print(f"soft prompt vs peft PromptTuning (CAUSAL_LM), max abs difference: {differences}")
    # Same weights and the same computation on the same inputs (positions 0.. both, unpadded): only the order of
    # float operations may differ (our lm head runs on a slice of the positions), hence a float32 rounding tolerance.
    assert max(differences.values()) <= 1e-5, differences

    # Greedy generation, unpadded and left-padded (peft puts its prompt before the padding too; transformers derives
    # the positions from the mask, as our forward does).
    for pairs in (QA[:2], QA):
        input_ids, mask, _ = collate(tokenizer, pairs)
        ours = net.generate(input_ids, mask, max_new_tokens=8)
        with torch.no_grad():
            theirs = reference.generate(input_ids=input_ids, attention_mask=mask, max_new_tokens=8, do_sample=False,
                                        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        print(f"generations ({len(pairs)} inputs): ours {tokenizer.batch_decode(ours)}; peft's "
              f"{tokenizer.batch_decode(theirs[:, input_ids.shape[1]:])}; equal: "
              f"{torch.equal(ours, theirs[:, input_ids.shape[1]:])}")
        assert torch.equal(ours, theirs[:, input_ids.shape[1]:])
        assert torch.equal(theirs[:, :input_ids.shape[1]], input_ids)
    assert ours.eq(tokenizer.eos_token_id).any(dim=1).all(), "the control: answers that end, not one repeated token"


# --- 2. two prompts: [lang ; task ; input], 2n virtual tokens -------------------------------------------------------
def test_two_prompts_reach_the_decoder_as_lang_then_task_then_input_in_forward_and_generate(tokenizer, bare_qwen):
    net = composed(bare_qwen, tokenizer)
    lang = perturb(net.new("lang", "sk", cfg_of("prompt"), "Generate the output in Slovak:"), seed=1)
    task = perturb(net.new("task", "qa", cfg_of("prompt"), "Answer the question:"), seed=2)
    input_ids, mask, labels = collate(tokenizer)
    assert not mask.all(), "the control: inputs of different lengths, padded on the left"
    width = input_ids.shape[1]
    calls = []
    hook = net.backbone.get_decoder().register_forward_pre_hook(
        lambda module, args, kwargs: calls.append({k: kwargs.get(k) for k in
                                                   ("input_ids", "inputs_embeds", "attention_mask", "position_ids")}),
        with_kwargs=True)
    try:
        with torch.no_grad():
            net(input_ids, mask, labels)
            forward_calls, calls[:] = list(calls), []
            answers = net.generate(input_ids, mask, max_new_tokens=5)
    finally:
        hook.remove()
    assert len(forward_calls) == 1
    embedded = net.backbone.get_input_embeddings()(input_ids)
    (forward,), (first, *steps) = forward_calls, calls
    assert len(steps) == answers.shape[1] - 1  # one cached step per further token
    for call, extra in ((forward, labels.shape[1]), (first, 0)):
        embeds, extended = call["inputs_embeds"], call["attention_mask"]
        assert embeds.shape[1] == 2 * N + width + extra and extended.shape[1] == embeds.shape[1]
        assert all(torch.equal(e[:N], lang.embedding) and torch.equal(e[N:2 * N], task.embedding) for e in embeds)
        assert torch.equal(embeds[:, 2 * N:2 * N + width], embedded)
        assert extended[:, :2 * N].eq(1).all() and torch.equal(extended[:, 2 * N:2 * N + width], mask)
    assert torch.equal(forward["attention_mask"][:, 2 * N + width:], (labels != -100).long())
    # Positions count only what the mask keeps, in forward and in generate alike: the same numbers on every kept
    # position, and the first answer token right after its input's last one.
    kept = first["attention_mask"].bool()
    expected = first["attention_mask"].cumsum(-1) - 1
    assert torch.equal(forward["position_ids"][:, :kept.shape[1]][kept], expected[kept])
    assert torch.equal(first["position_ids"][kept], expected[kept])
    for i, step in enumerate(steps):
        assert step["inputs_embeds"] is None and step["input_ids"].shape[1] == 1
        assert step["attention_mask"].shape[1] == 2 * N + width + 1 + i
        assert torch.equal(step["position_ids"][:, 0], 2 * N + mask.sum(-1) + i)


# --- 3. left padding ------------------------------------------------------------------------------------------------
def with_components(bare, tokenizer, interface=None, targets=LORA_TARGETS) -> ComposedModel:
    net = composed(bare, tokenizer, interface)
    perturb(net.new("lang", "sk", cfg_of("prompt"), "Generate the output in Slovak:"), seed=1)
    perturb(net.new("task", "qa", cfg_of("lora", targets), "Answer the question:"), seed=2)
    return net


@pytest.mark.parametrize("arch", ["qwen2", "bloom"])
def test_left_padded_batches_give_what_each_example_gives_alone(tokenizer, bare_qwen, bare_bloom, arch):
    """Qwen2 reads position ids, BLOOM's ALiBi reads the mask: either way, padding changes nothing."""
    net = (with_components(bare_qwen, tokenizer) if arch == "qwen2" else
           with_components(bare_bloom, tokenizer, BLOOM_INTERFACE, BLOOM_LORA_TARGETS))
    input_ids, mask, labels = collate(tokenizer)
    assert len(set(mask.sum(-1).tolist())) > 2 and len(set((labels != -100).sum(-1).tolist())) > 1
    with torch.no_grad():
        batched = net(input_ids, mask, labels)
        answers, scores = net.generate_scored(input_ids, mask, max_new_tokens=6)
    losses, counts = [], []
    for b, pair in enumerate(QA):
        alone_ids, alone_mask, alone_labels = collate(tokenizer, [pair])
        assert alone_mask.all()
        with torch.no_grad():
            alone = net(alone_ids, alone_mask, alone_labels)
            alone_answer, alone_score = net.generate_scored(alone_ids, alone_mask, max_new_tokens=6)
        length = alone_labels.shape[1]
        torch.testing.assert_close(batched.logits[b, :length], alone.logits[0], rtol=0, atol=1e-5)
        losses.append(alone.loss)
        counts.append(length)
        answer = alone_answer[0]
        assert torch.equal(answers[b, :len(answer)], answer), (tokenizer.decode(answers[b]), tokenizer.decode(answer))
        assert answers[b, len(answer):].eq(tokenizer.pad_token_id).all()  # what follows an answer that ended
        torch.testing.assert_close(scores[b], alone_score[0], rtol=0, atol=1e-5)
    weighted = sum(loss * n for loss, n in zip(losses, counts)) / sum(counts)
    torch.testing.assert_close(batched.loss, weighted, rtol=0, atol=1e-5)
    assert not torch.allclose(batched.loss, torch.stack(losses).mean(), rtol=0, atol=1e-4)  # targets of other lengths


# --- 4. the loss is on the target only -----------------------------------------------------------------------------
def hand_loss(logits, labels):
    kept = labels != -100
    return F.cross_entropy(logits[kept].float(), labels[kept])


def test_the_loss_is_the_target_s_only(tokenizer, bare_qwen):
    net = with_components(bare_qwen, tokenizer)
    input_ids, mask, labels = collate(tokenizer)
    with torch.no_grad():
        out = net(input_ids, mask, labels)
    assert out.logits.shape[:2] == labels.shape
    torch.testing.assert_close(out.loss, hand_loss(out.logits, labels), rtol=0, atol=1e-6)

    # transformers' own loss on the whole sequence with the input masked out of the labels, no components: the same
    # loss, and logits[b, t] are those predicting labels[b, t].
    bare = composed(bare_qwen, tokenizer)
    ids, ones, target = collate(tokenizer, QA[:2])
    with torch.no_grad():
        ours = bare(ids, ones, target)
        theirs = bare.backbone(input_ids=torch.cat([ids, target], 1), labels=torch.cat([torch.full_like(ids, -100),
                                                                                        target], 1))
    torch.testing.assert_close(ours.loss, theirs.loss, rtol=0, atol=1e-6)
    torch.testing.assert_close(ours.logits, theirs.logits[:, ids.shape[1] - 1:-1], rtol=0, atol=1e-5)

    # A label position masked out: another loss, the hand loss over the remaining target tokens.
    fewer = labels.clone()
    fewer[0, 0] = -100
    with torch.no_grad():
        masked = net(input_ids, mask, fewer)
    assert not torch.allclose(masked.loss, out.loss)
    torch.testing.assert_close(masked.loss, hand_loss(masked.logits, fewer), rtol=0, atol=1e-6)

    # Other input tokens: other logits, and still the loss of the target tokens alone (as many as before).
    changed = input_ids.clone()
    kept = mask.bool()
    changed[kept] = (changed[kept] + 7) % (len(tokenizer) - 3) + 3
    with torch.no_grad():
        other = net(changed, mask, labels)
    assert not torch.allclose(other.logits, out.logits)
    torch.testing.assert_close(other.loss, hand_loss(other.logits, labels), rtol=0, atol=1e-6)
    # The gradient of the loss reaches the logits of the target tokens and of no other position (the lm head runs on
    # the positions predicting the targets only: no input token is predicted, no target padding counts).
    net.train_only(["task"])
    captured = []

    def catch(module, args, output):
        output.retain_grad()
        captured.append(output)

    hook = net.backbone.get_output_embeddings().register_forward_hook(catch)
    try:
        net(input_ids, mask, labels).loss.backward()
    finally:
        hook.remove()
    (logits,) = captured
    assert logits.shape[1] == labels.shape[1] + 1  # the lm head sees the positions predicting the targets only
    gradient = logits.grad[:, :-1].abs().sum(-1)
    assert torch.equal(gradient > 0, labels != -100)


# --- 5. every kind pair: only the task component trains; save and load give the same logits ------------------------
@pytest.mark.parametrize("lang_kind,task_kind", [(None, t) for t in KINDS] + list(itertools.product(KINDS, KINDS)))
def test_training_the_task_component_leaves_everything_else_bit_identical_and_it_reloads(
        tokenizer, bare_qwen, tmp_path, lang_kind, task_kind):
    net = composed(bare_qwen, tokenizer)
    if lang_kind:
        perturb(net.new("lang", "sk", cfg_of(lang_kind), "Generate the output in Slovak:"))
    task = net.new("task", "qa", cfg_of(task_kind), "Answer the question:")
    net.train()
    batch = collate(tokenizer)
    check_only_the_task_component_trains(net, task, batch)

    net.eval()
    with torch.no_grad():
        expected = net(*batch).logits
        answers = net.generate(*batch[:2], max_new_tokens=4)
    for role, component in net.components.items():
        component.save(tmp_path / role)
    other = composed(bare_qwen, tokenizer)
    for role in net.components:  # language first, as the stages load them
        loaded = other.load(tmp_path / role)
        assert (loaded.kind, loaded.role) == (net.components[role].kind, role)
    with torch.no_grad():
        assert torch.equal(other(*batch).logits, expected)
        assert torch.equal(other.generate(*batch[:2], max_new_tokens=4), answers)
        assert not torch.equal(composed(bare_qwen, tokenizer)(*batch).logits, expected)  # the control


# --- 6. LoRA: W x + dW_lang x + dW_task x --------------------------------------------------------------------------
def test_language_and_task_lora_add_to_the_projections_as_computed_by_hand(tokenizer, bare_qwen):
    net = composed(bare_qwen, tokenizer)
    lang = perturb(net.new("lang", "sk", cfg_of("lora")), scale=0.2, seed=1)
    task = perturb(net.new("task", "qa", cfg_of("lora")), scale=0.2, seed=2)
    hosts = {name: m for name, m in net.backbone.named_modules() if isinstance(m, LoRAHost)}
    layers = net.backbone.config.num_hidden_layers
    assert sorted(hosts) == sorted(f"model.layers.{i}.self_attn.{p}" for i in range(layers) for p in LORA_TARGETS)
    weights = {name: p.detach().clone() for name, p in bare_qwen.named_parameters()}
    seen = {}

    def catch(name):
        def hook(module, args, output):
            seen[name] = (args[0], output)
        return hook

    hooks = [host.register_forward_hook(catch(name)) for name, host in hosts.items()]
    try:
        with torch.no_grad():
            net(*collate(tokenizer))
    finally:
        for hook in hooks:
            hook.remove()
    assert seen.keys() == hosts.keys()
    scale = cfg_of("lora")["alpha"] / cfg_of("lora")["r"]
    for name, (x, output) in seen.items():
        key = name.replace(".", "/")
        delta = {c.role: c.owned_parameters() for c in (lang, task)}
        down_up = [(delta[role][f"{key}.down"], delta[role][f"{key}.up"]) for role in ("lang", "task")]
        base = x @ weights[f"{name}.weight"].t() + weights[f"{name}.bias"]  # the backbone's own W and b
        by_hand = base + sum(x @ down.t() @ up.t() * scale for down, up in down_up)
        assert all(up.abs().min() > 0 and down.abs().min() > 0 for down, up in down_up)
        torch.testing.assert_close(output, by_hand, rtol=0, atol=1e-5)
        for down, up in down_up:  # the control: each delta matters at this tolerance
            assert (x @ down.t() @ up.t() * scale).abs().max() > 1e-2


# --- 7. bottleneck adapters: natively, through an interface, or refused clearly ------------------------------------
def adapter_calls(model) -> tuple[list, list]:
    """Every bottleneck module of the adapters library in `model`, hooked: (label, place, x, residual, output) per
    call (the module computes output = up(down(x)) + residual)."""
    from adapters.methods.modeling import Adapter

    calls = []

    def catch(name):
        place, _, label = name.rpartition(".adapters.")

        def hook(module, args, kwargs, output):
            calls.append((label, place, args[0], kwargs["residual_input"], output[0]))
        return hook

    hooks = [module.register_forward_hook(catch(name), with_kwargs=True)
             for name, module in model.named_modules() if isinstance(module, Adapter)]
    return calls, hooks


@pytest.mark.parametrize("arch", ["qwen2", "bloom"])
def test_bottleneck_adapters_stack_language_first(tokenizer, bare_qwen, bare_bloom, arch):
    """Qwen2 natively; BLOOM through the adapters_interface of conf/backbone/bloomz_560m.yaml."""
    net = composed(bare_qwen, tokenizer) if arch == "qwen2" else composed(bare_bloom, tokenizer, BLOOM_INTERFACE)
    batch = collate(tokenizer)
    with torch.no_grad():
        bare_logits = net(*batch).logits
    lang = perturb(net.new("lang", "sk", cfg_of("adapter")), scale=0.2, seed=1)
    task = perturb(net.new("task", "qa", cfg_of("adapter")), scale=0.2, seed=2)
    layers = net.backbone.config.num_hidden_layers
    for component in (lang, task):  # in every layer
        assert len({name.split(".adapters.")[0] for name in component.owned_parameters()}) >= layers
    calls, hooks = adapter_calls(net.backbone)
    try:
        with torch.no_grad():
            logits = net(*batch).logits
    finally:
        for hook in hooks:
            hook.remove()
    assert not torch.allclose(logits, bare_logits)
    by_place: dict[str, list] = {}
    for label, place, *tensors in calls:
        by_place.setdefault(place, []).append((label, *tensors))
    assert len(by_place) >= layers
    for place, stacked in by_place.items():
        assert [label for label, *_ in stacked] == ["lang_sk", "task_qa"], place
        # The task adapter reads the stream after the language adapter: the language adapter's output with the
        # block's residual stream added back (x - residual), as the adapters library stacks (MAD-X).
        (_, lang_x, lang_residual, lang_output), (_, task_x, _, _) = stacked
        torch.testing.assert_close(task_x, lang_output + (lang_x - lang_residual), rtol=0, atol=1e-5, msg=place)
    # A training step on this stack moves the task adapter alone.
    net.train_only(["task"])
    before = snapshot(net)
    optimizer = build_optimizer({"name": "adamw", "lr": 1e-2}, list(task.owned_parameters().values()))
    net(*batch).loss.backward()
    optimizer.step()
    task_ids = {id(p) for p in task.owned_parameters().values()}
    for name, p in net.named_parameters():
        assert torch.equal(before[name], p) != (id(p) in task_ids), name


def test_a_backbone_the_adapters_library_cannot_serve_refuses_an_adapter_clearly_and_takes_a_prompt_and_lora(
        tokenizer, bare_neox):
    net = composed(bare_neox, tokenizer)  # no interface: adapters.init refuses GPT-NeoX
    with pytest.raises(UserError, match=r"cannot be added to this backbone \(gpt_neox\).*adapters_interface"):
        net.new("task", "qa", cfg_of("adapter"))
    assert "task" not in net.components
    batch = collate(tokenizer)
    with torch.no_grad():
        bare_logits = net(*batch).logits
    perturb(net.new("lang", "sk", cfg_of("prompt"), "Generate the output in Slovak:"))
    lora = perturb(net.new("task", "qa", cfg_of("lora", ["query_key_value"])), scale=0.2)
    assert lora.owned_parameters()
    net.train_only(["task"])
    out = net(*batch)
    assert not torch.allclose(out.logits, bare_logits)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in lora.owned_parameters().values())
    answers = net.generate(*batch[:2], max_new_tokens=3)
    assert answers.shape[0] == len(QA)


# --- 8. an answer cut at the stop text (continuation.stop) ---------------------------------------------------------
BYTE_LEVEL = TextLayout(True, " ")  # Qwen's, BLOOM's: " Ana" after "A:"


@pytest.fixture(scope="module")
def byte_level():
    """A byte-level BPE tokenizer (as Qwen's and BLOOM's; transformers' stop strings cannot read the tiny decoder's
    Metaspace vocabulary) and a tiny Qwen2 pre-trained with it."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator((CORPUS + [f"{q} {a}" for q, a in QA]) * 4, vocab_size=300,
                            special_tokens=["<pad>", "</s>", "<unk>"], show_progress=False)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="</s>", unk_token="<unk>",
                                        pad_token="<pad>", model_input_names=["input_ids", "attention_mask"])
    tokenizer.padding_side = "left"
    return tokenizer, tiny_qwen(tokenizer)


@pytest.mark.parametrize("pad_is_eos", [False, True], ids=["own-pad", "pad-is-eos"])
def test_an_answer_cut_at_the_stop_text_scores_its_tokens_up_to_the_stop(byte_level, pad_is_eos):
    """Each answer's score is the mean log-probability of its tokens up to and including its EOS, or the token that
    completed the stop text: not of the padding after it (Qwen's padding is its EOS: not that either)."""
    tokenizer, bare = byte_level
    if pad_is_eos:
        tokenizer = copy.deepcopy(tokenizer)
        tokenizer.pad_token = tokenizer.eos_token
    stop = " in"
    net = ComposedModel(copy.deepcopy(bare), tokenizer, stop=stop).eval()
    input_ids, mask, _ = collate(tokenizer, layout=BYTE_LEVEL)
    answers, scores = net.generate_scored(input_ids, mask, max_new_tokens=6)
    texts = tokenizer.batch_decode(answers, skip_special_tokens=True)
    cut = [b for b, text in enumerate(texts) if text.startswith(stop)]
    assert cut and answers[cut[0], 1:].eq(tokenizer.pad_token_id).all(), texts  # the control: one cut at its 1st token
    assert len(set(net.answers(answers))) > 1 and net.answers(answers)[cut[0]] == ""
    for b, answer in enumerate(answers.tolist()):
        if b in cut:
            assert stop in tokenizer.decode(answer[:1])  # cut at its first token
            produced = answer[:1]
        else:
            produced = answer[:answer.index(tokenizer.eos_token_id) + 1]
        alone_ids, alone_mask, _ = collate(tokenizer, [QA[b]], layout=BYTE_LEVEL)
        with torch.no_grad():  # the teacher-forced loss of exactly the answer's tokens: minus its mean log-probability
            loss = net(alone_ids, alone_mask, torch.tensor([produced])).loss
        torch.testing.assert_close(scores[b], -loss, rtol=0, atol=1e-5, msg=f"{texts[b]!r}: {produced}")
