"""The tiny backbones shipped with the package (softprompt_xl/toy/built/: the tiny mT5 of backbone=tiny, the default,
and the tiny decoder-only Qwen2 of backbone=tiny_decoder): each is the build its current recipe names, a run on the
recipe loads it without building it or writing into it, and (slow) it is byte for byte what the recipe builds from
scratch."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from softprompt_xl.model.backbone import backbone_identity, load_backbone
from softprompt_xl.toy import backbone
from softprompt_xl.toy.backbone import SHIP_COMMAND, SHIPPED_DIR, build_default_recipe, tiny_backbone_name

SHIPPED = ("tiny", "tiny_decoder")  # the backbones whose recipes' builds ship


def regenerate(backbone_id: str) -> str:
    return (f"the recipe changed without the shipped backbone being rebuilt: run `env -u "
            f"SOFTPROMPT_XL_TINY_PRETRAIN_STEPS {SHIP_COMMAND} backbone={backbone_id}` (10+ minutes on 2 cores) and "
            f"commit {SHIPPED_DIR}")


@pytest.fixture(params=SHIPPED)
def default_recipe(request, make_cfg, monkeypatch, tmp_path):
    """A shipped recipe's backbone config as the everyday command composes it (the full pre-training, not the
    suite's short one) and paths with an empty cache."""
    monkeypatch.delenv("SOFTPROMPT_XL_TINY_PRETRAIN_STEPS", raising=False)  # read when the build is resolved
    cfg = make_cfg("+combo=lp_ta", "lang=sk", f"backbone={request.param}")
    return cfg.backbone, OmegaConf.merge(cfg.paths, {"cache": str(tmp_path / "cache")})


def _files(directory: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_the_shipped_backbone_is_the_one_the_recipe_names(default_recipe):
    backbone_cfg, paths = default_recipe
    name = tiny_backbone_name(backbone_cfg.build, paths)
    shipped = sorted(p.name for p in SHIPPED_DIR.glob(name.split("-")[0] + "-*"))  # one build of each kind
    assert shipped == [name], f"{SHIPPED_DIR} holds {shipped}: {regenerate(backbone_cfg.id)}"
    assert {p.name for p in (SHIPPED_DIR / name).iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json"}
    assert sorted(p.name.split("-")[0] for p in SHIPPED_DIR.iterdir()) == sorted(SHIPPED)  # nothing else ships


def test_a_run_on_the_default_recipe_loads_the_shipped_backbone_without_building_or_writing(default_recipe,
                                                                                           monkeypatch):
    backbone_cfg, paths = default_recipe
    shipped = SHIPPED_DIR / tiny_backbone_name(backbone_cfg.build, paths)

    def no_build(*args):
        raise AssertionError("the default recipe's backbone was built, not taken from the package")

    monkeypatch.setattr(backbone, "build_tiny_backbone", no_build)
    before = {p.name: _files(p) for p in SHIPPED_DIR.iterdir()}
    model, tokenizer = load_backbone(backbone_cfg, paths)
    assert Path(model.name_or_path) == shipped and Path(tokenizer.name_or_path) == shipped
    assert backbone_identity(backbone_cfg, paths) == {"name": shipped.name}  # store keys as if built in the cache
    assert not Path(paths.cache, "backbones").exists()
    assert {p.name: _files(p) for p in SHIPPED_DIR.iterdir()} == before  # nothing written, changed or added


def test_the_suite_runs_on_the_shipped_backbone_and_any_other_build_is_built_in_the_cache(cfg, tiny_dir, tmp_path):
    assert tiny_dir.parent == SHIPPED_DIR  # the suite tests what a user runs
    other = OmegaConf.merge(cfg.backbone.build, {"pretrain": {"steps": 7}})
    paths = OmegaConf.merge(cfg.paths, {"cache": str(tmp_path / "cache")})
    name = tiny_backbone_name(other, paths)
    assert name != tiny_dir.name and not (SHIPPED_DIR / name).exists()
    assert backbone.tiny_backbone_dir(other, paths) == tmp_path / "cache" / "backbones" / name


@pytest.mark.slow
def test_the_shipped_backbone_is_byte_identical_to_a_build_from_scratch(default_recipe, tmp_path):
    """10+ minutes on 2 cores each: the recipe built again in an empty cache. The bytes also depend on the kind
    of CPU (its vector instructions choose the kernels); the shipped copies were built on an x86-64 Xeon."""
    backbone_cfg, _ = default_recipe
    built = build_default_recipe(tmp_path / "scratch", backbone_cfg.id)
    shipped = SHIPPED_DIR / built.name
    assert shipped.is_dir(), f"no {shipped}: {regenerate(backbone_cfg.id)}"
    rebuilt, ours = _files(built), _files(shipped)
    assert sorted(rebuilt) == sorted(ours), regenerate(backbone_cfg.id)
    differ = [name for name in sorted(ours) if rebuilt[name][0] != ours[name][0]]
    assert not differ, f"{', '.join(differ)} differ from a build from scratch: {regenerate(backbone_cfg.id)}"


def test_ship_puts_the_rebuilt_backbone_in_place_of_the_old_one(monkeypatch, tmp_path):
    def fake_build(cache: Path, backbone_id: str) -> Path:  # the build itself is the slow test's
        built = cache / "backbones" / "tiny-new"
        built.mkdir(parents=True)
        (built / "model.safetensors").write_bytes(b"weights")
        (built / "model.safetensors").chmod(0o600)
        return built

    monkeypatch.setattr(backbone, "build_default_recipe", fake_build)
    out = tmp_path / "built"
    (out / "tiny-old").mkdir(parents=True)
    (out / "tiny-old" / "config.json").write_text("{}")
    (out / "tiny_decoder-other").mkdir()  # another kind's build stays
    shipped = backbone.ship(out)
    assert shipped == out / "tiny-new" and sorted(p.name for p in out.iterdir()) == ["tiny-new", "tiny_decoder-other"]
    assert (shipped / "model.safetensors").read_bytes() == b"weights"
    assert (shipped / "model.safetensors").stat().st_mode & 0o777 == 0o644  # everyone's to read once installed
