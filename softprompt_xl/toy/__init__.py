"""The embedded default: the tiny backbone (built and pre-trained once, backbone.py; the default recipe's build
shipped in built/), the toy-data generator (make_toy.py: lexicons/ as data, generate.py) and the bundled data it
wrote (data/).

The runtime reaches it only through `backbone_dir`, named as the builder in conf/backbone/tiny.yaml: nothing in
the model, pipeline or data layers imports this package, so the embedded default is one part that can be replaced.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def backbone_dir(build: Any, paths: Any, create: bool) -> Path:
    """Directory of the tiny backbone for `build` (named by everything that shapes it): the copy shipped in built/
    when it is that build (read only), else under paths.cache; with `create`, built first (once, under a lock) if it
    is not there. Planning a sweep asks without `create`: it must not build."""
    from softprompt_xl.toy.backbone import ensure_tiny_backbone, tiny_backbone_dir

    return ensure_tiny_backbone(build, paths) if create else tiny_backbone_dir(build, paths)
