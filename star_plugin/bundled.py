"""What ships with the package (``presets/``: models, generators, morph presets, examples),
and the one rule for naming any of them: a path that exists wins, else a bundled name.

``model_io.resolve_model_dir``, ``gen.store.resolve_generator_dir`` and
``morph_presets.load_preset`` all resolve through :func:`resolve_name_or_path`; each names its own
kind in its error.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union


def presets_dir() -> Path:
    """The bundled presets: installed as ``star_plugin.presets``, or ``presets/`` in a checkout."""
    try:
        import star_plugin.presets as bundled  # installed layout (mapped from presets/)
        return Path(bundled.__file__).parent
    except ImportError:
        return Path(__file__).resolve().parent.parent / "presets"


def resolve_name_or_path(name_or_path: Union[str, os.PathLike], bundled: Path,
                 kind: str = "dir") -> Optional[Path]:
    """``name_or_path`` when it is an existing ``kind`` ("dir" or "file"), else the bundled
    ``bundled`` path when that exists, else None (the caller says what was not found)."""
    exists = Path.is_dir if kind == "dir" else Path.is_file
    path = Path(name_or_path).expanduser()
    if exists(path):
        return path
    return bundled if exists(bundled) else None
