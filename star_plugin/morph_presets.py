"""Morph presets: versioned JSON files (bundled under ``presets/morph/``, or anywhere).

    {"format": "star-morph-preset", "version": 1, "name": "...", "description": "...",
     "params": {"structure_amount": 0.0, "texture_amount": 1.0, "temperature": 0.0,
                "mode": "loop", "mix": 1.0, "output_gain_db": 0.0, ...}}

``params`` holds :class:`~star_plugin.morph.MorphParams` fields; unknown fields, wrong types
and out-of-range values are errors that name the file and the field. Presets written before
the amounts were renamed (``"structure"``, ``"texture"``) load as the same parameters.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import List, Union

from .atomic import write_bytes_atomic
from .errors import ConfigError
from .bundled import resolve_name_or_path
from .bundled import presets_dir
from .model_io import read_json
from .morph import MorphParams

FORMAT = "star-morph-preset"
VERSION = 1


@dataclass
class MorphPreset:
    name: str
    description: str
    params: MorphParams

    def to_dict(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "name": self.name,
                "description": self.description, "params": self.params.to_dict()}


def bundled_dir() -> Path:
    return presets_dir() / "morph"


def list_presets() -> List[MorphPreset]:
    folder = bundled_dir()
    return [load_preset(p) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def _resolve(name_or_path: Union[str, os.PathLike]) -> Path:
    found = resolve_name_or_path(name_or_path, bundled_dir() / f"{name_or_path}.json", "file")
    if found is None:
        names = ", ".join(p.name for p in list_presets()) or "none"
        raise ConfigError(f"preset '{name_or_path}' not found: neither a file nor a bundled "
                          f"preset (bundled: {names})")
    return found


def load_preset(name_or_path: Union[str, os.PathLike]) -> MorphPreset:
    """A bundled preset by name, or a preset file."""
    path = _resolve(name_or_path)
    data = read_json(path, ConfigError)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f"'{path}' is not a STAR morph preset (\"format\" must be '{FORMAT}')")
    if data.get("version") != VERSION:
        raise ConfigError(f"preset '{path}' has version {data.get('version')!r}; this "
                          f"star_plugin reads version {VERSION}")
    for key in ("name", "description"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise ConfigError(f"preset '{path}': '{key}' must be a non-empty string")
    unknown = sorted(set(data) - {"format", "version", "name", "description", "params"})
    if unknown:
        raise ConfigError(f"preset '{path}': unknown keys {', '.join(unknown)}")
    try:
        params = MorphParams.from_dict(data.get("params", {}))
    except (ConfigError, TypeError) as exc:
        raise ConfigError(f"preset '{path}': {exc}") from None
    return MorphPreset(data["name"], data["description"], params)


def save_preset(preset: MorphPreset, path: Union[str, os.PathLike]) -> Path:
    """Validate and write (atomically)."""
    preset.params.validate()
    if not preset.name.strip():
        raise ConfigError("a preset needs a name")
    return write_bytes_atomic(path, (json.dumps(preset.to_dict(), indent=2) + "\n").encode())
