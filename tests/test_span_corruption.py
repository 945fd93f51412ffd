import numpy as np

from softprompt_xl.data.span_corruption import SpanCorruptionCollator, compute_lengths


def test_paper_lengths():
    assert compute_lengths(256, 0.15, 3.0) == (284, 58)  # PAPER.md: 284 raw tokens -> 256 input / 58 target


def _restore(inputs: list[int], labels: list[int], sentinels: set[int], eos: int) -> list[int]:
    """Put the target spans back in place of the sentinels of the input."""
    spans, current = {}, None
    for tok in labels[:-1]:
        if tok in sentinels:
            current = tok
            spans[current] = []
        else:
            spans[current].append(tok)
    out = []
    for tok in inputs[:-1]:
        out.extend(spans[tok] if tok in sentinels else [tok])
    return out


def test_inputs_and_targets_have_fixed_lengths_and_restore_the_chunk(tiny):
    _, tokenizer = tiny
    collator = SpanCorruptionCollator(tokenizer, 64, 0.15, 3.0, seed=0)
    rng = np.random.default_rng(1)
    sentinel_ids = set(collator.sentinels.tolist())
    vocab = [i for i in range(3, len(tokenizer)) if i not in sentinel_ids]
    chunks = [{"input_ids": rng.choice(vocab, collator.expanded_length).tolist()} for _ in range(8)]
    batch = collator(chunks)
    assert batch["input_ids"].shape == (8, 64)
    assert batch["labels"].shape == (8, collator.target_length)
    for chunk, inputs, labels in zip(chunks, batch["input_ids"].tolist(), batch["labels"].tolist()):
        assert inputs[-1] == labels[-1] == tokenizer.eos_token_id
        assert inputs[0] != labels[0]
        assert any(t in sentinel_ids for t in inputs)
        assert _restore(inputs, labels, sentinel_ids, tokenizer.eos_token_id) == chunk["input_ids"]


def test_first_sentinel_is_extra_id_0(tiny):
    _, tokenizer = tiny
    collator = SpanCorruptionCollator(tokenizer, 64, 0.15, 3.0, seed=0)
    assert collator.sentinels[0] == tokenizer.convert_tokens_to_ids("<extra_id_0>")
