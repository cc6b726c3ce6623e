"""STAR plugin: STAR-VAE latents ordered from structure to texture, for sound design."""
from .errors import AudioFileError, ConfigError, ModelFileError, StarError, StreamingError
from .version import __version__

# Imported on first use, so that ``import star_plugin`` stays light: no torch for the CLI's
# start-up (`star --help`), no text encoder and no Pedalboard for hosts that only encode.
_LAZY = {
    "selective_scan": ".scan", "VAEConfig": ".config", "Latent": ".latent",
    "StarVAE": ".vae", "load_vae": ".model_io", "save_vae": ".model_io",
    "open_model": ".backend",
    "architecture": ".architectures",
    "load_generator": ".gen.store", "Generator": ".gen.generator",
    "texture_from_prompt": ".gen.texture", "StreamingEngine": ".engine",
    "MorphParams": ".morph", "StarEffect": ".effects", "StarChain": ".chain",
}

__all__ = [
    "__version__",
    "StarError", "ModelFileError", "AudioFileError", "ConfigError", "StreamingError",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'star_plugin' has no attribute {name!r}")
