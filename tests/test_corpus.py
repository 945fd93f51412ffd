"""Stage 1's streamed corpus: the selection equals datasets' split slicing, the stream reads only what it trains on,
and a stream resumed from a checkpointed position gives exactly the batches the uninterrupted one gives."""

from __future__ import annotations

import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from omegaconf import OmegaConf

from softprompt_xl.data.corpus import POSITION, Position, CorpusStream, documents, heldout_batches
from softprompt_xl.errors import UserError

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda".split()


def _texts(n: int) -> list[str]:
    return [f"Document {i}. " + " ".join(WORDS[(i + k) % len(WORDS)] for k in range(5 + i % 17)) for i in range(n)]


@pytest.fixture
def parquet_corpus(tmp_path):
    texts = _texts(997)
    for shard in range(3):  # Wikipedia's layout: several Parquet shards, several row groups each
        rows = [{"id": str(i), "title": f"t{i}", "text": t} for i, t in enumerate(texts) if i % 3 == shard]
        pq.write_table(pa.Table.from_pylist(rows), tmp_path / f"train-{shard:05d}-of-00003.parquet", row_group_size=40)
    return {"path": "parquet", "data_files": {"train": str(tmp_path / "*.parquet")}}


@pytest.fixture
def jsonl_corpus(tmp_path):
    path = tmp_path / "wiki.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in _texts(203)), encoding="utf-8")
    return {"path": "json", "data_files": {"train": str(path)}}


@pytest.mark.parametrize("corpus", ["parquet_corpus", "jsonl_corpus"])
@pytest.mark.parametrize("selector", ["train[:5%]", "train[5%:]", "train[:100]", "train[100:]", "train[-10%:]",
                                      "train[33%:66%]", "train"])
def test_a_selection_streams_exactly_the_documents_datasets_slices(request, tmp_path, corpus, selector):
    source = request.getfixturevalue(corpus)
    streamed = documents({**source, "splits": {"train": selector}}, "train", str(tmp_path / "cache"), "test")
    expected = datasets.load_dataset(source["path"], data_files=source["data_files"], split=selector,
                                     cache_dir=str(tmp_path / "cache2"))
    assert [r["text"] for r in streamed] == expected["text"]


def test_a_source_without_heldout_has_none_and_a_bad_selection_is_refused(parquet_corpus, tmp_path):
    assert documents({**parquet_corpus, "splits": {"train": "train"}}, "heldout", str(tmp_path), "x") is None
    with pytest.raises(UserError, match=r"invalid train selection 'train\[:5%\[' .*split syntax"):
        documents({**parquet_corpus, "splits": {"train": "train[:5%["}}, "train", str(tmp_path), "x")
    with pytest.raises(UserError, match=r"several parts .* one contiguous range"):
        documents({**parquet_corpus, "splits": {"train": "train[:5%]+train[10%:]"}}, "train", str(tmp_path), "x")


def test_a_corpus_without_text_is_refused_with_its_columns(tmp_path):
    pq.write_table(pa.Table.from_pylist([{"body": "x"}]), tmp_path / "c.parquet")
    with pytest.raises(UserError, match=r"no 'text' column .*body"):
        documents({"path": "parquet", "data_files": {"train": str(tmp_path / "c.parquet")}}, "train", str(tmp_path), "x")


SPEC = OmegaConf.create({"input_length": 32, "noise_density": 0.15, "mean_noise_span_length": 3.0, "batch_size": 4,
                         "shuffle_batches": 3})


def _stream(tokenizer, source, tmp_path, steps, start=0, resume=None, **kw) -> CorpusStream:
    stream = CorpusStream(documents(source, "train", str(tmp_path), "test"), tokenizer, SPEC, seed=7,
                                  steps=steps, start_step=start, **kw)
    stream.resume = resume
    return stream


def _same(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in ("input_ids", "attention_mask", "labels"))


def test_a_resumed_stream_continues_with_the_same_batches_across_blocks_and_epochs(tiny, parquet_corpus, tmp_path):
    _, tokenizer = tiny
    source = {**parquet_corpus, "splits": {"train": "train[:12]"}}  # a few chunks: several epochs in 30 steps
    whole = list(_stream(tokenizer, source, tmp_path, steps=30))
    assert len(whole) == 30 and all(b["input_ids"].shape == (4, 32) for b in whole)
    assert not _same(whole[0], whole[1])
    positions = {i: b[POSITION] for i, b in enumerate(whole) if POSITION in b}
    assert sorted(positions) == list(range(0, 30, 3))  # one per block
    assert max(p["epoch"] for p in positions.values()) >= 2
    for start in (1, 3, 7, 17, 29):  # inside a block, at a block start, after several epochs
        block = start // 3 * 3
        for where in {block, max(block - 3, 0)}:  # the block of the step, or the one before (a checkpoint's)
            resumed = list(_stream(tokenizer, source, tmp_path, 30, start, Position(**positions[where])))
            assert len(resumed) == 30 - start
            assert all(_same(a, b) for a, b in zip(whole[start:], resumed)), (start, where)


def test_the_processes_of_a_run_share_each_batch(tiny, parquet_corpus, tmp_path, monkeypatch):
    _, tokenizer = tiny
    # the chunks themselves, uncorrupted (each process draws masks of its own)
    monkeypatch.setattr("softprompt_xl.data.span_corruption.SpanCorruptionCollator.corrupt",
                        lambda self, ids, number: {"input_ids": torch.as_tensor(ids)})
    one = list(_stream(tokenizer, parquet_corpus, tmp_path, steps=7))
    halves = [list(_stream(tokenizer, parquet_corpus, tmp_path, steps=7, rank=r, world=2)) for r in (0, 1)]
    for whole, first, second in zip(one, *halves, strict=True):
        assert first["input_ids"].shape[0] == second["input_ids"].shape[0] == 2
        assert torch.equal(torch.cat([first["input_ids"], second["input_ids"]]), whole["input_ids"])


def test_the_first_batch_reads_only_the_documents_of_its_block(tiny, parquet_corpus, tmp_path):
    _, tokenizer = tiny
    read = []
    docs = documents(parquet_corpus, "train", str(tmp_path), "test").map(lambda row: read.append(1) or row)
    stream = CorpusStream(docs, tokenizer, SPEC, seed=7, steps=1000)
    next(iter(stream))
    # a block of 3 batches of 4 chunks of 34 tokens and at most one group of 64 documents more, not all 997
    assert 0 < len(read) <= 128


def test_a_corpus_smaller_than_a_chunk_is_refused(tiny, tmp_path):
    _, tokenizer = tiny
    path = tmp_path / "small.jsonl"
    path.write_text(json.dumps({"text": "tiny"}) + "\n", encoding="utf-8")
    with pytest.raises(UserError, match="fewer than one chunk"):
        next(iter(_stream(tokenizer, {"path": "json", "data_files": {"train": str(path)}}, tmp_path, steps=2)))


def test_heldout_batches_are_fixed_and_capped(tiny, parquet_corpus, tmp_path):
    _, tokenizer = tiny
    docs = documents({**parquet_corpus, "splits": {"heldout": "train[90%:]"}}, "heldout", str(tmp_path), "x")
    a = heldout_batches(docs, tokenizer, SPEC, seed=1, max_chunks=10, batch_size=4)
    b = heldout_batches(docs, tokenizer, SPEC, seed=1, max_chunks=10, batch_size=4)
    assert [len(x["input_ids"]) for x in a] == [4, 4, 2]
    assert all(_same(x, y) for x, y in zip(a, b))
