"""Named architectures: the model families at the sizes this project trains and benchmarks.

All run at 44.1 kHz mono (stereo is handled as two independent channels) with a latent rate
of 43 Hz (hop 1024) and 32 latent channels, so a stereo pair stays within 64 channels.
"""
from __future__ import annotations

from .config import VAEConfig

_COMMON = dict(sample_rate=44100, audio_channels=1, latent_channels=32, structure_channels=8,
               causal=True, hidden=256, bottleneck_layers=4)

ARCHITECTURES = {
    # the real-time family: STFT front end and inverse-STFT head (Vocos-like)
    "spectral-mamba": dict(family="spectral", backbone="mamba", n_fft=1024, stft_hop=256,
                           frame_strides=[4], frame_layers=3),
    "spectral-cnn": dict(family="spectral", backbone="cnn", n_fft=1024, stft_hop=256,
                         frame_strides=[4], frame_layers=3),
    # the paper's family: strided residual CNN on the waveform (Snake activations)
    "waveform-mamba": dict(family="waveform", backbone="mamba", width=16, max_width=256,
                           strides=[2, 4, 8, 16]),
    "waveform-cnn": dict(family="waveform", backbone="cnn", width=16, max_width=256,
                         strides=[2, 4, 8, 16]),
}


def architecture(arch: str, **overrides) -> VAEConfig:
    """A VAEConfig for a named architecture, with any field overridden."""
    if arch not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    return VAEConfig(**{**_COMMON, "name": arch, **ARCHITECTURES[arch], **overrides})
