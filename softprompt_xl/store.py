"""`python -m softprompt_xl.store [paths.root=DIR]`: list what the store holds (softprompt_xl/pipeline/storage.py).

`python -m softprompt_xl.store import NAME_OR_DIR [--as NAME] [lang=sk] [backbone=...] [paths.root=DIR]`: bring a
language component saved by the paper's authors' code (a Hub name such as ivykopal/slovak_prompt_100k, or a
directory holding one) into the store (pipeline/importing.py), and print its key."""

from __future__ import annotations

import os
import re
import sys

from softprompt_xl.config import CONF_MODULE, group_options, load_option, register_resolvers
from softprompt_xl.errors import UserError
from softprompt_xl.pipeline.storage import Store
from softprompt_xl.runtime.hub import is_path


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)



def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_module

    register_resolvers()
    with initialize_config_module(CONF_MODULE, version_base="1.3"):
        return compose("train", overrides=overrides)


def _language_of(name: str) -> str | None:
    """The language code a component's name says (the authors': slovak_prompt_100k; or sk_prompt_100k)."""
    words = set(re.split(r"[^a-z]+", os.path.basename(name.rstrip("/")).lower()))
    for code in group_options("lang"):
        lang = load_option("lang", code, copy=False)
        if code in words or (lang is not None and str(lang.name).lower() in words):
            return code
    return None


def import_main(argv: list[str]) -> None:
    from softprompt_xl.runtime.hub import snapshot
    from softprompt_xl.pipeline.importing import import_component

    if not argv or argv[0].startswith("-") or "=" in argv[0]:
        raise UserError("Name what to import: `python -m softprompt_xl.store import NAME_OR_DIR [--as NAME] [lang=sk] "
                        "[backbone=mt0_base]`, NAME_OR_DIR a Hub name (ivykopal/slovak_prompt_100k) or a directory.")
    given, rest = argv[0], argv[1:]
    if is_path(given) and not os.path.isdir(given):  # not a Hub id either: the Hub's advice would mislead
        raise UserError(f"There is no directory {given} ({os.path.abspath(os.path.expanduser(given))}) to import. "
                        "Give the directory the component was saved or downloaded to (`python -m softprompt_xl.store "
                        "import DIR --as HUB_NAME`), or a Hub name such as ivykopal/slovak_prompt_100k.")
    source = given
    if "--as" in rest:
        at = rest.index("--as")
        if at + 1 >= len(rest):
            raise UserError("--as needs a name: the Hub name the directory was downloaded from.")
        source, rest = rest[at + 1], rest[:at] + rest[at + 2:]
    if not any(o.split("=")[0].lstrip("+") == "lang" for o in rest):
        code = _language_of(source)
        if code is None:
            raise UserError(f"Which language is {source}? Its name names none of {', '.join(group_options('lang'))}: "
                            "add lang=CODE.")
        rest = [*rest, f"lang={code}"]
    cfg = _compose(rest)
    if os.path.isdir(given):
        directory = given
        if source == given:
            source = os.path.abspath(given)
    else:
        try:
            directory = snapshot(given, cfg.paths.hf_cache)
        except OSError as err:
            raise UserError(
                f"Could not get {given}: it is not a local directory, not in the Hugging Face cache "
                f"({cfg.paths.hf_cache}), and the Hub could not be reached. Download it on a machine with network "
                f"(`huggingface-cli download {given} --local-dir DIR`), copy DIR here and run `python -m "
                f"softprompt_xl.store import DIR --as {given}` with the same settings. (Detail: {err})") from None
    key, existed = import_component(cfg.backbone, cfg.paths, cfg.lang.code, directory, source)
    print(f"{source} ({cfg.lang.code}) {'was already in' if existed else 'imported into'} the store "
          f"{cfg.paths.store}: {key}")
    print(f"Use it in runs with lang_stage.source=import:{source}"
          + (" (or import:authors for the authors' components of every language)" if source.startswith("ivykopal/")
             else ""))


def main(argv: list[str]) -> None:
    if argv and argv[0] == "import":
        return import_main(argv[1:])
    cfg = _compose(argv)
    store = Store(cfg.paths.store)
    rows = store.entries()
    if not rows:
        print(f"The store {store.root} is empty.")
        return
    columns = ("key", "kind", "role", "lang", "task", "size", "created", "status")
    table = [[_human(r[c]) if c == "size" else str(r[c] if r[c] is not None else "-") for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in table)) for i, c in enumerate(columns)]
    print(f"{store.root}: {len(rows)} entries")
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in table:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except UserError as err:
        sys.exit(f"Error: {err}")
