"""Config helpers shared by every entry point: OmegaConf resolvers, plain conversion, stable hashing."""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent  # the source checkout, when the package runs from one (see default_root)
# The config tree is package data: Hydra finds it by module (pkg://), so an installed package finds its own copy.
CONF_MODULE = "softprompt_xl.conf"
CONF_PATH = f"pkg://{CONF_MODULE}"  # config_path of the entry points' @hydra.main
CONF_DIR = PACKAGE_DIR / "conf"  # the same tree on disk, for the code that lists or reads its files


def default_root() -> str:
    """paths.root when neither paths.root nor $SOFTPROMPT_XL_ROOT is given: runs/ in the source checkout when the
    package runs from one (an editable install, or PYTHONPATH), else runs/ under the directory the command was
    started in - an installed package must not write into site-packages."""
    if (PROJECT_DIR / "pyproject.toml").is_file():
        return str(PROJECT_DIR / "runs")
    return str(Path(_start_dir()) / "runs")


def _start_dir() -> str:
    # Hydra's record of the directory the command started in, which stays right inside a job even with
    # hydra.job.chdir=true; outside a Hydra app (compose), the current directory.
    from hydra.core.hydra_config import HydraConfig

    return HydraConfig.get().runtime.cwd if HydraConfig.initialized() else os.getcwd()


def register_resolvers() -> None:
    # Registered at import of every entry point, before Hydra composes: conf/paths/default.yaml uses them.
    for name, value in (("spxl.default_root", default_root), ("spxl.package_dir", lambda: str(PACKAGE_DIR))):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, value)
    if not OmegaConf.has_resolver("spxl.mul"):  # e.g. GPUs per node = GPUs per process x processes
        OmegaConf.register_new_resolver("spxl.mul", lambda a, b: int(a) * int(b))
    # conf/combo/pair.yaml: a combo's name and components from its two kinds; `--help`: the kinds.
    for name, value in (("spxl.pair_name", pair_name), ("spxl.component", pair_component),
                        ("spxl.kinds_help", kinds_help)):
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, value)
    # spxl.run_name (a job's directory, conf/train.yaml) is registered by its owner, pipeline/records.py, on import.



# --- any language kind x any task kind: `+combo=pair combo.lang=KIND combo.task=KIND` (conf/combo/pair.yaml) ---------
# KIND is a component kind - a conf/component/<kind>.yaml, whose class is registered in softprompt_xl/model/components/
# (pipeline/schema.py checks both before anything is planned) - or `none`: no component in that role.
NO_COMPONENT = "none"
# The letters the first three kinds are named by in the combo files (lp_ta, la_tl, tp): a pair of them is named as its
# file is, so the two ways to ask for it are one configuration with the same store keys. Other kinds go by their name.
LEGACY_LETTERS = {"prompt": "p", "adapter": "a", "lora": "l"}


def component_kinds() -> list[str]:
    """The component kinds that have a config (conf/component/<kind>.yaml, or in a config directory of one's own)."""
    return group_options("component")


def is_no_component(kind: Any) -> bool:
    return kind is None or str(kind) == NO_COMPONENT


def pair_name(lang: Any, task: Any) -> str:
    """The combo name of a language kind x a task kind: lp_ta, la_tl, tp (no language part), lp (no task part),
    zero_shot (neither); lprefix_tia3 for kinds other than the first three."""
    short = {role: None if is_no_component(kind) else LEGACY_LETTERS.get(str(kind), str(kind))
             for role, kind in (("lang", lang), ("task", task))}
    parts = [f"{role[0]}{short[role]}" for role in ("lang", "task") if short[role]]
    return "_".join(parts) or "zero_shot"


def pair_component(role: str, kind: Any, tune: Any, _parent_: Any) -> DictConfig | None:
    """The component of `kind` for a pair's `role` (lang or task): its conf/component/<kind>.yaml as written, with the
    pair's `tune` for the role over it (`+combo.tune.task.r=16`), placed in the run's config so that what it
    interpolates (`${backbone.lr.prompt}`, `${backbone.lora.targets}`) is the run's; None for `none`."""
    if is_no_component(kind):
        return None
    found = load_option("component", str(kind), copy=False)
    if found is None:
        from softprompt_xl.errors import UserError

        raise UserError(unknown_kind(kind, component_kinds(), f"combo.{role}"))
    component = OmegaConf.to_container(found, resolve=False)
    if tune:
        component = OmegaConf.to_container(OmegaConf.merge(component, _raw(tune)), resolve=False)
    return OmegaConf.create(component, parent=_parent_)


def _raw(node: Any) -> Any:
    return OmegaConf.to_container(node, resolve=False) if isinstance(node, (DictConfig, ListConfig)) else node


def unknown_kind(kind: Any, valid: list[str], setting: str) -> str:
    """What a pair naming a kind that is not one is told (pipeline/schema.py says it before planning)."""
    return (f"{setting}={kind} is not a component kind. Valid kinds: {', '.join(valid)}, or {NO_COMPONENT} (no "
            "component in that role), e.g. `+combo=pair combo.lang=prompt combo.task=lora`. A kind is a config file "
            "conf/component/<kind>.yaml and a class registered in softprompt_xl/model/components/ "
            "(`python -m softprompt_xl.train --help` lists them with their hyperparameters).")


def kinds_help(_root_: Any) -> str:
    """`--help`'s list of component kinds (conf/hydra/help/softprompt_xl.yaml): each with the first line of its file's
    comment and its hyperparameters, with their values on the chosen backbone."""
    lines = []
    for kind in component_kinds():
        found = load_option("component", kind, copy=False)
        node = OmegaConf.create(OmegaConf.to_container(found, resolve=False), parent=_root_)
        values = []
        for name, raw in flat_settings(OmegaConf.to_container(found, resolve=False)):
            if name == "kind":
                continue
            if isinstance(raw, str) and "${" in raw:
                try:
                    value = OmegaConf.select(node, name, throw_on_missing=True)
                    value = to_plain(value)
                except Exception:  # noqa: BLE001 - a value of another backbone's: shown as written
                    value = "?"
                value = f"[{', '.join(map(str, value))}]" if isinstance(value, list) else value
                raw = f"{value} ({raw.strip('${}')})"
            values.append(f"{name}={raw}")
        path = CONF_DIR / "component" / f"{kind}.yaml"
        about = next((line.lstrip("# ").strip() for line in path.read_text().splitlines() if line.startswith("#")),
                     "") if path.is_file() else ""
        lines.append(f"  {kind}: {about}".rstrip())
        lines.append(f"      {'; '.join(values)}")
    # `$` is string.Template's (Hydra's help template), `${` OmegaConf's: neither is left in the text.
    return "\n".join(lines).replace("$", "")


def flat_settings(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(dotted name, value) of every setting of a plain mapping, nested ones by their path: optimizer.lr."""
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in flat_settings(v, f"{prefix}{k}.")]
    return [(prefix.rstrip("."), value)]


def to_plain(node: Any) -> Any:
    """Resolved plain Python (dicts, lists, scalars) from an OmegaConf node; anything else is returned as is."""
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=True)
    return node


def stable_hash(obj: Any, length: int = 12) -> str:
    """Hex digest of a JSON-able value that does not depend on key order or the Python process."""
    text = json.dumps(_orderable(to_plain(obj)), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def _orderable(value: Any) -> Any:
    """`value` with every mapping whose keys cannot be sorted together (a label map of ids and letters:
    `{0: 0, e: 0}`) written as its list of [key, value] pairs in a fixed order, so that json's sort_keys can order
    the rest. Mappings whose keys sort (all strings, all numbers) stay as they are, and so does every key hashed
    before."""
    if isinstance(value, dict):
        items = {k: _orderable(v) for k, v in value.items()}
        try:
            sorted(items)
        except TypeError:
            return {"(mixed keys)": [[k, items[k]] for k in sorted(items, key=lambda k: (type(k).__name__, str(k)))]}
        return items
    if isinstance(value, (list, tuple)):
        return [_orderable(v) for v in value]
    return value


def keep_library_caches_under(paths: Any) -> None:
    """matplotlib (imported by torchmetrics inside Lightning, and by the report) writes a config and font cache
    into HOME; point it under paths.cache like every other file the framework writes (a user's choice wins)."""
    os.environ.setdefault("MPLCONFIGDIR", str(Path(paths.cache) / "matplotlib"))


def group_options(group: str, package: bool = False) -> list[str]:
    """The options of a config group (e.g. the languages of `lang`), wherever Hydra finds them (see load_option);
    with package=True, the package's own."""
    loader = None if package else _hydra_config_loader()
    if loader is not None:
        return sorted(loader.get_group_options(group))
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def load_option(group: str, name: str, copy: bool = True, package: bool = False) -> DictConfig | None:
    """One option of a config group as written (e.g. conf/lang/sk.yaml), or None if there is none: the one way the
    framework reads a config file outside Hydra's composition (a run's evaluation languages, the report's
    language list). Inside a Hydra app it looks where Hydra composes from, so a language added in a directory of
    one's own (`--config-dir DIR`) is found; elsewhere (tests, notebooks) in the package's conf/. With
    package=True, the package's own file wherever it is asked: what the embedded default is built from (the tiny
    backbone's task texts, toy/), which a config directory of one's own must not change. With copy=False, the one
    read-only node read per process: for reading, or assigning into a config (which copies it), thousands of
    times in a sweep's plan."""
    found = _read_option(_PACKAGE_SOURCES if package else _sources(), group, name)
    return found.copy() if found is not None and copy else found  # a copy is the caller's to change


def unknown_language(code: str) -> str:
    """What `lang=CODE` without a config file is told (before Hydra composes: train.py; or in a plan)."""
    return (f"Unknown language '{code}': there is no conf/lang/{code}.yaml. Known languages: "
            f"{', '.join(group_options('lang'))}. A new language is one small file there (code, name, resource "
            "level, data sources; copy conf/lang/sk.yaml; README: \"A seventeenth language\"), or in a config "
            "directory of your own (--config-dir DIR).")


def has_option(group: str, name: str) -> bool:
    return _read_option(_sources(), group, name) is not None


_PACKAGE_SOURCES = (str(CONF_DIR),)  # the package's conf/ alone, read as files


def _sources() -> tuple[str, ...]:
    loader = _hydra_config_loader()
    return tuple(source.path for source in loader.get_sources()) if loader is not None else _PACKAGE_SOURCES


@functools.lru_cache(maxsize=None)
def _read_option(sources: tuple[str, ...], group: str, name: str) -> DictConfig | None:
    # Read once per process: planning a 144-run sweep asks for the same few languages about a thousand times.
    if sources != _PACKAGE_SOURCES:  # Hydra's search path (asked for inside a Hydra app)
        found = _hydra_config_loader().repository.load_config(f"{group}/{name}")
        return None if found is None else found.config
    path = CONF_DIR / group / f"{name}.yaml"
    return OmegaConf.load(path) if path.exists() else None


def _hydra_config_loader() -> Any:
    from hydra.core.global_hydra import GlobalHydra

    hydra = GlobalHydra.instance()
    return hydra.config_loader() if hydra.is_initialized() else None


def check_writable(root: str | Path) -> None:
    """Refuse, in one paragraph, an output root that cannot be written (every file of a run goes under it)."""
    from softprompt_xl.errors import UserError

    root = Path(root)
    probe = root / f".write-test-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        # some bytes, not an empty file: a full disk still has inodes for one, then fails Hydra's first config write
        probe.write_bytes(bytes(64 * 1024))
        probe.unlink()
    except OSError as err:
        with contextlib.suppress(OSError):  # a probe cut short by a full disk; none where root is not a directory
            probe.unlink(missing_ok=True)
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise  # the caller says it as a full disk (runtime/atomic.py owns that paragraph)
        raise UserError(f"Cannot write under paths.root={root} ({err.strerror or err}): every output, the store and the "
                        "caches go there. Choose a directory you can write with paths.root=DIR (or the environment "
                        "variable SOFTPROMPT_XL_ROOT), or fix its permissions.") from None
