"""Fixed STFT analysis and inverse-STFT synthesis as streamable (transposed) convolutions.

Writing the DFT as a convolution with a fixed basis makes the spectral front end and the
Vocos-style inverse-STFT head reuse the exact streaming rules of ``layers.Conv`` and
``layers.ConvTranspose`` (causal framing cache, overlap-add tail), and export to ONNX as plain
Conv/ConvTranspose nodes. The bases are non-persistent buffers: derived from the config,
never stored in model files.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .layers import Conv, ConvTranspose


def analysis_window(n_fft: int) -> torch.Tensor:
    """Hann window sampled half a sample off the grid: no zero end-points, so the newest
    sample of a frame always reaches the output (the latency is tight), and sum of squares
    at hop n_fft/4 is constant, so overlap-add needs a single constant gain."""
    n = torch.arange(n_fft, dtype=torch.float64)
    return torch.sin(math.pi * (n + 0.5) / n_fft) ** 2


def analysis_scale(window: torch.Tensor) -> torch.Tensor:
    return 1.0 / window.pow(2).sum().sqrt()


def _bins(n_fft: int) -> int:
    return n_fft // 2 + 1


def _replace_weight(conv_module: nn.Module, basis: torch.Tensor) -> None:
    del conv_module.weight
    conv_module.register_buffer("weight", basis.float(), persistent=False)


class STFTAnalysis(Conv):
    """(batch, 1, samples) -> (batch, 2 * bins, frames): real parts then imaginary parts.

    Frame j covers samples [(j + 1) * hop - n_fft, (j + 1) * hop). Scaled by 1 / ||window||
    (unit-variance white noise gives bins of magnitude about 1), so that the log magnitudes a
    decoder must produce for ordinary audio levels lie near 0, within reach of a few optimiser
    steps from initialisation.
    """

    def __init__(self, n_fft: int, hop: int):
        bins = _bins(n_fft)
        super().__init__(1, 2 * bins, n_fft, stride=hop, causal=True, bias=False)
        window = analysis_window(n_fft)
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64)[:, None]
        phase = 2 * math.pi * k * n / n_fft
        scale = analysis_scale(window)
        basis = torch.cat([torch.cos(phase), -torch.sin(phase)]) * window * scale
        _replace_weight(self.conv, basis[:, None, :])
        self.n_fft, self.hop, self.bins = n_fft, hop, bins


def stft_magnitude(audio: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """(rows, 1, samples) -> (rows, bins, frames) with the model's own analysis (scale, frames)."""
    analysis = STFTAnalysis(n_fft, hop).to(audio.device, audio.dtype)
    re, im = analysis(audio).chunk(2, dim=1)
    return torch.sqrt(re * re + im * im)


class ISTFTSynthesis(ConvTranspose):
    """(batch, 2 * bins, frames) -> (batch, 1, frames * hop): inverse DFT, synthesis window,
    overlap-add. Inverts :class:`STFTAnalysis` exactly (in steady state), ``n_fft - hop``
    samples late: frame j is laid at [j * hop, j * hop + n_fft)."""

    def __init__(self, n_fft: int, hop: int):
        bins = _bins(n_fft)
        super().__init__(2 * bins, 1, n_fft, hop, causal=True, bias=False)
        window = analysis_window(n_fft)
        n = torch.arange(n_fft, dtype=torch.float64)
        k = torch.arange(bins, dtype=torch.float64)[:, None]
        phase = 2 * math.pi * k * n / n_fft
        # irfft weights: DC and Nyquist once, the other bins twice (conjugate symmetry).
        weight = torch.full((bins, 1), 2.0, dtype=torch.float64)
        weight[0] = 1.0
        if n_fft % 2 == 0:
            weight[-1] = 1.0
        inverse = torch.cat([torch.cos(phase) * weight, -torch.sin(phase) * weight]) / n_fft
        # Undo the analysis scale and the overlap-add gain of the squared window.
        overlap = torch.zeros(hop, dtype=torch.float64)
        for start in range(0, n_fft, hop):
            seg = window[start:start + hop] ** 2
            overlap[: seg.numel()] += seg
        gain = analysis_scale(window) * overlap.mean()
        _replace_weight(self.conv, (inverse * window / gain)[:, None, :])
        self.n_fft, self.hop, self.bins = n_fft, hop, bins

    @property
    def delay(self) -> int:
        return self.tail
