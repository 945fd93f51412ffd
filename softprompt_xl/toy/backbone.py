"""The embedded defaults' backbones: a tiny mT5 (conf/backbone/tiny.yaml) and a tiny decoder-only Qwen2
(tiny_decoder.yaml), each with a tokenizer trained on the bundled data, briefly pre-trained (pretraining.py), built
once into the cache under a name made of everything that shapes it. The recipes' builds are shipped with the package
(built/), so the first run loads one instead of building it: `python -m softprompt_xl.toy.backbone --ship
[backbone=tiny_decoder]` rebuilds one from scratch after a change to its recipe."""

from __future__ import annotations

import functools
import gzip
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

import datasets
import torch
from filelock import FileLock
from transformers import (MT5Config, MT5ForConditionalGeneration, PreTrainedTokenizerFast, Qwen2Config,
                          Qwen2ForCausalLM, T5TokenizerFast)

from softprompt_xl.config import group_options, load_option, stable_hash, to_plain
from softprompt_xl.data.layout import CAUSAL, TextLayout
from softprompt_xl.data.loaders import model_text
from softprompt_xl.data.sources import load_split
from softprompt_xl.data.tasks import get_task
from softprompt_xl.errors import UserError
from softprompt_xl.runtime import progress
from softprompt_xl.runtime.atomic import atomic_dir
from softprompt_xl.toy.pretraining import pretrain

log = logging.getLogger(__name__)

TINY_FORMAT = 6  # bump when the way the tiny backbone is built changes, so old builds are not reused

# The default recipe's backbone exactly as the recipe builds it (tests/test_shipped_backbone.py rebuilds it and
# compares every byte), in the package beside the data it was built from. Loaded in place, read only: a build
# whose name (everything that shapes it) is found here is this one, so copying it into each paths.cache would
# only cost 9 MB per output root. Nothing is ever written here at runtime; only `--ship` replaces it.
SHIPPED_DIR = Path(__file__).resolve().parent / "built"
SHIP_COMMAND = "python -m softprompt_xl.toy.backbone --ship"


def tiny_backbone_name(build: Any, paths: Any) -> str:
    """The tiny backbone's directory name for `build`: its kind (tiny-, tiny_decoder-) and a hash of everything that
    shapes it."""
    build = to_plain(build)
    digest, task_text = _bundled_text(str(paths.toy_data), tuple(build["corpus_langs"]))
    kind = "tiny_decoder" if build.get("family") == CAUSAL else "tiny"
    return f"{kind}-" + stable_hash({"build": build, "corpus": digest, "tasks": task_text, "v": TINY_FORMAT})


def tiny_backbone_dir(build: Any, paths: Any) -> Path:
    """Where the tiny backbone for `build` is: the shipped copy if it is this build, else (built or to be built)
    under paths.cache."""
    name = tiny_backbone_name(build, paths)
    shipped = SHIPPED_DIR / name
    if (shipped / "config.json").is_file():
        return shipped
    return Path(paths.cache) / "backbones" / name


@functools.lru_cache(maxsize=None)
def _bundled_text(toy_data: str, langs: tuple[str, ...]) -> tuple[str, dict]:
    """The digest of the bundled files and the task texts that shape the tiny backbone: read once per process (they
    are package data), not at every store key a sweep's plan computes."""
    files = _corpus_files(Path(toy_data), list(langs))
    # These files also pin the generator that pre-training draws fresh records from (generate.fresh_records):
    # a change to it shows in them (tests/test_toy_data.py checks they are regenerated).
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    # Templates and label words are tokenizer text too (see below); comments and other settings are not. The
    # package's task files (package=True), as the build reads them in a process of its own, outside any Hydra app.
    task_text = {name: {k: v for k, v in to_plain(load_option("task", name, copy=False, package=True)).items()
                        if k in ("template", "labels", "separator", "tag_names")}
                 for name in group_options("task", package=True)}
    return digest, task_text


def ensure_tiny_backbone(build: Any, paths: Any) -> Path:
    """Directory of the tiny backbone for `build`, building it (once, under a lock) if it is not there."""
    target = tiny_backbone_dir(build, paths)
    if (target / "config.json").exists():
        if target.parent == SHIPPED_DIR:
            _say_shipped(target)
        return target
    build_tiny_backbone(build, paths, target)
    return target


@functools.lru_cache(maxsize=None)
def _say_shipped(target: Path) -> None:  # once per process, not at each of a job's stages
    log.info("The tiny backbone as shipped with the package: %s", target)


def build_tiny_backbone(build: Any, paths: Any, target: Path) -> None:
    """Build the tiny backbone for `build` into `target` (once, under a lock: another process may be building it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").exists():  # another process built it while we waited
            return
        log.info("Building the tiny backbone (once) in %s", target)
        # In a process of its own: building in the job's process left state behind (not found) that changed
        # what the job then trained, so the first run on a machine could not be reproduced by later ones.
        builder = multiprocessing.get_context("spawn").Process(
            target=build_in_this_process, args=(to_plain(build), str(paths.toy_data), str(paths.hf_cache), target))
        builder.start()
        try:
            builder.join()
        finally:
            if builder.is_alive():
                builder.terminate()
        if builder.exitcode != 0:
            raise RuntimeError(f"Building the tiny backbone in {target} failed (exit code {builder.exitcode}); "
                               "its error is printed above. Nothing was kept: the next run builds it again.")


# Torch threads of the build. The bytes it writes depend on them (a 15-step build gave other weights with 1 thread
# than with 2: parallel reductions add in another order), so the builder fixes them rather than take the caller's
# OMP_NUM_THREADS or core count: a name then stands for one set of bytes, whoever builds it (on the same kind of
# CPU), and the shipped copy can be checked against a rebuild. 2: what built the shipped copy (torch's default on
# the 2-core machine that built it; builds there with no thread setting all gave its bytes).
BUILD_THREADS = 2


def build_in_this_process(build: dict, toy_data: str, hf_cache: str, target: Path,
                          threads: int = BUILD_THREADS) -> None:
    """The build itself, in the calling process on `threads` torch threads (build_tiny_backbone runs it in a process
    of its own; a test may run it here)."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    progress.library_bars(progress.resolve("auto"))  # a process of its own: no bars in a file, as the job's
    torch.set_num_threads(threads)
    files = _corpus_files(Path(toy_data), build["corpus_langs"])
    with atomic_dir(target) as tmp:
        datasets_cache = str(Path(hf_cache) / "datasets")
        # The tasks' inputs and targets as the task configs write them, so that template words, label words
        # and the NER separator are tokens (a real mT5 vocabulary has them; a corpus-only one cut
        # "Checkworthy" into letters and mapped "$$" to <unk>).
        bundled = [name for name in group_options("task", package=True)
                   if (Path(toy_data) / build["corpus_langs"][0] / name).is_dir()]
        sources, targets = task_pairs(bundled, Path(toy_data), build["corpus_langs"], datasets_cache)
        texts = itertools.chain(_corpus_texts(files), sources, targets)
        causal = build.get("family") == CAUSAL
        tokenizer = (train_decoder_tokenizer(texts, build["vocab_size"]) if causal else
                     train_tokenizer(texts, build["vocab_size"], build["extra_ids"]))
        tokenizer.save_pretrained(tmp)
        torch.manual_seed(0)
        model = tiny_decoder(build, tokenizer) if causal else tiny_mt5(build, tokenizer)
        if build.get("pretrain") and build["pretrain"]["steps"]:
            pretrain(model, tokenizer, list(_corpus_texts(files, fields=("text",))), build["pretrain"],
                     build["corpus_langs"], TextLayout.of(build))
        if causal:
            model.config.attention_dropout = build["dropout_rate"]
        else:
            model.config.dropout_rate = build["dropout_rate"]
        model.save_pretrained(tmp)


def tiny_mt5(build: dict, tokenizer: Any) -> MT5ForConditionalGeneration:
    """The tiny mT5 of `build`, randomly initialised (seeded by the caller)."""
    config = MT5Config(
        vocab_size=len(tokenizer),
        d_model=build["d_model"],
        d_ff=build["d_ff"],
        d_kv=build["d_kv"],
        num_layers=build["num_layers"],
        num_decoder_layers=build["num_decoder_layers"],
        num_heads=build["num_heads"],
        # Pre-training draws fresh records, so nothing is memorised and dropout only slows learning (measured
        # on toy QA from scratch: exact match 10% instead of 2% after 1,000 steps); the saved model keeps
        # build.dropout_rate for the components trained on it.
        dropout_rate=(build.get("pretrain") or {}).get("dropout_rate", build["dropout_rate"]),
        tie_word_embeddings=build.get("tie_word_embeddings", False),
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.pad_token_id,
    )
    model = MT5ForConditionalGeneration(config)
    # HF initialises an untied lm_head with std 1, so a random model starts at a loss of ~30 instead
    # of ln(vocab) ~ 9; the 1/sqrt(d_model) scale is what tied T5 embeddings get.
    if not config.tie_word_embeddings:
        model.lm_head.weight.data.normal_(0.0, build["d_model"] ** -0.5)
    return model


def tiny_decoder(build: dict, tokenizer: Any) -> Qwen2ForCausalLM:
    """The tiny decoder-only model of `build`: Qwen2's architecture (grouped-query attention, RoPE, SwiGLU, RMSNorm),
    randomly initialised (seeded by the caller); no dropout in pre-training (see tiny_mt5)."""
    config = Qwen2Config(
        vocab_size=len(tokenizer), hidden_size=build["d_model"], intermediate_size=build["d_ff"],
        num_hidden_layers=build["num_layers"], num_attention_heads=build["num_heads"],
        num_key_value_heads=build["num_kv_heads"], max_position_embeddings=1024,
        tie_word_embeddings=build.get("tie_word_embeddings", True), attention_dropout=0.0,
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
    )
    return Qwen2ForCausalLM(config)


def task_pairs(names: list[str], toy_data: Path, langs: list[str], cache_dir: str) -> tuple[list[str], list[str]]:
    """(inputs, targets) of the bundled train splits of the named tasks in every language, in the templates of
    conf/task/: text the tokenizer is trained on."""
    sources, targets = [], []
    shown = datasets.is_progress_bar_enabled()  # off already in a file (runtime/progress.py): left off
    datasets.disable_progress_bars()  # two dozen tiny files: their bars would bury the one that matters
    try:
        for name in names:
            task_cfg = load_option("task", name, package=True)
            task = get_task(task_cfg)
            for lang in langs:
                path = toy_data / lang / name / f"train.{task_cfg.toy.ext}"
                source = {"path": task_cfg.toy.builder, "data_files": {"train": str(path)}}
                _, inputs, outputs = model_text(task, load_split(source, "train", cache_dir, f"{lang} {name}"))
                sources += inputs
                targets += outputs
    finally:
        if shown:
            datasets.enable_progress_bars()
    return sources, targets


def train_tokenizer(texts: Iterator[str], vocab_size: int, extra_ids: int) -> T5TokenizerFast:
    """A SentencePiece-style tokenizer with mT5's special tokens (pad 0, eos 1, unk 2, <extra_id_k>).

    BPE, not mT5's unigram: on a corpus this small and repetitive the unigram trainer stops at ~1,500 pieces
    and splits even its most frequent words ("question" -> "ques" "tion"), which made label words and
    answers several times longer than on mT5; BPE fills the vocabulary with whole words.
    Punctuation is split off words: otherwise BPE learns "tortoise." and "Bristol," as pieces of their own, so
    an answer at the end of a clause ("tortoise") is a different token from the one in the context, and
    extractive QA cannot be learnt by copying (mT5's vocabulary, trained on far more text, rarely merges them).
    """
    from tokenizers.processors import TemplateProcessing

    sp = _pieces(texts, vocab_size)
    # T5 appends </s> to every sequence; without this post-processor the model never sees an end of input.
    sp._tokenizer.post_processor = TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=sp._tokenizer, eos_token="</s>", unk_token="<unk>", pad_token="<pad>", extra_ids=extra_ids
    )


def train_decoder_tokenizer(texts: Iterator[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """The tiny decoder's tokenizer: `train_tokenizer`'s pieces with pad 0, EOS 1 (</s>) and unk 2, adding no token
    of its own to a text (as Qwen's): an input runs straight on into its continuation, and a document ends with
    </s> where next-token prediction packs documents (data/next_token.py)."""
    sp = _pieces(texts, vocab_size)
    return PreTrainedTokenizerFast(tokenizer_object=sp._tokenizer, eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>", model_input_names=["input_ids", "attention_mask"])


def _pieces(texts: Iterator[str], vocab_size: int):
    from tokenizers import SentencePieceBPETokenizer, pre_tokenizers

    sp = SentencePieceBPETokenizer(unk_token="<unk>")
    sp.pre_tokenizer = pre_tokenizers.Sequence([sp.pre_tokenizer, pre_tokenizers.Punctuation()])
    sp.train_from_iterator(
        texts, vocab_size=vocab_size, special_tokens=["<pad>", "</s>", "<unk>"], show_progress=False
    )
    return sp


def _corpus_files(toy_dir: Path, langs: list[str]) -> list[Path]:
    files = sorted(f for lang in langs for f in (toy_dir / lang).rglob("*.jsonl.gz"))
    if not files:
        raise UserError(
            f"No bundled toy data found under {toy_dir} for {langs}: the tiny backbone's tokenizer is trained on it. "
            "Regenerate it with `python -m softprompt_xl.toy.make_toy`, or check paths.toy_data."
        )
    return files


def _corpus_texts(files: list[Path], fields: tuple[str, ...] | None = None) -> Iterator[str]:
    # Every text of the bundled data (articles, questions, contexts, answers), so the task texts are covered
    # too; record ids and URLs are not language and would only waste vocabulary.
    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            for key, v in value.items():
                if key not in ("id", "url"):
                    yield from strings(v)
        elif isinstance(value, list):
            for v in value:
                yield from strings(v)

    for f in files:
        with gzip.open(f, "rt", encoding="utf-8") as lines:
            for line in lines:
                record = json.loads(line)
                if fields is None:
                    yield from strings(record)
                elif all(k in record for k in fields):
                    yield from (record[k] for k in fields)


def build_default_recipe(cache: Path, backbone: str = "tiny") -> Path:
    """A default recipe's backbone (the build of conf/backbone/<backbone>.yaml as the everyday command composes it:
    tiny, or tiny_decoder) built from scratch under `cache`, never taken from the shipped copy: what `--ship` ships
    and what the test that the shipped copy is current compares it with."""
    from hydra import compose, initialize_config_module

    from softprompt_xl.config import CONF_MODULE, register_resolvers

    if os.environ.get("SOFTPROMPT_XL_TINY_PRETRAIN_STEPS"):
        raise UserError("SOFTPROMPT_XL_TINY_PRETRAIN_STEPS is set, so this would build a backbone with "
                        f"{os.environ['SOFTPROMPT_XL_TINY_PRETRAIN_STEPS']} pre-training steps per phase, not the "
                        "default recipe's: unset it (env -u SOFTPROMPT_XL_TINY_PRETRAIN_STEPS ...) and run again.")
    register_resolvers()
    with initialize_config_module(CONF_MODULE, version_base="1.3"):
        cfg = compose("train", overrides=[f"paths.root={cache}", f"paths.cache={cache}", f"backbone={backbone}"])
    target = Path(cache) / "backbones" / tiny_backbone_name(cfg.backbone.build, cfg.paths)
    build_tiny_backbone(cfg.backbone.build, cfg.paths, target)
    return target


def ship(out: Path = SHIPPED_DIR, backbone: str = "tiny") -> Path:
    """Build a default recipe's backbone from scratch and make it the one shipped in `out` (older builds of the same
    kind removed)."""
    with tempfile.TemporaryDirectory() as cache:
        built = build_default_recipe(Path(cache), backbone)
        out.mkdir(parents=True, exist_ok=True)
        shipped = out / built.name
        staged = out / f".{built.name}.tmp"
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(built, staged)
        for f in staged.iterdir():
            f.chmod(0o644)  # the build writes some files 0600 (atomic_dir): a shipped file is everyone's to read
        for old in out.glob(built.name.split("-")[0] + "-*"):
            shutil.rmtree(old)
        staged.rename(shipped)
    return shipped


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m softprompt_xl.toy.backbone",
                                     description="The tiny backbone shipped with the package (softprompt_xl/toy/built/).")
    parser.add_argument("--ship", action="store_true", required=True,
                        help="rebuild a default recipe's backbone from scratch (10+ minutes on 2 cores) and ship it "
                             "in place of the one there: after any change to the recipe (conf/backbone/tiny.yaml's "
                             "or tiny_decoder.yaml's build, the bundled data, the task templates, this package's "
                             "build code)")
    parser.add_argument("backbone", nargs="?", default="backbone=tiny", metavar="backbone=NAME",
                        help="which: backbone=tiny (the default) or backbone=tiny_decoder")
    args = parser.parse_args(argv)
    backbone = args.backbone.removeprefix("backbone=")
    if backbone not in ("tiny", "tiny_decoder"):
        parser.error(f"{args.backbone}: the shipped backbones are backbone=tiny and backbone=tiny_decoder")
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    try:
        shipped = ship(backbone=backbone)
    except UserError as err:
        sys.exit(str(err))
    size = sum(f.stat().st_size for f in shipped.iterdir())
    print(f"Shipped {shipped} ({size / 1e6:.1f} MB); commit it (and the removal of the one it replaces).")


if __name__ == "__main__":
    main()
