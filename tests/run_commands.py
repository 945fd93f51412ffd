"""Run several commands, as `python -m MODULE ARGS` or `python SCRIPT ARGS` would, one after another in this one
process (importing torch once instead of once per command): `python tests/run_commands.py COMMANDS.json OUT.json`.

COMMANDS.json is a list of {"argv": ["python", "-m", "softprompt_xl.train", ...], "cwd": DIR or null}; OUT.json gets
one {"returncode": N, "output": stdout and stderr together, "seconds": its wall time} per command. Each runs as its
own `__main__` (runpy), with its sys.argv and working directory; SystemExit gives its exit code, any other exception
exit code 1 and its traceback, as Python would. Used by tests/test_docs.py for the commands the documentation shows."""

from __future__ import annotations

import contextlib
import io
import json
import os
import runpy
import sys
import time
import traceback


def run(argv: list[str], cwd: str | None) -> dict:
    assert argv[0] == "python", argv
    before, out = (os.getcwd(), list(sys.argv)), io.StringIO()
    code, started = 0, time.time()
    try:
        os.chdir(cwd or before[0])
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                if argv[1] == "-m":
                    sys.argv = [argv[2], *argv[3:]]
                    runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
                else:
                    sys.argv = argv[1:]
                    runpy.run_path(argv[1], run_name="__main__")
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
                if not isinstance(exit_.code, (int, type(None))):
                    print(exit_.code, file=sys.stderr)
            except BaseException:  # noqa: BLE001 - reported as Python reports it: a traceback, exit code 1
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(before[0])
        sys.argv = before[1]
    return {"returncode": code, "output": out.getvalue(), "seconds": round(time.time() - started, 2)}


def main() -> None:
    commands = json.loads(open(sys.argv[1], encoding="utf-8").read())
    results = [run(c["argv"], c.get("cwd")) for c in commands]
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(results, f)


if __name__ == "__main__":
    main()
