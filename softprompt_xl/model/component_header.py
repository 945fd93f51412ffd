"""`component.json`, the header of a stored component: what it is (kind, format version, role, name, its
hyperparameters), its size, and what the stage that trained it recorded (`meta`: its spec, when, how long, its
scores). The one place that writes and reads the file; the component's weights are beside it
(model/components/base.py).

Kept apart from the components themselves so that reading a header (the store listing, the report) does not
import torch and the adapters library. `damage` says whether a stored component is whole without loading it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from softprompt_xl.errors import UserError
from softprompt_xl.runtime.atomic import write_text

HEADER_FILE = "component.json"
WEIGHTS_FILE = "weights.safetensors"  # beside the header, written by model/components/base.py


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
            return cls._parse(path)
        except FileNotFoundError:
            raise UserError(f"No component at {directory}: {path.name} is missing. Check the path, or retrain it.") \
                from None
        except ValueError as err:
            raise UserError(f"{err}; the component is damaged, retrain it.") from None

    @classmethod
    def _parse(cls, path: Path) -> "ComponentHeader":
        """The header in `path`; ValueError naming the file and what is wrong with it."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{path} is not valid JSON ({err})") from None
        names = {f.name for f in fields(cls)}
        if not isinstance(data, dict) or not names - {"meta"} <= set(data):
            lacking = sorted(names - {"meta"} - set(data)) if isinstance(data, dict) else "everything"
            raise ValueError(f"{path} lacks {lacking}")
        return cls(**{k: v for k, v in data.items() if k in names})

def damage(directory: str | Path) -> str | None:
    """Why the component stored in `directory` (its header present) cannot be loaded whole, naming the file and
    what is wrong with it - a header that does not read, a weights file missing or cut short - or None. Cheap: it
    reads the header and the weights file's own index, whose tensors must cover the file exactly (safetensors checks
    the offsets against the file's size on opening), not the weights."""
    from safetensors import safe_open

    directory = Path(directory)
    try:
        ComponentHeader._parse(directory / HEADER_FILE)
    except FileNotFoundError:
        return f"{directory / HEADER_FILE} is missing"
    except ValueError as err:
        return str(err)
    weights = directory / WEIGHTS_FILE
    try:
        with safe_open(str(weights), framework="numpy"):
            pass
    except FileNotFoundError:
        return f"{weights} is missing"
    except Exception as err:  # noqa: BLE001 - safetensors' own error type says what is wrong with the file
        return f"{weights} is damaged ({str(err).removeprefix('Error while deserializing header: ')})"
    return None
