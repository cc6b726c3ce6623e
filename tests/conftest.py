import os

import pytest
import torch

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from star_plugin.config import VAEConfig  # noqa: E402
from star_plugin.vae import StarVAE  # noqa: E402

FAMILIES = [("waveform", "mamba"), ("waveform", "cnn"), ("spectral", "mamba"), ("spectral", "cnn")]
# the v2 decoder: causal ConvNeXt blocks and the phase-vocoder head (phase as streaming state)
V2 = dict(family="spectral", backbone="mamba", decoder_blocks=2, head="phase-vocoder")
# the same with the f0-driven harmonic comb (f0 phase as streaming state too)
V2_HARMONIC = dict(V2, head="harmonic", harmonics=6)
# and with latent channel 0 the causal YIN pitch code (its tracker's window as state too)
V2_PITCH = dict(V2_HARMONIC, pitch_channel=0)
# v3: residual + comb magnitudes, the phase locked to the magnitude's peaks (one phase state),
# a hidden layer beside the head's linear projection
V3 = dict(V2_PITCH, head="peak-locked", head_hidden=8)


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
            if ".detail." in name:  # the head's hidden layer starts silent (zero output layer)
                p.normal_(0.0, 0.1)
    return model


@pytest.fixture
def saved_tiny_model(tmp_path):
    from star_plugin.model_io import save_vae

    model = tiny_model()
    return save_vae(model, tmp_path / "tiny"), model


def make_tiny_corpus(folder, clips=12, seconds=1.0, sample_rate=16000, seed=0):
    """A corpus directory like 'star data build' writes, from procedural clips (fast)."""
    from pathlib import Path

    from star_plugin.audio import write_audio
    from star_plugin.training.corpus.manifest import write_manifest
    from star_plugin.training.synth import synth_clip

    folder = Path(folder)
    (folder / "audio").mkdir(parents=True, exist_ok=True)
    splits = ["train"] * (clips - 4) + ["validation"] * 2 + ["test"] * 2
    entries = []
    for i, split in enumerate(splits):
        audio, kind = synth_clip(seed + i, seconds, sample_rate)
        path = f"audio/clip-{i:03d}.flac"
        write_audio(folder / path, audio, sample_rate, subtype="PCM_16")
        entries.append({"id": f"clip-{i:03d}", "path": path, "split": split,
                        "group": f"clip-{i:03d}", "caption": f"a procedural {kind}",
                        "labels": {"source": "texture" if kind in ("noise", "sweep") else
                                   "instrument", "family": kind, "register": "mid",
                                   "effect": "dry"},
                        "duration": seconds, "sample_rate": sample_rate, "channels": 1,
                        "origin": {"package": "star-plugin", "licence": "MIT", "file": "synth"}})
    write_manifest(folder, entries)
    return folder


@pytest.fixture
def tiny_corpus(tmp_path):
    return make_tiny_corpus(tmp_path / "corpus")


TINY_TRAIN_MODEL = dict(arch="spectral-mamba", hidden=16, latent_channels=8, structure_channels=3,
                        bottleneck_layers=1, d_state=4, n_fft=64, stft_hop=16, frame_strides=[2],
                        frame_layers=1, sample_rate=16000)
