"""A generated texture source for the morph engine: STAR-Gen's latent for a prompt.

Apart from ``generator.py`` because it loads a generator (``store.load_generator``), which
builds a ``Generator``: the generator module itself never imports the store.
"""
from __future__ import annotations

from typing import Optional

from ..errors import ConfigError, ModelFileError
from ..latent import Latent
from .latent_cache import vae_fingerprint
from .store import load_generator, read_generator

__all__ = ["texture_from_prompt"]


def texture_from_prompt(prompt: str, model="default", generator="default",
                        seconds: Optional[float] = None, seed: int = 0, **kwargs) -> Latent:
    """A generated texture source for the morph engine: the latent STAR-Gen makes for
    ``prompt`` (never decoded). ``model`` names the STAR-VAE the morph runs with; the
    generator must have been trained on that same VAE, or its latents would mean nothing
    there. ``seconds``: the source's length (default: 4 s, or the generator's longest)."""
    _, meta = read_generator(generator)
    try:
        same = None if model is None else vae_fingerprint(model) == meta["vae_sha256"]
    except (ModelFileError, OSError, TypeError):
        same = None  # a loaded model or an ONNX file: the engine checks the channel count
    if same is False:
        raise ConfigError(f"generator '{generator}' makes latents of the VAE '{meta['vae']}', "
                          f"not of the morph model '{model}'; use a generator trained on "
                          f"'{model}'")
    gen = load_generator(generator)
    seconds = min(4.0, gen.max_seconds) if seconds is None else seconds
    return gen.generate_latent(prompt, seconds, seed=seed, **kwargs)
