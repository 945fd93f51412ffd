"""`component.json`, the header of a stored component: what it is (kind, format version, role, name, its
hyperparameters), its size, and what the stage that trained it recorded (`meta`: its spec, when, how long, its
scores). The one place that writes and reads the file; the component's weights are beside it
(model/components/base.py).

Kept apart from the components themselves so that reading a header (the store listing, the report) does not
import torch and the adapters library.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from softprompt_xl.errors import UserError
from softprompt_xl.runtime.atomic import write_text

HEADER_FILE = "component.json"


@dataclass(frozen=True)
class ComponentHeader:
    kind: str
    format_version: int
    role: str
    name: str
    config: dict[str, Any]
    num_parameters: int
    meta: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def exists(directory: str | Path) -> bool:
        """Whether `directory` holds a component (the header is written last of its files)."""
        return (Path(directory) / HEADER_FILE).exists()

    def write(self, directory: str | Path) -> None:
        # indent 2, sorted keys: the layout of every component stored so far, kept so that they stay the same files
        write_text(Path(directory) / HEADER_FILE, json.dumps(asdict(self), indent=2, sort_keys=True, default=str) + "\n")

    @classmethod
    def read(cls, directory: str | Path) -> "ComponentHeader":
        path = Path(directory) / HEADER_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UserError(f"No component at {directory}: {path.name} is missing. Check the path, or retrain it.") \
                from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise UserError(f"{path} is not valid JSON ({err}); the component is damaged, retrain it.") from None
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not names - {"meta"} <= set(data):
            lacking = sorted(names - {"meta"} - set(data)) if isinstance(data, dict) else "everything"
            raise UserError(f"{path} lacks {lacking}; the component is damaged, retrain it.")
        return cls(**{k: v for k, v in data.items() if k in names})
