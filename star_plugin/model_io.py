"""Model directories: ``config.json`` + ``model.safetensors``, loaded through one function.

``load_vae("default")`` finds a bundled preset under ``presets/models/``; any other argument is
a directory (or a file inside one). Every failure names the file and the problem.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, List, Union

import torch

from .atomic import write_bytes_atomic
from .bundled import resolve_name_or_path
from .bundled import presets_dir
from .config import VAEConfig
from .errors import ConfigError, ModelFileError
from .version import __version__

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
DEFAULT_MODEL = "default"


def bundled_models() -> List[str]:
    root = presets_dir() / "models"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / CONFIG_FILE).is_file())


def resolve_model_dir(name_or_path: Union[str, os.PathLike]) -> Path:
    """A model directory (or a file inside one), else a bundled model's directory."""
    path = Path(name_or_path).expanduser()
    if path.is_file() and path.name in (CONFIG_FILE, WEIGHTS_FILE):
        name_or_path = path.parent
    found = resolve_name_or_path(name_or_path, presets_dir() / "models" / str(name_or_path))
    if found is not None:
        return found
    available = ", ".join(bundled_models()) or "none"
    raise ModelFileError(
        f"model '{name_or_path}' not found: it is neither a model directory nor a bundled model "
        f"(bundled: {available})")


def save_vae(model, directory: Union[str, os.PathLike], extra_metadata: Dict[str, str] = None) -> Path:
    """Write ``config.json`` and ``model.safetensors`` atomically (temp file + rename each)."""
    from safetensors.torch import save

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": "star-vae", "config_version": str(model.config.version),
                "star_plugin_version": __version__, **(extra_metadata or {})}
    write_bytes_atomic(directory / WEIGHTS_FILE, save(tensors, metadata=metadata))
    write_bytes_atomic(directory / CONFIG_FILE, (model.config.to_json() + "\n").encode())
    return directory


def read_json(path: Path, error=ModelFileError):
    """A JSON file's content; unreadable or invalid JSON raises ``error`` naming the file."""
    try:
        return json.loads(Path(path).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise error(f"'{path}' is not valid JSON ({exc}); the file is corrupt") from None


#: Keys a stored model config must hold: their dataclass defaults are not what any trained
#: model used (structure_channels is chosen from the measured KL profile, DESIGN.md).
REQUIRED_CONFIG_KEYS = ("structure_channels", "latent_channels", "sample_rate")


def _check_stored_config(data, path: Path) -> None:
    """Refuse a stored config that would load silently wrong: a required key missing (the
    default would stand in for the trained value), or a value of the wrong JSON type
    (``"sample_rate": "44100"``, ``"causal": 1``)."""
    import dataclasses

    if not isinstance(data, dict):
        return  # VAEConfig.from_dict says what is wrong
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in data]
    if missing:
        raise ModelFileError(f"'{path}': missing {', '.join(missing)} (the trained model's "
                             "values must be stored; a default would load silently wrong)")
    defaults = {f.name: f.default for f in dataclasses.fields(VAEConfig)
                if f.default is not dataclasses.MISSING}
    for key, default in defaults.items():
        if key not in data:
            continue
        value = data[key]
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        elif isinstance(default, str):
            ok = isinstance(value, str)
        else:
            ok = True
        if not ok:
            raise ModelFileError(f"'{path}': {key} must be a JSON {type(default).__name__}, "
                                 f"got {value!r}")


def read_config(directory: Path) -> VAEConfig:
    path = directory / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"model directory '{directory}' has no {CONFIG_FILE}")
    data = read_json(path)
    _check_stored_config(data, path)
    try:
        return VAEConfig.from_dict(data)
    except ConfigError as exc:
        raise ModelFileError(f"'{path}': {exc}") from None


def read_weights(path: Path) -> Dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load

    if not path.is_file():
        raise ModelFileError(f"model weights '{path}' do not exist")
    data = path.read_bytes()
    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError, OSError) as exc:
        raise ModelFileError(
            f"'{path}' is corrupt or truncated ({len(data)} bytes; safetensors says: {exc})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelFileError(f"'{path}': weight '{name}' contains NaN or Inf values")
    return tensors


def load_vae(name_or_path: Union[str, os.PathLike] = DEFAULT_MODEL, device="cpu"):
    """Load a STAR-VAE by bundled name (``default``) or directory path, in eval mode."""
    from .vae import StarVAE

    directory = resolve_model_dir(name_or_path)
    config = read_config(directory)
    weights_path = directory / WEIGHTS_FILE
    tensors = read_weights(weights_path)
    model = StarVAE(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    wrong = [f"{k}: file {tuple(tensors[k].shape)} vs config {tuple(v.shape)}"
             for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} weights (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected weights (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"shape mismatch ({'; '.join(wrong[:3])})")
        raise ModelFileError(f"'{weights_path}' does not match '{directory / CONFIG_FILE}': "
                             + "; ".join(parts))
    model.load_state_dict(tensors)
    return model.to(device).eval()
