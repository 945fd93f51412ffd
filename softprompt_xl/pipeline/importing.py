"""Bringing a language component trained elsewhere (the paper's authors' published ones) into the store, under
the key of what it is and where its weights came from (keys.imported_spec), so that runs with
`lang_stage.source=import:NAME` use it instead of training one. The layouts are read by model/foreign_layouts.py."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from softprompt_xl.model.backbone import load_backbone
from softprompt_xl.model.components.compose import ComposedModel
from softprompt_xl.model.foreign_layouts import convert, find_source
from softprompt_xl.pipeline.keys import imported_spec, key
from softprompt_xl.pipeline.storage import Store

log = logging.getLogger(__name__)


def import_component(backbone: Any, paths: Any, lang: str, directory: str | Path, source: str) -> tuple[str, bool]:
    """Convert the component saved in `directory` (named `source`: a Hub name or the directory) onto `backbone` (its
    conf/backbone node) as the language component of language `lang`, and store it in `paths.store`. Returns its
    store key and whether it was already there (the same source, weights and backbone give the same key)."""
    found = find_source(directory)
    digest = found.sha256()
    model, tokenizer = load_backbone(backbone, paths)
    net = ComposedModel(model, tokenizer)
    component = convert(found, net, "lang", lang)
    spec = imported_spec(lang, component.config, backbone, paths, source, found.layout, digest)
    store = Store(paths.store)
    path = store.component_dir(key(spec))
    with store.lock(path):
        if store.has(path):
            return path.name, True
        store.save_component(path, component, spec, {
            "imported": {"source": source, "directory": str(Path(found.directory).resolve()), "layout": found.layout,
                         "weights_file": found.weights.name, "sha256": digest, "config": found.config,
                         "imported": time.strftime("%Y-%m-%dT%H:%M:%S")},
        })
    log.info("Imported %s as %s", source, path)
    return path.name, False
