"""Generator directories: ``generator.json`` (the model config, the VAE it was trained on and
that VAE's sha256) + ``model.safetensors`` (EMA weights, latent statistics included)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional


from ..errors import ModelFileError
from .model import GenConfig, StarGen

CONFIG_FILE = "generator.json"
WEIGHTS_FILE = "model.safetensors"
FORMAT = "star-gen"
FORMAT_VERSION = 1


def save_generator(model: StarGen, directory, vae: str, vae_sha256: str,
                   facts: Optional[dict] = None) -> Path:
    from safetensors.torch import save_file

    from ..atomic import atomic_path, write_bytes_atomic

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(directory / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp))
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_dict(),
            "vae": str(vae), "vae_sha256": vae_sha256, "facts": facts or {}}
    write_bytes_atomic(directory / CONFIG_FILE, (json.dumps(meta, indent=2) + "\n").encode())
    return directory


def resolve_generator_dir(name_or_path) -> Path:
    from ..bundled import presets_dir, resolve_name_or_path

    found = resolve_name_or_path(name_or_path, presets_dir() / "models" / f"gen-{name_or_path}")
    if found is None:
        raise ModelFileError(f"generator '{name_or_path}' not found: neither a generator "
                             "directory nor a bundled generator (presets/models/gen-*)")
    return found


def read_generator(name_or_path="default"):
    """-> (StarGen in eval mode, metadata dict)."""
    from safetensors.torch import load_file

    from ..model_io import read_json

    directory = resolve_generator_dir(name_or_path)
    meta = read_json(directory / CONFIG_FILE, ModelFileError)
    if meta.get("format") != FORMAT or meta.get("version") != FORMAT_VERSION:
        raise ModelFileError(f"'{directory / CONFIG_FILE}' is not a version-{FORMAT_VERSION} "
                             "STAR-Gen generator")
    model = StarGen(GenConfig.from_dict(meta["config"]))
    try:
        tensors = load_file(str(directory / WEIGHTS_FILE))
        model.load_state_dict(tensors)
    except Exception as exc:
        raise ModelFileError(f"generator weights '{directory / WEIGHTS_FILE}' cannot be loaded "
                             f"({str(exc).splitlines()[0]})") from None
    return model.eval(), meta


def load_generator(name_or_path="default", vae=None):
    """A ready ``Generator``: the generator, the VAE it was trained on (checked by sha256),
    and the text encoder."""
    from ..model_io import load_vae
    from .generator import Generator
    from .latent_cache import vae_fingerprint

    model, meta = read_generator(name_or_path)
    vae_name = vae or meta["vae"]
    if vae_fingerprint(vae_name) != meta["vae_sha256"]:
        raise ModelFileError(f"generator '{name_or_path}' was trained on another VAE than "
                             f"'{vae_name}' (sha256 differs); retrain it or pass the right VAE")
    return Generator(model, load_vae(vae_name))
