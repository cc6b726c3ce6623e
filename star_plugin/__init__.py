"""STAR plugin: STAR-VAE latents ordered from structure to texture, for sound design."""
__version__ = "0.1.0"

from .errors import AudioFileError, ConfigError, ModelFileError, StarError, StreamingError
from .scan import selective_scan
from .config import VAEConfig
from .latent import Latent
from .vae import StarVAE
from .model_io import load_vae, save_vae
from .architectures import architecture

# Imported on first use, so that ``import star_plugin`` stays light (no text encoder, no
# Pedalboard) for hosts that only encode and decode.
_LAZY = {
    "load_generator": ".gen.store", "Generator": ".gen.generator",
    "texture_from_prompt": ".gen.generator", "StreamingEngine": ".engine",
    "MorphParams": ".morph", "StarEffect": ".effects", "StarChain": ".chain",
}

__all__ = [
    "__version__", "selective_scan", "VAEConfig", "Latent", "StarVAE", "load_vae", "save_vae",
    "architecture",
    "StarError", "ModelFileError", "AudioFileError", "ConfigError", "StreamingError",
    *_LAZY,
]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'star_plugin' has no attribute {name!r}")
