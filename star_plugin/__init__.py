"""STAR plugin: STAR-VAE latents ordered from structure to texture, for sound design."""
__version__ = "0.1.0"

from .errors import AudioFileError, ConfigError, ModelFileError, StarError, StreamingError
from .scan import selective_scan
from .config import VAEConfig
from .latent import Latent
from .vae import StarVAE
from .model_io import load_vae, save_vae
from .architectures import architecture

__all__ = [
    "__version__", "selective_scan", "VAEConfig", "Latent", "StarVAE", "load_vae", "save_vae",
    "architecture",
    "StarError", "ModelFileError", "AudioFileError", "ConfigError", "StreamingError",
]
