"""Training losses. The reconstruction loss is the evaluation metric's own definition."""
from star_plugin.metrics import stft_distance as multi_resolution_stft_loss

__all__ = ["multi_resolution_stft_loss"]
