"""Between user audio (any rate, any channel count) and a model's (batch, channels, samples):
the one audio -> model -> audio path of the CLI, the offline render (``render_offline``, and
so the studio's and the demo's morphs) and the latent benchmarks.

A mono model processes each channel of the user's audio on its own (channels stay
independent: they become the batch). A stereo model takes channel pairs; a mono input is
duplicated to a pair and folded back by the mean, an odd last channel is duplicated.
Resampling is ``audio.resample`` (soxr, "VHQ" unless a caller such as the engine's bounce
asks for its own recipe).

(A single analysis or texture source is instead *mixed* to the model's channel count:
``audio.conform``.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .audio import as_channels_first, resample, sanitize


@dataclass(frozen=True)
class Layout:
    """What :func:`to_model_batch` changed, so :func:`from_model_batch` can undo it."""

    channels: int
    samples: int
    sample_rate: int
    model_rate: int
    model_channels: int
    replaced_nonfinite: int = 0


def fold_for_model(audio: np.ndarray, sample_rate: int, model_rate: int, model_channels: int,
                   quality: str = "VHQ", replaced_nonfinite: int = 0):
    """Clean (channels, samples) float32 -> (numpy batch at the model rate, Layout)."""
    channels, samples = audio.shape
    x = resample(audio, sample_rate, model_rate, quality)
    if model_channels == 1:
        batch = x[:, None, :]
    else:
        if channels == 1:
            x = np.concatenate([x, x])
        elif channels % 2:
            x = np.concatenate([x, x[-1:]])
        batch = x.reshape(-1, 2, x.shape[-1])
    layout = Layout(channels, samples, int(sample_rate), int(model_rate), model_channels,
                    replaced_nonfinite)
    return np.ascontiguousarray(batch, dtype=np.float32), layout


def unfold_from_model(batch, layout: Layout, quality: str = "VHQ") -> np.ndarray:
    """Model output batch (numpy or torch) -> user audio (channels, samples) at the user's
    rate and length (cut, or padded with silence)."""
    if hasattr(batch, "detach"):
        batch = batch.detach().cpu().numpy()
    x = batch.astype(np.float32)
    x = x.reshape(-1, x.shape[-1])
    if layout.model_channels == 2 and layout.channels == 1:
        x = x.mean(axis=0, keepdims=True)
    x = x[: layout.channels]
    x = resample(x, layout.model_rate, layout.sample_rate, quality)
    if x.shape[-1] < layout.samples:
        x = np.pad(x, ((0, 0), (0, layout.samples - x.shape[-1])))
    return np.ascontiguousarray(x[:, : layout.samples], dtype=np.float32)


def to_model_batch(audio: np.ndarray, sample_rate: int, model_rate: int, model_channels: int):
    """User audio (channels, samples; any dtype ``as_channels_first`` takes, NaN/Inf -> 0) ->
    (torch batch at the model rate, Layout)."""
    audio = as_channels_first(audio)
    audio, bad = sanitize(audio)
    batch, layout = fold_for_model(audio, sample_rate, model_rate, model_channels,
                                   replaced_nonfinite=bad)
    return torch.from_numpy(batch), layout


def from_model_batch(batch, layout: Layout) -> np.ndarray:
    """Model output batch -> user audio (channels, samples) at the user's rate and length."""
    return unfold_from_model(batch, layout)
