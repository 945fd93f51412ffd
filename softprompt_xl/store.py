"""`python -m softprompt_xl.store [paths.root=DIR]`: list what the store holds (softprompt_xl/study/store.py)."""

from __future__ import annotations

import sys

from softprompt_xl.config import CONF_MODULE, register_resolvers
from softprompt_xl.study.store import Store


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)



def main(argv: list[str]) -> None:
    from hydra import compose, initialize_config_module

    register_resolvers()
    with initialize_config_module(CONF_MODULE, version_base="1.3"):
        cfg = compose("train", overrides=argv)
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
    main(sys.argv[1:])
