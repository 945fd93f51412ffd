"""The package's shape holds: layers import only downwards, the embedded default is reached only through config,
and each record file has one module that names it. Read from the source, so a change that breaks the shape fails
here rather than in a newcomer's ten minutes with the code."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import softprompt_xl

PACKAGE = Path(softprompt_xl.__file__).resolve().parent
# A layer may import itself and the layers listed before it (config.py and errors.py are under every layer).
LAYERS = ["runtime", "data", "model", "pipeline", "report"]


def imports(path: Path) -> set[str]:
    """The softprompt_xl modules a file imports (at any depth: lazy imports count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("softprompt_xl"):
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("softprompt_xl")}
    return found


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS + ["toy"] else None


def test_layers_import_only_downwards_and_nothing_imports_the_toy_part():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0]
        for module in imports(path):
            target = layer_of(module)
            if target == "toy" and own != "toy":
                wrong.append(f"{path.relative_to(PACKAGE)} imports {module} (reach toy/ through backbone.builder)")
            elif own in LAYERS and target in LAYERS and LAYERS.index(target) > LAYERS.index(own):
                wrong.append(f"{path.relative_to(PACKAGE)} ({own}) imports {module} ({target}, a layer above)")
    assert not wrong, "\n".join(wrong)


def test_config_and_errors_are_under_every_layer():
    """config.py and errors.py are imported by every layer, so they import none: a resolver of a fact a layer owns
    (the run name's, spxl.run_name) is registered by that layer's module, not reached for from below."""
    wrong = [f"{name} imports {module} ({layer_of(module)}/)" for name in ("config.py", "errors.py")
             for module in sorted(imports(PACKAGE / name)) if layer_of(module)]
    assert not wrong, "\n".join(wrong)


def test_each_record_file_is_named_by_one_module_only():
    owners = {"component.json": "model/component_header.py", "result.json": "pipeline/records.py"}
    for name, owner in owners.items():
        code_mentions = []
        for path in sorted(PACKAGE.rglob("*.py")):
            # the file name in code (a string literal), not in prose: docstrings and comments may name it
            tree = ast.parse(path.read_text(encoding="utf-8"))
            docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                          if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
                          and n.body and isinstance(n.body[0], ast.Expr)}
            if any(isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings
                   and re.search(rf"(^|/){re.escape(name)}$", n.value) for n in ast.walk(tree)):
                code_mentions.append(str(path.relative_to(PACKAGE)))
        assert code_mentions == [owner], f"{name} is named in code by {code_mentions}, should be {owner} alone"
