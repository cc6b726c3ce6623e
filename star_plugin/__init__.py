"""STAR plugin: STAR-VAE latents ordered from structure to texture, for sound design."""
__version__ = "0.1.0"

from .errors import AudioFileError, ConfigError, ModelFileError, StarError, StreamingError
from .scan import selective_scan

__all__ = [
    "__version__", "selective_scan",
    "StarError", "ModelFileError", "AudioFileError", "ConfigError", "StreamingError",
]
