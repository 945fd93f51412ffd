"""The embedded default: the tiny backbone (built and pre-trained once, backbone.py), the toy-data generator
(make_toy.py) and the bundled data it wrote (data/). The runtime reaches it only through the names below."""

from softprompt_xl.toy.backbone import ensure_tiny_backbone, tiny_backbone_dir

__all__ = ["ensure_tiny_backbone", "tiny_backbone_dir"]
