import os

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from star_plugin.config import VAEConfig  # noqa: E402
from star_plugin.vae import StarVAE  # noqa: E402

FAMILIES = [("waveform", "mamba"), ("waveform", "cnn"), ("spectral", "mamba"), ("spectral", "cnn")]


def tiny_config(**overrides) -> VAEConfig:
    """A model small enough to run in milliseconds, with every architectural feature."""
    base = dict(hidden=16, latent_channels=8, structure_channels=3, bottleneck_layers=2,
                d_state=4, width=4, max_width=16, strides=[2, 4], n_fft=32, stft_hop=8,
                frame_strides=[2], frame_layers=1, sample_rate=16000)
    base.update(overrides)
    return VAEConfig(**base)


def tiny_model(seed=0, **overrides) -> StarVAE:
    torch.manual_seed(seed)
    model = StarVAE(tiny_config(**overrides)).eval()
    # Random (not identity-like) Snake alphas and biases so that every path carries signal.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("alpha"):
                p.uniform_(0.5, 2.0)
    return model


@pytest.fixture
def saved_tiny_model(tmp_path):
    from star_plugin.model_io import save_vae

    model = tiny_model()
    return save_vae(model, tmp_path / "tiny"), model
