"""Phase-coherent inverse-STFT synthesis: the decoder head of the v2 models.

The v1 head predicted each frame's phase from scratch and counted it from the frame's first
sample, while the window peaks at its centre: with magnitude losses the phase never trained and
every frame came out as a pulse at its edges, a buzz at the STFT hop whatever the input's pitch.

This head works like a phase vocoder. Per STFT bin ``k`` the decoder predicts

* a log magnitude,
* a bounded frequency correction ``delta`` (radians per hop, ``pi * tanh``), and
* a bounded per-frame phase offset (``pi * tanh``, for onsets; zero at initialisation).

The running phase accumulates ``advance_k + delta`` from frame to frame, where ``advance_k =
2 pi k hop / n_fft`` is the bin's own centre frequency times the hop: a partial between two bins
is drawn by every bin of its main lobe advancing at the partial's frequency, so it stays coherent
across frames at any pitch. Phase is counted from the frame *centre* (a symmetric window's
spectrum is then real in its main lobe: neighbouring bins of a partial share one phase).

The accumulated phase is streaming state (``phase``: one value per bin, wrapped to [0, 2 pi)).
It is summed in float64 so that a long offline decode and the wrapped streaming state agree
far below the 1e-4 parity bound.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .spectral import ISTFTSynthesis
from .streaming import Streamable

TWO_PI = 2.0 * math.pi
MAX_LOG_MAGNITUDE = 6.0  # exp(6) caps a bin's magnitude (as Vocos does)


def wrap_phase(phase: torch.Tensor) -> torch.Tensor:
    """phase mod 2 pi in [0, 2 pi), without Mod/If (exports as plain arithmetic)."""
    return phase - TWO_PI * torch.floor(phase / TWO_PI)


class PhaseVocoderHead(Streamable):
    """(batch, 3 * bins, frames) -> (batch, 1, frames * hop), ``n_fft - hop`` samples late.

    Input channels: log magnitudes, frequency corrections, phase offsets (``bins`` each).
    """

    def __init__(self, n_fft: int, hop: int):
        super().__init__()
        self.bins = n_fft // 2 + 1
        self.synthesis = ISTFTSynthesis(n_fft, hop)
        k = torch.arange(self.bins, dtype=torch.float64)
        # the bin's centre frequency times the hop, mod 2 pi (exact for hop = n_fft / 4)
        self.register_buffer("advance", torch.remainder(TWO_PI * k * hop / n_fft, TWO_PI)[:, None],
                             persistent=False)
        # counting phase from the frame centre = a shift by n_fft / 2 samples: pi * k
        self.register_buffer("centre", (math.pi * torch.remainder(k, 2.0)).float()[:, None],
                             persistent=False)

    @property
    def delay(self) -> int:
        return self.synthesis.delay

    def _spectrum(self, x: torch.Tensor, previous: torch.Tensor):
        """-> (re/im spectrum, last accumulated phase) for frames x, after phase ``previous``."""
        logmag, correction, offset = x.chunk(3, dim=1)
        increment = self.advance + (math.pi * torch.tanh(correction)).to(torch.float64)
        running = previous.to(torch.float64) + torch.cumsum(increment, dim=-1)
        accumulated = wrap_phase(running).to(x.dtype)
        phase = accumulated + math.pi * torch.tanh(offset) + self.centre
        magnitude = torch.exp((logmag - 3.0).clamp(max=MAX_LOG_MAGNITUDE))
        spectrum = torch.cat([magnitude * torch.cos(phase), magnitude * torch.sin(phase)], dim=1)
        return spectrum, accumulated[..., -1:]

    def forward(self, x):
        spectrum, _ = self._spectrum(x, x.new_zeros(x.shape[0], self.bins, 1))
        return self.synthesis(spectrum)

    def init_state(self, batch, device=None, dtype=None):
        return {"phase": torch.zeros(batch, self.bins, 1, device=device, dtype=dtype),
                "synthesis": self.synthesis.init_state(batch, device, dtype)}

    def step(self, x, state):
        if x.shape[-1] == 0:
            return x.new_zeros(x.shape[0], 1, 0), state
        spectrum, phase = self._spectrum(x, state["phase"])
        audio, synthesis = self.synthesis.step(spectrum, state["synthesis"])
        return audio, {"phase": phase, "synthesis": synthesis}


def init_head_projection(projection: nn.Conv1d, bins: int, audio_channels: int) -> None:
    """Start the frequency corrections and phase offsets near zero (close to the pure
    bin-centre advance): their weights are scaled by 0.1 and their biases zeroed, so early
    training shapes magnitudes first."""
    with torch.no_grad():
        weight = projection.weight.view(audio_channels, 3, bins, -1)
        weight[:, 1:].mul_(0.1)
        if projection.bias is not None:
            projection.bias.view(audio_channels, 3, bins)[:, 1:].zero_()
